"""Building blocks of the task rules: reading a sample's metadata (a missing or malformed field is a SampleError
naming the sample), the tag recipes several tasks share, and the target builders that feed `formats.py`.

Must not: register tasks (the family modules do), define a target format (`formats.py` owns rendering and
parsing), import torch or a tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qwenaudio_train.data.schema import SampleError, SampleMeta, Word
from qwenaudio_train.formats import Span, diarization_spans, format_entities, format_keyed, format_mna, format_spans
from qwenaudio_train.tags import LANGUAGES, Tags


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the task rules
# ---------------------------------------------------------------------------------------------------------------
def _speech_language(meta: SampleMeta) -> str:
    """Spoken language of a speech sample; a transcript's language when the shard leaves it unset."""
    return meta.audio_language or meta.text_language


def _field(meta: SampleMeta, key: str) -> Any:
    if key not in meta.meta:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta lacks {key!r} (has {sorted(meta.meta)})"
        )
    return meta.meta[key]


def _words(meta: SampleMeta) -> list[Word]:
    if not meta.words:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: needs word timings (`words`)")
    return meta.words


def _corpus(meta: SampleMeta) -> str:
    """The corpus part of `source` ("audiocaps/train" -> "audiocaps")."""
    return meta.source.split("/", 1)[0].lower()


def _analysis(
    instruction: str | None,
    task: str = "keyword",
    audio_language: str | None = None,
    text_language: str = "en",
    timestamps: bool = False,
) -> Tags:
    return Tags("startofanalysis", audio_language, task, text_language, timestamps, instruction)


def _label(meta: SampleMeta) -> str:
    label = meta.target.strip()
    if not label:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: empty target")
    return label


def _keyed(key: str, label: Callable[[SampleMeta], str] = _label) -> Callable[[SampleMeta], str]:
    """Target "key: label" for tasks that share an output instruction; the eval prompt forces "key:"."""
    return lambda meta: format_keyed(key, label(meta))


def _choice(*labels: str) -> Callable[[SampleMeta], str]:
    """Closed-set target: the plain target must be one of `labels` (case-insensitive)."""

    def check(meta: SampleMeta) -> str:
        label = meta.target.strip().lower()
        if label not in labels:
            raise SampleError(
                f"task {meta.task!r} sample from {meta.source!r}: target {meta.target!r} is not one "
                f"of {', '.join(labels)}"
            )
        return label

    return check


def _meta_spans(meta: SampleMeta, key: str, label_key: str) -> list[Span]:
    try:
        return [(str(d[label_key]), float(d["start"]), float(d["end"])) for d in _field(meta, key)]
    except (KeyError, TypeError, ValueError) as e:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta.{key} must be a list of "
            f"{{{label_key}, start, end}} ({e!r})"
        ) from e


def _spans_target(meta: SampleMeta, key: str, label_key: str, relabel: bool = False) -> str:
    spans = _meta_spans(meta, key, label_key)
    try:
        return format_spans(diarization_spans(spans) if relabel else spans)
    except ValueError as e:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: meta.{key}: {e}") from e


def _entities_target(key: str) -> Callable[[SampleMeta], str]:
    def build(meta: SampleMeta) -> str:
        try:
            return format_entities(meta.target, _field(meta, key))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, SampleError):
                raise
            raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: meta.{key}: {e}") from e

    return build


def _mna_target(meta: SampleMeta) -> str:
    try:
        return format_mna(
            int(_field(meta, "pitch")),
            int(_field(meta, "velocity")),
            str(_field(meta, "instrument")),
            meta.meta.get("sonic") or [],
        )
    except (TypeError, ValueError) as e:
        if isinstance(e, SampleError):
            raise
        raise SampleError(f"task 'mna' sample from {meta.source!r}: {e}") from e


def _lid_target(meta: SampleMeta) -> str:
    if meta.audio_language not in LANGUAGES:
        raise SampleError(
            f"task 'lid' sample from {meta.source!r}: audio_language {meta.audio_language!r} is not one of "
            f"{', '.join(LANGUAGES)}"
        )
    return LANGUAGES[meta.audio_language]


def _question(meta: SampleMeta) -> str:
    return str(_field(meta, "question"))


def _ex(task: str, target: str, audio_language: str | None = None, text_language: str = "en", **kw: Any) -> SampleMeta:
    return SampleMeta(
        task=task,
        text_language=text_language,
        target=target,
        duration=kw.pop("duration", 2.0),
        source=kw.pop("source", "example"),
        audio_language=audio_language,
        words=kw.pop("words", None),
        meta=kw,
    )


# ---------------------------------------------------------------------------------------------------------------
# Tag recipes used by several tasks
# ---------------------------------------------------------------------------------------------------------------
def _transcribe(meta: SampleMeta) -> Tags:
    """The release's ASR prompt. `<|itn|>` when the corpus writes its transcripts in written form (meta.itn true:
    digits, punctuation, casing), as the release's S2TT targets are; `<|wo_itn|>` (spoken form) otherwise."""
    instruction = "itn" if meta.meta.get("itn") else "wo_itn"
    return Tags("startoftranscript", _speech_language(meta), "transcribe", meta.text_language, False, instruction)


def _speaker_meta(meta: SampleMeta, timestamps: bool = False) -> Tags:
    # Our convention: `<|speaker_meta|>` for attributes of the speaker(s) (gender, age, dialect, same/different,
    # who speaks when); the audio language is the sample's own (unknown when unset).
    return _analysis(
        "speaker_meta", audio_language=meta.audio_language, text_language=meta.text_language, timestamps=timestamps
    )


def _song_meta(meta: SampleMeta) -> Tags:
    # Our convention: `<|song_meta|>` for facts about a recording (singer, title/artist); audio language = lyrics.
    return _analysis("song_meta", audio_language=meta.audio_language, text_language=meta.text_language)


def _slu(task: str) -> Callable[[SampleMeta], Tags]:
    # Our convention: spoken language understanding under `<|speech_understanding|>`; intent classification asks a
    # `<|keyword|>` (a label), slot filling `<|transcribe|>` (the transcript with its slots marked).
    def build(meta: SampleMeta) -> Tags:
        return _analysis(
            "speech_understanding", task=task, audio_language=_speech_language(meta), text_language=meta.text_language
        )

    return build
