"""Evaluation: one runner and one scorer per metric family (``scorers``), no per-task scripts.

``score(metric, predictions, references, **kw)`` is the entry point; ``HEADLINE[metric]`` names the number to
report and ``HIGHER_IS_BETTER[metric]`` its direction.
"""

from qwenaudio_train.eval.scorers import HEADLINE, HIGHER_IS_BETTER, SCORERS, score

__all__ = ["HEADLINE", "HIGHER_IS_BETTER", "SCORERS", "score"]
