"""Checkpoint discovery without training: which checkpoint a run resumes, and the world-size check with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenaudio_train import checkpoint


def _fake_checkpoint(ckpt_dir: Path, step: int, **state) -> Path:
    """A directory that checkpoint.py recognises as complete (DeepSpeed's files are not needed to find it)."""
    path = ckpt_dir / checkpoint.tag_for(step)
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"step": step, **state}))
    return path


def test_the_layout_is_known_to_checkpoint_only(tmp_path):
    ckpt_dir = checkpoint.checkpoint_dir(tmp_path / "run")
    assert ckpt_dir == tmp_path / "run" / "checkpoints"
    done = _fake_checkpoint(ckpt_dir, 2)
    (ckpt_dir / "step_00000004.partial").mkdir()  # a save cut short
    (ckpt_dir / "step_00000006").mkdir()  # renamed but without its state: not complete
    assert checkpoint.is_checkpoint(done) and not checkpoint.is_checkpoint(ckpt_dir / "step_00000006")
    assert checkpoint.latest_checkpoint(ckpt_dir) == done


def test_resolve_follows_trainer_resume(tmp_path):
    ckpt_dir = checkpoint.checkpoint_dir(tmp_path)
    assert checkpoint.resolve("auto", ckpt_dir) is None  # a fresh run
    first = _fake_checkpoint(ckpt_dir, 1)
    latest = _fake_checkpoint(ckpt_dir, 3)
    (ckpt_dir / "latest").write_text(latest.name)
    assert checkpoint.resolve("auto", ckpt_dir) == latest
    for never in ("none", "never", "", None):
        assert checkpoint.resolve(never, ckpt_dir) is None
    assert checkpoint.resolve(str(first), ckpt_dir) == first  # an explicit checkpoint, even an older one
    with pytest.raises(FileNotFoundError, match=r"trainer.resume='.*nope' is not a checkpoint directory \(no trainer"):
        checkpoint.resolve(str(tmp_path / "nope"), ckpt_dir)


def test_world_size_check_names_the_fix(tmp_path):
    path = _fake_checkpoint(tmp_path, 2, world_size=2)
    checkpoint.check_world_size(path, 2)
    checkpoint.check_world_size(path, 4, load_universal=True)  # a universal checkpoint loads at any size
    checkpoint.check_world_size(_fake_checkpoint(tmp_path / "old", 1), 8)  # saved before world_size was recorded
    with pytest.raises(
        RuntimeError, match="(?s)saved by 2 ranks, this run has 1.*ds_to_universal.*load_universal=true"
    ):
        checkpoint.check_world_size(path, 1)
