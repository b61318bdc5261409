"""Shared machinery of the public-corpus recipes: raw corpus -> ``(key, flac, SampleMeta)`` -> shards + manifest.

A recipe reads a corpus's documented raw layout from a local directory (nothing is downloaded) and yields
``RawItem``s; this module decodes the audio (16 kHz mono), applies the long-audio policy, encodes FLAC, writes one
shard set per (subset, task) with ``qwenaudio_train.data.shards.write_shards`` and a summary manifest.

The API (small and stable: the sound/music recipes use it too)::

    class MyCorpus(Recipe):
        name = "mycorpus"                     # source prefix: every sample's source is "mycorpus/<subset>"
        layout = '''<root>/...'''             # the documented raw layout; shown by --help and in LayoutErrors
        subsets = ("train", "test")           # every subset --subsets accepts
        tasks = ("asr",)                      # tasks produced (override tasks_of(subset) if they differ per subset)

        def default_subsets(self, root):      # optional: what runs without --subsets (default: all subsets)
            return self.subsets
        def check(self, root, subset):        # optional: raise self.missing(path, what) before any work starts
            self.require(root / "index.tsv", "the transcript index")
        def items(self, root, subset, task):  # Iterator[RawItem], in a deterministic order
            yield RawItem(key=make_key("mycorpus", utt), audio=path, task=task, target=text,
                          text_language="en", audio_language="en")

    RECIPE = MyCorpus()
    if __name__ == "__main__":
        sys.exit(main(RECIPE))

* ``RawItem(key, audio, task, target, text_language, audio_language=None, words=None, meta={}, long_audio="skip")``:
  ``audio`` is a path (any format soundfile reads: wav/flac/mp3/ogg), encoded bytes, a float32 16-kHz mono numpy
  array, or a picklable zero-argument callable returning such an array (e.g. ``functools.partial`` of a
  module-level function, for audio built from several files), or ``None`` when the corpus lists a sample whose
  audio its release lacks (a known gap): the item is skipped and counted as ``skipped_missing``. Relative paths
  are not resolved: pass full paths.
* ``long_audio`` says what to do with audio longer than 30 s (``LONG_AUDIO_S``):
  ``"keep"`` (a target that follows the whole clip: transcripts, translations, utterance labels; timed targets
  too, their times past 30 s written with window markers, docs/long_audio.md) keeps it whole up to
  ``max_seconds`` (``--max-seconds``, default ``MAX_KEEP_S`` = 600 s as ``data.max_audio_seconds``; 30 gives
  the old skip) and counts longer ones as ``skipped_long``;
  ``"skip"`` (default: the target cannot be re-based) drops the item and counts it as ``skipped_long``;
  ``"windows"`` (clip-level targets) splits it with ``audio.split_windows`` into 30-s windows keyed
  ``<key>-w000, <key>-w001 ...`` that each carry the item's target and meta (remainders shorter than
  ``MIN_WINDOW_S`` are dropped); a callable ``f(item, index, start_s, end_s) -> RawItem | None`` re-bases a
  timestamped item onto the window ``[start_s, end_s)`` (``None`` drops that window).
* ``make_key(*parts)`` joins parts with ``-`` and replaces anything but ``[A-Za-z0-9_-]`` (dots, slashes,
  spaces) with ``_``: shard keys must be unique and dot-free.
* ``Recipe.require(path, what)`` returns the path or raises ``LayoutError`` naming the missing file and the
  recipe's layout; ``Recipe.missing(path, what)`` builds that error. ``read_delimited(path, delimiter,
  escapechar=None, errors="strict")`` reads a TSV/CSV with a header as a list of dicts (UTF-8; TSV unquoted).
* ``convert(recipe, root, out, subsets=None, max_samples=None, workers=1, max_count=1000)`` runs everything
  and returns the summary; ``main(recipe, argv)`` is the uniform CLI (``main_with_options`` adds a recipe's own
  options; ``present_subsets`` is a ``default_subsets`` that keeps the subsets whose files are present)::

      python -m data_recipes.<corpus> --root RAW_DIR --out OUT_DIR [--subsets A B ...] [--max-samples N]
                                      [--workers N] [--shard-samples N] [--max-seconds S]

Output layout::

    OUT/<subset>/<task>/shard-000000.tar ... + manifest.json   one shard set per (subset, task): a mixture source
    OUT/manifest.json                                          the summary below

Each shard set's manifest is ``write_shards``'s, plus ``"skipped": {"long": n, "bad": n, "missing": n}``.
The summary::

    {"corpus": name, "subsets": {subset: {task: {"dir", "samples", "hours", "skipped_long", "skipped_bad",
                                                 "skipped_missing"}}},
     "tasks": {task: {"samples", "hours"}},
     "totals": {"samples", "hours", "skipped_long", "skipped_bad", "skipped_missing"},
     "bad": [{"key", "message"}...]}   (the first 50 undecodable clips)

Errors: a missing index/transcript/audio file of the layout raises ``LayoutError`` (a ``FileNotFoundError``)
naming the file and describing the expected layout; a clip that exists but does not decode is skipped, counted
(``skipped_bad``), reported on stderr and listed in the summary. ``--max-samples N`` caps every shard set at N
samples (reading stops early), for quick trials.

Owns: the recipe base, decoding/encoding, the long-audio policy, the output layout and the CLI.
Must not: know any corpus's layout (the recipe modules do), download anything, or tokenise.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from qwenaudio_train.audio import CHUNK_LENGTH, SAMPLE_RATE, AudioError, encode_flac, load_audio, split_windows
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.data.shards import MANIFEST, write_shards

LONG_AUDIO_S = float(CHUNK_LENGTH)  # 30 s: longer clips follow the item's long_audio policy
MAX_KEEP_S = 600.0  # long_audio="keep" keeps clips up to this (data.max_audio_seconds's default); --max-seconds
MIN_WINDOW_S = 0.5  # a trailing window shorter than this is dropped when splitting long clip-level audio
MAX_BAD_LISTED = 50

AudioSource = str | os.PathLike | bytes | np.ndarray | Callable[[], np.ndarray]
Rebase = Callable[["RawItem", int, float, float], Union["RawItem", None]]


class LayoutError(FileNotFoundError):
    """The raw corpus directory lacks a file the recipe needs; the message names it and the expected layout."""


@dataclass
class RawItem:
    """One sample as a recipe yields it, before decoding (see the module docstring)."""

    key: str
    audio: AudioSource
    task: str
    target: str
    text_language: str
    audio_language: str | None = None
    words: list[Word] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    long_audio: str | Rebase = "skip"


_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]")


def make_key(*parts: object) -> str:
    """A shard key from parts: joined with '-', every character outside [A-Za-z0-9_-] replaced by '_'."""
    key = "-".join(_KEY_BAD.sub("_", str(p)) for p in parts if str(p) != "")
    if not key:
        raise ValueError(f"cannot build a key from {parts!r}")
    return key


def read_delimited(
    path: str | os.PathLike[str], delimiter: str = "\t", escapechar: str | None = None, errors: str = "strict"
) -> list[dict[str, str]]:
    """Rows of a delimited text file with a header line, as dicts (UTF-8, BOM tolerated).

    TSV (``delimiter="\\t"``) is read without quote processing, as Common Voice writes it (a sentence may
    contain a lone '"'); ``escapechar="\\"`` undoes pandas' ``QUOTE_NONE`` escaping (CoVoST's TSVs). CSV uses
    the standard quoting rules. ``errors`` is the decoding policy ("replace" for files with stray bytes).
    """
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, encoding="utf-8-sig", errors=errors, newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter, quoting=quoting, escapechar=escapechar)
        return [dict(r) for r in reader]


class Recipe:
    """Base of a corpus recipe: subclasses set name/layout/subsets/tasks and implement ``items``."""

    name: str = ""
    layout: str = ""
    subsets: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        """Subsets converted when --subsets is not given (default: all of ``subsets``)."""
        return tuple(self.subsets)

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        """Tasks produced from one subset (default: all of ``tasks``)."""
        return tuple(self.tasks)

    def check(self, root: Path, subset: str) -> None:
        """Raise ``LayoutError`` (``self.missing``) if files the subset needs are absent. Called for every
        requested subset before anything is converted, so a broken layout fails fast."""

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        raise NotImplementedError

    def source(self, subset: str) -> str:
        return f"{self.name}/{subset}"

    # -- error helpers ------------------------------------------------------------------------------------------
    def missing(self, path: str | os.PathLike[str], what: str) -> LayoutError:
        layout = self.layout.strip("\n")
        return LayoutError(
            f"{self.name}: {what} not found: expected {os.fspath(path)!r}. "
            f"The {self.name} recipe reads the corpus's raw layout (nothing is downloaded):\n{layout}"
        )

    def require(self, path: str | os.PathLike[str], what: str) -> Path:
        p = Path(path)
        if not p.exists():
            raise self.missing(p, what)
        return p


# ----------------------------------------------------------------------------------------------------------------
# One item -> samples (runs in worker processes when workers > 1: module-level and picklable)
# ----------------------------------------------------------------------------------------------------------------
Encoded = tuple[str, bytes, SampleMeta]


def _decode(item: RawItem) -> np.ndarray:
    audio = item.audio
    if isinstance(audio, np.ndarray):
        wav = np.ascontiguousarray(audio, dtype=np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise AudioError(f"{item.key}: audio array must be non-empty mono 1-D, got shape {wav.shape}")
        return wav
    if callable(audio):
        return _decode(replace(item, audio=audio()))
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return load_audio(bytes(audio), name=item.key)
    return load_audio(audio, name=item.key)


def _meta(item: RawItem, source: str, duration: float) -> SampleMeta:
    return SampleMeta(
        task=item.task,
        text_language=item.text_language,
        target=item.target,
        duration=round(duration, 4),
        source=source,
        audio_language=item.audio_language,
        words=item.words,
        meta=dict(item.meta),
    )


def prepare(
    item: RawItem, source: str, max_seconds: float = MAX_KEEP_S
) -> tuple[list[Encoded], str | None, str | None]:
    """Decode and encode one item: ``(samples, skip_reason, message)``; skip_reason is None, "long", "bad" or
    "missing" (``audio=None``). Raises LayoutError for an audio file the layout promises but that is missing.
    ``max_seconds`` caps the clips that ``long_audio="keep"`` keeps whole.
    """
    if item.audio is None:
        return [], "missing", f"{item.key}: audio absent from the release"
    if isinstance(item.audio, (str, os.PathLike)) and not os.path.isfile(item.audio):
        raise LayoutError(
            f"{source}: audio file of sample {item.key!r} not found: expected "
            f"{os.fspath(item.audio)!r} (the corpus layout is in the recipe's --help)"
        )
    try:
        wav = _decode(item)
    except AudioError as e:
        return [], "bad", str(e)
    seconds = wav.shape[0] / SAMPLE_RATE
    if seconds <= LONG_AUDIO_S:
        return [(item.key, encode_flac(wav), _meta(item, source, seconds))], None, None
    if item.long_audio == "keep":
        if seconds > max_seconds:
            return [], "long", f"{item.key}: {seconds:.1f} s > {max_seconds:.0f} s (--max-seconds)"
        return [(item.key, encode_flac(wav), _meta(item, source, seconds))], None, None
    if item.long_audio == "skip":
        return [], "long", f"{item.key}: {seconds:.1f} s > {LONG_AUDIO_S:.0f} s"
    out: list[Encoded] = []
    step = int(LONG_AUDIO_S * SAMPLE_RATE)
    for i, w in enumerate(split_windows(wav, LONG_AUDIO_S, min_window_s=MIN_WINDOW_S)):
        start = i * step / SAMPLE_RATE
        end = start + w.shape[0] / SAMPLE_RATE
        if item.long_audio == "windows":
            win: RawItem | None = replace(item, meta=dict(item.meta))
        elif callable(item.long_audio):
            win = item.long_audio(item, i, start, end)
        else:
            raise ValueError(
                f"{item.key}: long_audio must be 'keep', 'skip', 'windows' or a callable, got {item.long_audio!r}"
            )
        if win is not None:
            out.append((f"{item.key}-w{i:03d}", encode_flac(w), _meta(win, source, w.shape[0] / SAMPLE_RATE)))
    return out, None, None


def _prepare_packed(args: tuple[RawItem, str, float]) -> tuple[list[Encoded], str | None, str | None]:
    return prepare(*args)


def _batched(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------
def convert(
    recipe: Recipe,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    subsets: Sequence[str] | None = None,
    max_samples: int | None = None,
    workers: int = 1,
    max_count: int = 1000,
    max_size: float = 5e8,
    max_seconds: float = MAX_KEEP_S,
) -> dict[str, Any]:
    """Convert the requested subsets (default: ``recipe.default_subsets(root)``) to ``out/<subset>/<task>/``
    shard sets; return the summary (also written to ``out/manifest.json``). ``max_count``/``max_size`` bound one
    shard tar; ``max_seconds`` caps the clips kept whole. See the module docstring for the layout and errors."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0 (the longest clip kept whole), got {max_seconds}")
    root_p, out_p = Path(root), Path(out)
    if not root_p.is_dir():
        raise recipe.missing(root_p, "the corpus root directory")
    chosen = list(subsets) if subsets else list(recipe.default_subsets(root_p))
    if not chosen:
        raise LayoutError(
            f"{recipe.name}: no subset found under {os.fspath(root_p)!r}. The {recipe.name} recipe "
            f"reads the corpus's raw layout:\n{recipe.layout.strip(chr(10))}"
        )
    unknown = [s for s in chosen if s not in recipe.subsets]
    if unknown:
        raise ValueError(f"{recipe.name}: unknown subset(s) {unknown}; valid: {', '.join(recipe.subsets)}")
    for subset in chosen:
        recipe.check(root_p, subset)

    summary: dict[str, Any] = {
        "corpus": recipe.name,
        "subsets": {},
        "tasks": {},
        "totals": {"samples": 0, "hours": 0.0, "skipped_long": 0, "skipped_bad": 0, "skipped_missing": 0},
        "bad": [],
    }
    # fork where the platform has it (workers start in milliseconds, nothing re-imported); spawn elsewhere. The
    # parent runs no torch ops or threads before forking, so fork is safe here.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = multiprocessing.get_context(method).Pool(workers) if workers > 1 else None
    try:
        for subset in chosen:
            for task in recipe.tasks_of(subset):
                stats = _convert_one(
                    recipe,
                    root_p,
                    out_p,
                    subset,
                    task,
                    max_samples,
                    pool,
                    workers,
                    max_count,
                    max_size,
                    summary["bad"],
                    max_seconds,
                )
                summary["subsets"].setdefault(subset, {})[task] = stats
                t = summary["tasks"].setdefault(task, {"samples": 0, "hours": 0.0})
                t["samples"] += stats["samples"]
                t["hours"] = round(t["hours"] + stats["hours"], 6)
                tot = summary["totals"]
                tot["samples"] += stats["samples"]
                tot["hours"] = round(tot["hours"] + stats["hours"], 6)
                tot["skipped_long"] += stats["skipped_long"]
                tot["skipped_bad"] += stats["skipped_bad"]
                tot["skipped_missing"] += stats["skipped_missing"]
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    out_p.mkdir(parents=True, exist_ok=True)
    with open(out_p / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return summary


def _convert_one(
    recipe: Recipe,
    root: Path,
    out: Path,
    subset: str,
    task: str,
    max_samples: int | None,
    pool: Any,
    workers: int,
    max_count: int,
    max_size: float,
    bad_list: list[dict[str, str]],
    max_seconds: float = MAX_KEEP_S,
) -> dict[str, Any]:
    source = recipe.source(subset)
    counts = {"long": 0, "bad": 0, "missing": 0}

    def samples() -> Iterator[Encoded]:
        n = 0
        jobs = ((item, source, max_seconds) for item in recipe.items(root, subset, task))
        # Bounded batches keep memory flat on million-item corpora; map keeps the order (reproducible shards).
        for batch in _batched(jobs, max(1, workers) * 32):
            results = pool.map(_prepare_packed, batch) if pool is not None else map(_prepare_packed, batch)
            for (item, _, _), (encoded, reason, message) in zip(batch, results):
                if reason is not None:
                    counts[reason] += 1
                    if reason == "bad":
                        print(f"{recipe.name}: skipping undecodable clip {item.key}: {message}", file=sys.stderr)
                        if len(bad_list) < MAX_BAD_LISTED:
                            bad_list.append({"key": item.key, "message": str(message)})
                    continue
                for sample in encoded:
                    if max_samples is not None and n >= max_samples:
                        return
                    yield sample
                    n += 1
            if max_samples is not None and n >= max_samples:
                return

    set_dir = out / subset / task
    manifest = write_shards(samples(), set_dir, max_count=max_count, max_size=max_size)
    manifest["skipped"] = dict(counts)
    with open(set_dir / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if counts["missing"]:
        print(
            f"{recipe.name}/{subset}/{task}: skipped {counts['missing']} listed samples whose audio the release lacks",
            file=sys.stderr,
        )
    if counts["long"]:
        print(
            f"{recipe.name}/{subset}/{task}: skipped {counts['long']} long clips (over {LONG_AUDIO_S:.0f} s with a "
            f"target that cannot be re-based, or over --max-seconds {max_seconds:.0f})",
            file=sys.stderr,
        )
    return {
        "dir": f"{subset}/{task}",
        "samples": manifest["totals"]["samples"],
        "hours": manifest["totals"]["hours"],
        "skipped_long": counts["long"],
        "skipped_bad": counts["bad"],
        "skipped_missing": counts["missing"],
    }


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------
def _module_name(recipe: Recipe) -> str:
    # Under `python -m data_recipes.x` the recipe's module is "__main__": name it by its file instead.
    module = sys.modules.get(type(recipe).__module__)
    path = getattr(module, "__file__", None)
    return Path(path).stem if path else type(recipe).__module__.rsplit(".", 1)[-1]


def main(recipe: Recipe, argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI; returns the exit status (2 for a missing layout file or a bad argument)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m data_recipes.{_module_name(recipe)}",
        description=f"Convert the raw {recipe.name} corpus to shards (tasks: {', '.join(recipe.tasks)}).\n\n"
        f"Expected raw layout:\n{recipe.layout.strip(chr(10))}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", required=True, help="the raw corpus directory (layout above)")
    parser.add_argument("--out", required=True, help="output directory: OUT/<subset>/<task>/ shard sets")
    parser.add_argument(
        "--subsets",
        nargs="+",
        default=None,
        metavar="SUBSET",
        help=f"subsets to convert (default: the recipe's defaults present under --root): {', '.join(recipe.subsets)}",
    )
    parser.add_argument("--max-samples", type=int, default=None, help="at most N samples per shard set")
    parser.add_argument("--workers", type=int, default=1, help="decoding/encoding processes (default 1)")
    parser.add_argument("--shard-samples", type=int, default=1000, help="samples per shard tar (default 1000)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=MAX_KEEP_S,
        help=f"longest clip kept whole where the target follows the whole clip (default {MAX_KEEP_S:.0f}, as "
        "data.max_audio_seconds; 30 skips every clip over 30 s, as before long audio)",
    )
    args = parser.parse_args(argv)
    try:
        summary = convert(
            recipe,
            args.root,
            args.out,
            args.subsets,
            args.max_samples,
            args.workers,
            args.shard_samples,
            max_seconds=args.max_seconds,
        )
    except (LayoutError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for subset, tasks in summary["subsets"].items():
        for task, s in tasks.items():
            print(
                f"{recipe.name}/{subset} {task}: {s['samples']} samples, {s['hours']:.3f} h"
                + (f", skipped {s['skipped_long']} long" if s["skipped_long"] else "")
                + (f", {s['skipped_bad']} undecodable" if s["skipped_bad"] else "")
                + (f", {s['skipped_missing']} absent from the release" if s["skipped_missing"] else "")
            )
    tot = summary["totals"]
    print(f"total: {tot['samples']} samples, {tot['hours']:.3f} h -> {os.path.join(args.out, MANIFEST)}")
    return 0


def present_subsets(recipe: Recipe, root: Path, candidates: Sequence[str] | None = None) -> tuple[str, ...]:
    """The candidate subsets (default: all) whose files ``recipe.check`` finds under ``root``: what runs without
    ``--subsets``. If none is present, all candidates, so that ``check`` names what is missing."""
    cands = tuple(candidates if candidates is not None else recipe.subsets)
    ok = []
    for s in cands:
        try:
            recipe.check(root, s)
        except LayoutError:
            continue
        ok.append(s)
    return tuple(ok) or cands


def main_with_options(
    make_recipe: Callable[[argparse.Namespace, str | None], Recipe],
    add_options: Callable[[argparse.ArgumentParser], None],
    argv: Sequence[str] | None = None,
) -> int:
    """``common.main`` plus recipe-specific options: parses the options ``add_options`` declares, builds the
    recipe with ``make_recipe(options, root)`` (root is ``--root``, or None under ``--help``) and hands the rest
    of the command line to the uniform CLI. ``--help`` lists both sets of options."""
    args = list(sys.argv[1:] if argv is None else argv)
    own = argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS, allow_abbrev=False)
    add_options(own)
    opts, rest = own.parse_known_args(args)
    peek = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    peek.add_argument("--root", default=None)
    root = peek.parse_known_args(rest)[0].root
    wants_help = "-h" in rest or "--help" in rest
    try:
        recipe = make_recipe(opts, None if wants_help else root)
    except (LayoutError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if wants_help:
        print("recipe options:\n" + own.format_help().split("\n", 1)[-1].strip("\n") + "\n")
    return main(recipe, rest)
