"""Chat SFT data: conversation (+ audio) -> `ChatExample` -> padded model batch.

Owns: `ChatExample` (one rendered conversation with its log-mels and labels), `ChatMeta` / `parse_chat_meta` (what
the loader reads from a raw chat shard sample before decoding it), `ChatProcessor` (featurize every audio span,
render, label: the chat counterpart of `data.processing.SampleProcessor`) and `collate_chat` (any number of audios
per row).
Must not: define how a conversation renders (`chat.render` does), batch by duration or read shard streams (the
loader does), or run a model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qwenaudio_train import audio as A
from qwenaudio_train.chat.render import DEFAULT_SYSTEM, Conversation, canonicalize, labels_from_mask, render
from qwenaudio_train.data.processing import LONG_AUDIO_POLICIES, batch_tokens, fit_clip
from qwenaudio_train.data.schema import SampleError


@dataclass
class ChatExample:
    key: str
    source: str
    task: str
    input_ids: list[int]
    labels: list[int]
    mels: list[torch.Tensor]  # one [n_mels, L_k] log-mel per audio span, in rendering order
    n_mels: int
    duration: float  # seconds of audio (all spans)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatMeta:
    """What the loader needs before decoding a chat shard sample: its duration (for bucketing) and labels."""

    key: str
    task: str
    source: str
    duration: float


CHAT_MEMBER = "json"  # a chat shard sample: <key>.json (the conversation) + <key>.audioK.flac members


def parse_chat_meta(raw: Mapping[str, Any]) -> ChatMeta:
    """ChatMeta of a raw chat shard sample (`{"__key__", "json": bytes, "audio0.flac": bytes, ...}`)."""
    key = str(raw.get("__key__", "?"))
    if CHAT_MEMBER not in raw:
        raise SampleError(f"chat sample {key!r} in {raw.get('__url__', '?')}: no .json conversation member")
    try:
        d = json.loads(raw[CHAT_MEMBER])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SampleError(f"chat sample {key!r}: conversation is not valid UTF-8 JSON ({e})") from e
    if not isinstance(d, dict):
        raise SampleError(f"chat sample {key!r}: conversation must be a JSON object")
    source = str(raw.get("__source__", d.get("source", "chat")))
    return ChatMeta(key=key, task=str(d.get("task", "chat")), source=source, duration=float(d.get("duration", 0.0)))


class ChatProcessor:
    """Conversation (+ audio) -> ChatExample. Two entry points with one behaviour:

    * `process(conversation, audio_bytes=None, ...)`: a schema dict / Conversation (e.g. from `load_conversations`);
      an audio REF is looked up in `audio_bytes` first, then read as a path (relative to `root`);
    * `__call__(raw, meta=None, aug_seed=0)`: a raw chat shard sample, the calling convention of
      `data.processing.SampleProcessor`, so the loader can use either.

    Raises SampleError / AudioError for unusable conversations (the loader skips and counts them). Conversations
    longer than `max_tokens` are rejected, never cut: a cut could split an audio span or drop every trained token.
    """

    def __init__(
        self,
        tokenizer: Any,
        n_mels: int = A.N_MELS,
        root: str | os.PathLike[str] | None = None,
        spec_augment: bool = False,
        max_audio_seconds: float = A.MAX_AUDIO_SECONDS,
        long_audio: str = "window",
        max_tokens: int | None = None,
        system: str | None = DEFAULT_SYSTEM,
    ):
        if long_audio not in LONG_AUDIO_POLICIES:
            raise ValueError(f"long_audio={long_audio!r}: choose one of {LONG_AUDIO_POLICIES}")
        self.tok = tokenizer
        self.n_mels = n_mels
        self.root = Path(root) if root is not None else None
        self.spec_augment = spec_augment
        self.max_samples = int(max_audio_seconds * A.SAMPLE_RATE)
        self.long_audio = long_audio
        self.max_tokens = max_tokens
        self.system = system

    def _wav(self, ref: str, audio_bytes: Mapping[str, bytes] | None, key: str) -> Any:
        if audio_bytes is not None and ref in audio_bytes:
            wav = A.load_audio(audio_bytes[ref], name=f"{key}/{ref}")
        else:
            path = Path(ref)
            if self.root is not None and not path.is_absolute():
                path = self.root / path
            wav = A.load_audio(path, name=f"conversation {key!r}: {ref}")
        return fit_clip(wav, self.max_samples, self.long_audio, f"conversation {key!r}: audio {ref!r}")

    def process(
        self,
        conversation: Conversation | Mapping[str, Any],
        audio_bytes: Mapping[str, bytes] | None = None,
        key: str | None = None,
        source: str | None = None,
        aug_seed: int = 0,
    ) -> ChatExample:
        conv = Conversation.from_dict(conversation, key=key or "?")
        key = key or conv.key
        try:
            msgs, refs = canonicalize(conv, self.system)
        except ValueError as e:
            raise SampleError(str(e)) from e
        if not any(m.role == "assistant" for m in msgs):
            raise SampleError(f"conversation {key!r}: no assistant turn, nothing to train")
        mels, positions, seconds = [], [], 0.0
        for k, ref in enumerate(refs):
            wav = self._wav(ref, audio_bytes, key)
            mel = A.windowed_log_mel(wav, n_mels=self.n_mels)  # over 30 s: 30-s windows, as `SampleProcessor`
            if self.spec_augment:
                g = torch.Generator().manual_seed((aug_seed * 1009 + k) % 2**63)
                mel = A.spec_augment_windows(mel, generator=g)
            mels.append(mel)
            positions.append(A.audio_positions(len(wav)))
            seconds += len(wav) / A.SAMPLE_RATE
        ids, mask = render(conv, self.tok, positions, system=self.system)
        if self.max_tokens is not None and len(ids) > self.max_tokens:
            raise SampleError(f"conversation {key!r}: {len(ids)} tokens > max_tokens={self.max_tokens}")
        return ChatExample(
            key=key,
            source=source or conv.source,
            task=conv.task,
            input_ids=ids,
            labels=labels_from_mask(ids, mask),
            mels=mels,
            n_mels=self.n_mels,
            duration=seconds,
            meta={"n_audios": len(refs), "turns": sum(m.role == "assistant" for m in msgs)},
        )

    def __call__(self, raw: Mapping[str, Any], meta: ChatMeta | None = None, aug_seed: int = 0) -> ChatExample:
        meta = meta or parse_chat_meta(raw)
        conv = Conversation.from_dict(json.loads(raw[CHAT_MEMBER]), key=meta.key)
        members = {k: v for k, v in raw.items() if not k.startswith("__") and k != CHAT_MEMBER}
        return self.process(conv, audio_bytes=members, key=meta.key, source=meta.source, aug_seed=aug_seed)


def collate_chat(
    examples: Sequence[ChatExample],
    pad_id: int,
    left_pad: bool = False,
    packing: bool = False,
    max_tokens_per_row: int = 2048,
    audio_ids: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Pad chat examples into a batch for `QwenAudioModel`: the audios of all rows are flattened in row-major
    order (row 0's spans, then row 1's ...), the order in which the model finds the spans in input_ids.

    Returns the keys of `data.processing.collate` (input_ids/attention_mask/labels [B, S], audio_features
    [A, n_mels, Lmax], audio_lengths [A] mel frames, target_index, tasks, sources, keys, references, metas,
    audio_seconds, padding; position_ids and sample_spans with `packing`, audio_spans with `audio_ids`) plus
    `n_audios` [N] (per conversation, in the examples' order). A batch without audio has A = 0 (the model then
    runs its dummy clip)."""
    if not examples:
        raise ValueError("collate_chat() got an empty list of examples")
    clips, n_mels = [e.mels for e in examples], examples[0].n_mels
    batch = batch_tokens(examples, clips, n_mels, pad_id, left_pad, packing, max_tokens_per_row, audio_ids)
    batch["n_audios"] = torch.tensor([len(e.mels) for e in examples], dtype=torch.long)
    return batch
