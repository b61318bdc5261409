"""FLOPs of one training step from the real shapes of its batch, and the padding it computed.

Owns: `ModelDims` (the matmul-relevant dimensions, from a `ModelConfig` or a built model), `BatchInfo` (the shapes
of one micro-batch, read on the host), `Trainable` (which towers take weight gradients and where the backward
runs, from a freeze policy or a model), `Checkpointing` (which towers recompute which layers), `step_flops` (one
micro-batch -> FLOP counts and padding shares) and `combine` (micro-batches -> a step).
Must not: touch a device, run a model, or import the trainer (the trainer calls it with host-side shapes).

What is counted (multiply-add = 2 FLOPs; matmuls and convolutions only, as `torch.utils.flop_counter` does):

* encoder, per clip: conv1 over its mel frames, conv2 and every layer's q/k/v/o and fc1/fc2 over its encoder
  frames T, attention 4·T²·d per layer (QKᵀ and AV), the projector over its pooled frames;
* LLM, per row: q/k/v/o and the gated MLP over its tokens, attention 4·S²·H per layer (causal attention counted
  over the full square, as PaLM's MFU and FlopCounterMode count it), the LM head on target positions only (the
  training forward keeps only those logits);
* backward: a trained weight costs 2x its forward again (input gradient + weight gradient), a frozen one that the
  gradient must cross 1x (input gradient only): 6x vs 4x parameters per token. conv1's input (the mel) needs no
  gradient. A tower the backward never reaches costs its forward only;
* `flops` is the useful work: each clip at its own length, each sample's attention over its own tokens, no
  padding, no activation-checkpoint recomputation. `flops_computed` is what the padded batch makes the kernels do
  (every clip at the longest clip's length, every row at the row length; what FlopCounterMode measures), and
  `flops_hardware` adds the forward that activation checkpointing runs again in backward.

MFU = flops / seconds / peak: padding and recomputation are cost, not work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from qwenaudio_train.audio import encoder_frames, pooled_frames, split_frames
from qwenaudio_train.model.config import ModelConfig

IGNORE_INDEX = -100  # labels ignored by the loss (the model's convention; kept here so this module stays leaf-like)
# Counts that `combine` sums over micro-batches; the shares are recomputed from them.
SUMMED_KEYS = (
    "flops",
    "flops_computed",
    "flops_hardware",
    "flops/encoder",
    "flops/llm",
    "frames/encoder",
    "frames_computed/encoder",
    "tokens/llm",
    "tokens_computed/llm",
)


@dataclass(frozen=True)
class ModelDims:
    """The dimensions that decide the matmul FLOPs of the model."""

    n_mels: int
    encoder_d_model: int
    encoder_layers: int
    encoder_ffn_dim: int
    llm_hidden_size: int
    llm_layers: int
    llm_heads: int
    llm_kv_heads: int
    llm_intermediate_size: int
    vocab_size: int

    @property
    def llm_kv_dim(self) -> int:
        return self.llm_hidden_size // self.llm_heads * self.llm_kv_heads

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> ModelDims:
        """From the dims of a `ModelConfig` (its preset filled in). The vocabulary is `vocab_size` rounded up to
        `pad_vocab_to_multiple_of`, as the builder grows the embedding; for a loaded LLM whose own vocabulary is
        larger, use `from_model`."""
        cfg = cfg.resolved()
        values = {
            "encoder_d_model": cfg.encoder_d_model,
            "encoder_layers": cfg.encoder_layers,
            "encoder_ffn_dim": cfg.encoder_ffn_dim,
            "llm_hidden_size": cfg.llm_hidden_size,
            "llm_layers": cfg.llm_layers,
            "llm_heads": cfg.llm_heads,
            "llm_kv_heads": cfg.llm_kv_heads,
            "llm_intermediate_size": cfg.llm_intermediate_size,
            "vocab_size": cfg.vocab_size,
        }
        missing = sorted(k for k, v in values.items() if v is None)
        if missing:
            raise ValueError(
                f"ModelConfig has no {missing} for the FLOP count: set them (vocab_size from the tokenizer)"
            )
        multiple = max(1, cfg.pad_vocab_to_multiple_of)
        vocab = int(values.pop("vocab_size") or 0)
        ints = {k: int(v or 0) for k, v in values.items()}
        return cls(n_mels=cfg.n_mels, vocab_size=-(-vocab // multiple) * multiple, **ints)

    @classmethod
    def from_model(cls, model: nn.Module) -> ModelDims:
        """From a built `QwenAudioModel` (its real module shapes: a loaded LLM's own vocabulary and widths)."""
        audio: Any = model.audio
        llm: Any = model.llm
        wcfg = audio.whisper_config
        lcfg = llm.config.get_text_config() if hasattr(llm.config, "get_text_config") else llm.config
        out = llm.get_output_embeddings()
        rows = getattr(out.weight, "ds_shape", out.weight.shape)[0] if out is not None else lcfg.vocab_size
        return cls(
            n_mels=int(wcfg.num_mel_bins),
            encoder_d_model=int(wcfg.d_model),
            encoder_layers=len(audio.layers),
            encoder_ffn_dim=int(wcfg.encoder_ffn_dim),
            llm_hidden_size=int(lcfg.hidden_size),
            llm_layers=int(lcfg.num_hidden_layers),
            llm_heads=int(lcfg.num_attention_heads),
            llm_kv_heads=int(getattr(lcfg, "num_key_value_heads", None) or lcfg.num_attention_heads),
            llm_intermediate_size=int(lcfg.intermediate_size),
            vocab_size=int(rows),
        )


@dataclass(frozen=True)
class BatchInfo:
    """The shapes of one micro-batch, as computed.

    clip_frames: mel frames of each clip (its real length); the encoder runs every clip at `max(clip_frames)`. A
      clip over 30 s counts as its 30-s windows (`from_batch`), each an encoder clip of its own, as it runs.
    row_tokens: real (unpadded) tokens of each LLM row; every row is computed at `row_length`.
    target_tokens: positions whose next token is a target (the rows the LM head runs on).
    row_segments: per row, the token counts of the samples packed in it (attention confined to each sample);
      None = one sample per row.
    run_mel_frames: mel frames the encoder runs every clip at; None = the longest clip (this model's encoder),
      3000 for a pipeline that pads every clip to 30 s.
    """

    clip_frames: tuple[int, ...]
    row_tokens: tuple[int, ...]
    row_length: int
    target_tokens: int
    row_segments: tuple[tuple[int, ...], ...] | None = None
    run_mel_frames: int | None = None

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any]) -> BatchInfo:
        """From a collated batch (`input_ids`, `attention_mask`, `labels`, `audio_lengths`; `sample_spans` when the
        rows are packed: each sample's attention then covers its own tokens only). Call it on the host
        copy, before the batch moves to the device: reading device tensors would stall the step."""
        mask = batch["attention_mask"]
        labels = batch["labels"]
        lengths = batch.get("audio_lengths")
        spans = batch.get("sample_spans")  # packed rows (data.packing): (row, start, end) of each sample
        segments: list[list[tuple[int, int]]] = [[] for _ in range(mask.shape[0])]
        for row, start, end in spans.tolist() if spans is not None else []:
            segments[row].append((start, end - start))
        return cls(
            clip_frames=tuple(
                w for n in (lengths.tolist() if lengths is not None else []) for w in split_frames(int(n))
            ),
            row_tokens=tuple(int(n) for n in mask.sum(-1).tolist()),
            row_length=int(mask.shape[1]),
            target_tokens=int((labels[:, 1:] != IGNORE_INDEX).sum()),
            row_segments=tuple(tuple(n for _, n in sorted(row)) for row in segments) if spans is not None else None,
        )


@dataclass(frozen=True)
class Trainable:
    """Per tower: whether its weights take gradients, and whether the backward crosses the LLM at all.

    encoder: the encoder's weights train (the backward runs through it); False = forward only.
    llm: the LLM's base weights train (weight gradients); False = frozen.
    llm_backward: the gradient crosses the LLM (to reach the encoder, adapters or its own weights).
    """

    encoder: bool
    llm: bool
    llm_backward: bool

    @classmethod
    def from_policy(cls, freeze: str) -> Trainable:
        """For `trainer.freeze` in pretrain | sft | none (a `regex:` policy: use `from_model`)."""
        table = {
            "pretrain": cls(encoder=True, llm=False, llm_backward=True),
            "sft": cls(encoder=False, llm=True, llm_backward=True),
            "none": cls(encoder=True, llm=True, llm_backward=True),
        }
        if freeze not in table:
            raise ValueError(
                f"freeze={freeze!r}: FLOPs by policy know {sorted(table)}; use Trainable.from_model(model)"
            )
        return table[freeze]

    @classmethod
    def from_model(cls, model: nn.Module) -> Trainable:
        """From the `requires_grad` flags of a built model, per tower (LoRA adapters make the LLM backward run
        without making its base weights trainable)."""
        audio = any(p.requires_grad for n, p in model.named_parameters() if n.startswith("audio."))
        llm_any = [(n, p) for n, p in model.named_parameters() if n.startswith("llm.") and p.requires_grad]
        base = any("lora_" not in n for n, _ in llm_any)
        return cls(encoder=audio, llm=base, llm_backward=audio or bool(llm_any))


@dataclass(frozen=True)
class Checkpointing:
    """Activation checkpointing per tower: which towers recompute their layers in backward, and every k-th layer
    (layers 0, k, 2k...) only. `QwenAudioModel.gradient_checkpointing_enable(**vars(c))` applies it."""

    encoder: bool = False
    llm: bool = False
    every: int = 1

    @classmethod
    def from_config(cls, ds: Any) -> Checkpointing:
        """From the `deepspeed` config section: `checkpoint_encoder`, `checkpoint_llm`, `checkpoint_every`, and the
        deprecated `activation_checkpointing` (both towers)."""
        both = bool(getattr(ds, "activation_checkpointing", False))
        return cls(both or ds.checkpoint_encoder, both or ds.checkpoint_llm, int(ds.checkpoint_every))

    def share(self, layers: int) -> float:
        """The share of `layers` layers that are checkpointed (recomputed) in a checkpointed tower."""
        if self.every < 1:
            raise ValueError(f"checkpoint every {self.every} layers: must be >= 1 (1 = every layer)")
        return -(-layers // self.every) / layers if layers else 0.0


def _factor(trains: bool, backward: bool) -> int:
    """Forward + backward multiple of a weight matmul's forward FLOPs."""
    return 3 if trains else (2 if backward else 1)


def _encoder_flops(d: ModelDims, mel: int, t: int, n: int, train: bool) -> tuple[int, int]:
    """(flops, forward flops of the layers) of one clip of `mel` mel frames, `t` encoder frames, `n` pooled."""
    dm, ff = d.encoder_d_model, d.encoder_ffn_dim
    conv1 = 2 * mel * d.n_mels * dm * 3
    conv2 = 2 * t * dm * dm * 3
    layer_lin = 2 * t * (4 * dm * dm + 2 * dm * ff)
    layer_attn = 4 * t * t * dm
    proj = 2 * n * dm * d.llm_hidden_size
    layers_fwd = d.encoder_layers * (layer_lin + layer_attn)
    if not train:
        return conv1 + conv2 + layers_fwd + proj, layers_fwd
    # conv1's input is the mel (no gradient): forward + weight gradient only
    return 2 * conv1 + 3 * (conv2 + layers_fwd + proj), layers_fwd


def _llm_flops(d: ModelDims, tokens: int, attn_tokens_sq: int, tr: Trainable) -> tuple[int, int]:
    """(flops, forward flops of the layers) of `tokens` LLM tokens whose attention covers `attn_tokens_sq`
    query-key pairs (the LM head is counted separately)."""
    h, kv, ff = d.llm_hidden_size, d.llm_kv_dim, d.llm_intermediate_size
    lin = 2 * tokens * (2 * h * h + 2 * h * kv + 3 * h * ff)
    attn = 4 * attn_tokens_sq * h
    fwd = d.llm_layers * (lin + attn)
    total = d.llm_layers * (_factor(tr.llm, tr.llm_backward) * lin + (3 if tr.llm_backward else 1) * attn)
    return total, fwd


def step_flops(
    model_cfg: ModelConfig | ModelDims,
    batch_info: BatchInfo,
    freeze: str | Trainable,
    checkpointing: bool | Checkpointing = False,
) -> dict[str, float]:
    """FLOPs of one micro-batch's forward + backward, and its padding.

    Returns `flops` (useful: real lengths, per-sample attention, no recomputation), `flops/encoder`,
    `flops/llm`, `flops_computed` (the padded shapes as run), `flops_hardware` (computed + the forward that
    `checkpointing` recomputes: True = every layer of both towers, or a `Checkpointing` per tower and every k-th
    layer; a tower recomputes only where the backward runs), `padding/encoder` and `padding/llm` (share of the
    computed encoder frames / LLM tokens that are padding), and the frame / token counts `combine` needs.
    """
    d = model_cfg if isinstance(model_cfg, ModelDims) else ModelDims.from_config(model_cfg)
    tr = freeze if isinstance(freeze, Trainable) else Trainable.from_policy(freeze)
    b = batch_info

    enc_useful = enc_computed = enc_fwd = 0
    frames = frames_computed = 0
    if b.clip_frames:
        mel_max = max(b.clip_frames) if b.run_mel_frames is None else b.run_mel_frames
        t_max = encoder_frames(mel_max)
        n_max = max(0, pooled_frames(t_max))
        for mel in b.clip_frames:
            t = encoder_frames(mel)
            enc_useful += _encoder_flops(d, mel, t, max(0, pooled_frames(t)), tr.encoder)[0]
            frames += t
        one, enc_fwd_one = _encoder_flops(d, mel_max, t_max, n_max, tr.encoder)
        enc_computed = one * len(b.clip_frames)
        enc_fwd = enc_fwd_one * len(b.clip_frames)
        frames_computed = t_max * len(b.clip_frames)

    segments = b.row_segments if b.row_segments is not None else tuple((n,) for n in b.row_tokens)
    tokens = sum(b.row_tokens)
    tokens_computed = b.row_length * len(b.row_tokens)
    llm_useful, _ = _llm_flops(d, tokens, sum(s * s for row in segments for s in row), tr)
    llm_computed, llm_fwd = _llm_flops(d, tokens_computed, b.row_length**2 * len(b.row_tokens), tr)
    head = 2 * b.target_tokens * d.llm_hidden_size * d.vocab_size * _factor(tr.llm, tr.llm_backward)

    useful = enc_useful + llm_useful + head
    computed = enc_computed + llm_computed + head
    ck = checkpointing if isinstance(checkpointing, Checkpointing) else Checkpointing(checkpointing, checkpointing)
    recompute = (enc_fwd * ck.share(d.encoder_layers) if tr.encoder and ck.encoder else 0) + (
        llm_fwd * ck.share(d.llm_layers) if tr.llm_backward and ck.llm else 0
    )
    return {
        "flops": float(useful),
        "flops/encoder": float(enc_useful),
        "flops/llm": float(llm_useful + head),
        "flops_computed": float(computed),
        "flops_hardware": float(computed + recompute),
        "padding/encoder": 1.0 - frames / frames_computed if frames_computed else 0.0,
        "padding/llm": 1.0 - tokens / tokens_computed if tokens_computed else 0.0,
        "frames/encoder": float(frames),
        "frames_computed/encoder": float(frames_computed),
        "tokens/llm": float(tokens),
        "tokens_computed/llm": float(tokens_computed),
    }


def combine(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The counts of several micro-batches (or ranks) summed, the padding shares recomputed from the sums."""
    total = dict.fromkeys(SUMMED_KEYS, 0.0)
    for part in parts:
        for k in SUMMED_KEYS:
            total[k] += float(part[k])
    fc, tc = total["frames_computed/encoder"], total["tokens_computed/llm"]
    total["padding/encoder"] = 1.0 - total["frames/encoder"] / fc if fc else 0.0
    total["padding/llm"] = 1.0 - total["tokens/llm"] / tc if tc else 0.0
    return total


def mfu(flops: float, seconds: float, peak_tflops: float, devices: int = 1) -> float:
    """Model FLOPs utilisation: useful FLOPs per second over the devices' peak (TFLOP/s each)."""
    if seconds <= 0 or peak_tflops <= 0:
        raise ValueError(f"mfu needs seconds > 0 and peak_tflops > 0, got {seconds} and {peak_tflops}")
    return flops / seconds / (peak_tflops * 1e12 * devices)


# Dense bf16 peak TFLOP/s per device, from the vendors' data sheets (no sparsity). Longest names first.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0), ("A100", 312.0),
                    ("A800", 312.0), ("L40S", 362.0))  # fmt: skip


def detect_peak_tflops(device_name: str) -> float:
    """The dense bf16 peak of a known CUDA device by its name (``torch.cuda.get_device_name``); 0 if unknown."""
    return next((peak for name, peak in PEAK_BF16_TFLOPS if name.lower() in device_name.lower()), 0.0)
