"""The sound and music tasks of the registry (facts section 5, in its order): captioning, classification, event
detection, question answering, note analysis and song metadata.

Must not: define a target format (`formats.py`) or a shared rule (`rules.py`); import torch or a tokenizer.
"""

from __future__ import annotations

from qwenaudio_train.data.schema import SampleError, SampleMeta
from qwenaudio_train.tags import INSTRUMENT, Tags
from qwenaudio_train.tasks.registry import Task, register_task
from qwenaudio_train.tasks.rules import (
    _analysis,
    _corpus,
    _ex,
    _keyed,
    _label,
    _mna_target,
    _question,
    _song_meta,
    _spans_target,
)

# ---------------------------------------------------------------------------------------------------------------
# Sound
# ---------------------------------------------------------------------------------------------------------------
CAPTION_STYLES = {"clotho": "caption_clotho", "audiocaps": "caption_audiocaps", "plain": "caption_plain"}


def _caption_instruction(meta: SampleMeta) -> str:
    """The release names the caption style of a corpus: AudioCaps and Clotho captions get their own instruction,
    meta.caption_style ("clotho" / "audiocaps" / "plain") overrides; the default is Clotho, the release's eval
    prompt. Choosing by corpus name is our convention."""
    style = str(meta.meta.get("caption_style") or ("audiocaps" if _corpus(meta) == "audiocaps" else "clotho"))
    if style not in CAPTION_STYLES:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta.caption_style {style!r} is not "
            f"one of {', '.join(CAPTION_STYLES)}"
        )
    return CAPTION_STYLES[style]


register_task(
    Task(
        name="aac",
        family="sound",
        metric="caption",
        description="audio captioning (Clotho prompt; AudioCaps style for audiocaps/* sources)",
        build_tags=lambda m: _analysis(_caption_instruction(m), task="caption", text_language=m.text_language),
        from_release=True,
        convention="<|caption_audiocaps|> for audiocaps/*, meta.caption_style=plain|audiocaps|clotho",
        example_meta=_ex("aac", "a dog barks while cars pass by"),
    )
)

register_task(
    Task(
        name="sec",
        family="sound",
        metric="accuracy",
        description="sound event classification; target the label(s) joined with ', '",
        # Our convention: `<|event|>`; AudioSet labels (audioset/* sources) say so with `<|audioset_ontology|>`.
        build_tags=lambda m: _analysis(
            "audioset_ontology" if _corpus(m) == "audioset" else "event", text_language=m.text_language
        ),
        recipe_meta=("labels",),
        convention="<|event|>; <|audioset_ontology|> for audioset/* sources",
        example_meta=_ex("sec", "dog bark", labels=["dog bark"]),
    )
)

register_task(
    Task(
        name="asc",
        family="sound",
        metric="accuracy",
        description="acoustic scene classification (CochlScene / TUT2017 prompt)",
        build_tags=lambda m: _analysis("scene", text_language=m.text_language),
        from_release=True,
        example_meta=_ex("asc", "street traffic"),
    )
)

register_task(
    Task(
        name="sed",
        family="sound",
        metric="sed",
        description="sound event detection: events as <|start|>label<|end|>, ordered by start",
        build_tags=lambda m: _analysis("event", text_language=m.text_language, timestamps=True),
        build_target=lambda m: _spans_target(m, "events", "label"),
        required_meta=("events",),
        convention="SEC's prompt with <|timestamps|>; time-span target",
        example_meta=_ex(
            "sed",
            "dog bark, car horn",
            duration=5.0,
            events=[{"label": "car horn", "start": 0.9, "end": 3.0}, {"label": "dog bark", "start": 0.5, "end": 1.2}],
        ),
    )
)

register_task(
    Task(
        name="aqa",
        family="sound",
        metric="aqa",
        description="audio question answering; meta.question holds the question, target the answer (ClothoAQA prompt)",
        # The release's prompt uses <|en|> as audio language (the question's language): default to it.
        build_tags=lambda m: Tags("startofanalysis", m.audio_language or "en", "question", question=_question(m)),
        required_meta=("question",),
        from_release=True,
        example_meta=_ex("aqa", "yes", question="Is there a dog barking?"),
    )
)


# ---------------------------------------------------------------------------------------------------------------
# Music and song
# ---------------------------------------------------------------------------------------------------------------
register_task(
    Task(
        name="sid",
        family="music",
        metric="accuracy",
        description="singer identification; target 'singer: NAME'",
        build_tags=_song_meta,
        build_target=_keyed("singer"),
        eval_primer="singer:",
        convention="<|song_meta|> + key 'singer:'",
        example_meta=_ex("sid", "Adele"),
    )
)

register_task(
    Task(
        name="smer",
        family="music",
        metric="accuracy",
        description="singing / music emotion recognition",
        # Our convention: ER's instruction with the audio language always <|unknown|>, which tells it apart from ER
        # (whose audio language is a spoken language).
        build_tags=lambda m: _analysis("emotion_recognition", text_language=m.text_language),
        convention="<|emotion_recognition|> with <|unknown|> audio language",
        example_meta=_ex("smer", "happy"),
    )
)

register_task(
    Task(
        name="mc",
        family="music",
        metric="caption",
        description="music captioning",
        build_tags=lambda m: _analysis("music_description", task="caption", text_language=m.text_language),
        convention="<|caption|> + <|music_description|>",
        example_meta=_ex("mc", "a calm piano melody with soft strings"),
    )
)

register_task(
    Task(
        name="mic",
        family="music",
        metric="accuracy",
        description="music instrument classification; target <|instrument|> + label(s) joined with ', '",
        # Our convention: a music `<|keyword|>` under `<|music_description|>`, the target opened by the released
        # `<|instrument|>` marker (as in note analysis), which the eval prompt forces.
        build_tags=lambda m: _analysis("music_description", text_language=m.text_language),
        build_target=lambda m: INSTRUMENT + _label(m),
        eval_primer=INSTRUMENT,
        recipe_meta=("labels",),
        convention="<|keyword|> + <|music_description|> + <|instrument|>",
        example_meta=_ex("mic", "piano, violin", labels=["piano", "violin"]),
    )
)

register_task(
    Task(
        name="mna",
        family="music",
        metric="mna",
        description="music note analysis: pitch, velocity, instrument, sonic qualities (NSynth prompt)",
        build_tags=lambda m: _analysis("note_analysis", text_language=m.text_language),
        build_target=_mna_target,
        required_meta=("pitch", "velocity", "instrument"),
        recipe_meta=("sonic",),
        from_release=True,
        example_meta=_ex(
            "mna", "", pitch=60, velocity=100, instrument="keyboard_acoustic", sonic=["bright", "percussive"]
        ),
    )
)

register_task(
    Task(
        name="mgr",
        family="music",
        metric="accuracy",
        description="music genre recognition; target 'genre: NAME'",
        build_tags=lambda m: _analysis("music_description", text_language=m.text_language),
        build_target=_keyed("genre"),
        eval_primer="genre:",
        convention="<|keyword|> + <|music_description|> + key 'genre:'",
        example_meta=_ex("mgr", "jazz"),
    )
)

register_task(
    Task(
        name="mr",
        family="music",
        metric="accuracy",
        description="music recognition; target 'song: TITLE - ARTIST'",
        build_tags=_song_meta,
        build_target=_keyed("song"),
        eval_primer="song:",
        convention="<|song_meta|> + key 'song:'",
        example_meta=_ex("mr", "Yesterday - The Beatles"),
    )
)

register_task(
    Task(
        name="mqa",
        family="music",
        metric="aqa",
        description="music question answering; meta.question holds the question, target the answer",
        # Our convention: the release's AQA prompt, audio language defaulting to <|en|> as there.
        build_tags=lambda m: Tags("startofanalysis", m.audio_language or "en", "question", question=_question(m)),
        required_meta=("question",),
        convention="the release's AQA prompt",
        example_meta=_ex("mqa", "piano", question="Which instrument plays the melody?"),
    )
)
