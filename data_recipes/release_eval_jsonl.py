"""The Qwen-Audio release's evaluation jsonl files (``eval_audio/``) -> shards, one shard set per source and task.

The release describes each eval set as JSON lines (``librispeech_eval.jsonl``, ``covost2_eval.jsonl``,
``clotho_eval.jsonl``, ``cochlscene_eval.jsonl``, ``clothoaqa_eval.jsonl``, ``nsynth_eval.jsonl`` ...)::

    {"audio": "<path>", "gt": "<reference>", "source": "<name>", ...task keys ("question", "lang", "prompt")}

    python -m data_recipes.release_eval_jsonl --root DATA_DIR --out OUT [--jsonl FILE ...] [--task T]
                                              [--language L] [--subsets SOURCE ...]

ROOT is the folder the ``audio`` paths are relative to (absolute paths are used as they are); ``--jsonl`` names
the files (absolute, relative to the working directory, or relative to ROOT; default every ``*.jsonl`` in ROOT).
The subsets are the ``source`` names found; tasks come from ``--task``, else from the ``gt``/source name.
The format, the source-prefix -> task table and the fields of each task are the library's
(``qwenaudio_train.eval.release_jsonl``, which ``qwenaudio-eval split=<file>.jsonl`` reads directly, without
shards); this recipe writes the same samples as shards. Clips over 30 s are skipped.

Owns: finding the jsonl files under ROOT and the recipe CLI. Must not: read the release's lines itself (the library
does), or download anything.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main_with_options
from qwenaudio_train.eval.release_jsonl import ReleaseEvalSet


class ReleaseEvalJsonl(Recipe):
    name = "release_eval"
    layout = """\
ROOT/<...>.jsonl          {"audio": path, "gt": reference, "source": name, ...} per line (--jsonl FILE ...)
ROOT/<audio paths>        the audio each line names, relative to ROOT"""
    tasks: tuple[str, ...] = ()

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        jsonl: list[str] | None = None,
        task: str | None = None,
        language: str | None = None,
    ) -> None:
        self.subsets = ()
        self.evalset = ReleaseEvalSet([])
        if root is None:
            return
        root_p = Path(root)
        files = (
            [self._find(root_p, j) for j in jsonl]
            if jsonl
            else sorted(Path(p) for p in glob.glob(str(root_p / "*.jsonl")))
        )
        if not files:
            raise self.missing(root_p / "*.jsonl", "an eval jsonl file")
        self.evalset = ReleaseEvalSet(files, root_p, task, language)
        self.subsets = self.evalset.subsets
        self.tasks = self.evalset.tasks

    def _find(self, root: Path, name: str) -> Path:
        for p in (Path(name), root / name):
            if p.is_file():
                return p
        raise self.missing(root / name, "the eval jsonl")

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return self.evalset.tasks_of(subset)

    def source(self, subset: str) -> str:
        return self.evalset.source(subset)

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        for ln in self.evalset.lines[subset]:
            if ln.fields["task"] != task:
                continue
            if not ln.audio.is_file():
                raise self.missing(ln.audio, f"audio of {ln.where}")
            yield RawItem(key=ln.key, audio=str(ln.audio), **ln.fields)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jsonl", nargs="+", default=None, metavar="FILE", help="eval jsonl files (default: every *.jsonl in ROOT)"
    )
    parser.add_argument("--task", default=None, help="task of every line (default: from the source name)")
    parser.add_argument("--language", default=None, help="language of asr/srwt lines with an unknown source")


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: ReleaseEvalJsonl(root, o.jsonl, o.task, o.language), add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
