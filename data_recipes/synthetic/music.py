"""Notes and music (numpy): single notes of the MNA instruments with sonic qualities, and short pieces from
recipes (genre-like patterns, key, chords, instruments per role) with the labels read from a recipe (instruments,
caption, answers).

Owns: how notes and pieces sound and what a recipe's labels are. Every function draws from the ``rng`` it is
given, in a fixed order (the order of draws is part of the output).
Must not: draw recipes (``tasks_music.py`` does, per split) or know about jobs or shards.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_recipes.synthetic.presets import SR
from data_recipes.synthetic.sounds import _sweep, _t
from data_recipes.synthetic.text import NUMBER_WORDS

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
