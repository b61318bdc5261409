"""Qwen-Audio-Chat conversations: ChatML rendering with a loss mask, SFT examples, and chat inference.

Three rooms, imported here so that `from qwenaudio_train.chat import <name>` reaches every public name:

  render.py      conversation schema + canonical form -> (ids, loss mask); `visualize`   (no audio, no model)
  processing.py  conversation + audio -> ChatExample -> padded batch (`ChatProcessor`, `collate_chat`)
  inference.py   `chat` / `chat_batch`: greedy decoding with the KV cache, streaming; `load_mel`

Must not: train, batch by duration or read shard streams (the loader does), or know about task tags.
"""

from qwenaudio_train.chat.inference import build_query, chat, chat_batch, load_mel
from qwenaudio_train.chat.processing import (
    CHAT_MEMBER,
    ChatExample,
    ChatMeta,
    ChatProcessor,
    collate_chat,
    parse_chat_meta,
)
from qwenaudio_train.chat.render import (
    AUDIO_LABEL,
    DEFAULT_SYSTEM,
    ROLES,
    SFT_SAMPLE_AUDIO_LABEL,
    Conversation,
    Message,
    audio_refs,
    canonicalize,
    labels_from_mask,
    load_conversations,
    render,
    render_text,
    visualize,
)

__all__ = [
    "AUDIO_LABEL",
    "CHAT_MEMBER",
    "DEFAULT_SYSTEM",
    "ROLES",
    "SFT_SAMPLE_AUDIO_LABEL",
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
