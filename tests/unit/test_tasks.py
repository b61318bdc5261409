"""The task registry: all 30 tasks, released eval prompts verbatim, prefix/target rules, distinct prompts, the
released vocabulary only, SRWT / span / entity / MNA round trips, errors, and docs/tasks.md in sync."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from qwenaudio_train.data.schema import SampleError, SampleMeta, Word
from qwenaudio_train.formats import (
    NoteAnalysis,
    diarization_spans,
    format_entities,
    format_mna,
    format_spans,
    format_srwt,
    parse_entities,
    parse_mna,
    parse_spans,
    parse_srwt,
)
from qwenaudio_train.tags import LANGUAGES, SPECIAL_TOKENS, parse_tags
from qwenaudio_train.tasks import METRICS, TASKS, Task, describe_tasks, get_task, register_task, tasks_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"
# Facts section 5, in its order.
ALL_TASKS = [
    "asr",
    "s2tt",
    "osr",
    "dasr",
    "srwt",
    "did",
    "lid",
    "sgc",
    "er",
    "sv",
    "sd",
    "ser",
    "ks",
    "ic",
    "sf",
    "sap",
    "vsc",
    "aac",
    "sec",
    "asc",
    "sed",
    "aqa",
    "sid",
    "smer",
    "mc",
    "mic",
    "mna",
    "mgr",
    "mr",
    "mqa",
]


def meta(
    task: str,
    target: str = "x",
    audio_language: str | None = None,
    text_language: str = "en",
    words: list[Word] | None = None,
    **kw,
) -> SampleMeta:
    return SampleMeta(
        task=task,
        text_language=text_language,
        target=target,
        duration=3.0,
        source="test",
        audio_language=audio_language,
        words=words,
        meta=kw,
    )


# Facts section 4 (the release's eval_audio/ prompts), with the language placeholders filled in.
RELEASED_PROMPTS = [
    (
        "asr",
        meta("asr", audio_language="en"),
        "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>",
    ),
    (
        "asr",
        meta("asr", audio_language="zh", text_language="zh"),
        "<|startoftranscript|><|zh|><|transcribe|><|zh|><|notimestamps|><|wo_itn|>",
    ),
    (
        "s2tt",
        meta("s2tt", audio_language="en", text_language="de"),
        "<|startoftranscript|><|en|><|translate|><|de|><|notimestamps|><|itn|>",
    ),
    ("aac", meta("aac"), "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>"),
    ("asc", meta("asc"), "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|scene|>"),
    (
        "er",
        meta("er", audio_language="en"),
        "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|emotion_recognition|>",
    ),
    ("vsc", meta("vsc"), "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|vocal_classification|>"),
    ("aqa", meta("aqa", question="QUESTION"), "<|startofanalysis|><|en|><|question|>QUESTION<|answer|>"),
    (
        "mna",
        meta("mna", pitch=1, velocity=1, instrument="x"),
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|note_analysis|>",
    ),
    (
        "srwt",
        meta("srwt", audio_language="zh", text_language="zh", words=[Word("a", 0, 1)]),
        "<|startoftranscript|><|zh|><|transcribe|><|zh|><|timestamps|><|0.00|>",
    ),
]


_IDS = [f"{name}{i}" for i, (name, *_rest) in enumerate(RELEASED_PROMPTS)]


@pytest.mark.parametrize("name, m, prompt", RELEASED_PROMPTS, ids=_IDS)
def test_released_eval_prompts(name: str, m: SampleMeta, prompt: str) -> None:
    assert get_task(name).eval_prefix(m) == prompt


def test_released_prompts_are_in_facts(shared_spec) -> None:
    facts = (shared_spec / "QWEN_AUDIO_FACTS.md").read_text(encoding="utf-8")
    for name, _m, prompt in RELEASED_PROMPTS:
        generic = (
            prompt.replace("<|zh|><|transcribe|><|zh|>", "<|L|><|transcribe|><|L|>")
            .replace("<|en|><|transcribe|><|en|>", "<|L|><|transcribe|><|L|>")
            .replace("<|en|><|translate|><|de|>", "<|S|><|translate|><|T|>")
        )
        assert f"`{generic}`" in facts, name


def test_training_prompts() -> None:
    assert get_task("lid").prompt(meta("lid", audio_language="de")) == (
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|>"
    )
    assert get_task("lid").format_target(meta("lid", audio_language="de")) == "german"
    assert get_task("sec").prompt(meta("sec")) == (
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|event|>"
    )
    assert get_task("sec").format_target(meta("sec", "dog bark")) == "dog bark"
    # SRWT trains without the eval primer in the prefix: the <|0.00|> is the first target token
    m = meta("srwt", audio_language="en", words=[Word("hi", 0.2, 0.5)])
    assert get_task("srwt").prompt(m) == "<|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|>"
    assert get_task("srwt").format_target(m) == "<|0.00|><|sil|><|0.20|>hi<|0.50|>"
    assert get_task("srwt").eval_target(m) == "<|sil|><|0.20|>hi<|0.50|>"
    # asr falls back to the text language when the audio language is unset
    assert get_task("asr").prompt(meta("asr", text_language="fr")).startswith("<|startoftranscript|><|fr|>")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_round_trips(name: str) -> None:
    task = get_task(name)
    m = task.example_meta
    assert m is not None and task.family in ("speech", "sound", "music")
    tags, rest = parse_tags(task.prompt(m))
    assert tags == task.tags(m) and rest == ""
    full = task.prompt(m) + task.format_target(m)
    assert task.eval_prefix(m) + task.eval_target(m) == full
    assert task.example() == full + "<|endoftext|>"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_asr_and_lid_every_language(lang: str) -> None:
    m = meta("asr", "t", audio_language=lang, text_language=lang)
    tags, _ = parse_tags(get_task("asr").prompt(m))
    assert tags.audio_language == tags.text_language == lang
    assert get_task("lid").format_target(meta("lid", audio_language=lang)) == LANGUAGES[lang]


# ---------------------------------------------------------------------------------------------------------------
# SRWT
# ---------------------------------------------------------------------------------------------------------------
def test_srwt_example_from_facts() -> None:
    words = [Word("word", 0.54, 0.86), Word("next", 0.86, 1.2)]
    assert format_srwt(words) == "<|0.00|><|sil|><|0.54|>word<|0.86|>next<|1.20|>"


def test_srwt_round_trip_with_gaps() -> None:
    words = [("hello", 0.0, 0.31), ("big", 0.31, 0.6), ("world", 1.05, 1.5), ("你好", 2.0, 2.42), ("end", 2.42, 29.99)]
    target = format_srwt(words)
    assert target == (
        "<|0.00|>hello<|0.31|>big<|0.60|><|sil|><|1.05|>world<|1.50|><|sil|><|2.00|>你好<|2.42|>end<|29.99|>"
    )
    assert parse_srwt(target) == words
    # the eval output (after the <|0.00|> primer) and a prefixed text parse to the same words
    assert parse_srwt(target[len("<|0.00|>") :]) == words
    prefix = "<|startoftranscript|><|en|><|transcribe|><|en|><|timestamps|>"
    assert parse_srwt(prefix + target) == words


def test_srwt_rounding_overlap_and_tolerance() -> None:
    # 10 ms rounding; a start before the previous end is moved to it; an end before the start is moved to it
    target = format_srwt([("a", 0.004, 0.5049), ("b", 0.49, 0.8), ("c", 1.0, 0.9), ("  ", 1.0, 1.1)])
    assert target == "<|0.00|>a<|0.50|>b<|0.80|><|sil|><|1.00|>c<|1.00|>"
    assert parse_srwt(target) == [("a", 0.0, 0.5), ("b", 0.5, 0.8), ("c", 1.0, 1.0)]
    # a trailing word with no end time is dropped; empty segments are skipped
    assert parse_srwt("<|0.00|>a<|0.40|><|0.50|>b<|0.70|>c") == [("a", 0.0, 0.4), ("b", 0.5, 0.7)]
    assert parse_srwt("") == []


def test_srwt_needs_words() -> None:
    with pytest.raises(SampleError, match="word timings"):
        get_task("srwt").format_target(meta("srwt", audio_language="en"))


# ---------------------------------------------------------------------------------------------------------------
# MNA
# ---------------------------------------------------------------------------------------------------------------
def test_mna_round_trip() -> None:
    m = meta("mna", pitch=64, velocity=127, instrument="guitar_acoustic", sonic=["bright", "fast_decay"])
    target = get_task("mna").format_target(m)
    assert target == (
        "<|pitch|><|midi_pitch_64|><|velocity|><|midi_velocity_127|><|instrument|>guitar_acoustic"
        "<|sonic|>bright, fast_decay"
    )
    assert parse_mna(target) == NoteAnalysis(64, 127, "guitar_acoustic", ["bright", "fast_decay"])
    empty = format_mna(0, 25, "bass_synthetic", [])
    assert empty.endswith("<|instrument|>bass_synthetic<|sonic|>")
    assert parse_mna(empty) == NoteAnalysis(0, 25, "bass_synthetic", [])
    assert parse_mna("garbage") == NoteAnalysis(None, None, "", [])


def test_mna_errors() -> None:
    with pytest.raises(SampleError, match="'velocity'"):
        get_task("mna").format_target(meta("mna", pitch=60, instrument="x"))
    with pytest.raises(SampleError, match="0..127"):
        get_task("mna").format_target(meta("mna", pitch=128, velocity=1, instrument="x"))


# ---------------------------------------------------------------------------------------------------------------
# Registry errors
# ---------------------------------------------------------------------------------------------------------------
def test_unknown_task_lists_known() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'xyz'.*aac.*asr.*srwt"):
        get_task("xyz")
    assert get_task("ASR") is TASKS["asr"]


def test_register_errors() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_task(TASKS["asr"])
    with pytest.raises(ValueError, match="unknown family"):
        Task("t", "video", "d", "wer", build_tags=TASKS["asr"].build_tags)
    with pytest.raises(ValueError, match="unknown metric"):
        Task("t", "speech", "d", "f1x", build_tags=TASKS["asr"].build_tags)


def test_lid_rejects_unknown_language() -> None:
    with pytest.raises(SampleError, match="'pt'.*en, zh"):
        get_task("lid").format_target(meta("lid", audio_language="pt"))
    with pytest.raises(ValueError, match="'pt'"):
        get_task("asr").prompt(meta("asr", audio_language="pt"))


# ---------------------------------------------------------------------------------------------------------------
# The 30 tasks
# ---------------------------------------------------------------------------------------------------------------
_SPECIAL_RE = re.compile(r"<\|[^|<>]+\|>")
_RELEASED = set(SPECIAL_TOKENS)


def test_all_thirty_tasks_registered_in_order() -> None:
    assert list(TASKS) == ALL_TASKS
    assert {t.metric for t in TASKS.values()} <= set(METRICS)
    families = {name: get_task(name).family for name in ALL_TASKS}
    assert [n for n, f in families.items() if f == "sound"] == ["aac", "sec", "asc", "sed", "aqa"]
    assert [n for n, f in families.items() if f == "music"] == ["sid", "smer", "mc", "mic", "mna", "mgr", "mr", "mqa"]


@pytest.mark.parametrize("name", ALL_TASKS)
def test_task_renders_and_parses_back(name: str) -> None:
    task = get_task(name)
    m = task.example_meta
    assert m is not None and m.task == name
    prefix, target = task.prompt(m), task.format_target(m)
    tags, rest = parse_tags(prefix + target)
    assert tags == task.tags(m) and rest == target and target
    assert task.example() == prefix + target + "<|endoftext|>"
    assert task.eval_prefix(m) + task.eval_target(m) == prefix + target
    # the released vocabulary only: every special-looking token of prefix and target exists in the release
    assert set(_SPECIAL_RE.findall(task.example())) <= _RELEASED
    assert task.description and (task.from_release or task.convention)


def test_eval_prompts_tell_tasks_apart() -> None:
    """No two tasks ask the model the same thing, except the transcript family (OSR and DASR are ASR's prompt)."""
    for lang in (None, "en"):
        seen: dict[str, list[str]] = {}
        for name, task in TASKS.items():
            m = dataclasses.replace(task.example_meta, audio_language=lang, text_language="en")
            seen.setdefault(task.eval_prefix(m), []).append(name)
        shared = sorted(names for names in seen.values() if len(names) > 1)
        assert shared == [["asr", "osr", "dasr"]], shared


def test_describe_tasks_shows_every_example() -> None:
    text = describe_tasks()
    for name in ALL_TASKS:
        task = get_task(name)
        assert re.search(rf"^{name} +{task.family} +{task.metric} ", text, re.M), name
        assert f"prefix: {task.prompt(task.example_meta)}\n" in text
        assert f"target: {task.format_target(task.example_meta)}<|endoftext|>" in text


def test_docs_table_in_sync() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    table = tasks_markdown()
    assert table.count("\n") == 32  # header, rule, 30 rows
    missing = [row for row in table.splitlines() if row not in docs.splitlines()]
    assert not missing, "docs/tasks.md is out of date; regenerate its table with tasks_markdown():\n" + "\n".join(
        missing
    )


def test_release_prompts_marked() -> None:
    assert {n for n, t in TASKS.items() if t.from_release} == {
        "asr",
        "s2tt",
        "srwt",
        "er",
        "vsc",
        "aac",
        "asc",
        "aqa",
        "mna",
    }


# ---------------------------------------------------------------------------------------------------------------
# Prefix rules of the new tasks
# ---------------------------------------------------------------------------------------------------------------
def test_speech_prompts() -> None:
    m = meta("osr", "a b", audio_language="en", n_speakers=2)
    assert get_task("osr").prompt(m) == get_task("asr").prompt(m)
    # written-form corpora ask for <|itn|>; the default stays the release's <|wo_itn|>
    assert get_task("asr").prompt(meta("asr", audio_language="en", itn=True)).endswith("<|notimestamps|><|itn|>")
    assert get_task("dasr").prompt(meta("dasr", audio_language="zh", text_language="zh", dialect="wu")) == (
        "<|startoftranscript|><|zh|><|transcribe|><|zh|><|notimestamps|><|wo_itn|>"
    )
    assert get_task("ks").prompt(meta("ks", text_language="de")) == (
        "<|startofanalysis|><|de|><|keyword|><|de|><|notimestamps|>"
    )
    assert get_task("ic").prompt(meta("ic", audio_language="en")) == (
        "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|speech_understanding|>"
    )
    # speaker attributes of non-speech-tagged audio: unknown audio language
    assert get_task("sap").eval_prefix(meta("sap")) == (
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|speaker_meta|>age:"
    )


def test_keyed_targets_and_closed_sets() -> None:
    m = meta("sgc", " Female ", audio_language="en")
    assert get_task("sgc").format_target(m) == "gender: female"
    assert get_task("sgc").eval_target(m) == " female"  # after the forced "gender:"
    assert get_task("sv").format_target(meta("sv", "same", speakers=["a", "a"])) == "speakers: same"
    assert get_task("did").format_target(meta("did", "wu", dialect="wu")) == "dialect: wu"
    assert get_task("mr").format_target(meta("mr", "Yesterday - The Beatles")) == "song: Yesterday - The Beatles"
    assert get_task("mic").eval_target(meta("mic", "piano, violin")) == "piano, violin"
    with pytest.raises(SampleError, match="'unknown' is not one of male, female"):
        get_task("sgc").format_target(meta("sgc", "unknown"))
    with pytest.raises(SampleError, match="not one of same, different"):
        get_task("sv").format_target(meta("sv", "yes"))
    with pytest.raises(SampleError, match="empty target"):
        get_task("mgr").format_target(meta("mgr", "  "))


def test_sound_and_music_prompts() -> None:
    clotho = "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>"
    aac = get_task("aac")
    assert aac.prompt(SampleMeta("aac", "en", "x", 1.0, "clotho/evaluation")) == clotho
    assert aac.prompt(SampleMeta("aac", "en", "x", 1.0, "audiocaps/train")).endswith("<|caption_audiocaps|>")
    assert aac.prompt(meta("aac", caption_style="plain")).endswith("<|caption_plain|>")
    with pytest.raises(SampleError, match="caption_style 'long'"):
        aac.prompt(meta("aac", caption_style="long"))
    sec = get_task("sec")
    assert sec.prompt(SampleMeta("sec", "en", "x", 1.0, "audioset/balanced")).endswith("<|audioset_ontology|>")
    assert sec.prompt(meta("sec")).endswith("<|notimestamps|><|event|>")
    assert get_task("sed").prompt(meta("sed")) == (
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|timestamps|><|event|>"
    )
    # music emotion is ER's instruction with the audio language always unknown
    assert get_task("smer").prompt(meta("smer", audio_language="en")) == (
        "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|emotion_recognition|>"
    )
    assert get_task("mqa").eval_prefix(meta("mqa", question="Q?")) == (
        "<|startofanalysis|><|en|><|question|>Q?<|answer|>"
    )
    with pytest.raises(SampleError, match="'question'"):
        get_task("mqa").format_target(meta("mqa", "piano"))


# ---------------------------------------------------------------------------------------------------------------
# Time spans (SED, SD)
# ---------------------------------------------------------------------------------------------------------------
def test_spans_round_trip() -> None:
    spans = [("car horn", 0.9, 3.0), ("dog bark", 0.5, 1.2), ("speech", 0.5, 0.75), ("rain", 12.0, 30.0)]
    text = format_spans(spans)
    assert text == ("<|0.50|>speech<|0.75|><|0.50|>dog bark<|1.20|><|0.90|>car horn<|3.00|><|12.00|>rain<|30.00|>")
    assert parse_spans(text) == sorted(spans, key=lambda s: (s[1], s[2]))
    assert parse_spans("<|startofanalysis|><|unknown|><|keyword|><|en|><|timestamps|><|event|>" + text) == (
        parse_spans(text)
    )
    assert format_spans([]) == "" and parse_spans("") == []


def test_spans_rounding_clamping_and_tolerance() -> None:
    # times past 30 s are written with a window marker (issue 13, docs/long_audio.md), no longer clamped to 30.00
    assert format_spans([("a", 1.004, 0.5), ("b", -1.0, 31.0)]) == "<|0.00|>b<|window_1|><|1.00|><|1.00|>a<|1.00|>"
    # model output with a missing start time, an empty label and trailing junk: the well-formed spans survive
    assert parse_spans("<|0.10|>a<|0.20|>b<|0.40|><|0.50|><|0.60|><|0.70|>c<|0.90|><|1.00|>d") == [
        ("a", 0.1, 0.2),
        ("c", 0.7, 0.9),
    ]
    with pytest.raises(ValueError, match="non-empty"):
        format_spans([(" ", 0.0, 1.0)])
    with pytest.raises(ValueError, match="special tokens"):
        format_spans([("a<|sil|>", 0.0, 1.0)])


def test_sed_task() -> None:
    sed = get_task("sed")
    m = meta(
        "sed", "dog, cat", events=[{"label": "cat", "start": 2, "end": 2.5}, {"label": "dog", "start": 0.1, "end": 1}]
    )
    target = sed.format_target(m)
    assert target == "<|0.10|>dog<|1.00|><|2.00|>cat<|2.50|>"
    assert parse_spans(sed.eval_prefix(m) + sed.eval_target(m)) == [("dog", 0.1, 1.0), ("cat", 2.0, 2.5)]
    with pytest.raises(SampleError, match=r"meta lacks \['events'\]"):
        sed.format_target(meta("sed", "dog"))
    with pytest.raises(SampleError, match="meta.events must be a list of"):
        sed.format_target(meta("sed", "dog", events=[{"label": "dog", "start": 0}]))
    with pytest.raises(SampleError, match="non-empty"):
        sed.format_target(meta("sed", "dog", events=[{"label": "", "start": 0, "end": 1}]))


def test_sd_task_renames_speakers_by_first_turn() -> None:
    segments = [
        {"speaker": "spk_9", "start": 4.0, "end": 6.0},
        {"speaker": "spk_2", "start": 0.0, "end": 2.5},
        {"speaker": "spk_9", "start": 2.0, "end": 3.0},
        {"speaker": "spk_5", "start": 6.5, "end": 7.0},
    ]
    target = get_task("sd").format_target(meta("sd", "hi", segments=segments))
    assert target == (
        "<|0.00|>speaker 1<|2.50|><|2.00|>speaker 2<|3.00|><|4.00|>speaker 2<|6.00|><|6.50|>speaker 3<|7.00|>"
    )
    assert parse_spans(target) == [
        ("speaker 1", 0.0, 2.5),
        ("speaker 2", 2.0, 3.0),
        ("speaker 2", 4.0, 6.0),
        ("speaker 3", 6.5, 7.0),
    ]
    assert diarization_spans([("x", 1.0, 2.0), ("y", 0.5, 0.6)]) == [("speaker 1", 0.5, 0.6), ("speaker 2", 1.0, 2.0)]
    with pytest.raises(SampleError, match="segments"):
        get_task("sd").format_target(meta("sd", "hi"))
    with pytest.raises(SampleError, match="meta.segments: empty speaker id"):
        get_task("sd").format_target(meta("sd", "hi", segments=[{"speaker": " ", "start": 0, "end": 1}]))


# ---------------------------------------------------------------------------------------------------------------
# Entities (SER, SF)
# ---------------------------------------------------------------------------------------------------------------
E = ("<|startofentityvalue|>", "<|endofentityvalue|>", "<|startofentitytype|>", "<|endofentitytype|>")


def test_entities_round_trip() -> None:
    transcript = "Book a flight from Paris to New York on May 5"
    entities = [("from_city", "paris"), ("to_city", "New York"), ("date", "May 5")]
    text = format_entities(transcript, entities)
    vs, ve, ts, te = E
    assert text == (
        f"Book a flight from {vs}Paris{ve}{ts}from_city{te} to {vs}New York{ve}{ts}to_city{te} on "
        f"{vs}May 5{ve}{ts}date{te}"
    )
    # the transcript's spelling is kept
    assert parse_entities(text) == (transcript, [("from_city", "Paris"), ("to_city", "New York"), ("date", "May 5")])
    assert parse_entities(format_entities("no entities here", [])) == ("no entities here", [])
    prefix = "<|startofanalysis|><|en|><|transcribe|><|en|><|notimestamps|><|named_entity_recognition|>"
    assert parse_entities(prefix + text) == parse_entities(text)
    # a repeated value: each entity is searched after the previous one
    twice = format_entities("a b a", [{"type": "x", "value": "a"}, {"type": "y", "value": "a"}])
    assert parse_entities(twice) == ("a b a", [("x", "a"), ("y", "a")])
    assert twice.startswith(f"{vs}a{ve}{ts}x{te} b {vs}a")
    # model output with an untyped value still yields the value
    assert parse_entities(f"see {vs}Rome{ve} soon") == ("see Rome soon", [("", "Rome")])


def test_entity_errors() -> None:
    with pytest.raises(ValueError, match="'paris' .*not found.*after character 0"):
        format_entities("fly to london", [("city", "paris")])
    with pytest.raises(ValueError, match="order of appearance"):
        format_entities("from rome to oslo", [("to", "oslo"), ("from", "rome")])
    with pytest.raises(SampleError, match="meta.entities"):
        get_task("ser").format_target(meta("ser", "fly to london", entities=[{"type": "city", "value": "paris"}]))
    with pytest.raises(SampleError, match="meta.slots"):
        get_task("sf").format_target(meta("sf", "wake me", slots=[{"value": "me"}]))
    with pytest.raises(SampleError, match=r"meta lacks \['slots'\]"):
        get_task("sf").format_target(meta("sf", "wake me"))


def test_ser_and_sf_share_the_format_not_the_prompt() -> None:
    ser = meta("ser", "call anna", audio_language="en", entities=[{"type": "person", "value": "anna"}])
    sf = meta("sf", "call anna", audio_language="en", slots=[{"type": "person", "value": "anna"}])
    assert get_task("ser").format_target(ser) == get_task("sf").format_target(sf)
    assert get_task("ser").prompt(ser).endswith("<|transcribe|><|en|><|notimestamps|><|named_entity_recognition|>")
    assert get_task("sf").prompt(sf).endswith("<|transcribe|><|en|><|notimestamps|><|speech_understanding|>")
