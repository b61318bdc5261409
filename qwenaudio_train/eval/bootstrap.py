"""95% bootstrap confidence intervals for a group's headline, resampling utterances with a fixed seed.

Corpus-level metrics (WER, BLEU, CIDEr, AAS) are recomputed over each resample of whole utterances, never
averaged per utterance: a resample of n utterances drawn with replacement gives one value, and the interval is
the 2.5th and 97.5th percentiles of those values (percentile bootstrap). Ratio-of-sums metrics (WER, accuracy,
AAS) use their per-utterance counts from the scorer's ``details`` (1,000 resamples, vectorised); every other
metric reruns its scorer on each resample (``GENERIC_RESAMPLES``, fewer, since that costs a full scoring each).
The same seed, records and metric always give the same interval.

Must not: define a metric (``scorers.py`` does), import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from qwenaudio_train.eval.scorers import score

RESAMPLES = 1000
GENERIC_RESAMPLES = 200  # a full rescoring per resample: enough for a 95% percentile interval, bounded in time
SEED = 0
LEVEL = 0.95
PER_SAMPLE_KW = (
    "references_multi",
    "choices",
)  # scorer arguments with one entry per sample: resampled with the samples


def _ratio_parts(metric: str, key: str, details: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    # Per-utterance (numerator, denominator) of a ratio-of-sums headline, from the scorer's details; None when
    # the headline is not such a ratio.
    if metric == "wer" and key in ("wer", "cer"):
        return np.array([d["edits"] for d in details], float), np.array([d["ref_words"] for d in details], float)
    if metric == "choice" and key == "accuracy":
        return np.array([float(d["correct"]) for d in details]), np.ones(len(details))
    if metric in ("accuracy", "aqa") and key in ("accuracy", "accuracy_release"):
        field = "correct" if key == "accuracy" else "correct_release"
        return np.array([float(d[field]) for d in details]), np.ones(len(details))
    if metric == "srwt" and key == "aas_ms":
        shift = np.array([1000.0 * d["shift_s"] for d in details])
        return shift, np.array([d["aligned_words"] for d in details], float)
    return None


def bootstrap_ci(
    metric: str,
    predictions: Sequence[str],
    references: Sequence[str],
    key: str,
    kw: dict[str, Any] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, float]:
    """``{"ci_low", "ci_high", "ci_level", "ci_resamples"}`` of ``score(metric, ...)[key]`` over utterance
    resamples; bounds are nan when the group is empty, the key is never defined on a resample, or it is SPICE
    (a Java run per resample is not affordable)."""
    kw = dict(kw or {})
    n = len(predictions)
    out = {"ci_low": math.nan, "ci_high": math.nan, "ci_level": level, "ci_resamples": 0.0}
    if n == 0 or key in ("spice", "spider"):
        return out
    if metric == "caption":
        kw["spice"] = False
    rng = np.random.default_rng(seed)
    parts = None
    if metric in ("wer", "accuracy", "aqa", "srwt", "choice"):
        parts = _ratio_parts(metric, key, score(metric, predictions, references, details=True, **kw)["details"])
    if parts is not None:
        idx = rng.integers(0, n, size=(resamples, n))
        num, den = parts[0][idx].sum(axis=1), parts[1][idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    else:
        resamples = min(resamples, GENERIC_RESAMPLES)
        idx = rng.integers(0, n, size=(resamples, n))
        values = np.empty(resamples)
        for b, rows in enumerate(idx):
            sub = {k: [v[i] for i in rows] if k in PER_SAMPLE_KW else v for k, v in kw.items()}
            got = score(metric, [predictions[i] for i in rows], [references[i] for i in rows], **sub).get(key)
            values[b] = float(got) if isinstance(got, (int, float)) else math.nan
    if np.isnan(values).all():
        return out
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    out.update(ci_low=float(low), ci_high=float(high), ci_resamples=float(resamples))
    return out
