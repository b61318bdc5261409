"""Benchmark: training the demo's byte-level BPE (what `make data` and every recipe user's tokenizer step run), at
two corpus sizes, interleaved. Figures in ``bench_results/tokenizer.json``."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qwenaudio_train.tokenizer import train_bpe_tokenizer
from tests.bench.conftest import interleaved, summary
from tests.unit.test_tokenizer import _corpus

pytestmark = pytest.mark.bench


def test_bpe_training_time(record, tmp_path: Path) -> None:
    corpora = {"5k_lines": _corpus(5000), "20k_lines": _corpus(20000)}
    counter = itertools.count()

    def train(lines: list[str]) -> None:
        train_bpe_tokenizer(lines, tmp_path / str(next(counter)), vocab_size=1000)

    fns = {name: (lambda lines=lines: train(lines)) for name, lines in corpora.items()}
    times = interleaved(fns, rounds=3, per_round=1, warmup=0, budget_s=60)
    results = {name: summary(t, scale=1.0) for name, t in times.items()}
    record(
        "tokenizer",
        {"seconds": results, "vocab_size": 1000},
        "BPE training (vocab 1000): " + ", ".join(f"{k} {v['median']:.2f} s" for k, v in results.items()),
    )
