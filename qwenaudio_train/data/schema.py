"""The one sample schema every shard follows.

A shard is a webdataset tar. Each sample is two members sharing a key:

* ``<key>.flac`` - the audio, 16 kHz mono FLAC (any format soundfile reads is accepted on input);
* ``<key>.json`` - the metadata below, UTF-8 JSON.

Metadata fields (``SampleMeta``):

========================  ===============================================================================
``task``                  registry name of the task, lower case (``asr``, ``srwt``, ``lid``, ``sec``, ``mna``...)
``audio_language``        language spoken in the audio (``en``, ``zh``, ...) or ``None`` for non-speech
``text_language``         language of the target text (``en`` for analysis tasks)
``target``                the plain target: transcript, class label, caption... (task formatters add tags)
``duration``              seconds of audio (float)
``source``                where the sample came from, e.g. ``synthetic/espeak`` or ``librispeech/dev-clean``
``words``                 optional word timings ``[{"word", "start", "end"}]`` in seconds
``meta``                  optional task-specific fields (``pitch``, ``velocity``, ``instrument``, ``sonic``,
                          ``question``, ``speaker``...)
========================  ===============================================================================

This module owns only the schema and its validation: no audio decoding, no torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg")
REQUIRED_KEYS = ("task", "text_language", "target", "duration", "source")
# The member of a *bad record*: the stand-in the stream hands out for a damaged shard (data/stream.py), holding
# its error message; parsing it raises SampleError, so the loader counts it as a bad sample of its source.
BAD_RECORD = "__error__"


class SampleError(ValueError):
    """A sample that cannot be used: the message names the sample and what is wrong with it."""


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class SampleMeta:
    task: str
    text_language: str
    target: str
    duration: float
    source: str
    audio_language: str | None = None
    words: list[Word] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        d = asdict(self)
        return json.dumps(d, ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any], key: str = "?") -> SampleMeta:
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise SampleError(
                f"sample {key!r}: metadata lacks {missing}; every sample's .json needs {list(REQUIRED_KEYS)} "
                "(see qwenaudio_train/data/schema.py)"
            )
        words = d.get("words")
        try:
            word_list = [Word(str(w["word"]), float(w["start"]), float(w["end"])) for w in words] if words else None
            duration = float(d["duration"])
        except (KeyError, TypeError, ValueError) as e:
            raise SampleError(
                f"sample {key!r}: malformed field ({e}); words need word/start/end, duration a number"
            ) from e
        if not duration > 0:
            raise SampleError(f"sample {key!r}: duration {d['duration']!r} must be > 0 (empty audio?)")
        return cls(
            task=str(d["task"]).lower(),
            text_language=str(d["text_language"]),
            target=str(d["target"]),
            duration=duration,
            source=str(d["source"]),
            audio_language=d.get("audio_language"),
            words=word_list,
            meta=dict(d.get("meta") or {}),
        )

    @classmethod
    def from_json(cls, raw: bytes, key: str = "?") -> SampleMeta:
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SampleError(f"sample {key!r}: metadata is not valid UTF-8 JSON ({e})") from e
        if not isinstance(d, dict):
            raise SampleError(f"sample {key!r}: metadata must be a JSON object, got {type(d).__name__}")
        return cls.from_dict(d, key)


def audio_member(sample: dict[str, Any]) -> tuple[str, bytes]:
    """Return (extension, bytes) of the audio member of a raw webdataset sample dict."""
    for ext in AUDIO_EXTENSIONS:
        if ext in sample:
            return ext, sample[ext]
    raise SampleError(
        f"sample {sample.get('__key__', '?')!r}: no audio member (expected one of {AUDIO_EXTENSIONS}); "
        f"members present: {sorted(k for k in sample if not k.startswith('__'))}"
    )
