"""Raw shard sample -> model-ready example: decode, log-mel, SpecAugment, tags + target -> ids and labels.

The token layout of one pretraining example (facts §1, §3)::

    <audio> [pad] x N </audio>  <|tags ...|>  target text  <|endoftext|>
    \\_____ masked (-100) ____/  \\_ masked _/  \\____ trained (loss) ____/

N = ``audio.audio_positions(samples)``: the model overwrites the span with [bos, audio_1..N, eos].
Evaluation examples stop after the task's eval prompt; the reference is the rest of the target.

Must not: batch, shuffle or know about ranks (``loader.py`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from qwenaudio_train import audio as A
from qwenaudio_train.data.packing import audio_spans, pack_tokens, target_index
from qwenaudio_train.data.schema import BAD_RECORD, SampleError, SampleMeta, audio_member
from qwenaudio_train.model.family import QWEN_AUDIO
from qwenaudio_train.tasks import Task, get_task

IGNORE_INDEX = -100
LONG_AUDIO_POLICIES = ("window", "reject", "truncate")
MAX_AUDIO_SAMPLES = int(A.MAX_AUDIO_SECONDS * A.SAMPLE_RATE)


def fit_clip(wav: Any, max_samples: int, long_audio: str, what: str) -> Any:
    """The one length check of a clip entering the model (tagged samples, chat turns). Over the encoder's 30 s it is
    encoded in 30-s windows (``window``, up to ``max_samples``: ``data.max_audio_seconds``; past it a bad sample
    naming the setting), a bad sample naming the fix (``reject``) or cut (``truncate``); too short to frame, a bad
    sample. A windowed clip's last window shorter than 30 ms is dropped by the encoding (``audio.window_frames``)."""
    if long_audio == "window":
        if len(wav) > max_samples:
            raise SampleError(
                f"{what} is {len(wav) / A.SAMPLE_RATE:.1f} s, longer than data.max_audio_seconds="
                f"{max_samples / A.SAMPLE_RATE:g}; raise data.max_audio_seconds (memory and time grow linearly "
                "with it) or split the recording when building shards"
            )
    elif len(wav) > A.N_SAMPLES:
        if long_audio == "reject":
            raise SampleError(
                f"{what} is {len(wav) / A.SAMPLE_RATE:.1f} s, longer than the encoder's "
                f"{A.CHUNK_LENGTH} s; set data.long_audio=window to encode it in 30-s windows, "
                "or data.long_audio=truncate to cut it (targets are not re-based)"
            )
        wav = wav[: A.N_SAMPLES]
    if len(wav) < A.MIN_WINDOW_SAMPLES:
        raise SampleError(f"{what} is too short ({len(wav)} samples); needs >= {A.MIN_WINDOW_SAMPLES}")
    return wav


def validate_sample(
    raw: dict[str, Any],
    meta: SampleMeta | None = None,
    max_samples: int = MAX_AUDIO_SAMPLES,
    long_audio: str = "window",
) -> tuple[SampleMeta, Task, Any]:
    """The one validation of a tagged sample, shared by the loader (``SampleProcessor``) and ``qwenaudio-data check``
    (``shards.check_sample``): its metadata, a known task, audio that decodes (any rate and channel count: it is
    resampled to 16 kHz mono, as training does) and a clip the encoder takes (``fit_clip``: windowed up to
    ``max_samples``, or over 30 s rejected / cut as ``long_audio`` says; not too short). Returns (meta, task,
    16-kHz mono wav); SampleError or AudioError naming the sample otherwise."""
    key = raw.get("__key__", "?")
    meta = meta or parse_meta(raw)
    try:
        task = get_task(meta.task)
    except ValueError as e:
        raise SampleError(f"sample {key!r}: {e}") from None
    ext, data = audio_member(raw)
    wav = A.load_audio(data, name=f"{key}.{ext} in {raw.get('__url__', '?')}")
    return meta, task, fit_clip(wav, max_samples, long_audio, f"sample {key!r}: audio")


@dataclass
class Example:
    key: str
    source: str
    task: str
    input_ids: list[int]
    labels: list[int]
    mel: torch.Tensor  # [n_mels, L] log-mel on the clip's real length
    duration: float
    reference: str = ""  # eval only: the text the model should produce after the prompt
    meta: dict[str, Any] = field(default_factory=dict)


def parse_meta(raw: dict[str, Any]) -> SampleMeta:
    """The metadata of a raw tagged sample; SampleError for a bad one (a damaged shard's bad record included)."""
    key = raw.get("__key__", "?")
    if BAD_RECORD in raw:
        raise SampleError(str(raw[BAD_RECORD]))
    if "json" not in raw:
        raise SampleError(f"sample {key!r} in {raw.get('__url__', '?')}: no .json metadata member")
    return SampleMeta.from_json(raw["json"], key)


class SampleProcessor:
    """Turns raw samples into ``Example``s for training (``train=True``) or evaluation prompts."""

    def __init__(
        self,
        tokenizer: Any,
        n_mels: int = A.N_MELS,
        train: bool = True,
        spec_augment: bool = False,
        max_audio_seconds: float = A.MAX_AUDIO_SECONDS,
        long_audio: str = "window",
        seed: int = 0,
        release_compat: bool = False,
    ):
        if long_audio not in LONG_AUDIO_POLICIES:
            raise ValueError(f"data.long_audio={long_audio!r}: choose one of {LONG_AUDIO_POLICIES}")
        self.tok = tokenizer
        # Evaluation of released checkpoints: the release's front-end (`audio.release_log_mel`), clips cut at 30 s
        # as the release does; the model's encoder must run with `release_compat` too.
        self.release_compat = release_compat
        self.n_mels = n_mels
        self.train = train
        self.spec_augment = spec_augment
        self.max_samples = int(max_audio_seconds * A.SAMPLE_RATE)
        self.long_audio = long_audio
        self.seed = seed

    def __call__(self, raw: dict[str, Any], meta: SampleMeta | None = None, aug_seed: int = 0) -> Example:
        key = raw.get("__key__", "?")
        if self.release_compat:
            meta, task, wav = validate_sample(raw, meta, A.N_SAMPLES, "truncate")
            mel = A.release_log_mel(wav, n_mels=self.n_mels)
        else:
            meta, task, wav = validate_sample(raw, meta, self.max_samples, self.long_audio)
            mel = A.windowed_log_mel(wav, n_mels=self.n_mels)  # one 30-s window (the release's) or several
        if self.train and self.spec_augment:
            g = torch.Generator().manual_seed(aug_seed)
            mel = A.spec_augment_windows(mel, generator=g)
        n_pos = A.audio_positions(len(wav))
        span = self.tok.audio_span_ids(n_pos)
        target = task.format_target(meta)
        family = getattr(self.tok, "family", QWEN_AUDIO)  # the prompt after the audio: tags or natural language
        if self.train:
            prefix_ids = self.tok.encode(family.train_prefix(task, meta))
            target_ids = self.tok.encode(target) + [self.tok.eod_id]
            input_ids = span + prefix_ids + target_ids
            labels = [IGNORE_INDEX] * (len(span) + len(prefix_ids)) + target_ids
            reference = target
        else:
            prompt = family.eval_prefix(task, meta)
            prefix = family.train_prefix(task, meta)
            forced = prompt[len(prefix) :] if prompt.startswith(prefix) else ""
            reference = (target[len(forced) :] if forced and target.startswith(forced) else target).strip()
            input_ids = span + self.tok.encode(prompt)
            labels = []
        return Example(
            key=key,
            source=str(raw.get("__source__", meta.source)),
            task=meta.task,
            input_ids=input_ids,
            labels=labels,
            mel=mel,
            duration=len(wav) / A.SAMPLE_RATE,
            reference=reference,
            meta={
                "audio_language": meta.audio_language,
                "text_language": meta.text_language,
                "source": meta.source,
                "captions": meta.meta.get("captions"),
            },
        )


def pad_tokens(
    examples: Sequence[Any], pad_id: int, left_pad: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids / attention_mask / labels [B, S] of examples with ``input_ids`` and ``labels`` lists."""
    seq = max(len(e.input_ids) for e in examples)
    B = len(examples)
    input_ids = torch.full((B, seq), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, seq), dtype=torch.long)
    labels = torch.full((B, seq), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        sl = slice(seq - n, seq) if left_pad else slice(0, n)
        input_ids[i, sl] = torch.tensor(e.input_ids)
        attention_mask[i, sl] = 1
        if e.labels:
            labels[i, sl] = torch.tensor(e.labels)
    return input_ids, attention_mask, labels


def pad_mels(mels: Sequence[torch.Tensor], n_mels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """audio_features [A, n_mels, Lmax] (zero padded) and audio_lengths [A] (mel frames) of A clips."""
    frames = max((m.shape[1] for m in mels), default=0)
    features = torch.zeros((len(mels), n_mels, frames), dtype=torch.float32)
    for a, m in enumerate(mels):
        features[a, :, : m.shape[1]] = m
    return features, torch.tensor([m.shape[1] for m in mels], dtype=torch.long)


def collate(
    examples: list[Example],
    pad_id: int,
    left_pad: bool = False,
    packing: bool = False,
    max_tokens_per_row: int = 2048,
    audio_ids: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Pad a list of examples into a batch. Training pads right; generation pads left (the release's way).

    packing: the examples share rows up to `max_tokens_per_row` tokens (`data.packing`): adds position_ids and
    sample_spans, and the clips follow the packed rows (see `data.packing`). audio_ids (`<audio>`, `</audio>`):
    adds audio_spans [A, 3], found here on the host instead of on the device by the model. Every batch carries
    target_index (the flat positions whose next token is a target)."""
    if not examples:
        raise ValueError("collate() got an empty list of examples")
    clips, n_mels = [[e.mel] for e in examples], examples[0].mel.shape[0]
    return batch_tokens(examples, clips, n_mels, pad_id, left_pad, packing, max_tokens_per_row, audio_ids)


def collate_for(
    collate_fn: Callable[..., dict[str, Any]] | None, data: Any, tokenizer: Any
) -> Callable[..., dict[str, Any]]:
    """The training loader's collate function (`collate` when None; `chat.collate_chat`) with the run's
    `data.packing` / `data.max_tokens_per_row` and the tokenizer's `<audio>` / `</audio>` ids bound."""
    audio_ids = (tokenizer.audio_start_id, tokenizer.audio_end_id)
    return partial(collate_fn or collate, packing=data.packing, max_tokens_per_row=data.max_tokens_per_row,
                   audio_ids=audio_ids)  # fmt: skip


def batch_tokens(
    examples: Sequence[Any],
    clips: Sequence[Sequence[torch.Tensor]],
    n_mels: int,
    pad_id: int,
    left_pad: bool,
    packing: bool,
    max_tokens_per_row: int,
    audio_ids: tuple[int, int] | None,
) -> dict[str, Any]:
    """The batch of `collate` and `chat.collate_chat`: examples (input_ids, labels, key, task, source, duration,
    meta) with clips[i] the log-mels [n_mels, L] of example i's audio spans in order; padded rows, or packed ones."""
    extra: dict[str, Any] = {}
    if packing:
        if left_pad:
            raise ValueError("packing is for training batches (right padded); left_pad=True cannot be packed")
        packed = pack_tokens(examples, pad_id, max_tokens_per_row)
        order = packed.pop("order")
        input_ids, attention_mask, labels = packed.pop("input_ids"), packed.pop("attention_mask"), packed.pop("labels")
        extra = packed  # position_ids, sample_spans
    else:
        order = list(range(len(examples)))
        input_ids, attention_mask, labels = pad_tokens(examples, pad_id, left_pad)
    mels = [m for i in order for m in clips[i]]
    audio_features, audio_lengths = pad_mels(mels, n_mels)
    if audio_ids is not None:
        extra["audio_spans"] = audio_spans(input_ids, *audio_ids)
    B, seq, frames = input_ids.shape[0], input_ids.shape[1], audio_features.shape[2]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "audio_features": audio_features,
        "audio_lengths": audio_lengths,
        **extra,
        "target_index": target_index(labels),
        "tasks": [e.task for e in examples],
        "sources": [e.source for e in examples],
        "keys": [e.key for e in examples],
        "references": [getattr(e, "reference", "") for e in examples],
        "metas": [e.meta for e in examples],
        "audio_seconds": float(sum(e.duration for e in examples)),
        "padding": {
            "audio_frames": int(audio_lengths.sum()),
            "audio_frames_padded": int(len(mels) * frames),
            "tokens": int(attention_mask.sum()),
            "tokens_padded": int(B * seq),
        },
    }
