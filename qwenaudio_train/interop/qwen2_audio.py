"""Interop with transformers' `Qwen2AudioForConditionalGeneration`: export our model to it, import it back.

The port's layout: `model.audio_tower.*` (transformers Whisper layer names, the same as our `audio.*`),
`model.multi_modal_projector.linear` (our `audio.proj`), `model.language_model.*`, `lm_head` (our `llm.*`). The
port has no learned audio bos/eos. A model of the Qwen-Audio family (`model.family=qwen_audio`) exports its learned
bos/eos as the embedding rows of its `<audio>` / `</audio>` ids; a model of the Qwen2-Audio family (an imported
Qwen2-Audio checkpoint, trained here) is the port's own function: its `<|audio_bos|>` / `<|audio_eos|>` rows are
ordinary token embeddings, and the export writes them as they are, with the tokenizer (its chat template) and a
`preprocessor_config.json` (`WhisperFeatureExtractor`, 128 bins) so `AutoProcessor.from_pretrained` loads the
directory. Importing a real Qwen2-Audio directory gives a `qwen2_audio`-family model; its tokenizer is read by
`load_tokenizer(directory)` as-is (tokenizer.py).

Owns: the ours <-> port name table, `qwen2_audio_config`, `qwen2_audio_state_dict`, `export_qwen2_audio`,
`import_qwen2_audio`, `export_qwen2_audio_processor`, `export_qwen2_audio_adapter` (a LoRA adapter of ours ->
one peft loads onto the exported model), and Qwen2-Audio's own special ids. What is exact and what is
not: docs/interop.md.
Must not: touch the training loop or data; need network or trust_remote_code.
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
    dtype_name,
    load_native_llm,
    load_release_checkpoint,
    rename,
    resolve_dir,
    save_weights,
    strip_prefix,
)
from qwenaudio_train.model import (
    AudioEncoder,
    ModelConfig,
    QwenAudioModel,
    build_whisper_encoder,
    concrete_dtype,
    embedding_weight,
)
from qwenaudio_train.model.family import QWEN2_AUDIO, QWEN_AUDIO, get_family

if TYPE_CHECKING:
    from transformers import Qwen2AudioConfig

# Qwen2-Audio's own ids in its Qwen2 tokenizer (`<|AUDIO|>`, `<|audio_bos|>`, `<|audio_eos|>`, `<|endoftext|>`).
QWEN2_AUDIO_TOKEN_ID = 151646
QWEN2_AUDIO_BOS_ID = 151647
QWEN2_AUDIO_EOS_ID = 151648
QWEN2_EOD_ID = 151643

EXPORT_SIDECAR = "qwen_audio_export.json"

# Name table (templates: see common.py), used in both directions.
_OURS_TO_PORT: list[tuple[str, str]] = [
    ("audio.conv1.{p}", "model.audio_tower.conv1.{p}"),
    ("audio.conv2.{p}", "model.audio_tower.conv2.{p}"),
    ("audio.embed_positions.weight", "model.audio_tower.embed_positions.weight"),
    ("audio.layers.{rest}", "model.audio_tower.layers.{rest}"),
    ("audio.ln_post.{p}", "model.audio_tower.layer_norm.{p}"),  # both after the pool
    ("audio.proj.{p}", "model.multi_modal_projector.linear.{p}"),
    ("llm.model.{rest}", "model.language_model.{rest}"),
    ("llm.lm_head.weight", "lm_head.weight"),
]
_BOS_EOS = "audio.audio_bos_eos_token.weight"


def qwen2_audio_config(model: QwenAudioModel) -> Qwen2AudioConfig:
    """The `Qwen2AudioConfig` of our model: encoder dims from the Whisper config, the LLM's own config as
    text_config, `audio_token_index` = our audio pad id (the port fills those positions with audio features)."""
    from transformers import Qwen2AudioConfig

    wc = model.audio.whisper_config
    audio_config = dict(
        model_type="qwen2_audio_encoder",
        num_mel_bins=int(wc.num_mel_bins),
        encoder_layers=len(model.audio.layers),
        encoder_attention_heads=int(wc.encoder_attention_heads),
        encoder_ffn_dim=int(wc.encoder_ffn_dim),
        d_model=int(wc.d_model),
        dropout=float(wc.dropout),
        attention_dropout=float(wc.attention_dropout),
        activation_function=str(wc.activation_function),
        activation_dropout=float(wc.activation_dropout),
        scale_embedding=bool(wc.scale_embedding),
        max_source_positions=int(wc.max_source_positions),
        encoder_layerdrop=0.0,
    )
    text_config = model.llm.config.to_dict()
    return Qwen2AudioConfig(
        audio_config=audio_config, text_config=text_config, audio_token_index=int(model.cfg.audio_pad_id)
    )


def qwen2_audio_state_dict(
    model: QwenAudioModel | Mapping[str, torch.Tensor],
    audio_start_id: int | None = None,
    audio_end_id: int | None = None,
    learned_bos_eos: bool | None = None,
) -> StateDict:
    """Our weights under the port's names. The port has no learned audio bos/eos: its `<|audio_bos|>` /
    `<|audio_eos|>` are text tokens. With learned bos/eos (Qwen-Audio's family; default for a state dict) our
    bos/eos rows are written into the embedding rows of our `<audio>` / `</audio>` ids, which our own forward never
    reads (it always overwrites those positions). A Qwen2-Audio-family model's forward reads those rows, so they
    stay as they are and the unused `audio_bos_eos_token` is not written."""
    if isinstance(model, torch.nn.Module):
        sd = model.state_dict()
        audio_start_id = model.cfg.audio_start_id if audio_start_id is None else audio_start_id
        audio_end_id = model.cfg.audio_end_id if audio_end_id is None else audio_end_id
        if learned_bos_eos is None:
            learned_bos_eos = get_family(model.cfg.family).learned_bos_eos
    else:
        sd = dict(model)
    if learned_bos_eos is False:
        return _renamed(sd)
    if audio_start_id is None or audio_end_id is None:
        raise ValueError("audio_start_id and audio_end_id are needed with a state dict")
    out = _renamed(sd)
    embed_key = "model.language_model.embed_tokens.weight"
    if embed_key not in out:
        raise ValueError("the LLM has no model.embed_tokens.weight: the port expects a transformers decoder LM")
    embed = out[embed_key].detach().clone()
    embed[[audio_start_id, audio_end_id]] = sd[_BOS_EOS].to(embed.dtype)
    out[embed_key] = embed
    return out


def _renamed(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Every weight but the learned bos/eos under the port's name; ValueError for one with no place there."""
    out: StateDict = {}
    unknown = []
    for key, tensor in sd.items():
        if key == _BOS_EOS:
            continue
        new = rename(key, _OURS_TO_PORT)
        if new is None:
            unknown.append(key)
        else:
            out[new] = tensor
    if unknown:
        raise ValueError(f"no place in Qwen2AudioForConditionalGeneration for {sorted(unknown)[:8]}")
    return out


def export_qwen2_audio(
    model: QwenAudioModel, out_dir: str | Path, max_shard_size: str = "5GB", tokenizer: Any = None
) -> Path:
    """Write a `Qwen2AudioForConditionalGeneration` directory (config.json + safetensors) for our model, loadable
    by transformers alone. Feed it the same input_ids as our model (start + audio pad x N + end): audio_token_index
    is our pad id; with learned bos/eos (Qwen-Audio's family) their rows live in the embedding (see
    `qwen2_audio_state_dict`). Also writes `qwen_audio_export.json` naming those ids and the family. With the
    model's `tokenizer` (an `AudioTokenizer` of the Qwen2-Audio family) it also writes the tokenizer with its chat
    template and the processor (`export_qwen2_audio_processor`), so `AutoProcessor.from_pretrained(out_dir)` loads
    it. What is exact and what is not: docs/interop.md."""
    family = get_family(model.cfg.family)
    llm_config = model.llm.config
    if family.learned_bos_eos and getattr(llm_config, "tie_word_embeddings", False):
        raise ValueError(
            "the LLM ties lm_head to the embedding: writing the audio bos/eos rows into the embedding would also "
            "change the lm_head logits of <audio>/</audio>; untie it first"
        )
    if model.llm.base_model_prefix != "model" or not hasattr(model.llm, "lm_head"):
        raise ValueError(f"{type(model.llm).__name__} is not a `model` + `lm_head` transformers causal LM")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = qwen2_audio_config(model)
    config.dtype = embedding_weight(model.llm).dtype
    save_weights(qwen2_audio_state_dict(model), out, max_shard_size)
    config.save_pretrained(str(out))
    sidecar = {
        "audio_token_id": int(model.cfg.audio_pad_id),
        "audio_bos_token_id": int(model.cfg.audio_start_id),
        "audio_eos_token_id": int(model.cfg.audio_end_id),
        "eod_id": int(model.cfg.eod_id),
        "family": family.name,
        "note": "exported by qwenaudio_train.interop.export_qwen2_audio; audio bos/eos embeddings are the "
        "embedding rows of audio_bos_token_id / audio_eos_token_id",
    }
    (out / EXPORT_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    if tokenizer is not None:
        export_qwen2_audio_processor(tokenizer, out, model.audio.n_mels)
    return out


def export_qwen2_audio_processor(tokenizer: Any, out_dir: str | Path, n_mels: int) -> Path:
    """Write the tokenizer (with the family's chat template), a `WhisperFeatureExtractor(feature_size=n_mels)` and
    the `Qwen2AudioProcessor` config into `out_dir`, as transformers saves a Qwen2-Audio processor. `tokenizer` is
    an `AudioTokenizer` of the Qwen2-Audio family (its transformers tokenizer carries the three audio tokens)."""
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    family = tokenizer.family
    hf = tokenizer.hf_tokenizer
    if hf is None or family.learned_bos_eos or family.chat_template is None:
        raise ValueError(
            f"a Qwen2-Audio processor needs a transformers tokenizer of the qwen2_audio family, got a "
            f"{tokenizer.backend_name} tokenizer of {family.name}: export without tokenizer="
        )
    if not getattr(hf, "chat_template", None):
        hf.chat_template = family.chat_template
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    processor = Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=hf, chat_template=hf.chat_template)
    processor.save_pretrained(str(out_dir))  # transformers 5: processor_config.json holds the extractor too
    extractor.save_pretrained(str(out_dir))  # preprocessor_config.json, the layout of the hub's checkpoints
    return Path(out_dir)


ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def export_qwen2_audio_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """A LoRA adapter saved by our training (peft, around the LLM alone) -> the same adapter for the exported
    `Qwen2AudioForConditionalGeneration`, so `PeftModel.from_pretrained(port_model, out_dir)` loads it: weight names
    move under `model.language_model.` (the port's LLM; `lm_head` stays at the top) and `target_modules` becomes a
    pattern that matches the LLM's layers only, not the audio tower's layers of the same names."""
    from safetensors.torch import load_file, save_file

    src, out = Path(adapter_dir), Path(out_dir)
    if not (src / ADAPTER_CONFIG).is_file() or not (src / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"{src} holds no {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS}: give the adapter/ directory")
    config = json.loads((src / ADAPTER_CONFIG).read_text())
    targets = config.get("target_modules")
    if isinstance(targets, list):  # peft full-matches a string pattern against the module's dotted name
        config["target_modules"] = r".*language_model\..*\.(" + "|".join(sorted(map(re.escape, targets))) + ")"
    config["base_model_name_or_path"] = None
    prefix = "base_model.model.model."
    weights = {
        ("base_model.model.model.language_model." + k[len(prefix) :] if k.startswith(prefix) else k): v
        for k, v in load_file(str(src / ADAPTER_WEIGHTS)).items()
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return out


def import_qwen2_audio(
    src: str | Path,
    audio_bos_id: int | None = None,
    audio_eos_id: int | None = None,
    eod_id: int | None = None,
    dtype: str | None = None,
    attn_implementation: str = "sdpa",
) -> QwenAudioModel:
    """A `Qwen2AudioForConditionalGeneration` directory -> our QwenAudioModel: the encoder, pool, layer norm and
    projector map one to one; the learned bos/eos are read from the embedding rows of `audio_bos_id` /
    `audio_eos_id` (Qwen2-Audio's `<|audio_bos|>` / `<|audio_eos|>` by default: the ids of the directory's own
    tokenizer when it has one, else 151647 / 151648; a directory written by
    `export_qwen2_audio` names its own ids and family in qwen_audio_export.json, which take precedence). Inputs must
    then use these ids as `<audio>` / `</audio>` and the port's audio token as the pad. A directory without that
    file is Qwen2-Audio's own: the model is of the `qwen2_audio` family (`model.family`), whose fusion keeps the
    bos/eos token embeddings, i.e. the port's function; its tokenizer: `load_tokenizer(src)`."""
    from transformers import PreTrainedConfig, Qwen2AudioConfig, Qwen2AudioEncoderConfig

    root = resolve_dir(src)
    sidecar = root / EXPORT_SIDECAR
    family = QWEN2_AUDIO  # a real Qwen2-Audio directory: its bos/eos are token embeddings
    if sidecar.is_file():
        ids = json.loads(sidecar.read_text())
        audio_bos_id, audio_eos_id, eod_id = ids["audio_bos_token_id"], ids["audio_eos_token_id"], ids["eod_id"]
        family = get_family(ids.get("family", QWEN_AUDIO.name))  # exports before families were Qwen-Audio's
    else:
        own = _own_ids(root)
        audio_bos_id = own[0] if audio_bos_id is None else audio_bos_id
        audio_eos_id = own[1] if audio_eos_id is None else audio_eos_id
        eod_id = own[2] if eod_id is None else eod_id
    config = Qwen2AudioConfig.from_pretrained(str(root))
    sd, _ = load_release_checkpoint(root)  # any transformers weight format
    sd = _port_native_names(sd)
    ours: StateDict = {}
    unknown = []
    for key, tensor in sd.items():
        new = rename(key, _OURS_TO_PORT, reverse=True)
        if new is None:
            unknown.append(key)
        else:
            ours[new] = tensor
    if unknown:
        raise ValueError(f"unexpected Qwen2-Audio weights {sorted(unknown)[:8]}")
    embed = ours["llm.model.embed_tokens.weight"]
    # Qwen-Audio's family: the learned bos/eos come back from those rows; Qwen2-Audio's: unused, kept equal to them.
    ours[_BOS_EOS] = embed[[audio_bos_id, audio_eos_id]].clone()

    ac, tc = config.audio_config, config.text_config
    # Qwen2AudioConfig builds both sub-configs from dicts; the annotation also admits the dicts and None.
    if not isinstance(ac, Qwen2AudioEncoderConfig) or not isinstance(tc, PreTrainedConfig):
        raise ValueError(f"{root}: config.json lacks a Qwen2-Audio audio_config or text_config")
    wanted = concrete_dtype(dtype, embed.dtype)
    mcfg = ModelConfig(
        preset="tiny",
        family=family.name,
        encoder_source=None,
        llm_source=None,
        n_mels=ac.num_mel_bins,
        encoder_d_model=ac.d_model,
        encoder_layers=ac.encoder_layers,
        encoder_heads=ac.encoder_attention_heads,
        encoder_ffn_dim=ac.encoder_ffn_dim,
        max_source_positions=ac.max_source_positions,
        llm_hidden_size=tc.hidden_size,
        llm_layers=tc.num_hidden_layers,
        llm_heads=tc.num_attention_heads,
        llm_kv_heads=getattr(tc, "num_key_value_heads", tc.num_attention_heads),
        llm_intermediate_size=tc.intermediate_size,
        llm_max_position_embeddings=tc.max_position_embeddings,
        llm_tie_word_embeddings=bool(getattr(tc, "tie_word_embeddings", False)),
        llm_rms_norm_eps=float(tc.rms_norm_eps),  # the checkpoint's, recorded (the LLM itself loads from tc)
        llm_rope_theta=float((getattr(tc, "rope_parameters", None) or {}).get("rope_theta", 10000.0)),
        vocab_size=tc.vocab_size,
        audio_start_id=audio_bos_id,
        audio_end_id=audio_eos_id,
        audio_pad_id=int(config.audio_token_index),
        eod_id=eod_id,
        dtype=dtype_name(wanted),
        attn_implementation=attn_implementation,
    ).resolved()
    tc._attn_implementation = attn_implementation
    llm = load_native_llm(tc, strip_prefix(ours, "llm."), wanted)
    from transformers import WhisperConfig

    wc = WhisperConfig(
        num_mel_bins=ac.num_mel_bins,
        d_model=ac.d_model,
        encoder_layers=ac.encoder_layers,
        encoder_attention_heads=ac.encoder_attention_heads,
        encoder_ffn_dim=ac.encoder_ffn_dim,
        max_source_positions=ac.max_source_positions,
        dropout=ac.dropout,
        attention_dropout=ac.attention_dropout,
        activation_dropout=ac.activation_dropout,
        activation_function=ac.activation_function,
        decoder_layers=1,
        decoder_attention_heads=ac.encoder_attention_heads,
        decoder_ffn_dim=ac.encoder_ffn_dim,
    )
    wc._attn_implementation = attn_implementation  # not a declared constructor argument; the same setter
    audio = AudioEncoder(build_whisper_encoder(wc, device="meta"), tc.hidden_size)
    audio.load_state_dict(strip_prefix(ours, "audio."), strict=True, assign=True)
    audio.to(wanted)
    return QwenAudioModel(mcfg, audio, llm).eval()


def _own_ids(root: Path) -> tuple[int, int, int]:
    """(`<|audio_bos|>`, `<|audio_eos|>`, `<|endoftext|>`) ids of a Qwen2-Audio directory's own tokenizer; the
    released ids when it has none (weights only)."""
    if (root / "tokenizer_config.json").is_file():
        from qwenaudio_train.tokenizer import load_tokenizer

        tok = load_tokenizer(root)
        if tok.family is QWEN2_AUDIO:
            return tok.audio_start_id, tok.audio_end_id, tok.eod_id
    return QWEN2_AUDIO_BOS_ID, QWEN2_AUDIO_EOS_ID, QWEN2_EOD_ID


def _port_native_names(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """The hub's Qwen2-Audio checkpoints use the pre-v5 names (`audio_tower.*`, `multi_modal_projector.*`,
    `language_model.model.*`, `language_model.lm_head.*`): map them to the module names transformers builds."""
    out: StateDict = {}
    for key, tensor in sd.items():
        if key.startswith("language_model.model."):
            key = "model.language_model." + key[len("language_model.model.") :]
        elif key == "language_model.lm_head.weight":
            key = "lm_head.weight"
        elif key.startswith(("audio_tower.", "multi_modal_projector.")):
            key = "model." + key
        out[key] = tensor
    return out
