"""The synthetic corpus package (data_recipes/synthetic/): every task has its planner and renderer, registered by
its family module; modules stay small and say what they own. The corpus bytes are pinned in test_synthetic.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import data_recipes.synthetic as S
from data_recipes.synthetic import plan

PKG = Path(S.__file__).parent


def test_every_task_has_a_planner_and_a_renderer():
    assert set(plan.PLANNERS) == set(S.NEW_TASKS)  # the first five are planned by plan_split
    assert set(plan.RENDERERS) == set(S.FULL_TASKS) - {"asr", "srwt", "lid"}  # those three: speech._speech


def test_a_task_cannot_be_registered_twice():
    before = dict(plan.PLANNERS)
    with pytest.raises(ValueError, match="registered twice"):
        plan.planner("not_a_task", "sv")(lambda d, i: {})
    assert plan.PLANNERS == before  # nothing half-registered


@pytest.mark.parametrize("path", sorted(PKG.glob("*.py")), ids=lambda p: p.name)
def test_modules_are_small_and_say_what_they_own(path):
    text = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert len(text.splitlines()) <= 500
    assert "Owns" in doc and "Must not" in doc


def test_the_package_runs_as_a_module():
    r = subprocess.run(
        [sys.executable, "-m", "data_recipes.synthetic", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PKG.parents[1],
    )
    assert r.returncode == 0 and "--preset" in r.stdout and "synthetic speech (espeak-ng)" in r.stdout
