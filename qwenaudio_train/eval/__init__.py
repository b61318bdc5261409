"""Evaluation: one runner (``runner``) and one scorer module per metric family (``wer``, ``classification``,
``timestamps``, ``music``, ``translation``, ``caption``, ``diarization``, ``events``, ``entities``) behind one
registry (``scorers``); no per-task scripts. Must not: parse target formats (``qwenaudio_train.formats`` does).

``score(metric, predictions, references, **kw)`` is the entry point; ``HEADLINE[metric]`` names the number to
report and ``HIGHER_IS_BETTER[metric]`` its direction.
"""

from qwenaudio_train.eval.scorers import HEADLINE, HIGHER_IS_BETTER, SCORERS, score

__all__ = ["HEADLINE", "HIGHER_IS_BETTER", "SCORERS", "score"]
