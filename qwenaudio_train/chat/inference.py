"""Chat inference: one turn (`chat`, optionally streamed) or many conversations at once (`chat_batch`).

Owns: `load_mel` (log-mel of an audio file, cached across turns), `build_query` (a user turn's content, as the
release's `tokenizer.from_list_format` writes it), the
streaming callback adapter, and greedy decoding with the KV cache through `QwenAudioModel.generate`, stopping at
`<|im_end|>` / `<|endoftext|>`.
Must not: train, define the rendering (`chat.render`) or batching (`chat.processing.collate_chat`), or load models
and tokenizers (the caller passes them in; `qwenaudio-chat` does that).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from qwenaudio_train import audio as A
from qwenaudio_train.chat.processing import ChatExample, collate_chat
from qwenaudio_train.chat.render import DEFAULT_SYSTEM, Conversation, Message, canonicalize, content_text, render


@functools.lru_cache(maxsize=32)
def _mel_of_file(
    path: str, mtime_ns: int, size: int, n_mels: int, max_samples: int, release_compat: bool = False
) -> tuple[torch.Tensor, int]:
    wav = A.load_audio(path)
    if release_compat:  # the release's process_audio: cut at 30 s, log-mel of the clip padded to 30 s
        wav = wav[: A.N_SAMPLES]
        return A.release_log_mel(wav, n_mels=n_mels), len(wav)
    if len(wav) > max_samples:
        raise A.AudioError(
            f"{path}: audio is {len(wav) / A.SAMPLE_RATE:.1f} s; chat takes at most "
            f"{max_samples / A.SAMPLE_RATE:g} s (max_audio_seconds): cut or split it first"
        )
    if len(wav) < A.MIN_WINDOW_SAMPLES:
        raise A.AudioError(f"{path}: audio too short ({len(wav)} samples; needs >= {A.MIN_WINDOW_SAMPLES})")
    return A.windowed_log_mel(wav, n_mels=n_mels), len(wav)


def load_mel(
    path: str | os.PathLike[str],
    n_mels: int = A.N_MELS,
    max_audio_seconds: float = A.MAX_AUDIO_SECONDS,
    release_compat: bool = False,
) -> tuple[torch.Tensor, int]:
    """(log-mel [n_mels, L], samples) of an audio file, cached by path and modification time (chat re-renders
    the whole history every turn). A clip over 30 s is read in 30-s windows (`audio.windowed_log_mel`: its span
    holds `audio.audio_positions(samples)`, the sum over its windows) up to `max_audio_seconds`. AudioError
    naming the file if it is missing, unreadable, too short or longer than that. `release_compat`: the release's
    front-end instead (`audio.release_log_mel`, the clip cut at 30 s), for a model whose encoder runs with
    `model.audio.release_compat`."""
    p = os.path.abspath(os.fspath(path))
    if not os.path.isfile(p):
        raise A.AudioError(f"audio file not found: {os.fspath(path)!r}")
    st = os.stat(p)
    return _mel_of_file(p, st.st_mtime_ns, st.st_size, n_mels, int(max_audio_seconds * A.SAMPLE_RATE), release_compat)


def _history_messages(history: Sequence[Any] | None) -> list[Message]:
    """Chat history as messages: our message dicts, or the release's [(query, response), ...] pairs."""
    out: list[Message] = []
    for item in history or []:
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Message(item["role"], content_text(item["content"], "history", len(out))))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out += [Message("user", content_text(item[0], "history", len(out))), Message("assistant", str(item[1]))]
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


def _prompt_example(
    tokenizer: Any, msgs: list[Message], refs: list[str], n_mels: int, release_compat: bool = False
) -> ChatExample:
    loaded = [load_mel(r, n_mels, release_compat=release_compat) for r in refs]
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
    """A user turn's content, exactly the release's `tokenizer.from_list_format` of `[{"audio": PATH} for each of
    `audio`] + query` (a text query being `{"text": query}`): `Audio k:<audio>PATH</audio>\\n` per clip, k counting
    this call's clips from 1, then the text."""
    items: list[Mapping[str, Any]] = [{"audio": os.fspath(p)} for p in (audio or [])]
    items += [{"text": query}] if isinstance(query, str) else list(query)
    return content_text(items, "query", 0)


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
    [(query, response)] pairs; `audio` attaches files to this turn (`Audio 1:`... as `build_query` writes them);
    text is encoded as the release's `make_context` encodes it (`chat.render`: only the audio tags are special);
    `stream(piece)` receives the reply text as it is generated. Audio is read from disk each turn (cached).
    """
    msgs = [Message("system", system)] + _history_messages(history)
    msgs.append(Message("user", build_query(query, audio)))
    # a system turn in history: ValueError; labels as the tokenizer's model family writes them
    canon, refs = canonicalize(Conversation(messages=msgs), system=None, family=tokenizer.family)
    n_mels = model.audio.n_mels
    # model.audio.release_compat (qwenaudio-chat --release-compat): the release's front-end for its encoder edge
    ex = _prompt_example(tokenizer, canon, refs, n_mels, model.audio.release_compat)
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
        msgs, refs = canonicalize(conv, system, family=tokenizer.family)
        if root is not None:
            refs = [r if os.path.isabs(r) else os.path.join(os.fspath(root), r) for r in refs]
        examples.append(_prompt_example(tokenizer, msgs, refs, n_mels, model.audio.release_compat))
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
