"""Building a QwenAudioModel from a ModelConfig: tiny from dims (no download), or loaded from checkpoints.

Owns: `build_llm` (dims or any causal LM, embedding grown to the tokenizer), `build_audio_encoder` (dims or a
Whisper checkpoint's encoder) and `build_model` (both halves, or a whole saved model via `init_from`).
Must not: enter deepspeed.zero.Init (callers build outside it; transformers handles ZeRO-3 for the LLM itself),
train, or know about tokenizers beyond the ids and vocabulary size in the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from qwenaudio_train.model.config import (
    ModelConfig,
    check_attn_backend,
    encoder_dtype,
    qwen2_config_from_dims,
    torch_dtype,
    whisper_config_from_dims,
)
from qwenaudio_train.model.encoder import AudioEncoder, build_whisper_encoder, load_whisper_encoder
from qwenaudio_train.model.qwen_audio import QwenAudioModel, embedding_rows, embedding_weight

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def build_llm(cfg: ModelConfig) -> PreTrainedModel:
    """A tiny Qwen2 from the dims (source None) or any causal LM via AutoModelForCausalLM.from_pretrained; its
    embedding is grown to cfg.vocab_size (rounded up to a multiple of cfg.pad_vocab_to_multiple_of) if smaller.

    Under a live ZeRO-3 HfDeepSpeedConfig, transformers builds/loads the LLM inside zero.Init itself."""
    from transformers import AutoModelForCausalLM

    cfg = cfg.resolved()
    check_attn_backend(cfg.attn_implementation)
    dtype = torch_dtype(cfg.dtype) or torch.float32
    if cfg.llm_source is None:
        llm = AutoModelForCausalLM.from_config(
            qwen2_config_from_dims(cfg), dtype=torch.float32 if dtype == "auto" else dtype
        )
    else:
        llm = AutoModelForCausalLM.from_pretrained(
            cfg.llm_source,
            dtype=dtype,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
        )
    rows = embedding_rows(llm)  # the full count also under ZeRO-3
    if cfg.vocab_size is not None and rows < cfg.vocab_size:
        llm.resize_token_embeddings(cfg.vocab_size, pad_to_multiple_of=cfg.pad_vocab_to_multiple_of)
        rows = llm.get_input_embeddings().num_embeddings
    too_big = {
        name: getattr(cfg, name)
        for name in ("audio_start_id", "audio_end_id", "audio_pad_id", "eod_id")
        if getattr(cfg, name) >= rows
    }
    if too_big:
        raise ValueError(f"special ids {too_big} are outside the LLM's {rows}-row embedding: set vocab_size")
    return llm


def build_audio_encoder(cfg: ModelConfig, llm_hidden_size: int, init_std: float = 0.02) -> AudioEncoder:
    """The Whisper encoder from dims (random) or from a checkpoint (decoder dropped), plus pool/ln/proj/bos-eos.
    Builds the encoder outside any zero.Init (transformers' WhisperEncoder cannot be built inside one)."""
    cfg = cfg.resolved()
    check_attn_backend(cfg.attn_implementation)
    if cfg.encoder_source is None:
        whisper = build_whisper_encoder(whisper_config_from_dims(cfg))
    else:
        whisper = load_whisper_encoder(cfg.encoder_source, cfg.attn_implementation)
        if whisper.config.num_mel_bins != cfg.n_mels:
            raise ValueError(
                f"{cfg.encoder_source} takes {whisper.config.num_mel_bins} mel bins but ModelConfig.n_mels is "
                f"{cfg.n_mels}"
            )
    audio = AudioEncoder(whisper, llm_hidden_size, init_std=init_std)
    return audio.to(encoder_dtype(cfg.dtype, {"w": whisper.conv1.weight}))


def build_model(cfg: ModelConfig) -> QwenAudioModel:
    """Build (tiny, no download) or load (hub name / local dir) both halves. Call outside deepspeed.zero.Init."""
    cfg = cfg.resolved()
    check_attn_backend(cfg.attn_implementation)  # before any weights are read
    if cfg.init_from:
        model = QwenAudioModel.from_pretrained(  # remote code: the user's model.trust_remote_code, not the folder's
            cfg.init_from,
            dtype=cfg.dtype,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
        )
        for name in ("audio_start_id", "audio_end_id", "audio_pad_id", "eod_id"):
            if getattr(model.cfg, name) != getattr(cfg, name):
                raise ValueError(
                    f"model.init_from={cfg.init_from}: its {name} is {getattr(model.cfg, name)}, the "
                    f"tokenizer's is {getattr(cfg, name)}; use the tokenizer the model was trained with"
                )
        rows = embedding_weight(model.llm).shape[0]
        if cfg.vocab_size is not None and rows < cfg.vocab_size:
            raise ValueError(
                f"model.init_from={cfg.init_from}: {rows} embedding rows < tokenizer size {cfg.vocab_size}"
            )
        return model
    llm = build_llm(cfg)
    llm_config = llm.config.get_text_config() if hasattr(llm.config, "get_text_config") else llm.config
    init_std = float(getattr(llm_config, "initializer_range", 0.02))
    audio = build_audio_encoder(cfg, llm_config.hidden_size, init_std=init_std)
    return QwenAudioModel(cfg, audio, llm)
