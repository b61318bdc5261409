"""LoRA on the LLM half of a QwenAudioModel, with peft: apply, save/load the adapter alone, merge.

Owns: `LoraConfig` (our typed section, converted to peft's), `apply_lora`, `save_adapter`, `load_adapter`,
`merge_lora`, `has_lora`, `lora_state_dict`.
Must not: touch the audio encoder's modules (no adapter is ever injected under `audio.`), build optimizers, or
know about DeepSpeed (under ZeRO-3 the caller gathers parameters before `save_adapter` / `merge_lora`).

What changes: `model.llm` becomes a `peft.PeftModel` around the same transformers LM (parameter names gain
`base_model.model.`; LoRA weights are `...lora_A.default.weight` / `...lora_B.default.weight`). `QwenAudioModel`
keeps working unchanged (forward, generate, embed go through peft), but `QwenAudioModel.save_pretrained` would
write only the adapter into `llm/`: call `merge_lora` first to save full weights (or `save_adapter` for the
adapter alone). Apply LoRA before wrapping the model in DeepSpeed, after any freeze policy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import torch
from torch import nn

if TYPE_CHECKING:
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel

# Every linear layer of a Qwen/Qwen2/Llama-style block (attention + SwiGLU MLP).
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_SIDECAR = "qwenaudio_adapter.json"

# peft's bias modes (a plain str in our section: OmegaConf structured configs cannot hold Literal types).
_BIAS_MODES: dict[str, Literal["none", "all", "lora_only"]] = {"none": "none", "all": "all", "lora_only": "lora_only"}

# Every function edits the model in place and hands the same object back, typed as it came in.
_Model = TypeVar("_Model", bound=nn.Module)


@dataclass
class LoraConfig:
    """The `lora` config section (an OmegaConf structured config). Defaults follow common Qwen fine-tuning practice
    (r 8-64, alpha = 2r); they are not from the Qwen-Audio paper, which fine-tunes the full LLM."""

    enabled: bool = False  # read by the trainer; apply_lora itself always applies
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))  # name suffixes in the LLM
    modules_to_save: list[str] = field(default_factory=list)  # trained in full, saved with the adapter (lm_head)
    bias: str = "none"  # none | all | lora_only
    freeze_audio: bool = True  # freeze the whole audio side (the SFT recipe trains the LLM only)
    extra: dict[str, Any] = field(default_factory=dict)  # any other peft.LoraConfig field (use_rslora, use_dora...)

    def to_peft(self) -> PeftLoraConfig:
        from peft import LoraConfig as PeftLoraConfig

        if self.r <= 0:
            raise ValueError(f"lora.r must be positive, got {self.r}")
        if self.bias not in _BIAS_MODES:
            raise ValueError(f"lora.bias must be one of {sorted(_BIAS_MODES)}, got {self.bias!r}")
        return PeftLoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            modules_to_save=list(self.modules_to_save) or None,
            bias=_BIAS_MODES[self.bias],
            task_type="CAUSAL_LM",
            **self.extra,
        )


def has_lora(model: nn.Module) -> bool:
    """True when `model.llm` carries a peft adapter."""
    from peft import PeftModel

    return isinstance(getattr(model, "llm", None), PeftModel)


def _llm(model: nn.Module) -> nn.Module:
    """`model.llm`, the language model half (a QwenAudioModel's transformers LM, or the PeftModel around it)."""
    llm = model.llm
    if not isinstance(llm, nn.Module):
        raise TypeError(f"{type(model).__name__}.llm is a {type(llm).__name__}, not a module")
    return llm


def _adapter(model: nn.Module, missing: str) -> PeftModel:
    """`model.llm` as the PeftModel carrying the adapter; ValueError(`missing`) when there is none."""
    from peft import PeftModel

    llm = getattr(model, "llm", None)
    if not isinstance(llm, PeftModel):
        raise ValueError(missing)
    return llm


def _freeze_audio(model: nn.Module) -> None:
    audio = model.audio
    if not isinstance(audio, nn.Module):
        raise TypeError(f"{type(model).__name__}.audio is a {type(audio).__name__}, not a module")
    for p in audio.parameters():
        p.requires_grad_(False)


def _linear_names(llm: nn.Module) -> list[str]:
    return sorted({name.rsplit(".", 1)[-1] for name, m in llm.named_modules() if isinstance(m, nn.Linear)})


def apply_lora(model: _Model, cfg: LoraConfig | None = None) -> _Model:
    """Wrap `model.llm` with LoRA adapters (in place; returns `model`). Afterwards only adapter weights (and
    `modules_to_save`) of the LLM are trainable; the audio side is frozen when `cfg.freeze_audio`, else its
    `requires_grad` flags are left as they were. The audio modules never receive adapters."""
    from peft import get_peft_model

    cfg = cfg or LoraConfig()
    if has_lora(model):
        raise ValueError("the model already has a LoRA adapter: merge_lora() it first or load another adapter")
    llm = _llm(model)
    present = set(_linear_names(llm))
    missing = [t for t in cfg.target_modules if t not in present]
    if len(missing) == len(list(cfg.target_modules)):
        raise ValueError(
            f"none of lora.target_modules {list(cfg.target_modules)} is a linear layer of the LLM; its "
            f"linear layers are named {sorted(present)} (e.g. c_attn/c_proj/w1/w2 for Qwen v1)"
        )
    model.llm = get_peft_model(llm, cfg.to_peft())
    if cfg.freeze_audio:
        _freeze_audio(model)
    return model


def lora_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The adapter parameters (names under `llm.`) of a model with LoRA."""
    return {n: p for n, p in model.named_parameters() if ".lora_" in n}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's tensors as peft saves them (what `save_adapter` writes)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(_adapter(model, "the model has no LoRA adapter"))


def save_adapter(model: nn.Module, out_dir: str | Path, cfg: LoraConfig | None = None) -> Path:
    """Write the adapter alone (peft format: adapter_config.json + adapter_model.safetensors) and a sidecar
    saying it applies to the `llm` of a QwenAudioModel. Loadable with `load_adapter`, or with
    `peft.PeftModel.from_pretrained` onto the exported `llm/` directory."""
    adapter = _adapter(model, "the model has no LoRA adapter to save")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(str(out))
    sidecar = {"applies_to": "llm", "format": "peft-lora", "config": config_dict(cfg) if cfg else None}
    (out / ADAPTER_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return out


def load_adapter(model: _Model, adapter_dir: str | Path, trainable: bool = False) -> _Model:
    """Put a saved adapter on `model.llm` (in place; returns `model`). `trainable=True` continues training it (only
    adapter weights trainable, audio frozen); otherwise everything is frozen (inference)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no LoRA adapter at {adapter_dir} (adapter_config.json missing)")
    if has_lora(model):
        raise ValueError("the model already has a LoRA adapter: merge_lora() it first")
    model.llm = PeftModel.from_pretrained(_llm(model), str(adapter_dir), is_trainable=trainable)
    _freeze_audio(model)
    return model


def merge_lora(model: _Model) -> _Model:
    """Fold the adapter into the LLM's weights and remove peft (in place; returns `model`): `model.llm` is the
    plain transformers LM again, with the same outputs, and `QwenAudioModel.save_pretrained` saves full weights."""
    merged = _adapter(model, "the model has no LoRA adapter to merge").merge_and_unload()
    if not isinstance(merged, nn.Module):
        raise TypeError(f"peft's merge_and_unload gave a {type(merged).__name__}, not a module")
    model.llm = merged
    return model


def config_dict(cfg: LoraConfig) -> dict[str, Any]:
    """The section as plain data (for sidecars and logs)."""
    return asdict(cfg)
