"""The notebooks run top to bottom on a tiny corpus, a 6-step run and its evaluation, in the venv's kernel.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose paths come from the notebooks'
environment variables; the test checks that no cell failed and that the outputs a reader looks for are there
(charts, a table naming every task, audio players, predictions). The notebooks in git carry no outputs.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import subprocess_env, train_overrides

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
REPO = NOTEBOOKS.parent
TASKS = {"asr", "srwt", "lid", "sec", "mna"}  # the tiny corpus


@pytest.fixture(scope="module")
def run_with_eval(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """A 6-step debug run that also logs periodic eval records, evaluated like `make eval` does (the report goes
    to ``checkpoints/step_00000006/eval_test/``, where the eval notebook looks for it)."""
    from omegaconf import OmegaConf

    from qwenaudio_train.evaluate import run as run_eval
    from qwenaudio_train.trainer import Trainer

    run = tmp_path_factory.mktemp("nb_runs") / "debug"
    Trainer(
        compose(
            "pretrain",
            train_overrides(
                corpus, run, "trainer.eval_every=3", "trainer.eval_samples=8", "trainer.eval_max_new_tokens=4"
            ),
        )
    ).train()
    cfg = OmegaConf.merge(
        OmegaConf.load(REPO / "configs" / "eval.yaml"), {"checkpoint": str(run), "split": "test", "max_new_tokens": 8}
    )
    cfg.pop("hydra")
    run_eval(cfg)
    return run, run / "checkpoints" / "step_00000006" / "eval_test" / "eval.json"


def execute(name: str, cwd: Path, **env: str) -> nbformat.NotebookNode:
    """Run a notebook in a new kernel started from this interpreter (the kernel spec's ``python`` argv is
    replaced by ``sys.executable``); a cell error raises ``CellExecutionError`` naming the cell."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), (
        f"{name} is saved with outputs: clear them before committing"
    )
    # One extra cell, not saved: which interpreter ran the kernel.
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL_PYTHON=' + sys.executable)"))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, startup_timeout=60, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=subprocess_env(MPLBACKEND="module://matplotlib_inline.backend_inline", **env))
    assert nb.cells[-1].outputs[0]["text"].strip() == f"KERNEL_PYTHON={sys.executable}"
    nb.cells.pop()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text or HTML."""
    parts = []
    for o in outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            parts += [o.data.get("text/plain", ""), o.data.get("text/html", "")]
    return "\n".join(parts)


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def html_tables(nb: nbformat.NotebookNode) -> list[str]:
    return [o.data["text/html"] for o in outputs(nb) if "<table" in o.get("data", {}).get("text/html", "")]


def test_data_mixture_notebook(corpus, tmp_path):
    nb = execute("01_data_mixture.ipynb", tmp_path, QWENAUDIO_DATA=str(corpus), QWENAUDIO_EXPERIMENT="debug")
    tables = html_tables(nb)
    assert all(f"<th>{task}</th>" in tables[0] for task in TASKS)  # samples and hours per task and split
    manifest = json.loads((corpus / "train" / "asr" / "manifest.json").read_text())
    assert str(manifest["totals"]["samples"]) in tables[0]
    assert any("sampled_share" in t and all(f"<th>{task}</th>" in t for task in TASKS) for t in tables)
    out = text(nb)
    assert out.count("<audio") == len(TASKS)  # an audio player per example, one example per task
    assert images(nb) == 2 + len(TASKS)  # hours/samples chart, mixture chart, one spectrogram per example
    assert "prompt: <|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|>" in out  # srwt tags
    assert "target: <|pitch|><|midi_pitch_" in out  # mna target from the registry


def test_training_run_notebook(run_with_eval, tmp_path):
    run, _ = run_with_eval
    nb = execute("02_training_run.ipynb", tmp_path, QWENAUDIO_RUN=str(run))
    out = text(nb)
    records = read_metrics(run)
    assert f"{len(records)} log records, steps 1..6" in out
    assert all(f"loss/{task}" in out for task in TASKS)
    assert "samples_per_s" in out and "tokens_per_s" in out
    assert "step_00000006" in out  # the checkpoints table
    evals = read_metrics(run, "eval")
    assert [r["step"] for r in evals] == [3, 6]
    assert "no eval records" not in out
    assert all(k.removeprefix("eval/") in out for k in evals[0] if k.startswith("eval/"))
    assert images(nb) == 3  # loss + lr + grad norm, throughput, periodic eval scores


def test_eval_report_notebook(run_with_eval, tmp_path):
    run, eval_json = run_with_eval
    report = json.loads(eval_json.read_text())
    nb = execute("03_eval_report.ipynb", tmp_path, QWENAUDIO_RUN=str(run), QWENAUDIO_PREDICTIONS="2")
    assert f"report: {eval_json}" in text(nb)  # found under the run: the newest step_*/eval_test/eval.json
    tables = html_tables(nb)
    scores = tables[0]
    assert all(f"<th>{group}</th>" in scores for group in report["results"])  # one row per group, every task
    assert {g.split("/")[0] for g in report["results"]} == TASKS
    assert "<th>untrained</th>" in scores and "<th>better</th>" in scores
    assert images(nb) == 1  # ours vs untrained (vs release) per group
    shown = tables[1]  # predictions beside references, 2 per group
    assert shown.count("<td>") == 3 * sum(min(2, r["n"]) for r in report["results"].values())  # ref, pred, exact
    first = min(report["predictions"], key=lambda r: r["key"])
    assert first["key"] in shown and html.escape(first["reference"]) in shown
