"""S2TT scoring: sacrebleu corpus BLEU with the release's tokenizer per target language.

Must not: parse target formats, import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenaudio_train.eval.common import ScorerDependencyError, Scores, check_pairs
from qwenaudio_train.eval.text import strip_special_tokens


def bleu_tokenizer(lang: str) -> str:
    """The release's sacrebleu tokenizer for a target language: ``zh``, ``ja-mecab`` or ``13a``."""
    return {"zh": "zh", "ja": "ja-mecab"}.get(lang, "13a")


def bleu_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    lang: str = "en",
    tokenize: str | None = None,
    strip_special: bool = True,
    details: bool = False,
) -> Scores:
    """sacrebleu corpus BLEU, one reference per sample, tokenizer from the target language ``lang``.

    The release scores raw decoded text; ``strip_special`` removes ``<|...|>`` tokens from predictions first
    (identical for well-formed outputs, which contain none); ``bleu score`` (the name the release prints) is
    always the raw text's. ``ja-mecab`` needs MeCab (``sacrebleu[ja]``, in the ``eval`` extra): without it this
    raises ``ScorerDependencyError`` rather than fall back to another tokenizer, whose numbers differ (83.26 vs
    72.41 on one corpus). Pass ``tokenize="char"`` to choose that tokenizer knowingly.
    """
    import sacrebleu

    check_pairs(predictions, references)
    tok = tokenize or bleu_tokenizer(lang)
    if tok == "ja-mecab":
        try:
            sacrebleu.BLEU(tokenize=tok)
        except (ImportError, RuntimeError) as e:
            raise ScorerDependencyError(
                "BLEU tokenizer 'ja-mecab' needs MeCab, which is not installed: pip install 'qwenaudio-train[eval]' "
                "(sacrebleu[ja]); no fallback tokenizer is used, its scores are not the release's"
            ) from e
    hyps = [strip_special_tokens(p) if strip_special else p.strip() for p in predictions]
    result = sacrebleu.corpus_bleu(hyps, [list(references)], tokenize=tok)
    raw = [p.strip() for p in predictions]
    release = result if raw == hyps else sacrebleu.corpus_bleu(raw, [list(references)], tokenize=tok)
    out: Scores = {
        "bleu": float(result.score),
        "bp": float(result.bp),
        "sys_len": float(result.sys_len),
        "ref_len": float(result.ref_len),
        **{f"precision_{k + 1}": float(p) for k, p in enumerate(result.precisions)},
        "bleu score": float(release.score),
        "n": float(len(references)),
    }
    if details:
        out["details"] = [{"pred": h, "ref": r} for h, r in zip(hyps, references)]
    return out


def bleu_sentence_stats(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    lang: str = "en",
    tokenize: str | None = None,
    raw: bool = False,
) -> list[list[float]]:
    """Per-sentence BLEU sufficient statistics ``[matches_1..4, totals_1..4, sys_len, ref_len]``: summed over
    any subset of sentences, ``bleu_from_stats`` gives exactly sacrebleu's corpus BLEU of that subset (how the
    bootstrap resamples a corpus-level metric). ``raw`` scores the text as the release does (``bleu score``),
    else with special tokens stripped (``bleu``)."""
    from sacrebleu.metrics import BLEU

    check_pairs(predictions, references)
    # effective_order only silences sacrebleu's sentence-level advice: the counts do not depend on it.
    metric = BLEU(tokenize=tokenize or bleu_tokenizer(lang), effective_order=True)
    hyps = [p.strip() if raw else strip_special_tokens(p) for p in predictions]
    out = []
    for hyp, ref in zip(hyps, references):
        s = metric.sentence_score(hyp, [ref])
        out.append([*map(float, s.counts), *map(float, s.totals), float(s.sys_len), float(s.ref_len)])
    return out


def bleu_from_stats(stats: Sequence[float]) -> float:
    """Corpus BLEU (sacrebleu's defaults: exp smoothing, 4-grams) from summed ``bleu_sentence_stats``."""
    from sacrebleu.metrics import BLEU

    counts = [int(round(v)) for v in stats]
    return float(BLEU.compute_bleu(counts[:4], counts[4:8], counts[8], counts[9], smooth_method="exp").score)
