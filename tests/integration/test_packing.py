"""Packing end to end: 2 ranks under torchrun with data.packing=true train, log per-task losses and LLM padding from
the packed rows, and resume exactly (the losses after a resume equal the uninterrupted run's)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import rollback, subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]
PACKED = ["data.packing=true", "data.max_tokens_per_row=1024", "data.batch_size=4", "trainer.max_steps=3",
          "trainer.save_every=2", "trainer.keep_last=5"]  # fmt: skip


def _torchrun(corpus: Path, run: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "qwenaudio_train.pretrain", *train_overrides(corpus, run, *PACKED)],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(OMP_NUM_THREADS="1"), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]


def test_two_ranks_with_packing_resume_exactly(corpus, tmp_path):
    run = tmp_path / "packed"
    _torchrun(corpus, run)
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(any(k.startswith("loss/") for k in r) for r in records)  # per-task losses from per-sample sums
    # 4 samples of a few hundred tokens share rows of 1024: the LLM computes little padding
    assert all(r["padding/llm"] < 0.5 for r in records), [r["padding/llm"] for r in records]

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    rollback(resumed, 2)
    _torchrun(corpus, resumed)
    assert [r["loss"] for r in read_metrics(resumed)] == [r["loss"] for r in records]  # bit-exact
