"""Log-mel speed: ``audio.log_mel_spectrogram`` against transformers' ``WhisperFeatureExtractor``.

Goal (project issue): ours >= 5x faster than the extractor on a 10-s clip, with the same values to 1e-5.

The extractor is timed as a user calls it, ``fe(wav, sampling_rate=16000, return_tensors="np")``: it pads every
clip to 30 s (3000 frames) before the STFT, which is part of why it is slower; ours computes on the real length.
It has two back-ends: torch.stft when torch is importable (its default here, ``device="cpu"``), and a numpy
STFT otherwise; the numpy one is timed by making the extractor believe torch is absent. Values are compared on
the frames both produce (ours: samples // 160; theirs: the first that many of 3000).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from qwenaudio_train.audio import SAMPLE_RATE, log_mel_spectrogram
from tests.bench.conftest import DEFAULT_THREADS, interleaved, summary, threads

pytestmark = pytest.mark.bench

CLIP_SECONDS = (10, 30)
ROUNDS = 5
PER_ROUND = {"ours": 10, "hf_torch": 6, "hf_numpy": 2}


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A deterministic clip with a speech-like dynamic range: gated harmonic bursts over low noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SAMPLE_RATE) / k for k in range(1, 6))
    gate = (np.sin(2 * np.pi * 3.1 * t) > -0.2).astype(np.float64)
    x = 0.2 * gate * voiced + 0.01 * rng.standard_normal(n)
    return np.clip(x, -1, 1).astype(np.float32)


@contextlib.contextmanager
def numpy_backend():
    """Make WhisperFeatureExtractor take its numpy path (what it does when torch is not installed)."""
    import transformers.models.whisper.feature_extraction_whisper as few

    before = few.is_torch_available
    few.is_torch_available = lambda: False
    try:
        yield
    finally:
        few.is_torch_available = before


def test_log_mel_speed(record):
    from transformers import WhisperFeatureExtractor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    fe = WhisperFeatureExtractor()  # Whisper large-v2 settings: 80 mels, 30-s window
    results: dict = {"rounds": ROUNDS, "calls_per_round": PER_ROUND, "clips": {}}
    for seconds in CLIP_SECONDS:
        wav = speech_like(seconds)
        ours = log_mel_spectrogram(wav).numpy()
        hf_torch = fe(wav, sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"][0]
        with numpy_backend():
            hf_numpy = fe(wav, sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"][0]
        frames = ours.shape[1]
        diff = {
            "hf_torch": float(np.abs(ours - hf_torch[:, :frames]).max()),
            "hf_numpy": float(np.abs(ours - hf_numpy[:, :frames]).max()),
        }
        assert hf_torch.shape[1] == 3000 and frames == seconds * 100
        assert max(diff.values()) < 1e-4  # a correctness guard, not the goal's 1e-5 (recorded below)

        def run_numpy(wav=wav) -> None:
            with numpy_backend():
                fe(wav, sampling_rate=SAMPLE_RATE, return_tensors="np")

        fns = {
            "ours": lambda wav=wav: log_mel_spectrogram(wav),
            "hf_torch": lambda wav=wav: fe(wav, sampling_rate=SAMPLE_RATE, return_tensors="np"),
            "hf_numpy": run_numpy,
        }
        by_threads = {}
        for n_threads in sorted({1, DEFAULT_THREADS}):
            with threads(n_threads):
                t = interleaved(fns, ROUNDS, PER_ROUND, budget_s=6.0)
            ms = {k: summary(v) for k, v in t.items()}
            by_threads[str(n_threads)] = {
                "ms": ms,
                "speedup_vs_hf_torch": round(ms["hf_torch"]["median"] / ms["ours"]["median"], 2),
                "speedup_vs_hf_numpy": round(ms["hf_numpy"]["median"] / ms["ours"]["median"], 2),
            }
        results["clips"][f"{seconds}s"] = {
            "frames_ours": frames,
            "frames_hf": int(hf_torch.shape[1]),
            "max_abs_diff": diff,
            "threads": by_threads,
        }

    ten = results["clips"]["10s"]
    results["goal"] = {
        "speedup_10s_vs_hf_default_min": min(v["speedup_vs_hf_torch"] for v in ten["threads"].values()),
        "target_speedup": 5.0,
        "max_abs_diff_10s": max(ten["max_abs_diff"].values()),
        "target_max_abs_diff": 1e-5,
    }
    results["goal"]["met"] = bool(
        results["goal"]["speedup_10s_vs_hf_default_min"] >= 5.0 and results["goal"]["max_abs_diff_10s"] <= 1e-5
    )
    parts = []
    for clip, r in results["clips"].items():
        for th, v in r["threads"].items():
            parts.append(
                f"{clip}@{th}t ours {v['ms']['ours']['median']:.2f} ms, hf torch "
                f"{v['ms']['hf_torch']['median']:.2f} ms ({v['speedup_vs_hf_torch']}x), hf numpy "
                f"{v['ms']['hf_numpy']['median']:.1f} ms ({v['speedup_vs_hf_numpy']}x)"
            )
        parts.append(
            f"{clip} max|diff| torch {r['max_abs_diff']['hf_torch']:.1e} numpy {r['max_abs_diff']['hf_numpy']:.1e}"
        )
    record("log_mel", results, "; ".join(parts))
