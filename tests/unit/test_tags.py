"""The special-token lists and the tag grammar: released order and ids, time tokens, render/parse round trips."""

from __future__ import annotations

import itertools
import json

import pytest

from qwenaudio_train import tags as T
from qwenaudio_train.tags import Tags, parse_tags, parse_time_token, time_token


# ---------------------------------------------------------------------------------------------------------------
# Token lists
# ---------------------------------------------------------------------------------------------------------------
def test_token_list_structure() -> None:
    base, audio = T.QWEN_BASE_SPECIAL_TOKENS, T.AUDIO_SPECIAL_TOKENS
    assert len(base) == 208 and len(audio) == 3314 and len(T.SPECIAL_TOKENS) == 3522
    assert base[:3] == ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
    assert base[3] == "<|extra_0|>" and base[-1] == "<|extra_204|>"
    assert audio[0] == T.AUDIO_PAD == "[[[AUDIO:modality]]]"
    assert audio[-2:] == ("<audio>", "</audio>")
    # head block of 20, then 3001 time tokens
    assert audio[7:17] == (
        "<|unknown|>",
        "<|en|>",
        "<|zh|>",
        "<|de|>",
        "<|es|>",
        "<|ko|>",
        "<|fr|>",
        "<|ja|>",
        "<|it|>",
        "<|zh_tr|>",
    )
    assert audio[17:20] == ("<|notimestamps|>", "<|sil|>", "<|timestamps|>")
    assert audio.index("<|0.00|>") == 20 and audio.index("<|30.00|>") == 20 + 3000
    assert audio.index("<|pitch|>") + 1 == audio.index("<|midi_pitch_0|>")
    assert audio.index("<|midi_pitch_127|>") + 1 == audio.index("<|velocity|>")
    assert audio.index("<|midi_velocity_127|>") + 1 == audio.index("<|sonic|>")
    assert len(set(T.SPECIAL_TOKENS)) == len(T.SPECIAL_TOKENS)


def test_released_ids_without_spec() -> None:
    # The ids of facts section 1, which follow from the lists and the 151,643 BPE ranks.
    ids = T.RELEASED_SPECIAL_IDS
    assert ids["<|endoftext|>"] == 151643 and ids["<|im_end|>"] == 151645
    assert ids["[[[AUDIO:modality]]]"] == 151851
    assert ids["<|0.00|>"] == 151871 and ids["<|30.00|>"] == 154871
    assert ids["<audio>"] == 155163 and ids["</audio>"] == 155164
    assert ids["<|wo_itn|>"] == 154877 and ids["<|midi_pitch_0|>"] == 154891 and ids["<|answer|>"] == 155153


def test_lists_equal_released_json(shared_spec) -> None:
    spec = json.loads((shared_spec / "qwen_audio_special_tokens.json").read_text(encoding="utf-8"))
    assert list(T.QWEN_BASE_SPECIAL_TOKENS) == spec["qwen_base_special_tokens"]
    assert list(T.AUDIO_SPECIAL_TOKENS) == spec["audio_special_tokens"]
    for tok, idx in spec["expected_ids"].items():
        assert T.RELEASED_SPECIAL_IDS[tok] == idx, tok
    assert spec["bpe_ranks"] == T.QWEN_BPE_RANKS


def test_instructions_are_tokens() -> None:
    for name in T.INSTRUCTIONS:
        assert T.special(name) in T.AUDIO_SPECIAL_TOKENS


# ---------------------------------------------------------------------------------------------------------------
# Time tokens
# ---------------------------------------------------------------------------------------------------------------
def test_time_tokens() -> None:
    # The release spells them f"<|{i * 0.01:.2f}|>"
    assert T.TIME_TOKENS == tuple(f"<|{i * 0.01:.2f}|>" for i in range(3001))
    assert time_token(0) == "<|0.00|>"
    assert time_token(0.537) == "<|0.54|>"
    assert time_token(0.5349) == "<|0.53|>"
    assert time_token(12.3) == "<|12.30|>"
    assert time_token(-1.0) == "<|0.00|>"
    assert time_token(31.7) == "<|30.00|>"
    for tok in T.TIME_TOKENS:
        assert time_token(parse_time_token(tok)) == tok
    assert parse_time_token("<|29.99|>") == 29.99


@pytest.mark.parametrize("bad", ["<|30.01|>", "<|0.5|>", "<|en|>", "0.50", "<|1.000|>"])
def test_parse_time_token_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="time token"):
        parse_time_token(bad)


# ---------------------------------------------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------------------------------------------
def test_render_released_spelling() -> None:
    t = Tags("startoftranscript", "en", "transcribe", "en", False, "wo_itn")
    assert t.render() == "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
    qa = Tags("startofanalysis", "en", "question", question="What is making the sound?")
    assert qa.render() == "<|startofanalysis|><|en|><|question|>What is making the sound?<|answer|>"
    assert Tags("startofanalysis", None, "caption", "en").render() == (
        "<|startofanalysis|><|unknown|><|caption|><|en|><|notimestamps|>"
    )
    assert Tags("startofanalysis", "unknown", "caption", "en") == Tags("startofanalysis", None, "caption", "en")


def test_round_trip_every_combination() -> None:
    langs = (None,) + T.TAG_LANGUAGES
    n = 0
    for tr, al, task, tl, ts, ins in itertools.product(
        T.TRANSCRIPTION_TAGS,
        langs,
        ("transcribe", "translate", "caption", "keyword"),
        T.TAG_LANGUAGES,
        (False, True),
        (None,) + T.INSTRUCTIONS,
    ):
        tags = Tags(tr, al, task, tl, ts, ins)
        for rest in ("", "hello world", "<|0.00|><|sil|><|0.54|>x"):
            assert parse_tags(tags.render() + rest) == (tags, rest)
        n += 1
    assert n == 2 * 10 * 4 * 9 * 2 * 19


@pytest.mark.parametrize("question", ["Is it raining?", "声音是什么？", "a | b <x> c", ""])
@pytest.mark.parametrize("lang", [None, "en", "zh"])
def test_round_trip_question(question: str, lang: str | None) -> None:
    tags = Tags("startofanalysis", lang, "question", question=question)
    assert parse_tags(tags.render() + "yes") == (tags, "yes")


def test_unknown_values_are_named() -> None:
    with pytest.raises(ValueError, match=r"'xx'.*en, zh, de, es, ko, fr, ja, it"):
        Tags("startoftranscript", "xx", "transcribe", "en")
    with pytest.raises(ValueError, match=r"'pt'.*en, zh"):
        Tags("startoftranscript", "en", "transcribe", "pt")
    with pytest.raises(ValueError, match=r"instruction 'no_itn'.*wo_itn"):
        Tags("startoftranscript", "en", "transcribe", "en", False, "no_itn")
    with pytest.raises(ValueError, match=r"'analysis'.*transcribe"):
        Tags("startofanalysis", "en", "analysis", "en")
    with pytest.raises(ValueError, match="startoftranscripts"):
        Tags("startoftranscripts", "en", "transcribe", "en")


def test_question_constraints() -> None:
    with pytest.raises(ValueError, match="question text"):
        Tags("startofanalysis", "en", "question")
    with pytest.raises(ValueError, match="leave text_language"):
        Tags("startofanalysis", "en", "question", "en", question="q")
    with pytest.raises(ValueError, match="only used with task 'question'"):
        Tags("startofanalysis", "en", "keyword", "en", question="q")
    with pytest.raises(ValueError, match="needs a text_language"):
        Tags("startofanalysis", "en", "keyword")


@pytest.mark.parametrize(
    "text, where",
    [
        ("<|startoftranscripts|><|en|>", "transcription tag"),
        ("<|startoftranscript|><|xx|><|transcribe|>", "audio language"),
        ("<|startofanalysis|><|en|><|analysis|>", "task tag"),
        ("<|startofanalysis|><|en|><|keyword|><|en|>hello", "timestamps tag"),
        ("<|startofanalysis|><|en|><|question|>no answer tag", "not closed"),
        ("hello", "transcription tag"),
    ],
)
def test_parse_errors(text: str, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        parse_tags(text)


def test_parse_stops_before_non_instruction_token() -> None:
    # A content token after the timestamps tag is not an instruction: it stays in the rest.
    tags, rest = parse_tags("<|startofanalysis|><|unknown|><|keyword|><|en|><|notimestamps|><|pitch|>x")
    assert tags.instruction is None and rest == "<|pitch|>x"
