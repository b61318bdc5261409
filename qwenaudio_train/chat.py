"""Qwen-Audio-Chat conversations: the schema, ChatML rendering to (ids, loss mask), SFT examples, and chat inference.

Owns: the conversation schema and its canonical form, `render` (ids + loss mask, exactly the release's token layout),
`visualize` (which tokens are trained), `ChatProcessor` / `collate_chat` (conversations -> model batches with any
number of audios per row), and the inference API `chat` / `chat_batch` (greedy, KV cache, streaming).
Must not: train, batch by duration or read shard streams (the loader does), or know about task tags.

Schema (one JSON object a line in a `.jsonl` file, or the `.json` member of a chat shard sample)::

    {"messages": [{"role": "system" | "user" | "assistant", "content": str}, ...],
     "audios": ["clips/a.flac", ...],                      # optional: paths (or shard member names)
     "key": "...", "task": "...", "source": "...", "duration": 3.2}   # optional bookkeeping

A user message refers to audio with `<audio>REF</audio>`, REF being an index into `audios` or a path. Content may
also be the release's list format `[{"audio": REF}, {"text": "..."}]`. Only user messages may hold audio.

Rendering (facts §7; the release's `assets/sft_sample.txt`, `qwen_generation_utils.make_context`, `finetune.py`)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\nAudio 1: <audio>PATH</audio>\\n
    what does the person say?<|im_end|>\\n<|im_start|>assistant\\n[[The person says: "...".<|im_end|>]]

* turns are `<|im_start|>{role}\\n{content}<|im_end|>` joined by `\\n`; without a system message the default one is
  inserted; `add_generation_prompt` appends `\\n<|im_start|>assistant\\n`;
* ids are built piecewise as the release does: `[im_start] + encode(role) + encode("\\n") + encode(content) +
  [im_end]`, so BPE merges never cross a role/content boundary;
* every `<audio>REF</audio>` is labelled `Audio k: ` (numbered over the whole conversation, as the release's web
  demo does; a label already present is renumbered, so canonical text is a fixed point) and followed by `\\n`. The
  tokenizer's `from_list_format` writes `Audio k:` without the space; the SFT sample and the web demo have it;
  the spec (facts §7) follows them, so do we. In ids, each span becomes `<audio>` + N pads + `</audio>`;
* loss mask (`[[...]]` above): 1 on each assistant turn's content and its `<|im_end|>` (so the model learns to
  stop), 0 on the role header `<|im_start|>assistant\\n`, on system and user turns, on audio spans, and on the
  `\\n` after `<|im_end|>`: generation stops at `<|im_end|>`, so that separator is never predicted. (Qwen's
  `finetune.py` also trains the `<|im_start|>`/`<|im_end|>`/`\\n` of system and user turns; we follow facts §7:
  loss on assistant turns only.)
* `<|im_start|>`, `<|im_end|>` and `<|endoftext|>` written inside content are rejected (they would forge turns).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qwenaudio_train import audio as A
from qwenaudio_train.data.processing import IGNORE_INDEX, pad_mels, pad_tokens
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.tags import AUDIO_END, AUDIO_START, ENDOFTEXT, IM_END, IM_START

DEFAULT_SYSTEM = "You are a helpful assistant."
ROLES = ("system", "user", "assistant")
AUDIO_LABEL = "Audio {n}: "
# One audio reference with its optional label ("Audio 3: " or the tokenizer's "Audio 3:") and trailing newline.
_AUDIO_REF_RE = re.compile(r"(?:Audio \d+: ?)?" + re.escape(AUDIO_START) + r"(.*?)" + re.escape(AUDIO_END) + r"\n?")
_FORBIDDEN = (IM_START, IM_END, ENDOFTEXT)


# ---------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Message:
    role: str
    content: str


@dataclass
class Conversation:
    """A conversation as stored. `audios[i]` is what `<audio>i</audio>` refers to (a path or a member name)."""

    messages: list[Message]
    audios: list[str] = field(default_factory=list)
    key: str = ""
    task: str = "chat"
    source: str = "chat"
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Conversation, key: str = "?") -> Conversation:
        """Validate a schema dict (or pass a Conversation through). SampleError names the conversation."""
        if isinstance(d, Conversation):
            return d
        if not isinstance(d, Mapping) or not isinstance(d.get("messages"), list) or not d["messages"]:
            raise SampleError(f"conversation {key!r}: needs a non-empty 'messages' list")
        key = str(d.get("key", key))
        audios = d.get("audios") or []
        if not isinstance(audios, list) or not all(isinstance(a, str) for a in audios):
            raise SampleError(f"conversation {key!r}: 'audios' must be a list of strings (paths)")
        messages = []
        for i, m in enumerate(d["messages"]):
            if not isinstance(m, Mapping) or m.get("role") not in ROLES or "content" not in m:
                raise SampleError(
                    f"conversation {key!r}: message {i} must be {{'role': one of {ROLES}, "
                    f"'content': ...}}, got {m!r:.80}"
                )
            messages.append(Message(m["role"], _content_text(m["content"], key, i)))
        known = {"messages", "audios", "key", "task", "source"}
        return cls(
            messages=messages,
            audios=list(audios),
            key=key,
            task=str(d.get("task", "chat")),
            source=str(d.get("source", "chat")),
            meta={k: v for k, v in d.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "task": self.task,
            "source": self.source,
            **self.meta,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
        }
        if self.audios:
            out["audios"] = list(self.audios)
        return out


def _content_text(content: Any, key: str, index: int) -> str:
    """A message's content as text; the release's list format [{"audio": REF}, {"text": ...}] is joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, Mapping) and "audio" in item:
                parts.append(f"{AUDIO_START}{item['audio']}{AUDIO_END}\n")
            elif isinstance(item, Mapping) and "text" in item:
                parts.append(str(item["text"]))
            else:
                raise SampleError(
                    f"conversation {key!r}: message {index}: list items must be {{'audio': ...}} or "
                    f"{{'text': ...}}, got {item!r:.80}"
                )
        return "".join(parts)
    raise SampleError(
        f"conversation {key!r}: message {index}: content must be a string or a list, got {type(content).__name__}"
    )


def load_conversations(path: str | os.PathLike[str]) -> Iterator[Conversation]:
    """Conversations of a JSON-lines file, in order (blank lines skipped). Audio paths stay as written: give the
    file's directory as `ChatProcessor(root=...)` to resolve relative ones."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise SampleError(f"{path}:{lineno}: not valid JSON ({e})") from e
            yield Conversation.from_dict(d, key=f"{Path(path).name}:{lineno}")


# ---------------------------------------------------------------------------------------------------------------
# Canonical form
# ---------------------------------------------------------------------------------------------------------------
def canonicalize(
    conversation: Conversation | Mapping[str, Any], system: str | None = DEFAULT_SYSTEM
) -> tuple[list[Message], list[str]]:
    """(messages as rendered, audio references in order of appearance).

    The system message is inserted (unless `system` is None or the conversation has one); every audio tag gets
    its `Audio k: ` label (k counts over the conversation) and a following newline; an index REF is replaced by
    `audios[REF]`. Canonical messages are a fixed point. ValueError for misplaced system messages, audio outside
    user turns, indices out of range, or control tokens in content.
    """
    conv = Conversation.from_dict(conversation)
    msgs = list(conv.messages)
    if any(m.role == "system" for m in msgs[1:]):
        raise ValueError(f"conversation {conv.key!r}: a system message may only come first")
    if msgs[0].role != "system" and system is not None:
        msgs.insert(0, Message("system", system))
    refs: list[str] = []
    out = []
    for m in msgs:
        bad = [t for t in _FORBIDDEN if t in m.content]
        if bad:
            raise ValueError(
                f"conversation {conv.key!r}: a {m.role} message contains {bad}; control tokens "
                "are added by the renderer and may not appear in content"
            )
        if m.role != "user":
            if AUDIO_START in m.content or AUDIO_END in m.content:
                raise ValueError(
                    f"conversation {conv.key!r}: only user messages may hold <audio> (found in a {m.role} message)"
                )
            out.append(m)
            continue

        def label(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref.isdigit() and conv.audios:
                i = int(ref)
                if i >= len(conv.audios):
                    raise ValueError(
                        f"conversation {conv.key!r}: <audio>{i}</audio> but only {len(conv.audios)} audios are listed"
                    )
                ref = conv.audios[i]
            refs.append(ref)
            return AUDIO_LABEL.format(n=len(refs)) + AUDIO_START + ref + AUDIO_END + "\n"

        content = _AUDIO_REF_RE.sub(label, m.content)
        if content.count(AUDIO_START) != content.count(AUDIO_END):
            raise ValueError(f"conversation {conv.key!r}: unbalanced <audio>...</audio> tags in {m.content!r:.80}")
        out.append(Message("user", content))
    return out, refs


def audio_refs(conversation: Conversation | Mapping[str, Any]) -> list[str]:
    """The audio references of a conversation in rendering order (one per span; a clip used twice counts twice)."""
    return canonicalize(conversation)[1]


def render_text(
    conversation: Conversation | Mapping[str, Any],
    add_generation_prompt: bool = False,
    system: str | None = DEFAULT_SYSTEM,
) -> str:
    """The ChatML text of a conversation (audio spans unexpanded), as the release writes it."""
    msgs, _ = canonicalize(conversation, system)
    text = "\n".join(f"{IM_START}{m.role}\n{m.content}{IM_END}" for m in msgs)
    if add_generation_prompt:
        _check_generation_prompt(msgs)
        text += f"\n{IM_START}assistant\n"
    return text


def _check_generation_prompt(msgs: list[Message]) -> None:
    if msgs[-1].role == "assistant":
        raise ValueError("add_generation_prompt=True but the conversation already ends with an assistant turn")


def render(
    conversation: Conversation | Mapping[str, Any],
    tokenizer: Any,
    audio_positions: Sequence[int],
    add_generation_prompt: bool = False,
    system: str | None = DEFAULT_SYSTEM,
) -> tuple[list[int], list[int]]:
    """(input_ids, loss_mask) of a conversation; `audio_positions[k]` = N of the k-th audio span
    (`audio.audio_positions(samples)`), in `audio_refs` order. Mask 1 = trained (see the module docstring)."""
    msgs, refs = canonicalize(conversation, system)
    if len(refs) != len(audio_positions):
        raise ValueError(
            f"conversation has {len(refs)} audio span(s) but {len(audio_positions)} audio length(s) were given"
        )
    nl = tokenizer.encode("\n")
    ids: list[int] = []
    mask: list[int] = []
    k = 0
    for i, m in enumerate(msgs):
        if i:
            ids += nl
            mask += [0] * len(nl)
        header = [tokenizer.im_start_id] + tokenizer.encode(m.role) + nl
        n_audio = m.content.count(AUDIO_START)
        body = tokenizer.encode_with_audio(m.content, list(audio_positions[k : k + n_audio])) if m.content else []
        k += n_audio
        trained = 1 if m.role == "assistant" else 0
        ids += header + body + [tokenizer.im_end_id]
        mask += [0] * len(header) + [trained] * (len(body) + 1)
    if add_generation_prompt:
        _check_generation_prompt(msgs)
        prompt = nl + [tokenizer.im_start_id] + tokenizer.encode("assistant") + nl
        ids += prompt
        mask += [0] * len(prompt)
    return ids, mask


def visualize(ids: Sequence[int], mask: Sequence[int], tokenizer: Any) -> str:
    """The rendered text with trained tokens inside `[[...]]` and each run of audio pads shown as `[pad x N]`."""
    ids, mask = [int(i) for i in ids], [int(m) for m in mask]
    if len(ids) != len(mask):
        raise ValueError(f"{len(ids)} ids but {len(mask)} mask values")
    out: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while (
            j < len(ids)
            and mask[j] == mask[i]
            and (ids[j] == tokenizer.audio_pad_id) == (ids[i] == tokenizer.audio_pad_id)
        ):
            j += 1
        text = f"[pad x {j - i}]" if ids[i] == tokenizer.audio_pad_id else tokenizer.decode(ids[i:j])
        out.append((mask[i], text))  # type: ignore[arg-type]
        i = j
    # merge neighbouring pieces of the same mask so a trained turn is one [[...]] even around pad runs
    merged: list[tuple[int, str]] = []
    for m, text in out:  # type: ignore[misc]
        if merged and merged[-1][0] == m:
            merged[-1] = (m, merged[-1][1] + text)
        else:
            merged.append((m, text))
    return "".join(f"[[{t}]]" if m else t for m, t in merged)


def labels_from_mask(ids: Sequence[int], mask: Sequence[int]) -> list[int]:
    """Training labels: the id where the mask is 1, IGNORE_INDEX (-100) elsewhere."""
    return [int(i) if m else IGNORE_INDEX for i, m in zip(ids, mask)]


# ---------------------------------------------------------------------------------------------------------------
# SFT examples
# ---------------------------------------------------------------------------------------------------------------
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
        max_audio_seconds: float = float(A.CHUNK_LENGTH),
        long_audio: str = "reject",
        max_tokens: int | None = None,
        system: str | None = DEFAULT_SYSTEM,
    ):
        if long_audio not in ("reject", "truncate"):
            raise ValueError(f"long_audio={long_audio!r}: choose 'reject' or 'truncate'")
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
        if len(wav) > self.max_samples:
            if self.long_audio == "reject":
                raise SampleError(
                    f"conversation {key!r}: audio {ref!r} is {len(wav) / A.SAMPLE_RATE:.1f} s, longer "
                    f"than {self.max_samples / A.SAMPLE_RATE:.0f} s; split it or use long_audio=truncate"
                )
            wav = wav[: self.max_samples]
        if len(wav) < A.HOP_LENGTH * 3:
            raise SampleError(f"conversation {key!r}: audio {ref!r} is too short ({len(wav)} samples)")
        return wav

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
            mel = A.log_mel_spectrogram(wav, n_mels=self.n_mels)
            if self.spec_augment:
                mel = A.spec_augment(mel, generator=torch.Generator().manual_seed((aug_seed * 1009 + k) % 2**63))
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


def collate_chat(examples: Sequence[ChatExample], pad_id: int, left_pad: bool = False) -> dict[str, Any]:
    """Pad chat examples into a batch for `QwenAudioModel`: the audios of all rows are flattened in row-major
    order (row 0's spans, then row 1's ...), the order in which the model finds the spans in input_ids.

    Returns the keys of `data.processing.collate` (input_ids/attention_mask/labels [B, S], audio_features
    [A, n_mels, Lmax], audio_lengths [A] mel frames, tasks, sources, keys, references, metas, audio_seconds,
    padding) plus `n_audios` [B]. A batch without audio has A = 0 (the model then runs its dummy clip)."""
    if not examples:
        raise ValueError("collate_chat() got an empty list of examples")
    input_ids, attention_mask, labels = pad_tokens(examples, pad_id, left_pad)
    mels = [m for e in examples for m in e.mels]
    audio_features, audio_lengths = pad_mels(mels, examples[0].n_mels)
    B, seq, frames = len(examples), input_ids.shape[1], audio_features.shape[2]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "audio_features": audio_features,
        "audio_lengths": audio_lengths,
        "n_audios": torch.tensor([len(e.mels) for e in examples], dtype=torch.long),
        "tasks": [e.task for e in examples],
        "sources": [e.source for e in examples],
        "keys": [e.key for e in examples],
        "references": ["" for _ in examples],
        "metas": [e.meta for e in examples],
        "audio_seconds": float(sum(e.duration for e in examples)),
        "padding": {
            "audio_frames": int(audio_lengths.sum()),
            "audio_frames_padded": int(len(mels) * frames),
            "tokens": int(attention_mask.sum()),
            "tokens_padded": int(B * seq),
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _mel_of_file(path: str, mtime_ns: int, size: int, n_mels: int, max_samples: int) -> tuple[torch.Tensor, int]:
    wav = A.load_audio(path)
    if len(wav) > max_samples:
        raise A.AudioError(
            f"{path}: audio is {len(wav) / A.SAMPLE_RATE:.1f} s; the encoder takes at most "
            f"{max_samples / A.SAMPLE_RATE:.0f} s: cut or split it first"
        )
    if len(wav) < A.HOP_LENGTH * 3:
        raise A.AudioError(f"{path}: audio too short ({len(wav)} samples; needs >= {A.HOP_LENGTH * 3})")
    return A.log_mel_spectrogram(wav, n_mels=n_mels), len(wav)


def load_mel(path: str | os.PathLike[str], n_mels: int = A.N_MELS) -> tuple[torch.Tensor, int]:
    """(log-mel [n_mels, L], samples) of an audio file, cached by path and modification time (chat re-renders
    the whole history every turn). AudioError naming the file if it is missing, unreadable or too long."""
    p = os.path.abspath(os.fspath(path))
    if not os.path.isfile(p):
        raise A.AudioError(f"audio file not found: {os.fspath(path)!r}")
    st = os.stat(p)
    return _mel_of_file(p, st.st_mtime_ns, st.st_size, n_mels, A.N_SAMPLES)


def _history_messages(history: Sequence[Any] | None) -> list[Message]:
    """Chat history as messages: our message dicts, or the release's [(query, response), ...] pairs."""
    out: list[Message] = []
    for item in history or []:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Message(item["role"], _content_text(item["content"], "history", len(out))))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out += [Message("user", _content_text(item[0], "history", len(out))), Message("assistant", str(item[1]))]
        else:
            raise ValueError(f"history items must be message dicts or (query, response) pairs, got {item!r:.80}")
    return out


class _CallbackStreamer:
    """A transformers streamer (`put`/`end`) that calls `callback(text_piece)` as tokens arrive, stopping at the
    first stop id. Decodes the whole reply each time and emits the new suffix, holding back a trailing U+FFFD
    (a UTF-8 character split across tokens)."""

    def __init__(self, tokenizer: Any, callback: Callable[[str], Any], stop_ids: set[int]):
        self.tok, self.callback, self.stop_ids = tokenizer, callback, stop_ids
        self.ids: list[int] = []
        self.emitted = ""
        self.prompt_seen = False
        self.stopped = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first pushes the prompt ids (empty with inputs_embeds)
            self.prompt_seen = True
            return
        for t in value.reshape(-1).tolist():
            if self.stopped or t in self.stop_ids:
                self.stopped = True
                return
            self.ids.append(int(t))
        self._flush(final=False)

    def _flush(self, final: bool) -> None:
        text = self.tok.decode(self.ids)
        if not final and text.endswith("\ufffd"):
            return
        if len(text) > len(self.emitted) and text.startswith(self.emitted):
            self.callback(text[len(self.emitted) :])
            self.emitted = text

    def end(self) -> None:
        self._flush(final=True)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _reply(tokenizer: Any, new_ids: Sequence[int], stop_ids: set[int]) -> str:
    out = []
    for t in new_ids:
        if int(t) in stop_ids:
            break
        out.append(int(t))
    return tokenizer.decode(out)


def _prompt_example(tokenizer: Any, msgs: list[Message], refs: list[str], n_mels: int) -> ChatExample:
    loaded = [load_mel(r, n_mels) for r in refs]
    positions = [A.audio_positions(n) for _, n in loaded]
    conv = Conversation(messages=msgs)
    ids, _ = render(conv, tokenizer, positions, add_generation_prompt=True, system=None)
    return ChatExample(
        key="chat",
        source="chat",
        task="chat",
        input_ids=ids,
        labels=[],
        mels=[m for m, _ in loaded],
        n_mels=n_mels,
        duration=sum(n for _, n in loaded) / A.SAMPLE_RATE,
    )


def build_query(query: str | Sequence[Mapping[str, Any]], audio: Sequence[str | os.PathLike[str]] | None = None) -> str:
    """A user turn's content: each of `audio` as `<audio>PATH</audio>\\n` (labels are added when rendering), then
    the query (text, or the release's list format)."""
    text = _content_text(query, "query", 0) if not isinstance(query, str) else query
    return "".join(f"{AUDIO_START}{os.fspath(p)}{AUDIO_END}\n" for p in (audio or [])) + text


@torch.no_grad()
def chat(
    model: Any,
    tokenizer: Any,
    query: str | Sequence[Mapping[str, Any]],
    history: Sequence[Any] | None = None,
    audio: Sequence[str | os.PathLike[str]] | None = None,
    system: str = DEFAULT_SYSTEM,
    max_new_tokens: int = 512,
    stream: Callable[[str], Any] | None = None,
) -> tuple[str, list[dict[str, str]]]:
    """One chat turn: (reply, new_history). Greedy decoding with the KV cache (`model.generate`), stopping at
    `<|im_end|>` (or `<|endoftext|>`); the reply excludes the stop token.

    `history` is the previous turns as message dicts (what this function returns) or the release's
    [(query, response)] pairs; `audio` attaches files to this turn (numbered after the history's audios);
    `stream(piece)` receives the reply text as it is generated. Audio is read from disk each turn (cached).
    """
    msgs = [Message("system", system)] + _history_messages(history)
    msgs.append(Message("user", build_query(query, audio)))
    canon, refs = canonicalize(Conversation(messages=msgs), system=None)  # a system turn in history: ValueError
    n_mels = model.audio.n_mels
    ex = _prompt_example(tokenizer, canon, refs, n_mels)
    batch = collate_chat([ex], tokenizer.eod_id, left_pad=True)
    stop_ids = {tokenizer.im_end_id, tokenizer.eod_id}
    streamer = _CallbackStreamer(tokenizer, stream, stop_ids) if stream is not None else None
    device = _device_of(model)
    new = model.generate(
        batch["input_ids"].to(device),
        batch["attention_mask"].to(device),
        audio_features=batch["audio_features"].to(device) if refs else None,
        audio_lengths=batch["audio_lengths"].to(device) if refs else None,
        max_new_tokens=max_new_tokens,
        eos_token_id=sorted(stop_ids),
        pad_token_id=tokenizer.eod_id,
        streamer=streamer,
    )
    reply = _reply(tokenizer, new[0].tolist(), stop_ids)
    new_history = [{"role": m.role, "content": m.content} for m in canon[1:]]
    new_history.append({"role": "assistant", "content": reply})
    return reply, new_history


@torch.no_grad()
def chat_batch(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Conversation | Mapping[str, Any]],
    max_new_tokens: int = 512,
    system: str | None = DEFAULT_SYSTEM,
    root: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Replies to several conversations at once (each ends with a user turn): left-padded, greedy, KV cache.
    Relative audio paths are resolved against `root`."""
    if not conversations:
        return []
    n_mels = model.audio.n_mels
    examples = []
    for conv in conversations:
        msgs, refs = canonicalize(conv, system)
        if root is not None:
            refs = [r if os.path.isabs(r) else os.path.join(os.fspath(root), r) for r in refs]
        examples.append(_prompt_example(tokenizer, msgs, refs, n_mels))
    batch = collate_chat(examples, tokenizer.eod_id, left_pad=True)
    stop_ids = {tokenizer.im_end_id, tokenizer.eod_id}
    device = _device_of(model)
    has_audio = batch["audio_features"].shape[0] > 0
    new = model.generate(
        batch["input_ids"].to(device),
        batch["attention_mask"].to(device),
        audio_features=batch["audio_features"].to(device) if has_audio else None,
        audio_lengths=batch["audio_lengths"].to(device) if has_audio else None,
        max_new_tokens=max_new_tokens,
        eos_token_id=sorted(stop_ids),
        pad_token_id=tokenizer.eod_id,
    )
    return [_reply(tokenizer, row.tolist(), stop_ids) for row in new]


__all__ = [
    "AUDIO_LABEL",
    "DEFAULT_SYSTEM",
    "ROLES",
    "ChatExample",
    "ChatMeta",
    "ChatProcessor",
    "Conversation",
    "Message",
    "audio_refs",
    "build_query",
    "canonicalize",
    "chat",
    "chat_batch",
    "collate_chat",
    "labels_from_mask",
    "load_conversations",
    "load_mel",
    "parse_chat_meta",
    "render",
    "render_text",
    "visualize",
]
