"""The launch layer: every script in launch/ renders the command it promises, with one run directory for all ranks.

Scripts run for real with DRY_RUN=1, or under a fake SLURM: `srun`, `scontrol`, `sbatch` and `sacct` are small
stub executables on PATH that record their arguments (and, for `sbatch`, run the job script the way a scheduler
would). Rendered torchrun / deepspeed command lines are parsed with those tools' own argument parsers, so a flag
the installed version does not know fails here. The deepspeed launcher and Hydra sweeps are run for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwenaudio_train.config import CONFIG_DIR
from qwenaudio_train.pretrain import strip_local_rank

# Process-group variables an in-process training test of this session may have set: a launcher must not see them.
_PG_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
SCRIPTS = [
    "train.sh",
    "multinode.sh",
    "deepspeed.sh",
    "slurm/train_single_node.sbatch",
    "slurm/train_multi_node.sbatch",
    "slurm/common.sh",
    "run_dir.sh",
    "signals.sh",
]
SBATCH = ["slurm/train_single_node.sbatch", "slurm/train_multi_node.sbatch"]


def _run(
    script: str, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(LAUNCH / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if k not in _PG_VARS}, **env},
        timeout=timeout,
    )


def _last_command(r: subprocess.CompletedProcess) -> list[str]:
    assert r.returncode == 0, r.stderr
    return shlex.split(r.stdout.strip().splitlines()[-1])


def _torchrun_args(cmd: list[str]):
    """Parse the part after `<python> -m torch.distributed.run` with torchrun's own parser."""
    from torch.distributed.run import get_args_parser

    i = cmd.index("torch.distributed.run")
    assert cmd[i - 1] == "-m"
    return get_args_parser().parse_args(cmd[i + 1 :])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- every script --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_valid_bash_without_python_logic(script):
    r = subprocess.run(["bash", "-n", str(LAUNCH / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (LAUNCH / script).read_text()
    assert not re.search(r"(python\S*|\$\{?PY\}?\"?)\s+-c\b", text)  # no inline Python ...
    assert not re.search(r"<<-?\s*['\"]?[A-Za-z_]\w*['\"]?\s*$", text, re.M)  # ... nor a heredoc program


# -- train.sh: signals and the exit code ----------------------------------------------------------------------
FAKE_TORCHRUN = r"""#!/usr/bin/env bash
# fake python running `-m torch.distributed.run ... run_dir=DIR`: waits for a signal; on USR1/TERM it records it, writes
# rank 0's stop record when FAKE_SAVE=1 (the ranks saved) and exits 1, as torchrun does after a forwarded signal.
printf '%s\0' "$@" > "$FAKE_LOG/args"
for a in "$@"; do case "$a" in run_dir=*) run_dir="${a#run_dir=}" ;; esac; done
on_signal() {
  echo "$1" >> "$FAKE_LOG/events"
  if [[ "${FAKE_SAVE:-1}" == 1 ]]; then echo "{\"signal\": \"SIG$1\"}" > "$run_dir/stopped_by_signal.json"; fi
  exit 1
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
echo started > "$FAKE_LOG/started"
while :; do sleep 0.05; done
"""


def _fake_torchrun(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "fake-log"
    log.mkdir()
    python = tmp_path / "fake-python"
    python.write_text(FAKE_TORCHRUN)
    python.chmod(0o755)
    return python, log


def _signal_when_started(cmd: list[str], env: dict[str, str], cwd: Path, started: Path, sig: int):
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the launcher never started its command"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


@pytest.mark.parametrize("script", ["train.sh", "multinode.sh"])
def test_torchrun_scripts_pass_the_signals_to_the_ranks_like_the_slurm_template(tmp_path, script):
    env = {**MULTI_ENV, "NPROC": "2"}
    r = _run(script, ["run_dir=runs/x"], env, tmp_path)
    args = _torchrun_args(_last_command(r))
    assert {"SIGTERM", "SIGUSR1"} <= set(args.signals_to_handle.split(","))
    assert args.shutdown_timeout == 100 and args.training_script_args == ["run_dir=runs/x"]


@pytest.mark.parametrize("script", ["train.sh", "multinode.sh"])
@pytest.mark.parametrize(
    "sig, saved, code",
    [
        (signal.SIGUSR1, "1", 3),  # the ranks saved on the signal: 3, whatever torchrun's own code
        (signal.SIGTERM, "1", 3),
        (signal.SIGUSR1, "0", 1),  # no save recorded: torchrun's code
    ],
)
def test_a_torchrun_script_forwards_a_signal_and_exits_3_after_a_save(tmp_path, script, sig, saved, code):
    python, log = _fake_torchrun(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k not in _PG_VARS},
        **{k: v for k, v in MULTI_ENV.items() if k != "DRY_RUN"},
        "PYTHON": str(python),
        "FAKE_LOG": str(log),
        "FAKE_SAVE": saved,
    }
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "stopped_by_signal.json").write_text("{}")  # stale, from an earlier stop: removed
    rc, out = _signal_when_started(
        ["bash", str(LAUNCH / script), "run_dir=runs/x"], env, tmp_path, log / "started", sig
    )
    assert (log / "events").read_text().split() == [signal.Signals(sig).name.removeprefix("SIG")], out
    assert rc == code, out


# -- multinode.sh ----------------------------------------------------------------------------------------------
MULTI_ENV = {
    "NNODES": "2",
    "NPROC": "4",
    "MASTER_ADDR": "node-a",
    "MASTER_PORT": "29600",
    "DRY_RUN": "1",
    "PYTHON": sys.executable,
}


def test_multinode_renders_the_same_rendezvous_command_on_every_node(tmp_path):
    env = {**MULTI_ENV, "RUN_DIR": "runs/exp1"}
    first = _last_command(_run("multinode.sh", ["experiment=debug", "trainer.max_steps=5"], env, tmp_path))
    time.sleep(1.1)  # a later start on another node must not change anything (no timestamps)
    second = _last_command(_run("multinode.sh", ["experiment=debug", "trainer.max_steps=5"], env, tmp_path))
    assert first == second
    args = _torchrun_args(first)
    assert (args.nnodes, args.nproc_per_node) == ("2", "4")
    assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == ("c10d", "node-a:29600", "exp1")
    assert args.module and args.training_script == "qwenaudio_train.pretrain"
    assert args.training_script_args == ["experiment=debug", "trainer.max_steps=5", "run_dir=runs/exp1"]
    assert (tmp_path / "runs" / "exp1").is_dir()


def test_multinode_takes_run_dir_from_the_overrides(tmp_path):
    cmd = _last_command(
        _run("multinode.sh", ["run_dir=runs/exp2", "deepspeed=zero3"], {**MULTI_ENV, "RUN_ID": "job-77"}, tmp_path)
    )
    args = _torchrun_args(cmd)
    assert args.training_script_args == ["run_dir=runs/exp2", "deepspeed=zero3"]  # not added a second time
    assert args.rdzv_id == "job-77"


@pytest.mark.parametrize(
    "env, args, message",
    [
        ({}, ["experiment=debug"], "give the run directory explicitly"),
        ({"RUN_DIR": "runs/a"}, ["run_dir=runs/b"], "disagree"),
        ({"RUN_DIR": "runs/a", "MASTER_ADDR": ""}, [], "MASTER_ADDR"),
        ({"RUN_DIR": "runs/a", "NNODES": ""}, [], "NNODES"),
    ],
)
def test_multinode_refuses_what_nodes_cannot_agree_on(tmp_path, env, args, message):
    r = _run("multinode.sh", args, {**MULTI_ENV, **env}, tmp_path)
    assert r.returncode == 2 and message in r.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything is created


# -- deepspeed.sh ----------------------------------------------------------------------------------------------
def test_deepspeed_dry_run_renders_the_launcher_command(tmp_path):
    from deepspeed.launcher.runner import parse_args

    (tmp_path / "hostfile").write_text("node-a slots=4\nnode-b slots=4\n")
    (tmp_path / ".deepspeed_env").write_text("NCCL_DEBUG=INFO\nOMP_NUM_THREADS=64\n")  # the user's own file
    env = {
        "HOSTFILE": "hostfile",
        "NUM_NODES": "2",
        "NUM_GPUS": "4",
        "MASTER_PORT": "29700",
        "DRY_RUN": "1",
        "DS_ARGS": "--launcher pdsh --ssh_port 2222",
        "HOME": str(tmp_path / "home"),
    }
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DS_ENV_FILE", "RUN_DIR") + _PG_VARS}
    r = subprocess.run(
        ["bash", str(LAUNCH / "deepspeed.sh"), "experiment=debug", "trainer.max_steps=5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**base, **env},
        timeout=60,
    )
    cmd = _last_command(r)
    assert Path(cmd[0]).name == "deepspeed"
    args = parse_args(cmd[1:])
    assert (args.hostfile, args.num_nodes, args.num_gpus, args.master_port) == ("hostfile", 2, 4, 29700)
    assert (args.launcher, args.ssh_port) == ("pdsh", 2222)
    assert args.module and args.user_script == "qwenaudio_train.pretrain"
    run_dirs = [a for a in args.user_args if a.startswith("run_dir=")]
    assert args.user_args[:2] == ["experiment=debug", "trainer.max_steps=5"]
    assert len(run_dirs) == 1 and run_dirs[0].startswith("run_dir=runs/debug-")  # chosen once, for every host
    # Remote hosts get OMP_NUM_THREADS through the env file the launcher reads; the user's lines are kept.
    env_file = tmp_path / run_dirs[0].split("=", 1)[1] / "deepspeed_env"
    assert env_file.read_text().splitlines() == ["NCCL_DEBUG=INFO", "OMP_NUM_THREADS=1"]


def test_deepspeed_refuses_a_missing_hostfile(tmp_path):
    r = _run("deepspeed.sh", ["run_dir=runs/x"], {"HOSTFILE": "nope", "DRY_RUN": "1"}, tmp_path)
    assert r.returncode == 2 and "HOSTFILE=nope does not exist" in r.stderr


def test_deepspeed_launcher_starts_a_rank_that_hydra_accepts(tmp_path):
    """The real `deepspeed` launcher appends --local_rank=N to the rank's argv; the entry point must still parse."""
    (tmp_path / "hostfile").write_text("localhost slots=1\n")
    env = {
        "HOSTFILE": "hostfile",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "DS_ARGS": "--no_ssh_check",
        "DEEPSPEED": str(Path(sys.executable).parent / "deepspeed"),
        "WANDB_MODE": "disabled",
    }
    r = _run(
        "deepspeed.sh", ["--cfg", "job", "logger.wandb_mode=disabled", "run_dir=runs/ds"], env, tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr  # the launcher logs the argv of every rank it spawns
    assert "'-m', 'qwenaudio_train.pretrain', '--local_rank=0', '--cfg', 'job'" in log
    assert r.stdout.count("run_dir: runs/ds\n") == 1  # and the rank composed the config


@pytest.mark.parametrize(
    "hostfile, env, no_ssh",
    [
        (None, {}, True),  # this node only
        ("node-a slots=4\n", {}, True),
        ("# a comment\nnode-a slots=4\n\n", {"MASTER_ADDR": "10.0.0.1"}, True),
        ("node-a slots=4\nnode-b slots=4\n", {"NUM_NODES": "1"}, True),  # the first host of two
        ("node-a slots=4\nnode-b slots=4\n", {}, False),
        ("node-a slots=4\n", {"DS_ARGS": "--force_multi"}, False),  # a single *remote* host, on purpose
    ],
)
def test_deepspeed_on_one_host_needs_no_ssh(tmp_path, hostfile, env, no_ssh):
    from deepspeed.launcher.runner import parse_args

    if hostfile is not None:
        (tmp_path / "hostfile").write_text(hostfile)
        env = {**env, "HOSTFILE": "hostfile"}
    r = _run("deepspeed.sh", ["run_dir=runs/x"], {"DRY_RUN": "1", "MASTER_ADDR": "", **env}, tmp_path)
    args = parse_args(_last_command(r)[1:])
    assert args.no_ssh == no_ssh and ("one host: no ssh" in r.stdout) == no_ssh
    if no_ssh:  # node 0 of one, and an address the launcher does not have to ask the host for over ssh
        assert args.node_rank == 0 and args.master_addr == env.get("MASTER_ADDR", "127.0.0.1")
    else:
        assert args.node_rank == -1


def test_deepspeed_launcher_on_a_one_host_hostfile_never_calls_ssh(tmp_path):
    """DeepSpeed 0.19 ssh-es to a hostfile's only host unless told --no_ssh; here ssh fails and records the call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/usr/bin/env bash\necho "ssh $*" >> {tmp_path / "ssh.log"}\nexit 255\n')
    (bin_dir / "ssh").chmod(0o755)
    (tmp_path / "hostfile").write_text("localhost slots=1\n")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOSTFILE": "hostfile",
        "MASTER_ADDR": "",
        "MASTER_PORT": str(_free_port()),
        "DEEPSPEED": str(Path(sys.executable).parent / "deepspeed"),
        "WANDB_MODE": "disabled",
    }
    r = _run("deepspeed.sh", ["--cfg", "job", "logger.wandb_mode=disabled", "run_dir=runs/ds"], env, tmp_path, 120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (tmp_path / "ssh.log").exists()
    assert r.stdout.count("run_dir: runs/ds\n") == 1  # the rank ran


# -- the entry point and --local_rank --------------------------------------------------------------------------
def test_strip_local_rank_moves_it_to_the_environment(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "")  # recorded, so the original is restored afterwards
    monkeypatch.delenv("LOCAL_RANK")
    assert strip_local_rank(["--local_rank=3", "a=1", "--cfg", "job"]) == ["a=1", "--cfg", "job"]
    assert os.environ["LOCAL_RANK"] == "3"
    monkeypatch.setenv("LOCAL_RANK", "1")  # the launcher's environment wins over the argument
    assert strip_local_rank(["x=2", "--local_rank", "5", "--local-rank=6"]) == ["x=2"]
    assert os.environ["LOCAL_RANK"] == "1"
    assert strip_local_rank(["run_dir=--local_rank"]) == ["run_dir=--local_rank"]


def test_entry_point_accepts_the_deepspeed_local_rank_argument(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "qwenaudio_train.pretrain",
            "--local_rank=0",
            "--cfg",
            "job",
            "logger.wandb_mode=disabled",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "wandb_mode: disabled" in r.stdout and "trainer:" in r.stdout
    assert not (tmp_path / "runs").exists()  # --cfg prints and returns without running


# -- SLURM batch templates -------------------------------------------------------------------------------------
FAKE_SRUN = r"""#!/usr/bin/env bash
# fake srun: record the arguments (NUL-separated); FAKE_SRUN_MODE=wait: run until a signal arrives;
# FAKE_SRUN_MODE=exec: run the command after the srun options, as one task.
printf '%s\0' "$@" > "$FAKE_SLURM_LOG/srun.args"
case "${FAKE_SRUN_MODE:-record}" in
  wait)
    trap 'echo "srun got USR1" >> "$FAKE_SLURM_LOG/events"; exit 0' USR1
    trap 'echo "srun got TERM" >> "$FAKE_SLURM_LOG/events"; exit 0' TERM
    echo started > "$FAKE_SLURM_LOG/srun.started"
    while :; do sleep 0.05; done ;;
  exec)
    while [[ $# -gt 0 && "$1" == -* ]]; do
      case "$1" in --output|--error|-o|-e) shift 2 ;; *) shift ;; esac
    done
    exec "$@" ;;
esac
"""
FAKE_SCONTROL = r"""#!/usr/bin/env bash
# fake scontrol: `show hostnames` prints FAKE_NODES one per line; anything else is recorded.
if [[ "$1 $2" == "show hostnames" ]]; then printf '%s\n' $FAKE_NODES; exit 0; fi
echo "scontrol $*" >> "$FAKE_SLURM_LOG/events"
"""


@pytest.fixture
def fake_slurm(tmp_path):
    """A PATH with stub SLURM commands, and the environment SLURM gives a batch script."""
    bin_dir, log = tmp_path / "bin", tmp_path / "slurm-log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SLURM_LOG": str(log),
        "FAKE_NODES": "gpu-07 gpu-08",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "qa",
        "SLURM_JOB_NODELIST": "gpu-[07-08]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_GPUS_ON_NODE": "4",
        "SLURM_CPUS_PER_TASK": "16",
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "PYTHON": sys.executable,
    }
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k not in ("RUN_DIR", "NPROC") + _PG_VARS
    }
    return {"env": {**base, **env}, "log": log, "dir": tmp_path}


def _sbatch(fake, script: str, args: list[str], **env: str) -> tuple[list[str], list[str]]:
    """Run a batch script as SLURM would (bash, in the submit dir); return srun's options and its command."""
    r = subprocess.run(
        ["bash", str(LAUNCH / script), *args],
        capture_output=True,
        text=True,
        cwd=fake["dir"] / "bin",
        env={**fake["env"], **env},
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    argv = (fake["log"] / "srun.args").read_text().split("\0")[:-1]
    i = argv.index(sys.executable)
    return argv[:i], argv[i:]


def _headers(script: str) -> list[str]:
    return [line.split(None, 1)[1] for line in (LAUNCH / script).read_text().splitlines() if line.startswith("#SBATCH")]


@pytest.mark.parametrize("script", SBATCH)
def test_sbatch_headers_ask_for_a_warning_signal_and_requeue(script):
    headers = _headers(script)
    assert "--ntasks-per-node=1" in headers and "--requeue" in headers
    assert "--signal=B:USR1@120" in headers  # to the batch shell, whose trap forwards it and requeues
    assert "--open-mode=append" in headers  # a requeued job appends to its log
    for option in ("--gpus-per-node=", "--cpus-per-task=", "--time=", "--job-name=", "--output="):
        assert any(h.startswith(option) for h in headers), option
    nodes = next(h for h in headers if h.startswith("--nodes="))
    assert nodes == ("--nodes=1" if "single" in script else "--nodes=2")


def test_multi_node_sbatch_runs_torchrun_per_node_at_the_first_node(fake_slurm):
    srun, cmd = _sbatch(fake_slurm, "slurm/train_multi_node.sbatch", ["experiment=debug", "trainer.max_steps=5"])
    assert "--nodes=2" in srun and "--ntasks-per-node=1" in srun and "--cpus-per-task=16" in srun
    args = _torchrun_args(cmd)
    assert (args.nnodes, args.nproc_per_node) == ("2", "4")
    assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == ("c10d", "gpu-07:24242", "4242")
    assert "SIGUSR1" in args.signals_to_handle.split(",")  # torchrun forwards the warning to the ranks
    assert args.module and args.training_script == "qwenaudio_train.pretrain"
    assert args.training_script_args == ["experiment=debug", "trainer.max_steps=5", "run_dir=runs/qa-4242"]
    assert (fake_slurm["dir"] / "runs" / "qa-4242").is_dir()  # in the submit dir, not where sbatch was called


def test_single_node_sbatch_runs_standalone_torchrun(fake_slurm):
    srun, cmd = _sbatch(
        fake_slurm, "slurm/train_single_node.sbatch", ["deepspeed=zero3"], SLURM_JOB_NUM_NODES="1", RUN_DIR="runs/fixed"
    )
    assert "--nodes=1" in srun and "--ntasks=1" in srun
    args = _torchrun_args(cmd)
    assert args.standalone and args.nproc_per_node == "4"
    assert args.training_script_args == ["deepspeed=zero3", "run_dir=runs/fixed"]


@pytest.mark.parametrize("script", SBATCH)
def test_sbatch_runs_from_slurms_spool_copy(fake_slurm, script):
    """SLURM runs a copy of the batch script from its spool directory: common.sh comes from the submit directory."""
    submit = fake_slurm["dir"] / "repo"
    (submit / "launch").mkdir(parents=True)
    (submit / "launch" / "slurm").symlink_to(LAUNCH / "slurm")
    spool = fake_slurm["dir"] / "spool" / "job4242"
    spool.mkdir(parents=True)
    (spool / "slurm_script").write_text((LAUNCH / script).read_text())
    env = {
        **fake_slurm["env"],
        "SLURM_SUBMIT_DIR": str(submit),
        "SLURM_JOB_NUM_NODES": "1" if "single" in script else "2",
    }
    r = subprocess.run(
        ["bash", str(spool / "slurm_script"), "experiment=debug"], capture_output=True, text=True, cwd=spool, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    argv = (fake_slurm["log"] / "srun.args").read_text().split("\0")[:-1]
    args = _torchrun_args(argv[argv.index(sys.executable) :])
    assert args.training_script_args == ["experiment=debug", "run_dir=runs/qa-4242"]
    assert (submit / "runs" / "qa-4242").is_dir()
    r = subprocess.run(
        ["bash", str(spool / "slurm_script")],
        capture_output=True,
        text=True,
        cwd=spool,
        env={**env, "SLURM_SUBMIT_DIR": str(fake_slurm["dir"] / "elsewhere")},
    )
    assert r.returncode == 2 and "submit from the repository root" in r.stderr


@pytest.mark.parametrize("script", SBATCH)
def test_sbatch_keeps_only_its_header_and_what_differs(script):
    text = (LAUNCH / script).read_text()
    assert "common.sh" in text and "trap " not in text and "scontrol requeue" not in text  # shared, not copied
    assert len(text.splitlines()) < 50


@pytest.mark.parametrize("script", SBATCH)
def test_a_requeued_job_resumes_its_own_run(fake_slurm, script):
    _, cmd = _sbatch(fake_slurm, script, ["run_dir=runs/mine", "trainer.resume=none"], SLURM_RESTART_COUNT="2")
    # the explicit run_dir is kept (not added twice) and resume=auto comes last, so it wins
    assert _torchrun_args(cmd).training_script_args == [
        "run_dir=runs/mine",
        "trainer.resume=none",
        "trainer.resume=auto",
    ]


@pytest.mark.parametrize("script", SBATCH)
@pytest.mark.parametrize(
    "sig, restarts, requeued",
    [
        (signal.SIGUSR1, "0", True),  # time limit near: save, then requeue
        (signal.SIGUSR1, "10", False),  # MAX_REQUEUES (10) reached: save and stop
        (signal.SIGTERM, "0", False),  # preemption / scancel: save; SLURM itself requeues a preempted job
    ],
)
def test_signal_is_forwarded_before_the_job_requeues(fake_slurm, script, sig, restarts, requeued):
    env = {**fake_slurm["env"], "FAKE_SRUN_MODE": "wait", "SLURM_RESTART_COUNT": restarts}
    proc = subprocess.Popen(
        ["bash", str(LAUNCH / script)],
        cwd=fake_slurm["dir"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = fake_slurm["log"] / "srun.started"
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "srun never started"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    events = (fake_slurm["log"] / "events").read_text().splitlines()
    name = signal.Signals(sig).name.removeprefix("SIG")
    assert events[0] == f"srun got {name}", out  # the trainer is asked to save first ...
    if requeued:
        assert events[1:] == ["scontrol requeue 4242"] and proc.returncode == 0, out  # ... then the job requeues
    else:
        assert events[1:] == [], out


@pytest.mark.parametrize("sig, restarts", [(signal.SIGTERM, "0"), (signal.SIGUSR1, "10")])
def test_a_job_that_saved_on_a_signal_and_is_not_requeued_exits_3(fake_slurm, tmp_path, sig, restarts):
    python, log = _fake_torchrun(tmp_path)
    env = {
        **fake_slurm["env"],
        "FAKE_SRUN_MODE": "exec",
        "PYTHON": str(python),
        "FAKE_LOG": str(log),
        "SLURM_RESTART_COUNT": restarts,
    }
    rc, out = _signal_when_started(
        ["bash", str(LAUNCH / "slurm/train_single_node.sbatch")], env, fake_slurm["dir"], log / "started", sig
    )
    assert (log / "events").read_text().split() == [signal.Signals(sig).name.removeprefix("SIG")], out
    assert rc == 3 and "the ranks saved on a signal" in out, out


# -- Hydra sweeps ----------------------------------------------------------------------------------------------
STAND_IN_APP = """
import json, os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

import qwenaudio_train.config  # registers the config schema the real configs build on


# A stand-in for training with the real configs: it records what each job of a sweep was given.
@hydra.main(config_path={config_dir!r}, config_name="pretrain", version_base="1.3")
def app(cfg):
    if os.environ.get("STAND_IN_VALIDATE"):
        from qwenaudio_train.config import validate
        validate(cfg)
    hc = HydraConfig.get()
    record = dict(run_dir=cfg.run_dir, output_dir=hc.runtime.output_dir, lr=cfg.optim.lr, job_id=hc.job.id,
                  env={{k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "SLURM_ARRAY_TASK_ID")}})
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.run_dir) / "job.json").write_text(json.dumps(record))
    return record


if __name__ == "__main__":
    app()
"""


def _stand_in(tmp_path: Path) -> Path:
    app = tmp_path / "app.py"
    app.write_text(STAND_IN_APP.format(config_dir=str(CONFIG_DIR)))
    return app


def _jobs(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/job.json"))]


def test_local_multirun_gives_every_job_its_own_run_dir(tmp_path):
    app = _stand_in(tmp_path)
    r = subprocess.run(
        [sys.executable, str(app), "--multirun", "+sweep=per_job", "optim.lr=1e-4,3e-4", "logger=disabled"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "STAND_IN_VALIDATE": "1"},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    sweep = tmp_path / "runs" / "pretrain-sweep"
    jobs = _jobs(sweep)
    assert [j["lr"] for j in jobs] == [1e-4, 3e-4]
    assert [j["run_dir"] for j in jobs] == ["runs/pretrain-sweep/0", "runs/pretrain-sweep/1"]
    assert all(Path(j["output_dir"]) == tmp_path / j["run_dir"] for j in jobs)  # Hydra's files beside the run's
    assert (sweep / "multirun.yaml").is_file()


def _launcher_cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("pretrain", overrides=overrides, return_hydra_config=True)


def test_slurm_launcher_config_composes_with_its_parameters():
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    cfg = _launcher_cfg(
        ["hydra/launcher=slurm", "+sweep=per_job", "hydra.launcher.partition=gpu", "hydra.launcher.nodes=2"]
    )
    HydraConfig.instance().set_config(cfg)  # the launcher's keys interpolate ${hydra.sweep.dir}, ${hydra.job.name}
    try:
        launcher = instantiate(cfg.hydra.launcher)
    finally:
        HydraConfig.instance().cfg = None
    assert type(launcher).__qualname__ == SlurmLauncher.__qualname__  # (Hydra imports plugins on its own)
    p = launcher.params
    assert (p["partition"], p["nodes"], p["gpus_per_node"], p["tasks_per_node"]) == ("gpu", 2, 8, 8)
    assert p["additional_parameters"]["signal"] == "USR1@120" and p["timeout_min"] > 0  # the trainer saves on USR1
    assert p["submitit_folder"] == "runs/pretrain-sweep/.submitit/%j"
    assert any(line.startswith("export MASTER_ADDR=") for line in p["setup"])


FAKE_SBATCH = r"""#!/usr/bin/env bash
# fake sbatch: keep the script, answer with a job id, then run each array task like a scheduler would (once the
# submitter has written the task's input next to its log).
cp "$1" "$FAKE_SLURM_LOG/submitted.sh"
last=$(sed -n 's/^#SBATCH --array=0-\([0-9]*\).*/\1/p' "$1")
out=$(sed -n 's/^#SBATCH --output=//p' "$1")
echo "Submitted batch job 4242"
(
  for i in $(seq 0 "${last:-0}"); do
    dir=$(dirname "${out//%A/4242}"); dir="${dir//%a/$i}"
    for _ in $(seq 400); do ls "$dir"/*_submitted.pkl > /dev/null 2>&1 && break; sleep 0.05; done
    SLURM_JOB_ID=$((5000 + i)) SLURM_ARRAY_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$i SLURM_JOB_NODELIST=gpu-07 \
      SLURM_JOB_NUM_NODES=1 SLURM_NODEID=0 SLURM_NTASKS=1 SLURM_PROCID=0 SLURM_LOCALID=0 \
      FAKE_SRUN_MODE=exec bash "$1"
    touch "$FAKE_SLURM_LOG/done_$i"
  done
) < /dev/null >> "$FAKE_SLURM_LOG/jobs.log" 2>&1 &
"""
FAKE_SACCT = r"""#!/usr/bin/env bash
# fake sacct: array tasks are COMPLETED once their script has returned, RUNNING before.
echo "JobID|State|NodeList"
for i in 0 1 2 3; do
  if [[ -e "$FAKE_SLURM_LOG/done_$i" ]]; then echo "4242_$i|COMPLETED|gpu-07"; else echo "4242_$i|RUNNING|gpu-07"; fi
done
"""


def test_slurm_multirun_submits_a_job_array_with_one_run_dir_per_job(fake_slurm):
    tmp = fake_slurm["dir"]
    for name, text in (("sbatch", FAKE_SBATCH), ("sacct", FAKE_SACCT)):
        (tmp / "bin" / name).write_text(text)
        (tmp / "bin" / name).chmod(0o755)
    app = _stand_in(tmp)
    r = subprocess.run(
        [
            sys.executable,
            str(app),
            "--multirun",
            "hydra/launcher=slurm",
            "+sweep=per_job",
            "optim.lr=1e-4,3e-4",
            "hydra.launcher.gpus_per_node=null",
            "hydra.launcher.tasks_per_node=1",
            "hydra.launcher.partition=gpu",
        ],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=fake_slurm["env"],
        timeout=120,
    )
    jobs_log = fake_slurm["log"] / "jobs.log"
    assert r.returncode == 0, r.stderr[-3000:] + (jobs_log.read_text() if jobs_log.exists() else "")
    script = (fake_slurm["log"] / "submitted.sh").read_text().splitlines()
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --partition=gpu" in script
    assert "#SBATCH --signal=USR1@120" in script  # the trainer's save signal, not submitit's default USR2
    jobs = _jobs(tmp / "runs" / "pretrain-sweep")
    assert [j["run_dir"] for j in jobs] == ["runs/pretrain-sweep/0", "runs/pretrain-sweep/1"]
    assert [j["lr"] for j in jobs] == [1e-4, 3e-4]
    assert [j["job_id"] for j in jobs] == ["4242_0", "4242_1"]
    # the setup lines ran in the batch script: every rank of a job meets at its first node
    assert [j["env"] for j in jobs] == [
        {"MASTER_ADDR": "gpu-07", "MASTER_PORT": "25000", "SLURM_ARRAY_TASK_ID": "0"},
        {"MASTER_ADDR": "gpu-07", "MASTER_PORT": "25001", "SLURM_ARRAY_TASK_ID": "1"},
    ]
