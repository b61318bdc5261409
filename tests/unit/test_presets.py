"""The 7B presets carry the dims of the models they are named for, checked against the published configs.

Each preset's transformers configs (`whisper_config_from_dims`, `qwen2_config_from_dims`) are built on the meta
device (no memory, no download) and their parameter counts compared with the published figures and an independent
closed form. `qwen_audio_7b` must equal what `import_release_checkpoint` builds from the release's own config.json;
`qwen2_audio_7b` what transformers' `Qwen2AudioConfig` builds from Qwen2-Audio-7B's published config.json.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenaudio_train.config import ConfigError, check_train, compose, compose_raw
from qwenaudio_train.interop import release_to_model_config, release_to_qwen2_config
from qwenaudio_train.model import (
    PRESETS,
    AudioEncoder,
    ModelConfig,
    build_whisper_encoder,
    qwen2_config_from_dims,
    whisper_config_from_dims,
)

# QwenLM/Qwen-Audio config.json as released (the chat model's differs only in nothing these tests read).
QWEN_AUDIO_RELEASE_CONFIG = {
    "architectures": ["QWenLMHeadModel"],
    "attn_dropout_prob": 0.0,
    "bf16": False,
    "fp16": False,
    "fp32": False,
    "emb_dropout_prob": 0.0,
    "intermediate_size": 22016,
    "initializer_range": 0.02,
    "kv_channels": 128,
    "layer_norm_epsilon": 1e-05,
    "model_type": "qwen",
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "max_position_embeddings": 8192,
    "no_bias": True,
    "rotary_emb_base": 10000,
    "rotary_pct": 1.0,
    "scale_attn_weights": True,
    "seq_length": 2048,
    "tie_word_embeddings": False,
    "vocab_size": 155947,
    "use_dynamic_ntk": True,
    "use_logn_attn": True,
    "audio": {
        "n_mels": 80,
        "n_ctx": 1500,
        "n_state": 1280,
        "n_head": 20,
        "n_layer": 32,
        "output_dim": 4096,
        "avg_pool": True,
        "add_audio_bos_eos_token": True,
        "audio_start_id": 155163,
    },
}

# Qwen/Qwen2-Audio-7B(-Instruct) config.json: sparse, the rest are Qwen2AudioConfig's / Qwen2Config's defaults.
QWEN2_AUDIO_PUBLISHED_CONFIG = {
    "architectures": ["Qwen2AudioForConditionalGeneration"],
    "audio_config": {"model_type": "qwen2_audio_encoder"},
    "audio_token_index": 151646,
    "model_type": "qwen2_audio",
    "text_config": {
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "intermediate_size": 11008,
        "max_position_embeddings": 8192,
        "model_type": "qwen2",
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000,
        "sliding_window": 32768,
        "use_mrope": False,
        "vocab_size": 156032,
    },
    "vocab_size": 156032,
}

BIG = ["qwen_audio_7b", "qwen2_audio_7b", "qwen_audio_qwen2_7b"]


def preset_config(name: str) -> ModelConfig:
    fixed = {k: PRESETS[name][k] for k in ("n_mels", "family") if k in PRESETS[name]}
    return ModelConfig(preset=name, **fixed).resolved()


def meta_counts(cfg: ModelConfig) -> tuple[int, int]:
    """(LLM parameters, audio-side parameters: encoder + projector + bos/eos) of the model the dims build."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        llm = AutoModelForCausalLM.from_config(qwen2_config_from_dims(cfg))
    audio = AudioEncoder(build_whisper_encoder(whisper_config_from_dims(cfg), device="meta"), cfg.llm_hidden_size)
    return sum(p.numel() for p in llm.parameters()), sum(p.numel() for p in audio.parameters())


def closed_form(cfg: ModelConfig) -> tuple[int, int]:
    """The same counts from the dims by hand: Qwen2 (q/k/v bias, SwiGLU, RMSNorm, untied head) and the Whisper
    encoder (biased attention but k, GELU MLP, LayerNorms, conv stem, positions), pool -> ln_post -> proj."""
    h, f, v = cfg.llm_hidden_size, cfg.llm_intermediate_size, cfg.vocab_size
    assert h and f and v and cfg.llm_heads and cfg.llm_kv_heads and cfg.llm_layers
    kv = h // cfg.llm_heads * cfg.llm_kv_heads
    layer = h * h + h + 2 * (h * kv + kv) + h * h + 3 * h * f + 2 * h
    llm = cfg.llm_layers * layer + h + v * h * (1 if cfg.llm_tie_word_embeddings else 2)
    d, e = cfg.encoder_d_model, cfg.encoder_ffn_dim
    assert d and e and cfg.encoder_layers and cfg.max_source_positions
    block = 4 * d * d + 3 * d + 2 * d * e + e + d + 4 * d
    stem = cfg.n_mels * d * 3 + d + d * d * 3 + d + cfg.max_source_positions * d
    audio = cfg.encoder_layers * block + stem + 2 * d + d * h + h + 2 * h
    return llm, audio


@pytest.mark.parametrize("name", BIG)
def test_parameter_counts_match_published_figures(name: str) -> None:
    cfg = preset_config(name)
    llm, audio = meta_counts(cfg)
    assert (llm, audio) == closed_form(cfg)
    h, d = cfg.llm_hidden_size or 0, cfg.encoder_d_model or 0
    encoder = audio - (d * h + h) - 2 * h  # less the projector and the bos/eos rows
    assert encoder == pytest.approx(0.64e9, rel=0.01)  # Whisper-large's encoder: the Qwen-Audio paper's "640M"
    if name == "qwen_audio_7b":
        # Qwen-7B is 7.72B with its 151,936 rows; the release's 155,947 rows x 4096 x 2 add 33M.
        assert llm == 7_754_182_656 and llm - 2 * 4096 * (155_947 - 151_936) == pytest.approx(7.72e9, rel=0.001)
        assert llm + audio == pytest.approx(8.40e9, rel=0.001)
    elif name == "qwen2_audio_7b":
        # transformers' own model of the published config (no learned bos/eos rows): 8,397,094,912 weights, 8.4B.
        from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

        with torch.device("meta"):
            port = Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(**QWEN2_AUDIO_PUBLISHED_CONFIG))
        assert llm + audio - 2 * 4096 == sum(p.numel() for p in port.parameters()) == 8_397_094_912
    else:
        assert llm == pytest.approx(7.62e9, rel=0.001)  # Qwen2-7B: 7.6B (with its 152,064-row untied head)


def test_qwen_audio_7b_is_what_the_release_imports_to() -> None:
    cfg = preset_config("qwen_audio_7b")
    imported = release_to_model_config(QWEN_AUDIO_RELEASE_CONFIG).resolved()
    dims = [k for k in PRESETS["qwen_audio_7b"] if k not in ("encoder_source", "llm_source", "dtype")]
    assert {k: getattr(cfg, k) for k in dims} == {k: getattr(imported, k) for k in dims}
    assert cfg.llm_source is None and cfg.n_mels == 80 and cfg.llm_intermediate_size == 22016 // 2
    ours, theirs = qwen2_config_from_dims(cfg), release_to_qwen2_config(QWEN_AUDIO_RELEASE_CONFIG)
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
                "tie_word_embeddings", "hidden_act", "use_sliding_window"):  # fmt: skip
        assert getattr(ours, key) == getattr(theirs, key), key
    a = QWEN_AUDIO_RELEASE_CONFIG["audio"]
    wc = whisper_config_from_dims(cfg)
    assert (wc.num_mel_bins, wc.d_model, wc.encoder_layers, wc.encoder_attention_heads, wc.encoder_ffn_dim) == (
        a["n_mels"], a["n_state"], a["n_layer"], a["n_head"], 4 * a["n_state"])  # fmt: skip


def test_qwen2_audio_7b_is_the_published_config() -> None:
    from transformers import Qwen2AudioConfig

    published = Qwen2AudioConfig(**QWEN2_AUDIO_PUBLISHED_CONFIG)
    tc, ac = published.text_config, published.audio_config
    cfg = preset_config("qwen2_audio_7b")
    ours = qwen2_config_from_dims(cfg)
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
                "tie_word_embeddings", "hidden_act"):  # fmt: skip
        assert getattr(ours, key) == getattr(tc, key), key
    wc = whisper_config_from_dims(cfg)
    for key in ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
                "max_source_positions", "activation_function", "scale_embedding"):  # fmt: skip
        assert getattr(wc, key) == getattr(ac, key), key
    assert (cfg.n_mels, cfg.encoder_source, cfg.llm_source) == (128, "openai/whisper-large-v3", None)


def test_presets_compose_from_yaml_and_refuse_a_wrong_mel_count() -> None:
    for name in BIG:
        model = compose("pretrain", [f"model={name}"]).model
        assert model.preset == name and model.n_mels == PRESETS[name].get("n_mels", 80)
    assert compose("pretrain", ["model=qwen_audio_qwen2_7b"]).model.resolved().llm_source == "Qwen/Qwen2-7B"
    with pytest.raises(ValueError, match="model.n_mels=128"):
        ModelConfig(preset="qwen2_audio_7b")  # 80 bins into Whisper-large-v3 would fail only at the first batch
    with pytest.raises(ValueError, match="model.family=qwen2_audio"):
        ModelConfig(preset="qwen2_audio_7b", n_mels=128)
    assert compose("pretrain", ["model=qwen2_audio_7b"]).model.family == "qwen2_audio"
    sft = compose("sft", ["experiment=qwen2_audio_sft"])
    assert sft.model.preset == "qwen2_audio_7b" and sft.lora.enabled and sft.trainer.freeze == "sft"
    assert sft.data.format == "chat"
    stage1 = compose("pretrain", ["experiment=qwen_audio_pretrain"]).model.resolved()
    assert (stage1.llm_hidden_size, stage1.llm_layers, stage1.llm_intermediate_size) == (4096, 32, 11008)


@pytest.mark.parametrize("experiment", ["qwen_audio_pretrain", "qwen2_audio_pretrain", "qwen2_audio_sft"])
def test_a_7b_run_without_llm_weights_stops_before_it_starts(experiment: str, tmp_path: Path) -> None:
    # qwen_audio_7b and qwen2_audio_7b build their LLM natively: with neither llm_source nor init_from it would be
    # 7B random weights (frozen, in stage 1). check_train names the two ways to give it weights.
    entry = "sft" if experiment.endswith("sft") else "pretrain"
    overrides = [f"experiment={experiment}", f"model.tokenizer={tmp_path}"]  # a tokenizer path that exists
    with pytest.raises(ConfigError, match="has no LLM weights: give model.init_from="):
        check_train(compose_raw(entry, overrides))
