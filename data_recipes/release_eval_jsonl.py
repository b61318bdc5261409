"""The Qwen-Audio release's evaluation jsonl files (``eval_audio/``) -> shards, one shard set per source and task.

The release describes each eval set as JSON lines (``librispeech_eval.jsonl``, ``covost2_eval.jsonl``,
``clotho_eval.jsonl``, ``cochlscene_eval.jsonl``, ``clothoaqa_eval.jsonl``, ``nsynth_eval.jsonl`` ...)::

    {"audio": "<path>", "gt": "<reference>", "source": "<name>", ...task keys ("question", "lang", "prompt")}

    python -m data_recipes.release_eval_jsonl --root DATA_DIR --out OUT [--jsonl FILE ...] [--task T]
                                              [--language L] [--subsets SOURCE ...]

ROOT is the folder the ``audio`` paths are relative to (absolute paths are used as they are); ``--jsonl`` names
the files (absolute, relative to the working directory, or relative to ROOT; default every ``*.jsonl`` in ROOT).
The subsets are the ``source`` names found (the release groups its scores by them); a sample's ``source`` is
``<corpus>/<source name>`` (``librispeech/librispeech_test_clean``), ``meta.release_source`` the name as written.

Tasks come from ``--task``, else a ``gt`` that starts with a time token (``srwt``), else the source name's prefix:

================  ======  ==============================================================================
prefix            task    fields
================  ======  ==============================================================================
librispeech       asr     language en (``lang``/``language`` key or ``--language`` override it)
aishell           asr     language zh
covost2           s2tt    languages from the name ``..._<src>_<tgt>_<split>`` as the release parses them
clotho            aac     ``gt`` a caption or a list of them: target the first, ``meta.captions`` all
clothoaqa         aqa     ``meta.question`` from the ``question`` key (required)
cochlscene        asc
tut2017           asc
meld              er      audio language en
vocalsound        vsc
nsynth            mna     ``gt`` in the release's tagged form, parsed into pitch/velocity/instrument/sonic
================  ======  ==============================================================================

SRWT lines (``gt`` like ``<|0.00|><|sil|><|0.54|>面<|0.86|>...``) become ``words`` and a plain transcript (words
joined by spaces, or directly for zh/ja); their language comes from the prefix or ``--language``. A line's
``prompt`` key is kept in ``meta.prompt``. Keys are ``<source>-<line number>-<audio stem>``. Clips over 30 s are
skipped.

Owns: reading the release's jsonl and mapping its sources to tasks. Must not: download anything.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_recipes.common import RawItem, Recipe, main_with_options, make_key
from qwenaudio_train.data.schema import Word
from qwenaudio_train.formats import parse_mna, parse_srwt
from qwenaudio_train.tags import TAG_LANGUAGES, TIME_TOKEN_RE

# (prefix, task, default language of the audio/text); longest prefixes first ("clothoaqa" before "clotho").
PREFIXES: tuple[tuple[str, str, str | None], ...] = (
    ("clothoaqa", "aqa", None),
    ("clotho", "aac", None),
    ("librispeech", "asr", "en"),
    ("aishell", "asr", "zh"),
    ("covost2", "s2tt", None),
    ("cochlscene", "asc", None),
    ("tut2017", "asc", None),
    ("meld", "er", "en"),
    ("vocalsound", "vsc", None),
    ("nsynth", "mna", None),
)
NO_SPACE_LANGUAGES = ("zh", "ja", "zh_tr")


@dataclass
class _Line:
    subset: str
    index: int
    where: str
    audio: Path
    item: dict[str, Any]  # RawItem fields except key/audio


def _prefix(source: str) -> tuple[str, str, str | None] | None:
    low = source.lower()
    return next((p for p in PREFIXES if low.startswith(p[0])), None)


def _language(value: Any, where: str) -> str:
    lang = str(value).strip().lower()
    if lang not in TAG_LANGUAGES:
        raise ValueError(f"{where}: language {value!r} is not one of {', '.join(TAG_LANGUAGES)}")
    return lang


def line_fields(
    line: dict[str, Any], where: str, task: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """RawItem fields (task, target, text_language, audio_language, words, meta) of one jsonl line."""
    for k in ("audio", "gt", "source"):
        if k not in line:
            raise ValueError(f"{where}: line lacks {k!r} (the release's lines have audio, gt and source)")
    source, gt = str(line["source"]), line["gt"]
    known = _prefix(source)
    if task is None:
        if isinstance(gt, str) and TIME_TOKEN_RE.match(gt):
            task = "srwt"
        elif known is not None:
            task = known[1]
        else:
            raise ValueError(
                f"{where}: source {source!r} has no known prefix ({', '.join(p for p, _, _ in PREFIXES)}); pass --task"
            )
    lang_value = line.get("lang") or line.get("language") or language or (known[2] if known else None)
    meta: dict[str, Any] = {"release_source": source}
    if "prompt" in line:
        meta["prompt"] = line["prompt"]
    out: dict[str, Any] = {"task": task, "text_language": "en", "audio_language": None, "words": None, "meta": meta}

    if task in ("asr", "srwt"):
        if lang_value is None:
            raise ValueError(f"{where}: no language for {task} source {source!r}; pass --language")
        lang = _language(lang_value, where)
        out.update(text_language=lang, audio_language=lang)
        if task == "srwt":
            words = parse_srwt(str(gt))
            if not words:
                raise ValueError(f"{where}: srwt gt has no timed words: {gt!r}")
            out["words"] = [Word(w, s, e) for w, s, e in words]
            meta["release_gt"] = str(gt)  # the tagged form, trailing <|sil|> included (words cannot carry it)
            out["target"] = ("" if lang in NO_SPACE_LANGUAGES else " ").join(w for w, _, _ in words)
        else:
            out["target"] = str(gt).strip()
    elif task == "s2tt":
        parts = source.split("_")
        if len(parts) < 3:
            raise ValueError(f"{where}: s2tt source {source!r} is not '<name>_<src>_<tgt>_<split>'")
        out.update(
            audio_language=_language(parts[-3], where),
            text_language=_language(parts[-2], where),
            target=str(gt).strip(),
        )
    elif task == "aac":
        captions = [str(c).strip() for c in (gt if isinstance(gt, list) else [gt]) if str(c).strip()]
        if not captions:
            raise ValueError(f"{where}: empty caption gt")
        meta["captions"] = captions
        if known is not None and known[0] == "clotho":
            meta["caption_style"] = "clotho"
        out["target"] = captions[0]
    elif task in ("aqa", "mqa"):
        if not str(line.get("question") or "").strip():
            raise ValueError(f"{where}: {task} line lacks a 'question'")
        meta["question"] = str(line["question"]).strip()
        out["target"] = str(gt).strip()
    elif task == "mna":
        note = parse_mna(str(gt))
        if note.pitch is None or note.velocity is None or not note.instrument:
            raise ValueError(f"{where}: mna gt is not '<|pitch|><|midi_pitch_N|><|velocity|>...': {gt!r}")
        meta.update(
            pitch=note.pitch, velocity=note.velocity, instrument=note.instrument, sonic=note.sonic, release_gt=str(gt)
        )
        out["target"] = note.instrument
    else:
        labels = [str(g).strip() for g in gt] if isinstance(gt, list) else None
        out["target"] = ", ".join(labels) if labels else str(gt).strip()
        if task in ("sec", "mic"):
            meta["labels"] = labels or [out["target"]]
        if task == "er" and lang_value:
            out["audio_language"] = _language(lang_value, where)
    if not out["target"]:
        raise ValueError(f"{where}: empty gt")
    return out


class ReleaseEvalJsonl(Recipe):
    name = "release_eval"
    layout = """\
ROOT/<...>.jsonl          {"audio": path, "gt": reference, "source": name, ...} per line (--jsonl FILE ...)
ROOT/<audio paths>        the audio each line names, relative to ROOT"""
    tasks = ()

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        jsonl: list[str] | None = None,
        task: str | None = None,
        language: str | None = None,
    ) -> None:
        self.subsets = ()
        self.lines: dict[str, list[_Line]] = {}
        self.corpus: dict[str, str] = {}
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
        n = 0
        for path in files:
            with open(path, encoding="utf-8") as f:
                for lineno, text in enumerate(f, 1):
                    if not text.strip():
                        continue
                    where = f"{path.name}:{lineno}"
                    try:
                        line = json.loads(text)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{where}: not valid JSON ({e})") from e
                    fields = line_fields(line, where, task, language)
                    source = str(line["source"])
                    subset = make_key(source)
                    known = _prefix(source)
                    self.corpus[subset] = known[0] if known else "release"
                    audio = Path(str(line["audio"]))
                    self.lines.setdefault(subset, []).append(
                        _Line(subset, n, where, audio if audio.is_absolute() else root_p / audio, fields)
                    )
                    n += 1
        self.subsets = tuple(self.lines)
        self.tasks = tuple(dict.fromkeys(ln.item["task"] for lines in self.lines.values() for ln in lines))

    def _find(self, root: Path, name: str) -> Path:
        for p in (Path(name), root / name):
            if p.is_file():
                return p
        raise self.missing(root / name, "the eval jsonl")

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ln.item["task"] for ln in self.lines[subset]))

    def source(self, subset: str) -> str:
        return f"{self.corpus[subset]}/{subset}"

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        for ln in self.lines[subset]:
            if ln.item["task"] != task:
                continue
            if not ln.audio.is_file():
                raise self.missing(ln.audio, f"audio of {ln.where}")
            stem = os.path.splitext(ln.audio.name)[0][:40]
            yield RawItem(key=make_key(subset, f"{ln.index:07d}", stem), audio=str(ln.audio), **ln.item)


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
