"""Target formats: how a structured answer is rendered into target text, and how a target or a model output is
read back. One home for both directions, so the training targets and the scorers can never disagree.

Owns, each as a `format_*` / `parse_*` pair (`parse_*(format_*(x)) == x`, tested in `tests/unit/test_formats.py`):
* labels: one label, a label set joined with ", " (SEC, MIC) and "key: label" (tasks sharing an instruction);
* SRWT word timestamps: `<|0.00|><|sil|><|0.54|>word<|0.86|>next<|1.20|>` (the release's format);
* times past 30 s, in every format above and below: `<|window_k|>` + the released token of `t - 30 k`
  (`tags.long_time`, docs/long_audio.md); a text whose times are all <= 30 s is exactly the release's;
* time spans (SED events, SD speaker turns): `<|0.50|>dog bark<|1.20|><|0.90|>car horn<|3.00|>` (our convention);
* inline entities (SER, SF): the transcript with each value wrapped in the released entity tokens;
* note analysis (MNA): `<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>x<|sonic|>a, b`.

Parsers never raise on model output: malformed parts are skipped so a partial answer still scores what it got
right. Where the training side and the scoring side need different views of the same text, there is one parser
and a thin documented view over it (`parse_srwt` over `parse_srwt_segments`, `parse_mna` over
`parse_note_analysis`), never two copies.

Must not: import torch, a tokenizer or the task registry, read files, or know metrics (scorers live in `eval/`).
Formatters raise ValueError on bad input; the task registry turns that into a SampleError naming the sample.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qwenaudio_train.data.schema import Word
from qwenaudio_train.tags import (
    INSTRUMENT,
    LONG_TIME_RE,
    PITCH,
    SIL,
    SONIC,
    VELOCITY,
    WINDOW_SECONDS,
    long_time,
    long_time_centis,
    parse_tags,
    special,
)

# Any `<|...|>` token (tags, time tokens, `<|endoftext|>`): the release's pattern, used to clean model output.
SPECIAL_TOKEN_RE = re.compile(r"<\|.*?\|>")
# <audio>PATH</audio> spans never appear in decoded outputs; stripping them lets callers pass raw prompts.
AUDIO_SPAN_RE = re.compile(r"<audio>.*?</audio>|</?audio>", re.S)


def centis(seconds: float) -> int:
    """`seconds` as whole centiseconds (the time tokens' 10 ms), clamped to the writable range 0..3600 s (times
    past 30 s are written `<|window_k|><|t - 30 k|>`, `tags.long_time`)."""
    return long_time_centis(seconds)


def strip_prefix(text: str) -> str:
    """`text` without its tag prefix when it starts with one (`<|startoftranscript|>` / `<|startofanalysis|>`)."""
    if text.startswith("<|startoftranscript|>") or text.startswith("<|startofanalysis|>"):
        _tags, text = parse_tags(text)
    return text


# ---------------------------------------------------------------------------------------------------------------
# Labels: one label, a label set, "key: label"
# ---------------------------------------------------------------------------------------------------------------
LABEL_SEPARATOR = ", "


def format_labels(labels: Sequence[str]) -> str:
    """A multi-label target (SEC, MIC): labels stripped and joined with ", " in the given order.

    ValueError on an empty label set or an empty label (a target must say something)."""
    parts = [str(label).strip() for label in labels]
    if not parts or not all(parts):
        raise ValueError(f"labels {list(labels)!r} must be a non-empty list of non-empty labels")
    return LABEL_SEPARATOR.join(parts)


def parse_labels(text: str) -> list[str]:
    """The labels of a multi-label target or output: split on commas, parts stripped, empties dropped.

    A label that itself contains a comma (AudioSet's "Chewing, mastication") comes back as its parts: scorers
    compare the parts on both sides alike. A single-label target gives a one-element list."""
    return [part.strip() for part in text.split(",") if part.strip()]


def format_keyed(key: str, label: str) -> str:
    """ "key: label", the target of tasks that share an output instruction ("gender: female")."""
    return f"{key}: {label}"


def parse_keyed(text: str, key: str) -> str | None:
    """The label after "key:" (stripped), or None when `text` does not start with "key:"."""
    head = f"{key}:"
    return text[len(head) :].strip() if text.startswith(head) else None


# ---------------------------------------------------------------------------------------------------------------
# SRWT: words with timestamps
# ---------------------------------------------------------------------------------------------------------------
# The release's scorer pattern (any number of decimals; the tokenizer only ever decodes two), with the optional
# window marker of a time past 30 s in front (group 1; group 2 the token's number). Without markers, the release's.
SRWT_TIME_RE = re.compile(r"(?:<\|window_(\d{1,3})\|>)?<\|(\d{1,2}\.\d+)\|>")


def srwt_seconds(match: re.Match[str]) -> float:
    """Seconds of an `SRWT_TIME_RE` match: the token's number, plus 30 s per window of a marker in front (summed
    in decimal, so `<|window_1|><|0.01|>` is float("30.01"))."""
    if match.group(1) is None:
        return float(match.group(2))
    return float(Decimal(match.group(2)) + Decimal(int(match.group(1))) * Decimal(int(WINDOW_SECONDS)))


def format_srwt(words: Sequence[Word | tuple[str, float, float]]) -> str:
    """Word-timestamp target: time tokens and words alternate, starting at `<|0.00|>`, sharing boundaries; a gap
    before a word is `<|sil|>` followed by the word's start time.

    e.g. `<|0.00|><|sil|><|0.54|>word<|0.86|>next<|1.20|>`. Times are rounded to 10 ms; a word that starts before
    the previous one ends is moved to that end (boundaries never go backwards). Times past 30 s are written
    `<|window_k|><|t - 30 k|>` (`tags.long_time`): `...word<|29.90|>next<|window_1|><|0.40|>`.
    """
    out = [long_time(0.0)]
    t = 0  # centiseconds of the last time token written
    for w in words:
        text, start, end = (w.word, w.start, w.end) if isinstance(w, Word) else w
        text = str(text).strip()
        if not text:
            continue
        s = max(centis(start), t)
        e = max(centis(end), s)
        if s > t:
            out += [SIL, long_time(s / 100)]
        out += [text, long_time(e / 100)]
        t = e
    return "".join(out)


@dataclass(frozen=True)
class TimedSegment:
    """One segment between two time tokens: a word (or character) or a silence."""

    text: str
    start: float
    end: float

    @property
    def is_silence(self) -> bool:
        return self.text == SIL


def parse_srwt_segments(text: str, implied_start: float | None = None) -> list[TimedSegment] | None:
    """``<|0.00|><|sil|><|0.54|>word<|0.86|>...`` -> segments, silences included; ``None`` without a time token.

    The one SRWT parser (the scorers' view; `parse_srwt` is the words view over it). Time tokens alternate with
    segments and consecutive segments share a boundary. Text after the last time token has no end and is ignored.
    Text before the first time token is ignored too (as in the release), unless ``implied_start`` is given: then it
    is a segment from ``implied_start`` to the first time token (a continuation decoded after a prompt ending in
    ``<|0.00|>``). Other special tokens (``<|en|>``, ``<|endoftext|>``...) and ``<audio>`` spans are dropped from
    segments, surrounding whitespace is stripped, and empty segments (two adjacent time tokens) are skipped. A
    segment holding ``<|sil|>`` is a silence. A time past 30 s is its ``<|window_k|>`` marker and time token
    together (``SRWT_TIME_RE``), read as ``30 k`` + the token's time.
    """
    text = AUDIO_SPAN_RE.sub(" ", text)
    times = list(SRWT_TIME_RE.finditer(text))
    if not times:
        return None
    bounds = [(m.start(), m.end(), srwt_seconds(m)) for m in times]
    if implied_start is not None:
        bounds.insert(0, (0, 0, implied_start))
    segments = []
    for (_, left_end, start), (right_start, _, end) in zip(bounds, bounds[1:]):
        raw = text[left_end:right_start]
        word = SIL if SIL in raw else SPECIAL_TOKEN_RE.sub(" ", raw).strip()
        if word:
            segments.append(TimedSegment(word, start, end))
    return segments


def parse_srwt(text: str) -> list[tuple[str, float, float]]:
    """(word, start, end) of every timed word of an SRWT target or model output: the inverse of `format_srwt`.

    The training side's view of `parse_srwt_segments`: a tag prefix is removed first, `<|0.00|>` is implied when
    the text does not start with a time token (the text after the eval prefix), `<|sil|>` spans are skipped, and
    a text without any timed word gives `[]`. Incomplete trailing words (no end time) are dropped.
    """
    segments = parse_srwt_segments(strip_prefix(text), implied_start=0.0) or []
    return [(s.text, s.start, s.end) for s in segments if not s.is_silence]


def parse_srwt_release(text: str) -> tuple[list[str], list[tuple[float, float]]] | None:
    """The release's raw reading of an SRWT text (its ``AverageShiftCalculator.read_timestamps``), for the
    release-exact AAS only: ``(segments, times)`` or ``None`` where the release counts a pattern error.

    ``<|startoftranscript|>``, ``<|transcribe|>`` and the first of ``<|en|>`` / ``<|zh|>`` present are removed;
    the segments are the raw texts between consecutive time tokens (spaces, ``<|sil|>`` and any other token
    kept; two adjacent time tokens give an empty segment), segment ``k`` spans time tokens ``k`` and ``k + 1``;
    text before the first and after the last time token is dropped. A text without any time token is a pattern
    error. Segments go through the release's ``"\t".join`` / ``split("\t")`` round trip, so a tab splits one.
    A time past 30 s (``<|window_k|>`` + token, which the release never writes) is read as one time of
    ``30 k`` + the token's time, its marker belonging to no segment; texts without markers read as the release's.
    """
    text = text.replace("<|startoftranscript|>", "").replace("<|transcribe|>", "")
    if "<|en|>" in text:
        text = text.replace("<|en|>", "")
    elif "<|zh|>" in text:
        text = text.replace("<|zh|>", "")
    times = [srwt_seconds(m) for m in SRWT_TIME_RE.finditer(text)]
    segments = SRWT_TIME_RE.split(text)[::3][1:-1]  # split() also returns the 2 captured groups: keep the texts
    if len(times) != len(segments) + 1:
        return None
    return "\t".join(segments).split("\t"), [(times[k], times[k + 1]) for k in range(len(times) - 1)]


# ---------------------------------------------------------------------------------------------------------------
# Time spans: SED events and SD speaker turns
# ---------------------------------------------------------------------------------------------------------------
Span = tuple[str, float, float]  # (label, start, end) in seconds


def format_spans(spans: Sequence[Span]) -> str:
    """Time-span target: `<|start|>label<|end|>` per span, ordered by start (then end), no separators.

    e.g. `<|0.50|>dog bark<|1.20|><|0.90|>car horn<|3.00|>`. Unlike SRWT, spans may overlap and do not share
    boundaries. Times are rounded to 10 ms (clamped to 0..3600 s); an end before its start is moved to the start.
    A time past 30 s is `<|window_k|><|t - 30 k|>` (`tags.long_time`): `<|29.00|>speech<|window_1|><|4.50|>`.
    ValueError on an empty label or one containing a special token.
    """
    rows = []
    for label, start, end in spans:
        label = str(label).strip()
        if not label or "<|" in label:
            raise ValueError(f"span label {label!r} must be non-empty text without special tokens")
        s = centis(start)
        rows.append((s, max(centis(end), s), label))
    rows.sort(key=lambda r: (r[0], r[1]))  # stable: equal spans keep the caller's order
    return "".join(f"{long_time(s / 100)}{label}{long_time(e / 100)}" for s, e, label in rows)


def parse_spans(text: str) -> list[Span]:
    """(label, start, end) of every `<|t0|>label<|t1|>` span in a target or model output, in text order.

    Accepts text with or without the tag prefix. Malformed parts are skipped so partial model outputs still score
    what they got right: text without a start time, a start time followed by another time (the later one starts
    the next span), a label without an end time. A time past 30 s is its `<|window_k|>` marker and the time token
    right after it (`tags.LONG_TIME_RE`), read as `30 k` + the token's time.
    """
    pieces = LONG_TIME_RE.split(strip_prefix(text))  # [text, window, s, cs, text, window, s, cs, text, ...]
    out: list[Span] = []
    start: float | None = None
    label: str | None = None
    for i in range(1, len(pieces), 4):
        window = int(pieces[i]) if pieces[i] else 0
        t = window * WINDOW_SECONDS + int(pieces[i + 1]) + int(pieces[i + 2]) / 100
        if start is not None and label:
            out.append((label, round(start, 2), round(t, 2)))
            start, label = None, None
        else:
            start = t
        seg = pieces[i + 3].strip()
        if seg and start is not None:
            label = seg
    return out


def diarization_spans(segments: Sequence[Span]) -> list[Span]:
    """Speaker turns relabelled "speaker 1", "speaker 2"... in order of first appearance (sorted by start).

    Our convention: corpus speaker ids cannot be predicted from audio and diarization is scored up to a
    permutation of speakers, so the target names speakers by the order in which they first speak.
    """
    ordered = sorted(segments, key=lambda s: (centis(s[1]), centis(s[2])))
    names: dict[str, str] = {}
    for spk, _s, _e in ordered:
        if not str(spk).strip():
            raise ValueError(f"empty speaker id in turn {(spk, _s, _e)!r}")
        names.setdefault(str(spk), f"speaker {len(names) + 1}")
    return [(names[str(spk)], s, e) for spk, s, e in ordered]


# ---------------------------------------------------------------------------------------------------------------
# SER / SF: typed spans marked inline with the released entity tokens
# ---------------------------------------------------------------------------------------------------------------
VALUE_START, VALUE_END = special("startofentityvalue"), special("endofentityvalue")
TYPE_START, TYPE_END = special("startofentitytype"), special("endofentitytype")


def format_entities(transcript: str, entities: Sequence[tuple[str, str] | Mapping[str, Any]]) -> str:
    """The transcript with every entity marked where it occurs, its type right after it:

    `fly to <|startofentityvalue|>boston<|endofentityvalue|><|startofentitytype|>city<|endofentitytype|> today`.
    `entities` are (type, value) pairs or {type, value} dicts in order of appearance; each value is searched
    (case-insensitive, the transcript's spelling is kept) after the previous one. ValueError naming the entity if
    a value is not found there.
    """
    out, pos = [], 0
    for ent in entities:
        etype, value = (ent["type"], ent["value"]) if isinstance(ent, Mapping) else ent
        etype, value = str(etype).strip(), str(value).strip()
        if not etype or not value:
            raise ValueError(f"entity {ent!r}: type and value must be non-empty")
        m = re.compile(re.escape(value), re.IGNORECASE).search(transcript, pos)
        if m is None:
            raise ValueError(
                f"entity value {value!r} ({etype}) not found in the transcript after character {pos} "
                f"(entities must be substrings, in order of appearance): {transcript!r}"
            )
        out += [transcript[pos : m.start()], VALUE_START, m.group(0), VALUE_END, TYPE_START, etype, TYPE_END]
        pos = m.end()
    out.append(transcript[pos:])
    return "".join(out)


_ENTITY_RE = re.compile(
    re.escape(VALUE_START)
    + r"(.*?)"
    + re.escape(VALUE_END)
    + r"(?:"
    + re.escape(TYPE_START)
    + r"(.*?)"
    + re.escape(TYPE_END)
    + r")?",
    re.DOTALL,
)


def parse_entities(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(transcript, [(type, value), ...]) of an SER/SF target or model output; inverts `format_entities`.

    The transcript keeps the values and drops the markers and types. A value without a type gets type "".
    """
    text = strip_prefix(text)
    entities: list[tuple[str, str]] = []

    def keep_value(m: re.Match[str]) -> str:
        entities.append(((m.group(2) or "").strip(), m.group(1).strip()))
        return m.group(1)

    return _ENTITY_RE.sub(keep_value, text), entities


# ---------------------------------------------------------------------------------------------------------------
# MNA: note analysis
# ---------------------------------------------------------------------------------------------------------------
# The release's sonic label set (NSynth's 10 note qualities).
NSYNTH_QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)  # fmt: skip

_PITCH_RE = re.compile(r"<\|pitch\|><\|midi_pitch_(\d+)\|>")
_VELOCITY_RE = re.compile(r"<\|velocity\|><\|midi_velocity_(\d+)\|>")
_INSTRUMENT_RE = re.compile(r"<\|instrument\|>([^<\n]*)")
_SONIC_RE = re.compile(r"<\|sonic\|>([^<\n]*)")


def format_mna(pitch: int, velocity: int, instrument: str, sonic: Sequence[str] | str = ()) -> str:
    """`<|pitch|><|midi_pitch_N|><|velocity|><|midi_velocity_N|><|instrument|>NAME<|sonic|>a, b` (release format)."""
    for name, v in (("pitch", pitch), ("velocity", velocity)):
        if not (isinstance(v, int) and 0 <= v <= 127):
            raise ValueError(f"note analysis {name} must be a MIDI integer 0..127, got {v!r}")
    qualities = [sonic] if isinstance(sonic, str) and sonic else list(sonic or [])
    return (
        f"{PITCH}<|midi_pitch_{pitch}|>{VELOCITY}<|midi_velocity_{velocity}|>"
        f"{INSTRUMENT}{instrument}{SONIC}{', '.join(qualities)}"
    )


@dataclass(frozen=True)
class NoteInfo:
    """Fields of a note-analysis output; ``None`` for a field the text does not contain."""

    pitch: int | None
    velocity: int | None
    instrument: str | None
    qualities: tuple[str, ...]


def parse_note_analysis(text: str, qualities: Sequence[str] | None = NSYNTH_QUALITIES) -> NoteInfo:
    """``<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>name<|sonic|>a, b`` -> fields.

    The one note-analysis parser (the scorers' view; `parse_mna` is the training side's view over it). Never
    raises. Like the release, the first match of each field wins and the instrument and sonic texts end at the
    next ``<`` (or line end); an empty instrument is ``None``. Qualities are split on commas and stripped (the
    release splits on ``", "`` exactly, the same for well-formed outputs); those outside ``qualities`` are
    dropped, ``qualities=None`` keeps every one.
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
        qualities=tuple(q for q in names if q and (qualities is None or q in qualities)),
    )


_RELEASE_PITCH_RE = re.compile(r"<\|pitch\|><\|midi_pitch_(.*?)\|>")
_RELEASE_VELOCITY_RE = re.compile(r"<\|velocity\|><\|midi_velocity_(.*?)\|>")
_RELEASE_INSTRUMENT_RE = re.compile(r"<\|instrument\|>(.*)")
_RELEASE_SONIC_RE = re.compile(r"<\|sonic\|>(.*)")
RELEASE_MISSING_MIDI = 128  # the release's value for a pitch/velocity it cannot read (never a real MIDI number)


def _release_int(pattern: re.Pattern[str], text: str) -> int:
    found = pattern.findall(text)
    try:
        return int(found[0]) if found else RELEASE_MISSING_MIDI
    except ValueError:  # the release's bare except around int(): anything unreadable is 128
        return RELEASE_MISSING_MIDI


def parse_note_analysis_release(text: str, qualities: Sequence[str] = NSYNTH_QUALITIES) -> NoteInfo:
    """The release's reading of a note analysis (its ``get_note_info``), for the release-exact MNA metrics only.

    Kept apart from `parse_note_analysis` on purpose: the release differs in ways that move its numbers.
    Pitch/velocity are ``int()`` of whatever sits between ``midi_pitch_`` and the next ``|>`` (``" 60"`` reads
    as 60), ``RELEASE_MISSING_MIDI`` (128) when missing or unreadable, so a field missing on both sides
    compares equal; the instrument is the rest of the line up to the next ``<``, NOT stripped, ``""`` when
    missing; qualities are the sonic text split on ``", "`` exactly, those outside ``qualities`` dropped.
    """
    instrument = _RELEASE_INSTRUMENT_RE.findall(text)
    sonic = _RELEASE_SONIC_RE.findall(text)
    sonic_text = sonic[0].split("<")[0] if sonic else ""
    return NoteInfo(
        pitch=_release_int(_RELEASE_PITCH_RE, text),
        velocity=_release_int(_RELEASE_VELOCITY_RE, text),
        instrument=instrument[0].split("<")[0] if instrument else "",
        qualities=tuple(q for q in sonic_text.split(", ") if q in qualities) if sonic_text else (),
    )


@dataclass
class NoteAnalysis:
    """The training side's view of a note analysis: what a recipe stores in `meta` (instrument "" when absent)."""

    pitch: int | None
    velocity: int | None
    instrument: str
    sonic: list[str]


def parse_mna(text: str) -> NoteAnalysis:
    """A note-analysis target or output as `meta` fields: `parse_note_analysis` keeping every sonic quality (the
    corpus's own, not only NSynth's), a missing instrument as "" and the qualities as a list."""
    note = parse_note_analysis(text, qualities=None)
    return NoteAnalysis(note.pitch, note.velocity, note.instrument or "", list(note.qualities))
