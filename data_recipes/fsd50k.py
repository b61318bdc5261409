"""FSD50K sound event classification (multi-label) -> ``sec`` shards.

Raw layout (the Zenodo zips extracted into ROOT)::

    ROOT/FSD50K.ground_truth/dev.csv     fname,labels,mids,split     (split: train / val)
    ROOT/FSD50K.ground_truth/eval.csv    fname,labels,mids
    ROOT/FSD50K.dev_audio/<fname>.wav    0.3-30 s, 44.1 kHz mono
    ROOT/FSD50K.eval_audio/<fname>.wav

    python -m data_recipes.fsd50k --root ROOT --out OUT [--subsets train val eval]

Samples: ``task="sec"``, ``meta.labels`` the clip's labels in the CSV's order with underscores read as spaces
(``Male speech and man speaking``; FSD50K writes AudioSet names that way, commas included), ``target`` the labels
joined with ``", "``, ``meta.mids`` the AudioSet ids. Labels are weak (clip-level, an event may occur once), so
clips over 30 s are skipped, not windowed (FSD50K caps clips at 30 s).

Owns: the FSD50K layout. Must not: download anything.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.clotho import read_csv, readable
from data_recipes.common import RawItem, Recipe, main, make_key, present_subsets

GT = "FSD50K.ground_truth"


class FSD50K(Recipe):
    name = "fsd50k"
    layout = f"""\
ROOT/{GT}/dev.csv    fname,labels,mids,split     ROOT/FSD50K.dev_audio/<fname>.wav
ROOT/{GT}/eval.csv   fname,labels,mids           ROOT/FSD50K.eval_audio/<fname>.wav"""
    subsets = ("train", "val", "eval")
    tasks = ("sec",)

    @staticmethod
    def _part(subset: str) -> str:
        return "eval" if subset == "eval" else "dev"

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        part = self._part(subset)
        self.require(root / GT / f"{part}.csv", f"the {part} ground-truth CSV")
        self.require(root / f"FSD50K.{part}_audio", f"the {part} audio folder")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        part = self._part(subset)
        csv_path = root / GT / f"{part}.csv"
        for row in read_csv(csv_path):
            if part == "dev":
                split = (row.get("split") or "").strip()
                if not split:
                    raise ValueError(f"{csv_path}: row {row} has no 'split' column value (train/val)")
                if split != subset:
                    continue
            fname = (row.get("fname") or "").strip()
            labels = [readable(x) for x in (row.get("labels") or "").split(",") if x.strip()]
            if not fname or not labels:
                raise ValueError(f"{csv_path}: a row lacks fname or labels: {row}")
            audio = root / f"FSD50K.{part}_audio" / f"{fname}.wav"
            if not audio.is_file():
                raise self.missing(audio, f"audio of clip {fname} (listed in {csv_path.name})")
            mids = [m.strip() for m in (row.get("mids") or "").split(",") if m.strip()]
            yield RawItem(
                key=make_key(self.name, subset, fname),
                audio=str(audio),
                task="sec",
                target=", ".join(labels),
                text_language="en",
                meta={"labels": labels, "mids": mids},
            )


RECIPE = FSD50K()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
