"""The data order is defined by the global batch: 2 ranks x accumulation 1 under torchrun train on the same samples
per step as 1 rank x accumulation 2, so the loss series agree; a resume with another number of loader workers
continues the same series."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import rollback, subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]
STEPS = ["trainer.max_steps=2", "trainer.save_every=1", "trainer.keep_last=5", "data.batch_size=2"]


def _losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run)]


def _one_rank(corpus: Path, run: Path, *extra: str) -> list[float]:
    from qwenaudio_train.config import compose
    from qwenaudio_train.trainer import Trainer

    Trainer(compose("pretrain", train_overrides(corpus, run, *STEPS, *extra))).train()
    return _losses(run)


def test_two_ranks_and_one_rank_with_accumulation_see_the_same_global_batches(corpus, tmp_path):
    two = tmp_path / "two_ranks"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "qwenaudio_train.pretrain", *train_overrides(corpus, two, *STEPS, "data.num_workers=0")],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(OMP_NUM_THREADS="1"), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    one = _one_rank(corpus, tmp_path / "one_rank", "trainer.grad_accum=2", "data.num_workers=1")
    assert one == pytest.approx(_losses(two), rel=1e-5, abs=1e-6)
    records = {rec["step"]: rec for rec in read_metrics(two)}
    assert [records[s]["samples_seen"] for s in (1, 2)] == [
        r["samples_seen"] for r in read_metrics(tmp_path / "one_rank")
    ]

    resumed = tmp_path / "resumed"  # 1 rank x 2, killed after step 1, resumed with 2 loader workers
    shutil.copytree(tmp_path / "one_rank", resumed)
    rollback(resumed, 1)
    assert _one_rank(corpus, resumed, "trainer.grad_accum=2", "data.num_workers=2") == one
