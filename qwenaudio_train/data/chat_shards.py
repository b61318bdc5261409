"""Chat shards: conversations with their audio embedded, and the converter from a user's own JSON lines.

A chat shard sample is ``<key>.json`` (the conversation in the schema of ``qwenaudio_train.chat``, its ``audios``
naming the members, ``Audio k:<audio>i</audio>`` with i an index into them) followed by ``<key>.audio0.flac``,
``<key>.audio1.flac`` ... (16-kHz mono FLAC), in ``<out>/chat-NNNNNN.tar`` plus a ``manifest.json``::

    {"format": "webdataset-chat", "version": 1,
     "shards": [{"name": "chat-000000.tar", "samples": n, "seconds": s}, ...], ...summary of the writer's caller}

``chat.ChatProcessor`` reads such a sample (``raw`` from the loader) and the loader streams the set like any shard
set (``data=<a chat data config>``, ``shards.read_shard``).

Owns: ``ChatShardWriter`` (on ``shards.ShardSetWriter``, the one shard writer; ``data_recipes/sft_builder.py``
writes its conversations with it) and ``jsonl_to_chat_shards`` (``qwenaudio-data chat-shards``: a JSON-lines
file of conversations, as ``chat.load_conversations`` reads it, + the audio files it names -> chat shards).
Must not: tokenise or render (``chat`` does), or invent conversation content (the SFT builder makes conversations
from labels; the converter copies the user's).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qwenaudio_train.data.shards import MANIFEST, ShardError, ShardSetWriter
from qwenaudio_train.tags import AUDIO_END, AUDIO_START

CHAT_PREFIX = "chat"
_AUDIO_TAG = re.compile(re.escape(AUDIO_START) + r"(.*?)" + re.escape(AUDIO_END))  # one audio reference


class ChatShardWriter:
    """Chat shard samples (``<key>.json`` + ``<key>.audioK.flac``) into ``<out>/chat-NNNNNN.tar``, byte-reproducible.

    Tar headers (owner "", mode 0644, int mtime 0: no PAX records) and member order (conversation first) are those
    of the chat shards written before the shard layer was unified, so existing sets keep their bytes. A new tar
    starts after ``max_count`` conversations. ``close(summary)`` writes the manifest.
    """

    def __init__(self, out_dir: str | os.PathLike[str], max_count: int = 1000):
        self.out = Path(out_dir)
        self.writer = ShardSetWriter(
            out_dir, CHAT_PREFIX, max_count, float("inf"), user="", group="", mode=0o644, mtime=0
        )
        self.shards: list[dict[str, Any]] = []

    def write(self, key: str, record: Mapping[str, Any], audios: Sequence[bytes], seconds: float | None = None) -> None:
        """One conversation: ``record`` is its schema dict whose ``<audio>k</audio>`` refer to ``audios[k]`` (FLAC
        bytes); its ``audios`` field is set to the member names. ``seconds`` (default: ``record["duration"]``)
        adds to the shard's total in the manifest."""
        members = [f"audio{k}.flac" for k in range(len(audios))]
        doc = json.dumps({**record, "audios": members}, ensure_ascii=False, sort_keys=True).encode()
        name = self.writer.write(key, [("json", doc), *zip(members, audios)])
        if not self.shards or self.shards[-1]["name"] != name:
            self.shards.append({"name": name, "samples": 0, "seconds": 0.0})
        shard = self.shards[-1]
        shard["samples"] += 1
        shard["seconds"] = round(shard["seconds"] + (record.get("duration", 0.0) if seconds is None else seconds), 6)

    def close(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """Finish the last tar and write ``manifest.json`` (the shard list + ``summary``); returns the manifest."""
        self.writer.close()
        manifest = {"format": "webdataset-chat", "version": 1, "shards": self.shards, **summary}
        (self.out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return manifest

    def discard(self) -> None:
        """Delete the tars written so far (a failed conversion leaves no partial set that looks complete)."""
        self.writer.discard()
        self.shards = []


# ---------------------------------------------------------------------------------------------------------------
# A user's JSON lines -> chat shards
# ---------------------------------------------------------------------------------------------------------------
def _shard_key(key: str) -> str:
    # Same rule as data_recipes.common.make_key: a webdataset key holds no dots or slashes.
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)


def _resolve(ref: str, root: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else root / path


def _load_clip(ref: str, path: Path, where: str, root: Path, max_seconds: float) -> tuple[bytes, float]:
    """(FLAC bytes, seconds) of one audio file, embedded as the SFT builder embeds clips: 16-kHz mono FLAC."""
    import soundfile as sf

    from qwenaudio_train import audio as A

    if not path.is_file():
        raise ShardError(
            f"{where}: audio file {ref!r} not found (looked for {path}); relative paths are resolved against the "
            f"audio root {root} (--audio-root; default: the JSONL file's folder)"
        )
    try:
        wav = A.load_audio(path, name=str(path))
    except A.AudioError as e:
        raise ShardError(f"{where}: audio {ref!r} cannot be used: {e}") from e
    seconds = len(wav) / A.SAMPLE_RATE
    if seconds > max_seconds:  # clips over 30 s train in 30-s windows (data.long_audio=window) up to this
        raise ShardError(
            f"{where}: audio {ref!r} lasts {seconds:.1f} s, over --max-audio-seconds {max_seconds:g} (training's "
            "data.max_audio_seconds): split it into clips or raise both"
        )
    if len(wav) < A.HOP_LENGTH * 3:
        raise ShardError(f"{where}: audio {ref!r} is too short ({len(wav)} samples at {A.SAMPLE_RATE} Hz)")
    info = sf.info(str(path))
    if info.format == "FLAC" and info.samplerate == A.SAMPLE_RATE and info.channels == 1:
        return path.read_bytes(), seconds  # already what shards hold: copied as is, no re-quantisation
    return A.encode_flac(wav), seconds


def _convert_line(
    line: str, where: str, default_key: str, root: Path, files: set[Path], max_seconds: float
) -> tuple[str, dict[str, Any], list[bytes], float]:
    """(shard key, record, member audio, seconds) of one JSON line; ShardError naming ``where`` if it is bad."""
    from qwenaudio_train.chat.render import Conversation, canonicalize
    from qwenaudio_train.data.schema import SampleError

    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise ShardError(f"{where}: not valid JSON ({e})") from e
    try:
        conv = Conversation.from_dict(d, key=default_key)
        # Validates the conversation (roles, audio only in user turns, indices in range) and gives each user
        # turn its `Audio k:<audio>REF</audio>` form (chat.render's) with REF a path, in rendering order.
        messages, refs = canonicalize(conv, system=None)
    except (SampleError, ValueError) as e:
        raise ShardError(f"{where}: {e}") from e
    if not any(m.role == "assistant" for m in messages):
        raise ShardError(f"{where}: no assistant turn; a training conversation needs at least one answer")
    paths = [_resolve(ref, root) for ref in refs]
    clips: dict[Path, tuple[bytes, float]] = {}  # one member per distinct file, in order of first use
    for ref, path in zip(refs, paths):
        if path not in clips:
            clips[path] = _load_clip(ref, path, where, root, max_seconds)
    files.update(clips)
    members = {path: k for k, path in enumerate(clips)}
    spans = iter(paths)  # canonical user turns hold the references in rendering order: one tag per path
    out_messages = []
    for m in messages:
        content = m.content
        if m.role == "user":
            content = _AUDIO_TAG.sub(lambda _: f"<audio>{members[next(spans)]}</audio>", content)
        out_messages.append({"role": m.role, "content": content})
    # Seconds count every audio span (a clip used twice counts twice), as ChatProcessor measures a conversation.
    seconds = sum(clips[p][1] for p in paths)
    key = _shard_key(conv.key)
    if not key:
        raise ShardError(f"{where}: empty conversation key; drop `key` to number conversations by line")
    record = {
        **conv.meta,
        "key": key,
        "task": conv.task,
        "source": conv.source,
        "duration": round(seconds, 6),
        "messages": out_messages,
    }
    return key, record, [flac for flac, _ in clips.values()], seconds


def jsonl_to_chat_shards(
    jsonl: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    audio_root: str | os.PathLike[str] | None = None,
    max_count: int = 1000,
    max_audio_seconds: float = 600.0,
) -> dict[str, Any]:
    """Convert a JSON-lines file of conversations (one a line, as ``chat.load_conversations`` reads it: messages
    with ``{"type": "audio", "audio": PATH}`` parts or ``Audio 1: <audio>PATH</audio>`` text, optional
    ``audios`` list indexed by ``<audio>k</audio>``) into chat shards under ``out_dir``; returns the manifest.

    Relative audio paths are resolved against ``audio_root`` (default: the JSONL file's folder). Every audio file
    is embedded once per conversation as ``audioK.flac`` (16-kHz mono FLAC; a file already in that form is copied
    byte for byte). Keys come from the conversation's ``key`` (else ``<file stem>-<line>``) with anything but
    ``[A-Za-z0-9_-]`` replaced by ``_``. Bad input (invalid JSON or schema, a conversation without an answer, a
    missing, undecodable, too short or too long (``max_audio_seconds``, as training's) audio file, a duplicate key) raises ShardError naming the line
    and the file; nothing is left in ``out_dir`` then.
    """
    src = Path(jsonl)
    if not src.is_file():
        raise ShardError(f"conversations file {src} does not exist; give a JSON-lines file with --jsonl")
    root = Path(audio_root) if audio_root is not None else src.parent
    if not root.is_dir():
        raise ShardError(f"audio root {root} is not a directory; fix --audio-root")
    writer = ChatShardWriter(out_dir, max_count)
    files: set[Path] = set()
    first_line: dict[str, int] = {}
    tasks: dict[str, int] = {}
    try:
        with open(src, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                where = f"{src}:{lineno}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ShardError(f"{where}: not UTF-8 text ({e}); re-save the file as UTF-8") from e
                if not line.strip():
                    continue
                key, record, audios, seconds = _convert_line(
                    line, where, f"{src.stem}-{lineno:06d}", root, files, max_audio_seconds
                )
                if key in first_line:
                    raise ShardError(
                        f"{where}: conversation key {key!r} is also the key of line {first_line[key]}; keys must be "
                        "unique (drop `key` to number conversations by line)"
                    )
                first_line[key] = lineno
                writer.write(key, record, audios, seconds)
                tasks[record["task"]] = tasks.get(record["task"], 0) + 1
        if not first_line:
            raise ShardError(f"{src}: no conversations (the file is empty)")
    except BaseException:
        writer.discard()
        raise
    summary = {
        "conversations": len(first_line),
        "tasks": dict(sorted(tasks.items())),
        "audio_files": len(files),
        "jsonl": src.name,
    }
    return writer.close(summary)
