"""The eval runner's console and report: progress lines, and a plot that shows a nan score as missing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from qwenaudio_train.eval.runner import draw_panel, plot_results, progress_line  # noqa: E402


def test_progress_line() -> None:
    assert progress_line(160, 512, 40.0) == "eval: 160/512 samples (31%), 40 s, 4.0 samples/s, ~88 s left"
    assert progress_line(512, 512, 128.0, rank=0, world=2) == (
        "eval: 512/512 samples on rank 0 of 2 (100%), 128 s, 4.0 samples/s"
    )
    assert progress_line(0, 0, 0.0) == "eval: 0/0 samples (100%), 0 s, 0.0 samples/s"


def _result(value: float, higher_is_better: bool = False, release: float | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"headline": "wer", "wer": value, "higher_is_better": higher_is_better, "n": 4}
    if release is not None:
        r["release"] = release
    return r


def test_nan_score_is_drawn_as_missing_not_as_an_empty_bar() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_panel(ax, "asr/en", _result(math.nan, release=0.02), {"wer": 0.8, "headline": "wer"})
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["ours", "untrained", "release"]
    ours, untrained, release = ax.patches
    # ours is nan: an unfilled hatched bar up to the panel's top, labelled n/a (not a 0-high bar: "WER 0")
    assert ours.get_hatch() == "//" and not ours.get_fill()
    assert ours.get_height() == pytest.approx(ax.get_ylim()[1]) and ours.get_height() > 0.8
    assert "n/a" in [t.get_text() for t in ax.texts]
    assert untrained.get_height() == pytest.approx(0.8) and untrained.get_fill() and not untrained.get_hatch()
    assert release.get_height() == pytest.approx(0.02)
    plt.close(fig)

    fig, ax = plt.subplots()
    draw_panel(ax, "asr/en", _result(0.25), None)  # a finite score: one plain bar with its value, no n/a
    (bar,) = ax.patches
    assert bar.get_height() == pytest.approx(0.25) and not bar.get_hatch()
    assert "n/a" not in [t.get_text() for t in ax.texts] and "0.25" in [t.get_text() for t in ax.texts]
    plt.close(fig)

    fig, ax = plt.subplots()
    draw_panel(ax, "sd", _result(math.nan), {"wer": None, "headline": "wer"})  # nothing finite at all
    assert [p.get_hatch() for p in ax.patches] == ["//", "//"] and ax.get_ylim() == (0.0, 1.0)
    plt.close(fig)


def test_plot_results_writes_a_png(tmp_path: Path) -> None:
    results = {"asr/en": _result(math.nan), "sec": {**_result(0.5, higher_is_better=True), "headline": "wer"}}
    path = plot_results(results, {"asr/en": _result(0.9)}, tmp_path / "eval.png")
    assert path is not None and path.stat().st_size > 1000
    assert plot_results({}, None, tmp_path / "none.png") is None


def test_runner_groups_put_the_release_definition_beside_the_release_figure() -> None:
    # qwenaudio-eval's grouping (by task, plus <task>@<source> where the release published a figure): the @ row's
    # headline is the release's raw accuracy, not the cleaned one; both carry a 95% interval and n.
    from qwenaudio_train.eval.report import markdown_table, score_records

    records = [
        {"task": "er", "source": "meld/meld_test", "lang": "en", "prediction": p, "reference": r}
        for p, r in [("Neutral", "neutral"), ("joy", "joy"), ("anger", "anger"), ("sad", "sadness")]
    ]
    results = score_records(records)
    assert set(results) == {"er", "er@meld/meld_test"}
    assert results["er"]["headline"] == "accuracy" and results["er"]["accuracy"] == 0.75
    row = results["er@meld/meld_test"]
    assert row["headline"] == "accuracy_release" and row["accuracy_release"] == 0.5 and row["release"] == 0.557
    assert 0.0 <= row["ci_low"] <= 0.5 <= row["ci_high"] <= 1.0
    table = markdown_table(results)
    assert f"| er@meld/meld_test | 4 | accuracy_release (higher is better) | 0.5 [{row['ci_low']:.4g}, " in table
    assert table.rstrip().endswith("| 0.557 |")


def test_runner_keeps_the_report_names_notebooks_import() -> None:
    # notebooks/03_eval_report.ipynb and evaluate.py import these from the runner; their home is eval.report.
    from qwenaudio_train.eval import report, runner

    for name in ("group_name", "is_better", "plot_results", "markdown_table", "write_report", "RELEASE_HEADLINES"):
        assert getattr(runner, name) is getattr(report, name)
