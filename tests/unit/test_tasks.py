"""The task registry: released eval prompts verbatim, prefix/target rules, SRWT and MNA round trips, errors."""

from __future__ import annotations

import pytest

from qwenaudio_train.data.schema import SampleError, SampleMeta, Word
from qwenaudio_train.tags import LANGUAGES, parse_tags
from qwenaudio_train.tasks import (
    TASKS,
    NoteAnalysis,
    Task,
    format_mna,
    format_srwt,
    get_task,
    parse_mna,
    parse_srwt,
    register_task,
)


def meta(task: str, target: str = "x", audio_language: str | None = None, text_language: str = "en",
         words: list[Word] | None = None, **kw) -> SampleMeta:
    return SampleMeta(task=task, text_language=text_language, target=target, duration=3.0, source="test",
                      audio_language=audio_language, words=words, meta=kw)


# Facts section 4 (the release's eval_audio/ prompts), with the language placeholders filled in.
RELEASED_PROMPTS = [
    ("asr", meta("asr", audio_language="en"),
     "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"),
    ("asr", meta("asr", audio_language="zh", text_language="zh"),
     "<|startoftranscript|><|zh|><|transcribe|><|zh|><|notimestamps|><|wo_itn|>"),
    ("s2tt", meta("s2tt", audio_language="en", text_language="de"),
     "<|startoftranscript|><|en|><|translate|><|de|><|notimestamps|><|itn|>"),
    ("aac", meta("aac"), "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|><|caption_clotho|>"),
    ("asc", meta("asc"), "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|scene|>"),
    ("er", meta("er", audio_language="en"),
     "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|emotion_recognition|>"),
    ("vsc", meta("vsc"), "<|startofanalysis|><|en|><|keyword|><|en|><|notimestamps|><|vocal_classification|>"),
    ("aqa", meta("aqa", question="QUESTION"), "<|startofanalysis|><|en|><|question|>QUESTION<|answer|>"),
    ("mna", meta("mna", pitch=1, velocity=1, instrument="x"),
     "<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|note_analysis|>"),
    ("srwt", meta("srwt", audio_language="zh", text_language="zh", words=[Word("a", 0, 1)]),
     "<|startoftranscript|><|zh|><|transcribe|><|zh|><|timestamps|><|0.00|>"),
]


_IDS = [f"{name}{i}" for i, (name, *_rest) in enumerate(RELEASED_PROMPTS)]


@pytest.mark.parametrize("name, m, prompt", RELEASED_PROMPTS, ids=_IDS)
def test_released_eval_prompts(name: str, m: SampleMeta, prompt: str) -> None:
    assert get_task(name).eval_prefix(m) == prompt


def test_released_prompts_are_in_facts(shared_spec) -> None:
    facts = (shared_spec / "QWEN_AUDIO_FACTS.md").read_text(encoding="utf-8")
    for name, _m, prompt in RELEASED_PROMPTS:
        generic = (prompt.replace("<|zh|><|transcribe|><|zh|>", "<|L|><|transcribe|><|L|>")
                   .replace("<|en|><|transcribe|><|en|>", "<|L|><|transcribe|><|L|>")
                   .replace("<|en|><|translate|><|de|>", "<|S|><|translate|><|T|>"))
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
    words = [("hello", 0.0, 0.31), ("big", 0.31, 0.6), ("world", 1.05, 1.5), ("你好", 2.0, 2.42),
             ("end", 2.42, 29.99)]
    target = format_srwt(words)
    assert target == ("<|0.00|>hello<|0.31|>big<|0.60|><|sil|><|1.05|>world<|1.50|><|sil|><|2.00|>你好<|2.42|>"
                      "end<|29.99|>")
    assert parse_srwt(target) == words
    # the eval output (after the <|0.00|> primer) and a prefixed text parse to the same words
    assert parse_srwt(target[len("<|0.00|>"):]) == words
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
    assert target == ("<|pitch|><|midi_pitch_64|><|velocity|><|midi_velocity_127|><|instrument|>guitar_acoustic"
                      "<|sonic|>bright, fast_decay")
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
