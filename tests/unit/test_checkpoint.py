"""Checkpoint discovery without training: which checkpoint a run resumes, and the world-size check with its fix."""

from __future__ import annotations

import json
import re
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
    checkpoint.check_world_size(path, 4, elastic=True)  # trainer.elastic converts it
    checkpoint.check_world_size(_fake_checkpoint(tmp_path / "old", 1), 8)  # saved before world_size was recorded
    with pytest.raises(
        RuntimeError, match="(?s)saved by 2 ranks, this run has 1.*ds_to_universal.*load_universal=true"
    ):
        checkpoint.check_world_size(path, 1)


def test_without_elastic_a_world_change_stops_naming_trainer_elastic(tmp_path):
    path = _fake_checkpoint(tmp_path, 2, world_size=2, config={"deepspeed": {"zero_stage": 2}})
    with pytest.raises(
        RuntimeError, match=r"saved by 2 ranks, this run has 1\. .*resume with 2 ranks, or add trainer.elastic=true"
    ):
        checkpoint.check_compatible(path, 1, 2)
    checkpoint.check_compatible(path, 1, 2, elastic=True)
    with pytest.raises(checkpoint.CheckpointError, match="zero_stage=2, this run has 3"):
        checkpoint.check_compatible(path, 1, 3, elastic=True)  # elastic changes the world size, never the stage


def test_elastic_plan_keeps_the_global_batch_or_names_the_valid_world_sizes(tmp_path):
    from qwenaudio_train.config import ConfigError
    from qwenaudio_train.elastic import global_micro_batches, plan

    saved = _fake_checkpoint(tmp_path, 2, world_size=2, global_micro_batches=4, config={"trainer": {"grad_accum": 2}})
    one = plan(saved, 1, zero_stage=2)
    assert (one.saved_world, one.saved_accum, one.world, one.grad_accum) == (2, 2, 1, 4)
    assert one.convert and one.changed
    assert one.line() == "elastic resume: 1 ranks x 4 accumulation (was 2 x 2)"
    four = plan(saved, 4, zero_stage=3)
    assert four.grad_accum == 1 and four.convert
    same = plan(saved, 2, zero_stage=2)
    assert same.grad_accum == 2 and not same.convert and not same.changed
    assert not plan(saved, 1, zero_stage=0).convert  # ZeRO-0 keeps the whole optimizer state in the model file
    with pytest.raises(
        ConfigError,
        match=r"global batch of 4 micro-batches .* which 3 ranks cannot share evenly: "
        r"resume with 1, 2, 4 ranks",
    ):
        plan(saved, 3, zero_stage=2)
    # the data order's own L comes first (data_state_rank0.json's n_streams)
    (saved / "data_state_rank0.json").write_text(json.dumps({"version": 2, "n_streams": 8, "slots": {}}))
    assert global_micro_batches(saved, checkpoint.read_trainer_state(saved)) == 8
    # a checkpoint saved before both: its world size x its trainer.grad_accum
    older = _fake_checkpoint(tmp_path / "older", 2, world_size=2, config={"trainer": {"grad_accum": 3}})
    assert global_micro_batches(older, checkpoint.read_trainer_state(older)) == 6
    assert plan(older, 3, zero_stage=2).grad_accum == 2


def _saved_checkpoint(ckpt_dir: Path, step: int, world_size: int = 2, **state) -> Path:
    """A checkpoint as ``save`` writes it: every file listed with its size in trainer_state.json."""
    path = ckpt_dir / checkpoint.tag_for(step)
    path.mkdir(parents=True)
    names = ["mp_rank_00_model_states.pt"] + [
        f"{kind}_rank{r}.{ext}" for r in range(world_size) for kind, ext in (("data_state", "json"), ("rng", "pt"))
    ]
    for name in names:
        (path / name).write_text("{}" if name.endswith(".json") else "x" * 100)
    files = {n: (path / n).stat().st_size for n in names}
    (path / "trainer_state.json").write_text(
        json.dumps({"step": step, "world_size": world_size, "files": files, **state})
    )
    (ckpt_dir / "latest").write_text(path.name)
    return path


def test_an_intact_checkpoint_has_no_problems_and_each_damage_is_named(tmp_path):
    ckpt_dir = checkpoint.checkpoint_dir(tmp_path)
    path = _saved_checkpoint(ckpt_dir, 4)
    assert checkpoint.problems(path) == []
    (path / "data_state_rank1.json").unlink()  # a resume would silently restart rank 1's data order
    assert checkpoint.problems(path) == [f"{path / 'data_state_rank1.json'} is missing"]
    assert checkpoint.problems(path, resume_data=False) == []  # not needed when the data stream restarts
    (path / "mp_rank_00_model_states.pt").write_text("x" * 10)  # cut short
    assert f"{path / 'mp_rank_00_model_states.pt'} is cut short or changed (10 bytes, saved 100)" in (
        checkpoint.problems(path)
    )
    (path / "trainer_state.json").write_text('{"step": 4, "wor')
    [problem] = checkpoint.problems(path)
    assert problem.startswith(f"{path / 'trainer_state.json'} is not valid JSON")
    with pytest.raises(checkpoint.CheckpointError, match="trainer_state.json is not valid JSON"):
        checkpoint.read_trainer_state(path)


def test_a_checkpoint_saved_before_the_size_list_still_needs_every_rank_part(tmp_path):
    path = _fake_checkpoint(tmp_path, 2, world_size=2)
    for name in ("mp_rank_00_model_states.pt", "rng_rank0.pt", "rng_rank1.pt", "data_state_rank0.json"):
        (path / name).write_text("x")
    assert checkpoint.problems(path) == [f"{path / 'data_state_rank1.json'} is missing"]


def test_resume_auto_falls_back_to_the_newest_intact_checkpoint_and_says_so(tmp_path):
    ckpt_dir = checkpoint.checkpoint_dir(tmp_path)
    good = _saved_checkpoint(ckpt_dir, 2)
    bad = _saved_checkpoint(ckpt_dir, 4)
    (bad / "rng_rank1.pt").unlink()
    notes: list[str] = []
    assert checkpoint.resume_point("auto", ckpt_dir, log=notes.append) == good
    assert notes == [
        f"trainer.resume=auto: skipped step_00000004 ({bad / 'rng_rank1.pt'} is missing); resuming from the newest "
        f"intact checkpoint {good}"
    ]
    with pytest.raises(
        checkpoint.CheckpointError,
        match=rf"cannot resume .*step_00000004: .*rng_rank1.pt is missing\. Resume from the previous intact "
        rf"checkpoint with trainer.resume={re.escape(str(good))}",
    ):
        checkpoint.resume_point(str(bad), ckpt_dir)
    (good / "trainer_state.json").write_text("not json")
    with pytest.raises(checkpoint.CheckpointError, match="no intact checkpoint in .*trainer.resume=none"):
        checkpoint.resume_point("auto", ckpt_dir)
    assert checkpoint.resume_point("none", ckpt_dir) is None
    assert checkpoint.resume_point("auto", tmp_path / "fresh") is None


def test_a_changed_zero_stage_stops_with_the_fix(tmp_path):
    path = _fake_checkpoint(tmp_path, 2, world_size=1, config={"deepspeed": {"zero_stage": 2}})
    checkpoint.check_compatible(path, 1, 2)
    checkpoint.check_compatible(path, 1, 3, load_universal=True)
    with pytest.raises(
        checkpoint.CheckpointError,
        match="saved with deepspeed.zero_stage=2, this run has 3: resume with deepspeed=zero2",
    ):
        checkpoint.check_compatible(path, 1, 3)


def test_without_the_data_position_or_as_a_universal_checkpoint_less_is_needed(tmp_path):
    path = _saved_checkpoint(checkpoint.checkpoint_dir(tmp_path), 2)
    for name in ("data_state_rank1.json", "rng_rank1.pt"):
        (path / name).unlink()
    assert checkpoint.problems(path, resume_data=False) == []  # the data stream restarts from the seed
    # ds_to_universal writes its own layout (zero/<param>/...) beside a copy of trainer_state.json and its size list
    universal = tmp_path / "step_00000002_universal"
    universal.mkdir()
    (universal / "trainer_state.json").write_bytes((path / "trainer_state.json").read_bytes())
    assert checkpoint.problems(universal, resume_data=False, universal=True) == []
    assert checkpoint.problems(universal, resume_data=False) == [  # as a plain checkpoint: DeepSpeed's file missing
        f"{universal / 'mp_rank_00_model_states.pt'} is missing"
    ]


def test_universal_conversion_is_atomic_and_reused(tmp_path):
    from qwenaudio_train.elastic import universal_checkpoint

    path = _saved_checkpoint(checkpoint.checkpoint_dir(tmp_path), 2)  # no real DeepSpeed files: conversion fails
    (path / "universal.partial").mkdir()  # a conversion cut short by a crash
    (path / "universal.partial" / "half.pt").write_text("x")
    with pytest.raises(
        checkpoint.CheckpointError,
        match=r"could not convert .*step_00000002 to DeepSpeed's universal "
        r"format \(.*\); the checkpoint is unchanged",
    ):
        universal_checkpoint(path, rank=0)
    assert not (path / "universal").exists() and not (path / "universal.partial").exists()
    assert checkpoint.problems(path) == []  # the checkpoint itself untouched
    (path / "universal").mkdir()  # a complete conversion (only ever renamed into place once complete): reused
    notes: list[str] = []
    assert universal_checkpoint(path, rank=0, log=notes.append) == path / "universal" and notes == []
