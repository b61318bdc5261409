"""SRWT scoring: the average absolute shift of word timestamps (AAS) plus WER, the paper's definition and the
release's code path side by side.

Must not: parse SRWT itself (``formats.parse_srwt_segments`` is the one parser), import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.eval.wer import align, wer_score
from qwenaudio_train.formats import SRWT_TIME_RE, parse_srwt_release, parse_srwt_segments


def with_leading_time(reference: str) -> str:
    """A reference as the release's ``gt`` holds it: starting with a time token. Our runner's reference is the
    target after the eval prompt, which ends with ``<|0.00|>``; without putting it back, a first word spoken at
    0.00 would have no start time and never be scored."""
    return reference if SRWT_TIME_RE.match(reference.lstrip()) else "<|0.00|>" + reference


def release_average_shift(
    references: Sequence[str], predictions: Sequence[str], per_utterance: list[tuple[float, float]] | None = None
) -> tuple[float, float, str]:
    """``(shift_seconds, tokens, note)``: the release's ``AverageShiftCalculator`` over one group, exactly.

    Each side is read with ``formats.parse_srwt_release``; a text it cannot read (no time token, or segments
    and time tokens out of step) is dropped from ITS side's list only, and the two lists are then paired by
    position, as the release does. When the two lists end up of different lengths the release stops with an
    AssertionError: the shift is nan and ``note`` says so. Per utterance, the segments (raw texts) are aligned
    by ``align(..., release=True)`` (the ``edit_distance`` package's tie-breaking), the time pairs of equal
    segments are taken in order (a zip that stops at the shorter list, as the release's), and an utterance with
    no equal segment or unequal counts adds nothing. ``AAS = sum(|ds| + |de|) / pairs``, in seconds.
    ``per_utterance`` (a list) receives each pair's ``(shift, tokens)`` when no text was dropped on either side,
    so that pair k is utterance k (what a bootstrap resamples).
    """
    refs = [t for t in (parse_srwt_release(r) for r in references) if t is not None]
    hyps = [t for t in (parse_srwt_release(p.strip()) for p in predictions) if t is not None]
    if len(refs) != len(hyps):
        return (
            math.nan,
            0.0,
            (
                f"the release's scorer stops here (AssertionError): {len(refs)} references but {len(hyps)} "
                "predictions have time tokens in its pattern"
            ),
        )
    shift = tokens = 0.0
    parts = []
    for (r_words, r_times), (h_words, h_times) in zip(refs, hyps):
        pairs = align(r_words, h_words, release=True)
        r_equal, h_equal = {i for i, _ in pairs}, {j for _, j in pairs}
        r_ts = [t for k, (t, _) in enumerate(zip(r_times, r_words)) if k in r_equal]
        h_ts = [t for k, (t, _) in enumerate(zip(h_times, h_words)) if k in h_equal]
        if len(r_ts) != len(h_ts) or not r_ts:
            parts.append((0.0, 0.0))
            continue
        part = sum(abs(r[0] - h[0]) + abs(r[1] - h[1]) for r, h in zip(r_ts, h_ts))
        parts.append((part, float(len(r_ts))))
        shift += part
        tokens += len(r_ts)
    if per_utterance is not None and len(parts) == len(references):
        per_utterance.extend(parts)
    note = "" if tokens else "no equal segment: the release's scorer divides by zero here"
    return (shift if tokens else math.nan), tokens, note


def srwt_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    lang: str = "en",
    include_silence: bool = False,
    implied_start: float | None = 0.0,
    details: bool = False,
) -> Scores:
    """Average absolute shift of word timestamps (AAS, ms) plus WER.

    Definition used for ``aas_ms`` (the headline): words (characters for zh) of prediction and reference are
    aligned by minimum edit distance over their lower-cased texts (``align``); over all pairs of EQUAL words
    on that path in the whole group, ``AAS = mean((|start_p - start_r| + |end_p - end_r|) / 2)``, in ms. This
    is the definition of the paper the release cites (Shi et al. 2023, arXiv 2301.12343). Silences are not
    words unless ``include_silence``.

    ``aas_release_ms`` is what the release's code (FunASR's AverageShiftCalculator, ``release_average_shift``)
    prints, times 1000: a micro average of ``|start_p - start_r| + |end_p - end_r|`` (no halving), over raw
    segments (``<|sil|>``, spaces and empty segments included, compared case-sensitively), with the release's
    tie-breaking and its handling of unreadable outputs; nan with ``aas_release_note`` where the release's
    script would stop. ``AAS`` (seconds) and ``WER`` are the same numbers under the names the release prints.
    The reported 51.5 ms comes from that code path.

    The eval prompt ends with ``<|0.00|>``, so a decoded continuation lacks its first time token: text before a
    prediction's first time token is a segment starting at ``implied_start`` (``None``: ignored, as the
    release does, which loses a first word spoken at 0.00; the same when that segment is ``<|sil|>``).
    ``aas_release_ms`` always parses as the release does. A prediction without any time token counts in
    ``parse_errors`` and contributes no aligned word (its words still count in WER). ``wer`` is the release's
    ASR WER of the transcripts with all tokens stripped. A reference that does not start with a time token (the
    runner's: the target after the prompt's ``<|0.00|>``) gets ``<|0.00|>`` back first (``with_leading_time``).
    """
    check_pairs(predictions, references)
    references = [with_leading_time(r) for r in references]
    shift = 0.0
    aligned = ref_words = parse_errors = ref_parse_errors = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_parsed, hyp_parsed = parse_srwt_segments(ref), parse_srwt_segments(pred, implied_start)
        parse_errors += hyp_parsed is None
        ref_parse_errors += ref_parsed is None
        ref_segs, hyp_segs = ref_parsed or [], hyp_parsed or []
        r_words = [s for s in ref_segs if include_silence or not s.is_silence]
        h_words = [s for s in hyp_segs if include_silence or not s.is_silence]
        ref_words += len(r_words)
        pairs = align([s.text.lower() for s in r_words], [s.text.lower() for s in h_words])
        sample_shift = sum(
            (abs(h_words[j].start - r_words[i].start) + abs(h_words[j].end - r_words[i].end)) / 2 for i, j in pairs
        )
        shift += sample_shift
        aligned += len(pairs)
        if details:
            per_sample.append(
                {
                    "shift_s": sample_shift,
                    "aligned_words": len(pairs),
                    "ref_words": len(r_words),
                    "aas_ms": 1000.0 * ratio(sample_shift, len(pairs)),
                    "parsed": hyp_parsed is not None,
                }
            )
    wer = wer_score(predictions, references, lang=lang)
    release_parts: list[tuple[float, float]] = []
    shift_release, tokens_release, note = release_average_shift(references, predictions, release_parts)
    out: Scores = {
        "aas_ms": 1000.0 * ratio(shift, aligned),
        "aas_release_ms": 1000.0 * ratio(shift_release, tokens_release),
        "aligned_release": tokens_release,
        "aligned_words": float(aligned),
        "ref_timed_words": float(ref_words),
        "wer": wer["wer"],
        "edits": wer["edits"],
        "ref_words": wer["ref_words"],
        "parse_errors": float(parse_errors),
        "ref_parse_errors": float(ref_parse_errors),
        "n": float(len(references)),
    }
    out["AAS"], out["WER"] = out["aas_release_ms"] / 1000.0, out["wer"]  # the names the release prints
    if note:
        out["aas_release_note"] = note
    if details:
        for row, (part, tokens) in zip(per_sample, release_parts):  # only when utterances pair one to one
            row.update(shift_release_s=part, tokens_release=tokens)
        out["details"] = per_sample
    return out
