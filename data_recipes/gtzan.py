"""GTZAN music genre classification -> ``mgr`` shards.

Raw layout: either copy of the corpus, with ROOT the folder holding it::

    ROOT/genres_original/<genre>/<genre>.000NN.wav    (the Kaggle copy; also ROOT/Data/genres_original/)
    ROOT/genres/<genre>/<genre>.000NN.au              (the original tarball; Sun .au, read by libsndfile)

Ten genres x 100 clips of ~30 s, 22.05 kHz mono.

    python -m data_recipes.gtzan --root ROOT --out OUT

One subset, ``all`` (GTZAN has no official split; choose folds downstream by key). Samples: ``task="mgr"``,
``target`` the genre folder name (``hiphop``), ``meta.file_name``; keys ``gtzan-<genre>-000NN``. Many clips last a
few milliseconds over 30 s: a genre holds for any part of a clip, so long clips are split into 30-s windows
(``...-w000``, ``-w001``; a remainder under 0.5 s is dropped). The Kaggle copy's ``jazz.00054.wav`` does not decode:
it is skipped and counted as ``skipped_bad``.

Owns: the GTZAN layout. Must not: download anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key

SUFFIXES = (".wav", ".au")


class GTZAN(Recipe):
    name = "gtzan"
    layout = """\
ROOT/genres_original/<genre>/<genre>.000NN.wav   (Kaggle copy; or ROOT/Data/genres_original/)
ROOT/genres/<genre>/<genre>.000NN.au             (original tarball)"""
    subsets = ("all",)
    tasks = ("mgr",)

    def _dir(self, root: Path) -> Path:
        for d in (root / "genres_original", root / "Data" / "genres_original", root / "genres"):
            if d.is_dir():
                return d
        raise self.missing(root / "genres_original", "the genre folders")

    def check(self, root: Path, subset: str) -> None:
        self._dir(root)

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        base = self._dir(root)
        for genre in sorted(p.name for p in base.iterdir() if p.is_dir()):
            for name in sorted(os.listdir(base / genre)):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in SUFFIXES:
                    continue
                yield RawItem(
                    key=make_key(self.name, *stem.split(".")),
                    audio=str(base / genre / name),
                    task="mgr",
                    target=genre,
                    text_language="en",
                    meta={"file_name": name},
                    long_audio="windows",
                )


RECIPE = GTZAN()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
