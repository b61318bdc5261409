"""LoRA on the LLM: only adapter weights train, the audio side is untouched, and save/load/merge keep the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qwenaudio_train import lora as L
from qwenaudio_train.audio import encoder_frames, pooled_frames
from qwenaudio_train.model import ModelConfig, QwenAudioModel, build_model

VOCAB = 200
AUDIO_START, AUDIO_END, AUDIO_PAD, EOD = 196, 197, 195, 0


def tiny(seed: int = 0) -> QwenAudioModel:
    torch.manual_seed(seed)
    return build_model(
        ModelConfig(
            vocab_size=VOCAB, audio_start_id=AUDIO_START, audio_end_id=AUDIO_END, audio_pad_id=AUDIO_PAD, eod_id=EOD
        )
    ).eval()


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(1, 80, 20, generator=g)
    n = pooled_frames(encoder_frames(20))  # audio positions of a 20-frame clip
    text = torch.randint(1, 190, (12,), generator=g).tolist()
    ids = torch.tensor([[AUDIO_START] + [AUDIO_PAD] * n + [AUDIO_END] + text])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "audio_features": mel,
        "audio_lengths": torch.tensor([20]),
    }


def logits(model: QwenAudioModel) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch()).logits


def perturb_lora(model: QwenAudioModel) -> None:
    """LoRA's B starts at zero (the adapter is a no-op): give it weights so the tests compare real adapters."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in L.lora_parameters(model).values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def test_only_lora_trains_and_audio_is_untouched() -> None:
    model = tiny()
    audio_before = {k: v.clone() for k, v in model.audio.state_dict().items()}
    L.apply_lora(model, L.LoraConfig(r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and trainable == set(L.lora_parameters(model))
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert all(n.startswith("llm.") for n in trainable)
    # every default target of both layers got an adapter: 7 modules x 2 layers x (A, B)
    assert len(trainable) == 7 * 2 * 2
    assert not any("lora" in n for n, _ in model.audio.named_modules())
    assert all(torch.equal(v, audio_before[k]) for k, v in model.audio.state_dict().items())
    # The training loss path (return_logits=False) works through peft, and gradients reach only the adapters.
    b = batch()
    labels = b["input_ids"].clone()
    labels[:, :8] = -100
    model.train()
    out = model(**b, labels=labels, return_logits=False)
    out.loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n in trainable)


def test_adapter_save_load_and_merge_keep_logits(tmp_path: Path) -> None:
    cfg = L.LoraConfig(r=4, dropout=0.0)
    model = L.apply_lora(tiny(), cfg)
    perturb_lora(model)
    model.eval()
    reference = logits(model)
    assert not torch.allclose(reference, logits(tiny()), atol=1e-3)  # the adapter changes the outputs

    out = L.save_adapter(model, tmp_path / "adapter", cfg)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / L.ADAPTER_SIDECAR).read_text())["config"]["r"] == 4
    size = (out / "adapter_model.safetensors").stat().st_size
    n_lora = sum(p.numel() for p in L.lora_parameters(model).values())
    assert size < n_lora * 4 + 10_000  # the adapter alone, not the model

    fresh = L.load_adapter(tiny(), out)  # same base weights (same seed) + the saved adapter
    torch.testing.assert_close(logits(fresh), reference, atol=1e-5, rtol=0)
    assert not any(p.requires_grad for p in fresh.parameters())

    merged = L.merge_lora(fresh)
    assert not L.has_lora(merged) and not any(".lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), reference, atol=1e-5, rtol=0)

    # Merged weights save and load as a plain model with the same outputs.
    merged.save_pretrained(tmp_path / "merged")
    reloaded = QwenAudioModel.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(logits(reloaded), reference, atol=1e-5, rtol=0)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="linear layers are named"):
        L.apply_lora(tiny(), L.LoraConfig(target_modules=("c_attn",)))
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        L.load_adapter(tiny(), tmp_path)
    with pytest.raises(ValueError, match="no LoRA adapter"):
        L.merge_lora(tiny())
