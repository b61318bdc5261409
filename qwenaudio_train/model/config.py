"""Model dimensions and sources: `ModelConfig`, its presets, dtype names, and the transformers configs they give.

Owns: `ModelConfig` (every dimension, source checkpoint, special id and dtype of the model; the typed `model` config
section), the attention back-ends (`ATTN_IMPLEMENTATIONS`, `check_attn_backend`), `PRESETS` (tiny for CPU tests;
qwen_audio_7b, qwen2_audio_7b and qwen_audio_qwen2_7b, named for the models whose dims they carry), the release's
special ids, dtype names -> torch dtypes,
and `whisper_config_from_dims` / `qwen2_config_from_dims` (dims -> transformers configs for models built without a
source checkpoint).
Must not: build modules, load weights or import transformers at module level (the config schema imports
`ModelConfig`, which must stay cheap to import).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from qwenaudio_train.model.family import get_family

if TYPE_CHECKING:  # transformers is imported lazily: ModelConfig alone must stay cheap to import
    from transformers import Qwen2Config, WhisperConfig

# The release's ids (see shared/spec/QWEN_AUDIO_FACTS.md §1); a tokenizer with other ids overrides them.
RELEASE_AUDIO_START_ID = 155163  # <audio>
RELEASE_AUDIO_END_ID = 155164  # </audio>
RELEASE_AUDIO_PAD_ID = 151851  # [[[AUDIO:modality]]]
RELEASE_EOD_ID = 151643  # <|endoftext|>

_T = TypeVar("_T")

# The attention back-ends both towers run on (transformers' names). flex_attention needs no extra package (torch's
# FlexAttention, compiled); flash_attention_2 needs the flash_attn package and a CUDA device.
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flex_attention", "flash_attention_2")


@dataclass
class ModelConfig:
    """Model dimensions and sources. Fields left at None are filled from `PRESETS[preset]` by `resolved()`,
    which every builder calls. (Filling lazily, not in __post_init__, keeps the None defaults visible to
    Hydra/OmegaConf, so that a YAML saying only `preset: qwen_audio_7b` gets the 7B values, not tiny's.)

    When `encoder_source` / `llm_source` is set (a hub name or a local directory), that checkpoint's own
    config defines the dimensions and the `encoder_*` / `llm_*` dims below are not used (except `n_mels`, which
    must match the checkpoint because the front-end computes it). With a source of None the module is built
    from the dims with random weights (no download).
    """

    preset: str = "tiny"  # "tiny" | "qwen_audio_7b" | "qwen2_audio_7b" | "qwen_audio_qwen2_7b"
    # The model family (model/family.py): audio tokens and span fusion, mel bins, pretraining prompts, chat template.
    family: str = "qwen_audio"  # qwen_audio | qwen2_audio (Qwen2-Audio's presets and imported checkpoints)
    encoder_source: str | None = None  # e.g. "openai/whisper-large-v2" or a local dir of a Whisper model
    llm_source: str | None = None  # e.g. "Qwen/Qwen2-7B" or a local dir of any causal LM

    n_mels: int = 80  # 80 (Whisper-large-v2); qwen2_audio_7b needs 128 (large-v3), which its YAML sets
    # Whisper encoder dims (used when encoder_source is None)
    encoder_d_model: int | None = None
    encoder_layers: int | None = None
    encoder_heads: int | None = None
    encoder_ffn_dim: int | None = None
    max_source_positions: int | None = None  # encoder frames the positional table covers (1500 = 30 s)
    # Qwen2 dims (used when llm_source is None)
    llm_hidden_size: int | None = None
    llm_layers: int | None = None
    llm_heads: int | None = None
    llm_kv_heads: int | None = None
    llm_intermediate_size: int | None = None
    llm_max_position_embeddings: int | None = None
    llm_tie_word_embeddings: bool | None = None
    llm_rms_norm_eps: float | None = None  # RMSNorm epsilon
    llm_rope_theta: float | None = None  # rotary base

    # Rows of the LLM's embedding: set from the tokenizer by the caller. A loaded LLM with fewer rows is resized
    # to this, rounded up to a multiple of `pad_vocab_to_multiple_of`.
    vocab_size: int | None = None
    pad_vocab_to_multiple_of: int = 64

    audio_start_id: int = RELEASE_AUDIO_START_ID
    audio_end_id: int = RELEASE_AUDIO_END_ID
    audio_pad_id: int = RELEASE_AUDIO_PAD_ID
    eod_id: int = RELEASE_EOD_ID

    dtype: str | None = None  # "float32" | "bfloat16" | "float16" | "auto" (the checkpoint's dtype)
    trust_remote_code: bool = False  # opt-in only, e.g. for the v1 "Qwen/Qwen-7B" (model_type qwen)
    attn_implementation: str = "sdpa"  # eager | sdpa | flex_attention | flash_attention_2 (both towers)
    # A whole saved QwenAudioModel (save_pretrained / qwenaudio-export / interop imports) to start from: encoder,
    # projector, bos/eos and LLM together (e.g. stage 2 from a stage-1 export, or the imported release weights).
    init_from: str | None = None
    # The tokenizer the model is trained with: the release's qwen.tiktoken (exact released ids), a transformers
    # tokenizer directory or hub name, or the demo's BPE (`qwenaudio-data tokenizer`). Required.
    tokenizer: str | None = (
        None  # required by training: a .tiktoken file, a directory holding one, a transformers tokenizer dir or hub name
    )

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown model preset {self.preset!r}; known: {sorted(PRESETS)}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"model.attn_implementation={self.attn_implementation!r}: choose one of {', '.join(ATTN_IMPLEMENTATIONS)}"
            )
        torch_dtype(self.dtype)  # validates
        # A preset's fields with non-None defaults are checked, not filled: 80 mel bins into Whisper-large-v3 would
        # fail only at the first batch, Qwen-Audio's prompts on Qwen2-Audio's weights never.
        for name in ("n_mels", "family"):
            want, have = PRESETS[self.preset].get(name, getattr(self, name)), getattr(self, name)
            if have != want:
                raise ValueError(
                    f"model.preset={self.preset} takes model.{name}={want}, not {have}: set it (model={self.preset} does)"
                )
        get_family(self.family)  # validates the name (mel bins: a preset's or the checkpoint's, checked there)

    def resolved(self) -> ModelConfig:
        """A copy with every field still at None filled from the preset (idempotent)."""
        fill = {k: v for k, v in PRESETS[self.preset].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fill)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Whisper-large's encoder (v2 and v3 share it; v3 reads 128 mel bins): 32 layers of 1280, 20 heads, 30 s.
WHISPER_LARGE_ENCODER: dict[str, Any] = dict(
    encoder_d_model=1280, encoder_layers=32, encoder_heads=20, encoder_ffn_dim=5120, max_source_positions=1500
)
# The 7B LLM of Qwen-Audio (Qwen-7B v1) and of Qwen2-Audio-7B: the same dims (their vocabularies differ).
QWEN_7B_LLM: dict[str, Any] = dict(
    llm_hidden_size=4096,
    llm_layers=32,
    llm_heads=32,
    llm_kv_heads=32,
    llm_intermediate_size=11008,
    llm_max_position_embeddings=8192,
    llm_tie_word_embeddings=False,
    llm_rms_norm_eps=1e-5,
    llm_rope_theta=10000.0,
)

PRESETS: dict[str, dict[str, Any]] = {
    # Small enough for CPU tests: a 2-layer Whisper encoder of width 64 and a 2-layer Qwen2 of width 64.
    "tiny": dict(
        encoder_source=None,
        llm_source=None,
        encoder_d_model=64,
        encoder_layers=2,
        encoder_heads=4,
        encoder_ffn_dim=128,
        max_source_positions=1500,
        llm_hidden_size=64,
        llm_layers=2,
        llm_heads=4,
        llm_kv_heads=2,
        llm_intermediate_size=128,
        llm_max_position_embeddings=4096,
        llm_tie_word_embeddings=False,
        llm_rms_norm_eps=1e-6,
        llm_rope_theta=10000.0,
        dtype="float32",
    ),
    # Qwen-Audio as the paper built it: Whisper-large-v2 encoder + Qwen-7B (v1), whose dims are those of the
    # release's config.json (QwenLM/Qwen-Audio; facts §1-2): v1's `intermediate_size: 22016` counts both MLP
    # branches, so 11008 each; no grouped kv heads; eps 1e-5; rope base 10000; 155,947 embedding rows (151,936 of
    # Qwen-7B grown by the audio tokens). The LLM is a native Qwen2 (q/k/v bias as v1's fused c_attn): these are the
    # dims `import_release_checkpoint` gives the released weights, and `python -m qwenaudio_train.interop qwen-v1-llm
    # Qwen/Qwen-7B DIR` converts the v1 LLM to (then model.llm_source=DIR). With neither llm_source nor init_from the
    # LLM would be random weights: check_train refuses such a run. vocab_size is the release's; a tokenizer's wins.
    "qwen_audio_7b": dict(
        encoder_source="openai/whisper-large-v2",
        llm_source=None,
        **WHISPER_LARGE_ENCODER,
        **QWEN_7B_LLM,
        vocab_size=155947,
        dtype="bfloat16",
    ),
    # Qwen2-Audio-7B(-Instruct): Whisper-large-v3's encoder (128 mel bins) + its 7B LLM, the dims of the published
    # config.json (text_config: 4096 x 32, 32 heads, kv 32, MLP 11008, 8192 positions, eps 1e-5, rope 10000,
    # 156,032 rows, untied; audio_config = large-v3's encoder). Start from the released weights with
    # model.init_from=<qwen2-audio-to-ours output> (docs/qwen2_audio.md); without it both towers are built from
    # these dims, the encoder from openai/whisper-large-v3 (the paper's initialisation).
    "qwen2_audio_7b": dict(
        encoder_source="openai/whisper-large-v3",
        llm_source=None,
        family="qwen2_audio",
        n_mels=128,
        **WHISPER_LARGE_ENCODER,
        **QWEN_7B_LLM,
        vocab_size=156032,
        dtype="bfloat16",
    ),
    # Not the paper's model: Whisper-large-v2 + Qwen2-7B (3584 x 28, 4 kv heads, loaded natively from the hub or a
    # local copy). The dims document Qwen2-7B's config.json; with llm_source set, that checkpoint's config is built.
    "qwen_audio_qwen2_7b": dict(
        encoder_source="openai/whisper-large-v2",
        llm_source="Qwen/Qwen2-7B",
        **WHISPER_LARGE_ENCODER,
        llm_hidden_size=3584,
        llm_layers=28,
        llm_heads=28,
        llm_kv_heads=4,
        llm_intermediate_size=18944,
        llm_max_position_embeddings=131072,
        llm_tie_word_embeddings=False,
        llm_rms_norm_eps=1e-6,
        llm_rope_theta=1000000.0,
        vocab_size=152064,
        dtype="bfloat16",
    ),
}


def check_attn_backend(name: str) -> None:
    """Raise, naming the fix, when the back-end `name` needs a package that is not installed. Called when a model
    is built (not when the config is read: a config may be checked on a machine that will not run it)."""
    import importlib.util

    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ImportError(
            "model.attn_implementation=flash_attention_2 needs the flash_attn package: pip install flash-attn "
            "--no-build-isolation (CUDA), or choose sdpa or flex_attention"
        )


def torch_dtype(name: str | None) -> torch.dtype | str | None:
    """ "float32" -> torch.float32 ...; "auto" and None pass through (None = float32 when building)."""
    if name is None or name == "auto":
        return name
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"dtype must be one of {sorted(table)} or 'auto', got {name!r}")
    return table[name]


def concrete_dtype(name: str | None, default: torch.dtype) -> torch.dtype:
    """The torch dtype `name` designates; `default` for None and "auto" (the caller knows what "auto" means:
    usually the checkpoint's own dtype)."""
    dtype = torch_dtype(name)
    return dtype if isinstance(dtype, torch.dtype) else default


def encoder_dtype(name: str | None, state: dict[str, torch.Tensor] | None = None) -> torch.dtype:
    """The audio encoder's dtype for `ModelConfig.dtype`: float32 for None; for "auto" the dtype of the encoder
    checkpoint's tensors (`state`), float32 without one."""
    if name == "auto":
        return next(iter(state.values())).dtype if state else torch.float32
    return concrete_dtype(name, torch.float32)


def _resolved(value: _T | None, name: str) -> _T:
    """A dimension of a resolved config: every preset sets it, so None here means a broken preset table."""
    if value is None:
        raise ValueError(f"ModelConfig.{name} is None after resolving the preset; set it or fix PRESETS")
    return value


def whisper_config_from_dims(cfg: ModelConfig) -> WhisperConfig:
    """A WhisperConfig for the encoder dims of `cfg` (the decoder fields are unused: no decoder is built)."""
    from transformers import WhisperConfig

    cfg = cfg.resolved()
    heads, ffn = _resolved(cfg.encoder_heads, "encoder_heads"), _resolved(cfg.encoder_ffn_dim, "encoder_ffn_dim")
    config = WhisperConfig(
        num_mel_bins=cfg.n_mels,
        d_model=_resolved(cfg.encoder_d_model, "encoder_d_model"),
        encoder_layers=_resolved(cfg.encoder_layers, "encoder_layers"),
        encoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        max_source_positions=_resolved(cfg.max_source_positions, "max_source_positions"),
        decoder_layers=1,
        decoder_attention_heads=heads,
        decoder_ffn_dim=ffn,
    )
    # Set after construction: the typed config constructor does not declare it (the setter is what the
    # constructor's **kwargs path calls, so the config is the same).
    config._attn_implementation = cfg.attn_implementation
    return config


def qwen2_config_from_dims(cfg: ModelConfig) -> Qwen2Config:
    """A Qwen2Config for the LLM dims of `cfg`."""
    from transformers import Qwen2Config

    cfg = cfg.resolved()
    if cfg.vocab_size is None:
        raise ValueError("ModelConfig.vocab_size must be set (from the tokenizer) to build an LLM from dims")
    special = cfg.eod_id if cfg.eod_id < cfg.vocab_size else None
    config = Qwen2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=_resolved(cfg.llm_hidden_size, "llm_hidden_size"),
        num_hidden_layers=_resolved(cfg.llm_layers, "llm_layers"),
        num_attention_heads=_resolved(cfg.llm_heads, "llm_heads"),
        num_key_value_heads=cfg.llm_kv_heads,
        intermediate_size=_resolved(cfg.llm_intermediate_size, "llm_intermediate_size"),
        max_position_embeddings=_resolved(cfg.llm_max_position_embeddings, "llm_max_position_embeddings"),
        tie_word_embeddings=_resolved(cfg.llm_tie_word_embeddings, "llm_tie_word_embeddings"),
        rms_norm_eps=_resolved(cfg.llm_rms_norm_eps, "llm_rms_norm_eps"),
        rope_parameters={"rope_type": "default", "rope_theta": _resolved(cfg.llm_rope_theta, "llm_rope_theta")},
        bos_token_id=special,
        eos_token_id=special,
        pad_token_id=special,
    )
    config._attn_implementation = cfg.attn_implementation  # see whisper_config_from_dims
    return config
