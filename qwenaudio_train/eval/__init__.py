"""Evaluation: one runner (``runner``) and one scorer module per metric family (``wer``, ``classification``,
``timestamps``, ``music``, ``translation``, ``caption``, ``diarization``, ``events``, ``entities``, ``choice``)
behind one registry (``scorers``); no per-task scripts. ``report`` groups records, puts the release's figures
beside the release's own definitions and adds bootstrap intervals (``bootstrap``) for ``qwenaudio-eval`` and
``qwenaudio-score`` alike; ``records`` reads any model's predictions, ``benchmarks`` MMAU and AIR-Bench.
Must not: parse target formats (``qwenaudio_train.formats`` does).

``score(metric, predictions, references, **kw)`` is the entry point; ``HEADLINE[metric]`` names the number to
report and ``HIGHER_IS_BETTER[metric]`` its direction.
"""

from qwenaudio_train.eval.scorers import HEADLINE, HIGHER_IS_BETTER, SCORERS, score

__all__ = ["HEADLINE", "HIGHER_IS_BETTER", "SCORERS", "score"]
