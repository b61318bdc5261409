"""Speech (espeak-ng, via ``data_recipes.tts``): the voice label conventions (dialects, age groups, emotions),
one utterance of a speaker, the dressing every speech clip gets (level, silences, light noise), the metadata of a
speech sample, and the renderer of the first five speech tasks (asr, srwt, lid).

Owns: the one ``EspeakSynth`` of a worker process (created on first use) and the label conventions of voices.
Must not: plan content or splits (the planners do) or write files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_recipes.synthetic.plan import Job
from data_recipes.synthetic.presets import ASR_LANGUAGES, SPEECH_SOURCE, SR
from data_recipes.synthetic.sounds import _add_noise
from data_recipes.synthetic.text import GRAMMARS
from data_recipes.tts import (
    CHILD_VARIANTS,
    OLD_VARIANTS,
    PITCH_RANGE,
    RATE_RANGE,
    VARIANTS,
    EspeakSynth,
    Speaker,
    random_speaker,
    voiced_span,
)
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.tags import LANGUAGES

# DID / DASR: espeak's regional voices of the release languages (tts.ACCENT_VOICES). Only accents that espeak
# renders differently on ordinary sentences are used: French fr-BE / fr-CH only change number words, so French
# has none.
DIALECTS: dict[str, tuple[str, str]] = {  # dialect label -> (language, espeak voice)
    "american": ("en", "en-us"),
    "british": ("en", "en"),
    "scottish": ("en", "en-GB-scotland"),
    "caribbean": ("en", "en-029"),
    "castilian": ("es", "es"),
    "latin american": ("es", "es-419"),
    "mandarin": ("zh", "cmn"),
    "cantonese": ("zh", "yue"),
}

# SGC / SAP / ER: speaker attributes from the voice (synthetic conventions).
# Gender: the "gender" line of the variant's espeak file: m1..m7 male, f1..f5 female.
# Age group: "child" is espeak's child-like variant zac (formants x1.45, pitch 240-390 Hz); "senior" the old
# variants grandma and grandpa (strong pitch flutter, weak upper formants, spoken slowly); "adult" the plain
# variants except m1 and f1 (their files declare age 70).
# Emotion (arousal only): the speaking rate, pitch, pitch range (intonation width) and level of the voice; the
# three ranges do not overlap, so the label is a property of the audio.
AGE_GROUPS: dict[str, dict[str, Any]] = {
    "child": {"variants": CHILD_VARIANTS, "rate": (150, 200), "pitch": (40, 80)},
    "adult": {
        "variants": tuple(v for v in VARIANTS if v not in ("m1", "f1")),
        "rate": RATE_RANGE,
        "pitch": PITCH_RANGE,
    },
    "senior": {"variants": OLD_VARIANTS, "rate": (105, 135), "pitch": (20, 55)},
}
EMOTIONS: dict[str, dict[str, Any]] = {
    "calm": {"rate": (100, 130), "pitch": (10, 35), "range": (0, 20), "level": (0.15, 0.35)},
    "neutral": {"rate": (150, 180), "pitch": (40, 60), "range": (40, 60), "level": (0.35, 0.6)},
    "excited": {"rate": (220, 270), "pitch": (70, 95), "range": (85, 100), "level": (0.6, 0.95)},
}


_SYNTH: EspeakSynth | None = None


def _speech(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    global _SYNTH
    if _SYNTH is None:
        _SYNTH = EspeakSynth()
    lang, text = job.params["language"], job.params["text"]
    grammar = GRAMMARS[lang]
    speaker = random_speaker(lang, rng)
    wav, words = _SYNTH.synth_speaker(text + grammar.full_stop, speaker)
    wav = wav / max(float(np.max(np.abs(wav))), 1e-9) * rng.uniform(0.3, 0.9)
    lead, tail = int(rng.uniform(0.05, 0.5) * SR), int(rng.uniform(0.05, 0.3) * SR)
    wav = np.concatenate([np.zeros(lead), wav, np.zeros(tail)])
    if rng.random() < 0.5:
        wav = _add_noise(rng, wav, rng.uniform(20, 40))
    shift = lead / SR
    words = [Word(w.word, round(w.start + shift, 4), round(w.end + shift, 4)) for w in words]
    if lang not in ASR_LANGUAGES and grammar.joiner.join(w.word for w in words) != text:
        words = None  # espeak merged words (Korean): no timings rather than wrong ones
    duration = len(wav) / SR
    meta: dict[str, Any] = {"speaker": speaker.name}
    if job.task == "lid":
        meta |= {"language": lang, "text": text}
        return wav, SampleMeta(
            task="lid",
            text_language="en",
            target=LANGUAGES[lang],
            duration=duration,
            source=SPEECH_SOURCE,
            audio_language=lang,
            meta=meta,
        )
    return wav, SampleMeta(
        task=job.task,
        text_language=lang,
        target=text,
        duration=duration,
        source=SPEECH_SOURCE,
        audio_language=lang,
        words=words,
        meta=meta,
    )


def _say(text: str, speaker: Speaker) -> tuple[np.ndarray, list[Word], float, float]:
    """An utterance at peak 1 with its words and its voiced (onset, offset) in seconds."""
    global _SYNTH
    if _SYNTH is None:
        _SYNTH = EspeakSynth()
    wav, words = _SYNTH.synth_speaker(text, speaker)
    wav = wav.astype(np.float64) / max(float(np.max(np.abs(wav))), 1e-9)
    onset, offset = voiced_span(wav, SR)
    return wav, words, onset, offset


def _sentence_of(language: str, text: str) -> str:
    return text + GRAMMARS[language].full_stop


def _dress(
    rng: np.random.Generator,
    wav: np.ndarray,
    level: float | None = None,
    lead: tuple[float, float] = (0.05, 0.5),
    tail: tuple[float, float] = (0.05, 0.3),
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Level, leading and trailing silence and (half the time) light noise, as the first five tasks' speech;
    returns the clip and the shift of its content in seconds."""
    wav = wav / max(float(np.max(np.abs(wav))), 1e-9) * (rng.uniform(0.3, 0.9) if level is None else level)
    n_lead, n_tail = int(rng.uniform(*lead) * SR), int(rng.uniform(*tail) * SR)
    n_tail = max(n_tail, int(min_seconds * SR) - n_lead - len(wav))
    wav = np.concatenate([np.zeros(n_lead), wav, np.zeros(n_tail)])
    if rng.random() < 0.5:
        wav = _add_noise(rng, wav, rng.uniform(20, 40))
    return wav, n_lead / SR


def _speech_meta(job: Job, target: str, duration: float, text_language: str | None = None, **meta: Any) -> SampleMeta:
    lang = job.params["language"]
    return SampleMeta(
        task=job.task,
        text_language=text_language or lang,
        target=target,
        duration=duration,
        source=SPEECH_SOURCE,
        audio_language=lang,
        meta=meta,
    )
