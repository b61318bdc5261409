"""A tiny offline corpus + tokenizer, built once per test session (speech via libespeak-ng, sounds, notes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data_recipes.synthetic import PRESETS, build_corpus
from qwenaudio_train.tokenizer import train_bpe_tokenizer


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, PRESETS["tiny"], seed=0, workers=1, log=lambda _: None)
    lines = [ln for ln in (root / "text.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    train_bpe_tokenizer(lines, root / "tokenizer", vocab_size=400)
    return root


def train_overrides(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["experiment=debug", f"data.root={corpus}", f"run_dir={run_dir}", *extra]


def rollback(run_dir: Path, to_step: int) -> None:
    """Make a finished run look as if it had been killed right after the checkpoint of `to_step`."""
    ckpts = run_dir / "checkpoints"
    for p in ckpts.iterdir():
        if p.is_dir() and int(p.name.split("_")[1]) > to_step:
            shutil.rmtree(p)
    (ckpts / "latest").write_text(f"step_{to_step:08d}")
    metrics = run_dir / "metrics.jsonl"
    import json

    keep = [ln for ln in metrics.read_text().splitlines() if json.loads(ln)["step"] <= to_step]
    metrics.write_text("\n".join(keep) + "\n")


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child training process: without the process-group variables that an in-process
    run of this test session has set (a child would otherwise think it is rank 0 of this process's group)."""
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE")
    }
    env.update(extra)
    return env
