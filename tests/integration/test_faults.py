"""Faults: non-finite losses, SIGTERM/SIGUSR1 (preemption, with loader workers), kill -9 of the ranks at any moment
(ZeRO stages 1, 2 and 3 on 2 ranks), damaged or crafted checkpoints, a full or read-only checkpoint directory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from qwenaudio_train.checkpoint import CheckpointError, latest_checkpoint, load_model_state_dict
from qwenaudio_train.config import compose
from qwenaudio_train.faults import EXIT_SIGNAL_SAVED, SIGNAL_STOP_FILE, base_optimizer
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


def _optimizer_state(trainer) -> list[tuple[str, torch.Tensor]]:
    opt = base_optimizer(trainer.optimizer)
    return [(k, v.clone() if torch.is_tensor(v) else torch.tensor(v)) for s in opt.state.values() for k, v in s.items()]


@pytest.mark.parametrize("zero", [0, 2, 3])
def test_a_skipped_step_leaves_the_optimizer_state_untouched(corpus, tmp_path, zero):
    """Adam's step count and moments stay as they were (a zero gradient would add 1 and shrink them x0.9/x0.999)."""
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "skip"
    trainer = Trainer(
        compose("pretrain", train_overrides(corpus, run, f"deepspeed=zero{zero}", "trainer.inject_nan_at=[3]"))
    )
    batches = iter(trainer.loader)
    for _ in range(2):
        assert trainer.train_step(batches)["finite"]
        trainer.step += 1
    before = _optimizer_state(trainer)
    weights = [p.detach().clone() for p in trainer.model.parameters()]
    assert not trainer.train_step(batches)["finite"]  # step 3: the injected NaN
    trainer.step += 1
    after = _optimizer_state(trainer)
    assert [k for k, _ in after] == [k for k, _ in before] and {"step", "exp_avg", "exp_avg_sq"} <= {
        k for k, _ in before
    }
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(after, before))
    assert all(torch.equal(p, w) for p, w in zip(trainer.model.parameters(), weights))
    assert trainer.train_step(batches)["finite"]  # step 4 trains: the state moves on
    assert any(not torch.equal(a, b) for (_, a), (_, b) in zip(_optimizer_state(trainer), before))


def test_sigterm_with_loader_workers_saves_and_resume_continues_exactly(corpus, tmp_path):
    """SIGTERM to the whole process group (as torchrun and SLURM send it): the loader worker outlives it, the
    process saves, records the signal and exits 3; the same command resumes batch for batch."""
    overrides = ["trainer.max_steps=16", "trainer.save_every=100", "data.num_workers=1"]
    ref = tmp_path / "ref"
    env = subprocess_env(OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "qwenaudio_train.pretrain"]
    subprocess.run(base + train_overrides(corpus, ref, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    run = tmp_path / "preempted"
    proc = subprocess.Popen(base + train_overrides(corpus, run, *overrides), cwd=REPO, env=env, start_new_session=True)
    metrics = run / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 3, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # the process and its loader worker
    assert proc.wait(timeout=300) == EXIT_SIGNAL_SAVED
    stopped_at = int(latest_checkpoint(run / "checkpoints").name.split("_")[1])
    assert 3 <= stopped_at < 16  # saved where the signal arrived, not at a periodic save
    record = json.loads((run / SIGNAL_STOP_FILE).read_text())
    assert record["signal"] == "SIGTERM" and record["step"] == stopped_at
    subprocess.run(base + train_overrides(corpus, run, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    assert _losses(run) == _losses(ref)
    assert not (run / SIGNAL_STOP_FILE).exists()  # the record describes the last stop only


def test_sigusr1_to_train_sh_saves_on_both_ranks_and_exits_3(corpus, tmp_path):
    """SIGUSR1 to the launcher script reaches the ranks (torchrun forwards it), both save, rank 0 logs the signal,
    and train.sh exits 3; the resume trains the rest exactly."""
    overrides = ["trainer.max_steps=12", "trainer.save_every=100", "data.num_workers=1"]
    env = subprocess_env(NPROC="2", PYTHON=sys.executable)
    launch = ["bash", str(REPO / "launch" / "train.sh")]
    ref = tmp_path / "ref"
    subprocess.run(launch + train_overrides(corpus, ref, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    run = tmp_path / "preempted"
    proc = subprocess.Popen(
        launch + train_overrides(corpus, run, *overrides), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    metrics = run / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2, proc)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_SIGNAL_SAVED, out
    stopped_at = json.loads((run / SIGNAL_STOP_FILE).read_text())["step"]
    assert 2 <= stopped_at < 12 and latest_checkpoint(run / "checkpoints").name == f"step_{stopped_at:08d}"
    assert f"SIGUSR1: saved step {stopped_at}, exiting with code 3" in out
    subprocess.run(launch + train_overrides(corpus, run, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    assert _losses(run) == _losses(ref)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_kill_9_on_two_ranks_resumes_exactly(corpus, tmp_path, zero):
    overrides = [f"deepspeed=zero{zero}", "trainer.max_steps=10", "trainer.save_every=2", "trainer.keep_last=2"]
    env = subprocess_env(NPROC="2", PYTHON=sys.executable)
    launch = ["bash", str(REPO / "launch" / "train.sh")]
    ref = tmp_path / "ref"
    subprocess.run(launch + train_overrides(corpus, ref, *overrides), check=True, cwd=REPO, env=env, timeout=600)
    run = tmp_path / "killed"
    proc = subprocess.Popen(launch + train_overrides(corpus, run, *overrides), cwd=REPO, env=env)
    latest = run / "checkpoints" / "latest"
    _wait_for(lambda: latest.is_file() and latest.read_text() >= "step_00000002", proc)
    # torchrun starts each rank in its own session: kill the ranks themselves (and the launchers above them).
    processes = psutil.Process(proc.pid).children(recursive=True)
    ranks = [
        p for p in processes if "qwenaudio_train.pretrain" in p.cmdline() and "torch.distributed.run" not in p.cmdline()
    ]
    assert len(ranks) == 2
    for p in [*ranks, *processes, psutil.Process(proc.pid)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.wait(timeout=60)
    killed_at = latest_checkpoint(run / "checkpoints")
    assert killed_at is not None
    killed_step = json.loads((killed_at / "trainer_state.json").read_text())["step"]
    assert killed_step < 10
    resumed = subprocess.run(
        launch + train_overrides(corpus, run, *overrides),
        check=True,
        cwd=REPO,
        env=env,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert _losses(run) == _losses(ref)
    assert sorted(_losses(run)) == list(range(1, 11))
    trained = re.search(r"finished at step 10/10 \((\d+) steps? in", resumed.stdout)
    assert trained and int(trained.group(1)) == 10 - killed_step, resumed.stdout  # the resume did the rest


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
    state["world_size"] = 2  # as if saved by a 2-rank run, with rank 1's parts
    state_file.write_text(json.dumps(state))
    for name in ("rng_rank{}.pt", "data_state_rank{}.json"):
        (state_file.parent / name.format(1)).write_bytes((state_file.parent / name.format(0)).read_bytes())
    with pytest.raises(RuntimeError, match="(?s)saved by 2 ranks.*ds_to_universal.*load_universal=true"):
        Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.max_steps=4")))


@pytest.fixture(scope="module")
def six_steps(corpus, tmp_path_factory) -> Path:
    """A finished 1-rank run with checkpoints at steps 3 and 6 (copy it before damaging it)."""
    from qwenaudio_train.trainer import Trainer

    run = tmp_path_factory.mktemp("six") / "run"
    Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.keep_last=5"))).train()
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / "run"))


def test_a_missing_or_cut_short_part_is_named_and_auto_falls_back_to_the_intact_checkpoint(corpus, six_steps, tmp_path):
    from qwenaudio_train.trainer import Trainer

    run = _copy(six_steps, tmp_path)
    ckpts = run / "checkpoints"
    (ckpts / "step_00000006" / "data_state_rank0.json").unlink()  # would resume with another data order
    explicit = train_overrides(corpus, run, f"trainer.resume={ckpts / 'step_00000006'}")
    with pytest.raises(
        CheckpointError,
        match=r"cannot resume .*step_00000006: .*data_state_rank0.json is missing\. Resume from the previous intact "
        r"checkpoint with trainer.resume=.*step_00000003",
    ):
        Trainer(compose("pretrain", explicit))
    trainer = Trainer(compose("pretrain", train_overrides(corpus, run)))  # trainer.resume=auto
    assert trainer.resumed_from == ckpts / "step_00000003" and trainer.step == 3
    assert (
        "skipped step_00000006" in trainer.resume_notes[0]
        and "data_state_rank0.json is missing" in (trainer.resume_notes[0])
    )
    model_file = ckpts / "step_00000003" / "mp_rank_00_model_states.pt"
    model_file.write_bytes(model_file.read_bytes()[:1000])  # cut short: named, not "zip archive corrupted"
    with pytest.raises(CheckpointError, match=r"no intact checkpoint .*mp_rank_00_model_states.pt is cut short"):
        Trainer(compose("pretrain", train_overrides(corpus, run)))


def test_a_crafted_pickle_in_a_checkpoint_runs_nothing_on_resume(corpus, six_steps, tmp_path):
    """DeepSpeed's loader and ours unpickle weights only, even when the size list was edited to match."""
    from qwenaudio_train.trainer import Trainer

    class Evil:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    run = _copy(six_steps, tmp_path)
    step = run / "checkpoints" / "step_00000006"
    marker = tmp_path / "pickle_ran"
    for name in ("zero_pp_rank_0_mp_rank_00_optim_states.pt", "rng_rank0.pt"):
        original = (step / name).read_bytes()
        torch.save({"x": Evil()}, step / name)
        state = json.loads((step / "trainer_state.json").read_text())
        state["files"][name] = (step / name).stat().st_size
        (step / "trainer_state.json").write_text(json.dumps(state))
        with pytest.raises(CheckpointError, match="could not be loaded|could not load checkpoint"):
            Trainer(compose("pretrain", train_overrides(corpus, run)))
        assert not marker.exists()
        (step / name).write_bytes(original)
        state["files"][name] = len(original)
        (step / "trainer_state.json").write_text(json.dumps(state))


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0
    )


def test_a_full_disk_says_no_space_and_keeps_the_previous_checkpoint(corpus, tmp_path):
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "full"
    ckpts = run / "checkpoints"
    if not _mount_tmpfs(ckpts, "size=16M"):  # room for one checkpoint of the debug model (~11 MB), not two
        pytest.skip("mounting a small tmpfs needs root")
    try:
        trainer = Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.keep_last=5")))
        with pytest.raises(
            CheckpointError,
            match=r"no space left on the device of .*step 6 was not saved; the "
            r"previous checkpoint .*step_00000003 is intact",
        ):
            trainer.train()
        assert latest_checkpoint(ckpts) == ckpts / "step_00000003"
        assert [p.name for p in ckpts.iterdir() if p.is_dir()] == ["step_00000003"]  # the partial save is gone
    finally:
        subprocess.run(["umount", "--lazy", str(ckpts)], check=True)  # lazy: the failed write's file may be open


def test_a_read_only_checkpoint_dir_says_so(corpus, tmp_path):
    from qwenaudio_train.trainer import Trainer

    run = tmp_path / "ro"
    ckpts = run / "checkpoints"
    mounted = os.geteuid() == 0 and _mount_tmpfs(ckpts, "ro,size=1M")  # root writes through permissions
    if not mounted:
        ckpts.mkdir(parents=True)
        ckpts.chmod(0o555)
    try:
        trainer = Trainer(compose("pretrain", train_overrides(corpus, run, "trainer.max_steps=1")))
        with pytest.raises(
            CheckpointError,
            match=r"checkpoint directory .* is read-only or not writable .*step 1 "
            r"was not saved; no earlier checkpoint exists; make it writable or give another run_dir",
        ):
            trainer.train()
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(ckpts)], check=True)  # lazy: the failed write's file may be open
        else:
            ckpts.chmod(0o755)
