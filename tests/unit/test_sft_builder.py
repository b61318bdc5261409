"""The SFT conversation builder on a tiny labelled shard set written here: kinds, answers true to the labels,
determinism, and that every conversation renders and loads as chat training examples (JSON lines and shards)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from data_recipes import sft_builder as S
from qwenaudio_train import audio as A
from qwenaudio_train import chat as C
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.data.shards import write_shards
from qwenaudio_train.data.stream import expand_shards, iter_split
from qwenaudio_train.tags import time_token
from qwenaudio_train.tokenizer import train_bpe_tokenizer

SENTENCES = ["the cat sees the dog", "a bird sings again", "the old man walks home", "my friend reads a book"]
SOUNDS = ["siren", "beep", "dog bark"]


def _flac(seconds: float, freq: float) -> bytes:
    t = np.arange(int(seconds * A.SAMPLE_RATE)) / A.SAMPLE_RATE
    return A.encode_flac((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32))


def _words(text: str) -> list[Word]:
    return [Word(w, round(0.1 + 0.2 * i, 2), round(0.28 + 0.2 * i, 2)) for i, w in enumerate(text.split())]


def _samples() -> dict[str, list[tuple[str, bytes, SampleMeta]]]:
    sets: dict[str, list[tuple[str, bytes, SampleMeta]]] = {
        "asr": [],
        "srwt": [],
        "sec": [],
        "lid": [],
        "mna": [],
        "aqa": [],
    }
    for i, s in enumerate(SENTENCES):
        sets["asr"].append(
            (
                f"asr-{i}",
                _flac(1.2, 200 + 10 * i),
                SampleMeta("asr", "en", s, 1.2, "test/speech", audio_language="en", words=_words(s)),
            )
        )
        sets["srwt"].append(
            (
                f"srwt-{i}",
                _flac(1.2, 300 + 10 * i),
                SampleMeta("srwt", "en", s, 1.2, "test/speech", audio_language="en", words=_words(s)),
            )
        )
    for i in range(6):
        label = SOUNDS[i % 3]
        sets["sec"].append((f"sec-{i}", _flac(0.5, 500 + 50 * i), SampleMeta("sec", "en", label, 0.5, "test/sound")))
    for i, (code, name) in enumerate([("en", "english"), ("fr", "french"), ("de", "german")]):
        sets["lid"].append(
            (
                f"lid-{i}",
                _flac(0.6, 700 + i),
                SampleMeta("lid", "en", name, 0.6, "test/speech", audio_language=code, meta={"language": code}),
            )
        )
    sets["mna"].append(
        (
            "mna-0",
            _flac(0.4, 440),
            SampleMeta(
                "mna",
                "en",
                "keyboard",
                0.4,
                "test/notes",
                meta={"pitch": 69, "velocity": 100, "instrument": "keyboard", "sonic": ["bright"]},
            ),
        )
    )
    sets["aqa"].append(
        (
            "aqa-0",
            _flac(0.5, 900),
            SampleMeta("aqa", "en", "yes", 0.5, "test/sound", meta={"question": "is there a beep?"}),
        )
    )
    return sets


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    for task, samples in _samples().items():
        write_shards(samples, root / task)
    return root


@pytest.fixture(scope="module")
def built(shard_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    out = tmp_path_factory.mktemp("sft")
    argv = [
        "--shards",
        str(shard_root),
        "--out",
        str(out / "train.jsonl"),
        "--seed",
        "0",
        "--out-shards",
        str(out / "shards"),
        "--shard-samples",
        "7",
        "--text-weight",
        "0.3",
        "--compare-prob",
        "1.0",
        "--followup-prob",
        "1.0",
        "--grounding-prob",
        "1.0",
    ]
    assert S.main(argv) == 0
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    return out / "train.jsonl", out / "shards", manifest


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kinds_tasks_and_manifest(built: tuple[Path, Path, dict]) -> None:
    jsonl, shards, manifest = built
    recs = _records(jsonl)
    kinds = {k: sum(r["kind"] == k for r in recs) for k in S.KINDS}
    assert all(kinds[k] > 0 for k in S.KINDS), kinds
    assert manifest["conversations"] == len(recs) and manifest["kinds"] == kinds
    assert sum(s["samples"] for s in manifest["shards"]) == len(recs) and len(manifest["shards"]) > 1
    assert len({r["key"] for r in recs}) == len(recs)
    # srwt always becomes grounding; every other labelled clip gets a task conversation.
    assert {r["task"] for r in recs if r["kind"] == "task"} == {"asr", "sec", "lid", "mna", "aqa"}
    assert all(r["kind"] == "grounding" for r in recs if r["task"] == "srwt")
    # Question variety: the asr clips are not all asked the same way.
    asr_q = {r["messages"][0]["content"].split("\n", 1)[1] for r in recs if r["kind"] == "task" and r["task"] == "asr"}
    assert len(asr_q) >= 2
    text = [r for r in recs if r["kind"] == "text"]
    assert all(not r["audios"] and "<audio>" not in json.dumps(r["messages"]) for r in text)


def test_answers_follow_the_labels(built: tuple[Path, Path, dict]) -> None:
    recs = _records(built[0])
    meta = {key: m for samples in _samples().values() for key, _, m in samples}
    clip_of = lambda path: Path(path).stem  # noqa: E731  audio copies are named by sample key

    for r in recs:
        if r["kind"] == "grounding":
            m = meta[clip_of(r["audios"][0])]
            ans = r["messages"][3]["content"]
            got = re.fullmatch(
                r'The word "(.+)" starts at (<\|[\d.]+\|>) seconds and ends at (<\|[\d.]+\|>) seconds\.', ans
            )
            assert got, ans
            phrase = got.group(1).split()
            words = [w.word for w in m.words]
            i = next(j for j in range(len(words)) if words[j : j + len(phrase)] == phrase)
            assert got.group(2) == time_token(m.words[i].start)
            assert got.group(3) == time_token(m.words[i + len(phrase) - 1].end)
            assert f'"{got.group(1)}"' in r["messages"][2]["content"]
            assert m.target in r["messages"][1]["content"]
        elif r["kind"] == "compare":
            labels = [meta[clip_of(p)].target for p in r["audios"]]
            assert len(r["audios"]) == 2 and labels[0] != labels[1]
            user, ans = r["messages"][0]["content"], r["messages"][1]["content"]
            assert user.startswith("Audio 1:<audio>0</audio>\nAudio 2:<audio>1</audio>\n")  # from_list_format
            if "differ" in user:
                d = S.COMPARE_DESC[r["task"]]
                assert ans == f"The first recording {d(labels[0])}, and the second recording {d(labels[1])}."
            else:
                k = 0 if ans in ("Audio 1.",) or ans.startswith("The first") else 1
                desc = S.COMPARE_DESC[r["task"]](labels[k])
                assert desc in user
        elif r["kind"] == "task":
            m = meta[clip_of(r["audios"][0])]
            first = r["messages"][1]["content"]
            if r["task"] == "asr":
                assert m.target in first
            elif r["task"] == "sec":
                assert m.target in first or m.target.capitalize() in first
            elif r["task"] == "lid":
                assert m.target.capitalize() in first
            elif r["task"] == "mna":
                assert "a keyboard" in first.lower() and "MIDI pitch 69" in first
                assert "A4" in first and "bright" in first
            elif r["task"] == "aqa":
                assert r["messages"][0]["content"].endswith("is there a beep?") and first == "yes"
            if len(r["messages"]) == 4 and r["task"] == "asr":
                follow = r["messages"][3]["content"]
                words = m.target.split()
                assert f'"{words[0]}"' in follow or f'"{words[-1]}"' in follow or f"{len(words)} words" in follow, (
                    follow
                )


def test_deterministic_for_a_seed(shard_root: Path, tmp_path: Path, built: tuple[Path, Path, dict]) -> None:
    cfg = dict(text_weight=0.3, compare_prob=1.0, followup_prob=1.0, grounding_prob=1.0)
    S.build([shard_root], tmp_path / "a.jsonl", S.BuildConfig(seed=0, **cfg))
    assert (tmp_path / "a.jsonl").read_text().replace("a_audio", "train_audio") == built[0].read_text()
    S.build([shard_root], tmp_path / "b.jsonl", S.BuildConfig(seed=1, **cfg))
    assert (tmp_path / "b.jsonl").read_text().replace("b_audio", "train_audio") != built[0].read_text()


def test_every_conversation_trains_from_jsonl_and_shards(built: tuple[Path, Path, dict], tmp_path: Path) -> None:
    jsonl, shards, _ = built
    texts = [m["content"] for r in _records(jsonl) for m in r["messages"]]
    tok = train_bpe_tokenizer(texts, tmp_path / "tok", vocab_size=400)
    proc = C.ChatProcessor(tok, root=jsonl.parent)
    by_key = {}
    for conv in C.load_conversations(jsonl):
        ex = proc.process(conv)
        assert len(ex.mels) == len(conv.audios) if conv.task != "text" else not ex.mels
        n_trained = sum(lab != -100 for lab in ex.labels)
        assert n_trained >= sum(m.role == "assistant" for m in conv.messages) * 2
        by_key[conv.key] = ex
    raw_samples = list(iter_split(expand_shards(str(shards))))
    assert len(raw_samples) == len(by_key)
    for raw in raw_samples:
        ex = proc(raw)
        assert ex.input_ids == by_key[raw["__key__"]].input_ids
        assert ex.labels == by_key[raw["__key__"]].labels
        assert C.parse_chat_meta(raw).duration == pytest.approx(by_key[raw["__key__"]].duration, abs=1e-3)


def test_missing_shards_are_reported(tmp_path: Path) -> None:
    assert S.main(["--shards", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2


# sha256 of the chat shards of the `built` fixture. Pinned when chat shards moved onto the shared shard writer
# (data.chat_shards.ChatShardWriter, bytes unchanged), re-pinned when user turns took the release's inference
# label (`Audio 1:<audio>`, no space; issue 14): the only change in the conversations.
CHAT_SHARD_SHA256 = {
    "chat-000000.tar": "1b432012c21f23e05c6d8d15b76c00c2eb4e45877574a7eea9148c0b44823d5d",
    "chat-000001.tar": "ab33bb3be9bff2b34beb45a2668772167e9eb572be15f8cddbe8722d9db5034d",
    "chat-000002.tar": "af51e1091c79d0bc8290d7d8b99075df6bdae7d1cec55518ea800c8a811d1ade",
    "chat-000003.tar": "4a1ff53cc49eb3f6205b6b7265508d411e5710e8730033b8dde7fc8e41f7ad73",
    "chat-000004.tar": "251d93c1dd045eac6bb8a03483fde7d1e6a495d83939e258229eb9c9e09ad1d8",
    "chat-000005.tar": "d1f2a873a89b42515d3671df525acaa858ef350fc3c881a5d35023c6601a2d18",
    "chat-000006.tar": "c35acc809d16abfe98a8fbe847ee429eb691368a507f28faa085dd7a76310093",
    "manifest.json": "f0c270e909dfd0cedc6ff5c1f1da27cca8476628e408d43b5767517103a80193",
}


def test_chat_shards_are_byte_reproducible(built: tuple[Path, Path, dict]) -> None:
    import hashlib

    shards = built[1]
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(shards.iterdir())}
    assert got == CHAT_SHARD_SHA256
