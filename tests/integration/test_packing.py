"""Packing end to end: 2 ranks under torchrun with data.packing=true train, log per-task losses and LLM padding from
the packed rows, and resume exactly (the losses after a resume equal the uninterrupted run's); one rank reproduces
the pinned (unpacked) losses of the debug run, and chat SFT with LoRA gives the unpacked run's losses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_recipes.sft_builder import BuildConfig, build
from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import rollback, subprocess_env, train_overrides
from tests.integration.test_train import PINNED_LOSSES

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


def _train(config: str, overrides: list[str]) -> list[float]:
    from qwenaudio_train.trainer import Trainer

    cfg = compose(config, overrides)
    Trainer(cfg).train()
    return [r["loss"] for r in read_metrics(Path(cfg.run_dir))]


def test_packed_debug_run_reproduces_the_pinned_unpacked_losses(corpus, tmp_path):
    """The same samples per micro-batch, packed into shared rows: the same losses over 6 optimizer steps."""
    losses = _train("pretrain", train_overrides(corpus, tmp_path / "run", "data.packing=true"))
    assert losses == pytest.approx(PINNED_LOSSES, rel=1e-4)


def test_packed_lora_sft_equals_unpacked(corpus, tmp_path):
    root = tmp_path / "sft"
    build([corpus / "train"], root / "train.jsonl", BuildConfig(seed=0), out_shards=root / "shards")
    common = [f"data.root={root}", f"model.tokenizer={corpus / 'tokenizer'}", "trainer.max_steps=3",
              "trainer.log_every=1", "trainer.save_every=3", "data.batch_size=4", "data.num_workers=0",
              "lora.enabled=true", "logger.wandb_mode=disabled", "logger.progress=false"]  # fmt: skip
    padded = _train("sft", [*common, f"run_dir={tmp_path / 'padded'}"])
    packed = _train("sft", [*common, f"run_dir={tmp_path / 'packed'}", "data.packing=true"])
    assert packed == pytest.approx(padded, rel=1e-4)
