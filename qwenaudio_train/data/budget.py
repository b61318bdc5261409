"""Batch budgets: how a duration-sorted chunk is cut into batches, how big a chunk is, and token lengths estimated
before decoding.

Without a budget a batch is ``batch_size`` samples. With ``max_batch_seconds`` (audio seconds, counted padded:
rows x the longest clip) and/or ``max_batch_tokens`` (LLM tokens, counted padded: rows x the longest sequence;
with ``packing`` the sum of the lengths, as packed rows hold them) a batch takes samples, in chunk order, while
it stays within every budget and under ``max_batch_size`` samples: short clips make big batches, long ones small
batches, and a step holds a steady amount of work. A single sample larger than a budget goes alone in its batch
(it is never dropped: the budget is exceeded by that one sample only). A chunk then holds enough samples to fill
``chunk_batches`` budgeted batches.

Token lengths come from the metadata, before decoding (``length_fn_for``): the audio span from the duration
(``audio.audio_positions`` + bos/eos) plus the tokenized tags and target (tagged samples) or the rendered
conversation (chat, the audio split evenly over its spans). Tagged samples: exact when the metadata duration
rounds to the decoded length (the recipes write it so); chat: within one token per audio span.

Must not: decode audio, read shards or know about ranks (``loader.py`` runs the streams).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from qwenaudio_train import audio as A

LengthFn = Callable[[dict[str, Any], Any], int]  # (raw sample, parsed metadata) -> estimated LLM tokens


def has_budget(cfg: Any) -> bool:
    return cfg.max_batch_seconds > 0 or cfg.max_batch_tokens > 0


def chunk_full(n: int, seconds: float, tokens: int, cfg: Any) -> bool:
    """Whether a chunk of ``n`` samples (``seconds`` of audio, ``tokens`` estimated tokens) is complete: the
    sample count without a budget; with one, enough for ``chunk_batches`` batches of the first budget reached
    (padded sums are at least the plain sums), capped at ``max_batch_size x chunk_batches`` samples."""
    if not has_budget(cfg):
        return n >= cfg.batch_size * cfg.chunk_batches
    if n >= cfg.max_batch_size * cfg.chunk_batches:
        return True
    by_seconds = cfg.max_batch_seconds > 0 and seconds >= cfg.chunk_batches * cfg.max_batch_seconds
    by_tokens = cfg.max_batch_tokens > 0 and tokens >= cfg.chunk_batches * cfg.max_batch_tokens
    return by_seconds or by_tokens


def cut_batches(order: Sequence[int], durations: Sequence[float], lengths: Sequence[int], cfg: Any) -> list[list[int]]:
    """Cut sorted sample indices into batches: ``batch_size`` each, or, with a budget, as many as fit every budget
    (padded seconds, padded or packed tokens, ``max_batch_size``); a sample over a budget on its own goes alone."""
    if not has_budget(cfg):
        bs = cfg.batch_size
        return [list(order[i : i + bs]) for i in range(0, len(order), bs)]
    seconds, tokens, cap = cfg.max_batch_seconds, cfg.max_batch_tokens, cfg.max_batch_size
    packing = bool(getattr(cfg, "packing", False))
    batches: list[list[int]] = [[]]
    longest_s, longest_t, sum_t = 0.0, 0, 0
    for i in order:
        cur = batches[-1]
        n, d, t = len(cur) + 1, durations[i], lengths[i]
        over = (
            n > cap
            or (seconds > 0 and n * max(longest_s, d) > seconds)
            or (tokens > 0 and ((sum_t + t) if packing else n * max(longest_t, t)) > tokens)
        )
        if cur and over:
            batches.append([])
            longest_s, longest_t, sum_t = 0.0, 0, 0
        batches[-1].append(i)
        longest_s, longest_t, sum_t = max(longest_s, d), max(longest_t, t), sum_t + t
    return batches


def _span_tokens(seconds: float, long_audio: str) -> int:
    if long_audio != "window":  # reject: the sample is dropped anyway; truncate: cut at 30 s
        seconds = min(seconds, float(A.CHUNK_LENGTH))
    return A.audio_positions(A.samples_for_duration(max(seconds, 0.0))) + 2  # + <audio> and </audio>


def tagged_length_fn(processor: Any) -> LengthFn:
    """Estimated tokens of a tagged training sample (``SampleProcessor``'s layout: span + tags + target + eod)."""
    from qwenaudio_train.tasks import get_task

    tok, long_audio = processor.tok, getattr(processor, "long_audio", "reject")

    def length(raw: dict[str, Any], meta: Any) -> int:
        try:
            task = get_task(meta.task)
            text = len(tok.encode(task.tags(meta).render())) + len(tok.encode(task.format_target(meta))) + 1
        except (ValueError, KeyError, TypeError):
            return 0  # the processor rejects the sample later, naming the problem
        return _span_tokens(meta.duration, long_audio) + text

    return length


def chat_length_fn(processor: Any) -> LengthFn:
    """Estimated tokens of a chat shard sample: the conversation rendered with its audio spread evenly over its
    spans (one token per span at most off: a span's positions are about linear in its length)."""
    from qwenaudio_train.chat.render import Conversation, canonicalize, render

    tok, system, long_audio = processor.tok, processor.system, getattr(processor, "long_audio", "reject")

    def length(raw: dict[str, Any], meta: Any) -> int:
        try:
            conv = Conversation.from_dict(json.loads(raw["json"]), key=meta.key)
            refs = canonicalize(conv, system)[1]
            each = meta.duration / max(len(refs), 1)
            positions = [_span_tokens(each, long_audio) - 2] * len(refs)
            return len(render(conv, tok, positions, system=system)[0])
        except (ValueError, KeyError, TypeError):
            return 0  # the processor rejects the sample later, naming the problem

    return length


def length_fn_for(processor: Any) -> LengthFn:
    """The length estimate matching a processor: chat (``chat.ChatProcessor``) or tagged (``SampleProcessor``)."""
    return chat_length_fn(processor) if hasattr(processor, "system") else tagged_length_fn(processor)
