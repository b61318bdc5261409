"""What every Hydra entry point does before Hydra: the command line split, and config mistakes reported in one line
(exit code 2) before any process group, DeepSpeed or model exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.entry import split_hydra_args, strip_local_rank


def test_split_hydra_args() -> None:
    assert split_hydra_args(["a=1", "--config-dir", "d1", "-cd=d2", "b=2"]) == (["a=1", "b=2"], ["d1", "d2"], False)
    for flag in (["--cfg", "job"], ["--help"], ["-m", "x=1,2"], ["--config-name", "other"]):
        assert split_hydra_args(["a=1", *flag])[2], flag  # Hydra alone handles these


def test_strip_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert strip_local_rank(["--local_rank=3", "a=1"]) == ["a=1"]
    import os

    assert os.environ["LOCAL_RANK"] == "3"
    assert strip_local_rank(["--local-rank", "5", "b=2"]) == ["b=2"]


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("qwenaudio_train.evaluate", ["checkpoint=/no/such/run"], "checkpoint=/no/such/run: no such file or directory"),
        ("qwenaudio_train.evaluate", [], "checkpoint is not set"),
        ("qwenaudio_train.evaluate", ["checkpoint=x", "baseline=maybe"], "baseline='maybe': choose one of"),
        ("qwenaudio_train.pretrain", ["data=nope"], "Could not find 'data/nope'"),
        ("qwenaudio_train.sft", ["--config-dir", "/no/such/dir"], "--config-dir /no/such/dir: no such directory"),
    ],
)
def test_mistakes_stop_before_anything_starts(module: str, args: list[str], expected: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "DeepSpeed" not in r.stderr + r.stdout  # nothing distributed was started
