"""Conversations -> ChatML (ids, loss mask): the schema, its canonical form, rendering and the visualizer.

Owns: the conversation schema (`Message`, `Conversation`, `load_conversations`) and its canonical form
(`canonicalize`, `audio_refs`), `render_text` / `render` (ids + loss mask, exactly the release's token layout),
`visualize` (which tokens are trained) and `labels_from_mask`.
Must not: read or featurize audio (the caller passes each span's audio length), batch, or run a model; know about
task tags.

Schema (one JSON object a line in a `.jsonl` file, or the `.json` member of a chat shard sample)::

    {"messages": [{"role": "system" | "user" | "assistant", "content": str}, ...],
     "audios": ["clips/a.flac", ...],                      # optional: paths (or shard member names)
     "key": "...", "task": "...", "source": "...", "duration": 3.2}   # optional bookkeeping

A user message refers to audio with `<audio>REF</audio>`, REF being an index into `audios` or a path. Content may
also be the release's list format `[{"audio": REF}, {"text": "..."}]`. Only user messages may hold audio.

Rendering (facts §7; the release's `assets/sft_sample.txt`, `qwen_generation_utils.make_context`, `finetune.py`)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\nAudio 1:<audio>PATH</audio>\\n
    what does the person say?<|im_end|>\\n<|im_start|>assistant\\n[[The person says: "...".<|im_end|>]]

* turns are `<|im_start|>{role}\\n{content}<|im_end|>` joined by `\\n`; without a system message the default one is
  inserted; `add_generation_prompt` appends `\\n<|im_start|>assistant\\n`;
* ids are built piecewise as the release does: `[im_start] + encode(role) + encode("\\n") + encode(content) +
  [im_end]`, so BPE merges never cross a role/content boundary;
* content (system, user and assistant alike) is encoded as the release's chat `make_context` encodes it:
  only the audio tags (task, language and time tokens, `<audio>`, `</audio>`) are special
  (`tokenizer.encode(..., allowed_special="audio")`); `<|im_end|>`, `<|endoftext|>` or `<|extra_3|>` written in
  content are ordinary text, so a user cannot forge a turn and is never refused for typing them;
* every `<audio>REF</audio>` is labelled as the release's `tokenizer.from_list_format` writes it, `Audio k:` with no
  space, k counting the audios of that one user turn (the release builds each query with its own call), and is
  followed by `\\n`. A label already present (with or without the space) is renumbered, so canonical text is a
  fixed point. In ids, each span becomes `<audio>` + N pads + `</audio>`;
* loss mask (`[[...]]` above): 1 on each assistant turn's content and its `<|im_end|>` (so the model learns to
  stop), 0 on the role header `<|im_start|>assistant\\n`, on system and user turns, on audio spans, and on the
  `\\n` after `<|im_end|>`: generation stops at `<|im_end|>`, so that separator is never predicted. (Qwen's
  `finetune.py` also trains the `<|im_start|>`/`<|im_end|>`/`\\n` of system and user turns; we follow facts §7:
  loss on assistant turns only.)

Which format SFT data uses: the same. Training (`ChatProcessor`, so the SFT builder's JSON lines and chat shards
alike) renders through these functions with the defaults, so a model is trained on exactly the ids that `chat()`
and the release's own inference (`from_list_format` + `make_context`) send it. The release's `sft_sample.txt`
writes `Audio 1: ` with a space; its inference code does not, and a model is queried the way inference queries it,
so the default follows inference. `audio_label=SFT_SAMPLE_AUDIO_LABEL` renders the sample's spelling (the
numbering stays per turn: the sample's audios all sit in one turn). Likewise content is encoded as inference
encodes it, not with every special token allowed as Qwen's `finetune.py` does.

Qwen2-Audio (`model.family=qwen2_audio`, known from the tokenizer: model/family.py): the same ChatML, rendered as
its Instruct model's chat template renders it: `Audio k: <|audio_bos|><|AUDIO|> x N<|audio_eos|>\n`, k counting the
audios of the whole conversation; the same default system prompt and loss mask.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenaudio_train.data.processing import IGNORE_INDEX
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.model.family import QWEN_AUDIO, ModelFamily
from qwenaudio_train.tags import AUDIO_END, AUDIO_START, IM_END, IM_START

DEFAULT_SYSTEM = "You are a helpful assistant."
ROLES = ("system", "user", "assistant")
AUDIO_LABEL = "Audio {n}:"  # the release's from_list_format: what inference sends, so also what training renders
SFT_SAMPLE_AUDIO_LABEL = "Audio {n}: "  # the release's assets/sft_sample.txt
# One audio reference with its optional label ("Audio 3:" or "Audio 3: ") and trailing newline.
_AUDIO_REF_RE = re.compile(r"(?:Audio \d+: ?)?" + re.escape(AUDIO_START) + r"(.*?)" + re.escape(AUDIO_END) + r"\n?")
# Message content is encoded with only the audio tags special, as the release's make_context does.
CONTENT_SPECIAL = "audio"


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
            messages.append(Message(m["role"], content_text(m["content"], key, i)))
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


def content_text(content: Any, key: str, index: int) -> str:
    """A message's content as text; the release's list format [{"audio": REF}, {"text": ...}] is joined as its
    `from_list_format` joins it (`Audio k:<audio>REF</audio>\\n`, k counting the list's audios)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        n_audio = 0
        for item in content:
            if isinstance(item, Mapping) and "audio" in item:
                n_audio += 1
                parts.append(f"{AUDIO_LABEL.format(n=n_audio)}{AUDIO_START}{item['audio']}{AUDIO_END}\n")
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
    conversation: Conversation | Mapping[str, Any],
    system: str | None = DEFAULT_SYSTEM,
    audio_label: str | None = None,
    family: ModelFamily = QWEN_AUDIO,
) -> tuple[list[Message], list[str]]:
    """(messages as rendered, audio references in order of appearance).

    The system message is inserted (unless `system` is None or the conversation has one); every audio tag gets
    its `audio_label` (`Audio k:`, k counting the audios of its user turn) and a following newline; an index REF is
    replaced by `audios[REF]`. Canonical messages are a fixed point. ValueError for misplaced system messages, audio
    outside user turns, indices out of range, or unbalanced audio tags. Control tokens written in content are kept:
    `render` encodes them as ordinary text. `family` (model/family.py) gives the default label and the numbering:
    Qwen-Audio's `Audio k:` per user turn, Qwen2-Audio's `Audio k: ` over the whole conversation (its template).
    """
    audio_label = family.chat_audio_label if audio_label is None else audio_label
    conv = Conversation.from_dict(conversation)
    msgs = list(conv.messages)
    if any(m.role == "system" for m in msgs[1:]):
        raise ValueError(f"conversation {conv.key!r}: a system message may only come first")
    if msgs[0].role != "system" and system is not None:
        msgs.insert(0, Message("system", system))
    refs: list[str] = []
    out = []
    for m in msgs:
        if m.role != "user":
            if AUDIO_START in m.content or AUDIO_END in m.content:
                raise ValueError(
                    f"conversation {conv.key!r}: only user messages may hold <audio> (found in a {m.role} message)"
                )
            out.append(m)
            continue
        # Qwen-Audio: numbering restarts in every user turn, as each from_list_format call does; Qwen2-Audio's
        # template counts the whole conversation.
        first = len(refs) if family.audio_numbering == "turn" else 0

        def label(match: re.Match[str], first: int = first) -> str:
            ref = match.group(1)
            if ref.isdigit() and conv.audios:
                i = int(ref)
                if i >= len(conv.audios):
                    raise ValueError(
                        f"conversation {conv.key!r}: <audio>{i}</audio> but only {len(conv.audios)} audios are listed"
                    )
                ref = conv.audios[i]
            refs.append(ref)
            return audio_label.format(n=len(refs) - first) + AUDIO_START + ref + AUDIO_END + "\n"

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
    audio_label: str | None = None,
    family: ModelFamily = QWEN_AUDIO,
) -> str:
    """The ChatML text of a conversation (audio spans unexpanded), as the release writes it (its `raw_text`). For
    reading only: `render`'s ids encode content text as text, which `encode` of this string would not."""
    msgs, _ = canonicalize(conversation, system, audio_label, family)
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
    audio_label: str | None = None,
) -> tuple[list[int], list[int]]:
    """(input_ids, loss_mask) of a conversation; `audio_positions[k]` = N of the k-th audio span
    (`audio.audio_positions(samples)`), in `audio_refs` order. Mask 1 = trained (see the module docstring).
    `tokenizer` is an `AudioTokenizer`: content is encoded with `allowed_special="audio"`; its model family fixes
    the audio tokens of a span and the `Audio k:` labels (Qwen2-Audio-Instruct's template: see model/family.py)."""
    msgs, refs = canonicalize(conversation, system, audio_label, getattr(tokenizer, "family", QWEN_AUDIO))
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
        positions = list(audio_positions[k : k + n_audio])
        body = tokenizer.encode_with_audio(m.content, positions, CONTENT_SPECIAL) if m.content else []
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
    out: list[tuple[int, str]] = []  # (mask value, text) per run of equal mask and pad-ness
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
        out.append((mask[i], text))
        i = j
    # merge neighbouring pieces of the same mask so a trained turn is one [[...]] even around pad runs
    merged: list[tuple[int, str]] = []
    for m, text in out:
        if merged and merged[-1][0] == m:
            merged[-1] = (m, merged[-1][1] + text)
        else:
            merged.append((m, text))
    return "".join(f"[[{t}]]" if m else t for m, t in merged)


def labels_from_mask(ids: Sequence[int], mask: Sequence[int]) -> list[int]:
    """Training labels: the id where the mask is 1, IGNORE_INDEX (-100) elsewhere."""
    return [int(i) if m else IGNORE_INDEX for i, m in zip(ids, mask)]
