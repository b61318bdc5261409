"""Shard writing, reading and checking (qwenaudio_train/data/shards.py)."""

from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
import pytest

from qwenaudio_train.audio import SAMPLE_RATE, encode_flac
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.data.shards import (
    ShardError,
    check_shards,
    expand_shards,
    format_report,
    iter_shard,
    read_manifest,
    read_shard,
    write_shards,
)
from qwenaudio_train.data.stream import ShardCursor, iter_split


def _flac(seconds: float, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return encode_flac((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32))


def _samples() -> list[tuple[str, bytes, SampleMeta]]:
    specs = [  # key, task, audio language, seconds
        ("asr-en-000000", "asr", "en", 1.0),
        ("asr-de-000001", "asr", "de", 0.5),
        ("lid-zh-000000", "lid", "zh", 0.75),
        ("sec-000000", "sec", None, 1.25),
        ("mna-000000", "mna", None, 0.5),
    ]
    out = []
    for i, (key, task, lang, sec) in enumerate(specs):
        words = [Word("hello", 0.1, 0.3), Word("world", 0.3, 0.45)] if task == "asr" else None
        meta = SampleMeta(
            task=task,
            text_language="en" if lang is None else lang,
            target=f"target {i}",
            duration=sec,
            source="test",
            audio_language=lang,
            words=words,
            meta={"pitch": 60} if task == "mna" else {},
        )
        out.append((key, _flac(sec, 200.0 + 100 * i), meta))
    return out


def test_round_trip_keys_bytes_and_metadata(tmp_path):
    samples = _samples()
    manifest = write_shards(samples, tmp_path, max_count=2)
    tars = sorted(p for p in os.listdir(tmp_path) if p.endswith(".tar"))
    assert tars == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert [s["name"] for s in manifest["shards"]] == tars

    read = [s for t in tars for s in iter_shard(tmp_path / t)]
    assert [s["__key__"] for s in read] == [k for k, _, _ in samples]
    for (key, audio, meta), raw in zip(samples, read):
        assert set(raw) == {"__key__", "__url__", "flac", "json"}
        assert raw["flac"] == audio
        assert SampleMeta.from_json(raw["json"], key) == meta


def test_manifest_totals(tmp_path):
    samples = _samples()
    manifest = write_shards(samples, tmp_path, prefix="part", max_count=3)
    assert read_manifest(tmp_path) == manifest
    assert manifest["totals"]["samples"] == 5
    assert manifest["totals"]["hours"] == pytest.approx(4.0 / 3600, abs=1e-6)
    assert manifest["tasks"]["asr"] == {"samples": 2, "hours": pytest.approx(1.5 / 3600, abs=1e-6)}
    assert manifest["tasks"]["sec"]["samples"] == 1
    assert manifest["languages"]["en"]["samples"] == 1
    assert manifest["languages"]["none"] == {"samples": 2, "hours": pytest.approx(1.75 / 3600, abs=1e-6)}
    assert manifest["task_languages"]["asr"]["de"]["samples"] == 1
    assert [(s["name"], s["samples"]) for s in manifest["shards"]] == [("part-000000.tar", 3), ("part-000001.tar", 2)]
    assert manifest["shards"][0]["seconds"] == pytest.approx(2.25)
    assert manifest["shards"][0]["tasks"] == {"asr": 2, "lid": 1}
    assert sum(s["samples"] for s in manifest["shards"]) == 5


def test_rewrite_removes_stale_shards_and_is_reproducible(tmp_path):
    write_shards(_samples(), tmp_path / "a", max_count=1)
    write_shards(_samples()[:2], tmp_path / "a", max_count=1)
    assert sorted(p for p in os.listdir(tmp_path / "a") if p.endswith(".tar")) == [
        "shard-000000.tar",
        "shard-000001.tar",
    ]
    write_shards(_samples()[:2], tmp_path / "b", max_count=1)
    for name in ("shard-000000.tar", "shard-000001.tar", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("bad_key, message", [("asr.en.1", "dot"), ("asr-en-000000", "duplicate"), ("", "non-empty")])
def test_bad_keys_are_refused(tmp_path, bad_key, message):
    samples = _samples()
    samples.append((bad_key, samples[0][1], samples[0][2]))
    with pytest.raises(ValueError, match=message):
        write_shards(samples, tmp_path)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def test_check_shards_reports_bad_samples_by_shard_and_key(tmp_path):
    good = write_shards(_samples()[:2], tmp_path / "good")
    key, audio, meta = _samples()[0]
    meta_json = meta.to_json()
    bad_tar = tmp_path / "bad.tar"
    with tarfile.open(bad_tar, "w") as tf:
        _add(tf, "ok-1.flac", audio)
        _add(tf, "ok-1.json", meta_json)
        _add(tf, "truncated-1.flac", audio[: len(audio) // 2])
        _add(tf, "truncated-1.json", meta_json)
        _add(tf, "badjson-1.flac", audio)
        _add(tf, "badjson-1.json", b'{"task": "asr", ')
        d = json.loads(meta_json)
        del d["task"]
        _add(tf, "nokey-1.flac", audio)
        _add(tf, "nokey-1.json", json.dumps(d).encode())
        _add(tf, "noaudio-1.json", meta_json)
        d = json.loads(meta_json)
        d["duration"] = 3.0
        _add(tf, "wrongduration-1.flac", audio)
        _add(tf, "wrongduration-1.json", json.dumps(d).encode())
        _add(tf, "asr-en-000000.flac", audio)  # also in the good shard
        _add(tf, "asr-en-000000.json", meta_json)

    missing = tmp_path / "missing.tar"
    report = check_shards([tmp_path / "good", bad_tar, missing])
    assert not report["ok"]
    assert report["shards"] == len(good["shards"]) + 2
    assert report["samples"] == 2 + 7
    assert report["good"] == 3
    assert report["tasks"] == {"asr": 3}
    json.dumps(report)  # serialisable as is (the CLI prints it)
    by_key = {p["key"]: p for p in report["problems"]}
    assert set(by_key) == {"truncated-1", "badjson-1", "nokey-1", "noaudio-1", "wrongduration-1", "asr-en-000000", None}
    for k in ("truncated-1", "badjson-1", "nokey-1", "noaudio-1", "wrongduration-1", "asr-en-000000"):
        assert by_key[k]["shard"] == str(bad_tar)
        assert k in by_key[k]["message"]
    assert "truncated" in by_key["truncated-1"]["message"] or "decode" in by_key["truncated-1"]["message"]
    assert "JSON" in by_key["badjson-1"]["message"]
    assert "task" in by_key["nokey-1"]["message"]
    assert "no audio" in by_key["noaudio-1"]["message"]
    assert "duration" in by_key["wrongduration-1"]["message"]
    assert "duplicate" in by_key["asr-en-000000"]["message"]
    assert str(missing) in by_key[None]["message"]
    text = format_report(report)
    assert "missing.tar" in text and "badjson-1" in text


def test_check_shards_survives_a_truncated_tar(tmp_path):
    write_shards(_samples(), tmp_path, max_count=10)
    path = tmp_path / "shard-000000.tar"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])
    report = check_shards(tmp_path)
    assert not report["ok"]
    assert any(p["key"] is None and str(path) in p["message"] for p in report["problems"])


def test_iter_shard_names_a_missing_path(tmp_path):
    missing = tmp_path / "nope" / "shard-000000.tar"
    with pytest.raises(FileNotFoundError, match="nope"):
        list(iter_shard(missing))


def test_clean_set_checks_ok(tmp_path):
    write_shards(_samples(), tmp_path, max_count=2)
    report = check_shards(tmp_path)
    assert report["ok"], format_report(report)
    assert report["good"] == 5 and report["hours"] == pytest.approx(4.0 / 3600, abs=1e-6)


def test_expand_shards_finds_split_tars_in_subfolders_in_sorted_order(tmp_path):
    # A recipe writes test/<task>/shard-*.tar, the demo corpus test/shard-*.tar: both are "the test split".
    samples = _samples()
    write_shards(samples[:2], tmp_path / "test" / "asr", max_count=1)
    write_shards(samples[2:3], tmp_path / "test" / "lid")
    write_shards(samples[3:], tmp_path / "test", max_count=1)
    (tmp_path / "test" / ".hidden").mkdir()
    (tmp_path / "test" / ".hidden" / "x.tar").write_bytes(b"")  # hidden folders are not searched
    found = expand_shards(str(tmp_path / "test"))
    rel = [os.path.relpath(p, tmp_path / "test") for p in found]
    assert rel == [
        "asr/shard-000000.tar",
        "asr/shard-000001.tar",
        "lid/shard-000000.tar",
        "shard-000000.tar",
        "shard-000001.tar",
    ]
    assert expand_shards(str(tmp_path / "test" / "**" / "*.tar")) == found
    keys = [s["__key__"] for s in iter_split(found)]
    assert sorted(keys) == sorted(k for k, _, _ in samples)
    report = check_shards(tmp_path / "test")  # `qwenaudio-data check` on a split directory reads it all
    assert report["ok"] and report["shards"] == 5 and report["good"] == 5
    # What `qwenaudio-eval split=test` does with a recipe's output: the split's directory -> every task's tars.
    from qwenaudio_train.evaluate import resolve_split

    assert expand_shards(resolve_split(str(tmp_path / "test"), None, tmp_path)) == found


def test_one_reader_behind_the_cursor_the_split_pass_and_check(tmp_path):
    write_shards(_samples(), tmp_path, max_count=10)
    tar = str(tmp_path / "shard-000000.tar")
    plain = list(iter_shard(tar))
    assert [(i, s["__key__"]) for i, s in read_shard(tar)] == list(enumerate(s["__key__"] for s in plain))
    assert [s for _, s in read_shard(f"pipe:cat {tar}")] == [dict(s, __url__=f"pipe:cat {tar}") for s in plain]
    # From an offset, one slot's share: indices count every sample; members of skipped ones are not read.
    assert [i for i, _ in read_shard(tar, offset=1, keep_mod=(2, 1))] == [1, 3]
    cursor = ShardCursor(tar, offset=2, keep_mod=(2, 0))
    got = [(s["__index__"], s["__key__"]) for s in cursor._iter]
    assert got == [(2, plain[2]["__key__"]), (4, plain[4]["__key__"])] and cursor.position == 5
    split = list(iter_split([tar, tar], slot=1, n_slots=2))
    assert [s["__key__"] for s in split] == [plain[i]["__key__"] for i in (1, 3, 0, 2, 4)]


def test_a_damaged_shard_is_named_with_the_fix_by_every_reader(tmp_path):
    write_shards(_samples(), tmp_path, max_count=10)
    path = tmp_path / "shard-000000.tar"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])
    before: list[str] = []
    with pytest.raises(
        ShardError, match=r"shard-000000\.tar.* truncated or damaged at sample \d .*qwenaudio-data check"
    ) as e:
        for sample in iter_shard(path):
            before.append(sample["__key__"])
    assert 0 < len(before) < 5  # the samples before the damage come out first
    cursor = ShardCursor(str(path))
    assert [s["__key__"] for s in cursor._iter] == before and cursor.position == len(before)
    assert cursor.errors == [str(e.value)]  # the streaming loader keeps the same message
    with pytest.raises(ShardError, match="truncated"):
        list(iter_split([str(path)]))
    with pytest.raises(ShardError, match="shard not found"):
        list(iter_split([str(tmp_path / "missing.tar")]))
