"""Your own data: a manifest (JSONL or CSV, one row per clip) -> shards of any registry task, split train/valid/test.

    python -m data_recipes.manifest --manifest my.jsonl --out OUT [--audio-root DIR] [--valid-fraction 0.05]
        [--test-fraction 0.05] [--name NAME] [--long-audio skip|windows|keep] [--max-bad-fraction 0.05]
        [--max-samples N] [--workers N] [--shard-samples N]

The format is chosen by the extension (``.jsonl``: one JSON object per line; ``.csv``: a header line, UTF-8).
Columns (JSONL keys or CSV header names)::

    audio           required  the clip's path, relative to the manifest's folder (or --audio-root); any format,
                              rate and channel count soundfile reads (stored as 16 kHz mono FLAC)
    task            required  a registry task (`qwenaudio-data tasks`): asr, srwt, sec, aac, aqa, ...
    text_language   required  language of the target, a tag language (en, zh, de, ...)
    target          the text the model must produce after the task's tags (transcript, label, caption, answer);
                    may be empty where the task builds its target from other fields: srwt (words), lid
                    (audio_language), mna (meta pitch/velocity/instrument), sd (meta.segments), sed (meta.events).
                    In JSONL a list of labels is joined with ", "
    audio_language  spoken language; empty/null for sounds and music (transcript tasks default to text_language)
    words           word timings [{"word", "start", "end"}] in seconds (srwt); in CSV a JSON string
    split           train | valid | test (dev, val, validation mean valid); empty: hashed from the key (below)
    key             an id unique per task; default: the audio path as written, without its extension
    meta            a JSON object of task fields (question, labels, entities, segments, ...); in CSV a JSON string
    (any other)     copied into meta: a `question` column serves aqa/mqa directly

Conventions filled in when absent, as ``hf_datasets`` does: ``sec``/``mic`` ``meta.labels`` (the target split at
", "), ``lid`` ``meta.language``, and the audio language of transcript tasks. Rows without ``split`` go to test when
``u < test_fraction``, to valid when ``u < test_fraction + valid_fraction``, where ``u`` in [0, 1) is a hash of the
key: rows sharing a key (one clip in several tasks) share a split, so a test clip never leaks into train.

Output: the common recipe layout (``data_recipes/common.py``): ``OUT/<split>/<task>/shard-*.tar`` + ``manifest.json``
for every (split, task) with rows, and the summary ``OUT/manifest.json``. A mixture source is ``OUT/train/<task>``;
the held-out sets of every task are ``OUT/valid/*/*.tar`` and ``OUT/test/*/*.tar``. Samples' source is
``<name>/<split>`` (``--name`` defaults to the manifest's file stem), keys ``<name>-<key>``.

Checks before anything is written: every row is read and run through its task's tag and target builders, and every
problem (missing column, unknown task, bad JSON, unknown language, a target the task cannot use, duplicate key) is
listed by row, line and column in one ``ManifestError``. Then every audio file's header is read: missing or
unreadable audio stops the run when more than ``--max-bad-fraction`` of the rows have it; below that, those rows are
converted as bad (skipped, counted as ``skipped_bad`` and listed in the summary's ``bad``, as in every recipe).
Clips over 30 s follow the common long-audio policy: skipped and counted (default); ``--long-audio windows`` cuts
them into 30-s windows carrying the clip's target, for clip-level tasks only (rows of transcript and timestamp
tasks are still skipped: their target cannot follow a cut); ``--long-audio keep`` keeps every row whole up to
600 s (``common.MAX_KEEP_S``), timestamp tasks included (times past 30 s get window markers, docs/long_audio.md).

Owns: reading and checking a user's manifest. Must not: decode audio beyond headers (common.py does) or guess a
task's target format (the task registry's formatters decide).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from data_recipes.common import LONG_AUDIO_S, RawItem, Recipe, convert, main, make_key
from data_recipes.hf_datasets import LABEL_TASKS, SPEECH_SAME_LANGUAGE
from qwenaudio_train.audio import load_audio
from qwenaudio_train.data.schema import SampleError, SampleMeta, Word
from qwenaudio_train.tasks import TASKS

SPLITS = ("train", "valid", "test")
SPLIT_NAMES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "dev": "valid",
    "validation": "valid",
    "test": "test",
}
REQUIRED = ("audio", "task", "text_language")
COLUMNS = REQUIRED + ("target", "audio_language", "words", "split", "key", "meta")
FORMATS = (".jsonl", ".csv")
# Tasks scored on text that follows the audio in time (transcripts, timestamps): a window of a long clip would carry
# words it does not contain, so their long clips are always skipped.
TIME_ALIGNED_METRICS = ("wer", "bleu", "srwt", "sd", "sed", "entity_f1")
WORD_TOLERANCE_S = 0.01  # as check_shards: a word may end one 10-ms frame after the decoded clip
MAX_LISTED = 20


class ManifestError(ValueError):
    """The manifest cannot be converted; the message lists every problem by row, line and column."""


class _RowProblem(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass
class _Row:
    number: int  # data row, 1-based (header and blank lines not counted)
    line: int
    audio: Path
    split: str | None  # None: hashed from base_key once keys are known
    base_key: str
    explicit_key: bool
    item: RawItem


def _listing(problems: list[str]) -> str:
    shown = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"\n  {shown}{more}"


def _read_audio(path: str, label: str) -> np.ndarray:
    """The clip at 16 kHz mono; AudioError (counted as bad by common.prepare) names the row and the column."""
    return load_audio(path, name=label)


def _cell(raw: dict[str, Any], column: str) -> Any:
    """A cell's value, None when absent, null or blank (CSV cells are strings; JSONL values keep their type)."""
    value = raw.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value.strip() if isinstance(value, str) else value


def _json_cell(raw: dict[str, Any], column: str, kind: type) -> Any:
    """A JSON value (a JSON string in CSV, or JSON already in JSONL) of the expected kind, or None."""
    value = _cell(raw, column)
    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise _RowProblem(column, f"not valid JSON ({e.msg} at character {e.pos}): {value[:60]!r}") from None
    if value is not None and not isinstance(value, kind):
        raise _RowProblem(column, f"must be a JSON {'object' if kind is dict else 'list'}, got {type(value).__name__}")
    return value


def _words(raw: dict[str, Any]) -> list[Word] | None:
    value = _json_cell(raw, "words", list)
    if value is None:
        return None
    words, prev = [], 0.0
    for i, w in enumerate(value):
        try:
            word = Word(str(w["word"]).strip(), float(w["start"]), float(w["end"]))
        except (KeyError, TypeError, ValueError):
            raise _RowProblem("words", f"word {i} must be an object {{word, start, end}}, got {w!r}") from None
        if not word.word or not (prev - 1e-6 <= word.start <= word.end):
            raise _RowProblem(
                "words", f"word {i} {word.word!r} [{word.start}, {word.end}]: empty, end before start, or out of order"
            )
        prev = word.start
        words.append(word)
    return words


def _target(raw: dict[str, Any]) -> tuple[str, list[str] | None]:
    value = _cell(raw, "target")
    if isinstance(value, list):  # JSONL labels of a multi-label clip
        labels = [str(v).strip() for v in value if str(v).strip()]
        return ", ".join(labels), labels
    if isinstance(value, dict):
        raise _RowProblem("target", "must be text (or a JSONL list of labels), got an object")
    return ("" if value is None else str(value).strip()), None


def _hash_unit(key: str) -> float:
    """A number in [0, 1) fixed by the key: the split does not depend on row order or on the machine."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | _RowProblem]]:
    with open(path, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield line, _RowProblem(None, f"not valid JSON ({e.msg} at character {e.pos})")
                continue
            yield line, (obj if isinstance(obj, dict) else _RowProblem(None, "must be a JSON object {...}"))


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | _RowProblem]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        absent = [c for c in REQUIRED if c not in header]
        if absent:
            raise ManifestError(
                f"{path}: the header line lacks column(s) {absent} (required: {', '.join(REQUIRED)}; "
                f"optional: {', '.join(COLUMNS[len(REQUIRED) :])}); it has {header}"
            )
        reader.fieldnames = header
        start = reader.line_num + 1
        for raw in reader:
            if None in raw:
                yield start, _RowProblem(None, f"{len(header) + len(raw[None])} fields, the header has {len(header)}")
            else:
                yield start, raw
            start = reader.line_num + 1


class ManifestRecipe(Recipe):
    """The rows of one manifest as a recipe: subsets are the splits present, tasks those present in each split."""

    layout = """\
MANIFEST.jsonl    {"audio": "clips/a.wav", "task": "asr", "target": "hello", "text_language": "en", ...} per line
MANIFEST.csv      header audio,task,target,text_language[,audio_language,words,split,key,meta,...]
<audio root>/...  the clips, paths relative to the manifest's folder or --audio-root"""
    subsets = SPLITS

    def __init__(
        self,
        manifest: str | os.PathLike[str],
        audio_root: str | os.PathLike[str] | None = None,
        valid_fraction: float = 0.05,
        test_fraction: float = 0.05,
        name: str | None = None,
        long_audio: str = "skip",
        max_bad_fraction: float = 0.05,
    ) -> None:
        self.path = Path(manifest)
        if self.path.suffix.lower() not in FORMATS:
            raise ManifestError(f"{self.path}: a manifest is {' or '.join(FORMATS)} (chosen by the extension)")
        if not self.path.is_file():
            raise ManifestError(f"manifest not found: {os.fspath(self.path)!r}")
        if not (0 <= valid_fraction and 0 <= test_fraction and valid_fraction + test_fraction < 1):
            raise ManifestError(
                f"--valid-fraction {valid_fraction} and --test-fraction {test_fraction}: need 0..1, sum < 1"
            )
        if long_audio not in ("skip", "windows", "keep"):
            raise ManifestError(f"--long-audio must be skip, windows or keep, got {long_audio!r}")
        self.root = Path(audio_root) if audio_root is not None else self.path.parent
        self.name = name or make_key(self.path.stem)
        self.valid_fraction, self.test_fraction = valid_fraction, test_fraction
        self.long_audio, self.max_bad_fraction = long_audio, max_bad_fraction
        self.rows = self._read()
        self.bad_audio = self._probe()
        self.sets: dict[tuple[str, str], list[RawItem]] = {}  # (split, task) -> items in manifest order
        for r in self.rows:
            self.sets.setdefault((str(r.split), r.item.task), []).append(r.item)
        self.tasks = tuple(t for t in TASKS if any(task == t for _, task in self.sets))

    # -- the Recipe API ---------------------------------------------------------------------------------------
    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if any(split == s for split, _ in self.sets))

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if (subset, t) in self.sets)

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        yield from self.sets.get((subset, task), [])

    # -- reading and checking ---------------------------------------------------------------------------------
    def _where(self, number: int, line: int) -> str:
        return f"{self.path.name} row {number} (line {line})"

    def _read(self) -> list[_Row]:
        reader = _read_jsonl if self.path.suffix.lower() == ".jsonl" else _read_csv
        rows: list[_Row] = []
        problems: list[str] = []
        number = 0
        for line, raw in reader(self.path):
            number += 1
            try:
                if isinstance(raw, _RowProblem):
                    raise raw
                rows.append(self._row(raw, number, line))
            except _RowProblem as p:
                column = f", column {p.column!r}" if p.column else ""
                problems.append(f"{self._where(number, line)}{column}: {p}")
        if not number:
            raise ManifestError(f"{self.path}: no rows")
        problems += self._assign_keys_and_splits(rows)
        if problems:
            raise ManifestError(f"{self.path}: {len(problems)} row(s) cannot be converted:{_listing(problems)}")
        return rows

    def _row(self, raw: dict[str, Any], number: int, line: int) -> _Row:
        absent = [c for c in REQUIRED if _cell(raw, c) is None]
        if absent:
            raise _RowProblem(absent[0], f"missing or empty (required columns: {', '.join(REQUIRED)})")
        task_name = str(raw["task"]).strip().lower()
        if task_name not in TASKS:
            raise _RowProblem("task", f"unknown task {task_name!r}; valid tasks: {', '.join(TASKS)}")
        task = TASKS[task_name]
        text_language = str(_cell(raw, "text_language"))
        audio_language = _cell(raw, "audio_language")
        audio_language = str(audio_language) if audio_language is not None else None
        if audio_language is None and task_name in SPEECH_SAME_LANGUAGE:
            audio_language = text_language
        words = _words(raw)
        meta: dict[str, Any] = dict(_json_cell(raw, "meta", dict) or {})
        for column in raw:  # other columns are task fields (e.g. `question`); meta's JSON wins
            if column and column not in COLUMNS and _cell(raw, column) is not None:
                meta.setdefault(column, _cell(raw, column))
        target, labels = _target(raw)
        if not target and words and task_name == "srwt":
            target = " ".join(w.word for w in words)  # the plain transcript, for readers of the shard
        if task_name in LABEL_TASKS and target:
            meta.setdefault("labels", labels or [s.strip() for s in target.split(",") if s.strip()])
        if task_name == "lid" and audio_language:
            meta.setdefault("language", audio_language)
        split = _cell(raw, "split")
        if split is not None and str(split).lower() not in SPLIT_NAMES:
            raise _RowProblem("split", f"{split!r} is not one of {', '.join(SPLIT_NAMES)}")
        split = SPLIT_NAMES[str(split).lower()] if split is not None else None
        audio_text = str(raw["audio"]).strip()
        audio = Path(audio_text).expanduser()
        audio = audio if audio.is_absolute() else self.root / audio
        key = _cell(raw, "key")
        base_key = str(key) if key is not None else os.path.splitext(audio_text)[0]
        label = f"{self._where(number, line)}, column 'audio' ({audio_text})"
        item = RawItem(
            key=base_key,  # made unique and prefixed by _assign_keys_and_splits
            audio=partial(_read_audio, os.fspath(audio), label),
            task=task_name,
            target=target,
            text_language=text_language,
            audio_language=audio_language,
            words=words,
            meta=meta,
            long_audio=self.long_audio
            if self.long_audio == "keep" or task.metric not in TIME_ALIGNED_METRICS
            else "skip",
        )
        # The task's own builders decide whether the row is usable (languages are tags, required meta fields
        # present, a label in the task's closed set): a row that would fail in training fails here instead.
        probe = SampleMeta(task_name, text_language, target, 1.0, self.name, audio_language, words, meta)
        try:
            task.tags(probe).render()
            formatted = task.format_target(probe)
        except (SampleError, ValueError) as e:
            raise _RowProblem(None, f"task {task_name!r} cannot use this row: {e}") from None
        if not formatted.strip():
            raise _RowProblem("target", f"missing or empty (task {task_name!r} trains on it)")
        return _Row(number, line, audio, split, base_key, key is not None, item)

    def _assign_keys_and_splits(self, rows: list[_Row]) -> list[str]:
        problems: list[str] = []
        taken: dict[tuple[str, str], _Row] = {}
        repeats: dict[tuple[str, str], int] = {}
        for r in rows:
            key = make_key(self.name, r.base_key)
            if not r.explicit_key:  # the same clip twice in a task (e.g. several captions): number the repeats
                n = repeats[(r.item.task, key)] = repeats.get((r.item.task, key), 0) + 1
                key = key if n == 1 else f"{key}-{n}"
            other = taken.get((r.item.task, key))
            if other is not None:
                problems.append(
                    f"{self._where(r.number, r.line)}, column 'key': key {r.base_key!r} gives shard key {key!r}, "
                    f"already used for task {r.item.task!r} by row {other.number} (keys must be unique per task)"
                )
                continue
            taken[(r.item.task, key)] = r
            r.item.key = key
            if r.split is None:
                u = _hash_unit(r.base_key)
                r.split = (
                    "test"
                    if u < self.test_fraction
                    else "valid"
                    if u < self.test_fraction + self.valid_fraction
                    else "train"
                )
        return problems

    def _probe(self) -> dict[str, str]:
        """Read every clip's header: {path: problem} of missing/unreadable audio. Word timings are checked against
        the clip's length; the run stops past max_bad_fraction of bad rows."""
        seconds: dict[str, float] = {}
        bad: dict[str, str] = {}
        for path in dict.fromkeys(os.fspath(r.audio) for r in self.rows):
            if not os.path.isfile(path):
                bad[path] = f"audio file not found at {path!r}"
                continue
            try:
                info = sf.info(path)
            except (sf.SoundFileError, RuntimeError) as e:
                reason = (getattr(e, "error_string", None) or str(e)).strip()
                bad[path] = f"not a readable audio file ({reason})"
                continue
            if not info.frames or not info.samplerate:
                bad[path] = "contains no audio samples"
                continue
            seconds[path] = info.frames / info.samplerate
        problems, bad_rows = [], []
        for r in self.rows:
            path = os.fspath(r.audio)
            if path in bad:
                bad_rows.append(f"{self._where(r.number, r.line)}, column 'audio': {bad[path]}")
            elif (
                r.item.words
                and seconds[path] <= LONG_AUDIO_S
                and r.item.words[-1].end > seconds[path] + WORD_TOLERANCE_S
            ):
                w = r.item.words[-1]
                problems.append(
                    f"{self._where(r.number, r.line)}, column 'words': word {w.word!r} ends at {w.end} s, after the "
                    f"end of the {seconds[path]:.2f}-s clip"
                )
        if problems:
            raise ManifestError(f"{self.path}: {len(problems)} row(s) cannot be converted:{_listing(problems)}")
        if len(bad_rows) > self.max_bad_fraction * len(self.rows):
            raise ManifestError(
                f"{self.path}: {len(bad_rows)} of {len(self.rows)} rows have missing or unreadable audio (more than "
                f"--max-bad-fraction {self.max_bad_fraction}; audio paths are relative to {os.fspath(self.root)!r}):"
                f"{_listing(bad_rows)}"
            )
        return bad


def convert_manifest(
    manifest: str | os.PathLike[str],
    out: str | os.PathLike[str],
    audio_root: str | os.PathLike[str] | None = None,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    name: str | None = None,
    long_audio: str = "skip",
    max_bad_fraction: float = 0.05,
    max_samples: int | None = None,
    workers: int = 1,
    max_count: int = 1000,
) -> dict[str, Any]:
    """Check the manifest and convert it to ``out/<split>/<task>/`` shard sets; return the summary (see the module
    docstring). ManifestError lists what is wrong before anything is written."""
    recipe = ManifestRecipe(manifest, audio_root, valid_fraction, test_fraction, name, long_audio, max_bad_fraction)
    return convert(recipe, recipe.root, out, max_samples=max_samples, workers=workers, max_count=max_count)


def cli(argv: Sequence[str] | None = None) -> int:
    """``python -m data_recipes.manifest``; exit status 2 for a manifest that cannot be converted."""
    parser = argparse.ArgumentParser(
        prog="python -m data_recipes.manifest",
        description=(__doc__ or "").split("\nOwns:")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", required=True, help="the manifest: FILE.jsonl or FILE.csv")
    parser.add_argument("--out", required=True, help="output directory: OUT/<split>/<task>/ shard sets")
    parser.add_argument(
        "--audio-root", default=None, help="base of relative audio paths (default: the manifest's folder)"
    )
    parser.add_argument("--valid-fraction", type=float, default=0.05, help="rows without split hashed to valid (0.05)")
    parser.add_argument("--test-fraction", type=float, default=0.05, help="rows without split hashed to test (0.05)")
    parser.add_argument("--name", default=None, help="corpus name for sources and keys (default: the manifest's stem)")
    parser.add_argument(
        "--long-audio",
        choices=("skip", "windows", "keep"),
        default="skip",
        help="clips over 30 s: skip (default), 30-s windows (clip-level tasks only) or keep whole (up to 600 s)",
    )
    parser.add_argument(
        "--max-bad-fraction", type=float, default=0.05, help="stop when more rows than this have bad audio (0.05)"
    )
    parser.add_argument("--max-samples", type=int, default=None, help="at most N samples per shard set")
    parser.add_argument("--workers", type=int, default=1, help="decoding/encoding processes (default 1)")
    parser.add_argument("--shard-samples", type=int, default=1000, help="samples per shard tar (default 1000)")
    args = parser.parse_args(argv)
    try:
        recipe = ManifestRecipe(
            args.manifest,
            args.audio_root,
            args.valid_fraction,
            args.test_fraction,
            args.name,
            args.long_audio,
            args.max_bad_fraction,
        )
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The uniform recipe CLI does the conversion and prints the per-set lines and totals like every recipe.
    rest = ["--root", os.fspath(recipe.root), "--out", args.out, "--workers", str(args.workers)]
    rest += ["--shard-samples", str(args.shard_samples)]
    rest += ["--max-samples", str(args.max_samples)] if args.max_samples is not None else []
    return main(recipe, rest)


if __name__ == "__main__":
    sys.exit(cli())
