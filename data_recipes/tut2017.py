"""TUT Acoustic Scenes 2017 (DCASE 2017 task 1) -> ``asc`` shards.

Raw layout (the Zenodo archives extracted into ROOT)::

    ROOT/TUT-acoustic-scenes-2017-development/meta.txt      audio/<file>.wav<TAB>scene<TAB>recording id
    ROOT/TUT-acoustic-scenes-2017-development/audio/*.wav   10-s binaural clips, 44.1 kHz, 24-bit
    ROOT/TUT-acoustic-scenes-2017-development/evaluation_setup/fold<N>_{train,evaluate}.txt
                                                            audio/<file>.wav<TAB>scene   (N = 1..4)
    ROOT/TUT-acoustic-scenes-2017-evaluation/meta.txt       audio/<file>.wav<TAB>scene   (the challenge test set)
    ROOT/TUT-acoustic-scenes-2017-evaluation/audio/*.wav

    python -m data_recipes.tut2017 --root ROOT --out OUT [--subsets development evaluation fold1_train ...]

Subsets: ``development`` (every clip of the development ``meta.txt``: train on it when testing on the
evaluation set, as the release's TUT2017 score does), ``evaluation``, and the cross-validation folds
``fold<N>_train`` / ``fold<N>_evaluate`` (N = 1..4). Without ``--subsets``: ``development`` + ``evaluation`` when
the evaluation set is present, else ``fold1_train`` + ``fold1_evaluate``.

Samples: ``task="asc"``, ``target`` the scene with underscores read as spaces (``residential area``,
``cafe/restaurant``, ``city center``), ``meta.scene`` the label as written, ``meta.recording`` the recording id
when ``meta.txt`` gives one. Stereo is averaged to mono. Clips over 30 s (none) would be windowed.

Owns: the TUT2017 layout. Must not: download anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.clotho import readable
from data_recipes.common import RawItem, Recipe, main, make_key

DEV = "TUT-acoustic-scenes-2017-development"
EVAL = "TUT-acoustic-scenes-2017-evaluation"


class TUT2017(Recipe):
    name = "tut2017"
    layout = f"""\
ROOT/{DEV}/meta.txt                                   audio/<file>.wav<TAB>scene[<TAB>recording]
ROOT/{DEV}/audio/*.wav
ROOT/{DEV}/evaluation_setup/fold<N>_{{train,evaluate}}.txt   audio/<file>.wav<TAB>scene
ROOT/{EVAL}/meta.txt, ROOT/{EVAL}/audio/*.wav"""
    subsets = ("development", "evaluation") + tuple(
        f"fold{n}_{part}" for n in range(1, 5) for part in ("train", "evaluate")
    )
    tasks = ("asc",)

    @staticmethod
    def _list(root: Path, subset: str) -> tuple[Path, Path]:
        """(list file, folder its paths are relative to)."""
        if subset == "development":
            return root / DEV / "meta.txt", root / DEV
        if subset == "evaluation":
            return root / EVAL / "meta.txt", root / EVAL
        return root / DEV / "evaluation_setup" / f"{subset}.txt", root / DEV

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        if (root / EVAL / "meta.txt").is_file():
            return ("development", "evaluation")
        return ("fold1_train", "fold1_evaluate")

    def check(self, root: Path, subset: str) -> None:
        list_file, _ = self._list(root, subset)
        self.require(list_file, f"the {subset} list")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        list_file, base = self._list(root, subset)
        with open(list_file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                fields = [x.strip() for x in line.rstrip("\n").split("\t")]
                if not fields[0]:
                    continue
                if len(fields) < 2 or not fields[1]:
                    raise ValueError(f"{list_file}:{n}: expected 'audio/<file>.wav<TAB>scene', got {line.strip()!r}")
                rel, scene = fields[0], fields[1]
                audio = base / rel
                if not audio.is_file():
                    raise self.missing(audio, f"audio listed at {list_file.name}:{n}")
                meta = {"scene": scene, "file_name": rel}
                if len(fields) > 2 and fields[2]:
                    meta["recording"] = fields[2]
                stem = os.path.splitext(os.path.basename(rel))[0]
                yield RawItem(
                    key=make_key(self.name, subset, stem),
                    audio=str(audio),
                    task="asc",
                    target=readable(scene),
                    text_language="en",
                    meta=meta,
                    long_audio="windows",
                )


RECIPE = TUT2017()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
