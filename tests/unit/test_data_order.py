"""The data order is defined by the global batch: the same samples per global step whatever the world size, the
gradient accumulation and the loader workers, also across a resume that changes them; budgets that fill a batch;
the few-shards warning."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qwenaudio_train import checkpoint
from qwenaudio_train.data.budget import tagged_length_fn
from qwenaudio_train.data.loader import BatchingConfig, BatchStream, DataError, StatefulLoader, loader_streams
from qwenaudio_train.data.processing import SampleProcessor
from qwenaudio_train.data.stream import SourceSpec, expand_shards
from tests.unit.test_chat_shards import corpus as chat_corpus  # noqa: F401, F811 (a fixture)
from tests.unit.test_stream import _add, _flac, _Tok, write_task_shards

CFG = BatchingConfig(batch_size=2, chunk_batches=3)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("order")
    write_task_shards(root, "a", n_shards=4, per_shard=6)
    write_task_shards(root, "b", n_shards=1, per_shard=5)  # fewer shards than streams: sample-level split
    return root


def _sources(root: Path) -> list[SourceSpec]:
    return [SourceSpec("a", expand_shards(str(root / "a")), 2.0), SourceSpec("b", expand_shards(str(root / "b")), 1.0)]


def _proc() -> SampleProcessor:
    return SampleProcessor(_Tok(), train=True, spec_augment=True, seed=0)


def _sig(batch) -> tuple:
    return tuple(batch["keys"]), round(float(batch["audio_features"].sum()), 3)


def _run(root, world, accum, workers, steps, states=None):
    """Global batches (a sorted list of micro-batch signatures per step) and every rank's final state, driving one
    StatefulLoader per rank in turn, as `world` ranks would."""
    per_step: list[list[tuple]] = [[] for _ in range(steps)]
    saved = {}
    for rank in range(world):
        state = checkpoint_merge(states, rank) if states else None
        loader = StatefulLoader(
            _sources(root), _proc(), 0, CFG, seed=5, rank=rank, world=world, num_workers=workers,
            state=state, n_streams=None if state else world * accum,
        )  # fmt: skip
        assert loader.accum == loader.n_streams // world
        it = iter(loader)
        for k in range(steps):
            per_step[k] += [_sig(next(it)) for _ in range(loader.accum)]
        saved[rank] = json.loads(json.dumps(loader.state_dict()))  # as checkpoint.save writes it
        loader.close()
    return [sorted(s) for s in per_step], saved


def checkpoint_merge(states, rank):
    """What checkpoint.load hands the trainer: every rank's file merged (through the real files)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for r, st in states.items():
            (Path(d) / f"data_state_rank{r}.json").write_text(json.dumps(st))
        return checkpoint._data_state(Path(d), rank)


@pytest.fixture(scope="module")
def reference(root):
    return _run(root, world=2, accum=1, workers=0, steps=6)[0]


@pytest.mark.parametrize(("world", "accum", "workers"), [(1, 2, 0), (1, 2, 1), (1, 2, 2), (2, 1, 2)])
def test_global_batches_do_not_depend_on_world_size_or_workers(root, reference, world, accum, workers):
    batches, _ = _run(root, world, accum, workers, steps=6)
    assert batches == reference
    keys = [Counter(k for sig in step for k in sig[0]) for step in batches]
    assert all(sum(c.values()) == 4 for c in keys)  # 2 streams x batch 2


@pytest.mark.parametrize(
    ("first", "second"),
    [((2, 1, 1), (1, 2, 2)), ((1, 2, 2), (2, 1, 0)), ((1, 2, 0), (1, 2, 1))],
    ids=["2x1w1-to-1x2w2", "1x2w2-to-2x1w0", "workers-0-to-1"],
)
def test_resume_on_another_world_size_and_workers_continues_the_same_batches(root, reference, first, second):
    (w1, a1, n1), (w2, a2, n2) = first, second
    head, saved = _run(root, w1, a1, n1, steps=2)
    assert loader_streams(checkpoint_merge(saved, 0)) == 2  # what the trainer sets grad_accum from (L // world)
    tail, _ = _run(root, w2, a2, n2, steps=4, states=saved)
    assert head + tail == reference


def test_resume_refuses_a_world_size_that_does_not_divide_the_streams(root):
    loader = StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, n_streams=3)
    state = loader.state_dict()
    with pytest.raises(DataError, match=r"3 logical streams .* world size 2 does not divide.*\[1, 3\] ranks"):
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, world=2, state=state)
    with pytest.raises(DataError, match=r"asks for 2 .*trainer.grad_accum=3"):
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, state=state, n_streams=2)


def test_a_state_of_the_earlier_one_slot_per_rank_format_maps_onto_streams(root):
    # Version 1 with one worker per rank: slot r of world W is logical stream r of L = W (same shard split, RNG
    # and seeds), so such a checkpoint resumes exactly, on any world size dividing W.
    ref = BatchStream(_sources(root), _proc(), 0, CFG, seed=5, slot=1, n_slots=2)
    for _ in range(3):
        old = next(ref)["data_state"]
    expected = [_sig(next(ref)) for _ in range(3)]
    fresh = BatchStream(_sources(root), _proc(), 0, CFG, seed=5, slot=0, n_slots=2)
    files = {0: {"world": 2, "workers": 1, "next": 0, "slots": {"0": fresh.state_dict()}},
             1: {"world": 2, "workers": 1, "next": 0, "slots": {"0": old}}}  # fmt: skip
    merged = checkpoint_merge(files, 0)
    assert loader_streams(merged) == 2
    it = iter(StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, rank=1, world=2, state=merged))
    assert [_sig(next(it)) for _ in range(3)] == expected
    with pytest.raises(DataError, match="earlier version .* only with trainer.grad_accum=1"):
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, rank=1, world=2, state=merged, n_streams=4)
    two_workers = dict(files[1], workers=2, slots={"0": old, "1": old})
    with pytest.raises(DataError, match="earlier version with world size 2 x 2 loader workers"):
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, rank=1, world=2, state=two_workers)


def test_a_source_with_fewer_shards_than_streams_is_named_once_at_start_up(root, caplog):
    with caplog.at_level("WARNING", logger="qwenaudio_train.data.loader"):
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, world=1, n_streams=4)
        StatefulLoader(_sources(root), _proc(), 0, CFG, seed=5, rank=1, world=2, n_streams=4)  # not rank 0: silent
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "'b' has 1 shard(s) for 4 logical streams" in lines[0] and "--shard-samples" in lines[0]
    assert not [r for r in caplog.records if "'a'" in r.getMessage()]  # 4 shards for 4 streams: whole shards


# -- budgets ----------------------------------------------------------------------------------------------------
def _write(root: Path, name: str, durations: list[float], target: str = "a dog barks") -> Path:
    d = root / name
    d.mkdir(parents=True)
    with tarfile.open(d / "shard-000000.tar", "w") as tf:
        for i, dur in enumerate(durations):
            meta = {"task": "sec", "text_language": "en", "target": target * (1 + i % 3), "duration": dur,
                    "source": "t", "audio_language": None}  # fmt: skip
            _add(tf, f"{name}-{i:04d}.flac", _flac(dur, 300.0))
            _add(tf, f"{name}-{i:04d}.json", json.dumps(meta).encode())
    return d


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> list[SourceSpec]:
    root = tmp_path_factory.mktemp("budget")
    rng = np.random.default_rng(0)
    short = _write(root, "short", [float(x) for x in rng.uniform(0.3, 0.8, 40)])
    long = _write(root, "long", [float(x) for x in rng.uniform(3.0, 5.0, 12)] + [9.0])  # 9 s: over the budget
    return [SourceSpec("short", expand_shards(str(short)), 1.0), SourceSpec("long", expand_shards(str(long)), 1.0)]


def _budget_batches(sources, n, **budget):
    cfg = BatchingConfig(batch_size=2, chunk_batches=4, **budget)
    proc = SampleProcessor(_Tok(), train=True, seed=0)
    length = tagged_length_fn(proc) if budget.get("max_batch_tokens") else None
    stream = BatchStream(sources, proc, 0, cfg, seed=1, length_fn=length)
    return [next(stream) for _ in range(n)], proc


def test_a_seconds_budget_grows_batches_of_short_clips_and_shrinks_long_ones(mixed):
    batches, _ = _budget_batches(mixed, 30, max_batch_seconds=8.0)
    by_kind: dict[str, list[int]] = {"short": [], "long": []}
    for b in batches:
        longest = b["audio_features"].shape[-1] / 100  # mel frames -> seconds
        assert len(b["keys"]) == 1 or len(b["keys"]) * longest <= 8.0 + 0.01  # padded audio within the budget
        if all(k.startswith("short") for k in b["keys"]):
            by_kind["short"].append(len(b["keys"]))
        if all(k.startswith("long") for k in b["keys"]):
            by_kind["long"].append(len(b["keys"]))
    # batch_size=2 is no cap under a budget: short clips fill big batches (but a chunk's last one), long ones small
    assert max(by_kind["short"]) >= 8 and np.median(by_kind["short"]) > 2 >= max(by_kind["long"])
    alone = [b for b in batches if "long-0012" in b["keys"]]
    assert alone and all(b["keys"] == ["long-0012"] for b in alone)  # the 9-s clip goes alone


def test_a_token_budget_holds_with_estimated_lengths(mixed):
    batches, proc = _budget_batches(mixed, 30, max_batch_tokens=400)
    length = tagged_length_fn(proc)
    sizes = set()
    for b in batches:
        rows = b["attention_mask"].sum(1).tolist()  # real collated lengths
        sizes.add(len(rows))
        assert len(rows) == 1 or len(rows) * max(rows) <= 400
    assert len(sizes) > 2  # the batch size follows the lengths
    # The estimate (before decoding) against the real example: within one token (duration rounding) per sample.
    from qwenaudio_train.data.processing import parse_meta
    from qwenaudio_train.data.shards import iter_shard

    for spec in mixed:
        for raw in iter_shard(spec.shards[0]):
            meta = parse_meta(raw)
            assert abs(length(raw, meta) - len(proc(raw, meta).input_ids)) <= 1, raw["__key__"]


def test_a_budgeted_stream_resumes_exactly(mixed):
    cfg = BatchingConfig(batch_size=2, chunk_batches=3, max_batch_seconds=6.0, max_batch_tokens=500)
    proc = SampleProcessor(_Tok(), train=True, seed=0)

    def stream(state=None):
        return BatchStream(mixed, proc, 0, cfg, seed=2, state=state, length_fn=tagged_length_fn(proc))

    ref = stream()
    batches = [tuple(next(ref)["keys"]) for _ in range(10)]
    s = stream()
    for _ in range(4):
        state = next(s)["data_state"]
    resumed = stream(json.loads(json.dumps(state)))
    assert [tuple(next(resumed)["keys"]) for _ in range(6)] == batches[4:]


def test_batches_of_bad_samples_only_keep_the_order_and_the_counts(tmp_path):
    # Half the clips of "a" are not audio: some batches lose every sample. A stream then gives its next batch, the
    # other streams' batches wait, and global batch k is the same for every topology; so are the counts.
    write_task_shards(tmp_path, "a", n_shards=2, per_shard=12, bad=set(range(0, 24, 2)) | {1, 5})
    write_task_shards(tmp_path, "b", n_shards=2, per_shard=3)
    sources = [SourceSpec(n, expand_shards(str(tmp_path / n)), w) for n, w in (("a", 3.0), ("b", 1.0))]
    cfg = BatchingConfig(batch_size=2, chunk_batches=2, max_bad_fraction=0.9)
    runs = {}
    for world, accum, workers in ((2, 1, 0), (1, 2, 2)):
        steps: list[list[tuple]] = [[] for _ in range(8)]
        counts: Counter = Counter()
        for rank in range(world):
            loader = StatefulLoader(sources, _proc(), 0, cfg, seed=9, rank=rank, world=world, num_workers=workers,
                                    n_streams=world * accum)  # fmt: skip
            it = iter(loader)
            for k in range(8):
                steps[k] += [_sig(next(it)) for _ in range(accum)]
            loader.close()
            counts.update({f"{kind}/{s}": n for kind, c in loader.data_counts().items() for s, n in c.items()})
            for st in loader.state_dict()["slots"].values():  # raw batches planned vs batches given: the empty ones
                counts["empty"] += st["chunk_index"] * cfg.chunk_batches + st["next_batch"] - st["batches"]
        runs[(world, workers)] = ([sorted(s) for s in steps], counts)
    (ref, ref_counts), (other, other_counts) = runs.values()
    assert other == ref and other_counts == ref_counts
    assert ref_counts["bad/a"] > 0 and ref_counts["empty"] > 0


def test_chat_token_estimate_is_within_one_token_per_audio_span(chat_corpus, tmp_path):  # noqa: F811
    from qwenaudio_train import chat as C
    from qwenaudio_train.data.budget import chat_length_fn, length_fn_for
    from qwenaudio_train.data.chat_shards import jsonl_to_chat_shards
    from qwenaudio_train.data.shards import iter_shard
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    jsonl = chat_corpus / "conversations.jsonl"
    jsonl_to_chat_shards(jsonl, tmp_path / "shards")
    convs = list(C.load_conversations(jsonl))
    tok = train_bpe_tokenizer([m.content for c in convs for m in c.messages], tmp_path / "tok", vocab_size=300)
    proc = C.ChatProcessor(tok)
    length = length_fn_for(proc)
    assert length.__qualname__ == chat_length_fn(proc).__qualname__
    for shard in expand_shards(str(tmp_path / "shards")):
        for raw in iter_shard(shard):
            meta, ex = C.parse_chat_meta(raw), proc(raw)
            assert abs(length(raw, meta) - len(ex.input_ids)) <= len(ex.mels), raw["__key__"]
