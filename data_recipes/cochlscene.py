"""CochlScene acoustic scene classification -> ``asc`` shards.

Raw layout (the Zenodo release extracted; ROOT may be the folder holding ``CochlScene/`` or that folder)::

    ROOT/{Train,Val,Test}/<Scene>/<file>.wav    10-s clips, 44.1 kHz; 13 scenes (Bus, Cafe, Car, CrowdedIndoor,
                                                Elevator, Kitchen, Park, ResidentialArea, Restaurant, Restroom,
                                                Street, Subway, SubwayStation)

    python -m data_recipes.cochlscene --root ROOT --out OUT [--subsets train val test]

Samples: ``task="asc"``, ``target`` the scene folder name as the corpus writes it (``CrowdedIndoor``),
``meta.file_name``. Subsets ``train``/``val``/``test`` read ``Train``/``Val``/``Test``
(without ``--subsets``, those present). A scene label holds for
any part of the recording, so clips over 30 s (none in the release) are split into 30-s windows.

Owns: the CochlScene layout. Must not: download anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.clotho import AUDIO_SUFFIXES
from data_recipes.common import RawItem, Recipe, main, make_key, present_subsets

SPLIT_DIRS = {"train": "Train", "val": "Val", "test": "Test"}


class CochlScene(Recipe):
    name = "cochlscene"
    layout = """\
ROOT/{Train,Val,Test}/<Scene>/*.wav     (or ROOT/CochlScene/{Train,Val,Test}/...)"""
    subsets = ("train", "val", "test")
    tasks = ("asc",)

    def _dir(self, root: Path, subset: str) -> Path:
        for base in (root, root / "CochlScene"):
            if (base / SPLIT_DIRS[subset]).is_dir():
                return base / SPLIT_DIRS[subset]
        raise self.missing(root / SPLIT_DIRS[subset], f"the {SPLIT_DIRS[subset]} folder")

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        split_dir = self._dir(root, subset)
        if not any(p.is_dir() for p in split_dir.iterdir()):
            raise self.missing(split_dir / "<Scene>", f"scene folders in {split_dir}")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        split_dir = self._dir(root, subset)
        for scene in sorted(p.name for p in split_dir.iterdir() if p.is_dir()):
            for name in sorted(os.listdir(split_dir / scene)):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in AUDIO_SUFFIXES:
                    continue
                yield RawItem(
                    key=make_key(self.name, subset, scene, stem),
                    audio=str(split_dir / scene / name),
                    task="asc",
                    target=scene,
                    text_language="en",
                    meta={"file_name": name},
                    long_audio="windows",
                )


RECIPE = CochlScene()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
