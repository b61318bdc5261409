"""Shared pieces of the benchmarks: the `record` fixture, timing helpers and session-scoped data.

Benchmarks are not tests of speed: they assert only that they ran (and that compared outputs agree), and write
their figures to ``bench_results/<name>.json`` at the repository root with the machine they ran on. Run them
with ``make bench`` (``pytest -q -m bench tests/bench -s``); plain ``pytest`` deselects them (``-m 'not bench'``).

Machines running other jobs give noisy timings: the helpers time the compared variants *interleaved* (round
robin, several rounds) and report medians, so a burst of foreign load hits every variant alike.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench_results"
DEFAULT_THREADS = torch.get_num_threads()  # before any benchmark changes it

# A few sentences and sound labels: enough text to train the small BPE tokenizer the data benchmarks use.
TOKENIZER_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a small cat sat on the warm mat near the door",
    "she reads a long book in the quiet garden every morning",
    "we walk to the old market and buy fresh bread and green apples",
    "the train leaves the station at noon and arrives in the evening",
    "beep",
    "siren",
    "white noise",
    "click train",
    "chirp",
    "hum",
    "knock",
    "whistle",
]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - a missing optional package is just "not installed"
        return None


def machine_info() -> dict[str, Any]:
    """What a figure depends on: cores, threads, load, versions. No paths or host names."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads_default": DEFAULT_THREADS,
        "torch_threads_now": torch.get_num_threads(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "versions": {
            m: _version(m)
            for m in ("torch", "numpy", "transformers", "deepspeed", "tokenizers", "soundfile", "webdataset")
        },
    }


@pytest.fixture
def record() -> Callable[[str, dict[str, Any], str], Path]:
    """``record(name, results, line)``: write ``bench_results/<name>.json`` (results + machine) and print `line`."""

    def _record(name: str, results: dict[str, Any], line: str = "") -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.json"
        payload = {"benchmark": name, "machine": machine_info(), "results": results}
        path.write_text(json.dumps(payload, indent=1, sort_keys=False, default=_jsonable) + "\n")
        print(f"\n[bench] {name}: {line}" if line else f"\n[bench] {name}: written to bench_results/{name}.json")
        _SESSION["lines"][name] = line or f"bench_results/{name}.json"
        return path

    return _record


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# --------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------


def summary(seconds: list[float], scale: float = 1e3) -> dict[str, float]:
    """Median / min / max / n of a list of durations, scaled (default: milliseconds)."""
    return {
        "median": round(statistics.median(seconds) * scale, 4),
        "min": round(min(seconds) * scale, 4),
        "max": round(max(seconds) * scale, 4),
        "n": len(seconds),
    }


def interleaved(
    fns: dict[str, Callable[[], Any]],
    rounds: int,
    per_round: dict[str, int] | int,
    warmup: int = 1,
    budget_s: float | None = None,
) -> dict[str, list[float]]:
    """Time each function `per_round[name]` calls in a row, round robin over `rounds` rounds (the order rotates
    each round: the variant that runs after another one's caches and allocations is not always the same).

    Returns each function's individual call durations (seconds). Interleaving spreads foreign load over all
    variants, so the ratio of medians stays meaningful on a shared machine. With `budget_s`, no new round starts
    once that much time has passed (at least 2 rounds run): an overloaded machine gives fewer samples, not a
    benchmark that runs for minutes.
    """
    counts = per_round if isinstance(per_round, dict) else {k: per_round for k in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for r in range(rounds):
        if budget_s is not None and r >= 2 and time.perf_counter() - start > budget_s:
            break
        names = list(fns)
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate: no variant always goes first
            fn = fns[name]
            for _ in range(counts[name]):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


class threads:
    """Context manager: ``with threads(1): ...`` runs with that many torch intra-op threads."""

    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> threads:
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.before)


# --------------------------------------------------------------------------------------------------------
# Session data
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bench_tokenizer(tmp_path_factory):
    """A small byte-level BPE (our AudioTokenizer) trained on a few sentences; built in well under a second."""
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(TOKENIZER_TEXT * 4, tmp_path_factory.mktemp("bench_tok") / "tokenizer", vocab_size=400)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The offline synthetic corpus at its `tiny` preset and its tokenizer (what the trainer needs to start)."""
    from data_recipes.synthetic import PRESETS, build_corpus
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    root = tmp_path_factory.mktemp("bench_corpus")
    build_corpus(root, PRESETS["tiny"], seed=0, workers=1, log=lambda _: None)
    lines = [ln for ln in (root / "text.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    train_bpe_tokenizer(lines, root / "tokenizer", vocab_size=400)
    return root


_SESSION: dict[str, Any] = {"lines": {}, "started": time.time() - 1}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """One results file for the whole `make bench` run: every benchmark written in this session, with its
    one-line summary, in ``bench_results/results.json`` (and the lines in ``results.md``)."""
    written = (
        [
            p
            for p in sorted(RESULTS.glob("*.json"))
            if p.name != "results.json" and p.stat().st_mtime >= _SESSION["started"]
        ]
        if RESULTS.is_dir()
        else []
    )
    if not written:
        return
    combined = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "benchmarks": {p.stem: json.loads(p.read_text()).get("results") for p in written},
    }
    (RESULTS / "results.json").write_text(json.dumps(combined, indent=1, default=_jsonable) + "\n")
    lines = [f"# make bench, {combined['date']}", ""] + [f"- **{n}**: {line}" for n, line in _SESSION["lines"].items()]
    (RESULTS / "results.md").write_text("\n".join(lines) + "\n")
    print(f"\n[bench] all results: {RESULTS / 'results.json'}")
