"""The demo end to end (slow: `make test-all`): loss falls clearly and the trained model beats the untrained
one on every task of the held-out test split."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_demo_trains_and_beats_untrained(tmp_path):
    run = tmp_path / "demo"
    env = dict(os.environ, RUN=str(run), DATA=str(tmp_path / "data"))
    subprocess.run(
        ["make", "--no-print-directory", "demo", f"RUN={run}", f"DATA={tmp_path / 'data'}"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=3000,
    )
    metrics = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < 0.5 * metrics[0]["loss"]
    report = json.loads(next(run.glob("checkpoints/step_*/eval_test/eval.json")).read_text())
    from qwenaudio_train.eval.runner import is_better

    for name, r in report["results"].items():
        key = r["headline"]
        assert is_better(r[key], report["baseline"][name][key], r["higher_is_better"]), (
            name,
            r,
            report["baseline"][name],
        )
