"""SRWT scoring: the average absolute shift of word timestamps (AAS) plus WER, the paper's definition and the
release's code path side by side.

Must not: parse SRWT itself (``formats.parse_srwt_segments`` is the one parser), import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.eval.wer import align, wer_score
from qwenaudio_train.formats import parse_srwt_segments


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

    ``aas_release_ms`` is what the release's code (FunASR's AverageShiftCalculator) prints, times 1000: the
    same micro average but of ``|start_p - start_r| + |end_p - end_r|`` (no halving: twice ``aas_ms`` on
    the same pairs), with ``<|sil|>`` segments aligned like words and texts compared case-sensitively. The
    reported 51.5 ms comes from that code path.

    The eval prompt ends with ``<|0.00|>``, so a decoded continuation lacks its first time token: text before a
    prediction's first time token is a segment starting at ``implied_start`` (``None``: ignored, as the
    release does, which loses a first word spoken at 0.00; the same when that segment is ``<|sil|>``).
    ``aas_release_ms`` always parses as the release does. A prediction without any time token counts in
    ``parse_errors`` and contributes no aligned word (its words still count in WER). ``wer`` is the release's
    ASR WER of the transcripts with all tokens stripped.
    """
    check_pairs(predictions, references)
    shift = shift_release = 0.0
    aligned = aligned_release = ref_words = parse_errors = ref_parse_errors = 0
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
        # The release's variant: its parse, every segment (silences included), exact text, both shifts summed.
        rel_segs = parse_srwt_segments(pred) or []
        rel_pairs = align([s.text for s in ref_segs], [s.text for s in rel_segs])
        shift_release += sum(
            abs(rel_segs[j].start - ref_segs[i].start) + abs(rel_segs[j].end - ref_segs[i].end) for i, j in rel_pairs
        )
        aligned_release += len(rel_pairs)
        if details:
            per_sample.append(
                {
                    "aligned_words": len(pairs),
                    "ref_words": len(r_words),
                    "aas_ms": 1000.0 * ratio(sample_shift, len(pairs)),
                    "parsed": hyp_parsed is not None,
                }
            )
    wer = wer_score(predictions, references, lang=lang)
    out: Scores = {
        "aas_ms": 1000.0 * ratio(shift, aligned),
        "aas_release_ms": 1000.0 * ratio(shift_release, aligned_release),
        "aligned_words": float(aligned),
        "ref_timed_words": float(ref_words),
        "wer": wer["wer"],
        "edits": wer["edits"],
        "ref_words": wer["ref_words"],
        "parse_errors": float(parse_errors),
        "ref_parse_errors": float(ref_parse_errors),
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out
