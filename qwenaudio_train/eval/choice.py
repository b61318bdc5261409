"""Multiple-choice scoring (MMAU, AIR-Bench foundation): which option a free-text answer picks, deterministically,
with no LLM judge, and the accuracy of those picks.

Answer parsing moves MMAU scores by several points (Sakshi113/MMAU issues 3, 9, 24), so the rule is fixed,
written here and tested (``parse_choice``), applied in this order to the prediction with special tokens removed:

1. a letter answer: the whole answer is ``B``, or starts ``B.`` / ``B)`` / ``(B)`` / ``B:``, or says
   ``answer is B`` / ``answer: (B)`` / ``option B`` (a letter past the last option does not count);
2. the prediction equals one option's text (case, punctuation and spacing ignored);
3. exactly one option's text occurs in the prediction as whole words, after dropping options that occur only
   as part of another option that also occurs (``man`` inside ``a man and a child``);
4. otherwise no option: the answer is wrong (and counted in ``unparsed``).

``mmau_match_accuracy`` is the MMAU authors' own token rule (their ``string_match``: every word of the answer in
the prediction and no word of another option that is not also in the answer), reported beside ours for
comparison with their leaderboard; neither is an LLM judge.

Must not: read benchmark files (``benchmarks.py``), import torch.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.eval.text import strip_special_tokens

LETTERS = string.ascii_uppercase
_LEADING_LETTER_RE = re.compile(r"^\(?([A-Z])(?:\)|[.:)]|\s*$)")
_SAID_LETTER_RE = re.compile(r"\b(?:answer(?:\s+is)?|option|choice)\s*[:\-]?\s*\(?([A-Z])\)?(?![A-Za-z])", re.I)
_WORD_RE = re.compile(r"\b\w+\b")


def _norm(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


def parse_choice(prediction: str, choices: Sequence[str]) -> int | None:
    """The index of the option a prediction picks under the module's four rules, or None."""
    text = strip_special_tokens(prediction).strip()
    if not text or not choices:
        return None
    for m in (_LEADING_LETTER_RE.match(text), _SAID_LETTER_RE.search(text)):
        if m and m.group(1).upper() in LETTERS[: len(choices)]:
            if m.re is _SAID_LETTER_RE and not m.group(1).isupper():
                continue  # "option a" is a word, not a letter answer
            return LETTERS.index(m.group(1).upper())
    said = _norm(text)
    options = [_norm(c) for c in choices]
    exact = [k for k, o in enumerate(options) if o and o == said]
    if len(exact) == 1:
        return exact[0]
    found = [k for k, o in enumerate(options) if o and _has_words(said, o)]
    kept = [k for k in found if not any(j != k and _has_words(options[j], options[k]) for j in found)]
    return kept[0] if len(kept) == 1 else None


def _has_words(text: str, words: str) -> bool:
    # `words` occurs in `text` on word boundaries ("man" is in "a man and a child", not in "woman").
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def mmau_string_match(prediction: str, answer: str, choices: Sequence[str]) -> bool:
    """The MMAU authors' rule: answer words all in the prediction, no word of another option that is not in the
    answer; words are ``\\b\\w+\\b`` in lower case, compared as sets."""
    pred = set(_WORD_RE.findall(prediction.lower()))
    ans = set(_WORD_RE.findall(answer.lower()))
    if not pred:
        return False
    others: set[str] = set()
    for choice in choices:
        words = set(_WORD_RE.findall(choice.lower()))
        if words != ans:
            others |= words - ans
    return ans <= pred and pred.isdisjoint(others)


def choice_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    choices: Sequence[Sequence[str]],
    details: bool = False,
) -> Scores:
    """``accuracy`` (``parse_choice`` picks the reference option), ``mmau_match_accuracy``, ``unparsed`` and
    ``n``. A reference is an option's text (MMAU's ``answer``, AIR-Bench's ``answer_gt``) or its letter."""
    check_pairs(predictions, references)
    check_pairs(predictions, choices)
    hits, matches, unparsed, rows = [], [], 0, []
    for pred, ref, opts in zip(predictions, references, choices):
        target = parse_choice(ref, opts)
        picked = parse_choice(pred, opts)
        unparsed += picked is None
        hits.append(picked is not None and picked == target)
        answer = opts[target] if target is not None else ref
        matches.append(mmau_string_match(strip_special_tokens(pred), answer, opts))
        rows.append({"correct": hits[-1], "picked": picked, "target": target})
    out: Scores = {
        "accuracy": ratio(sum(hits), len(hits)),
        "mmau_match_accuracy": ratio(sum(matches), len(matches)),
        "unparsed": float(unparsed),
        "n": float(len(hits)),
    }
    if details:
        out["details"] = rows
    return out
