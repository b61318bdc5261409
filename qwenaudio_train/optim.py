"""Freeze policies, parameter groups and the learning-rate schedule (a pure function of the step).

Freeze policies (facts §6):
* ``pretrain`` - stage 1: the LLM is frozen; the audio encoder, pool, projector and audio bos/eos train.
* ``sft``      - stage 2: the audio side is frozen; the LLM trains.
* ``none``     - everything trains (the CPU demo: its tiny LLM is random, so it must learn too).
* ``regex:<pattern>`` - only parameters whose name matches the pattern train.

Under every policy the parameters in `ALWAYS_FROZEN` stay frozen: Whisper's positional table is a fixed sinusoid
(a buffer in the release), stored as a parameter by transformers only for checkpoint compatibility.

Must not: know about DeepSpeed or data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

FREEZE_POLICIES = ("pretrain", "sft", "none")
# Never trained, whatever the policy: Whisper's fixed sinusoidal positions (the release holds them as a buffer;
# training them in stage 1 would change 1.9M values the released model never changed).
ALWAYS_FROZEN = re.compile(r"^audio\.embed_positions\.")


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    layer_decay: float = 1.0  # layer-wise lr decay over the encoder layers (0.95 in the paper); 1.0 = off


def apply_freeze(model: nn.Module, policy: str) -> dict[str, int]:
    """Set ``requires_grad`` by policy (`ALWAYS_FROZEN` stays frozen under any); return trainable/frozen counts."""
    if policy == "pretrain":
        train = lambda n: n.startswith("audio.")  # noqa: E731
    elif policy == "sft":
        train = lambda n: n.startswith("llm.")  # noqa: E731
    elif policy == "none":
        train = lambda n: True  # noqa: E731
    elif policy.startswith("regex:"):
        pattern = re.compile(policy[len("regex:") :])
        train = lambda n: bool(pattern.search(n))  # noqa: E731
    else:
        raise ValueError(f"trainer.freeze={policy!r}: choose one of {FREEZE_POLICIES} or 'regex:<pattern>'")
    counts = {"trainable": 0, "frozen": 0}
    for name, p in model.named_parameters():
        p.requires_grad_(train(name) and not ALWAYS_FROZEN.match(name))
        counts["trainable" if p.requires_grad else "frozen"] += p.numel()
    if counts["trainable"] == 0:
        raise ValueError(f"freeze policy {policy!r} leaves no trainable parameters")
    return counts


_ENCODER_LAYER = re.compile(r"^audio\.(?:encoder\.)?layers\.(\d+)\.")


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim < 2 or "norm" in name or "embed" in name or "bos_eos" in name or name.endswith(".bias")


def _encoder_depth(model: nn.Module) -> int:
    ids = [int(m.group(1)) for n, _ in model.named_parameters() if (m := _ENCODER_LAYER.match(n))]
    return max(ids) + 1 if ids else 0


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """One group per distinct (weight decay, lr scale): parameters that share every hyper-parameter share a group,
    whatever their layer. Without layer decay that is 2 groups (decay / no decay; 1 with weight_decay 0), with it 2
    per distinct scale: each group is one flat buffer, one all-gather and one norm term under ZeRO, so fewer is
    cheaper, and the update is the same (AdamW is element-wise within a group). Layer-wise decay: encoder layer i of
    L gets lr x decay^(L - i); the convolutional stem and positions count as layer 0; everything after the encoder
    gets the full lr."""
    depth = _encoder_depth(model)
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = 1.0
        if cfg.layer_decay != 1.0 and name.startswith("audio."):
            m = _ENCODER_LAYER.match(name)
            if m:
                scale = cfg.layer_decay ** (depth - int(m.group(1)))
            elif any(k in name for k in ("conv1", "conv2", "embed_positions")):
                scale = cfg.layer_decay ** (depth + 1)
        decay = 0.0 if _no_decay(name, p) else cfg.weight_decay
        g = groups.setdefault((decay, scale), {"params": [], "names": [], "weight_decay": decay, "lr_scale": scale})
        g["params"].append(p)
        g["names"].append(name)
    return [{k: v for k, v in g.items() if k != "names"} for g in groups.values()]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    # torch's AdamW: DeepSpeed's fused/CPU Adam variants compile kernels at start-up (~1 min each on CPU).
    return torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def lr_at(step: int, max_steps: int, cfg: OptimConfig) -> float:
    """Linear warm-up to ``lr`` then cosine to ``lr * min_lr_ratio`` at ``max_steps``."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
