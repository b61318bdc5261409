"""The streaming mixture and the stateful loader: determinism, no duplicates across slots, exact resume."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwenaudio_train.data.loader import BatchingConfig, BatchStream, DataError, StatefulLoader
from qwenaudio_train.data.processing import SampleProcessor
from qwenaudio_train.data.stream import MixtureStream, ShardCursor, ShardError, SourceSpec, expand_shards


def _flac(seconds: float, freq: float) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def write_task_shards(root: Path, task: str, n_shards: int, per_shard: int, bad: set[int] = frozenset()) -> Path:
    d = root / task
    d.mkdir(parents=True)
    rng = np.random.default_rng(len(task))
    i = 0
    for s in range(n_shards):
        with tarfile.open(d / f"shard-{s:06d}.tar", "w") as tf:
            for _ in range(per_shard):
                key = f"{task}-{i:05d}"
                dur = float(rng.uniform(0.5, 2.0))
                meta = {
                    "task": "sec",
                    "text_language": "en",
                    "target": f"label{i % 3}",
                    "duration": dur,
                    "source": f"test/{task}",
                    "audio_language": None,
                }
                _add(tf, f"{key}.flac", _flac(dur, 200 + 50 * (i % 5)) if i not in bad else b"not audio")
                _add(tf, f"{key}.json", json.dumps(meta).encode())
                i += 1
    return d


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    write_task_shards(root, "a", n_shards=3, per_shard=7)
    write_task_shards(root, "b", n_shards=1, per_shard=5)
    return root


def _sources(root: Path, wa: float = 2.0, wb: float = 1.0) -> list[SourceSpec]:
    return [SourceSpec("a", expand_shards(str(root / "a")), wa), SourceSpec("b", expand_shards(str(root / "b")), wb)]


class _Tok:
    """The few tokenizer calls the processor makes, with ids that do not matter for these tests."""

    eod_id = 0
    im_end_id = 1

    def audio_span_ids(self, n: int) -> list[int]:
        return [2] + [3] * n + [4]

    def encode(self, text: str) -> list[int]:
        return [5 + (ord(c) % 50) for c in text[:20]]


def test_expand_shards_errors(tmp_path):
    with pytest.raises(ShardError, match="does not exist"):
        expand_shards(str(tmp_path / "missing.tar"))
    with pytest.raises(ShardError, match="no shards match"):
        expand_shards(str(tmp_path / "*.tar"))


def test_cursor_resumes_inside_a_shard(shard_root):
    url = expand_shards(str(shard_root / "a"))[0]
    full = [s["__key__"] for s in ShardCursor(url)._iter]
    cur = ShardCursor(url, offset=4)
    assert [s["__key__"] for s in cur._iter] == full[4:]
    assert cur.position == len(full)


def test_mixture_is_deterministic_and_follows_weights(shard_root):
    a = [next(MixtureStream(_sources(shard_root), seed=1))["__key__"] for _ in range(1)]
    m1, m2 = MixtureStream(_sources(shard_root), seed=1), MixtureStream(_sources(shard_root), seed=1)
    k1 = [next(m1)["__key__"] for _ in range(300)]
    k2 = [next(m2)["__key__"] for _ in range(300)]
    assert k1 == k2 and k1[0] == a[0]
    share_a = sum(k.startswith("a-") for k in k1) / len(k1)
    assert 0.58 < share_a < 0.75  # weight 2:1
    assert k1 != [next(MixtureStream(_sources(shard_root), seed=2))["__key__"] for _ in range(300)]


@pytest.mark.parametrize("n_slots", [2, 3, 5])
def test_slots_split_an_epoch_without_duplicates(shard_root, n_slots):
    # One epoch of source "a" (21 samples) over n slots: each sample exactly once (whole shards when there are
    # at least as many shards as slots, sample-level interleave otherwise).
    seen = Counter()
    for slot in range(n_slots):
        src = MixtureStream([_sources(shard_root)[0]], seed=0, slot=slot, n_slots=n_slots).sources[0]
        keys = []
        while src.epoch == 0:
            keys.append(next(src)["__key__"])
        seen.update(keys[:-1])  # the last draw already belongs to epoch 1
    assert sorted(seen) == [f"a-{i:05d}" for i in range(21)]
    assert set(seen.values()) == {1}


def test_mixture_state_resumes_exactly(shard_root):
    m = MixtureStream(_sources(shard_root), seed=3, open_shards=2)
    for _ in range(17):
        next(m)
    state = json.loads(json.dumps(m.state_dict()))  # must survive JSON (it goes into checkpoints)
    expected = [next(m)["__key__"] for _ in range(40)]
    resumed = MixtureStream(_sources(shard_root), seed=3, open_shards=2, state=state)
    assert [next(resumed)["__key__"] for _ in range(40)] == expected


def _stream(root, state=None, slot=0, n_slots=1, bad_fraction=0.05):
    cfg = BatchingConfig(
        batch_size=3, chunk_batches=4, open_shards=2, max_bad_fraction=bad_fraction, min_samples_for_bad_check=10
    )
    proc = SampleProcessor(_Tok(), train=True, spec_augment=True, seed=0)
    return BatchStream(_sources(root), proc, pad_id=0, cfg=cfg, seed=7, slot=slot, n_slots=n_slots, state=state)


def _sig(batch) -> tuple:
    return tuple(batch["keys"]), float(batch["audio_features"].sum())


def test_batch_stream_resume_equals_uninterrupted(shard_root):
    ref = _stream(shard_root)
    ref_batches = [_sig(next(ref)) for _ in range(14)]
    s = _stream(shard_root)
    for _ in range(6):  # stop mid-chunk (4 batches per chunk)
        state = next(s)["data_state"]
    resumed = _stream(shard_root, state=json.loads(json.dumps(state)))
    assert [_sig(next(resumed)) for _ in range(8)] == ref_batches[6:]


def test_batches_are_duration_sorted_chunks(shard_root):
    s = _stream(shard_root)
    b = next(s)
    assert b["audio_features"].shape[0] == 3
    pad = b["padding"]
    assert pad["audio_frames"] <= pad["audio_frames_padded"]


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_loader_resume(shard_root, workers):
    cfg = BatchingConfig(batch_size=2, chunk_batches=3)
    proc = SampleProcessor(_Tok(), train=True, seed=0)

    def loader(state=None):
        return StatefulLoader(_sources(shard_root), proc, 0, cfg, seed=5, num_workers=workers, state=state)

    ref = [tuple(b["keys"]) for b, _ in zip(loader(), range(11))]
    first = loader()
    it = iter(first)
    for _ in range(5):
        next(it)
    state = json.loads(json.dumps(first.state_dict()))
    del it
    resumed = [tuple(b["keys"]) for b, _ in zip(loader(state), range(6))]
    assert resumed == ref[5:]


def test_loader_refuses_an_earlier_format_state_of_another_world_size(shard_root):
    # A state of the earlier one-slot-per-rank-x-worker format maps onto logical streams only on its own world size
    # with one worker; today's states resume on any world size and worker count (test_data_order.py).
    proc = SampleProcessor(_Tok(), train=True)
    state = {"world": 4, "workers": 1, "next": 0, "slots": {}}
    with pytest.raises(DataError, match="world size 4"):
        StatefulLoader(_sources(shard_root), proc, 0, BatchingConfig(), seed=0, state=state)


def test_bad_samples_are_skipped_and_counted(tmp_path):
    write_task_shards(tmp_path, "a", n_shards=1, per_shard=12, bad={2, 5})
    write_task_shards(tmp_path, "b", n_shards=1, per_shard=4)
    s = _stream(tmp_path, bad_fraction=0.5)
    keys = [k for _ in range(5) for k in next(s)["keys"]]
    assert "a-00002" not in keys and "a-00005" not in keys
    assert s.counts["bad"].get("a", 0) >= 1
    assert "not a readable audio" in " ".join(s.errors["a"]) or s.errors["a"]


def test_too_many_bad_samples_stop_with_a_clear_error(tmp_path):
    write_task_shards(tmp_path, "a", n_shards=1, per_shard=12, bad=set(range(0, 12, 2)))
    write_task_shards(tmp_path, "b", n_shards=1, per_shard=4)
    s = _stream(tmp_path, bad_fraction=0.05)
    with pytest.raises(DataError, match="max_bad_fraction"):
        for _ in range(20):
            next(s)


def test_budget_batching_keeps_padded_audio_under_the_budget_and_resumes(shard_root):
    cfg = BatchingConfig(batch_size=8, chunk_batches=4, max_batch_seconds=3.0)
    proc = SampleProcessor(_Tok(), train=True, seed=0)

    def stream(state=None):
        return BatchStream(_sources(shard_root), proc, pad_id=0, cfg=cfg, seed=7, state=state)

    s = stream()
    batches = [next(s) for _ in range(12)]
    sizes = {len(b["keys"]) for b in batches}
    assert len(sizes) > 1  # short clips make bigger batches
    for b in batches:
        longest = b["audio_features"].shape[-1] / 100  # mel frames -> seconds
        assert len(b["keys"]) == 1 or len(b["keys"]) * longest <= 3.0 + 0.01
    state = batches[4]["data_state"]
    resumed = stream(json.loads(json.dumps(state)))
    assert [tuple(next(resumed)["keys"]) for _ in range(7)] == [tuple(b["keys"]) for b in batches[5:]]


def test_mixture_weights_by_hours_with_temperature_and_caps(tmp_path):
    from types import SimpleNamespace

    from qwenaudio_train.data.mixture import build_sources

    for name, hours in (("big", 100.0), ("small", 1.0)):
        d = tmp_path / name
        d.mkdir()
        (d / "shard-000000.tar").write_bytes(b"")
        (d / "manifest.json").write_text(json.dumps({"totals": {"samples": 1, "hours": hours}}))

    def src(name, **kw):
        return SimpleNamespace(shards=str(tmp_path / name), weight=None, hours=None, max_hours=None, **kw)

    w = {s.name: s.weight for s in build_sources({"big": src("big"), "small": src("small")}, "hours", 1.0)}
    assert w == {"big": 100.0, "small": 1.0}
    w = {s.name: s.weight for s in build_sources({"big": src("big"), "small": src("small")}, "hours", 2.0)}
    assert w == pytest.approx({"big": 10.0, "small": 1.0})
    capped = SimpleNamespace(shards=str(tmp_path / "big"), weight=None, hours=None, max_hours=4.0)
    w = {s.name: s.weight for s in build_sources({"big": capped, "small": src("small")}, "hours", 2.0)}
    assert w == pytest.approx({"big": 2.0, "small": 1.0})
    with pytest.raises(ValueError, match="weight is null"):
        build_sources({"big": src("big")}, "explicit")
    (tmp_path / "small" / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        build_sources({"small": src("small")}, "hours")
