"""The offline multi-task corpus: synthetic speech (espeak-ng), sound events, notes and music (numpy).

Deterministic from a seed: the same seed and sizes give byte-identical shards on any machine with the same
libraries, whatever the number of worker processes. Sizes are samples per task and split.

    python -m data_recipes.synthetic --out DIR --preset demo          # 5 tasks, 800 train + 40 valid + 40 test each
    python -m data_recipes.synthetic --out DIR --preset full          # 26 tasks, 600 + 40 + 40 each
    python -m data_recipes.synthetic --out DIR --seed 0 --train 100 --valid 10 --test 10 [--tasks sgc,sv]

Presets: ``tiny`` (tests) and ``demo`` build the first five tasks; their samples do not change when tasks are
added (a test pins the tiny shards' bytes). ``full`` and ``full_tiny`` (tests) build all 26 tasks, ASR in all 8
languages. Layout (what ``configs/data/synthetic.yaml`` and ``synthetic_full.yaml`` read)::

    DIR/train/<task>/shard-000000.tar ... + manifest.json    one shard set per task (a mixture source each)
    DIR/valid/shard-000000.tar ...       + manifest.json    all tasks interleaved
    DIR/test/...                                            likewise
    DIR/manifest.json                                       sizes, seed, per split/task/language totals
    DIR/text.txt                                            every sample's target text, one per line (BPE)

Tasks (``meta.task``), every clip 16 kHz mono FLAC, 1-10 s. The first five (all presets):

* ``asr``  - sentences from small per-language grammars (~40-50 words each) in en, de, es, zh, fr (full: all 8);
  target is the lower-case transcript without punctuation (spoken form); ``words`` from espeak's word events.
* ``srwt`` - English sentences of the same kind with word timings; target is the transcript.
* ``lid``  - short sentences in the 8 languages; target is the English language name; ``meta.language``.
* ``sec``  - 8 acoustically distinct synthetic sound events (``SEC_CLASSES``); target is the label.
* ``mna``  - single synthetic notes: ``meta`` pitch (MIDI), velocity, instrument, sonic qualities; target is the
  instrument (the task formatter builds the tagged target from ``meta``).

The full preset adds (every label is computed from what was generated, never drawn on its own):

* ``s2tt`` - one parallel lexicon in the 8 languages (``parallel_sentence``): speech of a sentence in one
  language, target the same sentence written in another (English into the 7 others and back); meta.transcript.
* ``osr``  - two voices of the same language overlapping (the second starts 30-70 % into the first); target the
  two transcripts in order of start; meta.n_speakers, meta.segments.
* ``dasr`` / ``did`` - espeak's regional voices (``DIALECTS``: american, british, scottish, caribbean English;
  castilian, latin american Spanish; mandarin, cantonese Chinese); target the transcript / the dialect.
* ``sgc``  - gender of the voice variant (m1-m7 male, f1-f5 female, as their espeak files declare).
* ``sap``  - age group of the variant, a synthetic convention (``AGE_GROUPS``): zac child, grandma/grandpa
  senior, the other plain variants adult.
* ``er``   - arousal from how the voice speaks, a synthetic convention (``EMOTIONS``): calm (slow, low, flat,
  quiet), neutral, excited (fast, high, wide pitch range, loud); ranges do not overlap.
* ``sv``   - two utterances with 1 s of silence between them; same speaker (same variant, rate and pitch) or a
  different variant; meta.speakers.
* ``sd``   - 3-5 turns of 2-3 speakers (distinct variants), gaps or short overlaps; meta.segments are the voiced
  spans of the turns.
* ``ks``   - an isolated keyword (``KEYWORDS``: Speech Commands words in English, digits in the others), >= 1 s.
* ``ic`` / ``sf`` - templated English commands (``COMMANDS``, "set an alarm for seven am"): target the intent /
  the transcript with meta.slots; ``ser`` - sentences with person, city and date entities (meta.entities).
* ``sed``  - 2-4 different sounds placed in a 6-10 s clip; meta.events are their audible spans (-40 dB).
* ``aac``  - scenes of sounds one after another or one during another; caption built from the scene.
* ``aqa``  - scenes and a question about them (is there..., how many beeps/knocks/chirps, which comes first /
  last, does A come before B, how many different sounds); answer read from the scene.
* ``mic`` / ``mgr`` / ``mc`` / ``mqa`` / ``smer`` - short pieces from recipes (``GENRES``: march, waltz, techno,
  ballad, chorale, reggae as "genre-like" classes of meter, tempo, accompaniment, bass and drum patterns; key,
  chords, instruments per role): the instruments heard, the pattern, a caption, answers about mode / melody
  instrument / drums / bass / meter / tempo / instrument count, and an emotion from mode and tempo
  (``MUSIC_EMOTIONS``, a synthetic convention: happy, tense, calm, sad).

Held-out splits. First five tasks: splits drawn from disjoint seed streams; a valid or test sentence never
occurs in an earlier split. Full preset: content is owned by one split (``split_of``: 80/10/10 by a hash of the
content): sentences (those of the first five tasks keep their split), parallel meanings, commands, speakers
(variant, rate, pitch), sound combinations, captions and music recipes; so valid and test samples are new
sentences said by new speakers, new scenes and new pieces. Speech gets random leading/trailing silence, level
and (half the time) light noise.

Owns: the grammars and lexicons, the sound, note and music recipes, the label conventions above, planning and
rendering samples, the corpus layout.
Must not: know about tokenizers, models or training (the task formatters are used only to write text.txt).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_recipes.tts import (
    CHILD_VARIANTS,
    OLD_VARIANTS,
    PITCH_RANGE,
    RATE_RANGE,
    VARIANT_GENDER,
    VARIANTS,
    EspeakSynth,
    Speaker,
    random_speaker,
    voiced_span,
)
from qwenaudio_train.audio import SAMPLE_RATE, encode_flac
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.data.shards import write_shards
from qwenaudio_train.tags import LANGUAGES

SR = SAMPLE_RATE
TASKS: tuple[str, ...] = ("asr", "srwt", "lid", "sec", "mna")  # the tasks of the tiny and demo presets
# The full preset adds these (registry order); seeds are indexed in FULL_TASKS, so the first five keep theirs.
NEW_TASKS: tuple[str, ...] = (
    "s2tt",
    "osr",
    "dasr",
    "did",
    "sgc",
    "er",
    "sv",
    "sd",
    "ser",
    "ks",
    "ic",
    "sf",
    "sap",
    "aac",
    "sed",
    "aqa",
    "smer",
    "mc",
    "mic",
    "mgr",
    "mqa",
)
FULL_TASKS: tuple[str, ...] = TASKS + NEW_TASKS
SPLITS: tuple[str, ...] = ("train", "valid", "test")
ASR_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "zh", "fr")
SRWT_LANGUAGES: tuple[str, ...] = ("en",)
LID_LANGUAGES: tuple[str, ...] = ("en", "zh", "de", "es", "ko", "fr", "ja", "it")
SPEECH_SOURCE = "synthetic/espeak"
NUMPY_SOURCE = "synthetic/numpy"


@dataclass(frozen=True)
class Sizes:
    """Samples per task in each split; the tasks and ASR languages a preset builds."""

    train: int
    valid: int
    test: int
    tasks: tuple[str, ...] = TASKS
    asr_languages: tuple[str, ...] = ASR_LANGUAGES

    def of(self, split: str) -> int:
        return int(getattr(self, split))


PRESETS: dict[str, Sizes] = {
    # Enough for a tiny model to learn every task on CPU; builds in about a minute on 2 cores.
    "demo": Sizes(train=800, valid=40, test=40),
    # Unit tests: every task, all 8 LID languages, every ASR language in every split, in a few seconds.
    "tiny": Sizes(train=8, valid=8, test=8),
    # Every task of FULL_TASKS (26), ASR in all 8 languages; builds in about FULL_MINUTES minutes on 2 cores.
    "full": Sizes(train=600, valid=40, test=40, tasks=FULL_TASKS, asr_languages=LID_LANGUAGES),
    # Unit tests of the full preset: every task, every label of the cycled ones (dialects, languages) in train.
    "full_tiny": Sizes(train=8, valid=4, test=4, tasks=FULL_TASKS, asr_languages=LID_LANGUAGES),
}

# ---------------------------------------------------------------------------------------------------------------
# Sentences: one tiny grammar per language. Templates are space-separated tokens; "$slot" draws from a word list.
# Word choices keep agreement trivial (German feminine nouns, Spanish/Italian masculine, French masculine nouns
# starting with a consonant so no elision) and avoid digits and apostrophes.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    language: str
    slots: dict[str, tuple[str, ...]]
    templates: tuple[str, ...]  # ASR / SRWT sentences
    short_templates: tuple[str, ...]  # LID sentences
    joiner: str = " "  # "" for Chinese: the transcript has no spaces
    full_stop: str = "."

    def sentence(self, rng: np.random.Generator, short: bool = False) -> str:
        templates = self.short_templates if short else self.templates
        template = templates[int(rng.integers(len(templates)))]
        tokens = []
        for tok in template.split():
            if tok.startswith("$"):
                choices = self.slots[tok[1:]]
                tok = choices[int(rng.integers(len(choices)))]
            tokens.append(tok)
        return self.joiner.join(tokens)


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


GRAMMARS: dict[str, Grammar] = {
    "en": Grammar(
        "en",
        {
            "noun": _words("cat,dog,bird,horse,fish,child,teacher,farmer,doctor,girl,boy,king"),
            "adj": _words("red,big,small,old,young,happy,green,little,brown,quiet"),
            "verb": _words("sees,likes,finds,helps,follows,calls,watches,knows"),
            "prep": _words("in,near,behind,under"),
            "place": _words("garden,river,school,house,road,park"),
            "time": _words("today,now,again"),
        },
        (
            "the $adj $noun $verb the $noun",
            "the $noun $verb the $adj $noun $time",
            "the $adj $noun $verb the $noun $prep the $place",
            "the $noun $verb the $noun $prep the $place $time",
            "$time the $adj $noun $verb the $adj $noun",
        ),
        ("the $adj $noun $verb the $noun", "the $noun $verb the $noun $time"),
    ),
    "de": Grammar(
        "de",
        {
            "noun": _words("katze,frau,lehrerin,maus,kuh,ente,blume,ärztin,königin,schwester,tante,eule"),
            "adj": _words("kleine,große,alte,junge,rote,grüne,braune,stille"),
            "verb": _words("sieht,findet,sucht,ruft,kennt,hört,liebt,malt"),
            "prep": _words("in,neben,hinter,vor"),
            "place": _words("schule,stadt,küche,straße,kirche,scheune"),
            "time": _words("heute,jetzt,morgen,wieder"),
        },
        (
            "die $adj $noun $verb die $noun",
            "die $noun $verb die $adj $noun $time",
            "die $adj $noun $verb die $noun $prep der $place",
            "$time $verb die $noun die $adj $noun",
        ),
        ("die $adj $noun $verb die $noun", "die $noun $verb die $noun $time"),
    ),
    "es": Grammar(
        "es",
        {
            "noun": _words("gato,perro,niño,maestro,caballo,pájaro,hombre,médico,abuelo,lobo,toro,pescador"),
            "adj": _words("grande,pequeño,viejo,nuevo,blanco,negro,rojo,bonito"),
            "verb": _words("ve,busca,mira,tiene,quiere,encuentra,sigue,llama"),
            "prep": _words("en el,cerca del,detrás del,junto al"),
            "place": _words("parque,jardín,mercado,camino,pueblo,río"),
            "time": _words("hoy,ahora,mañana,siempre"),
        },
        (
            "el $noun $adj $verb el $noun",
            "el $noun $verb el $noun $adj $time",
            "el $noun $adj $verb el $noun $prep $place",
            "$time el $noun $verb el $noun $adj",
        ),
        ("el $noun $adj $verb el $noun", "el $noun $verb el $noun $time"),
    ),
    "zh": Grammar(
        "zh",
        {
            "noun": _words("小猫,小狗,老师,学生,妈妈,爸爸,朋友,医生,孩子,哥哥"),
            "verb": _words("喜欢,看见,帮助,认识,等待,找到"),
            "place": _words("学校,公园,家里,商店,医院"),
            "time": _words("今天,明天,现在,昨天"),
        },
        (
            "$time $noun 在 $place $verb $noun",
            "$noun $verb $noun",
            "$noun $time 在 $place",
            "$noun 在 $place $verb $noun",
            "$time $noun $verb $noun",
        ),
        ("$noun $verb $noun", "$time $noun $verb $noun"),
        joiner="",
        full_stop="。",
    ),
    "fr": Grammar(
        "fr",
        {
            "noun": _words("chat,chien,garçon,cheval,professeur,médecin,roi,poisson,voisin,boulanger,fermier,lapin"),
            "adj": _words("petit,grand,gros,jeune,beau,vieux,joli,bon"),
            "verb": _words("voit,aime,cherche,suit,appelle,regarde,trouve,attend"),
            "prep": _words("dans le,près du,devant le,derrière le"),
            "place": _words("jardin,parc,village,marché,bois,champ"),
            "time": _words("demain,maintenant,ce matin,ce soir"),
        },
        (
            "le $adj $noun $verb le $noun",
            "le $noun $verb le $adj $noun $time",
            "le $adj $noun $verb le $noun $prep $place",
            "$time le $noun $verb le $adj $noun",
        ),
        ("le $adj $noun $verb le $noun", "le $noun $verb le $noun $time"),
    ),
    "it": Grammar(
        "it",
        {
            "noun": _words("gatto,cane,ragazzo,cavallo,libro,maestro,fratello,dottore,nonno,pesce"),
            "adj": _words("piccolo,grande,vecchio,nuovo,rosso,nero,bianco,bello"),
            "verb": _words("vede,cerca,guarda,trova,chiama,segue,aspetta,ama"),
            "time": _words("oggi,adesso,domani,sempre"),
        },
        ("il $noun $adj $verb il $noun", "il $noun $verb il $noun $time"),
        ("il $noun $adj $verb il $noun", "il $noun $verb il $noun $time"),
    ),
    # Japanese in kana (espeak reads kanji as "Chinese letter"); particles attached to their nouns.
    "ja": Grammar(
        "ja",
        {
            "subj": _words("わたしは,ねこは,いぬは,せんせいは,ともだちは,こどもは"),
            "obj": _words("みずを,ほんを,さかなを,りんごを,おちゃを,ごはんを"),
            "verb": _words("たべます,みます,のみます,よみます,かいます,さがします"),
            "time": _words("きょう,あした,いま,まいにち"),
        },
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        full_stop="。",
    ),
    # Korean nouns ending in a vowel, so the particles are always 는 / 를.
    "ko": Grammar(
        "ko",
        {
            "subj": _words("나는,친구는,누나는,아버지는,어머니는,의사는"),
            "obj": _words("사과를,커피를,우유를,바나나를,고기를,피자를"),
            "verb": _words("먹어요,마셔요,사요,좋아해요,봐요,찾아요"),
            "time": _words("오늘,내일,지금,매일"),
        },
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        ("$subj $obj $verb", "$time $subj $obj $verb"),
    ),
}

# ---------------------------------------------------------------------------------------------------------------
# Sound events (numpy). Each recipe draws its own parameters from class ranges: fn(rng, n_samples) -> waveform.
# ---------------------------------------------------------------------------------------------------------------


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SR


def _ramp(x: np.ndarray, seconds: float = 0.005) -> np.ndarray:
    k = min(len(x) // 2, max(1, int(seconds * SR)))
    env = np.ones(len(x))
    env[:k] = np.linspace(0, 1, k)
    env[len(x) - k :] = np.linspace(1, 0, k)
    return x * env


def _sweep(freq: np.ndarray) -> np.ndarray:
    """A sine whose instantaneous frequency follows `freq` (Hz per sample)."""
    return np.sin(2 * np.pi * np.cumsum(freq) / SR)


def _place(n: int, starts: Sequence[float], piece: Callable[[], np.ndarray]) -> np.ndarray:
    out = np.zeros(n)
    for s in starts:
        i = int(s * SR)
        p = piece()[: max(0, n - i)]
        out[i : i + len(p)] += p
    return out


def _beep(rng: np.random.Generator, n: int) -> np.ndarray:
    f, on, off = rng.uniform(500, 2000), rng.uniform(0.1, 0.3), rng.uniform(0.08, 0.3)
    starts = np.arange(rng.uniform(0, 0.2), n / SR - 0.05, on + off)
    return _place(n, starts, lambda: _ramp(np.sin(2 * np.pi * f * _t(int(on * SR)))))


def _siren(rng: np.random.Generator, n: int) -> np.ndarray:
    fc, dev, rate = rng.uniform(600, 1000), rng.uniform(200, 400), rng.uniform(0.5, 2.0)
    freq = fc + dev * np.sin(2 * np.pi * rate * _t(n) + rng.uniform(0, 2 * np.pi))
    return _sweep(freq) + 0.3 * _sweep(2 * freq)


def _white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _click_train(rng: np.random.Generator, n: int) -> np.ndarray:
    rate = rng.uniform(4, 25)
    starts = np.arange(rng.uniform(0, 0.1), n / SR - 0.01, 1 / rate)
    k = int(0.003 * SR)
    return _place(n, starts, lambda: rng.standard_normal(k) * np.exp(-np.arange(k) / (0.0006 * SR)))


def _chirp(rng: np.random.Generator, n: int) -> np.ndarray:
    length, gap = rng.uniform(0.05, 0.15), rng.uniform(0.1, 0.35)
    f0, ratio = rng.uniform(1500, 3000), rng.uniform(1.5, 2.5)
    m = int(length * SR)
    piece = _ramp(_sweep(f0 * ratio ** (np.arange(m) / m)), 0.01)
    return _place(n, np.arange(rng.uniform(0, 0.2), n / SR - length, length + gap), lambda: piece)


def _hum(rng: np.random.Generator, n: int) -> np.ndarray:
    f0, t = rng.uniform(50, 120), _t(n)
    x = sum(k**-1.2 * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 11))
    return x * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))


def _knock(rng: np.random.Generator, n: int) -> np.ndarray:
    count, spacing = int(rng.integers(2, 6)), rng.uniform(0.15, 0.45)
    m = int(0.25 * SR)

    def one() -> np.ndarray:
        t = np.arange(m) / SR
        body = np.sin(2 * np.pi * rng.uniform(80, 250) * t) * np.exp(-t / rng.uniform(0.02, 0.06))
        return body + 0.3 * rng.standard_normal(m) * np.exp(-t / 0.004)

    first = rng.uniform(0.05, max(0.06, n / SR - count * spacing - 0.1))
    return _place(n, [first + i * spacing for i in range(count)], one)


def _whistle(rng: np.random.Generator, n: int) -> np.ndarray:
    f, t = rng.uniform(1500, 3500), _t(n)
    freq = f * (1 + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
    return _ramp(_sweep(freq), 0.05) + 0.02 * rng.standard_normal(n)


SEC_CLASSES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "beep": _beep,
    "siren": _siren,
    "white noise": _white_noise,
    "click train": _click_train,
    "chirp": _chirp,
    "hum": _hum,
    "knock": _knock,
    "whistle": _whistle,
}

# ---------------------------------------------------------------------------------------------------------------
# Musical notes (numpy): additive synthesis per instrument, sonic qualities as transforms.
# ---------------------------------------------------------------------------------------------------------------
INSTRUMENTS: dict[str, tuple[int, int]] = {  # name -> MIDI pitch range (inclusive)
    "keyboard": (48, 84),
    "organ": (48, 84),
    "flute": (60, 84),
    "string": (48, 79),
    "bass": (36, 55),
}
VELOCITIES: tuple[int, ...] = (25, 50, 75, 100, 127)
SONIC_QUALITIES: tuple[str, ...] = ("bright", "dark", "distortion", "fast_decay", "percussive", "reverb")
_MAX_HARMONIC_HZ = 7000.0  # below Nyquist (8 kHz): no aliasing


def velocity_gain(velocity: int) -> float:
    """Peak amplitude of a note: 36 dB between velocity 0 and 127 (127 -> 0.9, 25 -> 0.032)."""
    return 0.9 * 10 ** (-36 * (1 - velocity / 127) / 20)


def _harmonic_amps(instrument: str, count: int) -> np.ndarray:
    k = np.arange(1, count + 1, dtype=float)
    if instrument == "organ":
        return np.where(k % 2 == 1, 1 / k, 0.05 / k)
    if instrument == "flute":
        return np.where(k == 1, 1.0, np.where(k <= 3, 0.15 / k, 0.0))
    if instrument == "bass":
        return np.where(k % 2 == 1, 1 / k, 0.2 / k) * np.exp(-k / 8)
    return 1 / k  # keyboard (then decays per harmonic), string (sawtooth)


def synth_note(
    rng: np.random.Generator, instrument: str, pitch: int, velocity: int, sonic: Sequence[str], n: int
) -> np.ndarray:
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    t = _t(n)
    count = max(1, int(_MAX_HARMONIC_HZ // f0))
    amps = _harmonic_amps(instrument, count)
    k = np.arange(1, count + 1, dtype=float)
    if "bright" in sonic:
        amps = amps * k**0.8
    if "dark" in sonic:
        amps = amps * np.exp(-(k - 1) / 1.5)
    vib = np.zeros(n)
    if instrument in ("string", "flute"):
        depth = 0.006 if instrument == "string" else 0.004
        vib = depth * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t) * np.clip(t / 0.3, 0, 1)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + vib)) / SR
    x = np.zeros(n)
    for h, a in zip(k, amps):
        if a == 0:
            continue
        partial = a * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        if instrument == "keyboard":
            partial *= np.exp(-t * (1.2 + 0.6 * h))
        elif instrument == "bass":
            partial *= np.exp(-t * (0.8 + 0.3 * h))
        x += partial
    if instrument == "flute":  # breath noise, high-passed by a first difference
        x += 0.08 * np.diff(rng.standard_normal(n + 1)) * np.max(np.abs(x))
    attack = {"keyboard": 0.003, "organ": 0.02, "flute": 0.08, "string": 0.15, "bass": 0.005}[instrument]
    env = np.clip(t / attack, 0, 1) * np.clip((n / SR - t) / 0.05, 0, 1)  # attack, 50-ms release
    x = x * env
    if "fast_decay" in sonic:
        x *= np.exp(-t / 0.12)
    if "percussive" in sonic:  # a sharp noisy transient at the onset
        m = int(0.03 * SR)
        x[:m] += 2.0 * np.max(np.abs(x)) * rng.standard_normal(m) * np.exp(-np.arange(m) / (0.006 * SR))
    x /= max(np.max(np.abs(x)), 1e-9)
    if "distortion" in sonic:
        g = rng.uniform(4, 8)
        x = np.tanh(g * x) / np.tanh(g)
    if "reverb" in sonic:
        m = int(rng.uniform(0.4, 0.8) * SR)
        ir = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.15 * SR))
        size = 1 << (n + m - 1).bit_length()  # FFT convolution: np.convolve is O(n * m), seconds per note
        wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[:n]
        x = x + 0.5 * wet / max(np.max(np.abs(wet)), 1e-9)
        x /= max(np.max(np.abs(x)), 1e-9)
    return x * velocity_gain(velocity)


# ---------------------------------------------------------------------------------------------------------------
# The full preset: the content of the tasks beyond the first five. Every label below is a function of what is
# generated; where a label is a synthetic convention (voices -> gender / age / emotion, recipes -> genre), the
# mapping is written here and in the module docstring.
# ---------------------------------------------------------------------------------------------------------------

# S2TT: one parallel lexicon, the same meaning written in the 8 languages. A meaning is (subject, verb, object,
# adverb); each language orders the parts its own way. German nouns are capitalised and every sentence starts
# with a capital and ends with a full stop: S2TT targets are written form (the task's prompt says <|itn|>).
# Objects are inanimate (no Spanish personal "a"), articles are spelled out per noun, Japanese is kana
# (espeak reads kanji as "Chinese letter") and is written without spaces.
PARALLEL_SUBJECTS: tuple[dict[str, str], ...] = (
    {
        "en": "the cat",
        "de": "die Katze",
        "es": "el gato",
        "fr": "le chat",
        "it": "il gatto",
        "zh": "小猫",
        "ja": "ねこは",
        "ko": "고양이는",
    },
    {
        "en": "the dog",
        "de": "der Hund",
        "es": "el perro",
        "fr": "le chien",
        "it": "il cane",
        "zh": "小狗",
        "ja": "いぬは",
        "ko": "강아지는",
    },
    {
        "en": "the boy",
        "de": "der Junge",
        "es": "el niño",
        "fr": "le garçon",
        "it": "il ragazzo",
        "zh": "男孩",
        "ja": "おとこのこは",
        "ko": "소년은",
    },
    {
        "en": "the teacher",
        "de": "der Lehrer",
        "es": "el maestro",
        "fr": "le professeur",
        "it": "il maestro",
        "zh": "老师",
        "ja": "せんせいは",
        "ko": "선생님은",
    },
    {
        "en": "the doctor",
        "de": "der Arzt",
        "es": "el médico",
        "fr": "le médecin",
        "it": "il dottore",
        "zh": "医生",
        "ja": "いしゃは",
        "ko": "의사는",
    },
    {
        "en": "the farmer",
        "de": "der Bauer",
        "es": "el granjero",
        "fr": "le fermier",
        "it": "il contadino",
        "zh": "农民",
        "ja": "のうふは",
        "ko": "농부는",
    },
)
PARALLEL_VERBS: tuple[dict[str, str], ...] = (
    {"en": "sees", "de": "sieht", "es": "ve", "fr": "voit", "it": "vede", "zh": "看见", "ja": "みます", "ko": "봐요"},
    {
        "en": "finds",
        "de": "findet",
        "es": "encuentra",
        "fr": "trouve",
        "it": "trova",
        "zh": "找到",
        "ja": "みつけます",
        "ko": "찾아요",
    },
    {
        "en": "buys",
        "de": "kauft",
        "es": "compra",
        "fr": "achète",
        "it": "compra",
        "zh": "买",
        "ja": "かいます",
        "ko": "사요",
    },
    {
        "en": "draws",
        "de": "malt",
        "es": "dibuja",
        "fr": "dessine",
        "it": "disegna",
        "zh": "画",
        "ja": "かきます",
        "ko": "그려요",
    },
)
PARALLEL_OBJECTS: tuple[dict[str, str], ...] = (
    {
        "en": "the ball",
        "de": "den Ball",
        "es": "el balón",
        "fr": "le ballon",
        "it": "il pallone",
        "zh": "球",
        "ja": "ボールを",
        "ko": "공을",
    },
    {
        "en": "the book",
        "de": "das Buch",
        "es": "el libro",
        "fr": "le livre",
        "it": "il libro",
        "zh": "书",
        "ja": "ほんを",
        "ko": "책을",
    },
    {
        "en": "the bread",
        "de": "das Brot",
        "es": "el pan",
        "fr": "le pain",
        "it": "il pane",
        "zh": "面包",
        "ja": "パンを",
        "ko": "빵을",
    },
    {
        "en": "the hat",
        "de": "den Hut",
        "es": "el sombrero",
        "fr": "le chapeau",
        "it": "il cappello",
        "zh": "帽子",
        "ja": "ぼうしを",
        "ko": "모자를",
    },
    {
        "en": "the fish",
        "de": "den Fisch",
        "es": "el pescado",
        "fr": "le poisson",
        "it": "il pesce",
        "zh": "鱼",
        "ja": "さかなを",
        "ko": "생선을",
    },
    {
        "en": "the cake",
        "de": "den Kuchen",
        "es": "el pastel",
        "fr": "le gâteau",
        "it": "il dolce",
        "zh": "蛋糕",
        "ja": "ケーキを",
        "ko": "케이크를",
    },
    {
        "en": "the car",
        "de": "das Auto",
        "es": "el coche",
        "fr": "la voiture",
        "it": "la macchina",
        "zh": "汽车",
        "ja": "くるまを",
        "ko": "차를",
    },
    {
        "en": "the flower",
        "de": "die Blume",
        "es": "la flor",
        "fr": "la fleur",
        "it": "il fiore",
        "zh": "花",
        "ja": "はなを",
        "ko": "꽃을",
    },
)
PARALLEL_ADVERBS: tuple[dict[str, str] | None, ...] = (
    None,
    {
        "en": "every day",
        "de": "jeden Tag",
        "es": "cada día",
        "fr": "chaque jour",
        "it": "ogni giorno",
        "zh": "每天",
        "ja": "まいにち",
        "ko": "매일",
    },
    {
        "en": "again",
        "de": "wieder",
        "es": "otra vez",
        "fr": "encore",
        "it": "di nuovo",
        "zh": "又",
        "ja": "また",
        "ko": "또",
    },
)
# Word order per language: S subject, V verb, O object, T adverb.
_PARALLEL_ORDER = {
    "en": "SVOT",
    "de": "SVOT",
    "es": "SVOT",
    "fr": "SVOT",
    "it": "SVOT",
    "zh": "STVO",
    "ja": "STOV",
    "ko": "STOV",
}
ALL_LANGUAGES: tuple[str, ...] = LID_LANGUAGES  # the 8 release languages
# CoVoST2-like directions: English into each language and each language into English.
S2TT_DIRECTIONS: tuple[tuple[str, str], ...] = tuple(("en", x) for x in ALL_LANGUAGES if x != "en") + tuple(
    (x, "en") for x in ALL_LANGUAGES if x != "en"
)


def parallel_sentence(meaning: Sequence[int], language: str, spoken: bool = False) -> str:
    """The sentence of `meaning` (subject, verb, object, adverb indices) in `language`: written form (capital
    first letter, full stop; Japanese without spaces), or with `spoken` the form of the other grammars (lower
    case, no punctuation, Japanese chunks separated by spaces), which is also what espeak reads."""
    s, v, o, t = meaning
    parts = {
        "S": PARALLEL_SUBJECTS[s][language],
        "V": PARALLEL_VERBS[v][language],
        "O": PARALLEL_OBJECTS[o][language],
        "T": (PARALLEL_ADVERBS[t] or {}).get(language, ""),
    }
    words = [parts[k] for k in _PARALLEL_ORDER[language] if parts[k]]
    if spoken:
        return GRAMMARS[language].joiner.join(w.lower() for w in words)
    text = "".join(words) if language in ("zh", "ja") else " ".join(words)
    return text[:1].upper() + text[1:] + GRAMMARS[language].full_stop


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

# KS: the 10 core words of Speech Commands in English, the digits zero..nine in the other languages (Japanese
# in kana, Korean Sino-Korean numerals).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "en": _words("yes,no,up,down,left,right,on,off,stop,go"),
    "de": _words("null,eins,zwei,drei,vier,fünf,sechs,sieben,acht,neun"),
    "es": _words("cero,uno,dos,tres,cuatro,cinco,seis,siete,ocho,nueve"),
    "fr": _words("zéro,un,deux,trois,quatre,cinq,six,sept,huit,neuf"),
    "it": _words("zero,uno,due,tre,quattro,cinque,sei,sette,otto,nove"),
    "zh": _words("零,一,二,三,四,五,六,七,八,九"),
    "ja": _words("ぜろ,いち,に,さん,よん,ご,ろく,なな,はち,きゅう"),
    "ko": _words("영,일,이,삼,사,오,육,칠,팔,구"),
}

# IC / SF: templated English voice commands (SLURP-like intent names and slot types). A slot filler is
# (spoken words, slot value); the value is what the slot holds ("on monday" -> date: monday).
_HOURS = _words("one,two,three,four,five,six,seven,eight,nine,ten,eleven,twelve")
SLOT_FILLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "time": tuple((x, x) for h in _HOURS for x in (f"{h} am", f"{h} pm", f"{h} thirty", f"half past {h}"))
    + (("noon", "noon"), ("midnight", "midnight")),
    "date": (("today", "today"), ("tomorrow", "tomorrow"))
    + tuple((f"on {d}", d) for d in _words("monday,tuesday,wednesday,thursday,friday,saturday,sunday")),
    "place_name": tuple(
        (c, c)
        for c in _words(
            "london,paris,berlin,madrid,rome,tokyo,seoul,beijing,boston,"
            "chicago,sydney,toronto,vienna,lisbon,dublin,oslo"
        )
    ),
    "person": tuple(
        (p, p)
        for p in _words("john,mary,peter,anna,david,sarah,james,emma,robert,linda,michael,susan,paul,karen,mark,laura")
    ),
    "house_place": tuple((h, h) for h in _words("kitchen,bedroom,living room,bathroom,hallway,garage,office")),
    "music_genre": tuple((g, g) for g in _words("jazz,rock,classical,pop,blues,country,folk")),
    "food_type": tuple((f, f) for f in _words("pizza,sushi,noodles,curry,salad,tacos,soup")),
}
COMMANDS: tuple[tuple[str, str], ...] = (  # (intent, template)
    ("alarm_set", "set an alarm for {time}"),
    ("alarm_set", "wake me up at {time} {date}"),
    ("alarm_remove", "cancel the alarm for {time}"),
    ("weather_query", "what is the weather in {place_name} {date}"),
    ("weather_query", "will it rain in {place_name} {date}"),
    ("play_music", "play some {music_genre} music"),
    ("play_music", "play {music_genre} in the {house_place}"),
    ("iot_hue_lighton", "turn on the lights in the {house_place}"),
    ("iot_hue_lightoff", "turn off the lights in the {house_place}"),
    ("calendar_set", "remind me to call {person} at {time} {date}"),
    ("email_sendemail", "send an email to {person}"),
    ("transport_taxi", "book a taxi to {place_name} at {time}"),
    ("takeaway_order", "order {food_type} for {time}"),
    ("datetime_query", "what time is it in {place_name}"),
    ("audio_volume_up", "turn the volume up in the {house_place}"),
    ("audio_volume_up", "make the music louder in the {house_place}"),
    ("audio_volume_down", "turn the volume down in the {house_place}"),
    ("audio_volume_down", "make the music quieter in the {house_place}"),
)  # every template has a slot: a command is owned by one split, so a slotless one would be missing from the others
# SER: sentences with named entities (person: first and last name, city, date: a weekday).
_FIRST = _words("john,mary,peter,anna,david,sarah,james,emma,robert,linda")
_LAST = _words("smith,jones,brown,miller,wilson,taylor,clark,walker,hall,white")
ENTITY_FILLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": tuple((f"{a} {b}", f"{a} {b}") for a in _FIRST for b in _LAST),
    "city": SLOT_FILLERS["place_name"],
    "date": tuple((d, d) for d in _words("monday,tuesday,wednesday,thursday,friday,saturday,sunday")),
}
ENTITY_TEMPLATES: tuple[str, ...] = (
    "{person} flew to {city} on {date}",
    "{person} met {person} in {city}",
    "{person} lives in {city}",
    "call {person} in {city}",
    "{person} will visit {city} on {date}",
    "the meeting with {person} in {city} is on {date}",
    "{person} and {person} arrive in {city} on {date}",
)


def fill_template(
    template: str, fillers: dict[str, tuple[tuple[str, str], ...]], rng: np.random.Generator
) -> tuple[str, list[dict[str, str]]] | None:
    """(transcript, [{type, value}] in order of appearance) of a template with each {slot} drawn from `fillers`;
    None when a value would not be found where it stands by the entity formatter's left-to-right search (e.g. a
    person drawn twice, or a value inside an earlier word)."""
    out, slots, pos = [], [], 0
    for i, piece in enumerate(template.replace("}", "{").split("{")):
        if i % 2 == 0:
            out.append(piece)
            continue
        spoken, value = fillers[piece][int(rng.integers(len(fillers[piece])))]
        start = len("".join(out)) + spoken.index(value)
        slots.append((piece, value, start))
        out.append(spoken)
    text = "".join(out)
    for _slot_type, value, start in slots:
        found = text.lower().find(value.lower(), pos)
        if found != start:
            return None
        pos = start + len(value)
    return text, [{"type": t, "value": v} for t, v, _ in slots]


# Sound scenes (SED, AAC, AQA) from the SEC sounds. Continuous sounds fill their whole span (a scene's "while"
# background); AQA counts single units of three sounds (one beep tone, one knock, one chirp).
CONTINUOUS_SOUNDS: tuple[str, ...] = ("siren", "white noise", "hum", "whistle")
CAPTION_PHRASES: dict[str, str] = {
    "beep": "a device beeps",
    "siren": "a siren wails",
    "white noise": "static hisses",
    "click train": "something clicks rapidly",
    "chirp": "something chirps",
    "hum": "a low hum drones",
    "knock": "someone knocks",
    "whistle": "a whistle blows",
}
SOUND_NAMES: dict[str, str] = {  # the label with its article, as a question names it
    "beep": "a beep",
    "siren": "a siren",
    "white noise": "white noise",
    "click train": "a click train",
    "chirp": "a chirp",
    "hum": "a hum",
    "knock": "a knock",
    "whistle": "a whistle",
}
COUNT_UNITS: tuple[str, ...] = ("beep", "knock", "chirp")
NUMBER_WORDS: tuple[str, ...] = _words("zero,one,two,three,four,five,six,seven,eight,nine,ten")
AQA_KINDS: tuple[str, ...] = ("exists", "count", "first", "last", "before", "n_sounds")


def _unit(label: str, rng: np.random.Generator) -> np.ndarray:
    """One countable unit of a sound: a single beep tone, a single knock or a single chirp."""
    if label == "beep":
        return _ramp(np.sin(2 * np.pi * rng.uniform(500, 2000) * _t(int(rng.uniform(0.12, 0.3) * SR))))
    if label == "knock":
        m = int(0.25 * SR)
        t = np.arange(m) / SR
        body = np.sin(2 * np.pi * rng.uniform(80, 250) * t) * np.exp(-t / rng.uniform(0.02, 0.06))
        return body + 0.3 * rng.standard_normal(m) * np.exp(-t / 0.004)
    m = int(rng.uniform(0.05, 0.15) * SR)
    return _ramp(_sweep(rng.uniform(1500, 3000) * rng.uniform(1.5, 2.5) ** (np.arange(m) / m)), 0.01)


def active_span(x: np.ndarray, threshold_db: float = -40.0) -> tuple[float, float]:
    """(start, end) in seconds of the part of `x` louder than `threshold_db` below its loudest 10-ms frame."""
    hop = SR // 100
    n = max(1, -(-len(x) // hop))
    frames = np.pad(x, (0, n * hop - len(x))).reshape(n, hop)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (threshold_db / 20))[0]
    if len(loud) == 0:
        return 0.0, len(x) / SR
    return float(loud[0] * hop / SR), float(min(len(x), (loud[-1] + 1) * hop) / SR)


# Music (MIC, MGR, MC, MQA, SMER): short pieces from recipes. A recipe fixes the genre-like pattern (meter,
# tempo range, accompaniment, bass and drum patterns), the key (root, major/minor), a chord progression and the
# instruments of each role (melody, chords, bass line, drums). Labels are read from the recipe:
# * MIC: the instruments sounding (the MNA instrument names plus "drums"), in INSTRUMENT_ORDER;
# * MGR: the pattern's name, a "genre-like" class of ours (march, waltz, techno, ballad, chorale, reggae);
# * MC: a caption built from the recipe (tempo word, genre, mode, instruments by role);
# * MQA: questions whose answers are fields of the recipe;
# * SMER (synthetic convention, valence from mode, arousal from tempo and dynamics): happy = major + fast +
#   loud, tense = minor + fast + loud, calm = major + slow + soft, sad = minor + slow + soft.
INSTRUMENT_ORDER: tuple[str, ...] = ("keyboard", "organ", "flute", "string", "bass", "drums")
SCALES: dict[str, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {  # scale degrees (0 = tonic), one chord per bar
    "major": ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3)),
    "minor": ((0, 3, 4, 0), (0, 5, 6, 0), (0, 6, 5, 4)),
}
GENRES: dict[str, dict[str, Any]] = {
    "march": {
        "noun": "march",
        "meter": 4,
        "bpm": (96, 132),
        "melody": ("flute", "string", "keyboard"),
        "harmony": ("keyboard", "organ"),
        "comp": "block",
        "bass": "root_fifth",
        "drums": "march",
        "rhythms": ((1, 1, 1, 1), (0.5, 0.5, 1, 1, 1), (1, 0.5, 0.5, 1, 1), (2, 1, 1)),
    },
    "waltz": {
        "noun": "waltz",
        "meter": 3,
        "bpm": (120, 176),
        "melody": ("string", "flute", "keyboard"),
        "harmony": ("keyboard", "string", "organ"),
        "comp": "oompah",
        "bass": "downbeat",
        "drums": None,
        "rhythms": ((2, 1), (3,), (1, 1, 1), (1, 2)),
    },
    "techno": {
        "noun": "techno track",
        "meter": 4,
        "bpm": (120, 140),
        "melody": ("keyboard", "organ"),
        "harmony": ("organ", "string"),
        "comp": "stab",
        "bass": "eighths",
        "drums": "four_floor",
        "rhythms": ((0.25,) * 16,),
    },
    "ballad": {
        "noun": "ballad",
        "meter": 4,
        "bpm": (56, 84),
        "melody": ("flute", "string"),
        "harmony": ("keyboard",),
        "comp": "arpeggio",
        "bass": "whole",
        "drums": None,
        "rhythms": ((2, 2), (1, 1, 2), (3, 1), (4,)),
    },
    "chorale": {
        "noun": "chorale",
        "meter": 4,
        "bpm": (52, 88),
        "melody": (),
        "harmony": ("organ", "string"),
        "comp": "chorale",
        "bass": None,
        "drums": None,
        "rhythms": (),
    },
    "reggae": {
        "noun": "reggae song",
        "meter": 4,
        "bpm": (66, 96),
        "melody": ("keyboard", "flute", "organ"),
        "harmony": ("keyboard", "organ"),
        "comp": "skank",
        "bass": "reggae",
        "drums": "one_drop",
        "rhythms": ((1, 1, 1, 1), (1.5, 0.5, 2), (0.5, 0.5, 1, 2)),
    },
}
MUSIC_EMOTIONS: dict[str, dict[str, Any]] = {
    "happy": {"mode": "major", "bpm": (120, 150), "velocity": (95, 120)},
    "tense": {"mode": "minor", "bpm": (120, 150), "velocity": (95, 120)},
    "calm": {"mode": "major", "bpm": (56, 76), "velocity": (40, 65)},
    "sad": {"mode": "minor", "bpm": (56, 76), "velocity": (40, 65)},
}
MQA_QUESTIONS: dict[str, str] = {
    "mode": "is this music in a major or a minor key?",
    "melody": "which instrument plays the melody?",
    "drums": "are there drums?",
    "bass": "is there a bass line?",
    "meter": "how many beats are there in each bar?",
    "tempo": "is the tempo slow, moderate or fast?",
    "count": "how many instruments can be heard?",
}


def tempo_word(bpm: float) -> str:
    return "slow" if bpm < 80 else "moderate" if bpm < 116 else "fast"


def music_labels(recipe: dict[str, Any]) -> list[str]:
    """The instruments sounding in a recipe, in INSTRUMENT_ORDER (MIC's labels)."""
    present = {
        recipe["melody"],
        recipe["harmony"],
        "bass" if recipe["bass"] else None,
        "drums" if recipe["drums"] else None,
    }
    return [x for x in INSTRUMENT_ORDER if x in present]


def _join_and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def music_caption(recipe: dict[str, Any]) -> str:
    """MC's caption of a recipe, e.g. 'a fast march in a major key with a flute melody, keyboard chords, a bass
    line and drums'."""
    parts = []
    if recipe["melody"]:
        parts.append(f"a {recipe['melody']} melody")
    if recipe["harmony"]:
        parts.append(f"{recipe['harmony']} chords")
    if recipe["bass"]:
        parts.append("a bass line")
    if recipe["drums"]:
        parts.append("drums")
    noun = GENRES[recipe["genre"]]["noun"]
    return f"a {tempo_word(recipe['bpm'])} {noun} in a {recipe['mode']} key with {_join_and(parts)}"


def music_answer(recipe: dict[str, Any], kind: str) -> str:
    """The answer to MQA question `kind` (a key of MQA_QUESTIONS) about a recipe."""
    if kind == "mode":
        return recipe["mode"]
    if kind == "melody":
        return recipe["melody"]
    if kind in ("drums", "bass"):
        return "yes" if recipe[kind] else "no"
    if kind == "meter":
        return NUMBER_WORDS[GENRES[recipe["genre"]]["meter"]]
    if kind == "tempo":
        return tempo_word(recipe["bpm"])
    return NUMBER_WORDS[len(music_labels(recipe))]


_WAVETABLE_SIZE = 2048


@functools.lru_cache(maxsize=1024)
def _wavetable(instrument: str, pitch: int, dark: bool) -> np.ndarray:
    """One period of a note's waveform: the MNA instrument's harmonic amplitudes (dark: upper ones damped)."""
    count = max(1, int(_MAX_HARMONIC_HZ // (440.0 * 2 ** ((pitch - 69) / 12))))
    amps = _harmonic_amps(instrument, count)
    k = np.arange(1, count + 1, dtype=float)
    if dark:
        amps = amps * np.exp(-(k - 1) / 1.5)
    table = np.sin(np.outer(2 * np.pi * np.arange(_WAVETABLE_SIZE) / _WAVETABLE_SIZE, k)) @ amps
    return table / max(float(np.max(np.abs(table))), 1e-9)


def fast_note(rng: np.random.Generator, instrument: str, pitch: int, n: int) -> np.ndarray:
    """A note of `n` samples, peak ~1, for the music pieces: the MNA timbres from wavetables (keyboard and bass
    darken as they decay), vibrato for string and flute, breath noise for flute. ~20x faster than synth_note."""
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    t = _t(n)
    vib = 0.0
    if instrument in ("string", "flute"):
        vib = (0.006 if instrument == "string" else 0.004) * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t)
    pos = ((rng.uniform(0, 1) + np.cumsum(f0 * (1 + vib)) / SR) % 1.0) * _WAVETABLE_SIZE
    i0 = pos.astype(np.int64) % _WAVETABLE_SIZE
    frac = pos - np.floor(pos)
    i1 = (i0 + 1) % _WAVETABLE_SIZE

    def look(table: np.ndarray) -> np.ndarray:
        return table[i0] + (table[i1] - table[i0]) * frac

    x = look(_wavetable(instrument, pitch, False))
    if instrument in ("keyboard", "bass"):
        w = np.exp(-t * (4.0 if instrument == "keyboard" else 2.5))
        x = w * x + (1 - w) * look(_wavetable(instrument, pitch, True))
        x = x * np.exp(-t * (1.5 if instrument == "keyboard" else 1.0))
    elif instrument == "flute":
        x = x + 0.05 * np.diff(rng.standard_normal(n + 1))
    attack = {"keyboard": 0.003, "organ": 0.01, "flute": 0.04, "string": 0.06, "bass": 0.005}[instrument]
    release = min(0.03, n / SR / 3)
    return x * np.clip(t / attack, 0, 1) * np.clip((n / SR - t) / release, 0, 1)


def _drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "kick":
        t = _t(int(0.25 * SR))
        return _sweep(45 + 100 * np.exp(-t / 0.03)) * np.exp(-t / 0.09)
    if kind == "snare":
        t = _t(int(0.18 * SR))
        return 0.7 * np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.05) + 0.5 * np.sin(
            2 * np.pi * 190 * t
        ) * np.exp(-t / 0.04)
    t = _t(int(0.05 * SR))  # hat
    return 0.5 * np.diff(rng.standard_normal(len(t) + 2), 2) * np.exp(-t / 0.012)


_DRUM_PATTERNS: dict[str, tuple[tuple[str, float], ...]] = {  # (drum, beat position) in a 4-beat bar
    "march": (("kick", 0), ("kick", 2), ("snare", 0), ("snare", 1), ("snare", 2), ("snare", 3), ("snare", 3.5)),
    "four_floor": tuple(("kick", b) for b in range(4))
    + (("snare", 1), ("snare", 3))
    + tuple(("hat", b + 0.5) for b in range(4)),
    "one_drop": (("kick", 2), ("snare", 2)) + tuple(("hat", b / 2) for b in range(8)),
}


def synth_music(rng: np.random.Generator, recipe: dict[str, Any]) -> np.ndarray:
    """The piece of a recipe (see plan: genre, bpm, mode, root, progression, bars, velocity and the
    instruments of each role); the note choices of the melody are drawn from `rng`."""
    g = GENRES[recipe["genre"]]
    meter, beat = g["meter"], 60.0 / recipe["bpm"]
    scale, tonic = SCALES[recipe["mode"]], 48 + recipe["root"]
    progression = PROGRESSIONS[recipe["mode"]][recipe["progression"]]
    n = int((recipe["bars"] * meter * beat + 0.5) * SR)
    out = np.zeros(n)

    def pitch_of(degree: int, octave: int) -> int:
        return tonic + 12 * (degree // 7 + octave) + scale[degree % 7]

    def fit(instrument: str, p: int) -> int:
        lo, hi = INSTRUMENTS[instrument]
        while p < lo:
            p += 12
        while p > hi:
            p -= 12
        return p

    def add(instrument: str, p: int, at_beat: float, beats: float, amp: float) -> None:
        i, m = int(at_beat * beat * SR), max(int(beats * beat * SR), int(0.03 * SR))
        x = fast_note(rng, instrument, fit(instrument, p), m)[: max(0, n - i)]
        out[i : i + len(x)] += amp * x

    mel_degree = 7 * 2  # the melody's current scale degree, two octaves above the tonic
    for bar in range(recipe["bars"]):
        chord = progression[bar % len(progression)]
        b0 = bar * meter
        triad = [pitch_of(chord + k, 1) for k in (0, 2, 4)]
        harm = recipe["harmony"]
        if harm:
            comp = g["comp"]
            if comp == "block":
                hits = [(b0 + b, 0.8) for b in range(meter)]
            elif comp == "oompah":
                hits = [(b0 + b, 0.6) for b in range(1, meter)]
            elif comp in ("stab", "skank"):
                hits = [(b0 + b + 0.5, 0.25) for b in range(meter)]
            elif comp == "chorale":
                hits = [(b0 + b, 1.0) for b in range(meter)]
            else:  # arpeggio: eighths through the chord and its octave
                hits = []
                for k in range(meter * 2):
                    add(harm, (triad + [triad[0] + 12])[k % 4], b0 + k / 2, 1.0, 0.3)
            for at, dur in hits:
                for p in triad:
                    add(harm, p, at, dur, 0.2)
                if comp == "chorale":
                    add(harm, pitch_of(chord, 0), at, dur, 0.25)  # the bass voice of the chorale
        if recipe["bass"]:
            root, fifth = pitch_of(chord, -1), pitch_of(chord + 4, -1)
            style = g["bass"]
            notes = {
                "root_fifth": [(0, root, 0.9), (2, fifth, 0.9)],
                "downbeat": [(0, root, 0.9)],
                "eighths": [(k / 2, root, 0.4) for k in range(meter * 2)],
                "whole": [(0, root, meter)],
                "reggae": [(0, root, 1.4), (1.5, fifth, 0.9), (2.5, root + 12, 0.4), (3, root, 0.9)],
            }[style]
            for at, p, dur in notes:
                add("bass", p, b0 + at, dur, 0.45)
        if recipe["drums"]:
            for kind, at in _DRUM_PATTERNS[g["drums"]]:
                d = _drum(kind, rng)
                i = int((b0 + at) * beat * SR)
                d = d[: max(0, n - i)]
                out[i : i + len(d)] += {"kick": 0.6, "snare": 0.35, "hat": 0.2}[kind] * d
        if recipe["melody"]:
            rhythm = g["rhythms"][int(rng.integers(len(g["rhythms"])))]
            at = 0.0
            for k, dur in enumerate(rhythm):
                if k == 0 or at == int(at) and rng.random() < 0.5:  # strong beats: a chord tone near the last note
                    tones = [chord + 7 * 2 + d for d in (0, 2, 4, -3, -5, 7)]
                    mel_degree = min(tones, key=lambda d: abs(d - mel_degree))
                else:
                    mel_degree += int(rng.choice([-2, -1, 1, 2]))
                mel_degree = int(np.clip(mel_degree, 7, 7 * 3))
                if k == 0 or rng.random() > 0.12:  # a few rests
                    add(recipe["melody"], pitch_of(mel_degree, 0), b0 + at, dur * 0.95, 0.5)
                at += dur
    peak = max(float(np.max(np.abs(out))), 1e-9)
    return out / peak * (0.2 + 0.7 * recipe["velocity"] / 127)


# ---------------------------------------------------------------------------------------------------------------
# Planning (cheap, in the main process) and rendering (in workers)
# ---------------------------------------------------------------------------------------------------------------
_PLAN, _RENDER = 1, 2  # purpose tags of the seed streams


def _rng(seed: int, purpose: int, split: str, task: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, SPLITS.index(split), FULL_TASKS.index(task), index])


@dataclass(frozen=True)
class Job:
    """Everything needed to render one sample, independent of every other sample."""

    key: str
    task: str
    split: str
    index: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)


def _novel_sentence(grammar: Grammar, rng: np.random.Generator, short: bool, taken: set[tuple[str, str]]) -> str:
    for _ in range(2000):
        s = grammar.sentence(rng, short)
        if (grammar.language, s) not in taken:
            taken.add((grammar.language, s))
            return s
    raise RuntimeError(f"grammar {grammar.language!r} ran out of new sentences; ask for fewer samples or add words")


def plan_split(
    split: str,
    n: int,
    seed: int,
    taken: set[tuple[str, str]],
    asr_languages: Sequence[str] = ASR_LANGUAGES,
    tasks: Sequence[str] = TASKS,
) -> list[Job]:
    """The jobs of one split for the first five tasks (those of `tasks` among TASKS), `n` per task, task by
    task. `taken` holds the sentences of earlier splits (and receives this split's): a sentence is used once in
    the whole corpus."""
    jobs: list[Job] = []
    for task in (t for t in TASKS if t in tasks):
        rng = _rng(seed, _PLAN, split, task)
        for i in range(n):
            params: dict[str, Any] = {}
            if task in ("asr", "srwt", "lid"):
                langs = {"asr": tuple(asr_languages), "srwt": SRWT_LANGUAGES, "lid": LID_LANGUAGES}[task]
                lang = langs[i % len(langs)]
                params = {
                    "language": lang,
                    "text": _novel_sentence(GRAMMARS[lang], rng, short=(task == "lid"), taken=taken),
                }
                key = f"{task}-{lang}-{split}-{i:06d}"
            elif task == "sec":
                params = {"label": list(SEC_CLASSES)[i % len(SEC_CLASSES)]}
                key = f"{task}-{split}-{i:06d}"
            else:
                instrument = list(INSTRUMENTS)[i % len(INSTRUMENTS)]
                lo, hi = INSTRUMENTS[instrument]
                tone = rng.choice(["bright", "dark", ""], p=[0.3, 0.3, 0.4])
                extra = [
                    q
                    for q, p in (("distortion", 0.15), ("fast_decay", 0.2), ("percussive", 0.25), ("reverb", 0.2))
                    if rng.random() < p
                ]
                sonic = sorted(([str(tone)] if tone else []) + extra, key=SONIC_QUALITIES.index)
                params = {
                    "instrument": instrument,
                    "pitch": int(rng.integers(lo, hi + 1)),
                    "velocity": int(VELOCITIES[int(rng.integers(len(VELOCITIES)))]),
                    "sonic": sonic,
                }
                key = f"{task}-{split}-{i:06d}"
            jobs.append(Job(key, task, split, i, seed, params))
    return jobs


def split_of(seed: int, *content: object) -> str:
    """The split that owns a piece of content (a sentence, a speaker, a scene, a recipe...) in the tasks of the
    full preset: 80 % train, 10 % valid, 10 % test, a pure function of the seed and the content. Valid and test
    samples are thereby made of content that training never shows: new sentences and commands, new speakers
    (variant, rate, pitch), new combinations of sounds, new recipes."""
    digest = hashlib.sha256(json.dumps([seed, *content], ensure_ascii=False).encode("utf-8")).digest()
    r = int.from_bytes(digest[:4], "big") % 10
    return "valid" if r == 0 else "test" if r == 1 else "train"


@dataclass
class _Draw:
    """Drawing content for one split of one task of the full preset (in the planning process)."""

    seed: int
    split: str
    rng: np.random.Generator
    legacy: dict[tuple[str, str], str]  # (language, sentence) of the first five tasks -> its split

    def pick(self, draw: Callable[[], Any], content: Callable[[Any], Sequence[object]]) -> Any:
        """Draw until the content belongs to this split (None from `draw`: try again)."""
        for _ in range(20000):
            x = draw()
            if x is not None and split_of(self.seed, *content(x)) == self.split:
                return x
        raise RuntimeError(f"found no content for split {self.split!r}; ask for fewer samples or add words")

    def index(self, n: int) -> int:
        return int(self.rng.integers(n))

    def sentence(self, language: str, short: bool = False, avoid: Sequence[str] = ()) -> str:
        """A grammar sentence of this split; sentences of the first five tasks keep the split they have there."""
        grammar = GRAMMARS[language]
        for _ in range(20000):
            s = grammar.sentence(self.rng, short)
            if (
                s not in avoid
                and self.legacy.get((language, s), split_of(self.seed, "sentence", language, s)) == self.split
            ):
                return s
        raise RuntimeError(f"grammar {language!r} has no sentence left for split {self.split!r}")

    def speaker(
        self,
        language: str,
        variants: Sequence[str] = VARIANTS,
        rate: tuple[int, int] = RATE_RANGE,
        pitch: tuple[int, int] = PITCH_RANGE,
        accent: str | None = None,
        pitch_range: tuple[int, int] | None = None,
        avoid: Sequence[str] = (),
    ) -> Speaker:
        """A speaker of this split: the identity (variant, rate, pitch) decides the split."""
        variants = [v for v in variants if v not in avoid]

        def draw() -> Speaker:
            return Speaker(
                language,
                variants[self.index(len(variants))],
                int(self.rng.integers(rate[0], rate[1] + 1)),
                int(self.rng.integers(pitch[0], pitch[1] + 1)),
                accent,
                None if pitch_range is None else int(self.rng.integers(pitch_range[0], pitch_range[1] + 1)),
            )

        return self.pick(draw, lambda s: ("speaker", s.variant, s.rate_wpm, s.pitch))


def _alternating(rng: np.random.Generator, n_speakers: int, turns: int) -> list[int]:
    """Speaker of each turn: every speaker once first (shuffled), then never the same speaker twice in a row."""
    order = [int(x) for x in rng.permutation(n_speakers)]
    while len(order) < turns:
        order.append(int(rng.choice([s for s in range(n_speakers) if s != order[-1]])))
    return order


def _sequential(
    rng: np.random.Generator,
    labels: Sequence[str],
    dur: tuple[float, float] = (0.8, 2.2),
    gap: tuple[float, float] = (0.3, 0.8),
) -> list[dict[str, Any]]:
    """Events one after the other with gaps: their order is unambiguous."""
    at, events = float(rng.uniform(0.2, 0.8)), []
    for label in labels:
        d = float(rng.uniform(*dur))
        events.append(
            {"label": label, "start": round(at, 3), "dur": round(d, 3), "gain_db": round(float(rng.uniform(-8, 0)), 2)}
        )
        at += d + float(rng.uniform(*gap))
    return events


def _recipe(
    d: _Draw, genre: str | None = None, free: bool = False, emotion: str | None = None, need: Sequence[str] = ()
) -> dict[str, Any]:
    """A music recipe. `free`: each optional role (chords, bass line, drums) present or not at random, so that
    instruments do not follow from the genre. `emotion`: the mode, tempo and dynamics of MUSIC_EMOTIONS.
    `need`: roles that must be present ("melody", "bass")."""
    rng = d.rng
    choices = [g for g in GENRES if all(GENRES[g][r] for r in need)]
    genre = genre or choices[d.index(len(choices))]
    g = GENRES[genre]
    melody = g["melody"][d.index(len(g["melody"]))] if g["melody"] else None
    harmonies = [h for h in g["harmony"] if h != melody]
    harmony: str | None = harmonies[d.index(len(harmonies))]
    bass, drums = bool(g["bass"]), bool(g["drums"])
    if free:
        harmony = harmony if (melody is None or rng.random() < 0.7) else None
        bass = bass and ("bass" in need or rng.random() < 0.7)
        drums = drums and rng.random() < 0.7
    if emotion is not None:
        e = MUSIC_EMOTIONS[emotion]
        mode, bpm, velocity = e["mode"], int(rng.integers(e["bpm"][0], e["bpm"][1] + 1)), e["velocity"]
        velocity = int(rng.integers(velocity[0], velocity[1] + 1))
    else:
        mode = ("major", "minor")[d.index(2)]
        bpm, velocity = int(rng.integers(g["bpm"][0], g["bpm"][1] + 1)), int(rng.integers(70, 111))
    bar_s = g["meter"] * 60.0 / bpm
    bars = int(np.clip(round(float(rng.uniform(5.0, 9.0)) / bar_s), 2, 8))
    return {
        "genre": genre,
        "bpm": bpm,
        "mode": mode,
        "root": d.index(12),
        "progression": d.index(3),
        "bars": bars,
        "velocity": velocity,
        "melody": melody,
        "harmony": harmony,
        "bass": bass,
        "drums": drums,
    }


def _recipe_id(r: dict[str, Any]) -> list[object]:
    """What makes two pieces the same piece (the tempo to 10 bpm), whatever the task: held out between splits."""
    return ["recipe", r["genre"], r["mode"], r["root"], r["progression"], r["bpm"] // 10, music_labels(r)]


def _plan_new(task: str, d: _Draw, i: int) -> dict[str, Any]:
    """The parameters of sample `i` of a task of the full preset: every label-bearing choice is made here."""
    rng = d.rng
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    if task == "s2tt":
        src, tgt = S2TT_DIRECTIONS[i % len(S2TT_DIRECTIONS)]
        sizes = (len(PARALLEL_SUBJECTS), len(PARALLEL_VERBS), len(PARALLEL_OBJECTS), len(PARALLEL_ADVERBS))

        def meaning() -> tuple[int, ...] | None:
            m = tuple(d.index(k) for k in sizes)
            # a sentence that a grammar of the first five tasks also makes keeps that task's split
            clash = any(
                d.legacy.get((x, parallel_sentence(m, x, spoken=True)), d.split) != d.split for x in ALL_LANGUAGES
            )
            return None if clash else m

        m = d.pick(meaning, lambda m: ("parallel", *m))
        return {
            "language": src,
            "target_language": tgt,
            "meaning": list(m),
            "say": parallel_sentence(m, src, spoken=src == "ja"),
            "speaker": d.speaker(src),
        }
    if task == "osr":
        a = d.sentence(lang)
        first = d.speaker(lang)
        return {
            "language": lang,
            "texts": [a, d.sentence(lang, avoid=[a])],
            "speakers": [first, d.speaker(lang, avoid=[first.variant])],
            "delay": round(float(rng.uniform(0.3, 0.7)), 3),
        }
    if task in ("dasr", "did"):
        dialect = list(DIALECTS)[i % len(DIALECTS)]
        lang, accent = DIALECTS[dialect]
        return {
            "language": lang,
            "dialect": dialect,
            "text": d.sentence(lang),
            "speaker": d.speaker(lang, accent=accent),
        }
    if task == "sgc":
        gender = ("male", "female")[(i + i // len(ALL_LANGUAGES)) % 2]
        variants = [v for v in VARIANTS if VARIANT_GENDER[v] == gender]
        return {
            "language": lang,
            "gender": gender,
            "text": d.sentence(lang),
            "speaker": d.speaker(lang, variants=variants),
        }
    if task == "sap":
        group = list(AGE_GROUPS)[i % len(AGE_GROUPS)]
        a = AGE_GROUPS[group]
        return {
            "language": lang,
            "age": group,
            "text": d.sentence(lang),
            "speaker": d.speaker(lang, variants=a["variants"], rate=a["rate"], pitch=a["pitch"]),
        }
    if task == "er":
        emotion = list(EMOTIONS)[i % len(EMOTIONS)]
        e = EMOTIONS[emotion]
        return {
            "language": lang,
            "emotion": emotion,
            "text": d.sentence(lang),
            "speaker": d.speaker(lang, rate=e["rate"], pitch=e["pitch"], pitch_range=e["range"]),
            "level": round(float(rng.uniform(*e["level"])), 3),
        }
    if task == "sv":
        a = d.sentence(lang)
        first = d.speaker(lang)
        same = i % 2 == 0
        return {
            "language": lang,
            "texts": [a, d.sentence(lang, avoid=[a])],
            "speakers": [first, first if same else d.speaker(lang, avoid=[first.variant])],
        }
    if task == "sd":
        n_speakers = 3 if i % 3 == 2 else 2
        speakers: list[Speaker] = []
        for _ in range(n_speakers):
            speakers.append(d.speaker(lang, avoid=[s.variant for s in speakers]))
        turns = _alternating(rng, n_speakers, int(rng.integers(n_speakers + 1, 6)))
        texts: list[str] = []
        for _ in turns:
            texts.append(d.sentence(lang, short=True, avoid=texts))
        gaps = [round(float(rng.uniform(-0.4, 0.8)), 3) for _ in turns]
        return {"language": lang, "speakers": speakers, "turns": turns, "texts": texts, "gaps": gaps}
    if task == "ks":
        return {"language": lang, "keyword": KEYWORDS[lang][d.index(len(KEYWORDS[lang]))], "speaker": d.speaker(lang)}
    if task in ("ic", "sf"):

        def command() -> tuple[str, str, list[dict[str, str]]] | None:
            intent, template = COMMANDS[d.index(len(COMMANDS))]
            filled = fill_template(template, SLOT_FILLERS, rng)
            return None if filled is None else (intent, *filled)

        intent, text, slots = d.pick(command, lambda c: ("command", c[1]))
        return {"language": "en", "intent": intent, "text": text, "slots": slots, "speaker": d.speaker("en")}
    if task == "ser":

        def sentence() -> tuple[str, list[dict[str, str]]] | None:
            return fill_template(ENTITY_TEMPLATES[d.index(len(ENTITY_TEMPLATES))], ENTITY_FILLERS, rng)

        text, entities = d.pick(sentence, lambda c: ("entities", c[0]))
        return {"language": "en", "text": text, "entities": entities, "speaker": d.speaker("en")}
    if task == "sed":

        def scene() -> list[dict[str, Any]]:
            labels = [str(x) for x in rng.choice(list(SEC_CLASSES), int(rng.integers(2, 5)), replace=False)]
            duration = float(rng.uniform(6.0, 10.0))
            events = []
            for label in labels:
                dur = float(rng.uniform(0.6, 2.5))
                events.append(
                    {
                        "label": label,
                        "start": round(float(rng.uniform(0.1, duration - dur - 0.1)), 3),
                        "dur": round(dur, 3),
                        "gain_db": round(float(rng.uniform(-10, 0)), 2),
                    }
                )
            return [{"duration": round(duration, 3)}] + sorted(events, key=lambda e: e["start"])

        events = d.pick(scene, lambda ev: ("sed", sorted(e["label"] for e in ev[1:])))
        return {"duration": events[0]["duration"], "events": events[1:]}
    if task == "aac":
        structure = ("then2", "while", "then3")[i % 3]  # (one sound alone is SEC; 8 captions cannot be split)

        def captioned() -> tuple[str, list[dict[str, Any]]]:
            if structure == "while":
                a = CONTINUOUS_SOUNDS[d.index(len(CONTINUOUS_SOUNDS))]
                b = [x for x in SEC_CLASSES if x != a][d.index(len(SEC_CLASSES) - 1)]
                outer = float(rng.uniform(3.0, 6.0))
                inner = float(rng.uniform(0.8, min(2.5, outer - 1.0)))
                s0 = float(rng.uniform(0.2, 0.8))
                s1 = s0 + float(rng.uniform(0.4, outer - inner - 0.4))
                events = [
                    {"label": a, "start": round(s0, 3), "dur": round(outer, 3), "gain_db": -4.0},
                    {"label": b, "start": round(s1, 3), "dur": round(inner, 3), "gain_db": 0.0},
                ]
                return f"{CAPTION_PHRASES[b]} while {CAPTION_PHRASES[a]}", events
            labels = [str(x) for x in rng.choice(list(SEC_CLASSES), 2 if structure == "then2" else 3, replace=False)]
            events = _sequential(rng, labels)
            return ", then ".join(CAPTION_PHRASES[x] for x in labels), events

        caption, events = d.pick(captioned, lambda c: ("aac", c[0]))
        return {"caption": caption, "events": events}
    if task == "aqa":
        kind = AQA_KINDS[i % len(AQA_KINDS)]

        def qa() -> tuple[str, str, list[dict[str, Any]]]:
            classes = list(SEC_CLASSES)
            if kind == "count":
                unit = COUNT_UNITS[d.index(len(COUNT_UNITS))]
                n = int(rng.integers(1, 6))
                events = _sequential(rng, [unit] * n, dur=(0.3, 0.3), gap=(0.25, 0.6))
                for e in events:
                    e["unit"] = True
                if rng.random() < 0.5:  # a quiet continuous background
                    end = events[-1]["start"] + 0.6
                    bg = CONTINUOUS_SOUNDS[d.index(len(CONTINUOUS_SOUNDS))]
                    events.insert(0, {"label": bg, "start": 0.0, "dur": round(end, 3), "gain_db": -16.0})
                return f"how many {unit}s are there?", NUMBER_WORDS[n], events
            k = int(rng.integers(1 if kind in ("exists", "n_sounds") else 2, 4 if kind != "n_sounds" else 5))
            labels = [str(x) for x in rng.choice(classes, k, replace=False)]
            events = _sequential(rng, labels)
            if kind == "exists":
                asked = (
                    labels[d.index(k)]
                    if rng.random() < 0.5
                    else [x for x in classes if x not in labels][d.index(len(classes) - k)]
                )
                return f"is there {SOUND_NAMES[asked]}?", "yes" if asked in labels else "no", events
            if kind in ("first", "last"):
                return f"which sound comes {kind}?", labels[0 if kind == "first" else -1], events
            if kind == "before":
                a, b = (labels[j] for j in rng.choice(k, 2, replace=False))
                answer = "yes" if labels.index(a) < labels.index(b) else "no"
                return f"does the {a} come before the {b}?", answer, events
            return "how many different sounds are there?", NUMBER_WORDS[k], events

        question, answer, events = d.pick(qa, lambda c: ("aqa", c[0], c[1], [e["label"] for e in c[2]]))
        return {"question": question, "answer": answer, "events": events}
    if task == "mic":
        r = d.pick(lambda: _recipe(d, free=True), _recipe_id)
        return {"recipe": r}
    if task == "mgr":
        genre = list(GENRES)[i % len(GENRES)]
        r = d.pick(lambda: _recipe(d, genre=genre), _recipe_id)
        return {"recipe": r}
    if task == "mc":
        r = d.pick(lambda: _recipe(d, free=True), _recipe_id)
        return {"recipe": r}
    if task == "mqa":
        kind = list(MQA_QUESTIONS)[i % len(MQA_QUESTIONS)]
        need = {"melody": ("melody",), "bass": ("melody",)}.get(kind, ())
        r = d.pick(lambda: _recipe(d, free=True, need=need), _recipe_id)
        return {"recipe": r, "question": MQA_QUESTIONS[kind], "answer": music_answer(r, kind)}
    if task == "smer":
        emotion = list(MUSIC_EMOTIONS)[i % len(MUSIC_EMOTIONS)]
        r = d.pick(lambda: _recipe(d, emotion=emotion, free=True), _recipe_id)
        return {"recipe": r, "emotion": emotion}
    raise ValueError(f"unknown task {task!r}")


def plan_full_split(
    split: str, n: int, seed: int, legacy: dict[tuple[str, str], str], tasks: Sequence[str]
) -> list[Job]:
    """The jobs of one split for the tasks of the full preset that are not among the first five, task by task."""
    jobs: list[Job] = []
    for task in tasks:
        rng = _rng(seed, _PLAN, split, task)
        d = _Draw(seed, split, rng, legacy)
        for i in range(n):
            params = _plan_new(task, d, i)
            lang = params.get("language")
            key = f"{task}-{lang}-{split}-{i:06d}" if lang else f"{task}-{split}-{i:06d}"
            jobs.append(Job(key.replace(" ", "_"), task, split, i, seed, params))
    return jobs


def _add_noise(rng: np.random.Generator, x: np.ndarray, snr_db: float) -> np.ndarray:
    active = x[np.abs(x) > 1e-4]
    power = float(np.mean(active**2)) if active.size else 1e-8
    return x + rng.standard_normal(len(x)) * math.sqrt(power / 10 ** (snr_db / 10))


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


def _sound(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    label = job.params["label"]
    n = int(rng.uniform(1.0, 4.0) * SR)
    x = _ramp(SEC_CLASSES[label](rng, n), 0.01)
    x = x / max(float(np.max(np.abs(x))), 1e-9) * rng.uniform(0.2, 0.9)
    if rng.random() < 0.5:  # light background noise
        x = _add_noise(rng, x, rng.uniform(15, 35))
    return x, SampleMeta(task="sec", text_language="en", target=label, duration=n / SR, source=NUMPY_SOURCE)


def _note(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    p = job.params
    n = int(rng.uniform(1.0, 3.0) * SR)
    x = synth_note(rng, p["instrument"], p["pitch"], p["velocity"], p["sonic"], n)
    meta = {"pitch": p["pitch"], "velocity": p["velocity"], "instrument": p["instrument"], "sonic": list(p["sonic"])}
    return x, SampleMeta(
        task="mna", text_language="en", target=p["instrument"], duration=n / SR, source=NUMPY_SOURCE, meta=meta
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


def _mix(parts: Sequence[tuple[np.ndarray, float]], tail: float) -> np.ndarray:
    """Sum of (signal, start seconds) placed on one timeline, `tail` seconds after the last end."""
    n = max(int(round(start * SR)) + len(x) for x, start in parts) + int(tail * SR)
    out = np.zeros(n)
    for x, start in parts:
        i = int(round(start * SR))
        out[i : i + len(x)] += x
    return out


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


def _r_one_voice(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Tasks of one utterance by one speaker: s2tt, dasr, did, sgc, sap, er, ks, ic, sf, ser."""
    p, task = job.params, job.task
    lang, speaker = p["language"], p["speaker"]
    if task == "s2tt":
        say = p["say"] + GRAMMARS[lang].full_stop if lang == "ja" else p["say"]
    elif task == "ks":
        say = _sentence_of(lang, p["keyword"])
    else:
        say = _sentence_of(lang, p["text"])
    wav, words, _, _ = _say(say, speaker)
    if task == "ks":  # an isolated word in a clip of at least 1 s, as Speech Commands
        wav, shift = _dress(rng, wav, lead=(0.1, 0.5), tail=(0.1, 0.4), min_seconds=1.0)
    else:
        wav, shift = _dress(rng, wav, level=p.get("level"))
    duration = len(wav) / SR
    spk = speaker.name
    if task == "s2tt":
        tgt = p["target_language"]
        return wav, _speech_meta(
            job,
            parallel_sentence(p["meaning"], tgt),
            duration,
            tgt,
            transcript=parallel_sentence(p["meaning"], lang),
            speaker=spk,
        )
    if task == "dasr":
        meta = _speech_meta(job, p["text"], duration, dialect=p["dialect"], speaker=spk)
        if GRAMMARS[lang].joiner.join(w.word for w in words) == p["text"]:
            meta.words = [Word(w.word, round(w.start + shift, 4), round(w.end + shift, 4)) for w in words]
        return wav, meta
    if task in ("did", "sgc", "sap", "er"):
        label = {"did": "dialect", "sgc": "gender", "sap": "age", "er": "emotion"}[task]
        return wav, _speech_meta(job, p[label], duration, "en", **{label: p[label]}, text=p["text"], speaker=spk)
    if task == "ks":
        return wav, _speech_meta(job, p["keyword"], duration, speaker=spk)
    if task == "ic":
        return wav, _speech_meta(job, p["intent"], duration, transcript=p["text"], speaker=spk)
    if task == "sf":
        return wav, _speech_meta(job, p["text"], duration, slots=p["slots"], intent=p["intent"], speaker=spk)
    return wav, _speech_meta(job, p["text"], duration, entities=p["entities"], speaker=spk)  # ser


def _r_voices(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Tasks of several utterances: osr (two overlapping voices), sv (two utterances, 1 s apart), sd (turns)."""
    p, task = job.params, job.task
    lang, joiner = p["language"], GRAMMARS[p["language"]].joiner
    speakers: list[Speaker] = p["speakers"]
    names = [s.name for s in speakers]
    if task == "sv":
        (a, *_), (b, *_) = (_say(_sentence_of(lang, t), s) for t, s in zip(p["texts"], speakers))
        gains = rng.uniform(0.6, 1.0, 2)
        wav, _ = _dress(rng, np.concatenate([a * gains[0], np.zeros(SR), b * gains[1]]))
        target = "same" if names[0] == names[1] else "different"
        return wav, _speech_meta(job, target, len(wav) / SR, "en", speakers=names, texts=p["texts"])
    if task == "osr":
        (a, _, a_on, a_off), (b, _, b_on, _) = (_say(_sentence_of(lang, t), s) for t, s in zip(p["texts"], speakers))
        lead = float(rng.uniform(0.1, 0.5))
        b_voiced = lead + a_on + max(0.3, p["delay"] * (a_off - a_on))  # B starts speaking while A speaks
        gain_db = float(rng.uniform(-6, 0))
        gains = (1.0, 10 ** (gain_db / 20)) if rng.random() < 0.5 else (10 ** (gain_db / 20), 1.0)
        parts = [(a * gains[0], lead), (b * gains[1], b_voiced - b_on)]
        spans = [(lead + a_on, lead + a_off)]
        _, b_off = voiced_span(b, SR)
        spans.append((b_voiced, b_voiced - b_on + b_off))
        wav, _ = _dress(rng, _mix(parts, float(rng.uniform(0.05, 0.3))), lead=(0, 0), tail=(0, 0))
        segments = [{"speaker": n, "start": round(s, 3), "end": round(e, 3)} for n, (s, e) in zip(names, spans)]
        return wav, _speech_meta(
            job,
            joiner.join(p["texts"]),
            len(wav) / SR,
            n_speakers=2,
            segments=segments,
            speakers=names,
            texts=p["texts"],
        )
    # sd: turns one after the other, a gap (or, when negative, an overlap) between the voiced parts
    parts, segments = [], []
    cursor = float(rng.uniform(0.1, 0.5))  # where the next turn starts speaking
    last_start = -1.0
    for turn, text, gap in zip(p["turns"], p["texts"], p["gaps"]):
        x, _, on, off = _say(_sentence_of(lang, text), speakers[turn])
        start = max(cursor, last_start + 0.5)  # each turn starts clearly after the previous one
        parts.append((x * float(rng.uniform(0.6, 1.0)), start - on))
        segments.append({"speaker": names[turn], "start": round(start, 3), "end": round(start + off - on, 3)})
        last_start = start
        cursor = start + (off - on) + gap
    wav, _ = _dress(rng, _mix(parts, float(rng.uniform(0.1, 0.4))), lead=(0, 0), tail=(0, 0))
    return wav, _speech_meta(
        job,
        joiner.join(p["texts"]),
        len(wav) / SR,
        "en",  # the target says "speaker N"
        segments=segments,
        n_speakers=len(speakers),
        speakers=names,
        texts=p["texts"],
    )


def _scene(
    rng: np.random.Generator, events: Sequence[dict[str, Any]], duration: float | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A clip of SEC sounds placed at their planned starts, and each event's audible span (from the event's own
    signal, -40 dB of its peak) as {label, start, end}, ordered by start."""
    parts, spans = [], []
    for e in events:
        if e.get("unit"):
            x = _unit(e["label"], rng)
        else:
            x = _ramp(SEC_CLASSES[e["label"]](rng, int(e["dur"] * SR)), 0.01)
        x = x / max(float(np.max(np.abs(x))), 1e-9) * 10 ** (e["gain_db"] / 20)
        on, off = active_span(x)
        parts.append((x, e["start"]))
        spans.append({"label": e["label"], "start": round(e["start"] + on, 3), "end": round(e["start"] + off, 3)})
    end = max(int(round(s * SR)) + len(x) for x, s in parts) / SR
    wav = _mix(parts, max(0.0, (duration or 0.0) - end) or float(rng.uniform(0.3, 1.0)))
    wav = wav / max(float(np.max(np.abs(wav))), 1e-9) * rng.uniform(0.3, 0.9)
    wav = wav + rng.standard_normal(len(wav)) * 10 ** (rng.uniform(-65, -50) / 20)  # a faint noise floor
    return wav, sorted(spans, key=lambda s: (s["start"], s["end"]))


def _r_scene(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Sound tasks on generated scenes: sed, aac, aqa."""
    p, task = job.params, job.task
    wav, spans = _scene(rng, p["events"], p.get("duration"))
    labels = list(dict.fromkeys(s["label"] for s in spans))
    if task == "sed":
        target, meta = ", ".join(labels), {"events": spans, "labels": labels}
    elif task == "aac":
        target, meta = p["caption"], {"events": spans, "labels": labels}
    else:
        target, meta = p["answer"], {"question": p["question"], "events": spans}
    return wav, SampleMeta(
        task=task, text_language="en", target=target, duration=len(wav) / SR, source=NUMPY_SOURCE, meta=meta
    )


def _r_music(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Music tasks on generated pieces: mic, mgr, mc, mqa, smer."""
    p, task = job.params, job.task
    r = p["recipe"]
    wav = synth_music(rng, r)
    labels = music_labels(r)
    meta: dict[str, Any] = {"recipe": dict(r)}
    if task == "mic":
        target, meta["labels"] = ", ".join(labels), labels
    elif task == "mgr":
        target = r["genre"]
    elif task == "mc":
        target = music_caption(r)
    elif task == "mqa":
        target, meta["question"] = p["answer"], p["question"]
    else:
        target = p["emotion"]
    return wav, SampleMeta(
        task=task, text_language="en", target=target, duration=len(wav) / SR, source=NUMPY_SOURCE, meta=meta
    )


_RENDERERS: dict[str, Callable[[Job, np.random.Generator], tuple[np.ndarray, SampleMeta]]] = {
    "sec": _sound,
    "mna": _note,
    **{t: _r_one_voice for t in ("s2tt", "dasr", "did", "sgc", "sap", "er", "ks", "ic", "sf", "ser")},
    **{t: _r_voices for t in ("osr", "sv", "sd")},
    **{t: _r_scene for t in ("sed", "aac", "aqa")},
    **{t: _r_music for t in ("mic", "mgr", "mc", "mqa", "smer")},
}


def render(job: Job) -> tuple[str, bytes, SampleMeta]:
    """One sample: (key, 16 kHz FLAC bytes, metadata). A pure function of the job."""
    rng = _rng(job.seed, _RENDER, job.split, job.task, job.index)
    make = _RENDERERS.get(job.task, _speech)  # asr, srwt, lid: _speech
    wav, meta = make(job, rng)
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
    meta.duration = len(wav) / SR
    return job.key, encode_flac(wav, SR), meta


# ---------------------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------------------


def _shuffled(jobs: list[Job], seed: int, split: str) -> list[Job]:
    order = np.random.default_rng([seed, 3, SPLITS.index(split)]).permutation(len(jobs))
    return [jobs[i] for i in order]


def _render_all(jobs: list[Job], pool: ProcessPoolExecutor | None) -> Iterator[tuple[str, bytes, SampleMeta]]:
    return pool.map(render, jobs, chunksize=8) if pool is not None else map(render, jobs)


def build_corpus(
    out_dir: str | os.PathLike[str],
    sizes: Sizes,
    seed: int = 0,
    workers: int | None = None,
    asr_languages: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    tasks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build the corpus under `out_dir` (layout in the module docstring); returns the top-level manifest.
    `tasks` and `asr_languages` default to the preset's (`sizes.tasks`, `sizes.asr_languages`)."""
    started = time.perf_counter()
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    asr_languages = tuple(sizes.asr_languages if asr_languages is None else asr_languages)
    tasks = tuple(sizes.tasks if tasks is None else tasks)
    unknown = [t for t in tasks if t not in FULL_TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(FULL_TASKS)}")
    # The first five tasks are planned exactly as in the tiny and demo presets; the others after them, with the
    # sentences of the first five kept in their splits (`legacy`), so no split leaks into another.
    taken: set[tuple[str, str]] = set()
    legacy: dict[tuple[str, str], str] = {}
    plans: dict[str, list[Job]] = {}
    for split in SPLITS:
        before = set(taken)
        plans[split] = plan_split(split, sizes.of(split), seed, taken, asr_languages, tasks)
        legacy.update((s, split) for s in taken - before)
    for split in SPLITS:
        plans[split] += plan_full_split(split, sizes.of(split), seed, legacy, [t for t in NEW_TASKS if t in tasks])
    manifests: dict[str, dict[str, Any]] = {}
    targets: list[str] = []

    def tee(samples: Iterator[tuple[str, bytes, SampleMeta]]) -> Iterator[tuple[str, bytes, SampleMeta]]:
        for s in samples:
            targets.append(target_text(s[2]))
            yield s

    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for split in SPLITS:
            jobs = plans[split]
            if split == "train":  # one shard set per task: the mixture's sources
                results = _render_all(jobs, pool)
                for task, group in itertools.groupby(results, key=lambda s: s[2].task):
                    shard_size = max(1, math.ceil(sizes.train / 4))  # >= 4 shards: 2 ranks x 2 workers own whole shards
                    manifests[f"train/{task}"] = write_shards(
                        tee(group), os.path.join(out, "train", task), max_count=shard_size
                    )
            else:
                shard_size = max(1, math.ceil(len(jobs) / 2))
                manifests[split] = write_shards(
                    tee(_render_all(_shuffled(jobs, seed, split), pool)), os.path.join(out, split), max_count=shard_size
                )
            log(f"{split}: {len(jobs)} samples written ({time.perf_counter() - started:.1f} s)")
    finally:
        if pool is not None:
            pool.shutdown()

    with open(os.path.join(out, "text.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in targets)
    manifest = {  # no timings or paths of this machine: the file is as reproducible as the shards
        "name": "synthetic",
        "seed": seed,
        "sizes": {s: sizes.of(s) for s in SPLITS},
        "asr_languages": list(asr_languages),
        "shard_sets": {name: f"{name}/manifest.json" for name in manifests},
        "splits": _summarise(manifests),
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(format_summary(manifest, time.perf_counter() - started))
    return manifest


def target_text(meta: SampleMeta) -> str:
    """The words of a sample for the tokenizer (a line of text.txt): the target, and for ``mna`` also the sonic
    qualities that the tagged target carries. For the tasks of the full preset: the formatted target with its
    special tokens removed ("gender: female", "speaker 1 speaker 2", "set an alarm for seven am"...), after the
    question for AQA / MQA (the question is text of the prompt)."""
    if meta.task in TASKS:
        if meta.task == "mna" and meta.meta.get("sonic"):
            return f"{meta.target} {', '.join(meta.meta['sonic'])}"
        return meta.target.replace("\n", " ")
    from qwenaudio_train.tasks import get_task  # noqa: PLC0415 (only the full preset needs the formatters)

    text = re.sub(r"<\|[^|<>]*\|>", " ", get_task(meta.task).format_target(meta))
    if "question" in meta.meta:
        text = f"{meta.meta['question']} {text}"
    return " ".join(text.split())


def _summarise(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per split: {task: {language: {samples, hours}}} merged over the split's shard sets."""
    out: dict[str, Any] = {}
    for name, m in manifests.items():
        split = name.split("/")[0]
        for task, langs in sorted(m["task_languages"].items(), key=lambda kv: _task_order(kv[0])):
            for lang, b in langs.items():
                slot = out.setdefault(split, {}).setdefault(task, {}).setdefault(lang, {"samples": 0, "hours": 0.0})
                slot["samples"] += b["samples"]
                slot["hours"] = round(slot["hours"] + b["hours"], 6)
    return out


def _task_order(task: str) -> int:
    return FULL_TASKS.index(task) if task in FULL_TASKS else len(FULL_TASKS)


def format_summary(manifest: dict[str, Any], seconds: float | None = None) -> str:
    took = f", built in {seconds:.1f} s" if seconds is not None else ""
    lines = [f"synthetic corpus, seed {manifest['seed']}{took}"]
    for split, tasks in manifest["splits"].items():
        n = sum(b["samples"] for langs in tasks.values() for b in langs.values())
        h = sum(b["hours"] for langs in tasks.values() for b in langs.values())
        lines.append(f"{split}: {n} samples, {h:.3f} h")
        for task, langs in tasks.items():
            tn = sum(b["samples"] for b in langs.values())
            th = sum(b["hours"] for b in langs.values())
            per = "  ".join(f"{lang} {b['samples']}/{b['hours'] * 60:.1f}m" for lang, b in sorted(langs.items()))
            lines.append(f"  {task:<5} {tn:>5} samples {th:7.3f} h   [{per}]")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_recipes.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (its shard sets are replaced)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="sizes per task (default: demo)")
    p.add_argument("--seed", type=int, default=0)
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=None, help=f"{split} samples per task (overrides the preset)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: min(2, cpu count))")
    p.add_argument(
        "--asr-languages",
        default=None,
        help=f"comma-separated ASR languages from {','.join(GRAMMARS)} (default: the preset's; "
        f"{','.join(ASR_LANGUAGES)} for tiny and demo)",
    )
    p.add_argument(
        "--tasks", default=None, help=f"comma-separated tasks from {','.join(FULL_TASKS)} (default: the preset's)"
    )
    a = p.parse_args(argv)
    preset = PRESETS[a.preset]
    sizes = Sizes(
        *(getattr(a, s) if getattr(a, s) is not None else preset.of(s) for s in SPLITS),
        tasks=preset.tasks,
        asr_languages=preset.asr_languages,
    )
    langs = sizes.asr_languages if a.asr_languages is None else tuple(x for x in a.asr_languages.split(",") if x)
    bad = [x for x in langs if x not in GRAMMARS]
    if bad or not langs:
        p.error(f"--asr-languages: {bad or 'none given'}; choose from {','.join(GRAMMARS)}")
    tasks = sizes.tasks if a.tasks is None else tuple(x for x in a.tasks.split(",") if x)
    bad = [x for x in tasks if x not in FULL_TASKS]
    if bad or not tasks:
        p.error(f"--tasks: {bad or 'none given'}; choose from {','.join(FULL_TASKS)}")
    if min(sizes.train, sizes.valid, sizes.test) < 0:
        p.error("sizes must be >= 0")
    build_corpus(a.out, sizes, a.seed, a.workers, langs, tasks=tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
