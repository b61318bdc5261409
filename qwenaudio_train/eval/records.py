"""Prediction records from any model, read for scoring: the release's result form or ours, one record a line
(JSONL) or one JSON list (the file the release's ``eval_audio/evaluate_*.py`` dump).

* The release's form: ``{"gt", "response", "source", ...}`` (+ ``"task"``, ``"lang"``/``"language"``). The task
  comes from a ``task`` field, else a ``gt`` starting with a time token (``srwt``), else the source name's
  prefix as the release's scripts are chosen (``release_jsonl.PREFIXES``: ``librispeech`` -> asr, ``covost2``
  -> s2tt, ...); the language from a field, else the prefix's default, else for ``covost2_<src>_<tgt>_<split>``
  the target as the release's BLEU takes it (``source.split("_")[-2]``). ``gt`` is kept as written (an SRWT or
  note-analysis ``gt`` in its tagged form; a caption list gives every reference).
* Ours (``eval.json``'s ``predictions``): ``{"task", "source", "lang", "prediction", "reference"}``.
* A benchmark's own answer form (``benchmarks.benchmark_record``): MMAU's submission (``model_prediction``),
  AIR-Bench foundation items with the model's ``response``.

Must not: score (``report.py`` does), read audio, or change ``release_jsonl`` (its prefix map is imported).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwenaudio_train.eval.benchmarks import benchmark_record
from qwenaudio_train.eval.release_jsonl import PREFIXES, source_prefix
from qwenaudio_train.tags import TIME_TOKEN_RE

LANGUAGE_TASKS = ("asr", "srwt", "s2tt")  # tasks whose scorer needs a language


class RecordError(ValueError):
    """A record that cannot be scored as written: the message names the file, the line and the fix."""


def _task(line: dict[str, Any], where: str, task: str | None) -> str:
    if line.get("task") or task:
        return str(line.get("task") or task)
    gt = line.get("gt")
    if isinstance(gt, str) and TIME_TOKEN_RE.match(gt.lstrip()):
        return "srwt"
    known = source_prefix(str(line.get("source", "")))
    if known is None:
        names = ", ".join(p for p, _, _ in PREFIXES)
        raise RecordError(f"{where}: source {line.get('source')!r} has no known prefix ({names}); pass --task")
    return known[1]


def _language(line: dict[str, Any], task: str, language: str | None) -> str | None:
    value = line.get("lang") or line.get("language") or language
    if value:
        return str(value).strip().lower()
    source = str(line.get("source", ""))
    if task == "s2tt" and len(source.split("_")) >= 3:
        return source.split("_")[-2].lower()
    known = source_prefix(source)
    return known[2] if known else None


def to_record(line: dict[str, Any], where: str, task: str | None = None, language: str | None = None) -> dict[str, Any]:
    """One input object as a scoring record (``report.score_records``'s form); RecordError names what is missing."""
    if not isinstance(line, dict):
        raise RecordError(f"{where}: not a JSON object")
    try:
        bench = benchmark_record(line, where)
    except ValueError as e:
        raise RecordError(str(e)) from e
    if bench is not None:
        return bench
    if "source" not in line:
        raise RecordError(f"{where}: no 'source' (records are grouped by it, as the release does)")
    if "prediction" in line and "reference" in line:  # ours
        rec = dict(line)
        rec.setdefault("lang", _language(line, str(line.get("task", "")), language))
        if not rec.get("task"):
            rec["task"] = _task(line, where, task)
        return rec
    missing = [k for k in ("gt", "response") if k not in line]
    if missing:
        raise RecordError(
            f"{where}: lacks {', '.join(map(repr, missing))}: a record is the release's {{gt, response, source}} "
            "or ours {prediction, reference, task, source}"
        )
    name = _task(line, where, task)
    lang = _language(line, name, language)
    if name in LANGUAGE_TASKS and not lang:
        raise RecordError(f"{where}: no language for {name} source {line['source']!r}; add 'lang' or pass --language")
    gt = line["gt"]
    refs = [str(g) for g in gt] if isinstance(gt, list) else [str(gt)]
    rec = {
        "key": str(line.get("key") or line.get("audio_path") or line.get("audio") or where),
        "task": name,
        "source": str(line["source"]),
        "lang": lang,
        "prediction": str(line["response"] or ""),
        "reference": refs[0] if refs else "",
    }
    if len(refs) > 1:
        rec["references"] = refs
    for field in ("metric", "choices", "question"):
        if field in line:
            rec[field] = line[field]
    return rec


def read_records(
    paths: Sequence[str | os.PathLike[str]], task: str | None = None, language: str | None = None
) -> list[dict[str, Any]]:
    """Every record of the files (JSONL, or one JSON list), in order. FileNotFoundError for a missing file,
    RecordError naming ``<file>:<line>`` for a record that cannot be scored."""
    out: list[dict[str, Any]] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"predictions file {os.fspath(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as e:
                raise RecordError(f"{path.name}: not valid JSON ({e})") from e
            out += [to_record(item, f"{path.name}[{i}]", task, language) for i, item in enumerate(items)]
            continue
        for lineno, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as e:
                raise RecordError(f"{path.name}:{lineno}: not valid JSON ({e})") from e
            out.append(to_record(item, f"{path.name}:{lineno}", task, language))
    if not out:
        raise RecordError(f"no records in {', '.join(os.fspath(p) for p in paths)}")
    return out
