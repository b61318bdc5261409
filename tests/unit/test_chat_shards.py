"""`qwenaudio-data chat-shards`: a user's JSON lines + audio files (made here) -> chat shards that the SFT data path
(ChatProcessor, the batch stream) reads exactly as it reads the JSON lines; bad input names the line and the file."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from qwenaudio_train import audio as A
from qwenaudio_train import chat as C
from qwenaudio_train.cli.data import main
from qwenaudio_train.data.chat_shards import jsonl_to_chat_shards
from qwenaudio_train.data.loader import BatchingConfig, BatchStream
from qwenaudio_train.data.shards import ShardError, expand_shards, iter_shard
from qwenaudio_train.data.stream import SourceSpec, iter_split
from qwenaudio_train.tokenizer import train_bpe_tokenizer


def _tone(seconds: float, freq: float, sr: int = A.SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _user(*parts: dict) -> dict:
    return {"role": "user", "content": list(parts)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conversations.jsonl beside clips/ (a 16-kHz wav, a 22.05-kHz stereo wav, a 16-kHz FLAC) and an absolute
    path outside the folder; every way the chat schema refers to audio."""
    d = tmp_path_factory.mktemp("user_data")
    (d / "clips").mkdir()
    sf.write(d / "clips" / "dog.wav", _tone(1.0, 300), A.SAMPLE_RATE, subtype="PCM_16")
    sf.write(d / "clips" / "bird.wav", _tone(0.8, 900, sr=22050, channels=2), 22050, subtype="PCM_16")
    sf.write(d / "clips" / "note.flac", _tone(0.6, 440), A.SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "siren.wav"
    sf.write(elsewhere, _tone(1.2, 600), A.SAMPLE_RATE, subtype="PCM_16")
    lines = [
        {  # the release's list format with typed parts
            "messages": [
                _user({"type": "audio", "audio": "clips/dog.wav"}, {"type": "text", "text": "What is this?"}),
                {"role": "assistant", "content": "A dog barks."},
            ]
        },
        {  # text references, two clips (one absolute), two turns, own key and task
            "key": "pair.1",
            "task": "compare",
            "messages": [
                {
                    "role": "user",
                    "content": f"Audio 1: <audio>clips/bird.wav</audio>\nAudio 2: <audio>{elsewhere}</audio>\nSame?",
                },
                {"role": "assistant", "content": "No: a bird, then a siren."},
                {"role": "user", "content": "Which is longer?"},
                {"role": "assistant", "content": "The second."},
            ],
        },
        {  # an `audios` list indexed by <audio>k</audio>, the same clip twice, a system prompt
            "audios": ["clips/note.flac"],
            "messages": [
                {"role": "system", "content": "You are a music teacher."},
                {"role": "user", "content": "<audio>0</audio>\nName the note. Then again: <audio>0</audio>"},
                {"role": "assistant", "content": "A4, twice."},
            ],
        },
        None,  # a blank line is skipped
        {"messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hello!"}]},
    ]
    (d / "conversations.jsonl").write_text(
        "".join(("" if x is None else json.dumps(x)) + "\n" for x in lines), encoding="utf-8"
    )
    return d


@pytest.fixture(scope="module")
def shards(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chat_shards")
    argv = ["chat-shards", "--jsonl", str(corpus / "conversations.jsonl"), "--out", str(out), "--shard-samples", "3"]
    assert main(argv) == 0
    return out


def test_layout_keys_members_and_manifest(corpus: Path, shards: Path) -> None:
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["format"] == "webdataset-chat" and manifest["conversations"] == 4
    assert manifest["audio_files"] == 4 and manifest["tasks"] == {"chat": 3, "compare": 1}
    assert [(s["name"], s["samples"]) for s in manifest["shards"]] == [("chat-000000.tar", 3), ("chat-000001.tar", 1)]
    raws = [r for t in expand_shards(str(shards)) for r in iter_shard(t)]
    assert [r["__key__"] for r in raws] == [
        "conversations-000001",
        "pair_1",
        "conversations-000003",
        "conversations-000005",
    ]
    assert [sorted(k for k in r if not k.startswith("__")) for r in raws] == [
        ["audio0.flac", "json"],
        ["audio0.flac", "audio1.flac", "json"],
        ["audio0.flac", "json"],
        ["json"],
    ]
    pair = json.loads(raws[1]["json"])
    assert pair["key"] == "pair_1" and pair["task"] == "compare" and pair["audios"] == ["audio0.flac", "audio1.flac"]
    assert pair["messages"][0]["content"] == "Audio 1:<audio>0</audio>\nAudio 2:<audio>1</audio>\nSame?"
    note = json.loads(raws[2]["json"])
    assert note["messages"][0]["role"] == "system" and note["audios"] == ["audio0.flac"]
    assert note["messages"][1]["content"].count("<audio>0</audio>") == 2
    # Embedded as the SFT builder embeds clips: 16-kHz mono FLAC; a file already in that form is copied as is.
    assert raws[2]["audio0.flac"] == (corpus / "clips" / "note.flac").read_bytes()
    info = sf.info(io.BytesIO(raws[1]["audio0.flac"]))
    assert (info.format, info.samplerate, info.channels) == ("FLAC", A.SAMPLE_RATE, 1)
    assert note["duration"] == pytest.approx(1.2, abs=1e-3)  # the clip counts once per span, as ChatProcessor does


def test_shards_train_like_the_jsonl(corpus: Path, shards: Path, tmp_path: Path) -> None:
    jsonl = corpus / "conversations.jsonl"
    convs = list(C.load_conversations(jsonl))
    tok = train_bpe_tokenizer([m.content for c in convs for m in c.messages], tmp_path / "tok", vocab_size=300)
    from_jsonl = [C.ChatProcessor(tok, root=corpus).process(c) for c in convs]
    proc = C.ChatProcessor(tok)
    raws = list(iter_split(expand_shards(str(shards))))
    assert len(raws) == len(from_jsonl)
    for raw, ref in zip(raws, from_jsonl):
        ex = proc(raw)
        assert ex.input_ids == ref.input_ids and ex.labels == ref.labels
        assert len(ex.mels) == len(ref.mels)
        for a, b in zip(ex.mels, ref.mels):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-2)
        assert C.parse_chat_meta(raw).duration == pytest.approx(ex.duration, abs=1e-3)

    # The loader's SFT path: batches of chat shard samples.
    cfg = BatchingConfig(batch_size=2, chunk_batches=2)
    stream = BatchStream(
        [SourceSpec("mine", expand_shards(str(shards)), 1.0)],
        proc,
        tok.eod_id,
        cfg,
        seed=0,
        parse_fn=C.parse_chat_meta,
        collate_fn=C.collate_chat,
    )
    keys = {k for _ in range(4) for k in next(stream)["keys"]}
    assert keys == {r["__key__"] for r in raws}


def test_audio_root_resolves_relative_paths(corpus: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved.jsonl"
    moved.write_text((corpus / "conversations.jsonl").read_text(), encoding="utf-8")
    with pytest.raises(ShardError, match=r"moved\.jsonl:1: audio file 'clips/dog\.wav' not found"):
        jsonl_to_chat_shards(moved, tmp_path / "a")
    assert jsonl_to_chat_shards(moved, tmp_path / "b", audio_root=corpus)["conversations"] == 4


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '{"messages": [{"role": "user", "content": "<audio>clips/cat.wav</audio>"}, '
            '{"role": "assistant", "content": "x"}]}',
            r"conversations\.jsonl:2: audio file 'clips/cat\.wav' not found",
        ),
        ('{"messages": [', r"conversations\.jsonl:2: not valid JSON"),
        (
            '{"messages": [{"role": "user", "content": "<audio>clips/dog.wav</audio>"}]}',
            r"conversations\.jsonl:2: no assistant turn",
        ),
        ('{"messages": [{"role": "robot", "content": "hi"}]}', r"conversations\.jsonl:2: .*message 0 must be"),
        (
            '{"key": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}',
            r"conversations\.jsonl:2: conversation key 'a' is also the key of line 1",
        ),
    ],
)
def test_bad_input_names_the_line_and_the_file(corpus: Path, tmp_path: Path, capsys, line: str, message: str) -> None:
    good = (
        '{"key": "a", "messages": [{"role": "user", "content": "Audio 1: <audio>clips/dog.wav</audio>\\nHi"}, '
        '{"role": "assistant", "content": "Hello."}]}'
    )
    jsonl = tmp_path / "conversations.jsonl"
    jsonl.write_text(good + "\n" + line + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["chat-shards", "--jsonl", str(jsonl), "--out", str(out), "--audio-root", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qwenaudio-data chat-shards: ")
    assert re.search(message, err), err
    assert not list(out.glob("*.tar")) and not (out / "manifest.json").exists()  # no partial set left behind


def test_undecodable_and_too_long_audio_are_refused(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    sf.write(tmp_path / "long.wav", _tone(31.0, 200), A.SAMPLE_RATE, subtype="PCM_16")
    for name, message in (("broken.wav", "cannot be used"), ("long.wav", "lasts 31.0 s, over --max-audio-seconds 30")):
        jsonl = tmp_path / f"{name}.jsonl"
        conv = {"messages": [_user({"audio": name}, {"text": "?"}), {"role": "assistant", "content": "x"}]}
        jsonl.write_text(json.dumps(conv) + "\n", encoding="utf-8")
        with pytest.raises(ShardError, match=rf"{name}\.jsonl:1: audio '{name}' .*{message}"):
            jsonl_to_chat_shards(jsonl, tmp_path / "out", max_audio_seconds=30)
    # By default a clip over 30 s is kept (training windows it, data.long_audio=window).
    manifest = jsonl_to_chat_shards(tmp_path / "long.wav.jsonl", tmp_path / "kept")
    assert manifest["conversations"] == 1
    with pytest.raises(ShardError, match="does not exist"):
        jsonl_to_chat_shards(tmp_path / "none.jsonl", tmp_path / "out")
