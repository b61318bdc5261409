"""95% bootstrap confidence intervals for a group's headline, resampling utterances with a fixed seed.

Corpus-level metrics (WER, BLEU, CIDEr, AAS) are recomputed over each resample of whole utterances, never
averaged per utterance: a resample of n utterances drawn with replacement gives one value, and the interval is
the 2.5th and 97.5th percentiles of those values (percentile bootstrap). Ratio-of-sums metrics (WER, accuracy,
AAS, the release's AAS when its utterances pair one to one) use their per-utterance counts from the scorer's
``details``; BLEU sums per-sentence sufficient statistics (exactly sacrebleu's corpus BLEU of the resample);
CIDEr-D averages per-caption scores with the whole set's document frequencies (1,000 resamples each, vectorised).
Every other metric reruns its scorer on each resample (``GENERIC_RESAMPLES``, fewer: a full scoring each).
The same seed, records and metric always give the same interval.

Must not: define a metric (``scorers.py`` does), import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from qwenaudio_train.eval.scorers import score
from qwenaudio_train.eval.translation import bleu_from_stats, bleu_sentence_stats

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
    if metric == "srwt" and key == "aas_release_ms" and all("tokens_release" in d for d in details):
        shift = np.array([1000.0 * d["shift_release_s"] for d in details])
        return shift, np.array([d["tokens_release"] for d in details], float)
    if metric == "mna" and key == "instrument_accuracy_release":
        return np.array([float(d["instrument_correct_release"]) for d in details]), np.ones(len(details))
    if metric == "caption" and key == "cider":
        # CIDEr-D is the mean of per-caption scores; the document frequencies stay those of the whole set (the
        # usual approximation: recomputing them per resample would rescore the corpus 1,000 times).
        kept = [d for d in details if d["refs"]]
        return np.array([d["cider"] for d in kept], float), np.ones(len(kept))
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
    if metric in ("wer", "accuracy", "aqa", "srwt", "choice", "mna", "caption"):
        parts = _ratio_parts(metric, key, score(metric, predictions, references, details=True, **kw)["details"])
    if metric == "bleu" and key in ("bleu", "bleu score"):
        stats = np.array(bleu_sentence_stats(predictions, references, raw=key == "bleu score", **kw))
        idx = rng.integers(0, n, size=(resamples, n))
        values = np.array([bleu_from_stats(row) for row in stats[idx].sum(axis=1)])
    elif parts is not None:
        m = len(parts[0])
        if m == 0:
            return out
        idx = rng.integers(0, m, size=(resamples, m))
        num, den = parts[0][idx].sum(axis=1), parts[1][idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    else:
        full = score(metric, predictions, references, **kw).get(key)
        if not isinstance(full, (int, float)) or math.isnan(full):
            return out  # undefined on the whole group (e.g. the release's SRWT script would stop): no interval
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
