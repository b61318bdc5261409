"""Damaged data never hangs a run: a non-tar shard, a chat .jsonl given as shards, a tar cut mid-member."""

from __future__ import annotations

import json
import tarfile
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
    with pytest.raises(ShardError, match=r"source 'bad' has no readable shard \(2 of 2: bad-0\.tar, bad-1\.tar\)"):
        for _ in _batches(sources, workers=1):  # the DataLoader worker's error reaches the trainer's process
            pass


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
