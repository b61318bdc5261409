"""What every scorer shares: the ``Scores`` type, the pairing check, nan-safe ratios, micro P/R/F1, and time spans
as the span scorers (SD, SED) compare them.

Must not: clean text (``text.py``), parse target formats (``qwenaudio_train.formats``), import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qwenaudio_train.eval.text import norm_label
from qwenaudio_train.formats import parse_spans

Scores = dict[str, Any]  # floats, plus "details" (list of dicts) when details=True


class ScorerDependencyError(RuntimeError):
    """A scorer cannot compute the release's definition without an optional package: it says which, and how to
    install it, instead of computing a different number."""


FRAMES_PER_SECOND = 100  # 10 ms frames: the resolution of the time tokens


def check_pairs(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    """ValueError unless there is exactly one reference per prediction."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


def ratio(num: float, den: float) -> float:
    """``num / den``, nan when ``den`` is 0 (an undefined score is nan, never an exception)."""
    return num / den if den else math.nan


def prf(prefix: str, tp: int, fp: int, fn: int) -> dict[str, float]:
    """Micro F1, precision and recall from summed counts (``f1 = 2tp / (2tp + fp + fn)``; nan when 0/0)."""
    return {
        f"{prefix}_f1": ratio(2 * tp, 2 * tp + fp + fn),
        f"{prefix}_precision": ratio(tp, tp + fp),
        f"{prefix}_recall": ratio(tp, tp + fn),
    }


def centiseconds(t: float) -> int:
    """Seconds as whole 10 ms frames (the time tokens' resolution), so collar comparisons are exact."""
    return int(round(t * FRAMES_PER_SECOND))


def scored_spans(text: str) -> list[tuple[str, int, int]]:
    """``formats.parse_spans`` with labels normalised (``norm_label``; spans left without a label dropped) and
    times in whole centiseconds, the time tokens' resolution."""
    spans = [(norm_label(label), centiseconds(s), centiseconds(e)) for label, s, e in parse_spans(text)]
    return [span for span in spans if span[0]]
