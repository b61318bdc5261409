"""The offline multi-task corpus: synthetic speech (espeak-ng), sound events and musical notes (numpy).

Deterministic from a seed: the same seed and sizes give byte-identical shards on any machine with the same
libraries, whatever the number of worker processes. Sizes are samples per task and split.

    python -m data_recipes.synthetic --out DIR --preset demo          # ~800 train + 40 valid + 40 test per task
    python -m data_recipes.synthetic --out DIR --seed 0 --train 100 --valid 10 --test 10

Layout (what ``configs/data/synthetic.yaml`` reads)::

    DIR/train/<task>/shard-000000.tar ... + manifest.json    one shard set per task (a mixture source each)
    DIR/valid/shard-000000.tar ...       + manifest.json    all tasks interleaved
    DIR/test/...                                            likewise
    DIR/manifest.json                                       sizes, seed, per split/task/language totals
    DIR/text.txt                                            every sample's target text, one per line (BPE)

Tasks (``meta.task``), every clip 16 kHz mono FLAC, mostly 1-5 s:

* ``asr``  - sentences from small per-language grammars (~40-50 words each) in en, de, es, zh, fr; target is the
  lower-case transcript without punctuation (spoken form); ``words`` from espeak's word events.
* ``srwt`` - English sentences of the same kind with word timings; target is the transcript.
* ``lid``  - short sentences in the 8 languages; target is the English language name; ``meta.language``.
* ``sec``  - 8 acoustically distinct synthetic sound events (``SEC_CLASSES``); target is the label.
* ``mna``  - single synthetic notes: ``meta`` pitch (MIDI), velocity, instrument, sonic qualities; target is the
  instrument (the task formatter builds the tagged target from ``meta``).

Splits are drawn from disjoint seed streams; a valid or test sentence never occurs in an earlier split (test
sentences are new combinations of the training vocabulary). Speakers are random espeak voice variants with
random rate and pitch; speech gets random leading/trailing silence, level and (half the time) light noise.

Owns: the grammars, the sound and note recipes, planning and rendering samples, the corpus layout.
Must not: know about tokenizers, models or training.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_recipes.tts import EspeakSynth, random_speaker
from qwenaudio_train.audio import SAMPLE_RATE, encode_flac
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.data.shards import write_shards
from qwenaudio_train.tags import LANGUAGES

SR = SAMPLE_RATE
TASKS: tuple[str, ...] = ("asr", "srwt", "lid", "sec", "mna")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
ASR_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "zh", "fr")
SRWT_LANGUAGES: tuple[str, ...] = ("en",)
LID_LANGUAGES: tuple[str, ...] = ("en", "zh", "de", "es", "ko", "fr", "ja", "it")
SPEECH_SOURCE = "synthetic/espeak"
NUMPY_SOURCE = "synthetic/numpy"


@dataclass(frozen=True)
class Sizes:
    """Samples per task in each split."""

    train: int
    valid: int
    test: int

    def of(self, split: str) -> int:
        return int(getattr(self, split))


PRESETS: dict[str, Sizes] = {
    # Enough for a tiny model to learn every task on CPU; builds in about a minute on 2 cores.
    "demo": Sizes(train=800, valid=40, test=40),
    # Unit tests: every task, all 8 LID languages, every ASR language in every split, in a few seconds.
    "tiny": Sizes(train=8, valid=8, test=8),
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


def synth_note(rng: np.random.Generator, instrument: str, pitch: int, velocity: int, sonic: Sequence[str],
               n: int) -> np.ndarray:
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
# Planning (cheap, in the main process) and rendering (in workers)
# ---------------------------------------------------------------------------------------------------------------
_PLAN, _RENDER = 1, 2  # purpose tags of the seed streams


def _rng(seed: int, purpose: int, split: str, task: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, SPLITS.index(split), TASKS.index(task), index])


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


def plan_split(split: str, n: int, seed: int, taken: set[tuple[str, str]],
               asr_languages: Sequence[str] = ASR_LANGUAGES) -> list[Job]:
    """The jobs of one split, `n` per task, task by task. `taken` holds the sentences of earlier splits (and
    receives this split's): a sentence is used once in the whole corpus."""
    jobs: list[Job] = []
    for task in TASKS:
        rng = _rng(seed, _PLAN, split, task)
        for i in range(n):
            params: dict[str, Any] = {}
            if task in ("asr", "srwt", "lid"):
                langs = {"asr": tuple(asr_languages), "srwt": SRWT_LANGUAGES, "lid": LID_LANGUAGES}[task]
                lang = langs[i % len(langs)]
                params = {"language": lang,
                          "text": _novel_sentence(GRAMMARS[lang], rng, short=(task == "lid"), taken=taken)}
                key = f"{task}-{lang}-{split}-{i:06d}"
            elif task == "sec":
                params = {"label": list(SEC_CLASSES)[i % len(SEC_CLASSES)]}
                key = f"{task}-{split}-{i:06d}"
            else:
                instrument = list(INSTRUMENTS)[i % len(INSTRUMENTS)]
                lo, hi = INSTRUMENTS[instrument]
                tone = rng.choice(["bright", "dark", ""], p=[0.3, 0.3, 0.4])
                extra = [q for q, p in (("distortion", 0.15), ("fast_decay", 0.2), ("percussive", 0.25),
                                        ("reverb", 0.2)) if rng.random() < p]
                sonic = sorted(([str(tone)] if tone else []) + extra, key=SONIC_QUALITIES.index)
                params = {"instrument": instrument, "pitch": int(rng.integers(lo, hi + 1)),
                          "velocity": int(VELOCITIES[int(rng.integers(len(VELOCITIES)))]), "sonic": sonic}
                key = f"{task}-{split}-{i:06d}"
            jobs.append(Job(key, task, split, i, seed, params))
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
    duration = len(wav) / SR
    meta: dict[str, Any] = {"speaker": speaker.name}
    if job.task == "lid":
        meta |= {"language": lang, "text": text}
        return wav, SampleMeta(task="lid", text_language="en", target=LANGUAGES[lang], duration=duration,
                               source=SPEECH_SOURCE, audio_language=lang, meta=meta)
    return wav, SampleMeta(task=job.task, text_language=lang, target=text, duration=duration, source=SPEECH_SOURCE,
                           audio_language=lang, words=words, meta=meta)


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
    return x, SampleMeta(task="mna", text_language="en", target=p["instrument"], duration=n / SR,
                         source=NUMPY_SOURCE, meta=meta)


def render(job: Job) -> tuple[str, bytes, SampleMeta]:
    """One sample: (key, 16 kHz FLAC bytes, metadata). A pure function of the job."""
    rng = _rng(job.seed, _RENDER, job.split, job.task, job.index)
    make = {"sec": _sound, "mna": _note}.get(job.task, _speech)
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


def build_corpus(out_dir: str | os.PathLike[str], sizes: Sizes, seed: int = 0, workers: int | None = None,
                 asr_languages: Sequence[str] = ASR_LANGUAGES, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the corpus under `out_dir` (layout in the module docstring); returns the top-level manifest."""
    started = time.perf_counter()
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    taken: set[tuple[str, str]] = set()
    plans = {split: plan_split(split, sizes.of(split), seed, taken, asr_languages) for split in SPLITS}
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
                    manifests[f"train/{task}"] = write_shards(tee(group), os.path.join(out, "train", task),
                                                              max_count=shard_size)
            else:
                shard_size = max(1, math.ceil(len(jobs) / 2))
                manifests[split] = write_shards(tee(_render_all(_shuffled(jobs, seed, split), pool)),
                                                os.path.join(out, split), max_count=shard_size)
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
    """The words a model must write for a sample (a line of text.txt): the target, and for ``mna`` also the
    sonic qualities that the tagged target carries."""
    if meta.task == "mna" and meta.meta.get("sonic"):
        return f"{meta.target} {', '.join(meta.meta['sonic'])}"
    return meta.target.replace("\n", " ")


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
    return TASKS.index(task) if task in TASKS else len(TASKS)


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
    p.add_argument("--asr-languages", default=",".join(ASR_LANGUAGES),
                   help=f"comma-separated ASR languages from {','.join(ASR_LANGUAGES)}")
    a = p.parse_args(argv)
    preset = PRESETS[a.preset]
    sizes = Sizes(*(getattr(a, s) if getattr(a, s) is not None else preset.of(s) for s in SPLITS))
    langs = tuple(x for x in a.asr_languages.split(",") if x)
    bad = [x for x in langs if x not in ASR_LANGUAGES]
    if bad or not langs:
        p.error(f"--asr-languages: {bad or 'none given'}; choose from {','.join(ASR_LANGUAGES)}")
    if min(sizes.train, sizes.valid, sizes.test) < 0:
        p.error("sizes must be >= 0")
    build_corpus(a.out, sizes, a.seed, a.workers, langs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
