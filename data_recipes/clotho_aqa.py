"""Clotho-AQA audio question answering -> ``aqa`` shards.

Raw layout (the Zenodo release, ``audio_files.zip`` extracted in place)::

    ROOT/clotho_aqa_{train,val,test}.csv    file_name,QuestionText,answer,confidence
    ROOT/audio_files/<file_name>            the Clotho clips (wav, 15-30 s)

Every question was answered by three annotators: three rows with the same file_name and QuestionText.

    python -m data_recipes.clotho_aqa --root ROOT --out OUT [--subsets train val test] [--answers majority|each]

Samples: ``task="aqa"``, ``meta.question`` the question, ``target`` the answer, ``meta.answers`` every
annotator's answer and ``meta.confidences`` theirs (``yes``/``maybe``/``no``), ``meta.file_name``.
``--answers majority`` (default) writes one sample per question whose target is the most frequent answer
(ties: the first given); ``each`` writes one sample per row (keys ``...-a1``...). Answers are kept as written
(stripped). Clips over 30 s are skipped (an answer is about the whole clip).

Owns: the Clotho-AQA layout and answer aggregation. Must not: download anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from data_recipes.clotho import read_csv, unique_key
from data_recipes.common import RawItem, Recipe, main_with_options, make_key, present_subsets

ANSWER_MODES = ("majority", "each")


def majority(answers: list[str]) -> str:
    """The most frequent answer; among equally frequent ones, the first given."""
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


class ClothoAQA(Recipe):
    name = "clotho_aqa"
    layout = """\
ROOT/clotho_aqa_{train,val,test}.csv   file_name,QuestionText,answer,confidence (3 rows per question)
ROOT/audio_files/<file_name>           the clips (wav)"""
    subsets = ("train", "val", "test")
    tasks = ("aqa",)

    def __init__(self, answers: str = "majority") -> None:
        if answers not in ANSWER_MODES:
            raise ValueError(f"--answers must be one of {ANSWER_MODES}, got {answers!r}")
        self.answers = answers

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        self.require(root / f"clotho_aqa_{subset}.csv", f"the {subset} question CSV")
        self.require(root / "audio_files", "the audio folder")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        csv_path = root / f"clotho_aqa_{subset}.csv"
        # Group the annotators' rows by (clip, question), keeping the file's order.
        groups: dict[tuple[str, str], list[dict[str, str]]] = {}
        for row in read_csv(csv_path):
            name, question = (row.get("file_name") or "").strip(), (row.get("QuestionText") or "").strip()
            if not name or not question:
                raise ValueError(f"{csv_path}: a row lacks file_name or QuestionText: {row}")
            groups.setdefault((name, question), []).append(row)
        seen: set[str] = set()
        question_no: Counter[str] = Counter()
        for (name, question), rows in groups.items():
            audio = root / "audio_files" / name
            if not audio.is_file():
                raise self.missing(audio, f"audio of {name!r} (listed in {csv_path.name})")
            question_no[name] += 1
            answers = [(r.get("answer") or "").strip() for r in rows]
            confidences = [(r.get("confidence") or "").strip() for r in rows]
            meta = {"question": question, "answers": answers, "confidences": confidences, "file_name": name}
            base = make_key(self.name, subset, os.path.splitext(name)[0], f"q{question_no[name]}")
            if self.answers == "majority":
                target = majority([a for a in answers if a] or [""])
                if target:
                    yield RawItem(
                        key=unique_key(base, seen),
                        audio=str(audio),
                        task="aqa",
                        target=target,
                        text_language="en",
                        meta=meta,
                    )
            else:
                for j, answer in enumerate(answers, 1):
                    if answer:
                        yield RawItem(
                            key=unique_key(f"{base}-a{j}", seen),
                            audio=str(audio),
                            task="aqa",
                            target=answer,
                            text_language="en",
                            meta=meta,
                        )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--answers",
        choices=ANSWER_MODES,
        default="majority",
        help="majority: one sample per question (most frequent answer); each: one per "
        "annotator's answer (default majority)",
    )


RECIPE = ClothoAQA()


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: ClothoAQA(o.answers), add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
