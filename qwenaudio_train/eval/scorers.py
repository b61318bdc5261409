"""The scorer registry: one scorer per metric family of the release's ``eval_audio/`` scripts, behind ``score``.

Every scorer is ``f(predictions: list[str], references: list[str], **kw) -> dict[str, float]`` over ONE group
of samples (the runner groups by task and language, and by the eval jsonl's ``source`` as the release does, and
picks the metric from the task registry). ``details=True`` adds a ``"details"`` list of per-sample dicts; without
it every value is a float (plus ``*_note`` strings saying why a value is nan), so results go straight to the
metrics log. Undefined values (no reference words, no aligned words, empty input) are ``nan``, never an exception,
and a prediction that cannot be parsed scores as wrong.

The families, one module each (what the release computes, QwenLM/Qwen-Audio ``eval_audio/evaluate_*.py``, and what
we reproduce is written there):

* ``wer`` (``wer.py``): corpus WER = sum of ``editdistance`` over cleaned word lists / total reference words;
  the cleaning and normalising are ``text.py``.
* ``accuracy`` / ``aqa`` (``classification.py``): exact match after cleaning, the release's raw match, macro-F1,
  label-set F1 for multi-label targets (SEC, MIC), the yes/no subset of ClothoAQA.
* ``srwt`` (``timestamps.py``): the release's average shift (FunASR's ``AverageShiftCalculator``) plus WER.
* ``mna`` (``music.py``): NSynth note analysis, the release's fields, accuracies and sonic-quality macro AP.
* ``bleu`` (``translation.py``): sacrebleu corpus BLEU with tokenizer ``zh`` / ``ja-mecab`` / ``13a``.
* ``caption`` (``caption.py``): CIDEr-D (and SPICE, SPIDEr when SPICE is installed) as pycocoevalcap computes them.

Our definitions for the tasks the release does not evaluate: ``sd`` (``diarization.py``: frame DER with the best
speaker mapping), ``sed`` (``events.py``: DCASE event-based and segment-based F1), ``entity_f1``
(``entities.py``: typed-entity F1 plus the WER of the transcript), ``choice`` (``choice.py``: multiple-choice
benchmarks, MMAU and AIR-Bench foundation, with deterministic answer parsing).

Every target format is parsed by ``qwenaudio_train.formats``, the module that renders it for training.
Must not: import torch, run models, read files or know datasets (the runner does); hold metric arithmetic (the
family modules do).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qwenaudio_train.eval.caption import caption_score
from qwenaudio_train.eval.choice import choice_score
from qwenaudio_train.eval.classification import accuracy_score, average_precision
from qwenaudio_train.eval.common import Scores
from qwenaudio_train.eval.diarization import best_mapping, sd_score
from qwenaudio_train.eval.entities import entity_score
from qwenaudio_train.eval.events import sed_score
from qwenaudio_train.eval.music import mna_score
from qwenaudio_train.eval.text import basic_normalize, clean_text, tokenize_for_wer
from qwenaudio_train.eval.timestamps import srwt_score
from qwenaudio_train.eval.translation import bleu_score
from qwenaudio_train.eval.wer import align, wer_score
from qwenaudio_train.formats import parse_note_analysis
from qwenaudio_train.formats import parse_srwt_segments as parse_srwt  # the scorers' name: segments, silences kept

Scorer = Callable[..., Scores]

SCORERS: dict[str, Scorer] = {
    "wer": wer_score,
    "accuracy": accuracy_score,
    "aqa": accuracy_score,  # ClothoAQA: accuracy, plus yes_no_accuracy on the binary subset
    "srwt": srwt_score,
    "mna": mna_score,
    "bleu": bleu_score,
    "caption": caption_score,
    "sd": sd_score,
    "sed": sed_score,
    "entity_f1": entity_score,
    "choice": choice_score,
}

# The key each metric family reports as its headline number, and which direction is better for it.
HEADLINE: dict[str, str] = {
    "wer": "wer",
    "accuracy": "accuracy",
    "aqa": "accuracy",
    "srwt": "aas_ms",
    "mna": "instrument_accuracy",
    "bleu": "bleu",
    "caption": "cider",
    "sd": "der",
    "sed": "event_f1",
    "entity_f1": "entity_f1",
    "choice": "accuracy",
}
# The key holding the release's own definition of each family's headline (its script's arithmetic on its own
# reading of the text): the only number that may stand beside a published figure. The same as HEADLINE where our
# headline already is the release's definition.
RELEASE_KEY: dict[str, str] = {
    "wer": "wer",
    "accuracy": "accuracy_release",
    "aqa": "accuracy_release",
    "srwt": "aas_release_ms",
    "mna": "instrument_accuracy_release",
    "bleu": "bleu score",
    "caption": "cider",
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "wer": False,
    "accuracy": True,
    "aqa": True,
    "srwt": False,
    "mna": True,
    "bleu": True,
    "caption": True,
    "sd": False,
    "sed": True,
    "entity_f1": True,
    "choice": True,
}


def score(metric: str, predictions: Sequence[str], references: Sequence[str], **kw: Any) -> Scores:
    """Run the scorer registered as ``metric`` (``wer``, ``accuracy``, ``aqa``, ``srwt``, ``mna``, ``bleu``,
    ``caption``, ``sd``, ``sed``, ``entity_f1``, ``choice``)."""
    try:
        scorer = SCORERS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(SCORERS))}") from None
    return scorer(predictions, references, **kw)


# The scorers and helpers callers import from here (tests, notebooks); each one's home is its family module.
__all__ = [
    "HEADLINE",
    "HIGHER_IS_BETTER",
    "RELEASE_KEY",
    "SCORERS",
    "Scorer",
    "Scores",
    "accuracy_score",
    "align",
    "average_precision",
    "basic_normalize",
    "best_mapping",
    "bleu_score",
    "caption_score",
    "choice_score",
    "clean_text",
    "entity_score",
    "mna_score",
    "parse_note_analysis",
    "parse_srwt",
    "score",
    "sd_score",
    "sed_score",
    "srwt_score",
    "tokenize_for_wer",
    "wer_score",
]
