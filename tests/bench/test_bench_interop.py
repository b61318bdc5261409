"""How far transformers' Qwen2-Audio port is from our model on short clips, with realistic weight scales.

The port runs its encoder on exactly 3000 mel frames. Our export is exact when the mel past a clip is zero and
`feature_attention_mask` marks the clip (tests/unit/test_interop.py). The port's own feature extractor instead pads
the *waveform* to 30 s, so the frames past the clip hold the log-mel of silence (the max-8 floor, not 0), and the
last convolution window of the clip reads them. How much that moves the logits depends on the weights: the unit
tests' tiny model (width 64, every weight N(0, 0.02)) keeps activations near zero, so the edge barely shows.

This measures the difference on a model that is small but not trivial (encoder 256 x 4 layers, LLM 256 x 4 layers)
under two initialisations, and prints both:

* ``std_0.02``: every weight N(0, 0.02), biases 0, norms 1 (transformers' `initializer_range` default);
* ``fan_in``: every Linear / Conv1d weight N(0, 1/fan_in), biases N(0, 0.02), norms 1, embeddings N(0, 1): the
  scale of trained checkpoints (Whisper's and Qwen's matrices have std ~ 1/sqrt(fan_in)), where each layer's
  output is O(1) and a change at one frame propagates through attention instead of fading.

For each: a real 5.9-s recording (a synthetic one without ../shared) with its even mel length, three ways into the
port: zero-padded mel (exact), the extractor's silence-padded mel (the port's normal use), and an odd mel length
zero-padded. Reported: the largest |logit difference| over attended positions, and the logits' std for scale.

Run: ``.venv/bin/python -m pytest -q -m bench tests/bench/test_bench_interop.py -s``
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from qwenaudio_train import audio as A
from qwenaudio_train.interop import export_qwen2_audio
from qwenaudio_train.model import ModelConfig, QwenAudioModel, build_model

pytestmark = pytest.mark.bench

VOCAB = 320
PAD, START, END, EOD = 300, 301, 302, 303
DIMS = dict(
    encoder_d_model=256,
    encoder_layers=4,
    encoder_heads=4,
    encoder_ffn_dim=1024,
    llm_hidden_size=256,
    llm_layers=4,
    llm_heads=4,
    llm_kv_heads=4,
    llm_intermediate_size=688,
)
RECORDING = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real_audio" / "1272-128104-0000.flac"


def realistic_init(model: QwenAudioModel, scheme: str, seed: int) -> None:
    """Re-draw every weight of `model` under `scheme` (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)

    def normal(p: torch.Tensor, std: float) -> None:
        p.copy_(torch.randn(p.shape, generator=g) * std)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d)):
                fan_in = module.weight[0].numel()
                normal(module.weight, 0.02 if scheme == "std_0.02" else 1 / math.sqrt(fan_in))
                if module.bias is not None:
                    normal(module.bias, 0.0 if scheme == "std_0.02" else 0.02)
            elif isinstance(module, torch.nn.Embedding) and module is not model.audio.embed_positions:
                normal(module.weight, 0.02 if scheme == "std_0.02" else 1.0)
            elif hasattr(module, "weight") and module.weight is not None and module.weight.dim() == 1:
                module.weight.fill_(1.0)  # LayerNorm / RMSNorm
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()


def clip() -> tuple[np.ndarray, str]:
    if RECORDING.is_file():
        return A.load_audio(RECORDING), RECORDING.name
    t = np.arange(int(5.9 * A.SAMPLE_RATE)) / A.SAMPLE_RATE
    wav = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (wav + 0.01 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32), "synthetic 5.9 s"


def row(mel_frames: int) -> list[int]:
    n = A.pooled_frames(A.encoder_frames(mel_frames))
    g = torch.Generator().manual_seed(mel_frames)
    text = torch.randint(0, 290, (12,), generator=g).tolist()
    return text[:5] + [START] + [PAD] * n + [END] + text[5:]


def measure(scheme: str, wav: np.ndarray, out: Path) -> dict[str, float]:
    from transformers import Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    torch.manual_seed(0)
    cfg = ModelConfig(preset="tiny", vocab_size=VOCAB, audio_start_id=START, audio_end_id=END, audio_pad_id=PAD,
                      eod_id=EOD, **DIMS)  # fmt: skip
    ours = build_model(cfg).eval()
    realistic_init(ours, scheme, seed=1)
    port = Qwen2AudioForConditionalGeneration.from_pretrained(str(export_qwen2_audio(ours, out / scheme))).eval()
    extractor = WhisperFeatureExtractor(feature_size=80)
    results: dict[str, float] = {}
    even = (len(wav) // A.HOP_LENGTH) // 2 * 2
    for case, frames in (("zero_padded_even", even), ("extractor_padded_even", even), ("zero_padded_odd", even - 1)):
        x = wav[: frames * A.HOP_LENGTH]
        mel = A.log_mel_spectrogram(x)  # [80, frames]
        if case.startswith("extractor"):
            full = torch.from_numpy(extractor(x, sampling_rate=A.SAMPLE_RATE, return_tensors="np").input_features)
        else:
            full = torch.nn.functional.pad(mel, (0, A.N_FRAMES - frames))[None]
        ids = torch.tensor([row(frames)])
        mask = torch.ones_like(ids)
        feature_mask = (torch.arange(A.N_FRAMES) < frames).long()[None]
        with torch.no_grad():
            a = ours(ids, mask, audio_features=mel[None], audio_lengths=torch.tensor([frames])).logits[0]
            b = port(input_ids=ids, attention_mask=mask, input_features=full,
                     feature_attention_mask=feature_mask).logits[0]  # fmt: skip
        results[case] = float((a - b).abs().max())
        results["logit_std"] = float(a.std())
    return results


def test_qwen2_audio_port_logit_difference_on_short_clips(record, tmp_path) -> None:
    wav, name = clip()
    figures = {scheme: measure(scheme, wav, tmp_path) for scheme in ("std_0.02", "fan_in")}
    for scheme, r in figures.items():
        print(
            f"\n{scheme:9s} ({name}): max |logit diff| zero-padded even {r['zero_padded_even']:.2e}, "
            f"extractor-padded {r['extractor_padded_even']:.2e}, zero-padded odd {r['zero_padded_odd']:.2e} "
            f"(logit std {r['logit_std']:.2f})"
        )
        assert r["zero_padded_even"] < 1e-3 * max(1.0, r["logit_std"])  # the exact case stays exact
    record("interop_qwen2_audio_port", {"clip": name, "dims": DIMS, **figures})
