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
