"""VoxCeleb1 -> ``sgc`` (speaker gender) and ``sv`` (speaker verification) shards.

    python -m data_recipes.voxceleb1 --root RAW_DIR --out OUT_DIR [--subsets train dev test veri_test]

Raw layout (the VoxCeleb1 release: the dev and test wav archives extracted, plus the meta and list files)::

    wav/<speaker id>/<video id>/<nnnnn>.wav     e.g. wav/id10001/1zcIwhmdeo4/00001.wav (16 kHz); the dev and test
                                                archives may also stay apart as vox1_dev_wav/wav/ and vox1_test_wav/wav/
    vox1_meta.csv     TAB-separated despite its name; header "VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set",
                      rows like "id10001<TAB>A.J._Buckley<TAB>m<TAB>Ireland<TAB>dev"
    iden_split.txt    "<1|2|3> id10003/na8-QEFmj44/00003.wav"  (1 train, 2 dev, 3 test: the identification split)
    veri_test.txt     "<1|0> id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav"  (1 = same speaker);
                      veri_test2.txt (the cleaned list) in the same format

Subsets and tasks:

* ``train``, ``dev``, ``test`` -> ``sgc``: one sample per utterance of that iden_split part; target ``male`` /
  ``female`` from vox1_meta.csv's Gender; ``meta.speaker``. The identification split shares speakers across its
  parts (it was made for speaker identification): keep that in mind when reading sgc test accuracy.
* ``veri_test``, ``veri_test2`` -> ``sv``: one sample per trial: the two utterances concatenated with 1 s of
  silence (``SV_GAP_S``); target ``same`` / ``different``; ``meta.speakers`` [a, b], ``meta.utterances``.
  Pairs longer than 30 s in total are kept whole (cutting would lose part of the second voice); ``--max-seconds``
  caps them (skipped and counted).

Keys: ``voxceleb1-<speaker>-<video>-<nnnnn>`` (sgc), ``voxceleb1-<list>-<line number>`` (sv). Audio language
``en`` (the celebrities' interviews are mostly English; VoxCeleb has no per-utterance language labels), text
language ``en``; source ``voxceleb1/<subset>``. Without ``--subsets``, every subset whose list file is present.

Owns: reading the VoxCeleb1 layout, building verification pairs. Must not: pick trials other than the lists'.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_recipes.common import LayoutError, RawItem, Recipe, main, make_key, read_delimited
from qwenaudio_train.audio import SAMPLE_RATE, load_audio

SV_GAP_S = 1.0  # silence between the two utterances of a verification trial (conventions table)
IDEN_SPLITS = {"train": "1", "dev": "2", "test": "3"}
VERI_LISTS = {"veri_test": "veri_test.txt", "veri_test2": "veri_test2.txt"}
GENDERS = {"m": "male", "f": "female"}
WAV_DIRS = (Path("wav"), Path("vox1_dev_wav") / "wav", Path("vox1_test_wav") / "wav")


def concat_pair(a: str, b: str, gap_s: float = SV_GAP_S) -> np.ndarray:
    """Two utterances joined by `gap_s` seconds of silence, 16 kHz mono (runs in the worker processes)."""
    wa, wb = load_audio(a), load_audio(b)
    return np.concatenate([wa, np.zeros(int(round(gap_s * SAMPLE_RATE)), np.float32), wb])


class VoxCeleb1(Recipe):
    name = "voxceleb1"
    layout = """\
<root>/wav/<speaker id>/<video id>/<nnnnn>.wav   (or vox1_dev_wav/wav/ and vox1_test_wav/wav/)
<root>/vox1_meta.csv    tab-separated: VoxCeleb1 ID, VGGFace1 ID, Gender (m/f), Nationality, Set
<root>/iden_split.txt   "<1|2|3> id10003/na8-QEFmj44/00003.wav"       subsets train, dev, test -> sgc
<root>/veri_test.txt    "<1|0> id10270/.../00001.wav id10270/.../00008.wav"   subset veri_test -> sv
<root>/veri_test2.txt   same format                                    subset veri_test2 -> sv"""
    subsets = ("train", "dev", "test", "veri_test", "veri_test2")
    tasks = ("sgc", "sv")

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return ("sv",) if subset in VERI_LISTS else ("sgc",)

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        out = [s for s in IDEN_SPLITS if (root / "iden_split.txt").is_file()]
        out += [s for s, f in VERI_LISTS.items() if (root / f).is_file()]
        return tuple(out)

    def check(self, root: Path, subset: str) -> None:
        if not any((root / d).is_dir() for d in WAV_DIRS):
            raise self.missing(root / "wav", "the wav directory")
        if subset in VERI_LISTS:
            self.require(root / VERI_LISTS[subset], f"the verification trial list of subset {subset!r}")
        else:
            self.require(root / "iden_split.txt", "the identification split list")
            self.require(root / "vox1_meta.csv", "the speaker meta file (gender)")

    def wav_path(self, root: Path, rel: str) -> Path:
        """The file of a list entry ``id10001/<video>/00001.wav``, in whichever wav directory holds it."""
        for d in WAV_DIRS:
            p = root / d / rel
            if p.is_file():
                return p
        raise self.missing(root / WAV_DIRS[0] / rel, "an utterance named by the lists")

    def _genders(self, root: Path) -> dict[str, str]:
        out = {}
        for row in read_delimited(root / "vox1_meta.csv"):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            gender = GENDERS.get(row.get("Gender", "").lower())
            if gender:
                out[row["VoxCeleb1 ID"]] = gender
        return out

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        if task == "sv":
            yield from self._trials(root, subset)
            return
        genders = self._genders(root)
        part = IDEN_SPLITS[subset]
        for line in (root / "iden_split.txt").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) != 2 or fields[0] != part:
                continue
            rel = fields[1]
            speaker = rel.split("/")[0]
            if speaker not in genders:
                raise LayoutError(f"voxceleb1: speaker {speaker!r} of iden_split.txt has no gender in vox1_meta.csv")
            yield RawItem(
                key=make_key("voxceleb1", *Path(rel).with_suffix("").parts),
                audio=self.wav_path(root, rel),
                task=task,
                target=genders[speaker],
                text_language="en",
                audio_language="en",
                meta={"speaker": speaker},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )

    def _trials(self, root: Path, subset: str) -> Iterator[RawItem]:
        for n, line in enumerate((root / VERI_LISTS[subset]).read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if len(fields) != 3:
                continue
            label, a, b = fields
            pa, pb = self.wav_path(root, a), self.wav_path(root, b)
            yield RawItem(
                key=make_key("voxceleb1", subset, f"{n:06d}"),
                audio=functools.partial(concat_pair, str(pa), str(pb)),
                task="sv",
                target="same" if label == "1" else "different",
                text_language="en",
                audio_language="en",
                meta={"speakers": [a.split("/")[0], b.split("/")[0]], "utterances": [a, b]},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )


RECIPE = VoxCeleb1()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
