"""ESC-50 environmental sound classification -> ``sec`` shards.

Raw layout (the GitHub archive ``ESC-50-master`` as ROOT)::

    ROOT/meta/esc50.csv    filename,fold,target,category,esc10,src_file,take
    ROOT/audio/<filename>  5-s clips, 44.1 kHz mono

    python -m data_recipes.esc50 --root ROOT --out OUT [--subsets fold1 ... fold5]

Subsets are the five cross-validation folds (``fold1``..``fold5``; ESC-50 has no fixed train/test split).
Samples: ``task="sec"``, ``target`` the category with underscores read as spaces (``pouring water``),
``meta.labels`` ``[target]``, ``meta.class_id`` (the CSV's ``target``), ``meta.fold``, ``meta.esc10``.
Keys are ``esc50-<file stem>``.

Owns: the ESC-50 layout. Must not: download anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.clotho import read_csv, readable
from data_recipes.common import RawItem, Recipe, main, make_key


class ESC50(Recipe):
    name = "esc50"
    layout = """\
ROOT/meta/esc50.csv     filename,fold,target,category,esc10,src_file,take
ROOT/audio/<filename>   the clips (wav)"""
    subsets = ("fold1", "fold2", "fold3", "fold4", "fold5")
    tasks = ("sec",)

    def check(self, root: Path, subset: str) -> None:
        self.require(root / "meta" / "esc50.csv", "the metadata CSV")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        csv_path = root / "meta" / "esc50.csv"
        fold = subset.removeprefix("fold")
        for row in read_csv(csv_path):
            if (row.get("fold") or "").strip() != fold:
                continue
            name, category = (row.get("filename") or "").strip(), (row.get("category") or "").strip()
            if not name or not category:
                raise ValueError(f"{csv_path}: a row lacks filename or category: {row}")
            audio = root / "audio" / name
            if not audio.is_file():
                raise self.missing(audio, f"audio of {name!r} (listed in {csv_path.name})")
            label = readable(category)
            meta = {
                "labels": [label],
                "class_id": int(row["target"]),
                "fold": int(fold),
                "esc10": (row.get("esc10") or "").strip().lower() == "true",
            }
            # ESC-50's labels are clip-level but its clips are 5 s: no windows needed; skip is the safe policy
            # for events that may occur once.
            yield RawItem(
                key=make_key(self.name, os.path.splitext(name)[0]),
                audio=str(audio),
                task="sec",
                target=label,
                text_language="en",
                meta=meta,
            )


RECIPE = ESC50()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
