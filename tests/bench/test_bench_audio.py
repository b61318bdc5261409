"""Log-mel speed: ``audio.log_mel_spectrogram`` against transformers' ``WhisperFeatureExtractor``.

Goal (project issue): ours >= 5x faster than the extractor on a 10-s clip, with the same values to 1e-5.

Two comparisons, reported side by side and labelled:

* ``equal_frames``: the extractor with ``padding="longest"`` computes the clip's real length, the same number of
  frames as ours (samples // 160). This is the like-for-like figure: the same work on both sides.
* ``real_vs_30s``: the extractor as a user calls it by default, ``fe(wav, sampling_rate=16000,
  return_tensors="np")``, pads every clip to 30 s (3000 frames) before the STFT, while ours computes the real
  length. The speed-up there is mostly work not done (a 10-s clip is a third of 30 s), not a faster kernel.

The extractor has two back-ends: torch.stft when torch is importable (its default here, ``device="cpu"``), and a
numpy STFT otherwise; the numpy one is timed by making the extractor believe torch is absent. Values are compared
on the frames both produce except the last (at equal frames the extractor reflect-pads the clip's end into it
where ours sees zeros; that frame's difference is recorded apart).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from qwenaudio_train.audio import SAMPLE_RATE, log_mel_spectrogram
from tests.bench.conftest import DEFAULT_THREADS, interleaved, summary, threads

pytestmark = pytest.mark.bench

CLIP_SECONDS = (10, 30)
ROUNDS = 15
PER_ROUND = {"ours": 10, "hf_torch_equal": 8, "hf_torch_30s": 6, "hf_numpy_equal": 3, "hf_numpy_30s": 2}
# (variant, padding the extractor is called with, numpy back-end)
HF_VARIANTS = {
    "hf_torch_equal": ("longest", False),
    "hf_torch_30s": ("max_length", False),
    "hf_numpy_equal": ("longest", True),
    "hf_numpy_30s": ("max_length", True),
}


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
        frames = ours.shape[1]

        def hf(wav: np.ndarray, padding: str, use_numpy: bool) -> np.ndarray:
            with numpy_backend() if use_numpy else contextlib.nullcontext():
                return fe(wav, sampling_rate=SAMPLE_RATE, return_tensors="np", padding=padding)["input_features"][0]

        feats = {name: hf(wav, *args) for name, args in HF_VARIANTS.items()}
        # Unpadded, the extractor's STFT reflects the clip's end into its last frame where ours (and its 30-s
        # path) sees zeros: that one frame differs by design, so values are compared on the frames before it.
        diff = {name: float(np.abs(ours - f[:, :frames])[:, :-1].max()) for name, f in feats.items()}
        last_frame_diff = {name: float(np.abs(ours[:, -1] - f[:, frames - 1]).max()) for name, f in feats.items()}
        assert frames == seconds * 100
        assert feats["hf_torch_30s"].shape[1] == 3000 and feats["hf_torch_equal"].shape[1] == frames
        assert max(diff.values()) < 1e-4  # a correctness guard, not the goal's 1e-5 (recorded below)

        fns = {"ours": lambda wav=wav: log_mel_spectrogram(wav)}
        for name, args in HF_VARIANTS.items():
            fns[name] = lambda wav=wav, args=args: hf(wav, *args)
        by_threads = {}
        for n_threads in sorted({1, DEFAULT_THREADS}):
            with threads(n_threads):
                t = interleaved(fns, ROUNDS, PER_ROUND, budget_s=8.0)
            ms = {k: summary(v) for k, v in t.items()}
            speed = lambda k, ms=ms: round(ms[k]["median"] / ms["ours"]["median"], 2)  # noqa: E731
            by_threads[str(n_threads)] = {
                "ms": ms,
                "equal_frames": {
                    "speedup_vs_hf_torch": speed("hf_torch_equal"),
                    "speedup_vs_hf_numpy": speed("hf_numpy_equal"),
                },
                "real_vs_30s": {
                    "speedup_vs_hf_torch": speed("hf_torch_30s"),
                    "speedup_vs_hf_numpy": speed("hf_numpy_30s"),
                },
            }
        results["clips"][f"{seconds}s"] = {
            "frames_ours": frames,
            "frames_hf": {name: int(f.shape[1]) for name, f in feats.items()},
            "max_abs_diff": diff,
            "max_abs_diff_last_frame": last_frame_diff,
            "threads": by_threads,
        }

    ten = results["clips"]["10s"]
    results["goal"] = {
        "speedup_10s_equal_frames_vs_hf_torch_min": min(
            v["equal_frames"]["speedup_vs_hf_torch"] for v in ten["threads"].values()
        ),
        "speedup_10s_real_vs_30s_vs_hf_torch_min": min(
            v["real_vs_30s"]["speedup_vs_hf_torch"] for v in ten["threads"].values()
        ),
        "target_speedup": 5.0,
        "max_abs_diff_10s_vs_hf_torch": ten["max_abs_diff"]["hf_torch_equal"],
        "target_max_abs_diff": 1e-5,
    }
    # Met only like for like: equal frames on both sides.
    results["goal"]["met"] = bool(
        results["goal"]["speedup_10s_equal_frames_vs_hf_torch_min"] >= 5.0
        and results["goal"]["max_abs_diff_10s_vs_hf_torch"] <= 1e-5
    )
    parts = []
    for clip, r in results["clips"].items():
        for th, v in r["threads"].items():
            ms = v["ms"]
            parts.append(
                f"{clip}@{th}t ours {ms['ours']['median']:.2f} ms; equal frames: hf torch "
                f"{ms['hf_torch_equal']['median']:.2f} ms ({v['equal_frames']['speedup_vs_hf_torch']}x), hf numpy "
                f"{ms['hf_numpy_equal']['median']:.1f} ms ({v['equal_frames']['speedup_vs_hf_numpy']}x); real vs 30 s: "
                f"hf torch {ms['hf_torch_30s']['median']:.2f} ms ({v['real_vs_30s']['speedup_vs_hf_torch']}x), hf "
                f"numpy {ms['hf_numpy_30s']['median']:.1f} ms ({v['real_vs_30s']['speedup_vs_hf_numpy']}x)"
            )
        parts.append(
            f"{clip} max|diff| torch {r['max_abs_diff']['hf_torch_equal']:.1e} numpy "
            f"{r['max_abs_diff']['hf_numpy_equal']:.1e}"
        )
    record("log_mel", results, "; ".join(parts))
