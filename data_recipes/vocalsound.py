"""VocalSound -> ``vsc`` (vocal sound classification) shards.

    python -m data_recipes.vocalsound --root RAW_DIR --out OUT_DIR [--subsets train valid test all]

Raw layout (``vs_release_16k.zip`` extracted; ``RAW_DIR`` is the directory holding ``audio_16k/``)::

    audio_16k/<speaker>_<n>_<label>.wav    e.g. f0003_0_cough.wav: speaker f0003 (f/m = gender), collection 0,
                                           label one of laughter sigh cough throatclearing sneeze sniff
                                           (audio_44k/ of the 44.1-kHz release works too)
    datafiles/{tr,val,te}.json             the official speaker-disjoint split:
                                           {"data": [{"wav": ".../f0003_0_cough.wav", "labels": "/m/..."}, ...]}
                                           (only the file name of "wav" is used)

Subsets ``train``, ``valid``, ``test`` follow ``datafiles/{tr,val,te}.json``; ``all`` is every file of the audio
directory (no split file needed). Without ``--subsets``: train, valid and test.

Samples: key ``vocalsound-<file stem>``, target = the label in words (``laughter``, ``sigh``, ``cough``,
``throat clearing``, ``sneeze``, ``sniff``; the file names write ``throatclearing``), ``meta.speaker``,
``meta.gender``; audio and text language ``en`` (the release's VocalSound prompt uses ``<|en|>``); source
``vocalsound/<subset>``.

Owns: reading the VocalSound layout. Must not: use the AudioSet label ids (the file name is the label).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import LayoutError, RawItem, Recipe, main, make_key

LABELS = {
    "laughter": "laughter",
    "sigh": "sigh",
    "cough": "cough",
    "throatclearing": "throat clearing",
    "sneeze": "sneeze",
    "sniff": "sniff",
}
DATAFILES = {"train": "tr.json", "valid": "val.json", "test": "te.json"}
AUDIO_DIRS = ("audio_16k", "audio_44k")


def parse_name(stem: str) -> tuple[str, str]:
    """``f0003_0_cough`` -> (speaker ``f0003``, label ``cough``)."""
    parts = stem.split("_")
    if len(parts) != 3 or parts[2] not in LABELS:
        raise ValueError(f"{stem!r} is not <speaker>_<n>_<label> with a label in {sorted(LABELS)}")
    return parts[0], parts[2]


class VocalSound(Recipe):
    name = "vocalsound"
    layout = """\
<root>/audio_16k/<speaker>_<n>_<label>.wav   e.g. f0003_0_cough.wav (or audio_44k/)
<root>/datafiles/{tr,val,te}.json            {"data": [{"wav": ".../f0003_0_cough.wav", "labels": ...}]}
subsets: train (tr.json), valid (val.json), test (te.json), all (every file, no split file)"""
    subsets = ("train", "valid", "test", "all")
    tasks = ("vsc",)

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return ("train", "valid", "test")

    @staticmethod
    def audio_dir(root: Path) -> Path:
        return next((root / d for d in AUDIO_DIRS if (root / d).is_dir()), root / AUDIO_DIRS[0])

    def check(self, root: Path, subset: str) -> None:
        self.require(self.audio_dir(root), "the audio directory")
        if subset != "all":
            self.require(root / "datafiles" / DATAFILES[subset], f"the {subset} split file")

    def _names(self, root: Path, subset: str) -> list[str]:
        if subset == "all":
            return [p.name for p in sorted(self.audio_dir(root).glob("*.wav"))]
        path = root / "datafiles" / DATAFILES[subset]
        try:
            return [Path(d["wav"]).name for d in json.loads(path.read_text(encoding="utf-8"))["data"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise LayoutError(f"vocalsound: {path} is not a VocalSound datafile ({e!r})") from e

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        audio_dir = self.audio_dir(root)
        for name in self._names(root, subset):
            stem = Path(name).stem
            try:
                speaker, label = parse_name(stem)
            except ValueError as e:
                raise LayoutError(f"vocalsound: unexpected file name in {subset}: {e}") from e
            yield RawItem(
                key=make_key("vocalsound", stem),
                audio=audio_dir / name,
                task=task,
                target=LABELS[label],
                text_language="en",
                audio_language="en",
                meta={"speaker": speaker, "gender": {"f": "female", "m": "male"}.get(speaker[:1], "")},
            )


RECIPE = VocalSound()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
