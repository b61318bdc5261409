"""Classification metrics: accuracy (ASC, ER, VSC, AQA and every single-label task), macro-F1, label-set F1 for
multi-label targets (SEC, MIC) and average precision (the sonic qualities of MNA).

What the release computes: ``accuracy_release`` compares ``decode(...).strip()`` with the raw label; our headline
``accuracy`` compares cleaned, lower-cased strings (a model that says ``Dog`` for ``dog`` is right).

Must not: parse target formats (label sets are ``formats.parse_labels``), import torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from qwenaudio_train.eval.common import Scores, check_pairs, prf, ratio
from qwenaudio_train.eval.text import clean_text
from qwenaudio_train.formats import parse_labels

YES_NO = ("yes", "no")


def average_precision(y_true: Sequence[int], y_score: Sequence[float]) -> float:
    """Average precision of one label: ``sklearn.metrics.average_precision_score``, nan for no sample.

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds from high to low (ties grouped),
    ``R_0 = 0``. With hard 0/1 scores this is ``R1 * P1 + (1 - R1) * pos / N``: the precision/recall of the
    predicted positives, then the base rate for the positives the prediction missed. A label with no positive
    reference gets 0 (sklearn >= 1.1 sets recall to 1 everywhere; its warning about that is silenced), a label
    never predicted gets the base rate ``pos / N``.
    """
    if not y_true:
        return math.nan
    # Imported here: sklearn.metrics takes about a second to import and only MNA needs it.
    from sklearn.metrics import average_precision_score

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive class found in y_true")
        return float(average_precision_score([1 if t else 0 for t in y_true], list(y_score)))


def accuracy_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    details: bool = False,
) -> Scores:
    """Exact match after cleaning, case-insensitive, plus macro-F1 and the release's raw accuracy.

    * ``accuracy``: ``clean_text(pred) == clean_text(ref)`` (special tokens stripped, spaces collapsed, lower).
    * ``accuracy_release``: ``pred.strip() == ref`` as the release's ``sklearn.accuracy_score`` on raw strings.
    * ``macro_f1``: per-label F1 averaged over ``labels`` (default: the set of cleaned references). A prediction
      outside the label set is a miss for its reference's label, not a label of its own.
    * ``yes_no_accuracy``/``yes_no_count``: the ClothoAQA binary subset (cleaned references "yes"/"no"), only
      when the group has such references; ``yes_no_accuracy_release`` is the release's ``bi_ACC_score`` on the
      same subset (``ref.lower()`` in yes/no, raw ``pred.strip() == ref``). Only the ``*_release`` values, also
      under the names the release prints (``ACC_score``, ``bi_ACC_score``), stand beside a published number.
    * ``label_f1`` / ``label_precision`` / ``label_recall``: micro scores over label SETS, for multi-label targets
      joined with ", " (SEC, MIC): each cleaned string is split on commas, parts stripped, empties dropped;
      TP/FP/FN are summed over samples. Single-label targets give one-element sets. A label that itself contains
      a comma (AudioSet's "Chewing, mastication") is split into its parts on both sides alike.
    """
    check_pairs(predictions, references)
    preds = [clean_text(p) for p in predictions]
    refs = [clean_text(r) for r in references]
    hits = [p == r for p, r in zip(preds, refs)]
    raw_hits = [p.strip() == r for p, r in zip(predictions, references)]
    label_set = sorted({clean_text(lab) for lab in labels} if labels is not None else set(refs))
    f1s = []
    for label in label_set:
        tp = sum(1 for p, r in zip(preds, refs) if p == label and r == label)
        fp = sum(1 for p, r in zip(preds, refs) if p == label and r != label)
        fn = sum(1 for p, r in zip(preds, refs) if p != label and r == label)
        f1s.append(ratio(2 * tp, 2 * tp + fp + fn) if (tp + fp + fn) else 0.0)
    tp = fp = fn = 0
    for p, r in zip(preds, refs):
        p_set, r_set = set(parse_labels(p)), set(parse_labels(r))
        tp += len(p_set & r_set)
        fp += len(p_set - r_set)
        fn += len(r_set - p_set)
    out: Scores = {
        "accuracy": ratio(sum(hits), len(hits)),
        "accuracy_release": ratio(sum(raw_hits), len(hits)),
        "macro_f1": ratio(sum(f1s), len(f1s)),
        **prf("label", tp, fp, fn),
        "n": float(len(hits)),
    }
    yes_no = [h for h, r in zip(hits, refs) if r in YES_NO]
    if yes_no:
        out["yes_no_accuracy"] = sum(yes_no) / len(yes_no)
        out["yes_no_count"] = float(len(yes_no))
    out["ACC_score"] = out["accuracy_release"]  # the name the release prints
    binary = [h for h, r in zip(raw_hits, references) if r.lower() in YES_NO]
    if binary:
        out["yes_no_accuracy_release"] = out["bi_ACC_score"] = sum(binary) / len(binary)
    if details:
        out["details"] = [
            {"correct": h, "correct_release": rh, "pred": p, "ref": r}
            for h, rh, p, r in zip(hits, raw_hits, preds, refs)
        ]
    return out
