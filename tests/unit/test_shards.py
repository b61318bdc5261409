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
from qwenaudio_train.data.shards import check_shards, format_report, iter_shard, read_manifest, write_shards


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
