"""Interop with the released Qwen-Audio / Qwen-7B (v1) layout: import to our model and export back to it.

Owns the release <-> ours weight-name table (q|k|v fused in the release), the config translations both ways, and
the import/export of whole checkpoints. The three layouts interop knows (Qwen2-Audio: see qwen2_audio.py):

  release   `QWenLMHeadModel` of QwenLM/Qwen-Audio (remote code, `model_type: qwen`): `transformer.wte`,
            `transformer.h.{i}.{ln_1, attn.c_attn (fused q|k|v, with bias), attn.c_proj, ln_2, mlp.w1, mlp.w2,
            mlp.c_proj}`, `transformer.ln_f`, `lm_head`, and the openai-whisper-style encoder
            `transformer.audio.{conv1, conv2, positional_embedding, blocks.{i}.{attn.{query,key,value,out},
            attn_ln, mlp.0, mlp.2, mlp_ln}, ln_post, proj, audio_bos_eos_token}`. The same LLM names without
            `transformer.audio.*` are the plain Qwen-7B (v1) checkpoint, the paper's stage-1 starting point.
  ours      `QwenAudioModel` (`audio.*` = transformers Whisper layer names, `llm.*` = a native Qwen2ForCausalLM).
  port      transformers' `Qwen2AudioForConditionalGeneration` (`model.audio_tower.*`,
            `model.multi_modal_projector.linear`, `model.language_model.*`, `lm_head`).

The v1 -> Qwen2 facts the tables rest on (modeling_qwen.py of the release): `c_attn` is one Linear(H, 3H) whose
output splits as [q | k | v] (no grouped kv heads: num_key_value_heads = num_attention_heads); `c_proj` has no
bias (`no_bias: true`); the MLP computes `c_proj(w1(x) * silu(w2(x)))`, so w2 is Qwen2's gate_proj and w1 its
up_proj, each of width `intermediate_size // 2`; RMSNorm eps = `layer_norm_epsilon`; rotary base =
`rotary_emb_base` with the rotate-half convention (no permutation of q/k rows); lm_head is not tied. The encoder is
openai-whisper's (`key` has no bias, MLP width 4 x d_model, `ln_post` after the pool).

Must not: touch the training loop, tokenizers or data; need network or trust_remote_code (hub names are
resolved through `huggingface_hub.snapshot_download`, which honours HF_HUB_OFFLINE).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qwenaudio_train.interop.common import (
    StateDict,
    checkpoint_dtype,
    dtype_name,
    fill_name,
    load_native_llm,
    load_release_checkpoint,
    name_pattern,
    rename,
    save_weights,
    strip_prefix,
)
from qwenaudio_train.model import (
    RELEASE_AUDIO_PAD_ID,
    RELEASE_AUDIO_START_ID,
    RELEASE_EOD_ID,
    AudioEncoder,
    ModelConfig,
    QwenAudioModel,
    build_whisper_encoder,
    embedding_weight,
    whisper_config_from_dims,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Qwen2Config

# ----------------------------------------------------------------------------------------------------------------
# Name table (templates: see common.py). One table serves both directions of a conversion.

_RELEASE_TO_OURS: list[tuple[str, str]] = [
    ("transformer.wte.weight", "llm.model.embed_tokens.weight"),
    ("transformer.ln_f.weight", "llm.model.norm.weight"),
    ("lm_head.weight", "llm.lm_head.weight"),
    ("transformer.h.{i}.ln_1.weight", "llm.model.layers.{i}.input_layernorm.weight"),
    ("transformer.h.{i}.attn.c_proj.weight", "llm.model.layers.{i}.self_attn.o_proj.weight"),
    ("transformer.h.{i}.ln_2.weight", "llm.model.layers.{i}.post_attention_layernorm.weight"),
    # v1: c_proj(w1(x) * silu(w2(x)))  ==  Qwen2: down_proj(silu(gate_proj(x)) * up_proj(x))
    ("transformer.h.{i}.mlp.w1.weight", "llm.model.layers.{i}.mlp.up_proj.weight"),
    ("transformer.h.{i}.mlp.w2.weight", "llm.model.layers.{i}.mlp.gate_proj.weight"),
    ("transformer.h.{i}.mlp.c_proj.weight", "llm.model.layers.{i}.mlp.down_proj.weight"),
    ("transformer.audio.conv1.{p}", "audio.conv1.{p}"),
    ("transformer.audio.conv2.{p}", "audio.conv2.{p}"),
    ("transformer.audio.positional_embedding", "audio.embed_positions.weight"),
    ("transformer.audio.blocks.{i}.attn.query.{p}", "audio.layers.{i}.self_attn.q_proj.{p}"),
    ("transformer.audio.blocks.{i}.attn.key.weight", "audio.layers.{i}.self_attn.k_proj.weight"),  # no bias
    ("transformer.audio.blocks.{i}.attn.value.{p}", "audio.layers.{i}.self_attn.v_proj.{p}"),
    ("transformer.audio.blocks.{i}.attn.out.{p}", "audio.layers.{i}.self_attn.out_proj.{p}"),
    ("transformer.audio.blocks.{i}.attn_ln.{p}", "audio.layers.{i}.self_attn_layer_norm.{p}"),
    ("transformer.audio.blocks.{i}.mlp.0.{p}", "audio.layers.{i}.fc1.{p}"),
    ("transformer.audio.blocks.{i}.mlp.2.{p}", "audio.layers.{i}.fc2.{p}"),
    ("transformer.audio.blocks.{i}.mlp_ln.{p}", "audio.layers.{i}.final_layer_norm.{p}"),
    ("transformer.audio.ln_post.{p}", "audio.ln_post.{p}"),
    ("transformer.audio.proj.{p}", "audio.proj.{p}"),
    ("transformer.audio.audio_bos_eos_token.weight", "audio.audio_bos_eos_token.weight"),
]
# The fused projection, split into three in our layout (rows [0:H] = q, [H:2H] = k, [2H:3H] = v).
_RELEASE_QKV = "transformer.h.{i}.attn.c_attn.{p}"
_OURS_QKV = tuple(f"llm.model.layers.{{i}}.self_attn.{x}_proj.{{p}}" for x in "qkv")
# Buffers some v1 checkpoints carry that hold no weights (rebuilt at load by every implementation).
_RELEASE_IGNORED = re.compile(r"(\.masked_bias|\.rotary_emb\.inv_freq|\.logn_tensor)$")


# ----------------------------------------------------------------------------------------------------------------
# Release layout <-> ours: state dicts


def convert_release_state_dict(sd: Mapping[str, torch.Tensor], cfg: Mapping[str, Any] | None = None) -> StateDict:
    """A state dict in the released layout (Qwen-Audio, or Qwen-7B v1 without `transformer.audio.*`) -> our names
    (`audio.*`, `llm.*`). `cfg` is the release's config.json (checked when given: no kv grouping, full rotary,
    no biases but the fused qkv). Strict: an unknown key raises. Tensors keep their dtype; split q/k/v are copies,
    every other tensor is the input's own object."""
    if cfg is not None:
        _check_release_config(cfg)
    out: StateDict = {}
    unknown = []
    qkv = name_pattern(_RELEASE_QKV)
    for key, tensor in sd.items():
        if _RELEASE_IGNORED.search(key):
            continue
        m = qkv.match(key)
        if m:
            if tensor.shape[0] % 3:
                raise ValueError(f"{key} has {tensor.shape[0]} rows, not a multiple of 3 (fused q|k|v)")
            for name, part in zip(_OURS_QKV, tensor.chunk(3, dim=0)):
                out[fill_name(name, m.groupdict())] = part.clone()  # clones: own storage, safe to save separately
            continue
        new = rename(key, _RELEASE_TO_OURS)
        if new is None:
            unknown.append(key)
        else:
            out[new] = tensor
    if unknown:
        raise ValueError(f"not a released Qwen(-Audio) layout: unknown keys {sorted(unknown)[:8]}")
    return out


def export_release_state_dict(model: QwenAudioModel | Mapping[str, torch.Tensor]) -> StateDict:
    """Our model (or its state dict, `audio.*` / `llm.*`) -> the released layout: the inverse of
    `convert_release_state_dict` (q/k/v fused back into `c_attn`). Refuses what the release cannot hold: grouped kv
    heads, an o_proj or MLP bias. A tied LM writes its embedding as `lm_head.weight` too (the release is untied).
    An `llm.*`-only state dict gives a plain Qwen-7B (v1) layout."""
    sd = model.state_dict() if isinstance(model, torch.nn.Module) else dict(model)
    out: StateDict = {}
    unknown = []
    qkv_parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    patterns = [(x, name_pattern(t)) for x, t in zip("qkv", _OURS_QKV)]
    for key, tensor in sd.items():
        for which, pat in patterns:
            m = pat.match(key)
            if m:
                qkv_parts.setdefault((m["i"], m["p"]), {})[which] = tensor
                break
        else:
            new = rename(key, _RELEASE_TO_OURS, reverse=True)
            if new is None:
                unknown.append(key)
            else:
                out[new] = tensor
    if unknown:
        raise ValueError(
            "the released layout has no place for "
            f"{sorted(unknown)[:8]} (grouped-query attention, o_proj/MLP biases and non-Qwen2 LLMs are not v1)"
        )
    for (i, p), parts in sorted(qkv_parts.items()):
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"layer {i}: {p} of q/k/v incomplete ({sorted(parts)})")
        if not parts["q"].shape == parts["k"].shape == parts["v"].shape:
            raise ValueError(
                f"layer {i}: q/k/v {p} shapes {[tuple(parts[x].shape) for x in 'qkv']} differ: grouped kv heads "
                "(num_key_value_heads < num_attention_heads) cannot be written as Qwen v1's fused c_attn"
            )
        out[fill_name(_RELEASE_QKV, {"i": i, "p": p})] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    wte, head = out.get("transformer.wte.weight"), out.get("lm_head.weight")
    if wte is not None and (head is None or head.data_ptr() == wte.data_ptr()):
        out["lm_head.weight"] = wte.clone()  # tied -> an untied copy (a shared tensor would be saved once)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Release layout <-> ours: configs


def _check_release_config(cfg: Mapping[str, Any]) -> None:
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    problems = []
    if float(cfg.get("rotary_pct", 1.0)) != 1.0:
        problems.append(f"rotary_pct={cfg['rotary_pct']} (Qwen2 rotates every channel)")
    if int(cfg.get("kv_channels", hidden // heads)) * heads != hidden:
        problems.append(f"kv_channels x heads = {cfg['kv_channels']} x {heads} != hidden_size {hidden}")
    if not cfg.get("no_bias", True):
        problems.append("no_bias=false (Qwen2 has no o_proj/MLP bias)")
    if problems:
        raise ValueError("this Qwen v1 config has no exact Qwen2 equivalent: " + "; ".join(problems))


def release_to_qwen2_config(
    cfg: Mapping[str, Any], eod_id: int = RELEASE_EOD_ID, attn_implementation: str = "sdpa"
) -> Qwen2Config:
    """The Qwen2Config computing what a Qwen v1 config.json computes (exactly in training; at inference for a
    total length <= `seq_length`, see `docs/interop.md` for dynamic NTK and logn attention beyond it)."""
    from transformers import Qwen2Config

    _check_release_config(cfg)
    vocab = int(cfg["vocab_size"])
    special = eod_id if eod_id < vocab else None
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=int(cfg["hidden_size"]),
        intermediate_size=int(cfg["intermediate_size"]) // 2,  # v1's w1/w2 are intermediate_size // 2 wide
        num_hidden_layers=int(cfg["num_hidden_layers"]),
        num_attention_heads=int(cfg["num_attention_heads"]),
        num_key_value_heads=int(cfg["num_attention_heads"]),
        hidden_act="silu",
        max_position_embeddings=int(cfg.get("max_position_embeddings", cfg.get("seq_length", 2048))),
        initializer_range=float(cfg.get("initializer_range", 0.02)),
        rms_norm_eps=float(cfg["layer_norm_epsilon"]),
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.get("rotary_emb_base", 10000))},
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_dropout=float(cfg.get("attn_dropout_prob", 0.0)),
        use_sliding_window=False,
        bos_token_id=special,
        eos_token_id=special,
        pad_token_id=special,
    )
    # Set after construction: the typed constructor does not declare it (its **kwargs path calls this same setter).
    config._attn_implementation = attn_implementation
    return config


def release_to_model_config(cfg: Mapping[str, Any], **overrides: Any) -> ModelConfig:
    """A ModelConfig with the dims of a released Qwen-Audio config.json (`audio` section included); special ids
    default to the release's (`<audio>` from `audio.audio_start_id`, `</audio>` the next id)."""
    a = cfg["audio"]
    start = int(a.get("audio_start_id", RELEASE_AUDIO_START_ID))
    fields: dict[str, Any] = dict(
        preset="tiny",  # only as a container: every dim below is explicit and both sources are None
        encoder_source=None,
        llm_source=None,
        n_mels=int(a["n_mels"]),
        encoder_d_model=int(a["n_state"]),
        encoder_layers=int(a["n_layer"]),
        encoder_heads=int(a["n_head"]),
        encoder_ffn_dim=4 * int(a["n_state"]),  # openai-whisper's MLP is 4 x d_model wide
        max_source_positions=int(a["n_ctx"]),
        llm_hidden_size=int(cfg["hidden_size"]),
        llm_layers=int(cfg["num_hidden_layers"]),
        llm_heads=int(cfg["num_attention_heads"]),
        llm_kv_heads=int(cfg["num_attention_heads"]),
        llm_intermediate_size=int(cfg["intermediate_size"]) // 2,
        llm_max_position_embeddings=int(cfg.get("max_position_embeddings", cfg.get("seq_length", 2048))),
        llm_tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        llm_rms_norm_eps=float(cfg["layer_norm_epsilon"]),
        llm_rope_theta=float(cfg.get("rotary_emb_base", 10000)),
        vocab_size=int(cfg["vocab_size"]),
        audio_start_id=start,
        audio_end_id=start + 1,  # the release finds </audio> as audio_start_id + 1
        audio_pad_id=RELEASE_AUDIO_PAD_ID,
        eod_id=RELEASE_EOD_ID,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def model_to_release_config(model: QwenAudioModel, seq_length: int = 2048) -> dict[str, Any]:
    """The release's config.json for our model (what `QWenLMHeadModel` needs to build the same shapes).
    `seq_length` is where the release's inference-time dynamic NTK / logn attention start (2048 in Qwen-Audio)."""
    lc = model.llm.config.get_text_config() if hasattr(model.llm.config, "get_text_config") else model.llm.config
    wc = model.audio.whisper_config
    heads = int(lc.num_attention_heads)
    problems = []
    if int(lc.num_key_value_heads) != heads:
        problems.append(f"num_key_value_heads {lc.num_key_value_heads} != num_attention_heads {heads}")
    rope = dict(getattr(lc, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
        problems.append(f"rope scaling {rope}")
    if wc.encoder_ffn_dim != 4 * wc.d_model:
        problems.append(f"encoder_ffn_dim {wc.encoder_ffn_dim} != 4 x d_model (openai-whisper's MLP width)")
    if wc.activation_function != "gelu":
        problems.append(f"encoder activation {wc.activation_function}")
    if model.cfg.audio_end_id != model.cfg.audio_start_id + 1:
        problems.append("audio_end_id != audio_start_id + 1 (the release derives </audio> from <audio>)")
    if problems:
        raise ValueError("the released code cannot build this model: " + "; ".join(problems))
    embedding = embedding_weight(model.llm)
    return {
        "architectures": ["QWenLMHeadModel"],
        "auto_map": {
            "AutoConfig": "configuration_qwen.QWenConfig",
            "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel",
        },
        "model_type": "qwen",
        "attn_dropout_prob": float(getattr(lc, "attention_dropout", 0.0)),
        "emb_dropout_prob": 0.0,
        # All three false, as the release's config.json: QWenLMHeadModel then picks the precision from the device,
        # and a caller's `bf16=True` / `fp16=True` / `fp32=True` (the release README's way) is the only one set.
        # Writing the checkpoint's dtype here made that call fail: 'Only one of "bf16", "fp16", "fp32" can be true'.
        "bf16": False,
        "fp16": False,
        "fp32": False,
        "hidden_size": int(lc.hidden_size),
        "intermediate_size": 2 * int(lc.intermediate_size),
        "initializer_range": float(lc.initializer_range),
        "kv_channels": int(lc.hidden_size) // heads,
        "layer_norm_epsilon": float(lc.rms_norm_eps),
        "max_position_embeddings": int(lc.max_position_embeddings),
        "no_bias": True,
        "num_attention_heads": heads,
        "num_hidden_layers": int(lc.num_hidden_layers),
        "rotary_emb_base": float(rope.get("rope_theta", 10000.0)),
        "rotary_pct": 1.0,
        "scale_attn_weights": True,
        "seq_length": seq_length,
        "tie_word_embeddings": False,
        "use_cache": True,
        "use_dynamic_ntk": True,
        "use_flash_attn": "auto",
        "use_logn_attn": True,
        "vocab_size": int(embedding.shape[0]),
        "audio": {
            "n_mels": int(wc.num_mel_bins),
            "n_ctx": int(wc.max_source_positions),
            "n_state": int(wc.d_model),
            "n_head": int(wc.encoder_attention_heads),
            "n_layer": len(model.audio.layers),
            "output_dim": int(model.audio.proj.out_features),
            "avg_pool": True,
            "add_audio_bos_eos_token": True,
            "audio_start_id": int(model.cfg.audio_start_id),
        },
    }


# ----------------------------------------------------------------------------------------------------------------
# Release layout <-> ours: checkpoints


def export_release_checkpoint(
    model: QwenAudioModel, out_dir: str | Path, seq_length: int = 2048, max_shard_size: str = "5GB"
) -> Path:
    """Write `config.json` + safetensors in the released Qwen-Audio layout. The release's code files
    (modeling_qwen.py, configuration_qwen.py, audio.py, tokenizer files, mel_filters.npz) are not ours to ship:
    copy them from the released repository beside these to run its inference/evaluation code on the weights."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = model_to_release_config(model, seq_length=seq_length)
    save_weights(export_release_state_dict(model), out, max_shard_size)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


# ----------------------------------------------------------------------------------------------------------------
# Release -> ours: models


def _source_state(
    src: str | Path | Mapping[str, torch.Tensor], release_config: Mapping[str, Any] | None
) -> tuple[Mapping[str, torch.Tensor], dict[str, Any]]:
    if isinstance(src, Mapping):
        if release_config is None:
            raise ValueError("a state dict source needs its release_config (the config.json dict)")
        return src, dict(release_config)
    sd, cfg = load_release_checkpoint(src)
    return sd, dict(release_config) if release_config is not None else cfg


def import_release_llm(
    src: str | Path | Mapping[str, torch.Tensor],
    release_config: Mapping[str, Any] | None = None,
    dtype: str | None = None,
    attn_implementation: str = "sdpa",
    eod_id: int = RELEASE_EOD_ID,
    save_dir: str | Path | None = None,
) -> PreTrainedModel:
    """A Qwen v1 LLM checkpoint (Qwen-7B, or the LLM half of Qwen-Audio: `transformer.audio.*` is skipped) ->
    a native `Qwen2ForCausalLM` computing the same function. `dtype` None keeps the checkpoint's. With `save_dir`
    the result is also written there (`save_pretrained`): `ModelConfig(llm_source=save_dir)` then builds the
    paper's stage-1 model from it natively."""
    sd, cfg = _source_state(src, release_config)
    llm_only = {k: v for k, v in sd.items() if not k.startswith("transformer.audio.")}
    converted = convert_release_state_dict(llm_only, cfg)
    llm_sd = strip_prefix(converted, "llm.")
    wanted = checkpoint_dtype(dtype, llm_sd)
    llm = load_native_llm(release_to_qwen2_config(cfg, eod_id, attn_implementation), llm_sd, wanted)
    if save_dir is not None:
        llm.save_pretrained(str(save_dir))
    return llm


def import_release_checkpoint(
    src: str | Path | Mapping[str, torch.Tensor],
    release_config: Mapping[str, Any] | None = None,
    dtype: str | None = None,
    attn_implementation: str = "sdpa",
    **config_overrides: Any,
) -> QwenAudioModel:
    """A released Qwen-Audio checkpoint (directory, hub name, or state dict + its config.json dict) -> our
    `QwenAudioModel` with a native Qwen2 LLM; no remote code. `dtype` None keeps the checkpoint's;
    `config_overrides` go to the ModelConfig (e.g. the special ids of a tokenizer other than the release's).
    Save it with `model.save_pretrained(dir)`; train it with `model.llm_source` / the trainer's usual loading."""
    sd, cfg = _source_state(src, release_config)
    converted = convert_release_state_dict(sd, cfg)
    audio_sd, llm_sd = strip_prefix(converted, "audio."), strip_prefix(converted, "llm.")
    if not audio_sd:
        raise ValueError("no transformer.audio.* weights: this is a plain Qwen v1 LLM, use import_release_llm")
    wanted = checkpoint_dtype(dtype, llm_sd)
    mcfg = release_to_model_config(
        cfg, dtype=dtype_name(wanted), attn_implementation=attn_implementation, **config_overrides
    ).resolved()

    llm = load_native_llm(release_to_qwen2_config(cfg, mcfg.eod_id, attn_implementation), llm_sd, wanted)
    if mcfg.llm_hidden_size is None:  # release_to_model_config sets it from the config; an override may not
        raise ValueError("llm_hidden_size=None: the projector needs the LLM width")
    whisper_config = whisper_config_from_dims(mcfg)
    audio = AudioEncoder(build_whisper_encoder(whisper_config, device="meta"), mcfg.llm_hidden_size)
    audio.load_state_dict(audio_sd, strict=True, assign=True)
    audio.to(wanted)
    rows = embedding_weight(llm).shape[0]
    too_big = {n: getattr(mcfg, n) for n in ("audio_start_id", "audio_end_id", "audio_pad_id", "eod_id")}
    too_big = {n: v for n, v in too_big.items() if v >= rows}
    if too_big:
        raise ValueError(f"special ids {too_big} are outside the {rows}-row embedding: pass them as overrides")
    return QwenAudioModel(mcfg, audio, llm).eval()
