"""Sound-event synthesis (numpy): the 8 SEC sound classes, single countable units (one beep, knock, chirp)
for AQA, the names and caption phrases of the sounds, the audible span of a signal, and the signal helpers the
other synthesis modules share (ramps, sweeps, placing, mixing, noise).

Owns: how a sound class sounds and what it is called. Every function draws from the ``rng`` it is given, in a
fixed order (the order of draws is part of the output).
Must not: know about tasks, splits, jobs or shards (``tasks_sound.py`` turns scenes into samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from data_recipes.synthetic.presets import SR

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


def _add_noise(rng: np.random.Generator, x: np.ndarray, snr_db: float) -> np.ndarray:
    active = x[np.abs(x) > 1e-4]
    power = float(np.mean(active**2)) if active.size else 1e-8
    return x + rng.standard_normal(len(x)) * math.sqrt(power / 10 ** (snr_db / 10))


def _mix(parts: Sequence[tuple[np.ndarray, float]], tail: float) -> np.ndarray:
    """Sum of (signal, start seconds) placed on one timeline, `tail` seconds after the last end."""
    n = max(int(round(start * SR)) + len(x) for x, start in parts) + int(tail * SR)
    out = np.zeros(n)
    for x, start in parts:
        i = int(round(start * SR))
        out[i : i + len(x)] += x
    return out
