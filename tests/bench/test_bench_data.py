"""Data pipeline benchmarks: loader throughput, padding share of duration batching, resume cost.

1. Loader throughput (goal: >= 100 samples/s per worker core on 10-s clips): shards of 10-s FLAC clips ->
   ``StatefulLoader`` (mixture -> duration-sorted chunks -> ``SampleProcessor``: decode, log-mel, tokenise ->
   ``collate``) with a real BPE tokenizer, with 0 and 1 loader workers. Plus a per-stage breakdown.
2. Padding share (goal: < 5% with duration batching on the offline corpus): padded mel frames and padded tokens
   over 200 batches with ``chunk_batches=16`` (duration bucketing), ``chunk_batches=1`` (none) and fixed 30-s
   mel padding (what transformers' Qwen2-Audio port does: its processor pads every clip to 3000 frames, while
   the audio tokens follow the real length, so its token padding is that of unbucketed batches).
3. Resume cost (goal: the same at batch 10 and 10,000): build a ``BatchStream`` from a saved state and draw the
   next batch.

The padding and resume-state benchmarks run the real mixture, chunking and collate, but replace decoding and
log-mel by the lengths they would produce (``LengthOnlyProcessor``): the padding counts depend on lengths only,
and the check against ``SampleProcessor`` on the offline corpus below keeps the two in step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from qwenaudio_train import audio as A
from qwenaudio_train.data.loader import BatchingConfig, BatchStream, StatefulLoader
from qwenaudio_train.data.processing import IGNORE_INDEX, Example, SampleProcessor, collate
from qwenaudio_train.data.schema import SampleMeta, audio_member
from qwenaudio_train.data.shards import iter_shard, write_shards
from qwenaudio_train.data.stream import SourceSpec, expand_shards
from qwenaudio_train.tasks import get_task
from tests.bench.conftest import DEFAULT_THREADS, REPO, TOKENIZER_TEXT, interleaved, summary, threads

pytestmark = pytest.mark.bench

SEC_LABELS = TOKENIZER_TEXT[5:]
WORDS = " ".join(TOKENIZER_TEXT[:5]).split()


# --------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------


def tone_clip(seconds: float, i: int) -> np.ndarray:
    """A deterministic clip: a tone that changes every 0.5 s over low noise (compresses like real audio)."""
    rng = np.random.default_rng(i)
    n = int(round(seconds * A.SAMPLE_RATE))
    t = np.arange(n) / A.SAMPLE_RATE
    freq = np.repeat(rng.uniform(150, 2000, size=int(np.ceil(seconds * 2))), A.SAMPLE_RATE // 2)[:n]
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / A.SAMPLE_RATE) + 0.02 * rng.standard_normal(n)
    return x.astype(np.float32) * (t < seconds)


def sec_meta(i: int, seconds: float, source: str) -> SampleMeta:
    return SampleMeta(task="sec", text_language="en", target=SEC_LABELS[i % len(SEC_LABELS)], duration=seconds,
                      source=source)


class LengthOnlyProcessor:
    """``SampleProcessor(train=True)``'s token layout and mel length from the metadata alone (no decoding).

    Same ``input_ids``/``labels`` as the real processor; ``mel`` is [1, frames] zeros (collate counts frames).
    """

    def __init__(self, tokenizer: Any):
        self.tok = tokenizer

    def __call__(self, raw: dict[str, Any], meta: SampleMeta, aug_seed: int = 0) -> Example:
        task = get_task(meta.task)
        n = A.samples_for_duration(meta.duration)
        span = self.tok.audio_span_ids(A.audio_positions(n))
        prefix = self.tok.encode(task.tags(meta).render())
        target = self.tok.encode(task.format_target(meta)) + [self.tok.eod_id]
        return Example(key=raw["__key__"], source=raw["__source__"], task=meta.task,
                       input_ids=span + prefix + target, labels=[IGNORE_INDEX] * (len(span) + len(prefix)) + target,
                       mel=torch.zeros(1, A.mel_frames(n)), duration=n / A.SAMPLE_RATE)


# --------------------------------------------------------------------------------------------------------
# 1. Loader throughput on 10-s clips
# --------------------------------------------------------------------------------------------------------

N_CLIPS = 200
CLIP_SECONDS = 10.0
BATCH = 8
CHUNK = 16  # the default data.chunk_batches
WINDOWS = 3  # timed windows of one chunk (CHUNK batches) each, after a warm-up batch
WINDOW_BUDGET_S = 6.0  # no new window once a setting has run this long (an oversubscribed machine is slow)


@pytest.fixture(scope="module")
def ten_second_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards_10s")
    samples = ((f"clip{i:04d}", A.encode_flac(tone_clip(CLIP_SECONDS, i)), sec_meta(i, CLIP_SECONDS, "bench/sec"))
               for i in range(N_CLIPS))
    write_shards(samples, out, max_count=N_CLIPS // 4)  # 4 shards: enough for 2 slots to own whole shards
    return out


def _loader_rate(loader: StatefulLoader) -> list[float]:
    """Samples/s over up to WINDOWS consecutive chunks, after one warm-up batch (worker start, first chunk read)."""
    it = iter(loader)
    next(it)
    rates: list[float] = []
    start = time.perf_counter()
    try:
        while len(rates) < WINDOWS and (not rates or time.perf_counter() - start < WINDOW_BUDGET_S):
            t0, n = time.perf_counter(), 0
            for _ in range(CHUNK):  # exactly one chunk read (128 raw samples) falls in each window
                n += len(next(it)["tasks"])
            rates.append(n / (time.perf_counter() - t0))
    finally:
        it.close()  # shuts the DataLoader's workers down
    return rates


def _stage_breakdown(shards: Path, processor: SampleProcessor, tok: Any) -> dict[str, float]:
    """Per-sample milliseconds of each stage on 16 clips, 1 thread (medians over 3 passes)."""
    raws = []
    for s in iter_shard(sorted(shards.glob("*.tar"))[0]):
        raws.append(s)
        if len(raws) == 16:
            break
    metas = [SampleMeta.from_json(r["json"]) for r in raws]
    wavs = [A.load_audio(audio_member(r)[1]) for r in raws]
    mels = [A.log_mel_spectrogram(w) for w in wavs]
    task = get_task("sec")
    g = torch.Generator()

    def tokenise(m: SampleMeta, w: np.ndarray) -> None:
        tok.audio_span_ids(A.audio_positions(len(w)))
        tok.encode(task.tags(m).render())
        tok.encode(task.format_target(m))

    for r in raws:
        r["__source__"] = "bench/sec"
    examples = [processor(r, m) for r, m in zip(raws, metas)]
    stages = {
        "json_meta": lambda: [SampleMeta.from_json(r["json"]) for r in raws],
        "decode_flac": lambda: [A.load_audio(audio_member(r)[1]) for r in raws],
        "log_mel": lambda: [A.log_mel_spectrogram(w) for w in wavs],
        "spec_augment": lambda: [A.spec_augment(m, generator=g.manual_seed(0)) for m in mels],
        "tokenise": lambda: [tokenise(m, w) for m, w in zip(metas, wavs)],
        "collate_per_sample": lambda: [collate(examples[i : i + BATCH], tok.eod_id) for i in (0, BATCH)],
    }
    with threads(1):
        t = interleaved(stages, rounds=3, per_round=1)
    return {k: round(float(np.median(v)) * 1e3 / len(raws), 3) for k, v in t.items()}


def test_loader_throughput_10s(record, ten_second_shards, bench_tokenizer):
    tok = bench_tokenizer
    sources = [SourceSpec("sec", expand_shards(str(ten_second_shards)), 1.0)]
    cfg = BatchingConfig(batch_size=BATCH, chunk_batches=CHUNK)
    runs: dict[str, Any] = {}
    # (label, loader workers, torch threads of the main process, SpecAugment)
    settings = [("workers0_1thread", 0, 1, False), ("workers0_1thread_specaug", 0, 1, True),
                (f"workers0_{DEFAULT_THREADS}threads_specaug", 0, DEFAULT_THREADS, True),
                ("workers1_specaug", 1, DEFAULT_THREADS, True)]
    for label, workers, n_threads, aug in settings:
        proc = SampleProcessor(tok, train=True, spec_augment=aug)
        loader = StatefulLoader(sources, proc, tok.eod_id, cfg, seed=0, num_workers=workers)
        with threads(n_threads):
            rates = _loader_rate(loader)
        # Cores doing the work: the main process's threads with 0 workers; one per worker (torch gives each
        # DataLoader worker 1 thread) otherwise.
        cores = n_threads if workers == 0 else workers
        median = float(np.median(rates))
        runs[label] = {"num_workers": workers, "main_threads": n_threads, "spec_augment": aug,
                       "samples_per_s": round(median, 1), "samples_per_s_windows": [round(r, 1) for r in rates],
                       "cores": cores, "samples_per_s_per_core": round(median / cores, 1),
                       "audio_seconds_per_s": round(median * CLIP_SECONDS, 1)}
    breakdown = _stage_breakdown(ten_second_shards, SampleProcessor(tok, train=True, spec_augment=True), tok)
    results = {"clips": N_CLIPS, "clip_seconds": CLIP_SECONDS, "batch_size": BATCH, "chunk_batches": CHUNK,
               "windows_of_one_chunk": WINDOWS, "runs": runs, "stage_ms_per_sample_1thread": breakdown,
               "goal": {"target_samples_per_s_per_core": 100,
                        "met_workers0_1thread": runs["workers0_1thread"]["samples_per_s_per_core"] >= 100,
                        "met_workers1": runs["workers1_specaug"]["samples_per_s_per_core"] >= 100}}
    line = "; ".join(f"{k} {v['samples_per_s']} samples/s ({v['samples_per_s_per_core']}/core)"
                     for k, v in runs.items())
    line += "; per sample ms: " + ", ".join(f"{k} {v}" for k, v in breakdown.items())
    record("loader_throughput", results, line)
    assert all(v["samples_per_s"] > 0 for v in runs.values())


# --------------------------------------------------------------------------------------------------------
# 2. Padding share
# --------------------------------------------------------------------------------------------------------

PAD_BATCHES = 200
DISTRIBUTIONS = {"uniform_1_4s": (1.0, 4.0), "uniform_1_30s": (1.0, 30.0)}
OFFLINE_CORPUS = REPO / "artifacts" / "synthetic"  # `make data`; measured when present


def _length_only_shards(root: Path, lo: float, hi: float, per_source: int = 1600) -> list[SourceSpec]:
    """Two sources weighted like speech vs sounds (3:1): ASR-like (words ~ 2.5/s of audio) and SEC labels.

    Shards hold the metadata and a 1-byte placeholder audio member: nothing here decodes audio."""
    rng = np.random.default_rng(0)
    specs = []
    for name, weight in (("asr", 3.0), ("sec", 1.0)):
        out = root / name
        metas = []
        for i in range(per_source):
            d = round(float(rng.uniform(lo, hi)), 3)
            if name == "asr":
                words = " ".join(WORDS[int(j)] for j in rng.integers(len(WORDS), size=max(1, round(2.5 * d))))
                metas.append(SampleMeta(task="asr", text_language="en", target=words, duration=d,
                                        source="bench/asr", audio_language="en"))
            else:
                metas.append(sec_meta(i, d, "bench/sec"))
        write_shards(((f"{name}{i:05d}", b"\0", m) for i, m in enumerate(metas)), out, max_count=per_source // 4)
        specs.append(SourceSpec(name, expand_shards(str(out)), weight))
    return specs


def _padding(sources: list[SourceSpec], processor: Any, pad_id: int, chunk_batches: int) -> dict[str, Any]:
    stream = BatchStream(sources, processor, pad_id, BatchingConfig(batch_size=BATCH, chunk_batches=chunk_batches),
                         seed=0)
    tot = {"audio_frames": 0, "audio_frames_padded": 0, "tokens": 0, "tokens_padded": 0, "samples": 0}
    for _ in range(PAD_BATCHES):
        b = next(stream)
        for k, v in b["padding"].items():
            tot[k] += v
        tot["samples"] += len(b["tasks"])
    return {"mel_frames_padded_share": round(1 - tot["audio_frames"] / tot["audio_frames_padded"], 4),
            "tokens_padded_share": round(1 - tot["tokens"] / tot["tokens_padded"], 4),
            "fixed_30s_mel_frames_padded_share": round(1 - tot["audio_frames"] / (tot["samples"] * A.N_FRAMES), 4),
            "mean_clip_seconds": round(tot["audio_frames"] / tot["samples"] / A.FRAMES_PER_SECOND, 2), **tot}


def _padding_table(sources: list[SourceSpec], processor: Any, pad_id: int) -> dict[str, Any]:
    bucketed = _padding(sources, processor, pad_id, chunk_batches=16)
    plain = _padding(sources, processor, pad_id, chunk_batches=1)
    return {
        "duration_batching_chunk16": {k: bucketed[k] for k in ("mel_frames_padded_share", "tokens_padded_share")},
        "no_bucketing_chunk1": {k: plain[k] for k in ("mel_frames_padded_share", "tokens_padded_share")},
        # Qwen2-Audio's port: mel always 3000 frames; audio tokens follow the real length (text padding as chunk1)
        "fixed_30s": {"mel_frames_padded_share": plain["fixed_30s_mel_frames_padded_share"],
                      "tokens_padded_share": plain["tokens_padded_share"]},
        "samples": bucketed["samples"], "mean_clip_seconds": bucketed["mean_clip_seconds"],
    }


def test_padding_share(record, tmp_path, bench_tokenizer):
    results: dict[str, Any] = {"batches": PAD_BATCHES, "batch_size": BATCH, "distributions": {}}
    for name, (lo, hi) in DISTRIBUTIONS.items():
        sources = _length_only_shards(tmp_path / name, lo, hi)
        results["distributions"][name] = _padding_table(sources, LengthOnlyProcessor(bench_tokenizer),
                                                        bench_tokenizer.eod_id)

    if (OFFLINE_CORPUS / "train").is_dir() and (OFFLINE_CORPUS / "tokenizer").is_dir():
        from qwenaudio_train.config import compose
        from qwenaudio_train.tokenizer import load_tokenizer

        cfg = compose("pretrain", [f"data.root={OFFLINE_CORPUS}"])
        tok = load_tokenizer(OFFLINE_CORPUS / "tokenizer")
        sources = [SourceSpec(n, expand_shards(s.shards), s.weight)
                   for n, s in cfg.data.sources.items() if s.weight > 0]
        # The length-only processor must agree with the real one on real samples.
        real, fast = SampleProcessor(tok, train=True), LengthOnlyProcessor(tok)
        for src in sources:
            raw = next(iter_shard(src.shards[0]))
            raw["__source__"] = src.name
            meta = SampleMeta.from_json(raw["json"])
            a, b = real(raw, meta), fast(raw, meta)
            assert a.input_ids == b.input_ids and a.mel.shape[1] == b.mel.shape[1], src.name
        table = _padding_table(sources, fast, tok.eod_id)
        table["weights"] = {s.name: s.weight for s in sources}
        results["distributions"]["offline_corpus"] = table
    else:
        results["distributions"]["offline_corpus"] = {"skipped": "artifacts/synthetic not built (make data)"}

    off = results["distributions"]["offline_corpus"]
    if "skipped" not in off:
        share = off["duration_batching_chunk16"]
        results["goal"] = {"target_share": 0.05, "mel_share": share["mel_frames_padded_share"],
                           "token_share": share["tokens_padded_share"],
                           "met": max(share.values()) < 0.05}
    parts = []
    for name, t in results["distributions"].items():
        if "skipped" in t:
            parts.append(f"{name}: skipped ({t['skipped']})")
            continue
        parts.append(f"{name} (mean {t['mean_clip_seconds']} s): mel/token padding chunk16 "
                     f"{t['duration_batching_chunk16']['mel_frames_padded_share']:.1%}/"
                     f"{t['duration_batching_chunk16']['tokens_padded_share']:.1%}, chunk1 "
                     f"{t['no_bucketing_chunk1']['mel_frames_padded_share']:.1%}/"
                     f"{t['no_bucketing_chunk1']['tokens_padded_share']:.1%}, fixed 30 s "
                     f"{t['fixed_30s']['mel_frames_padded_share']:.1%}/{t['fixed_30s']['tokens_padded_share']:.1%}")
    record("padding_share", results, "; ".join(parts))


# --------------------------------------------------------------------------------------------------------
# 3. Resume cost
# --------------------------------------------------------------------------------------------------------

RESUME_AT = (10, 10_000)
RESUME_CFG = BatchingConfig(batch_size=2, chunk_batches=4)


@pytest.fixture(scope="module")
def short_clip_sources(tmp_path_factory) -> list[SourceSpec]:
    """Two sources of 1-s clips: 'a' 4 shards x 25, 'b' 2 shards x 25 (many epochs pass in 10,000 batches)."""
    root = tmp_path_factory.mktemp("shards_1s")
    specs = []
    for name, n, weight in (("a", 100, 2.0), ("b", 50, 1.0)):
        samples = ((f"{name}{i:04d}", A.encode_flac(tone_clip(1.0, i)), sec_meta(i, 1.0, f"bench/{name}"))
                   for i in range(n))
        write_shards(samples, root / name, max_count=25)
        specs.append(SourceSpec(name, expand_shards(str(root / name)), weight))
    return specs


def _null_processor(raw: dict[str, Any], meta: SampleMeta, aug_seed: int = 0) -> Example:
    return Example(key=raw["__key__"], source=raw["__source__"], task=meta.task, input_ids=[0], labels=[0],
                   mel=torch.zeros(1, 1), duration=meta.duration)


def test_resume_cost(record, short_clip_sources, bench_tokenizer):
    tok = bench_tokenizer
    # Run the stream forward to batch 10,000 without decoding (the state does not depend on the processor's
    # output); keep the state after batches 10 and 10,000 and the keys of the batch that follows each (what a
    # resumed stream must produce).
    t0 = time.perf_counter()
    stream = BatchStream(short_clip_sources, _null_processor, tok.eod_id, RESUME_CFG, seed=0)
    states, expect = {}, {}
    for k in range(1, RESUME_AT[-1] + 2):
        b = next(stream)
        if k - 1 in states:
            expect[k - 1] = b["keys"]
        if k in RESUME_AT:
            states[k] = b["data_state"]
    forward_s = time.perf_counter() - t0
    # Where each source stands: its epoch and the sample offsets of its open shards. Resuming skips the headers
    # of the samples before an offset, so the cost depends on the offset within a shard, never on the step.
    where = {str(k): {n: {"epoch": s["epoch"], "open_shard_offsets": [off for _, off in s["open"]]}
                      for n, s in st["chunk_start"]["sources"].items()} for k, st in states.items()}

    processor = SampleProcessor(tok, train=True, spec_augment=True)
    drawn: dict[int, list[str]] = {}

    def resume(k: int) -> None:
        s = BatchStream(short_clip_sources, processor, tok.eod_id, RESUME_CFG, seed=0, state=states[k])
        drawn[k] = next(s)["keys"]

    with threads(1):
        fns = {str(k): (lambda k=k: resume(k)) for k in RESUME_AT}
        t = interleaved(fns, rounds=15, per_round=2, budget_s=5.0)
    ms = {k: summary(v) for k, v in t.items()}
    assert all(drawn[k] == expect[k] for k in RESUME_AT)  # the resumed stream continues where it stopped
    ratio = ms[str(RESUME_AT[-1])]["median"] / ms[str(RESUME_AT[0])]["median"]
    results = {"batch_size": RESUME_CFG.batch_size, "chunk_batches": RESUME_CFG.chunk_batches,
               "resume_then_next_batch_ms": ms, "ratio_10000_over_10": round(ratio, 3),
               "state_json_bytes": {str(k): len(json.dumps(states[k])) for k in RESUME_AT},
               "source_positions_at_state": where, "main_threads": 1,
               "forward_to_10000_s_without_decoding": round(forward_s, 2),
               "resumed_batches_match": True,
               "goal": {"target": "same cost at batch 10 and 10,000", "met": bool(ratio < 1.5)}}
    record("resume_cost", results,
           f"resume+next batch at 10: {ms['10']['median']:.2f} ms, at 10,000: {ms['10000']['median']:.2f} ms "
           f"(ratio {ratio:.2f}); replaying 10,000 batches without decoding took {forward_s:.1f} s")
