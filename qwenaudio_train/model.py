"""The Qwen-Audio model: Whisper encoder + stride-2 pool + projector + a causal LM, as plain nn.Modules.

Owns: the model dimensions (`ModelConfig` and its presets), the length-following audio encoder, the fusion of
audio features into the LLM's input embeddings, the loss (sums and token counts, for exact normalisation by the
trainer), greedy generation, and building/saving/loading the two halves.
Must not: know about data loading, tokenizers (the caller passes `vocab_size` and the special ids), optimizers or
distributed training. One exception, kept in the model because only the model can do it: a batch without audio
still runs the encoder on a 4-frame dummy clip (its output is added times zero), so that every rank of a
ZeRO-3 / DDP job runs the same modules in the same order.

Data flow and shapes (A = clips in the batch, B = text rows, S = text length, H = LLM width, d = encoder width):

    mel [A, n_mels, L] + lengths [A] (mel frames, L >= max(lengths))
      -> sliced to Lmax = max(lengths), frames past each clip's end zeroed
      -> conv1 (k3 s1) + gelu -> conv2 (k3 s2) + gelu        [A, d, T]    T_i = audio.encoder_frames(L_i)
      -> + embed_positions[:T], Whisper layers with padded frames masked out as keys
      -> AvgPool1d(2, 2) over time                          [A, d, N]    N_i = audio.pooled_frames(T_i)
      -> ln_post (Whisper's final layer norm, applied after the pool as the release does)
      -> proj Linear(d -> H)                                [A, N, H]
    input_ids [B, S] -> LLM input embeddings [B, S, H]; the k-th `<audio> ... </audio>` span (row-major order) is
      overwritten from `<audio>` through `</audio>` with [bos, audio_1..N_k, eos]  (span = N_k + 2 ids)
      -> LLM -> logits [B, S, V]; loss predicts labels[t + 1] from position t (-100 = ignored).

Parameter names: everything under `audio.` is the encoder side (`audio.conv1`, `audio.conv2`,
`audio.embed_positions` (frozen sinusoids), `audio.layers.{i}`, `audio.ln_post`, `audio.proj`,
`audio.audio_bos_eos_token`; the pool has no parameters); everything under `llm.` is the language model.

Compute follows length exactly: a clip's output depends only on its first L_i mel frames (the batch is cut to
its longest clip, padding is zeroed before each convolution and masked in attention). The release reads one mel
frame past the end at the conv edge; that changes only the last position slightly and made its output depend
on the batch, so we do not copy it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from qwenaudio_train.audio import encoder_frames, pooled_frames

if TYPE_CHECKING:  # transformers is imported lazily: ModelConfig alone must stay cheap to import
    from transformers import PreTrainedModel, Qwen2Config, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

IGNORE_INDEX = -100

# The release's ids (see shared/spec/QWEN_AUDIO_FACTS.md §1); a tokenizer with other ids overrides them.
RELEASE_AUDIO_START_ID = 155163  # <audio>
RELEASE_AUDIO_END_ID = 155164  # </audio>
RELEASE_AUDIO_PAD_ID = 151851  # [[[AUDIO:modality]]]
RELEASE_EOD_ID = 151643  # <|endoftext|>

AUDIO_DIR = "audio"
LLM_DIR = "llm"
AUDIO_WEIGHTS = "model.safetensors"
AUDIO_CONFIG = "config.json"
MODEL_CONFIG = "qwen_audio_config.json"


# ----------------------------------------------------------------------------------------------------------------
# Configuration


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

    preset: str = "tiny"  # "tiny" | "qwen_audio_7b"
    encoder_source: str | None = None  # e.g. "openai/whisper-large-v2" or a local dir of a Whisper model
    llm_source: str | None = None  # e.g. "Qwen/Qwen2-7B" or a local dir of any causal LM

    n_mels: int = 80  # both presets; 128 for large-v3-style encoders
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
    attn_implementation: str = "sdpa"  # "eager" | "sdpa", for both the encoder and the LLM
    # A whole saved QwenAudioModel (save_pretrained / qwenaudio-export / interop imports) to start from: encoder,
    # projector, bos/eos and LLM together (e.g. stage 2 from a stage-1 export, or the imported release weights).
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown model preset {self.preset!r}; known: {sorted(PRESETS)}")
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ValueError(f"attn_implementation must be 'eager' or 'sdpa', got {self.attn_implementation!r}")
        torch_dtype(self.dtype)  # validates

    def resolved(self) -> ModelConfig:
        """A copy with every field still at None filled from the preset (idempotent)."""
        fill = {k: v for k, v in PRESETS[self.preset].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fill)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        dtype="float32",
    ),
    # Whisper-large-v2 encoder + a Qwen2-family 7B LLM loaded natively. The released Qwen-Audio used the v1
    # Qwen-7B (remote code only: set llm_source="Qwen/Qwen-7B", trust_remote_code=True, or convert it first).
    # The dims below document the sources; the checkpoints' configs are what is built.
    "qwen_audio_7b": dict(
        encoder_source="openai/whisper-large-v2",
        llm_source="Qwen/Qwen2-7B",
        encoder_d_model=1280,
        encoder_layers=32,
        encoder_heads=20,
        encoder_ffn_dim=5120,
        max_source_positions=1500,
        llm_hidden_size=3584,
        llm_layers=28,
        llm_heads=28,
        llm_kv_heads=4,
        llm_intermediate_size=18944,
        llm_max_position_embeddings=131072,
        llm_tie_word_embeddings=False,
        dtype="bfloat16",
    ),
}


def torch_dtype(name: str | None) -> torch.dtype | str | None:
    """ "float32" -> torch.float32 ...; "auto" and None pass through (None = float32 when building)."""
    if name is None or name == "auto":
        return name
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"dtype must be one of {sorted(table)} or 'auto', got {name!r}")
    return table[name]


def whisper_config_from_dims(cfg: ModelConfig) -> WhisperConfig:
    """A WhisperConfig for the encoder dims of `cfg` (the decoder fields are unused: no decoder is built)."""
    from transformers import WhisperConfig

    cfg = cfg.resolved()
    return WhisperConfig(
        num_mel_bins=cfg.n_mels,
        d_model=cfg.encoder_d_model,
        encoder_layers=cfg.encoder_layers,
        encoder_attention_heads=cfg.encoder_heads,
        encoder_ffn_dim=cfg.encoder_ffn_dim,
        max_source_positions=cfg.max_source_positions,
        decoder_layers=1,
        decoder_attention_heads=cfg.encoder_heads,
        decoder_ffn_dim=cfg.encoder_ffn_dim,
        attn_implementation=cfg.attn_implementation,
    )


def qwen2_config_from_dims(cfg: ModelConfig) -> Qwen2Config:
    """A Qwen2Config for the LLM dims of `cfg`."""
    from transformers import Qwen2Config

    cfg = cfg.resolved()
    if cfg.vocab_size is None:
        raise ValueError("ModelConfig.vocab_size must be set (from the tokenizer) to build an LLM from dims")
    return Qwen2Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.llm_hidden_size,
        num_hidden_layers=cfg.llm_layers,
        num_attention_heads=cfg.llm_heads,
        num_key_value_heads=cfg.llm_kv_heads,
        intermediate_size=cfg.llm_intermediate_size,
        max_position_embeddings=cfg.llm_max_position_embeddings,
        tie_word_embeddings=cfg.llm_tie_word_embeddings,
        bos_token_id=cfg.eod_id if cfg.eod_id < cfg.vocab_size else None,
        eos_token_id=cfg.eod_id if cfg.eod_id < cfg.vocab_size else None,
        pad_token_id=cfg.eod_id if cfg.eod_id < cfg.vocab_size else None,
        attn_implementation=cfg.attn_implementation,
    )


# ----------------------------------------------------------------------------------------------------------------
# Audio encoder


class AudioEncoder(nn.Module):
    """Whisper encoder submodules with a forward that follows each clip's real length, then pool + ln + proj.

    Built from an existing transformers `WhisperEncoder` whose conv1, conv2, embed_positions, layers and final
    layer_norm (here `ln_post`) are taken over; the stock `WhisperEncoder.forward` (which insists on exactly
    3000 frames) is never called. Attention runs through the layers' own attention implementation, chosen by
    `whisper_config._attn_implementation` ("eager" gets an additive float mask, "sdpa" a boolean one).
    """

    def __init__(self, whisper_encoder: WhisperEncoder, llm_hidden_size: int, init_std: float = 0.02):
        super().__init__()
        self.whisper_config = whisper_encoder.config
        d_model = self.whisper_config.d_model
        self.n_mels = self.whisper_config.num_mel_bins
        self.max_mel_frames = self.whisper_config.max_source_positions * 2
        self.dropout = self.whisper_config.dropout

        self.conv1 = whisper_encoder.conv1  # Conv1d(n_mels, d, k3, p1)
        self.conv2 = whisper_encoder.conv2  # Conv1d(d, d, k3, s2, p1)
        self.embed_positions = whisper_encoder.embed_positions  # [max_source_positions, d], frozen sinusoids
        self.layers = whisper_encoder.layers  # WhisperEncoderLayer x n
        self.pool = nn.AvgPool1d(2, stride=2)
        self.ln_post = whisper_encoder.layer_norm
        dev = self.conv1.weight.device if self.conv1.weight.device.type != "meta" else None
        self.proj = nn.Linear(d_model, llm_hidden_size, device=dev)
        self.audio_bos_eos_token = nn.Embedding(2, llm_hidden_size, device=dev)  # row 0 = bos, row 1 = eos
        # The release inits these like the rest of the LM (normal(0, initializer_range), zero bias).
        with torch.no_grad():
            nn.init.normal_(self.proj.weight, std=init_std)
            nn.init.zeros_(self.proj.bias)
            nn.init.normal_(self.audio_bos_eos_token.weight, std=init_std)

    @property
    def d_model(self) -> int:
        return self.whisper_config.d_model

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer_id(self, name: str) -> int:
        """Depth of a parameter name relative to this module, for layer-wise lr decay: 0 = conv/positions,
        i + 1 = layers.i, n_layers + 1 = ln_post/proj/bos-eos (the top)."""
        if name.startswith("audio."):
            name = name[len("audio.") :]
        if name.startswith(("conv1.", "conv2.", "embed_positions.")):
            return 0
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1
        return self.n_layers + 1

    def positions(self, lengths: torch.Tensor | list[int]) -> list[int]:
        """Audio positions per clip for mel-frame lengths: pooled_frames(encoder_frames(L))."""
        lengths = lengths.tolist() if isinstance(lengths, torch.Tensor) else list(lengths)
        return [pooled_frames(encoder_frames(int(n))) for n in lengths]

    def _attention_mask(self, valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """valid [A, T] bool -> key-padding mask [A, 1, 1, T] broadcast over heads and queries.

        Padded frames are masked as keys only; padded query rows compute garbage that is never read.
        """
        mask = valid[:, None, None, :]
        if self.whisper_config._attn_implementation == "sdpa":
            return mask  # bool, True = attend
        # eager adds the mask to the scores: 0 where valid, the dtype's most negative finite value elsewhere
        return torch.zeros(mask.shape, dtype=dtype, device=valid.device).masked_fill(~mask, torch.finfo(dtype).min)

    def encode_frames(self, mel: torch.Tensor, lengths: torch.Tensor | list[int]) -> tuple[torch.Tensor, list[int]]:
        """mel [A, n_mels, L], lengths [A] mel frames -> (hidden [A, Tmax, d] after the layers, T_i per clip).

        Hidden rows at t >= T_i are undefined. Before the pool and the final layer norm.
        """
        lengths_list = lengths.tolist() if isinstance(lengths, torch.Tensor) else [int(n) for n in lengths]
        if mel.dim() != 3 or mel.shape[1] != self.n_mels or len(lengths_list) != mel.shape[0]:
            raise ValueError(
                f"expected mel [A, {self.n_mels}, L] and {mel.shape[0] if mel.dim() == 3 else '?'} lengths, "
                f"got mel {tuple(mel.shape)} and {len(lengths_list)} lengths"
            )
        bad = [n for n in lengths_list if not 1 <= n <= min(mel.shape[2], self.max_mel_frames)]
        if bad:
            raise ValueError(
                f"audio lengths must be in [1, min(L={mel.shape[2]}, {self.max_mel_frames})] mel frames, got {bad}"
            )
        device, dtype = self.conv1.weight.device, self.conv1.weight.dtype
        t_list = [encoder_frames(n) for n in lengths_list]
        l_max, t_max = max(lengths_list), max(t_list)
        lengths_t = torch.tensor(lengths_list, device=device)
        mel_valid = torch.arange(l_max, device=device)[None, :] < lengths_t[:, None]  # [A, Lmax]
        t_valid = torch.arange(t_max, device=device)[None, :] < torch.tensor(t_list, device=device)[:, None]

        x = mel[:, :, :l_max].to(device=device, dtype=dtype)  # compute follows the longest real clip
        # Zero what lies past each clip's end before both convolutions: each conv then sees exactly the zero
        # padding it would see if the clip ran alone.
        x = x * mel_valid[:, None, :].to(dtype)
        x = F.gelu(self.conv1(x)) * mel_valid[:, None, :].to(dtype)  # [A, d, Lmax]
        x = F.gelu(self.conv2(x))  # [A, d, Tmax]
        x = x.permute(0, 2, 1)  # [A, Tmax, d]
        # Module calls, not `.weight` reads: ZeRO-3 gathers a module's parameters only when the module is called.
        x = x + self.embed_positions(torch.arange(t_max, device=device)).to(dtype)
        x = x * t_valid[:, :, None].to(dtype)  # padded frames start at zero (as the release does)
        x = F.dropout(x, p=self.dropout, training=self.training)

        attn_mask = self._attention_mask(t_valid, dtype)
        for layer in self.layers:
            x = layer(x, attn_mask)  # positional: gradient checkpointing needs positional tensors
        return x, t_list

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [A, n_mels, L], lengths [A] mel frames -> (features [A, Nmax, H], positions [A] long).

        features[i, :positions[i]] are clip i's audio positions (rows past that are undefined);
        positions[i] = pooled_frames(encoder_frames(lengths[i])) = audio.audio_positions(samples of clip i).
        bos/eos are not included: see `audio_bos_eos_token`.
        """
        x, t_list = self.encode_frames(mel, lengths)  # [A, Tmax, d]
        n_list = [pooled_frames(t) for t in t_list]
        if x.shape[1] >= 2:
            # The pool reads frames 2n and 2n+1 < T_i for every n < N_i: it never touches padding.
            x = self.pool(x.permute(0, 2, 1)).permute(0, 2, 1)  # [A, Nmax, d]
        else:
            x = x[:, :0]  # every clip is one encoder frame long: no positions
        x = self.ln_post(x)  # after the pool, as the release does
        x = self.proj(x)  # [A, Nmax, H]
        return x, torch.tensor(n_list, dtype=torch.long, device=x.device)

    def bos_eos(self) -> torch.Tensor:
        """[2, H]: the learned audio bos (row 0) and eos (row 1) embeddings."""
        return self.audio_bos_eos_token(torch.arange(2, device=self.audio_bos_eos_token.weight.device))


def build_whisper_encoder(whisper_config: WhisperConfig, device: str | torch.device | None = None) -> WhisperEncoder:
    """A transformers WhisperEncoder (random init unless built on "meta"). Must not run under zero.Init."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    whisper_config.encoder_layerdrop = 0.0  # layerdrop would make ranks run different layers; unused by us
    if device is None:
        return WhisperEncoder(whisper_config)
    with torch.device(device):
        return WhisperEncoder(whisper_config)


def _resolve_dir(source: str, patterns: list[str]) -> Path:
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    # Honours HF_HUB_OFFLINE (then only the local cache is used).
    return Path(snapshot_download(repo_id=source, allow_patterns=patterns))


def read_whisper_encoder_state_dict(source: str) -> dict[str, torch.Tensor] | None:
    """The encoder tensors of a Whisper checkpoint (WhisperModel, WhisperForConditionalGeneration or
    WhisperEncoder layout), with the prefix ("model.encoder.", "encoder." or "") removed, read from safetensors
    without materialising the decoder. None if the checkpoint has no safetensors files."""
    from safetensors import safe_open

    root = _resolve_dir(source, ["*.json", "*.safetensors"])
    index = root / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = sorted(p.name for p in root.glob("*.safetensors"))
    if not files:
        return None
    keys_by_file: dict[str, list[str]] = {}
    for name in files:
        with safe_open(str(root / name), framework="pt") as f:
            keys_by_file[name] = list(f.keys())
    all_keys = [k for keys in keys_by_file.values() for k in keys]
    conv = [k for k in all_keys if k.endswith("conv1.weight") and "decoder" not in k]
    if len(conv) != 1:
        raise ValueError(f"cannot find one Whisper encoder (conv1.weight) in {source}: found {conv}")
    prefix = conv[0][: -len("conv1.weight")]
    state: dict[str, torch.Tensor] = {}
    for name, keys in keys_by_file.items():
        wanted = [k for k in keys if k.startswith(prefix) and "decoder" not in k[len(prefix) :]]
        if not wanted:
            continue
        with safe_open(str(root / name), framework="pt") as f:
            for k in wanted:
                state[k[len(prefix) :]] = f.get_tensor(k)
    return state


def load_whisper_encoder(source: str, attn_implementation: str = "sdpa") -> WhisperEncoder:
    """The encoder of a Whisper checkpoint (hub name or local dir), without its decoder.

    Built on the meta device and filled from the checkpoint's safetensors (strict: every encoder tensor must be
    present), so neither the decoder nor a random init is ever allocated and no zero.Init is entered. Falls back
    to `WhisperModel.from_pretrained(source).encoder` for checkpoints without safetensors.
    """
    from transformers import WhisperConfig

    whisper_config = WhisperConfig.from_pretrained(source, attn_implementation=attn_implementation)
    state = read_whisper_encoder_state_dict(source)
    if state is None:
        from transformers import WhisperModel

        state = WhisperModel.from_pretrained(source).encoder.state_dict()
    encoder = build_whisper_encoder(whisper_config, device="meta")
    expected = set(encoder.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(
            f"Whisper encoder checkpoint {source} does not match its config: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    encoder.load_state_dict(state, strict=True, assign=True)  # keeps the checkpoint's dtype
    return encoder


# ----------------------------------------------------------------------------------------------------------------
# The full model


@dataclass
class QwenAudioOutput:
    """logits [B, S, V] (None with return_logits=False); with labels: loss = loss_sum / n_tokens (mean over
    target tokens), loss_sum and n_tokens (scalars) for exact normalisation across micro-batches and ranks,
    sample_loss_sum [B] and sample_tokens [B] for per-task logging."""

    logits: torch.Tensor | None
    loss: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    n_tokens: torch.Tensor | None = None
    sample_loss_sum: torch.Tensor | None = None
    sample_tokens: torch.Tensor | None = None


class QwenAudioModel(nn.Module):
    """`audio` (AudioEncoder) + `llm` (any transformers causal LM) + the release's span fusion."""

    def __init__(self, cfg: ModelConfig, audio: AudioEncoder, llm: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.audio = audio
        self.llm = llm

    # -- fusion ---------------------------------------------------------------------------------------------

    def audio_spans(self, input_ids: torch.Tensor) -> list[tuple[int, int, int]]:
        """(row, start, end) of every `<audio> ... </audio>` span of input_ids [B, S], in row-major order."""
        starts = (input_ids == self.cfg.audio_start_id).nonzero().tolist()  # nonzero is row-major
        ends = (input_ids == self.cfg.audio_end_id).nonzero().tolist()
        if len(starts) != len(ends):
            raise ValueError(f"input_ids hold {len(starts)} <audio> but {len(ends)} </audio> tokens")
        spans = []
        for k, ((b, s), (b_end, e)) in enumerate(zip(starts, ends)):
            prev_end = spans[-1][2] if spans and spans[-1][0] == b else -1
            if b_end != b or e <= s or s < prev_end:
                raise ValueError(f"audio span {k} is malformed: <audio> at {(b, s)}, </audio> at {(b_end, e)}")
            spans.append((b, s, e))
        return spans

    def embed(
        self,
        input_ids: torch.Tensor,
        audio_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | list[int] | None = None,
    ) -> torch.Tensor:
        """input_ids [B, S] -> inputs_embeds [B, S, H] with the k-th audio span overwritten by
        [bos, clip k's N_k positions, eos] (the release's fusion)."""
        embeds = self.llm.get_input_embeddings()(input_ids)  # [B, S, H]
        spans = self.audio_spans(input_ids)
        n_clips = 0 if audio_features is None else audio_features.shape[0]
        if len(spans) != n_clips:
            raise ValueError(f"input_ids hold {len(spans)} audio spans but {n_clips} audio clips were given")
        if n_clips == 0:
            return self._touch_audio(embeds)
        if audio_lengths is None:
            raise ValueError("audio_lengths (mel frames per clip) are required with audio_features")

        positions = self.audio.positions(audio_lengths)  # checked before spending the encoder's compute
        for k, ((b, s, e), n) in enumerate(zip(spans, positions)):
            if e - s - 1 != n:
                raise ValueError(
                    f"audio span {k} (row {b}, tokens {s}..{e}) holds {e - s - 1} positions, but clip {k} "
                    f"({int(audio_lengths[k])} mel frames) gives {n}: the tokenizer and audio lengths disagree"
                )
        feats, _ = self.audio(audio_features, audio_lengths)  # [A, Nmax, H]
        bos, eos = self.audio.bos_eos()  # [H] each
        pieces, rows, cols = [], [], []
        for k, ((b, s, e), n) in enumerate(zip(spans, positions)):
            pieces += [bos[None], feats[k, :n], eos[None]]
            rows.append(torch.full((n + 2,), b, dtype=torch.long))
            cols.append(torch.arange(s, e + 1))
        src = torch.cat(pieces).to(embeds.dtype)  # [sum(N_k + 2), H]
        index = (torch.cat(rows).to(embeds.device), torch.cat(cols).to(embeds.device))
        return embeds.index_put(index, src)

    def _touch_audio(self, embeds: torch.Tensor) -> torch.Tensor:
        """Run the encoder on a 4-mel-frame dummy clip and add its output times zero: keeps every rank's
        module calls (ZeRO-3 gathers, DDP gradients) identical when a batch carries no audio."""
        mel = torch.zeros(1, self.audio.n_mels, 4, device=embeds.device)
        feats, _ = self.audio(mel, [4])
        touch = feats.sum() + self.audio.bos_eos().sum()
        return embeds + (touch * 0.0).to(embeds.dtype)

    # -- training forward -----------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_logits: bool = True,
    ) -> QwenAudioOutput:
        """input_ids/attention_mask/labels [B, S], audio_features [A, n_mels, L], audio_lengths [A] mel frames.

        Position ids follow the attention mask (cumsum - 1), as `generate` does, so left- and right-padded rows
        see the same positions. With `return_logits=False` (native transformers LMs only) the LM head runs on
        target positions only, and `logits` is None: the loss is the same, the [B, S, V] logits never exist.
        """
        embeds = self.embed(input_ids, audio_features, audio_lengths)
        position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        llm_kwargs: dict[str, Any] = dict(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        )
        if labels is None:
            return QwenAudioOutput(logits=self.llm(**llm_kwargs).logits)

        # Position t predicts labels[t + 1]; the last position predicts nothing.
        targets = labels[:, 1:]  # [B, S-1]
        is_target = targets != IGNORE_INDEX
        if return_logits:
            logits = self.llm(**llm_kwargs).logits  # [B, S, V]
            token_loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
            ).view_as(targets)  # [B, S-1], 0 where ignored
            sample_loss_sum = token_loss.sum(-1)
        else:
            logits = None
            keep = F.pad(is_target, (0, 1), value=False)  # [B, S] positions whose next token is a target
            kept = self.llm(**llm_kwargs, logits_to_keep=keep).logits  # [K, V] in row-major order
            token_loss = F.cross_entropy(kept.float(), targets[is_target], reduction="none")  # [K]
            rows = is_target.nonzero()[:, 0]
            sample_loss_sum = token_loss.new_zeros(labels.shape[0]).index_add(0, rows, token_loss)
        sample_tokens = is_target.sum(-1)
        loss_sum = sample_loss_sum.sum()
        n_tokens = sample_tokens.sum()
        return QwenAudioOutput(
            logits=logits,
            loss=loss_sum / n_tokens.clamp(min=1),
            loss_sum=loss_sum,
            n_tokens=n_tokens,
            sample_loss_sum=sample_loss_sum,
            sample_tokens=sample_tokens,
        )

    # -- generation -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio_features: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        max_new_tokens: int = 256,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        **generate_kwargs: Any,
    ) -> torch.Tensor:
        """Greedy decoding with a KV cache for left-padded rows -> new tokens [B, T_new] (T_new <= max_new_tokens;
        rows that stopped are filled with pad_token_id, default eod_id).

        Uses a fresh GenerationConfig (greedy, no repetition penalty, as the release's evaluation) rather than
        the checkpoint's; `generate_kwargs` (e.g. min_new_tokens, synced_gpus) go to it / to `llm.generate`.
        """
        from transformers import GenerationConfig

        if bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("generate needs left-padded rows (attention_mask[:, -1] must be all 1)")
        embeds = self.embed(input_ids, audio_features, audio_lengths)
        eos = self.cfg.eod_id if eos_token_id is None else eos_token_id
        pad = self.cfg.eod_id if pad_token_id is None else pad_token_id
        config_keys = set(GenerationConfig().to_dict())
        gen_config = GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=pad,
            use_cache=True,
            **{k: v for k, v in generate_kwargs.items() if k in config_keys},
        )
        other = {k: v for k, v in generate_kwargs.items() if k not in config_keys}
        # With inputs_embeds and no input_ids, a decoder-only generate returns only the new tokens.
        return self.llm.generate(
            inputs_embeds=embeds, attention_mask=attention_mask, generation_config=gen_config, **other
        )

    # -- bookkeeping ----------------------------------------------------------------------------------------

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts: per encoder part, audio (all of `audio.`), llm, total, trainable.
        Counts ZeRO-3 partitioned parameters at full size."""

        def numel(p: torch.Tensor) -> int:
            return int(getattr(p, "ds_numel", p.numel()))

        counts: dict[str, int] = {}
        for name, p in self.audio.named_parameters():
            part = "audio." + name.split(".")[0]
            counts[part] = counts.get(part, 0) + numel(p)
        counts["audio"] = sum(numel(p) for p in self.audio.parameters())
        counts["llm"] = sum(numel(p) for p in self.llm.parameters())
        counts["total"] = counts["audio"] + counts["llm"]
        counts["trainable"] = sum(numel(p) for p in self.parameters() if p.requires_grad)
        return counts

    def gradient_checkpointing_enable(self) -> None:
        """Recompute every encoder and LLM layer in backward (non-reentrant checkpointing)."""
        ckpt = partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
        for layer in self.audio.layers:
            layer.gradient_checkpointing = True
            layer._gradient_checkpointing_func = ckpt
        if hasattr(self.llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            self.llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # -- save / load ----------------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write `qwen_audio_config.json`, `audio/` (safetensors + json config) and `llm/` (llm.save_pretrained).

        `state_dict` (full, with `audio.` / `llm.` prefixes, e.g. consolidated from ZeRO-3) replaces the live
        parameters, which must otherwise be whole (not partitioned).
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        (directory / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
        if state_dict is None:
            audio_state = self.audio.state_dict()
            llm_state = None
        else:
            audio_state = {k[len("audio.") :]: v for k, v in state_dict.items() if k.startswith("audio.")}
            llm_state = {k[len("llm.") :]: v for k, v in state_dict.items() if k.startswith("llm.")}
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in audio_state.items()},
            str(directory / AUDIO_DIR / AUDIO_WEIGHTS),
            metadata={"format": "pt"},
        )
        audio_config = {
            "whisper_config": self.audio.whisper_config.to_dict(),
            "llm_hidden_size": self.audio.proj.out_features,
        }
        (directory / AUDIO_DIR / AUDIO_CONFIG).write_text(json.dumps(audio_config, indent=2, default=str))
        self.llm.save_pretrained(str(directory / LLM_DIR), state_dict=llm_state)
        (directory / MODEL_CONFIG).write_text(json.dumps(self.cfg.to_dict(), indent=2))

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        dtype: str | None = None,
        attn_implementation: str | None = None,
    ) -> QwenAudioModel:
        """Read back a directory written by `save_pretrained` (no download). dtype / attn_implementation
        default to the saved config's."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, WhisperConfig

        directory = Path(directory)
        saved = json.loads((directory / MODEL_CONFIG).read_text())
        if dtype is not None:
            saved["dtype"] = dtype
        if attn_implementation is not None:
            saved["attn_implementation"] = attn_implementation
        cfg = ModelConfig(**saved).resolved()

        llm = AutoModelForCausalLM.from_pretrained(
            str(directory / LLM_DIR),
            dtype=torch_dtype(cfg.dtype) or torch.float32,
            attn_implementation=cfg.attn_implementation,
            trust_remote_code=cfg.trust_remote_code,
        )
        audio_config = json.loads((directory / AUDIO_DIR / AUDIO_CONFIG).read_text())
        whisper_config = WhisperConfig.from_dict(audio_config["whisper_config"])
        whisper_config._attn_implementation = cfg.attn_implementation
        audio = AudioEncoder(build_whisper_encoder(whisper_config, device="meta"), audio_config["llm_hidden_size"])
        state = load_file(str(directory / AUDIO_DIR / AUDIO_WEIGHTS))
        audio.load_state_dict(state, strict=True, assign=True)
        audio.to(_encoder_dtype(cfg.dtype, state))
        return cls(cfg, audio, llm)


def _encoder_dtype(name: str | None, state: dict[str, torch.Tensor] | None = None) -> torch.dtype:
    dtype = torch_dtype(name)
    if dtype is None:
        return torch.float32
    if dtype == "auto":
        return next(iter(state.values())).dtype if state else torch.float32
    return dtype


# ----------------------------------------------------------------------------------------------------------------
# Construction


def build_llm(cfg: ModelConfig) -> PreTrainedModel:
    """A tiny Qwen2 from the dims (source None) or any causal LM via AutoModelForCausalLM.from_pretrained; its
    embedding is grown to cfg.vocab_size (rounded up to a multiple of cfg.pad_vocab_to_multiple_of) if smaller.

    Under a live ZeRO-3 HfDeepSpeedConfig, transformers builds/loads the LLM inside zero.Init itself."""
    from transformers import AutoModelForCausalLM

    cfg = cfg.resolved()
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
    weight = llm.get_input_embeddings().weight
    rows = int(getattr(weight, "ds_shape", weight.shape)[0])  # ZeRO-3 keeps the full shape in ds_shape
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
    return audio.to(_encoder_dtype(cfg.dtype, {"w": whisper.conv1.weight}))


def build_model(cfg: ModelConfig) -> QwenAudioModel:
    """Build (tiny, no download) or load (hub name / local dir) both halves. Call outside deepspeed.zero.Init."""
    cfg = cfg.resolved()
    if cfg.init_from:
        model = QwenAudioModel.from_pretrained(
            cfg.init_from, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation
        )
        for name in ("audio_start_id", "audio_end_id", "audio_pad_id", "eod_id"):
            if getattr(model.cfg, name) != getattr(cfg, name):
                raise ValueError(
                    f"model.init_from={cfg.init_from}: its {name} is {getattr(model.cfg, name)}, the "
                    f"tokenizer's is {getattr(cfg, name)}; use the tokenizer the model was trained with"
                )
        rows = model.llm.get_input_embeddings().weight.shape[0]
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
