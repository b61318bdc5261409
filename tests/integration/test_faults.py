"""Faults: non-finite losses, SIGTERM (preemption), kill -9 at any moment, for ZeRO stages 1, 2 and 3 on 2 ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qwenaudio_train.checkpoint import latest_checkpoint, load_model_state_dict
from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run)}


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited with {proc.returncode} before the fault was injected")
        time.sleep(0.2)
    raise AssertionError("timed out waiting for training progress")


def test_nonfinite_loss_skips_the_step_without_touching_weights(corpus, tmp_path):
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "nan"
    cfg = compose(
        "pretrain",
        train_overrides(corpus, run, "trainer.inject_nan_at=[3]", "trainer.save_every=1", "trainer.keep_last=10"),
    )
    Trainer(cfg).train()
    records = read_metrics(run)
    assert [r["nonfinite_steps"] for r in records] == [0, 0, 1, 1, 1, 1]
    assert all(r["loss"] == r["loss"] for r in records if r["step"] != 3)  # finite elsewhere
    w2 = load_model_state_dict(run / "checkpoints" / "step_00000002")
    w3 = load_model_state_dict(run / "checkpoints" / "step_00000003")
    w4 = load_model_state_dict(run / "checkpoints" / "step_00000004")
    assert all(torch.equal(w2[k], w3[k]) for k in w2)  # the skipped step changed nothing
    assert any(not torch.equal(w3[k], w4[k]) for k in w3)  # training went on


def test_nonfinite_losses_in_a_row_stop_without_saving(corpus, tmp_path):
    from qwenaudio_train.trainer import NonFiniteLossError, Trainer

    run = tmp_path / "nan_stop"
    cfg = compose(
        "pretrain",
        train_overrides(
            corpus, run, "trainer.inject_nan_at=[2,3]", "trainer.save_every=1", "trainer.max_nonfinite_in_a_row=2"
        ),
    )
    with pytest.raises(NonFiniteLossError, match="2 steps in a row"):
        Trainer(cfg).train()
    assert latest_checkpoint(run / "checkpoints").name == "step_00000002"  # step 3 was never saved


def test_sigterm_saves_and_resume_continues_exactly(corpus, tmp_path):
    overrides = ["trainer.max_steps=40", "trainer.save_every=100", "trainer.keep_last=2"]
    ref = tmp_path / "ref"
    env = subprocess_env(OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "qwenaudio_train.pretrain"]
    subprocess.run(base + train_overrides(corpus, ref, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    run = tmp_path / "preempted"
    proc = subprocess.Popen(base + train_overrides(corpus, run, *overrides), cwd=REPO, env=env)
    metrics = run / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 0
    stopped_at = int(latest_checkpoint(run / "checkpoints").name.split("_")[1])
    assert 3 <= stopped_at < 40  # saved where the signal arrived, not at a periodic save
    subprocess.run(base + train_overrides(corpus, run, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    assert _losses(run) == _losses(ref)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_kill_9_on_two_ranks_resumes_exactly(corpus, tmp_path, zero):
    overrides = [f"deepspeed=zero{zero}", "trainer.max_steps=10", "trainer.save_every=2", "trainer.keep_last=2"]
    env = subprocess_env(NPROC="2", PYTHON=sys.executable)
    launch = ["bash", str(REPO / "launch" / "train.sh")]
    ref = tmp_path / "ref"
    subprocess.run(launch + train_overrides(corpus, ref, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        launch + train_overrides(corpus, run, *overrides), cwd=REPO, env=env, start_new_session=True
    )
    latest = run / "checkpoints" / "latest"
    _wait_for(lambda: latest.is_file() and latest.read_text() >= "step_00000004", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks, wherever they are
    proc.wait(timeout=60)
    killed_at = latest_checkpoint(run / "checkpoints")
    assert killed_at is not None and json.loads((killed_at / "trainer_state.json").read_text())["step"] < 10
    subprocess.run(launch + train_overrides(corpus, run, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    assert _losses(run) == _losses(ref)
    assert sorted(_losses(run)) == list(range(1, 11))


def test_zero3_checkpoint_exports_to_a_plain_model_equal_to_the_live_weights(corpus, tmp_path):
    import deepspeed

    from qwenaudio_train.model import QwenAudioModel
    from qwenaudio_train.runs import export
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "z3"
    trainer = Trainer(compose("pretrain", train_overrides(corpus, run, "deepspeed=zero3", "trainer.max_steps=3")))
    trainer.train()
    params = list(trainer.model.named_parameters())
    assert all(p.ds_tensor.numel() > 0 for _, p in params)  # really partitioned (ZeRO-3 thresholds at 0)
    with deepspeed.zero.GatheredParameters([p for _, p in params]):
        live = {n: p.detach().clone() for n, p in params}
    exported = QwenAudioModel.from_pretrained(export(run, tmp_path / "exported"))
    got = dict(exported.named_parameters())
    assert set(got) == set(live)
    assert all(torch.equal(got[n].float(), live[n].float()) for n in live)
    assert (tmp_path / "exported" / "llm" / "config.json").is_file()


def test_resume_with_another_world_size_stops_with_the_fix(corpus, tmp_path):
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "ws"
    Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.max_steps=2"))).train()
    state_file = run / "checkpoints" / "step_00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["world_size"] = 2  # as if saved by a 2-rank run
    state_file.write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match="(?s)saved by 2 ranks.*ds_to_universal.*load_universal=true"):
        Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.max_steps=4")))
