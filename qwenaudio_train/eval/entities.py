"""SER / SF scoring: micro F1 of typed entities marked inline, plus the WER of the plain transcripts.

Must not: parse entities itself (``formats.parse_entities`` is the one parser), import torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from qwenaudio_train.eval.common import Scores, check_pairs, prf, ratio
from qwenaudio_train.eval.text import norm_label
from qwenaudio_train.eval.wer import wer_score
from qwenaudio_train.formats import parse_entities


def entity_score(
    predictions: Sequence[str], references: Sequence[str], *, lang: str = "en", details: bool = False
) -> Scores:
    """Micro F1 of (type, value) pairs (headline ``entity_f1``) plus the WER of the plain transcripts.

    Both sides are read with ``formats.parse_entities``; types and values are compared after ``norm_label``
    (case-insensitive, whitespace collapsed, special tokens removed). Per sample the predicted and reference
    pairs are matched as multisets (a pair predicted twice but present once is one TP and one FP); TP/FP/FN are
    summed over the group. ``value_f1`` is the same ignoring types (did the model find the span at all).
    ``wer`` / ``edits`` / ``ref_words`` are ``wer_score`` (release cleaning) of the transcripts with the entity
    markers and types removed and the values kept. A prediction without markers has no entity (all its
    reference entities are missed) but its words still count in the WER.
    """
    check_pairs(predictions, references)
    tp = fp = fn = v_tp = v_fp = v_fn = 0
    texts_p, texts_r = [], []
    per_sample = []
    for pred, ref in zip(predictions, references):
        text_r, ents_r = parse_entities(ref)
        text_p, ents_p = parse_entities(pred)
        texts_r.append(text_r)
        texts_p.append(text_p)
        pairs_r = Counter((norm_label(t), norm_label(v)) for t, v in ents_r)
        pairs_p = Counter((norm_label(t), norm_label(v)) for t, v in ents_p)
        hit = sum((pairs_r & pairs_p).values())
        tp, fp, fn = tp + hit, fp + sum(pairs_p.values()) - hit, fn + sum(pairs_r.values()) - hit
        values_r = Counter(v for _, v in pairs_r.elements())
        values_p = Counter(v for _, v in pairs_p.elements())
        v_hit = sum((values_r & values_p).values())
        v_tp, v_fp, v_fn = v_tp + v_hit, v_fp + sum(values_p.values()) - v_hit, v_fn + sum(values_r.values()) - v_hit
        if details:
            per_sample.append({"tp": hit, "pred": sorted(pairs_p.elements()), "ref": sorted(pairs_r.elements())})
    wer = wer_score(texts_p, texts_r, lang=lang)
    out: Scores = {
        **prf("entity", tp, fp, fn),
        "value_f1": ratio(2 * v_tp, 2 * v_tp + v_fp + v_fn),
        "ref_entities": float(tp + fn),
        "wer": wer["wer"],
        "edits": wer["edits"],
        "ref_words": wer["ref_words"],
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out
