"""Scorers: one function per metric family of the release's ``eval_audio/`` scripts, behind one registry.

Every scorer is ``f(predictions: list[str], references: list[str], **kw) -> dict[str, float]`` over ONE group
of samples (the runner groups by the eval jsonl's ``source`` field, as the release does, and picks the metric
from the task registry). ``details=True`` adds a ``"details"`` list of per-sample dicts; without it every value
is a float (plus ``*_note`` strings saying why a value is nan), so results go straight to the metrics log.
Undefined values (no reference words, no aligned words, empty input) are ``nan``, never an exception, and a
prediction that cannot be parsed scores as wrong.

What the release computes (QwenLM/Qwen-Audio ``eval_audio/evaluate_*.py``) and what we reproduce:

* text cleaning (``remove_sp`` + fairseq's ``EvaluationTokenizer("none", lowercase=True)``): every
  ``<|...|>`` token becomes a space, whitespace runs collapse to one space, the space before ``!,.?;:`` goes,
  leading space goes, lowercase; no punctuation removal, no Whisper normaliser. Chinese is scored per
  character with all whitespace removed (``yue`` and ``ja`` too here: the release has no ASR set for them).
* ``wer``: corpus WER = sum of ``editdistance`` over word lists / total reference words.
* ``accuracy``: the release compares ``decode(...).strip()`` with the raw label (``accuracy_release``); the
  headline ``accuracy`` compares cleaned, lower-cased strings (a model that says ``Dog`` for ``dog`` is right).
* ``srwt``: the release's average shift (FunASR's ``AverageShiftCalculator``) plus WER; see ``srwt_score``.
* ``mna``: NSynth note analysis, the release's field regexes, accuracies and sonic-quality macro AP.
* ``bleu``: sacrebleu corpus BLEU with tokenizer ``zh`` / ``ja-mecab`` / ``13a`` by target language.
* ``caption``: CIDEr-D (and SPICE, SPIDEr when SPICE is installed) as pycocoevalcap computes them (``caption.py``).

Our definitions for the tasks the release does not evaluate (see each scorer): ``sd`` (frame DER with the best
speaker mapping), ``sed`` (DCASE event-based and segment-based F1), ``entity_f1`` (typed-entity F1 plus the WER
of the transcript), and ``accuracy``'s ``label_f1`` (micro F1 over comma-separated label sets: SEC, MIC).

Owns: text cleaning and normalising for scoring, the SRWT and note-analysis output parsers used for scoring,
the metric arithmetic (the span and entity parsers are the task registry's: ``tasks.parse_spans``,
``tasks.parse_entities``). Must not: import torch, run models, read files or know datasets (the runner does).
"""

from __future__ import annotations

import math
import re
import subprocess
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import editdistance

from qwenaudio_train.eval.caption import SPICE_INSTALL_HINT, cider_d, find_spice, ptb_tokenize
from qwenaudio_train.eval.caption import spice as run_spice
from qwenaudio_train.formats import parse_entities, parse_spans

Scores = dict[str, Any]  # floats, plus "details" (list of dicts) when details=True

# --------------------------------------------------------------------------------------------------------------
# Text cleaning (release mode) and normalising (Qwen2-Audio mode)
# --------------------------------------------------------------------------------------------------------------

PUNCS = "!,.?;:"  # the release's PUNCS: the space before these is removed
SPECIAL_TOKEN_RE = re.compile(r"<\|.*?\|>")  # the release's pattern: any <|...|> token (tags, time, endoftext)
# <audio>PATH</audio> spans never appear in decoded outputs; stripping them lets callers pass raw prompts.
AUDIO_SPAN_RE = re.compile(r"<audio>.*?</audio>|</?audio>", re.S)
_WHITESPACE_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNC_RE = re.compile(f" ?([{re.escape(PUNCS)}])")

# Languages written without spaces between words: scored per character, whitespace removed.
# The release does this for "zh" only (its only such ASR language); Qwen2-Audio adds "yue".
CHAR_LEVEL_LANGS = frozenset({"zh", "yue", "ja"})

WER_MODES = ("release", "normalized", "basic")


def strip_special_tokens(text: str) -> str:
    """Remove ``<audio>...</audio>`` spans and every ``<|...|>`` token (each becomes a space), collapse spaces."""
    text = AUDIO_SPAN_RE.sub(" ", text)
    text = SPECIAL_TOKEN_RE.sub(" ", text)
    return _WHITESPACE_RE.sub(" ", text).strip()


def clean_text(text: str, lang: str = "en", lowercase: bool = True) -> str:
    """The release's cleaning (``remove_sp`` then the lower-casing tokenizer), as one string.

    ``"<|en|>Hello , World !<|endoftext|>"`` -> ``"hello, world!"``; for char-level languages all whitespace
    is removed: ``"今天 天气"`` -> ``"今天天气"``.
    """
    text = AUDIO_SPAN_RE.sub(" ", text)
    text = SPECIAL_TOKEN_RE.sub(" ", text)
    text = _WHITESPACE_RE.sub(" ", text)
    text = _SPACE_BEFORE_PUNC_RE.sub(r"\1", text)
    text = text.strip()  # the release only lstrips; the trailing space never survives .split()
    if lang in CHAR_LEVEL_LANGS:
        text = _WHITESPACE_RE.sub("", text)
    return text.lower() if lowercase else text


def _remove_symbols(text: str) -> str:
    # Whisper's remove_symbols: NFKC, then every mark/symbol/punctuation character becomes a space.
    return "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", text))


def basic_normalize(text: str) -> str:
    """Whisper's ``BasicTextNormalizer`` (default arguments): lowercase, drop ``[...]``/``<...>`` and ``(...)``
    spans, every punctuation/symbol/mark character becomes a space, collapse whitespace."""
    text = text.lower()
    text = re.sub(r"[<\[][^>\]]*[>\]]", "", text)
    text = re.sub(r"\(([^)]+?)\)", "", text)
    text = _remove_symbols(text).lower()
    return _WHITESPACE_RE.sub(" ", text)


_english_normalizer: Callable[[str], str] | None = None


def english_normalize(text: str) -> str:
    """Whisper's ``EnglishTextNormalizer`` (numbers, contractions, titles...), via the copy in transformers.

    Its British->American spelling map ships with Whisper's tokenizer files, not the code, so it is empty here.
    Falls back to ``basic_normalize`` (with a warning) when transformers is unavailable.
    """
    global _english_normalizer
    if _english_normalizer is None:
        try:
            from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
        except ImportError:  # pragma: no cover - transformers is a dependency of the project
            warnings.warn("transformers unavailable: English normaliser falls back to the basic one", stacklevel=2)
            _english_normalizer = basic_normalize
        else:
            _english_normalizer = EnglishTextNormalizer({})
    return _english_normalizer(text)


def _drop_punctuation_tokens(words: list[str]) -> list[str]:
    # fairseq EvaluationTokenizer(punctuation_removal=True): drop tokens made only of punctuation characters.
    return [w for w in words if not all(unicodedata.category(c)[0] == "P" for c in w)]


def tokenize_for_wer(text: str, lang: str = "en", mode: str = "release") -> list[str]:
    """The items edit distance runs over: words, or characters for ``CHAR_LEVEL_LANGS``.

    * ``release``: ``clean_text`` then split (Qwen-Audio).
    * ``normalized``: Qwen2-Audio's chain: clean, then for ``en`` the Whisper English normaliser followed by the
      basic one (their if/else applies both), for other languages the basic one (Qwen2-Audio uses cn_tn's
      TextNorm for ``zh`` and zhconv for ``yue``: not available here), then punctuation-only tokens dropped.
    * ``basic``: clean, then Whisper's basic normaliser for every language.
    """
    if mode not in WER_MODES:
        raise ValueError(f"unknown WER mode {mode!r}; known: {', '.join(WER_MODES)}")
    if mode == "release":
        words = clean_text(text, lang).split()
    else:
        text = clean_text(text, lang, lowercase=False)
        if mode == "normalized" and lang == "en":
            text = english_normalize(text)
        words = _drop_punctuation_tokens(basic_normalize(text).lower().split())
    if lang in CHAR_LEVEL_LANGS:
        return list("".join(words))
    return words


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def _prf(prefix: str, tp: int, fp: int, fn: int) -> dict[str, float]:
    """Micro F1, precision and recall from summed counts (``f1 = 2tp / (2tp + fp + fn)``; nan when 0/0)."""
    return {
        f"{prefix}_f1": _ratio(2 * tp, 2 * tp + fp + fn),
        f"{prefix}_precision": _ratio(tp, tp + fp),
        f"{prefix}_recall": _ratio(tp, tp + fn),
    }


def _norm_label(text: str) -> str:
    """A span label or entity field as compared: special tokens removed, whitespace collapsed, lower case."""
    return strip_special_tokens(text).lower()


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` with ``ref[i] == hyp[j]`` on one minimum-edit-distance alignment path.

    Unit costs for substitution, insertion and deletion. Among optimal paths, the backtrace prefers the
    diagonal (match or substitution), then deletion, then insertion; the release uses the ``edit_distance``
    package's SequenceMatcher, whose tie-breaking may pick a different optimal path for repeated words.
    """
    n, m = len(ref), len(hyp)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = dist[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            dist[i][j] = min(diag, dist[i - 1][j] + 1, dist[i][j - 1] + 1)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        same = ref[i - 1] == hyp[j - 1]
        if dist[i][j] == dist[i - 1][j - 1] + (not same):
            if same:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif dist[i][j] == dist[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def average_precision(y_true: Sequence[int], y_score: Sequence[float]) -> float:
    """Average precision as ``sklearn.metrics.average_precision_score`` computes it for one label.

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds from high to low (ties grouped),
    ``R_0 = 0``. With hard 0/1 scores this is ``R1 * P1 + (1 - R1) * pos / N``: the precision/recall of the
    predicted positives, then the base rate for the positives the prediction missed. A label with no positive
    reference gets 0 (sklearn >= 1.1), a label never predicted gets the base rate ``pos / N``.
    """
    positives = sum(1 for t in y_true if t)
    if not y_true:
        return math.nan
    ap, tp, fp, prev_recall = 0.0, 0, 0, 0.0
    order = sorted(range(len(y_true)), key=lambda k: -y_score[k])
    k = 0
    while k < len(order):
        threshold = y_score[order[k]]
        while k < len(order) and y_score[order[k]] == threshold:
            tp += 1 if y_true[order[k]] else 0
            fp += 0 if y_true[order[k]] else 1
            k += 1
        precision = tp / (tp + fp)
        if positives == 0:  # sklearn sets recall to 1 everywhere: AP = precision at the highest threshold = 0
            return precision
        recall = tp / positives
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


# --------------------------------------------------------------------------------------------------------------
# WER / CER
# --------------------------------------------------------------------------------------------------------------


def wer_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    lang: str = "en",
    mode: str = "release",
    details: bool = False,
) -> Scores:
    """Corpus WER = total edit distance / total reference items (never the mean of per-sample WERs).

    Returns ``wer``, ``edits``, ``ref_words``, ``hyp_words``, ``n``; for char-level languages also ``cer``
    (the same number: the release calls its Aishell CER "wer"). An empty prediction costs one deletion per
    reference word. ``wer`` is nan when the references have no words.
    """
    _check_pairs(predictions, references)
    edits = ref_words = hyp_words = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_items = tokenize_for_wer(ref, lang, mode)
        hyp_items = tokenize_for_wer(pred, lang, mode)
        dist = editdistance.eval(ref_items, hyp_items)
        edits += dist
        ref_words += len(ref_items)
        hyp_words += len(hyp_items)
        if details:
            per_sample.append(
                {"edits": dist, "ref_words": len(ref_items), "ref": " ".join(ref_items), "hyp": " ".join(hyp_items)}
            )
    out: Scores = {
        "wer": _ratio(edits, ref_words),
        "edits": float(edits),
        "ref_words": float(ref_words),
        "hyp_words": float(hyp_words),
        "n": float(len(references)),
    }
    if lang in CHAR_LEVEL_LANGS:
        out["cer"] = out["wer"]
    if details:
        out["details"] = per_sample
    return out


# --------------------------------------------------------------------------------------------------------------
# Accuracy (ASC, SER, VSC, AQA, and any single-label classification)
# --------------------------------------------------------------------------------------------------------------

YES_NO = ("yes", "no")


def _label_set(text: str) -> set[str]:
    return {part.strip() for part in text.split(",")} - {""}


def accuracy_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    details: bool = False,
) -> Scores:
    """Exact match after cleaning, case-insensitive, plus macro-F1 and the release's raw accuracy.

    * ``accuracy``: ``clean_text(pred) == clean_text(ref)`` (special tokens stripped, spaces collapsed, lower).
    * ``accuracy_release``: ``pred.strip() == ref`` as the release's ``sklearn.accuracy_score`` on raw strings.
    * ``macro_f1``: per-label F1 averaged over ``labels`` (default: the set of cleaned references). A prediction
      outside the label set is a miss for its reference's label, not a label of its own.
    * ``yes_no_accuracy``/``yes_no_count``: the ClothoAQA binary subset (references "yes"/"no"), only when the
      group has such references.
    * ``label_f1`` / ``label_precision`` / ``label_recall``: micro scores over label SETS, for multi-label targets
      joined with ", " (SEC, MIC): each cleaned string is split on commas, parts stripped, empties dropped;
      TP/FP/FN are summed over samples. Single-label targets give one-element sets. A label that itself contains
      a comma (AudioSet's "Chewing, mastication") is split into its parts on both sides alike.
    """
    _check_pairs(predictions, references)
    preds = [clean_text(p) for p in predictions]
    refs = [clean_text(r) for r in references]
    hits = [p == r for p, r in zip(preds, refs)]
    label_set = sorted({clean_text(lab) for lab in labels} if labels is not None else set(refs))
    f1s = []
    for label in label_set:
        tp = sum(1 for p, r in zip(preds, refs) if p == label and r == label)
        fp = sum(1 for p, r in zip(preds, refs) if p == label and r != label)
        fn = sum(1 for p, r in zip(preds, refs) if p != label and r == label)
        f1s.append(_ratio(2 * tp, 2 * tp + fp + fn) if (tp + fp + fn) else 0.0)
    tp = fp = fn = 0
    for p, r in zip(preds, refs):
        p_set, r_set = _label_set(p), _label_set(r)
        tp += len(p_set & r_set)
        fp += len(p_set - r_set)
        fn += len(r_set - p_set)
    out: Scores = {
        "accuracy": _ratio(sum(hits), len(hits)),
        "accuracy_release": _ratio(sum(p.strip() == r for p, r in zip(predictions, references)), len(hits)),
        "macro_f1": _ratio(sum(f1s), len(f1s)),
        **_prf("label", tp, fp, fn),
        "n": float(len(hits)),
    }
    yes_no = [h for h, r in zip(hits, refs) if r in YES_NO]
    if yes_no:
        out["yes_no_accuracy"] = sum(yes_no) / len(yes_no)
        out["yes_no_count"] = float(len(yes_no))
    if details:
        out["details"] = [{"correct": h, "pred": p, "ref": r} for h, p, r in zip(hits, preds, refs)]
    return out


# --------------------------------------------------------------------------------------------------------------
# SRWT: speech recognition with word-level timestamps
# --------------------------------------------------------------------------------------------------------------

TIME_TOKEN_RE = re.compile(r"<\|(\d{1,2}\.\d+)\|>")  # the release's pattern: <|0.00|> .. <|30.00|>
SILENCE = "<|sil|>"


@dataclass(frozen=True)
class TimedSegment:
    """One segment between two time tokens: a word (or character) or a silence."""

    text: str
    start: float
    end: float

    @property
    def is_silence(self) -> bool:
        return self.text == SILENCE


def parse_srwt(text: str, implied_start: float | None = None) -> list[TimedSegment] | None:
    """``<|0.00|><|sil|><|0.54|>word<|0.86|>...`` -> segments; ``None`` when there is no time token.

    Time tokens alternate with segments and consecutive segments share a boundary. Text after the last time
    token has no end and is ignored. Text before the first time token is ignored too (as in the release),
    unless ``implied_start`` is given: then it is a segment from ``implied_start`` to the first time token
    (a continuation decoded after a prompt ending in ``<|0.00|>``). Other special tokens (``<|en|>``,
    ``<|endoftext|>``...) are dropped from segments, surrounding whitespace is stripped, and empty segments
    (two adjacent time tokens) are skipped. A segment holding ``<|sil|>`` is a silence.
    """
    text = AUDIO_SPAN_RE.sub(" ", text)
    times = list(TIME_TOKEN_RE.finditer(text))
    if not times:
        return None
    bounds = [(m.start(), m.end(), float(m.group(1))) for m in times]
    if implied_start is not None:
        bounds.insert(0, (0, 0, implied_start))
    segments = []
    for (_, left_end, start), (right_start, _, end) in zip(bounds, bounds[1:]):
        raw = text[left_end:right_start]
        word = SILENCE if SILENCE in raw else SPECIAL_TOKEN_RE.sub(" ", raw).strip()
        if word:
            segments.append(TimedSegment(word, start, end))
    return segments


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
    _check_pairs(predictions, references)
    shift = shift_release = 0.0
    aligned = aligned_release = ref_words = parse_errors = ref_parse_errors = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_parsed, hyp_parsed = parse_srwt(ref), parse_srwt(pred, implied_start)
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
        rel_segs = parse_srwt(pred) or []
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
                    "aas_ms": 1000.0 * _ratio(sample_shift, len(pairs)),
                    "parsed": hyp_parsed is not None,
                }
            )
    wer = wer_score(predictions, references, lang=lang)
    out: Scores = {
        "aas_ms": 1000.0 * _ratio(shift, aligned),
        "aas_release_ms": 1000.0 * _ratio(shift_release, aligned_release),
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


# --------------------------------------------------------------------------------------------------------------
# MNA: NSynth music note analysis
# --------------------------------------------------------------------------------------------------------------

# The release's sonic label set (NSynth's 10 note qualities).
NSYNTH_QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)  # fmt: skip

_PITCH_RE = re.compile(r"<\|pitch\|><\|midi_pitch_(\d+)\|>")
_VELOCITY_RE = re.compile(r"<\|velocity\|><\|midi_velocity_(\d+)\|>")
_INSTRUMENT_RE = re.compile(r"<\|instrument\|>([^<\n]*)")
_SONIC_RE = re.compile(r"<\|sonic\|>([^<\n]*)")


@dataclass(frozen=True)
class NoteInfo:
    """Fields of a note-analysis output; ``None`` for a field the text does not contain."""

    pitch: int | None
    velocity: int | None
    instrument: str | None
    qualities: tuple[str, ...]


def parse_note_analysis(text: str, qualities: Sequence[str] = NSYNTH_QUALITIES) -> NoteInfo:
    """``<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>name<|sonic|>a, b`` -> fields.

    Never raises. Like the release, the first match of each field wins, the instrument and sonic texts end at
    the next ``<``, and qualities outside ``qualities`` are dropped (split on commas, stripped; the release
    splits on ``", "`` exactly, the same for well-formed outputs).
    """
    pitch = _PITCH_RE.search(text)
    velocity = _VELOCITY_RE.search(text)
    instrument = _INSTRUMENT_RE.search(text)
    sonic = _SONIC_RE.search(text)
    names = [q.strip() for q in sonic.group(1).split(",")] if sonic else []
    return NoteInfo(
        pitch=int(pitch.group(1)) if pitch else None,
        velocity=int(velocity.group(1)) if velocity else None,
        instrument=(instrument.group(1).strip() or None) if instrument else None,
        qualities=tuple(q for q in names if q in qualities),
    )


def mna_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    qualities: Sequence[str] = NSYNTH_QUALITIES,
    details: bool = False,
) -> Scores:
    """Instrument, velocity, pitch (top-1 and chroma) accuracy and sonic-quality macro AP.

    * ``instrument_accuracy`` / ``velocity_accuracy`` / ``pitch_accuracy``: exact equality of the field; a
      field missing from the prediction is wrong.
    * ``pitch_chroma_accuracy``: ``pitch_p % 12 == pitch_r % 12`` on MIDI numbers. (The release takes ``% 12``
      of the class index in the sorted set of pitches seen in the group, which equals this when those pitches
      are contiguous, as on NSynth's test set.)
    * ``sonic_map``: macro average over labels of ``average_precision`` with the hard 0/1 prediction as the
      score, as the release's ``sklearn.average_precision_score(average="macro")``; the labels are those
      present in the references or the predictions of the group (the release's MultiLabelBinarizer over both).
      A label only predicted scores 0; nan when no label appears at all.
    """
    _check_pairs(predictions, references)
    refs = [parse_note_analysis(r, qualities) for r in references]
    hyps = [parse_note_analysis(p, qualities) for p in predictions]

    def _acc(field: str) -> float:
        hits = [getattr(h, field) is not None and getattr(h, field) == getattr(r, field) for h, r in zip(hyps, refs)]
        return _ratio(sum(hits), len(hits))

    chroma = [h.pitch is not None and r.pitch is not None and h.pitch % 12 == r.pitch % 12 for h, r in zip(hyps, refs)]
    labels = sorted({q for note in refs + hyps for q in note.qualities})
    aps = {
        label: average_precision([label in r.qualities for r in refs], [float(label in h.qualities) for h in hyps])
        for label in labels
    }
    out: Scores = {
        "instrument_accuracy": _acc("instrument"),
        "velocity_accuracy": _acc("velocity"),
        "pitch_accuracy": _acc("pitch"),
        "pitch_chroma_accuracy": _ratio(sum(chroma), len(chroma)),
        "sonic_map": _ratio(sum(aps.values()), len(aps)),
        "parse_errors": float(sum(h.pitch is None or h.velocity is None or h.instrument is None for h in hyps)),
        "n": float(len(refs)),
    }
    if details:
        out["details"] = [{"pred": h, "ref": r} for h, r in zip(hyps, refs)]
        out["sonic_ap"] = aps
    return out


# --------------------------------------------------------------------------------------------------------------
# BLEU (S2TT)
# --------------------------------------------------------------------------------------------------------------


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
    (identical for well-formed outputs, which contain none). ``ja-mecab`` needs ``sacrebleu[ja]``; without it
    the ``char`` tokenizer is used, with a warning and ``tokenizer_fallback = 1.0`` in the result.
    """
    import sacrebleu

    _check_pairs(predictions, references)
    tok = tokenize or bleu_tokenizer(lang)
    fallback = 0.0
    if tok == "ja-mecab":
        try:
            sacrebleu.BLEU(tokenize=tok)
        except (ImportError, RuntimeError):
            warnings.warn("ja-mecab needs `pip install sacrebleu[ja]`: BLEU uses the 'char' tokenizer", stacklevel=2)
            tok, fallback = "char", 1.0
    hyps = [strip_special_tokens(p) if strip_special else p.strip() for p in predictions]
    result = sacrebleu.corpus_bleu(hyps, [list(references)], tokenize=tok)
    out: Scores = {
        "bleu": float(result.score),
        "bp": float(result.bp),
        "sys_len": float(result.sys_len),
        "ref_len": float(result.ref_len),
        **{f"precision_{k + 1}": float(p) for k, p in enumerate(result.precisions)},
        "tokenizer_fallback": fallback,
        "n": float(len(references)),
    }
    if details:
        out["details"] = [{"pred": h, "ref": r} for h, r in zip(hyps, references)]
    return out


# --------------------------------------------------------------------------------------------------------------
# Captions (AAC, MC): CIDEr-D, SPICE, SPIDEr
# --------------------------------------------------------------------------------------------------------------


def _reference_list(ref: str | Sequence[str] | None) -> list[str]:
    if ref is None:
        return []
    return [ref] if isinstance(ref, str) else [str(r) for r in ref]


def caption_score(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    references_multi: Sequence[Sequence[str] | None] | None = None,
    n: int = 4,
    sigma: float = 6.0,
    spice: bool = True,
    spice_jar: str | None = None,
    details: bool = False,
) -> Scores:
    """CIDEr-D (headline ``cider``), SPICE and SPIDEr of a group of captions, as pycocoevalcap computes them.

    References: ``references[i]`` is one caption or the list of all captions of sample i (Clotho has 5, AudioCaps
    5 on its test set). ``references_multi[i]``, when given and non-empty, replaces ``references[i]``: the runner
    passes a sample's ``meta.captions`` there and its eval target in ``references``, so a corpus with several
    captions per clip is scored against all of them (as published AAC numbers are) and one with a single caption
    still scores. CIDEr-D's document frequencies come from the references of THIS group, so scores depend on the
    group (one sample alone always scores 0) and only the scores of the same test set compare.

    Every caption loses its special tokens (``<|endoftext|>``...) and is tokenised as pycocoevalcap does
    (``caption.ptb_tokenize``: PTB tokens, lower case, punctuation dropped); then ``caption.cider_d``. A
    prediction that is empty after that scores 0 (``empty_predictions`` counts them). A sample without any
    reference caption is left out of every score (``no_reference`` counts them).

    SPICE runs only when ``caption.find_spice(spice_jar)`` finds a complete installation (Java, SPICE 1.0 and
    Stanford CoreNLP 3.6.0 with its models: nothing is downloaded); otherwise, or when its run fails, ``spice``
    and ``spider`` (= (CIDEr-D + SPICE) / 2) are nan and ``spice_note`` says why and what to install.
    ``spice=False`` skips it.
    """
    _check_pairs(predictions, references)
    if references_multi is not None and len(references_multi) != len(references):
        raise ValueError(f"{len(references_multi)} references_multi entries but {len(references)} references")
    cands: list[str] = []
    refs: list[list[str]] = []
    kept: list[int] = []
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        multi = _reference_list(references_multi[i]) if references_multi is not None else []
        ref_list = [ptb_tokenize(strip_special_tokens(r)) for r in (multi or _reference_list(ref))]
        if not ref_list:
            continue
        kept.append(i)
        cands.append(ptb_tokenize(strip_special_tokens(pred)))
        refs.append(ref_list)
    cider, per_sample = cider_d(cands, refs, n=n, sigma=sigma) if cands else (math.nan, [])
    out: Scores = {"cider": cider, "spice": math.nan, "spider": math.nan}
    spice_scores: list[float] = []
    if not spice:
        out["spice_note"] = "SPICE not requested (spice=False)"
    elif not cands:
        out["spice_note"] = "no sample with a reference caption"
    else:
        jar, why = find_spice(spice_jar)
        if jar is None:
            out["spice_note"] = why
        else:
            try:
                out["spice"], spice_scores = run_spice(cands, refs, jar)
                out["spider"] = (cider + out["spice"]) / 2
            except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                stderr = getattr(e, "stderr", b"") or b""
                tail = stderr.decode(errors="replace").strip().splitlines()[-3:] if isinstance(stderr, bytes) else []
                out["spice_note"] = f"SPICE run failed: {e!r} {' | '.join(tail)} " + SPICE_INSTALL_HINT
    out.update(
        {
            "refs_per_sample": _ratio(sum(len(r) for r in refs), len(refs)),
            "empty_predictions": float(sum(not c for c in cands)),
            "no_reference": float(len(references) - len(kept)),
            "n": float(len(references)),
        }
    )
    if details:
        rows = [{"cider": math.nan, "pred": strip_special_tokens(p), "refs": []} for p in predictions]
        for k, i in enumerate(kept):
            rows[i].update(cider=per_sample[k], pred=cands[k], refs=refs[k])
            if spice_scores:
                rows[i]["spice"] = spice_scores[k]
        out["details"] = rows
    return out


# --------------------------------------------------------------------------------------------------------------
# SD: diarization error rate over time-span outputs
# --------------------------------------------------------------------------------------------------------------

FRAMES_PER_SECOND = 100  # 10 ms frames: the resolution of the time tokens
EXACT_MAPPING_MAX_SPEAKERS = 10  # above this, on either side, the speaker mapping is greedy


def _centiseconds(t: float) -> int:
    return int(round(t * FRAMES_PER_SECOND))


def _spans(text: str) -> list[tuple[str, int, int]]:
    """``tasks.parse_spans`` with labels normalised (``_norm_label``; spans left without a label dropped) and
    times in whole centiseconds, the time tokens' resolution."""
    spans = [(_norm_label(label), _centiseconds(s), _centiseconds(e)) for label, s, e in parse_spans(text)]
    return [span for span in spans if span[0]]


def _speaker_frames(text: str) -> dict[str, set[int]]:
    """Speaker -> set of 10 ms frames ``[start, end)`` where it speaks (its turns merged; empty turns ignored)."""
    frames: dict[str, set[int]] = {}
    for label, start, end in _spans(text):
        frames.setdefault(label, set()).update(range(start, end))
    return {spk: f for spk, f in frames.items() if f}


def best_mapping(overlap: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int]], bool]:
    """One-to-one (row, column) pairs maximising the summed ``overlap``, and whether that is the exact optimum.

    Exact (dynamic programming over subsets of columns: the same result as trying every permutation) while
    neither side has more than ``EXACT_MAPPING_MAX_SPEAKERS``; beyond, greedy: repeatedly the largest remaining
    entry whose row and column are both free, which may miss the optimum. (scipy's Hungarian solver is not a
    dependency.) Pairs with zero overlap are dropped: they change nothing.
    """
    rows = len(overlap)
    cols = len(overlap[0]) if rows else 0
    if rows == 0 or cols == 0:
        return [], True
    if max(rows, cols) > EXACT_MAPPING_MAX_SPEAKERS:
        cells = sorted(((overlap[r][c], r, c) for r in range(rows) for c in range(cols)), reverse=True)
        used_r: set[int] = set()
        used_c: set[int] = set()
        pairs = []
        for v, r, c in cells:
            if v > 0 and r not in used_r and c not in used_c:
                pairs.append((r, c))
                used_r.add(r)
                used_c.add(c)
        return sorted(pairs), False
    transpose = rows > cols  # the DP runs over subsets of the larger side
    grid = [list(col) for col in zip(*overlap)] if transpose else [list(row) for row in overlap]
    # best[mask] = (value, pairs) after the first popcount(mask)... rows, using exactly the columns in mask
    best: dict[int, tuple[int, list[tuple[int, int]]]] = {0: (0, [])}
    for r, row in enumerate(grid):
        nxt: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        for mask, (value, pairs) in best.items():
            for c, v in enumerate(row):
                if not mask >> c & 1:
                    key = mask | 1 << c
                    if key not in nxt or value + v > nxt[key][0]:
                        nxt[key] = (value + v, pairs + [(r, c)])
        best = nxt
    _value, pairs = max(best.values(), key=lambda item: item[0])
    pairs = [(c, r) if transpose else (r, c) for r, c in pairs]
    return sorted((r, c) for r, c in pairs if overlap[r][c] > 0), True


def sd_score(predictions: Sequence[str], references: Sequence[str], *, details: bool = False) -> Scores:
    """Diarization error rate (headline ``der``, lower is better) of time-span outputs, frame-based at 10 ms.

    Both sides are read with ``tasks.parse_spans`` (``<|0.20|>speaker 1<|1.80|>...``); labels are speaker names
    compared after ``_norm_label`` (only their identity within a sample matters). Per sample, each speaker's
    turns become the set of 10 ms frames ``[round(start * 100), round(end * 100))`` it speaks in; for each frame,
    with ``R`` / ``H`` the numbers of reference / predicted speakers active:

        missed = max(0, R - H)     false alarm = max(0, H - R)     confusion = min(R, H) - correct

    where ``correct`` counts the predicted speakers active in the frame whose mapped reference speaker is active
    too, under the one-to-one speaker mapping of the sample that maximises the total overlap (``best_mapping``).
    No forgiveness collar, overlapped speech scored (pyannote's ``DiarizationErrorRate()`` defaults, as DIHARD).
    Corpus ``der = sum(missed + false alarm + confusion) / sum(R)`` over all frames of all samples;
    ``missed``, ``false_alarm`` and ``confusion`` are its parts (same denominator). A prediction without any
    parseable span (``empty_predictions``) misses all its reference speech. ``speaker_count_accuracy`` is the
    fraction of samples whose number of predicted speakers is right; ``greedy_mappings`` counts samples whose
    mapping was greedy (more than ``EXACT_MAPPING_MAX_SPEAKERS`` speakers).
    """
    _check_pairs(predictions, references)
    miss = fa = conf = total = 0
    empty = greedy = count_ok = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        ref_spk, hyp_spk = _speaker_frames(ref), _speaker_frames(pred)
        empty += not hyp_spk
        count_ok += len(hyp_spk) == len(ref_spk)
        ref_names, hyp_names = sorted(ref_spk), sorted(hyp_spk)
        overlap = [[len(ref_spk[r] & hyp_spk[h]) for h in hyp_names] for r in ref_names]
        pairs, exact = best_mapping(overlap)
        greedy += not exact
        ref_count = Counter(t for frames in ref_spk.values() for t in frames)  # frame -> active speakers
        hyp_count = Counter(t for frames in hyp_spk.values() for t in frames)
        s_total = sum(ref_count.values())
        s_miss = sum(max(0, n_ref - hyp_count[t]) for t, n_ref in ref_count.items())
        s_fa = sum(max(0, n_hyp - ref_count[t]) for t, n_hyp in hyp_count.items())
        s_conf = sum(min(n_ref, hyp_count[t]) for t, n_ref in ref_count.items()) - sum(overlap[r][h] for r, h in pairs)
        miss, fa, conf, total = miss + s_miss, fa + s_fa, conf + s_conf, total + s_total
        if details:
            per_sample.append(
                {
                    "der": _ratio(s_miss + s_fa + s_conf, s_total),
                    "missed_s": s_miss / FRAMES_PER_SECOND,
                    "false_alarm_s": s_fa / FRAMES_PER_SECOND,
                    "confusion_s": s_conf / FRAMES_PER_SECOND,
                    "ref_speech_s": s_total / FRAMES_PER_SECOND,
                    "mapping": {hyp_names[h]: ref_names[r] for r, h in pairs},
                }
            )
    out: Scores = {
        "der": _ratio(miss + fa + conf, total),
        "missed": _ratio(miss, total),
        "false_alarm": _ratio(fa, total),
        "confusion": _ratio(conf, total),
        "ref_speech_s": total / FRAMES_PER_SECOND,
        "speaker_count_accuracy": _ratio(count_ok, len(references)),
        "empty_predictions": float(empty),
        "greedy_mappings": float(greedy),
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out


# --------------------------------------------------------------------------------------------------------------
# SED: sound event detection over time-span outputs
# --------------------------------------------------------------------------------------------------------------

ONSET_COLLAR_S = 0.2
OFFSET_COLLAR_FRACTION = 0.2
SEGMENT_S = 1.0


def _events(text: str) -> dict[str, list[tuple[int, int]]]:
    """Label -> [(onset, offset)] in centiseconds (``_spans``)."""
    events: dict[str, list[tuple[int, int]]] = {}
    for label, start, end in _spans(text):
        events.setdefault(label, []).append((start, end))
    return events


def _active_segments(events: dict[str, list[tuple[int, int]]], seg: int) -> set[tuple[int, str]]:
    """(segment index, label) pairs where the label is active: ``[floor(onset / seg), ceil(offset / seg))``."""
    return {(k, label) for label, evs in events.items() for on, off in evs for k in range(on // seg, -(-off // seg))}


def _max_matching(n_left: int, edges: Sequence[Sequence[int]]) -> int:
    """Size of a maximum bipartite matching (augmenting paths); ``edges[i]`` = right nodes left node i may take."""
    match_right: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j not in seen:
                seen.add(j)
                if j not in match_right or augment(match_right[j], seen):
                    match_right[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(n_left))


def sed_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    onset_collar: float = ONSET_COLLAR_S,
    offset_fraction: float = OFFSET_COLLAR_FRACTION,
    segment: float = SEGMENT_S,
    details: bool = False,
) -> Scores:
    """Event-based F1 (headline ``event_f1``) and segment-based F1 / error rate of time-span outputs.

    Both sides are read with ``tasks.parse_spans``; labels compared after ``_norm_label``; times in whole
    centiseconds (the time tokens' resolution), so the collar comparisons below are exact.

    * Event-based (sed_eval's ``EventBasedMetrics`` as DCASE uses it): a predicted event matches a reference event
      of the same label and sample when ``|onset_p - onset_r| <= onset_collar`` (0.2 s) and
      ``|offset_p - offset_r| <= max(onset_collar, offset_fraction * (offset_r - onset_r))`` (0.2 s or 20 % of
      the reference event's length); each event is matched at most once and the matching is maximum (sed_eval's
      "optimal"). ``event_f1`` / ``event_precision`` / ``event_recall`` are micro over labels and samples;
      ``event_f1_macro`` averages the F1 of each label present in the group's references (labels only predicted
      are false positives in the micro scores and have no F1 of their own, as sed_eval's class-wise average).
    * Segment-based (sed_eval's ``SegmentBasedMetrics``, 1 s segments): a label is active in segment k of a sample
      when one of its events overlaps ``[floor(onset / 1 s), ceil(offset / 1 s))``; TP/FP/FN over (segment,
      label) pairs give ``segment_f1`` etc.; ``segment_error_rate = (S + D + I) / N`` with per-segment
      substitutions ``min(FN, FP)``, deletions ``max(0, FN - FP)``, insertions ``max(0, FP - FN)`` and ``N`` the
      active reference (segment, label) pairs.

    A prediction without any parseable span (``empty_predictions``) has no event: all its references are missed.
    """
    _check_pairs(predictions, references)
    collar = _centiseconds(onset_collar)
    seg = _centiseconds(segment)
    tp = fp = fn = 0
    by_label: dict[str, list[int]] = {}  # label -> [tp, fp, fn]
    s_tp = s_fp = s_fn = subs = dels = ins = n_active = 0
    empty = ref_events = 0
    per_sample = []
    for pred, ref in zip(predictions, references):
        r_ev, h_ev = _events(ref), _events(pred)
        empty += not h_ev
        sample_tp = 0
        for label in set(r_ev) | set(h_ev):
            rs, hs = r_ev.get(label, []), h_ev.get(label, [])
            # + 1e-9: a fraction times a length in floats may land just below the whole centisecond it means.
            edges = [
                [
                    j
                    for j, (hon, hoff) in enumerate(hs)
                    if abs(hon - ron) <= collar
                    and abs(hoff - roff) <= max(collar, offset_fraction * (roff - ron) + 1e-9)
                ]
                for ron, roff in rs
            ]
            k = _max_matching(len(rs), edges)
            counts = by_label.setdefault(label, [0, 0, 0])
            counts[0] += k
            counts[1] += len(hs) - k
            counts[2] += len(rs) - k
            sample_tp += k
        n_ref, n_hyp = sum(map(len, r_ev.values())), sum(map(len, h_ev.values()))
        tp, fp, fn, ref_events = tp + sample_tp, fp + n_hyp - sample_tp, fn + n_ref - sample_tp, ref_events + n_ref
        r_act, h_act = _active_segments(r_ev, seg), _active_segments(h_ev, seg)
        s_tp, s_fp, s_fn = s_tp + len(r_act & h_act), s_fp + len(h_act - r_act), s_fn + len(r_act - h_act)
        n_active += len(r_act)
        seg_fn = Counter(k for k, _ in r_act - h_act)
        seg_fp = Counter(k for k, _ in h_act - r_act)
        for k in seg_fn.keys() | seg_fp.keys():
            subs += min(seg_fn[k], seg_fp[k])
            dels += max(0, seg_fn[k] - seg_fp[k])
            ins += max(0, seg_fp[k] - seg_fn[k])
        if details:
            per_sample.append({"tp": sample_tp, "ref_events": n_ref, "pred_events": n_hyp})
    ref_labels = [c for c in by_label.values() if c[0] + c[2] > 0]
    out: Scores = {
        **_prf("event", tp, fp, fn),
        "event_f1_macro": _ratio(sum(_ratio(2 * c[0], 2 * c[0] + c[1] + c[2]) for c in ref_labels), len(ref_labels)),
        **_prf("segment", s_tp, s_fp, s_fn),
        "segment_error_rate": _ratio(subs + dels + ins, n_active),
        "ref_events": float(ref_events),
        "empty_predictions": float(empty),
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out


# --------------------------------------------------------------------------------------------------------------
# SER / SF: typed entities marked inline
# --------------------------------------------------------------------------------------------------------------


def entity_score(
    predictions: Sequence[str], references: Sequence[str], *, lang: str = "en", details: bool = False
) -> Scores:
    """Micro F1 of (type, value) pairs (headline ``entity_f1``) plus the WER of the plain transcripts.

    Both sides are read with ``tasks.parse_entities``; types and values are compared after ``_norm_label``
    (case-insensitive, whitespace collapsed, special tokens removed). Per sample the predicted and reference
    pairs are matched as multisets (a pair predicted twice but present once is one TP and one FP); TP/FP/FN are
    summed over the group. ``value_f1`` is the same ignoring types (did the model find the span at all).
    ``wer`` / ``edits`` / ``ref_words`` are ``wer_score`` (release cleaning) of the transcripts with the entity
    markers and types removed and the values kept. A prediction without markers has no entity (all its
    reference entities are missed) but its words still count in the WER.
    """
    _check_pairs(predictions, references)
    tp = fp = fn = v_tp = v_fp = v_fn = 0
    texts_p, texts_r = [], []
    per_sample = []
    for pred, ref in zip(predictions, references):
        text_r, ents_r = parse_entities(ref)
        text_p, ents_p = parse_entities(pred)
        texts_r.append(text_r)
        texts_p.append(text_p)
        pairs_r = Counter((_norm_label(t), _norm_label(v)) for t, v in ents_r)
        pairs_p = Counter((_norm_label(t), _norm_label(v)) for t, v in ents_p)
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
        **_prf("entity", tp, fp, fn),
        "value_f1": _ratio(2 * v_tp, 2 * v_tp + v_fp + v_fn),
        "ref_entities": float(tp + fn),
        "wer": wer["wer"],
        "edits": wer["edits"],
        "ref_words": wer["ref_words"],
        "n": float(len(references)),
    }
    if details:
        out["details"] = per_sample
    return out


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------

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
}


def score(metric: str, predictions: Sequence[str], references: Sequence[str], **kw: Any) -> Scores:
    """Run the scorer registered as ``metric`` (``wer``, ``accuracy``, ``aqa``, ``srwt``, ``mna``, ``bleu``,
    ``caption``, ``sd``, ``sed``, ``entity_f1``)."""
    try:
        scorer = SCORERS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(SCORERS))}") from None
    return scorer(predictions, references, **kw)
