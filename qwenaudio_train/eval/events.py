"""SED scoring: DCASE event-based F1 (onset/offset collars, optimal matching) and segment-based F1 / error rate of
time-span outputs.

Must not: parse time spans itself (``common.scored_spans`` over ``formats.parse_spans``), import torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from qwenaudio_train.eval.common import Scores, centiseconds, check_pairs, prf, ratio, scored_spans

ONSET_COLLAR_S = 0.2
OFFSET_COLLAR_FRACTION = 0.2
SEGMENT_S = 1.0


def _events(text: str) -> dict[str, list[tuple[int, int]]]:
    """Label -> [(onset, offset)] in centiseconds (``scored_spans``)."""
    events: dict[str, list[tuple[int, int]]] = {}
    for label, start, end in scored_spans(text):
        events.setdefault(label, []).append((start, end))
    return events


def _active_segments(events: dict[str, list[tuple[int, int]]], seg: int) -> set[tuple[int, str]]:
    """(segment index, label) pairs where the label is active: ``[floor(onset / seg), ceil(offset / seg))``."""
    return {(k, label) for label, evs in events.items() for on, off in evs for k in range(on // seg, -(-off // seg))}


def _max_matching(n_left: int, edges: Sequence[Sequence[int]]) -> int:
    """Size of a maximum bipartite matching; ``edges[i]`` = right nodes left node i may take.

    scipy's Hopcroft-Karp (``maximum_bipartite_matching``): the size of a maximum matching is unique, so any
    maximum matching gives the same count (sed_eval's "optimal" event matching)."""
    n_right = max((j + 1 for row in edges for j in row), default=0)
    if n_left == 0 or n_right == 0:
        return 0
    rows = [i for i, row in enumerate(edges) for _ in row]
    cols = [j for row in edges for j in row]
    graph = csr_matrix(([1] * len(rows), (rows, cols)), shape=(n_left, n_right))
    return int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())


def sed_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    onset_collar: float = ONSET_COLLAR_S,
    offset_fraction: float = OFFSET_COLLAR_FRACTION,
    segment: float = SEGMENT_S,
    details: bool = False,
) -> Scores:
    """Event-based F1 (headline ``event_f1``) and segment-based F1 / error rate of time-span outputs.

    Both sides are read with ``formats.parse_spans``; labels compared after ``norm_label``; times in whole
    centiseconds (the time tokens' resolution), so the collar comparisons below are exact.

    * Event-based (sed_eval's ``EventBasedMetrics`` as DCASE uses it): a predicted event matches a reference event
      of the same label and sample when ``|onset_p - onset_r| <= onset_collar`` (0.2 s) and
      ``|offset_p - offset_r| <= max(onset_collar, offset_fraction * (offset_r - onset_r))`` (0.2 s or 20 % of
      the reference event's length); each event is matched at most once and the matching is maximum (sed_eval's
      "optimal"). ``event_f1`` / ``event_precision`` / ``event_recall`` are micro over labels and samples;
      ``event_f1_macro`` averages the F1 of each label present in the group's references (labels only predicted
      are false positives in the micro scores and have no F1 of their own, as sed_eval's class-wise average).
    * Segment-based (sed_eval's ``SegmentBasedMetrics``, 1 s segments): a label is active in segment k of a sample
      when one of its events overlaps ``[floor(onset / 1 s), ceil(offset / 1 s))``; TP/FP/FN over (segment,
      label) pairs give ``segment_f1`` etc.; ``segment_error_rate = (S + D + I) / N`` with per-segment
      substitutions ``min(FN, FP)``, deletions ``max(0, FN - FP)``, insertions ``max(0, FP - FN)`` and ``N`` the
      active reference (segment, label) pairs.

    A prediction without any parseable span (``empty_predictions``) has no event: all its references are missed.
    """
    check_pairs(predictions, references)
    collar = centiseconds(onset_collar)
    seg = centiseconds(segment)
    tp = fp = fn = 0
    by_label: dict[str, list[int]] = {}  # label -> [tp, fp, fn]
    s_tp = s_fp = s_fn = subs = dels = ins = n_active = 0
    empty = ref_events = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        r_ev, h_ev = _events(ref), _events(pred)
        empty += not h_ev
        sample_tp = 0
        for label in set(r_ev) | set(h_ev):
            rs, hs = r_ev.get(label, []), h_ev.get(label, [])
            # + 1e-9: a fraction times a length in floats may land just below the whole centisecond it means.
            edges = [
                [
                    j
                    for j, (hon, hoff) in enumerate(hs)
                    if abs(hon - ron) <= collar
                    and abs(hoff - roff) <= max(collar, offset_fraction * (roff - ron) + 1e-9)
                ]
                for ron, roff in rs
            ]
            k = _max_matching(len(rs), edges)
            counts = by_label.setdefault(label, [0, 0, 0])
            counts[0] += k
            counts[1] += len(hs) - k
            counts[2] += len(rs) - k
            sample_tp += k
        n_ref, n_hyp = sum(map(len, r_ev.values())), sum(map(len, h_ev.values()))
        tp, fp, fn, ref_events = tp + sample_tp, fp + n_hyp - sample_tp, fn + n_ref - sample_tp, ref_events + n_ref
        r_act, h_act = _active_segments(r_ev, seg), _active_segments(h_ev, seg)
        s_tp, s_fp, s_fn = s_tp + len(r_act & h_act), s_fp + len(h_act - r_act), s_fn + len(r_act - h_act)
        n_active += len(r_act)
        seg_fn = Counter(k for k, _ in r_act - h_act)
        seg_fp = Counter(k for k, _ in h_act - r_act)
        for k in seg_fn.keys() | seg_fp.keys():
            subs += min(seg_fn[k], seg_fp[k])
            dels += max(0, seg_fn[k] - seg_fp[k])
            ins += max(0, seg_fp[k] - seg_fn[k])
        if details:
            per_sample.append({"tp": sample_tp, "ref_events": n_ref, "pred_events": n_hyp})
    ref_labels = [c for c in by_label.values() if c[0] + c[2] > 0]
    out: Scores = {
        **prf("event", tp, fp, fn),
        "event_f1_macro": ratio(sum(ratio(2 * c[0], 2 * c[0] + c[1] + c[2]) for c in ref_labels), len(ref_labels)),
        **prf("segment", s_tp, s_fp, s_fn),
        "segment_error_rate": ratio(subs + dels + ins, n_active),
        "ref_events": float(ref_events),
        "empty_predictions": float(empty),
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out
