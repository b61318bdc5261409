"""The package as a user installs it: a wheel, installed non-editable into a fresh environment, used from a job
directory that is not the clone. Builds the tiny offline corpus there, trains 2 steps on 2 ranks, then evaluates,
exports and chats with that run from yet another directory (a run carries its tokenizer and absolute data paths),
and asks every entry point for --help.

The throwaway environment reuses this environment's installed dependencies (torch pinned, DeepSpeed, ...) through a
``.pth`` line, so nothing is downloaded; the package itself comes only from the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.integration.conftest import subprocess_env

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600, stdin: str | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(bin dir of a fresh environment holding only the wheel of this checkout, its environment variables)."""
    tmp = tmp_path_factory.mktemp("install")
    # Build from a clean copy of the sources: setuptools' build/ cache in a checkout can hold modules since removed.
    src = tmp / "src"
    junk = (
        ".venv",
        ".git",
        "build",
        "dist",
        "*.egg-info",
        "artifacts",
        "runs",
        "bench_results",
        "wandb",
        "__pycache__",
    )
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*junk))
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), "."],
        src,
        dict(os.environ),
    )
    (wheel,) = (tmp / "dist").glob("qwenaudio_train-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "qwenaudio_train/py.typed",
        "qwenaudio_train/configs/pretrain.yaml",
        "qwenaudio_train/configs/eval.yaml",
    } <= names
    assert "qwenaudio_train/configs/model/tiny.yaml" in names and "data_recipes/synthetic/__init__.py" in names
    env_dir = tmp / "env"
    _run([sys.executable, "-m", "venv", str(env_dir)], tmp, dict(os.environ))
    bin_dir = env_dir / "bin"
    purelib = Path(
        subprocess.check_output([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .decode()
        .strip()
    )
    # The dependencies of this environment (its own editable install of the package is not visible this way:
    # .pth files of a directory added by a .pth line are not processed).
    (purelib / "_qwenaudio_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp, dict(os.environ)
    )
    env = subprocess_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH="", WANDB_MODE="disabled")
    env.pop("PYTHONPATH")
    return bin_dir, env


def test_wheel_installs_and_every_entry_point_answers_help(installed, tmp_path):
    bin_dir, env = installed
    where = _run([bin_dir / "python", "-c", "import qwenaudio_train, data_recipes; print(qwenaudio_train.__file__)"],
                 tmp_path, env)  # fmt: skip
    assert str(bin_dir.parent) in where and str(REPO) not in where  # the wheel's copy, not the clone
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name in scripts:
        out = _run([bin_dir / name, "--help"], tmp_path, env, timeout=120)
        assert name in out or "usage" in out.lower(), (name, out[:500])


def test_train_from_a_job_directory_then_use_the_run_from_anywhere(installed, tmp_path):
    bin_dir, env = installed
    job = tmp_path / "job"
    job.mkdir()
    _run([bin_dir / "python", "-m", "data_recipes.synthetic", "--out", "data", "--preset", "tiny"], job, env)
    _run([bin_dir / "qwenaudio-data", "tokenizer", "--text", "data/text.txt", "--out", "data/tokenizer"], job, env)
    train = [bin_dir / "python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = _run(
        [*train, "-m", "qwenaudio_train.pretrain", "experiment=debug", "data.root=data", "run_dir=run",
         "trainer.max_steps=2", "trainer.save_every=2"],
        job, env,
    )  # fmt: skip
    assert "Traceback" not in out
    losses = [json.loads(ln) for ln in (job / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in losses if "loss" in m] == [1, 2]
    assert (job / "run" / "tokenizer").is_dir() and (job / "run" / "checkpoints" / "latest").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = str(job / "run")
    out = _run([bin_dir / "qwenaudio-eval", f"checkpoint={run}", "split=test", "max_samples=4", "baseline=none",
                f"out_dir={elsewhere / 'eval'}", "max_new_tokens=4"], elsewhere, env)  # fmt: skip
    assert (elsewhere / "eval" / "eval.json").is_file(), out
    _run([bin_dir / "qwenaudio-export", run, "exported"], elsewhere, env)
    assert (elsewhere / "exported" / "tokenizer").is_dir()
    out = _run([bin_dir / "qwenaudio-chat", "--model", str(elsewhere / "exported"), "--max-new-tokens", "2"], tmp_path, env,
               stdin="hello\n:quit\n")  # fmt: skip
    assert out.count("assistant: ") == 1
