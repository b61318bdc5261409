"""WER / CER as the release computes it: corpus edit distance over cleaned words (characters for zh), and the
minimum-edit alignment the timestamp scorer pairs words with.

Must not: clean text itself (``text.py``), parse target formats, import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import editdistance

from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.eval.text import CHAR_LEVEL_LANGS, tokenize_for_wer


def align(ref: Sequence[str], hyp: Sequence[str], release: bool = False) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` with ``ref[i] == hyp[j]`` on one minimum-edit-distance alignment path.

    Unit costs for substitution, insertion and deletion. Among optimal paths, the backtrace from the end prefers
    the diagonal (match or substitution), then deletion, then insertion. ``release=True`` breaks ties as the
    release's ``edit_distance.SequenceMatcher(ref, hyp)`` does (its ``lowest_cost_action``: diagonal, then
    insertion, then deletion), so repeated words pair exactly as in the release's SRWT scoring.
    """
    n, m = len(ref), len(hyp)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            dist[i][j] = min(diag, dist[i - 1][j] + 1, dist[i][j - 1] + 1)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        same = ref[i - 1] == hyp[j - 1]
        if dist[i][j] == dist[i - 1][j - 1] + (not same):
            if same:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif release and dist[i][j] == dist[i][j - 1] + 1:
            j -= 1
        elif dist[i][j] == dist[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def wer_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    lang: str = "en",
    mode: str = "release",
    details: bool = False,
) -> Scores:
    """Corpus WER = total edit distance / total reference items (never the mean of per-sample WERs).

    Returns ``wer``, ``edits``, ``ref_words``, ``hyp_words``, ``n``; for char-level languages also ``cer``
    (the same number: the release calls its Aishell CER "wer"). An empty prediction costs one deletion per
    reference word. ``wer`` is nan when the references have no words.
    """
    check_pairs(predictions, references)
    edits = ref_words = hyp_words = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_items = tokenize_for_wer(ref, lang, mode)
        hyp_items = tokenize_for_wer(pred, lang, mode)
        dist = editdistance.eval(ref_items, hyp_items)
        edits += dist
        ref_words += len(ref_items)
        hyp_words += len(hyp_items)
        if details:
            per_sample.append(
                {"edits": dist, "ref_words": len(ref_items), "ref": " ".join(ref_items), "hyp": " ".join(hyp_items)}
            )
    out: Scores = {
        "wer": ratio(edits, ref_words),
        "edits": float(edits),
        "ref_words": float(ref_words),
        "hyp_words": float(hyp_words),
        "n": float(len(references)),
    }
    if lang in CHAR_LEVEL_LANGS:
        out["cer"] = out["wer"]
    if details:
        out["details"] = per_sample
    return out
