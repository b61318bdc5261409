"""The speech tasks of the registry (facts section 5, in its order): recognition, translation, word timestamps,
speaker and language attributes, diarization, entities and spoken language understanding.

Must not: define a target format (`formats.py`) or a shared rule (`rules.py`); import torch or a tokenizer.
"""

from __future__ import annotations

from qwenaudio_train.data.schema import Word
from qwenaudio_train.formats import format_srwt
from qwenaudio_train.tags import Tags, time_token
from qwenaudio_train.tasks.registry import Task, register_task
from qwenaudio_train.tasks.rules import (
    _analysis,
    _choice,
    _entities_target,
    _ex,
    _keyed,
    _lid_target,
    _slu,
    _spans_target,
    _speaker_meta,
    _speech_language,
    _transcribe,
    _words,
)

# ---------------------------------------------------------------------------------------------------------------
# The registry, in the order of facts section 5. Speech.
# ---------------------------------------------------------------------------------------------------------------
register_task(
    Task(
        name="asr",
        family="speech",
        metric="wer",
        description="speech recognition: transcript without inverse text normalisation",
        build_tags=_transcribe,
        from_release=True,
        convention="meta.itn=true switches <|wo_itn|> to <|itn|>",
        example_meta=_ex("asr", "hello world", "en"),
    )
)

register_task(
    Task(
        name="s2tt",
        family="speech",
        metric="bleu",
        description="speech-to-text translation from audio_language into text_language (CoVoST2 prompt)",
        build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "translate", m.text_language, False, "itn"),
        recipe_meta=("transcript",),
        from_release=True,
        example_meta=_ex("s2tt", "Hallo Welt", "en", "de", transcript="hello world"),
    )
)

# Overlapped speech recognition and dialect ASR: our convention is the ASR prompt itself (a transcript is asked
# for either way; the target of a mixture is every speaker's words in order of start time).
register_task(
    Task(
        name="osr",
        family="speech",
        metric="wer",
        description="overlapped speech recognition: every speaker's words, in order of start time",
        build_tags=_transcribe,
        recipe_meta=("n_speakers",),
        convention="the ASR prompt",
        example_meta=_ex("osr", "turn left here i think it is closed", "en", n_speakers=2),
    )
)

register_task(
    Task(
        name="dasr",
        family="speech",
        metric="wer",
        description="dialect speech recognition: transcript of dialectal speech",
        build_tags=_transcribe,
        recipe_meta=("dialect",),
        convention="the ASR prompt",
        example_meta=_ex("dasr", "今天天气很好", "zh", "zh", dialect="sichuanese"),
    )
)

register_task(
    Task(
        name="srwt",
        family="speech",
        metric="srwt",
        description="speech recognition with word-level timestamps (<|sil|> marks gaps)",
        build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "transcribe", m.text_language, True, None),
        build_target=lambda m: format_srwt(_words(m)),
        eval_primer=time_token(0.0),  # the release's eval prompt ends with <|0.00|>
        from_release=True,
        example_meta=_ex("srwt", "hello world", "en", words=[Word("hello", 0.54, 0.86), Word("world", 0.86, 1.2)]),
    )
)

# Dialect identification, gender, age, verification: our convention, all `<|speaker_meta|>` with the attribute
# named at the start of the target ("dialect: X"); the eval prompt forces the key, so one instruction serves all.
register_task(
    Task(
        name="did",
        family="speech",
        metric="accuracy",
        description="dialect identification; target 'dialect: NAME'",
        build_tags=_speaker_meta,
        build_target=_keyed("dialect"),
        eval_primer="dialect:",
        recipe_meta=("dialect",),
        convention="<|speaker_meta|> + key 'dialect:'",
        example_meta=_ex("did", "cantonese", "zh", dialect="cantonese"),
    )
)

# Language identification. The release has no LID output instruction, so this is our convention: the keyword
# task of the analysis family with the audio language hidden (<|unknown|>), answered by the English name.
register_task(
    Task(
        name="lid",
        family="speech",
        metric="accuracy",
        description="spoken language identification; target is the English language name",
        build_tags=lambda m: _analysis(None),
        build_target=_lid_target,
        recipe_meta=("language",),
        convention="<|keyword|> with <|unknown|> audio language, no instruction",
        example_meta=_ex("lid", "english", "en", language="en"),
    )
)

register_task(
    Task(
        name="sgc",
        family="speech",
        metric="accuracy",
        description="speaker gender classification; target 'gender: male|female'",
        build_tags=_speaker_meta,
        build_target=_keyed("gender", _choice("male", "female")),
        eval_primer="gender:",
        convention="<|speaker_meta|> + key 'gender:'",
        example_meta=_ex("sgc", "female", "en"),
    )
)

register_task(
    Task(
        name="er",
        family="speech",
        metric="accuracy",
        # Facts §5 names emotion recognition ER and keeps SER for speech entity recognition; the release's eval
        # table calls MELD "SER". Task names live in shard metadata, so we follow the task list: er.
        description="speech emotion recognition (MELD prompt)",
        # The release's prompt hard-codes <|en|> as audio language (MELD is English): default to it.
        build_tags=lambda m: _analysis(
            "emotion_recognition", audio_language=m.audio_language or "en", text_language=m.text_language
        ),
        from_release=True,
        convention="any audio language; <|en|> when unset, as the release's MELD prompt",
        example_meta=_ex("er", "neutral", "en"),
    )
)

register_task(
    Task(
        name="sv",
        family="speech",
        metric="accuracy",
        description="speaker verification on two utterances joined by 1 s of silence; target 'speakers: same|different'",
        build_tags=_speaker_meta,
        build_target=_keyed("speakers", _choice("same", "different")),
        eval_primer="speakers:",
        recipe_meta=("speakers",),
        convention="<|speaker_meta|> + key 'speakers:'",
        example_meta=_ex("sv", "different", "en", speakers=["1089", "2300"]),
    )
)

register_task(
    Task(
        name="sd",
        family="speech",
        metric="sd",
        description="speaker diarization: turns as <|start|>speaker N<|end|>, speakers numbered by first appearance",
        build_tags=lambda m: _speaker_meta(m, timestamps=True),
        build_target=lambda m: _spans_target(m, "segments", "speaker", relabel=True),
        required_meta=("segments",),
        convention="<|speaker_meta|> with <|timestamps|>; time-span target; speakers renamed 'speaker N'",
        example_meta=_ex(
            "sd",
            "hello there. hi.",
            "en",
            duration=4.0,
            segments=[
                {"speaker": "B", "start": 1.6, "end": 3.1},
                {"speaker": "A", "start": 0.2, "end": 1.8},
                {"speaker": "A", "start": 3.0, "end": 3.9},
            ],
        ),
    )
)

register_task(
    Task(
        name="ser",
        family="speech",
        metric="entity_f1",
        description="speech entity recognition: transcript with entities marked by the released entity tokens",
        # Our convention: `<|transcribe|>` (the output is a transcript) under `<|named_entity_recognition|>`.
        build_tags=lambda m: _analysis(
            "named_entity_recognition",
            task="transcribe",
            audio_language=_speech_language(m),
            text_language=m.text_language,
        ),
        build_target=_entities_target("entities"),
        required_meta=("entities",),
        convention="<|transcribe|> + <|named_entity_recognition|>; entities marked inline",
        example_meta=_ex(
            "ser",
            "call john smith in paris",
            "en",
            entities=[{"type": "person", "value": "john smith"}, {"type": "city", "value": "paris"}],
        ),
    )
)

# Keyword spotting: our convention is the bare keyword prompt with the audio language given. (LID asks the same
# with <|unknown|> audio language: naming the language versus naming the word spoken in it.)
register_task(
    Task(
        name="ks",
        family="speech",
        metric="accuracy",
        description="keyword spotting: the keyword spoken",
        build_tags=lambda m: _analysis(None, audio_language=_speech_language(m), text_language=m.text_language),
        convention="<|keyword|> with the audio language given, no instruction",
        example_meta=_ex("ks", "yes", "en"),
    )
)

register_task(
    Task(
        name="ic",
        family="speech",
        metric="accuracy",
        description="intent classification: the intent label",
        build_tags=_slu("keyword"),
        recipe_meta=("transcript",),
        convention="<|keyword|> + <|speech_understanding|>",
        example_meta=_ex("ic", "alarm_set", "en", transcript="wake me up at seven"),
    )
)

register_task(
    Task(
        name="sf",
        family="speech",
        metric="entity_f1",
        description="slot filling: transcript with slots marked by the released entity tokens",
        build_tags=_slu("transcribe"),
        build_target=_entities_target("slots"),
        required_meta=("slots",),
        convention="<|transcribe|> + <|speech_understanding|>; slots marked inline like SER entities",
        example_meta=_ex(
            "sf",
            "wake me up at seven tomorrow",
            "en",
            slots=[{"type": "time", "value": "seven"}, {"type": "date", "value": "tomorrow"}],
        ),
    )
)

register_task(
    Task(
        name="sap",
        family="speech",
        metric="accuracy",
        description="speaker age prediction; target 'age: GROUP'",
        build_tags=_speaker_meta,
        build_target=_keyed("age"),
        eval_primer="age:",
        convention="<|speaker_meta|> + key 'age:'",
        example_meta=_ex("sap", "thirties", "en"),
    )
)

register_task(
    Task(
        name="vsc",
        family="speech",
        metric="accuracy",
        description="vocal sound classification (VocalSound prompt)",
        # The release's prompt uses <|en|> as audio language for these non-verbal sounds: default to it.
        build_tags=lambda m: _analysis(
            "vocal_classification", audio_language=m.audio_language or "en", text_language=m.text_language
        ),
        from_release=True,
        convention="any audio language; <|en|> when unset, as the release's VocalSound prompt",
        example_meta=_ex("vsc", "laughter"),
    )
)
