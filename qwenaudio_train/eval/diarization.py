"""SD scoring: frame-based diarization error rate of time-span outputs under the best one-to-one speaker mapping.

Must not: parse time spans itself (``common.scored_spans`` over ``formats.parse_spans``), import torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scipy.optimize import linear_sum_assignment

from qwenaudio_train.eval.common import FRAMES_PER_SECOND, Scores, check_pairs, ratio, scored_spans


def _speaker_frames(text: str) -> dict[str, set[int]]:
    """Speaker -> set of 10 ms frames ``[start, end)`` where it speaks (its turns merged; empty turns ignored)."""
    frames: dict[str, set[int]] = {}
    for label, start, end in scored_spans(text):
        frames.setdefault(label, set()).update(range(start, end))
    return {spk: f for spk, f in frames.items() if f}


def best_mapping(overlap: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int]], bool]:
    """One-to-one (row, column) pairs maximising the summed ``overlap``, sorted, and ``True`` (the optimum is exact).

    scipy's ``linear_sum_assignment`` (the Hungarian method, rectangular grids allowed): the exact optimum at any
    number of speakers, as trying every permutation would give. Among equally good mappings it may pick another
    than a brute force would; the DER depends only on the summed overlap, which is the same. Pairs with zero
    overlap are dropped: they change nothing. The flag is always ``True`` since the greedy fallback above ten
    speakers is gone; it stays in the signature for callers that unpack it.
    """
    if not overlap or not overlap[0]:
        return [], True
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols) if overlap[r][c] > 0), True


def sd_score(predictions: Sequence[str], references: Sequence[str], *, details: bool = False) -> Scores:
    """Diarization error rate (headline ``der``, lower is better) of time-span outputs, frame-based at 10 ms.

    Both sides are read with ``formats.parse_spans`` (``<|0.20|>speaker 1<|1.80|>...``); labels are speaker names
    compared after ``norm_label`` (only their identity within a sample matters). Per sample, each speaker's
    turns become the set of 10 ms frames ``[round(start * 100), round(end * 100))`` it speaks in; for each frame,
    with ``R`` / ``H`` the numbers of reference / predicted speakers active:

        missed = max(0, R - H)     false alarm = max(0, H - R)     confusion = min(R, H) - correct

    where ``correct`` counts the predicted speakers active in the frame whose mapped reference speaker is active
    too, under the one-to-one speaker mapping of the sample that maximises the total overlap (``best_mapping``).
    No forgiveness collar, overlapped speech scored (pyannote's ``DiarizationErrorRate()`` defaults, as DIHARD).
    Corpus ``der = sum(missed + false alarm + confusion) / sum(R)`` over all frames of all samples;
    ``missed``, ``false_alarm`` and ``confusion`` are its parts (same denominator). A prediction without any
    parseable span (``empty_predictions``) misses all its reference speech. ``speaker_count_accuracy`` is the
    fraction of samples whose number of predicted speakers is right.
    """
    check_pairs(predictions, references)
    miss = fa = conf = total = 0
    empty = count_ok = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_spk, hyp_spk = _speaker_frames(ref), _speaker_frames(pred)
        empty += not hyp_spk
        count_ok += len(hyp_spk) == len(ref_spk)
        ref_names, hyp_names = sorted(ref_spk), sorted(hyp_spk)
        overlap = [[len(ref_spk[r] & hyp_spk[h]) for h in hyp_names] for r in ref_names]
        pairs, _exact = best_mapping(overlap)
        ref_count = Counter(t for frames in ref_spk.values() for t in frames)  # frame -> active speakers
        hyp_count = Counter(t for frames in hyp_spk.values() for t in frames)
        s_total = sum(ref_count.values())
        s_miss = sum(max(0, n_ref - hyp_count[t]) for t, n_ref in ref_count.items())
        s_fa = sum(max(0, n_hyp - ref_count[t]) for t, n_hyp in hyp_count.items())
        s_conf = sum(min(n_ref, hyp_count[t]) for t, n_ref in ref_count.items()) - sum(overlap[r][h] for r, h in pairs)
        miss, fa, conf, total = miss + s_miss, fa + s_fa, conf + s_conf, total + s_total
        if details:
            per_sample.append(
                {
                    "der": ratio(s_miss + s_fa + s_conf, s_total),
                    "missed_s": s_miss / FRAMES_PER_SECOND,
                    "false_alarm_s": s_fa / FRAMES_PER_SECOND,
                    "confusion_s": s_conf / FRAMES_PER_SECOND,
                    "ref_speech_s": s_total / FRAMES_PER_SECOND,
                    "mapping": {hyp_names[h]: ref_names[r] for r, h in pairs},
                }
            )
    out: Scores = {
        "der": ratio(miss + fa + conf, total),
        "missed": ratio(miss, total),
        "false_alarm": ratio(fa, total),
        "confusion": ratio(conf, total),
        "ref_speech_s": total / FRAMES_PER_SECOND,
        "speaker_count_accuracy": ratio(count_ok, len(references)),
        "empty_predictions": float(empty),
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out
