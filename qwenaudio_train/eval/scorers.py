"""Scorers: one function per metric family of the release's ``eval_audio/`` scripts, behind one registry.

Every scorer is ``f(predictions: list[str], references: list[str], **kw) -> dict[str, float]`` over ONE group
of samples (the runner groups by the eval jsonl's ``source`` field, as the release does, and picks the metric
from the task registry). ``details=True`` adds a ``"details"`` list of per-sample dicts; without it every value
is a float, so results go straight to the metrics log. Undefined values (no reference words, no aligned
words, empty input) are ``nan``, never an exception.

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

Owns: text cleaning and normalising for scoring, the SRWT and note-analysis output parsers used for scoring,
the metric arithmetic. Must not: import torch, run models, read files or know datasets (the runner does).
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import editdistance

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
    out: Scores = {
        "accuracy": _ratio(sum(hits), len(hits)),
        "accuracy_release": _ratio(sum(p.strip() == r for p, r in zip(predictions, references)), len(hits)),
        "macro_f1": _ratio(sum(f1s), len(f1s)),
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
        sample_shift = sum((abs(h_words[j].start - r_words[i].start) + abs(h_words[j].end - r_words[i].end)) / 2
                           for i, j in pairs)
        shift += sample_shift
        aligned += len(pairs)
        # The release's variant: its parse, every segment (silences included), exact text, both shifts summed.
        rel_segs = parse_srwt(pred) or []
        rel_pairs = align([s.text for s in ref_segs], [s.text for s in rel_segs])
        shift_release += sum(abs(rel_segs[j].start - ref_segs[i].start) + abs(rel_segs[j].end - ref_segs[i].end)
                             for i, j in rel_pairs)
        aligned_release += len(rel_pairs)
        if details:
            per_sample.append({
                "aligned_words": len(pairs),
                "ref_words": len(r_words),
                "aas_ms": 1000.0 * _ratio(sample_shift, len(pairs)),
                "parsed": hyp_parsed is not None,
            })
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
}

# The key each metric family reports as its headline number, and which direction is better for it.
HEADLINE: dict[str, str] = {
    "wer": "wer",
    "accuracy": "accuracy",
    "aqa": "accuracy",
    "srwt": "aas_ms",
    "mna": "instrument_accuracy",
    "bleu": "bleu",
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "wer": False,
    "accuracy": True,
    "aqa": True,
    "srwt": False,
    "mna": True,
    "bleu": True,
}


def score(metric: str, predictions: Sequence[str], references: Sequence[str], **kw: Any) -> Scores:
    """Run the scorer registered as ``metric`` (``wer``, ``accuracy``, ``aqa``, ``srwt``, ``mna``, ``bleu``)."""
    try:
        scorer = SCORERS[metric]
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(SCORERS))}") from None
    return scorer(predictions, references, **kw)
