"""Damaged data never hangs a run: a non-tar shard, a chat .jsonl given as shards, a tar cut mid-member."""

from __future__ import annotations

import gc
import json
import re
import tarfile
import traceback
from pathlib import Path

import pytest

from qwenaudio_train.data.loader import BatchingConfig, BatchStream, StatefulLoader
from qwenaudio_train.data.processing import SampleProcessor
from qwenaudio_train.data.stream import MixtureStream, ShardError, SourceSpec, expand_shards
from tests.unit.test_stream import _Tok, write_task_shards


def _batches(sources: list[SourceSpec], workers: int | None = None):
    cfg = BatchingConfig(batch_size=3, chunk_batches=2, open_shards=2, max_bad_fraction=0.5)
    proc = SampleProcessor(_Tok(), train=True, seed=0)
    if workers is None:
        return BatchStream(sources, proc, pad_id=0, cfg=cfg, seed=3)
    return StatefulLoader(sources, proc, 0, cfg, seed=3, num_workers=workers)


def _not_a_tar(path: Path) -> str:
    path.write_text("this is not a tar file\n" * 50)
    return str(path)


def test_a_source_of_non_tar_shards_stops_naming_the_file(tmp_path):
    bad = _not_a_tar(tmp_path / "bad.tar")
    stream = MixtureStream([SourceSpec("bad", [bad])], seed=0)
    with pytest.raises(ShardError, match=r"source 'bad' has no readable shard .*bad\.tar.*not a readable tar"):
        next(stream)


def test_a_bad_source_beside_good_ones_stops_in_the_loader_worker(tmp_path):
    good = write_task_shards(tmp_path, "a", n_shards=2, per_shard=4)
    bad = [_not_a_tar(tmp_path / f"bad-{i}.tar") for i in range(2)]
    sources = [SourceSpec("a", expand_shards(str(good)), 1.0), SourceSpec("bad", bad, 1.0)]
    message = _first_error(_batches(sources, workers=1))  # the DataLoader worker's error reaches the trainer's process
    assert re.search(r"source 'bad' has no readable shard \(2 of 2: bad-0\.tar, bad-1\.tar\)", message), message


def _first_error(batches) -> str:
    """The ShardError's message, with the loader's worker shut down: the error's traceback holds the DataLoader
    iterator, and while it lives its worker (which ignores SIGTERM) keeps the interpreter from exiting."""
    it = iter(batches)
    try:
        for _ in it:
            pass
    except ShardError as e:
        traceback.clear_frames(e.__traceback__)
        e.__traceback__ = None
        return str(e)
    finally:
        del it
        gc.collect()
    return ""


def test_a_chat_jsonl_given_as_shards_says_what_to_do(tmp_path):
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    stream = _batches([SourceSpec("chat", expand_shards(str(jsonl)))])
    with pytest.raises(ShardError, match=r"chat\.jsonl.*not a readable tar.*qwenaudio-data chat-shards"):
        next(stream)


def test_an_unreadable_shard_among_good_ones_is_counted_and_named(tmp_path):
    good = expand_shards(str(write_task_shards(tmp_path, "a", n_shards=2, per_shard=4)))
    bad = _not_a_tar(tmp_path / "bad.tar")
    stream = _batches([SourceSpec("a", [*good, bad])])
    keys = [k for _ in range(6) for k in next(stream)["keys"]]  # more than an epoch: training goes on
    assert len(keys) == 18
    assert stream.counts["bad"]["a"] >= 1
    assert any("bad.tar" in e and "not a readable tar" in e for e in stream.errors["a"])
    assert stream.mixture.sources[0].bad_shards == stream.counts["bad"]["a"]


def _cut_mid_member(path: Path) -> int:
    """Cut a tar inside its third sample's audio member; returns how many whole samples come before."""
    with tarfile.open(path) as tf:
        members = tf.getmembers()
    flac = members[4]  # a-00002.flac: samples are .flac + .json
    assert flac.name.endswith(".flac")
    data = path.read_bytes()
    path.write_bytes(data[: flac.offset_data + flac.size // 2])
    return 2


def test_a_tar_cut_mid_member_is_counted_logged_and_named(tmp_path, caplog):
    shards = expand_shards(str(write_task_shards(tmp_path, "a", n_shards=1, per_shard=6)))
    whole = _cut_mid_member(Path(shards[0]))
    stream = _batches([SourceSpec("a", shards)])
    with caplog.at_level("WARNING", logger="qwenaudio_train.data.stream"):
        keys = [k for _ in range(3) for k in next(stream)["keys"]]
    assert set(keys) == {f"a-{i:05d}" for i in range(whole)}  # the readable part is trained on, epoch after epoch
    assert stream.counts["bad"]["a"] >= 1  # the cut is counted as a bad sample of its source...
    assert any("shard-000000.tar" in e and "truncated" in e for e in stream.errors["a"])  # ...named...
    assert "shard-000000.tar" in caplog.text and "truncated or damaged at sample 2" in caplog.text  # ...and logged


def _audio(seconds: float, sr: int = 16000, channels: int = 1) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    wav = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([wav] * channels, axis=1) if channels > 1 else wav, sr, format="FLAC")
    return buf.getvalue()


def test_the_check_and_the_loader_agree_on_what_is_bad(tmp_path):
    from qwenaudio_train.data.schema import SampleError
    from qwenaudio_train.data.shards import check_shards, format_report, iter_shard
    from tests.unit.test_stream import _add

    samples = {  # key: (audio, task, metadata duration)
        "good": (_audio(1.0), "sec", 1.0),
        "rate8k": (_audio(1.0, sr=8000), "sec", 1.0),
        "rate44k": (_audio(1.0, sr=44100), "sec", 1.0),
        "stereo": (_audio(1.0, channels=2), "sec", 1.0),
        "long": (_audio(31.0), "sec", 31.0),
        "short": (_audio(0.01), "sec", 0.01),
        "unknowntask": (_audio(1.0), "no_such_task", 1.0),
    }
    shard = tmp_path / "a" / "shard-000000.tar"
    shard.parent.mkdir()
    with tarfile.open(shard, "w") as tf:
        for key, (audio, task, duration) in samples.items():
            meta = {"task": task, "text_language": "en", "target": "label", "duration": duration, "source": "t"}
            _add(tf, f"{key}.flac", audio)
            _add(tf, f"{key}.json", json.dumps(meta).encode())
    bad = {"short", "unknowntask"}  # "long" (31 s) is encoded in 30-s windows by default (data.long_audio=window)

    report = check_shards(str(shard))
    by_key = {p["key"]: p["message"] for p in report["problems"]}
    assert set(by_key) == bad, format_report(report)
    rejected = {p["key"]: p["message"] for p in check_shards(str(shard), long_audio="reject")["problems"]}
    assert set(rejected) == bad | {"long"}
    assert "longer than the encoder's 30 s" in rejected["long"] and "data.long_audio=truncate" in rejected["long"]
    assert "too short" in by_key["short"] and "unknown task 'no_such_task'" in by_key["unknowntask"]
    assert {n["key"] for n in report["notes"]} == {"rate8k", "rate44k", "stereo"}  # converted by training: notes
    assert "long" not in {p["key"] for p in check_shards(str(shard), long_audio="truncate")["problems"]}

    stream = _batches([SourceSpec("a", [str(shard)])])
    keys = {k for _ in range(2) for k in next(stream)["keys"]}
    assert keys == set(samples) - bad  # the loader trains on what the check passes...
    proc = SampleProcessor(_Tok(), train=True, seed=0)  # ...and skips the rest, with the check's reason
    for raw in iter_shard(str(shard)):
        if raw["__key__"] in bad:
            with pytest.raises(SampleError) as e:
                proc(raw)
            assert str(e.value) == by_key[raw["__key__"]]
        else:
            assert proc(raw).key == raw["__key__"]
        if raw["__key__"] == "long":
            with pytest.raises(SampleError) as e:
                SampleProcessor(_Tok(), train=True, seed=0, long_audio="reject")(raw)
            assert str(e.value) == rejected["long"]
