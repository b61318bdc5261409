"""`QwenAudioModel`: audio encoder + a causal LM, fused the release's way; loss, greedy generation, save/load.

Owns: the fusion of audio features into the LLM's input embeddings, the loss (sums and token counts, for exact
normalisation by the trainer), greedy generation with the KV cache, and the on-disk layout of a saved model
(`qwen_audio_config.json`, `audio/`, `llm/`).
Must not: know about data loading, tokenizers (the config carries the special ids), optimizers or distributed
training. One exception, kept in the model because only the model can do it: a batch without audio still runs
the encoder on a 4-frame dummy clip (its output is added times zero), so that every rank of a ZeRO-3 / DDP job
runs the same modules in the same order.

Shapes (A = clips, B = text rows, S = text length, H = LLM width, V = vocabulary)::

    input_ids [B, S] -> LLM input embeddings [B, S, H]; the k-th `<audio> ... </audio>` span (row-major order) is
      overwritten from `<audio>` through `</audio>` with [bos, audio_1..N_k, eos]  (span = N_k + 2 ids), the N_k
      audio positions coming from `AudioEncoder` (features [A, Nmax, H])
      -> LLM -> logits [B, S, V]; loss predicts labels[t + 1] from position t (-100 = ignored).

Parameter names: everything under `audio.` is the encoder side (`audio.conv1`, `audio.conv2`,
`audio.embed_positions` (frozen sinusoids), `audio.layers.{i}`, `audio.ln_post`, `audio.proj`,
`audio.audio_bos_eos_token`; the pool has no parameters); everything under `llm.` is the language model (a
transformers causal LM, or a peft `PeftModel` around one once LoRA is applied).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from qwenaudio_train.model.config import ModelConfig, encoder_dtype, torch_dtype
from qwenaudio_train.model.encoder import AudioEncoder, build_whisper_encoder
from qwenaudio_train.model.family import get_family

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

IGNORE_INDEX = -100
# The batch keys `forward` takes (a batch may lack the optional ones), and those it reads as Python ints: a trainer
# leaves these on the host, since reading them from the device would stall it (a sync per micro-batch).
MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "audio_features", "audio_lengths", "position_ids",
                "sample_spans", "audio_spans", "target_index")  # fmt: skip
HOST_INPUTS = ("audio_lengths", "audio_spans", "sample_spans")


# The layout `save_pretrained` writes and `from_pretrained` reads.
AUDIO_DIR = "audio"
LLM_DIR = "llm"
AUDIO_WEIGHTS = "model.safetensors"
AUDIO_CONFIG = "config.json"
MODEL_CONFIG = "qwen_audio_config.json"


class _CheckpointableLayer(Protocol):
    """A transformers `GradientCheckpointingLayer` as its forward reads it: the flag is declared by the class, the
    checkpoint function is set on the instance by whoever enables checkpointing."""

    gradient_checkpointing: bool
    _gradient_checkpointing_func: Callable[..., Any]


@runtime_checkable
class _Generates(Protocol):
    """A transformers causal LM (`GenerationMixin`) or a peft model around one: both have `generate`, which the
    static type of a bare `PreTrainedModel` does not declare."""

    def generate(self, *args: Any, **kwargs: Any) -> Any: ...


def embedding_weight(llm: PreTrainedModel | PeftModel) -> torch.Tensor:
    """The LLM's input embedding matrix [V, H]. Under ZeRO-3 it is a partitioned placeholder: its full shape is
    in `ds_shape` (see `embedding_rows`)."""
    weight = llm.get_input_embeddings().weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"the input embedding of {type(llm).__name__} has no weight matrix")
    return weight


def embedding_rows(llm: PreTrainedModel | PeftModel) -> int:
    """Rows of the LLM's input embedding, also under ZeRO-3 (which keeps the full shape in `ds_shape`)."""
    weight = embedding_weight(llm)
    return int(getattr(weight, "ds_shape", weight.shape)[0])


@dataclass
class QwenAudioOutput:
    """logits [B, S, V] (None with return_logits=False); with labels: loss = loss_sum / n_tokens (mean over
    target tokens), loss_sum and n_tokens (scalars) for exact normalisation across micro-batches and ranks,
    sample_loss_sum [N] and sample_tokens [N] per sample (N = B, or the packed samples) for per-task logging."""

    logits: torch.Tensor | None
    loss: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    n_tokens: torch.Tensor | None = None
    sample_loss_sum: torch.Tensor | None = None
    sample_tokens: torch.Tensor | None = None


def _token_samples(sample_spans: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """sample_spans [N, 3] (row, start, end) -> [B, S]: the sample each token belongs to, -1 for padding. Tensor
    ops on the spans' device (no host round trip)."""
    B, S = shape
    rows = torch.arange(B, device=sample_spans.device)[None, :, None]
    pos = torch.arange(S, device=sample_spans.device)[None, None, :]
    row, start, end = (sample_spans[:, i, None, None] for i in range(3))
    inside = (row == rows) & (pos >= start) & (pos < end)  # [N, B, S]
    ids = torch.arange(1, sample_spans.shape[0] + 1, device=sample_spans.device)[:, None, None]
    return (inside.long() * ids).sum(0) - 1


def _varlen_kwargs(sample_spans: torch.Tensor, shape: torch.Size, device: torch.device) -> dict[str, Any]:
    """Flash attention's padding-free arguments for packed rows [B, S]: the cumulative sequence lengths over the
    B * S tokens flattened row-major, each sample and each row's padding tail a sequence, and the longest one.
    sample_spans is read on the host (the trainer keeps it there: `HOST_INPUTS`)."""
    B, S = shape
    cuts = {r * S for r in range(B + 1)}
    for row, start, end in sample_spans.tolist():
        cuts.update((row * S + start, row * S + end))
    bounds = sorted(cuts)
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    cu = torch.tensor(bounds, dtype=torch.int32, device=device)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def _gather_rows(index: torch.Tensor, _module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook of the LM head: hidden [B, S, H] -> [1, K, H] at the flat positions `index` (whatever the
    causal LM does around its head, e.g. logit soft-capping, still applies)."""
    return (args[0].flatten(0, 1).index_select(0, index)[None], *args[1:])


class QwenAudioModel(nn.Module):
    """`audio` (AudioEncoder) + `llm` (any transformers causal LM) + the release's span fusion."""

    def __init__(self, cfg: ModelConfig, audio: AudioEncoder, llm: PreTrainedModel):
        super().__init__()
        self.cfg = cfg
        self.audio = audio
        # `lora.apply_lora` / `load_adapter` wrap the LM in a PeftModel, which forwards every other attribute to it.
        self.llm: PreTrainedModel | PeftModel = llm

    # -- fusion ---------------------------------------------------------------------------------------------

    def audio_spans(self, input_ids: torch.Tensor) -> list[tuple[int, int, int]]:
        """(row, start, end) of every `<audio> ... </audio>` span of input_ids [B, S], in row-major order."""
        starts = (input_ids == self.cfg.audio_start_id).nonzero().tolist()  # nonzero is row-major
        ends = (input_ids == self.cfg.audio_end_id).nonzero().tolist()
        if len(starts) != len(ends):
            raise ValueError(f"input_ids hold {len(starts)} <audio> but {len(ends)} </audio> tokens")
        spans: list[tuple[int, int, int]] = []
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
        audio_spans: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids [B, S] -> inputs_embeds [B, S, H] with the k-th audio span overwritten by
        [bos, clip k's N_k positions, eos] (the release's fusion); in the Qwen2-Audio family (`model.family`) only
        the N_k positions are, its bos/eos keeping their token embeddings."""
        embeds = self.llm.get_input_embeddings()(input_ids)  # [B, S, H]
        # audio_spans [A, 3] (row, start, end) from the collator (`data.packing.audio_spans`), kept on the host,
        # spare the `nonzero()` sync of finding them on the device.
        if audio_spans is None:
            spans = self.audio_spans(input_ids)
        else:
            spans = [(int(b), int(s), int(e)) for b, s, e in audio_spans.tolist()]
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
        family = get_family(self.cfg.family)  # which positions of a span are overwritten, and with what
        pieces, rows, cols = [], [], []
        for k, ((b, s, e), n) in enumerate(zip(spans, positions)):
            first, last = family.overwritten(s, e)
            pieces += family.span_pieces(bos, feats[k, :n], eos)
            rows.append(torch.full((last - first + 1,), b, dtype=torch.long))
            cols.append(torch.arange(first, last + 1))
        src = torch.cat(pieces).to(embeds.dtype)  # [sum(N_k + 2), H] (N_k alone without learned bos/eos)
        index = (torch.cat(rows).to(embeds.device), torch.cat(cols).to(embeds.device))
        fused = embeds.index_put(index, src)
        if not family.learned_bos_eos:  # the unused bos/eos still joins the graph: every rank reduces every parameter
            fused = fused + ((bos.sum() + eos.sum()) * 0.0).to(fused.dtype)
        return fused

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
        position_ids: torch.Tensor | None = None,
        sample_spans: torch.Tensor | None = None,
        audio_spans: torch.Tensor | None = None,
        target_index: torch.Tensor | None = None,
    ) -> QwenAudioOutput:
        """input_ids/attention_mask/labels [B, S], audio_features [A, n_mels, L], audio_lengths [A] mel frames.

        Position ids follow the attention mask (cumsum - 1), as `generate` does, so left- and right-padded rows
        see the same positions, unless `position_ids` [B, S] are given. With `return_logits=False` (native
        transformers LMs only) the LM head runs on target positions only, and `logits` is None: the loss is the
        same, the [B, S, V] logits never exist.

        Packed rows (`data.packing`): `sample_spans` [N, 3] (row, start, end) of each sample, with `position_ids`
        restarting at 0 per sample: attention is confined to each sample (block-diagonal causal) and
        sample_loss_sum / sample_tokens are per sample ([N], in sample_spans' order), not per row.
        Host-side bookkeeping from the collator (no device sync): `audio_spans` (see `embed`) and `target_index`
        [K], the flat positions (row * S + t) whose next token is a target (`data.packing.target_index`).
        """
        embeds = self.embed(input_ids, audio_features, audio_lengths, audio_spans)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        llm_mask: Any = attention_mask
        token_sample = None  # [B, S] the sample of each token (-1: padding) when rows are packed
        varlen: dict[str, Any] = {}
        if sample_spans is not None:
            token_sample = _token_samples(sample_spans, input_ids.shape).to(input_ids.device)
            if str(getattr(self.llm.config, "_attn_implementation", "")).startswith("flash_attention"):
                # transformers finds packed rows from position_ids only at batch size 1; with these it runs the
                # varlen kernel over all rows flattened (each sample and each padding tail a sequence of its own).
                llm_mask, varlen = None, _varlen_kwargs(sample_spans, input_ids.shape, input_ids.device)
            else:
                llm_mask = self._packed_mask(embeds, token_sample, position_ids)
        llm_kwargs: dict[str, Any] = dict(
            inputs_embeds=embeds, attention_mask=llm_mask, position_ids=position_ids, use_cache=False, **varlen
        )
        if labels is None:
            return QwenAudioOutput(logits=self.llm(**llm_kwargs).logits)

        B, S = labels.shape
        n_samples = B if sample_spans is None else sample_spans.shape[0]
        if token_sample is None:
            token_sample = torch.arange(B, device=labels.device)[:, None].expand(B, S)
        # Position t predicts labels[t + 1]; the last position predicts nothing.
        targets = labels[:, 1:]  # [B, S-1]
        is_target = targets != IGNORE_INDEX
        logits = None
        if return_logits:
            logits = self.llm(**llm_kwargs).logits  # [B, S, V]
            token_loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
            )  # [B * (S-1)], 0 where ignored
            samples = token_sample[:, :-1].flatten().clamp(min=0)  # a padding position adds 0 to sample 0
            counts = is_target.flatten().long()
        elif target_index is not None:
            # The target positions' hidden states are gathered in front of the LM head (index_select: no sync).
            handle = self.llm.get_output_embeddings().register_forward_pre_hook(partial(_gather_rows, target_index))
            try:
                kept = self.llm(**llm_kwargs).logits[0]  # [K, V] in row-major order
            finally:
                handle.remove()
            next_labels = labels.flatten().index_select(0, target_index + 1)
            token_loss = F.cross_entropy(kept.float(), next_labels, reduction="none")  # [K]
            samples = token_sample.flatten().index_select(0, target_index)
            counts = torch.ones_like(samples)
        else:
            keep = F.pad(is_target, (0, 1), value=False)  # [B, S] positions whose next token is a target
            kept = self.llm(**llm_kwargs, logits_to_keep=keep).logits  # [K, V] in row-major order
            token_loss = F.cross_entropy(kept.float(), targets[is_target], reduction="none")  # [K]
            samples = token_sample[:, :-1][is_target]
            counts = torch.ones_like(samples)
        sample_loss_sum = token_loss.new_zeros(n_samples).index_add(0, samples, token_loss)
        sample_tokens = counts.new_zeros(n_samples).index_add(0, samples, counts)
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

    def _packed_mask(self, embeds: torch.Tensor, token_sample: torch.Tensor, position_ids: torch.Tensor) -> Any:
        """The LLM's attention mask for packed rows, in the form its attention implementation takes (flash
        attention takes `_varlen_kwargs` instead).

        eager / sdpa / flex_attention: transformers' causal mask intersected with "same sample", built by its own
        mask interface (a 4D additive mask, a 4D boolean mask, a document BlockMask), which the LLM then takes as
        it is. An all-ones 2D mask stands in for padding: the padding tail is a segment of its own (it never sees a
        sample, and no query row is empty), and transformers' packing detection from `position_ids` (a host sync)
        does not run.
        """
        from transformers.masking_utils import create_causal_mask, packed_sequence_mask_function

        return create_causal_mask(
            config=self.llm.config,
            inputs_embeds=embeds,
            attention_mask=torch.ones(token_sample.shape, dtype=torch.bool, device=embeds.device),
            past_key_values=None,
            position_ids=position_ids,
            and_mask_function=packed_sequence_mask_function(token_sample),
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
        llm = self.llm
        if not isinstance(llm, _Generates):
            raise TypeError(f"{type(llm).__name__} has no generate(): the LLM must be a causal LM")
        return llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, generation_config=gen_config, **other)

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

    def gradient_checkpointing_enable(self, encoder: bool = True, llm: bool = True, every: int = 1) -> None:
        """Recompute layers in backward (non-reentrant checkpointing): those of the encoder and / or the LLM, every
        `every`-th layer of each (layers 0, k, 2k...: k > 1 trades memory back for speed)."""
        from transformers.modeling_layers import GradientCheckpointingLayer

        if every < 1:
            raise ValueError(f"gradient_checkpointing_enable(every={every}): must be >= 1 (1 = every layer)")
        ckpt = partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
        if encoder:
            for i, layer in enumerate(self.audio.layers):
                if not isinstance(layer, GradientCheckpointingLayer):
                    raise TypeError(f"encoder layer {type(layer).__name__} does not support gradient checkpointing")
                # What transformers' own gradient_checkpointing_enable sets on each such layer.
                checkpointable = cast(_CheckpointableLayer, layer)
                checkpointable.gradient_checkpointing = i % every == 0
                checkpointable._gradient_checkpointing_func = ckpt
        if not llm:
            return
        if hasattr(self.llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            self.llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            self.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # Every k-th decoder layer, set here rather than through transformers' `every_n_layers` (not in every
        # version): the layers are its GradientCheckpointingLayer blocks, in order.
        blocks = [m for m in self.llm.modules() if isinstance(m, GradientCheckpointingLayer)]
        for i, block in enumerate(blocks):
            cast(_CheckpointableLayer, block).gradient_checkpointing = i % every == 0

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
        trust_remote_code: bool = False,
    ) -> QwenAudioModel:
        """Read back a directory written by `save_pretrained` (no download). dtype / attn_implementation
        default to the saved config's. Remote code (Python shipped in `llm/`) runs only with `trust_remote_code`,
        the caller's choice (`model.trust_remote_code` of the user's own config): the directory's own
        `qwen_audio_config.json` is never asked, since whoever made or edited the folder would choose for you."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, WhisperConfig

        directory = Path(directory)
        saved = json.loads((directory / MODEL_CONFIG).read_text())
        if dtype is not None:
            saved["dtype"] = dtype
        if attn_implementation is not None:
            saved["attn_implementation"] = attn_implementation
        saved["trust_remote_code"] = bool(trust_remote_code)
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
        audio.to(encoder_dtype(cfg.dtype, state))
        return cls(cfg, audio, llm)
