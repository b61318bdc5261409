"""Target formats: every format round-trips (render -> parse == input) on random inputs, the training-side and
scoring-side views of one parser agree, and the module stays free of torch."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from qwenaudio_train.formats import (
    NSYNTH_QUALITIES,
    NoteAnalysis,
    NoteInfo,
    TimedSegment,
    diarization_spans,
    format_entities,
    format_keyed,
    format_labels,
    format_mna,
    format_spans,
    format_srwt,
    parse_entities,
    parse_keyed,
    parse_labels,
    parse_mna,
    parse_note_analysis,
    parse_spans,
    parse_srwt,
    parse_srwt_segments,
)

WORDS = ["dog", "bark", "car horn", "speech", "你好", "a", "rain", "Ünïcode", "x-ray", "it's", "end."]
SEEDS = range(50)


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


# ---------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_labels_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    labels = [_word(rng) for _ in range(rng.randint(1, 4))]
    text = format_labels(labels)
    assert parse_labels(text) == labels
    key = rng.choice(["gender", "singer", "song"])
    assert parse_keyed(format_keyed(key, text), key) == text


def test_labels_edges() -> None:
    assert format_labels(["dog bark", "car horn"]) == "dog bark, car horn"
    assert parse_labels(" Dog , ,cat ") == ["Dog", "cat"] and parse_labels("") == []
    assert parse_keyed("genre: jazz", "gender") is None and parse_keyed("gender:male", "gender") == "male"
    for bad in ([], ["dog", " "]):
        with pytest.raises(ValueError, match="non-empty"):
            format_labels(bad)


# ---------------------------------------------------------------------------------------------------------------
# SRWT
# ---------------------------------------------------------------------------------------------------------------
def _timed_words(rng: random.Random) -> list[tuple[str, float, float]]:
    """Words on the 10 ms grid, in order, each starting at or after the previous end (gaps become <|sil|>)."""
    words, t = [], rng.choice([0, 0, rng.randint(1, 80)])
    for _ in range(rng.randint(0, 8)):
        start = t + rng.choice([0, 0, rng.randint(1, 60)])
        end = start + rng.randint(1, 90)
        if end > 3000:
            break
        words.append((_word(rng), start / 100, end / 100))
        t = end
    return words


@pytest.mark.parametrize("seed", SEEDS)
def test_srwt_round_trip(seed: int) -> None:
    words = _timed_words(random.Random(seed))
    target = format_srwt(words)
    assert parse_srwt(target) == words
    assert parse_srwt(target.removeprefix("<|0.00|>")) == words  # the eval output after the <|0.00|> primer
    # The scoring view: the same words plus a silence for every gap, the segments tiling 0 .. the last end.
    segments = parse_srwt_segments(target)
    assert segments is not None
    assert [(s.text, s.start, s.end) for s in segments if not s.is_silence] == words
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    if segments:
        assert segments[0].start == 0.0 and segments[-1].end == (words[-1][2] if words else 0.0)


def test_srwt_views() -> None:
    target = "<|0.00|><|sil|><|0.54|>word<|0.86|>next<|1.20|>"
    assert parse_srwt_segments(target) == [
        TimedSegment("<|sil|>", 0.0, 0.54),
        TimedSegment("word", 0.54, 0.86),
        TimedSegment("next", 0.86, 1.2),
    ]
    # Without a time token: None for the scorers (a parse error), no words for the training side.
    assert parse_srwt_segments("no times") is None and parse_srwt("no times") == []
    # Stray special tokens inside a segment are dropped; text before the first token needs implied_start.
    assert parse_srwt_segments("hi<|0.30|>there<|endoftext|><|0.70|>") == [TimedSegment("there", 0.3, 0.7)]
    assert parse_srwt("hi<|0.30|>there<|endoftext|><|0.70|>") == [("hi", 0.0, 0.3), ("there", 0.3, 0.7)]


# ---------------------------------------------------------------------------------------------------------------
# Time spans
# ---------------------------------------------------------------------------------------------------------------
def _spans(rng: random.Random) -> list[tuple[str, float, float]]:
    spans = []
    for _ in range(rng.randint(0, 6)):
        start = rng.randint(0, 2900)
        spans.append((_word(rng), start / 100, (start + rng.randint(0, 100)) / 100))
    return spans


@pytest.mark.parametrize("seed", SEEDS)
def test_spans_round_trip(seed: int) -> None:
    spans = _spans(random.Random(seed))
    assert parse_spans(format_spans(spans)) == sorted(spans, key=lambda s: (s[1], s[2]))
    turns = diarization_spans(spans)
    assert parse_spans(format_spans(turns)) == turns  # already in the order the format writes
    assert {s for s, _, _ in turns} == {f"speaker {k + 1}" for k in range(len({x for x, _, _ in spans}))}


# ---------------------------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_entities_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    tokens = [rng.choice(["fly", "to", "paris", "new york", "on", "may 5", "call", "john", "smith"]) for _ in range(8)]
    transcript = " ".join(tokens)
    chosen = sorted(rng.sample(range(len(tokens)), rng.randint(0, 3)))
    # each value is searched after the previous one: pick values in order of appearance
    entities = [(rng.choice(["city", "date", "person"]), tokens[i]) for i in chosen]
    text = format_entities(transcript, entities)
    assert parse_entities(text) == (transcript, entities)
    dicts = [{"type": t, "value": v} for t, v in entities]
    assert format_entities(transcript, dicts) == text


# ---------------------------------------------------------------------------------------------------------------
# Note analysis
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_note_analysis_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    pitch, velocity = rng.randint(0, 127), rng.randint(0, 127)
    instrument = rng.choice(["keyboard_acoustic", "guitar_electronic", "bass_synthetic", "flute acoustic"])
    sonic = rng.sample(NSYNTH_QUALITIES, rng.randint(0, 3))
    text = format_mna(pitch, velocity, instrument, sonic)
    assert parse_mna(text) == NoteAnalysis(pitch, velocity, instrument, sonic)
    assert parse_note_analysis(text) == NoteInfo(pitch, velocity, instrument, tuple(sonic))


def test_note_analysis_views() -> None:
    text = format_mna(60, 100, "organ", ["bright", "made_up"])
    # The scorers keep NSynth's qualities only (the release's label set); the training side keeps the corpus's own.
    assert parse_note_analysis(text).qualities == ("bright",)
    assert parse_note_analysis(text, qualities=None).qualities == ("bright", "made_up")
    assert parse_mna(text).sonic == ["bright", "made_up"]
    # A missing field: None for the scorers, "" for a recipe's meta.
    assert parse_note_analysis("garbage") == NoteInfo(None, None, None, ())
    assert parse_mna("garbage") == NoteAnalysis(None, None, "", [])


# ---------------------------------------------------------------------------------------------------------------
# The module's contract
# ---------------------------------------------------------------------------------------------------------------
def test_formats_import_no_torch() -> None:
    code = "import sys, qwenaudio_train.formats; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
