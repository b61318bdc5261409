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
from tests.bench.conftest import DEFAULT_THREADS, REPO, TOKENIZER_TEXT, interleaved, threads

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
    return SampleMeta(
        task="sec", text_language="en", target=SEC_LABELS[i % len(SEC_LABELS)], duration=seconds, source=source
    )


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
        return Example(
            key=raw["__key__"],
            source=raw["__source__"],
            task=meta.task,
            input_ids=span + prefix + target,
            labels=[IGNORE_INDEX] * (len(span) + len(prefix)) + target,
            mel=torch.zeros(1, A.mel_frames(n)),
            duration=n / A.SAMPLE_RATE,
        )


# --------------------------------------------------------------------------------------------------------
# 1. Loader throughput on 10-s clips
# --------------------------------------------------------------------------------------------------------

N_CLIPS = 200
CLIP_SECONDS = 10.0
BATCH = 8
CHUNK = 16  # the default data.chunk_batches
WINDOWS = 4  # timed windows of one chunk (CHUNK batches) per setting, after a warm-up batch
PREFETCH = 2  # StatefulLoader's default prefetch_factor
# Bounds on an oversubscribed machine: a window stops early after WINDOW_CAP_S, and no new round of windows
# starts after WINDOW_BUDGET_S (at least 2 rounds run).
WINDOW_CAP_S = 2.5
WINDOW_BUDGET_S = 12.0


@pytest.fixture(scope="module")
def ten_second_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards_10s")
    samples = (
        (f"clip{i:04d}", A.encode_flac(tone_clip(CLIP_SECONDS, i)), sec_meta(i, CLIP_SECONDS, "bench/sec"))
        for i in range(N_CLIPS)
    )
    write_shards(samples, out, max_count=N_CLIPS // 4)  # 4 shards: enough for 2 slots to own whole shards
    return out


def _loader_rates(loaders: dict[str, tuple[StatefulLoader, int]]) -> dict[str, list[float]]:
    """Samples/s of each loader over windows of one chunk (CHUNK batches, or WINDOW_CAP_S), loaders taking turns.

    Each loader first gives one warm-up batch (worker start, first chunk read); then round robin with the order
    rotating each window, each window run with that loader's torch threads in the main process. Taking turns
    spreads foreign load over all; rotating keeps one loader's leftovers from always landing in the same next one.
    """
    its = {k: iter(loader) for k, (loader, _) in loaders.items()}
    rates: dict[str, list[float]] = {k: [] for k in loaders}
    try:
        for k, it in its.items():
            with threads(loaders[k][1]):
                next(it)
        start = time.perf_counter()
        for w in range(WINDOWS):
            if w >= 2 and time.perf_counter() - start > WINDOW_BUDGET_S:
                break
            names = list(its)
            # Rotate the order each window: the loader that runs after another one (and its workers' prefetch,
            # page cache and allocations) is not always the same.
            for k in names[w % len(names) :] + names[: w % len(names)]:
                it = its[k]
                with threads(loaders[k][1]):
                    for _ in range(PREFETCH * loaders[k][0].loader.num_workers):
                        next(it)  # batches a worker prefetched while the other loaders ran: not this window's
                    t0, n = time.perf_counter(), 0
                    for _ in range(CHUNK):  # one chunk read (128 raw samples) falls in each full window
                        n += len(next(it)["tasks"])
                        if time.perf_counter() - t0 > WINDOW_CAP_S:
                            break
                    rates[k].append(n / (time.perf_counter() - t0))
    finally:
        for it in its.values():
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
    # (label, loader workers, torch threads of the main process, SpecAugment)
    settings = [
        ("workers0_1thread", 0, 1, False),
        ("workers0_1thread_specaug", 0, 1, True),
        (f"workers0_{DEFAULT_THREADS}threads_specaug", 0, DEFAULT_THREADS, True),
        ("workers1_specaug", 1, DEFAULT_THREADS, True),
    ]
    loaders = {
        label: (
            StatefulLoader(
                sources,
                SampleProcessor(tok, train=True, spec_augment=aug),
                tok.eod_id,
                cfg,
                seed=0,
                num_workers=workers,
            ),
            n_threads,
        )
        for label, workers, n_threads, aug in settings
    }
    rates = _loader_rates(loaders)
    runs: dict[str, Any] = {}
    for label, workers, n_threads, aug in settings:
        # Cores doing the work: the main process's threads with 0 workers; one per worker (torch gives each
        # DataLoader worker 1 thread) otherwise.
        cores = n_threads if workers == 0 else workers
        median = float(np.median(rates[label]))
        runs[label] = {
            "num_workers": workers,
            "main_threads": n_threads,
            "spec_augment": aug,
            "samples_per_s": round(median, 1),
            "samples_per_s_min": round(min(rates[label]), 1),
            "samples_per_s_max": round(max(rates[label]), 1),
            "samples_per_s_windows": [round(r, 1) for r in rates[label]],
            "cores": cores,
            "samples_per_s_per_core": round(median / cores, 1),
            "audio_seconds_per_s": round(median * CLIP_SECONDS, 1),
        }
    breakdown = _stage_breakdown(ten_second_shards, SampleProcessor(tok, train=True, spec_augment=True), tok)
    results = {
        "clips": N_CLIPS,
        "clip_seconds": CLIP_SECONDS,
        "batch_size": BATCH,
        "chunk_batches": CHUNK,
        "windows_of_one_chunk": len(rates["workers0_1thread"]),
        "order": "interleaved, rotating each window; median and min-max over windows",
        "runs": runs,
        "stage_ms_per_sample_1thread": breakdown,
        "goal": {
            "target_samples_per_s_per_core": 100,
            "met_workers0_1thread": runs["workers0_1thread"]["samples_per_s_per_core"] >= 100,
            "met_workers1": runs["workers1_specaug"]["samples_per_s_per_core"] >= 100,
        },
    }
    line = "; ".join(
        f"{k} median {v['samples_per_s']} samples/s (windows {v['samples_per_s_min']}-{v['samples_per_s_max']}; "
        f"{v['samples_per_s_per_core']}/core)"
        for k, v in runs.items()
    )
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
                metas.append(
                    SampleMeta(
                        task="asr",
                        text_language="en",
                        target=words,
                        duration=d,
                        source="bench/asr",
                        audio_language="en",
                    )
                )
            else:
                metas.append(sec_meta(i, d, "bench/sec"))
        write_shards(((f"{name}{i:05d}", b"\0", m) for i, m in enumerate(metas)), out, max_count=per_source // 4)
        specs.append(SourceSpec(name, expand_shards(str(out)), weight))
    return specs


def _padding(
    sources: list[SourceSpec], processor: Any, pad_id: int, chunk_batches: int, sort_by: str = "duration"
) -> dict[str, Any]:
    stream = BatchStream(
        sources,
        processor,
        pad_id,
        BatchingConfig(batch_size=BATCH, chunk_batches=chunk_batches, sort_by=sort_by),
        seed=0,
    )
    tot = {"audio_frames": 0, "audio_frames_padded": 0, "tokens": 0, "tokens_padded": 0, "samples": 0}
    for _ in range(PAD_BATCHES):
        b = next(stream)
        for k, v in b["padding"].items():
            tot[k] += v
        tot["samples"] += len(b["tasks"])
    return {
        "mel_frames_padded_share": round(1 - tot["audio_frames"] / tot["audio_frames_padded"], 4),
        "tokens_padded_share": round(1 - tot["tokens"] / tot["tokens_padded"], 4),
        "fixed_30s_mel_frames_padded_share": round(1 - tot["audio_frames"] / (tot["samples"] * A.N_FRAMES), 4),
        "mean_clip_seconds": round(tot["audio_frames"] / tot["samples"] / A.FRAMES_PER_SECOND, 2),
        **tot,
    }


def _padding_table(sources: list[SourceSpec], processor: Any, pad_id: int) -> dict[str, Any]:
    bucketed = _padding(sources, processor, pad_id, chunk_batches=16)
    plain = _padding(sources, processor, pad_id, chunk_batches=1)
    return {
        "duration_batching_chunk16": {k: bucketed[k] for k in ("mel_frames_padded_share", "tokens_padded_share")},
        "no_bucketing_chunk1": {k: plain[k] for k in ("mel_frames_padded_share", "tokens_padded_share")},
        # Qwen2-Audio's port: mel always 3000 frames; audio tokens follow the real length (text padding as chunk1)
        "fixed_30s": {
            "mel_frames_padded_share": plain["fixed_30s_mel_frames_padded_share"],
            "tokens_padded_share": plain["tokens_padded_share"],
        },
        "samples": bucketed["samples"],
        "mean_clip_seconds": bucketed["mean_clip_seconds"],
    }


def test_padding_share(record, tmp_path, bench_tokenizer):
    results: dict[str, Any] = {"batches": PAD_BATCHES, "batch_size": BATCH, "distributions": {}}
    for name, (lo, hi) in DISTRIBUTIONS.items():
        sources = _length_only_shards(tmp_path / name, lo, hi)
        results["distributions"][name] = _padding_table(
            sources, LengthOnlyProcessor(bench_tokenizer), bench_tokenizer.eod_id
        )

    if (OFFLINE_CORPUS / "train").is_dir() and (OFFLINE_CORPUS / "tokenizer").is_dir():
        from qwenaudio_train.config import compose
        from qwenaudio_train.tokenizer import load_tokenizer

        cfg = compose("pretrain", [f"data.root={OFFLINE_CORPUS}"])
        tok = load_tokenizer(OFFLINE_CORPUS / "tokenizer")
        sources = [
            SourceSpec(n, expand_shards(s.shards), s.weight) for n, s in cfg.data.sources.items() if s.weight > 0
        ]
        # The length-only processor must agree with the real one on real samples.
        real, fast = SampleProcessor(tok, train=True), LengthOnlyProcessor(tok)
        for src in sources:
            raw = next(iter_shard(src.shards[0]))
            raw["__source__"] = src.name
            meta = SampleMeta.from_json(raw["json"])
            a, b = real(raw, meta), fast(raw, meta)
            assert a.input_ids == b.input_ids and a.mel.shape[1] == b.mel.shape[1], src.name
        table = _padding_table(sources, fast, tok.eod_id)
        by_task = _padding(sources, fast, tok.eod_id, chunk_batches=128, sort_by="task_duration")
        table["task_duration_chunk128"] = {k: by_task[k] for k in ("mel_frames_padded_share", "tokens_padded_share")}
        table["weights"] = {s.name: s.weight for s in sources}
        results["distributions"]["offline_corpus"] = table
    else:
        results["distributions"]["offline_corpus"] = {"skipped": "artifacts/synthetic not built (make data)"}

    off = results["distributions"]["offline_corpus"]
    if "skipped" not in off:
        share = off["duration_batching_chunk16"]
        results["goal"] = {
            "target_share": 0.05,
            "mel_share": share["mel_frames_padded_share"],
            "token_share": share["tokens_padded_share"],
            "met": max(share.values()) < 0.05,
        }
    parts = []
    for name, t in results["distributions"].items():
        if "skipped" in t:
            parts.append(f"{name}: skipped ({t['skipped']})")
            continue
        parts.append(
            f"{name} (mean {t['mean_clip_seconds']} s): mel/token padding chunk16 "
            f"{t['duration_batching_chunk16']['mel_frames_padded_share']:.1%}/"
            f"{t['duration_batching_chunk16']['tokens_padded_share']:.1%}, chunk1 "
            f"{t['no_bucketing_chunk1']['mel_frames_padded_share']:.1%}/"
            f"{t['no_bucketing_chunk1']['tokens_padded_share']:.1%}, fixed 30 s "
            f"{t['fixed_30s']['mel_frames_padded_share']:.1%}/{t['fixed_30s']['tokens_padded_share']:.1%}"
        )
    record("padding_share", results, "; ".join(parts))


# --------------------------------------------------------------------------------------------------------
# 3. Resume cost
# --------------------------------------------------------------------------------------------------------

RESUME_AT = (10, 10_000)
NEIGHBOURS = 16  # states at batches base .. base + 15: their offsets inside shards vary, the step does not


def _trainer_batching() -> BatchingConfig:
    """The batching the trainer uses by default (``configs``' data defaults, as ``Trainer`` builds it): batch 8,
    ``chunk_batches`` 16, so a resume re-reads one chunk of 128 raw samples, as a real resume does."""
    from qwenaudio_train.config import compose

    d = compose("pretrain", [f"data.root={REPO}"]).data
    return BatchingConfig(
        batch_size=d.batch_size, chunk_batches=d.chunk_batches, open_shards=d.open_shards, sort_by=d.sort_by
    )


RESUME_CFG = _trainer_batching()


@pytest.fixture(scope="module")
def short_clip_sources(tmp_path_factory) -> list[SourceSpec]:
    """Two sources of 1-s clips: 'a' 4 shards x 25, 'b' 2 shards x 25 (many epochs pass in 10,000 batches)."""
    root = tmp_path_factory.mktemp("shards_1s")
    specs = []
    for name, n, weight in (("a", 100, 2.0), ("b", 50, 1.0)):
        samples = (
            (f"{name}{i:04d}", A.encode_flac(tone_clip(1.0, i)), sec_meta(i, 1.0, f"bench/{name}")) for i in range(n)
        )
        write_shards(samples, root / name, max_count=25)
        specs.append(SourceSpec(name, expand_shards(str(root / name)), weight))
    return specs


def _null_processor(raw: dict[str, Any], meta: SampleMeta, aug_seed: int = 0) -> Example:
    return Example(
        key=raw["__key__"],
        source=raw["__source__"],
        task=meta.task,
        input_ids=[0],
        labels=[0],
        mel=torch.zeros(1, 1),
        duration=meta.duration,
    )


def _time_resumes(
    sources: list[SourceSpec], tok: Any, wanted: set[int], rounds: int
) -> tuple[dict[int, Any], dict[str, list[float]], float]:
    """Run the stream past max(wanted) without decoding (the state does not depend on the processor's output),
    keeping the states after each batch in `wanted`; then time resuming from each, interleaved. Asserts that each
    resumed stream continues with the batch that followed. Returns (states, timings by state, forward seconds)."""
    t0 = time.perf_counter()
    stream = BatchStream(sources, _null_processor, tok.eod_id, RESUME_CFG, seed=0)
    states, expect = {}, {}
    for k in range(1, max(wanted) + 2):
        b = next(stream)
        if k - 1 in states:
            expect[k - 1] = b["keys"]
        if k in wanted:
            states[k] = b["data_state"]
    forward_s = time.perf_counter() - t0
    processor = SampleProcessor(tok, train=True, spec_augment=True)
    drawn: dict[int, list[str]] = {}

    def resume(k: int) -> None:
        s = BatchStream(sources, processor, tok.eod_id, RESUME_CFG, seed=0, state=states[k])
        drawn[k] = next(s)["keys"]

    with threads(1):
        t = interleaved(
            {str(k): (lambda k=k: resume(k)) for k in sorted(states)}, rounds=rounds, per_round=1, budget_s=8.0
        )
    assert all(drawn[k] == expect[k] for k in states)  # each resumed stream continues where it stopped
    return states, t, forward_s


def test_resume_cost(record, short_clip_sources, bench_tokenizer):
    tok = bench_tokenizer
    assert RESUME_CFG.batch_size * RESUME_CFG.chunk_batches == 128  # the default re-read, not a toy chunk
    # Run the stream forward past batch 10,000 without decoding (the state does not depend on the processor's
    # output); keep the states after batches 10..25 and 10,000..10,015 and the keys of the batch that follows
    # each (what a resumed stream must produce).
    wanted = {k for base in RESUME_AT for k in range(base, base + NEIGHBOURS)}
    states, t, forward_s = _time_resumes(short_clip_sources, tok, wanted, rounds=8)
    per_state = {int(k): float(np.median(v)) * 1e3 for k, v in t.items()}
    # Resuming skips the headers of the samples before each open shard's offset: the cost depends on where the
    # stream stands inside its shards (bounded by one shard), not on the step. Early in epoch 0 the offsets are
    # smaller (the first shards opened at batch 0), so compare at equal offsets: least squares of
    # ms = a + b * skipped samples + c * [late group]; c is what the step itself costs.
    offsets = {
        k: sum(off for src in st["chunk_start"]["sources"].values() for _, off in src["open"])
        for k, st in states.items()
    }
    ks = sorted(states)
    design = np.array([[1.0, offsets[k], float(k >= RESUME_AT[-1])] for k in ks])
    (intercept, slope, step_effect), *_ = np.linalg.lstsq(design, np.array([per_state[k] for k in ks]), rcond=None)
    mean_off = float(np.mean(list(offsets.values())))
    ratio_equal_offsets = (intercept + slope * mean_off + step_effect) / (intercept + slope * mean_off)
    groups = {}
    for base in RESUME_AT:
        group = [k for k in ks if base <= k < base + NEIGHBOURS]
        groups[str(base)] = {
            "batches": [group[0], group[-1]],
            "median_ms_over_states": round(float(np.median([per_state[k] for k in group])), 3),
            "mean_skipped_samples": round(float(np.mean([offsets[k] for k in group])), 1),
            "ms_at_exact_batch": round(per_state[base], 3),
            "skipped_samples_at_exact_batch": offsets[base],
            "source_epochs": {n: src["epoch"] for n, src in states[base]["chunk_start"]["sources"].items()},
            "state_json_bytes": len(json.dumps(states[base])),
        }
    lo, hi = (groups[str(b)]["median_ms_over_states"] for b in RESUME_AT)
    ratio = hi / lo
    results = {
        "batch_size": RESUME_CFG.batch_size,
        "chunk_batches": RESUME_CFG.chunk_batches,
        "samples_reread_per_resume": RESUME_CFG.batch_size * RESUME_CFG.chunk_batches,
        "shard_samples": 25,
        "main_threads": 1,
        "states_per_group": NEIGHBOURS,
        "resume_then_next_batch": groups,
        "ratio_10000_over_10": round(ratio, 3),
        "fit": {
            "intercept_ms": round(float(intercept), 3),
            "ms_per_skipped_sample": round(float(slope), 4),
            "step_10000_effect_ms": round(float(step_effect), 3),
            "ratio_10000_over_10_at_equal_offsets": round(float(ratio_equal_offsets), 3),
        },
        "forward_to_10000_s_without_decoding": round(forward_s, 2),
        "resumed_batches_match": True,
        "goal": {
            "target": "same cost at batch 10 and 10,000 (at equal offsets inside shards)",
            "met": bool(ratio_equal_offsets < 1.1),
        },
    }
    record(
        "resume_cost",
        results,
        f"resume + next batch, median over batches 10-{9 + NEIGHBOURS}: {lo:.2f} ms, over "
        f"10,000-{9999 + NEIGHBOURS}: {hi:.2f} ms (ratio {ratio:.2f}; {ratio_equal_offsets:.2f} at equal "
        f"offsets); fit: {intercept:.1f} ms + {slope:.3f} ms per sample skipped inside open shards + "
        f"{step_effect:.2f} ms at step 10,000; replaying 10,000 batches without decoding took {forward_s:.1f} s",
    )


MANY_SHARDS = 10_000
RESUME_AT_MANY = (10, 6_000)  # 6,000 batches x 8 = 48,000 samples: past the first epoch of 10^4 shards x 4


@pytest.fixture(scope="module")
def many_shard_sources(tmp_path_factory) -> list[SourceSpec]:
    """One source of 10^4 tiny shards (4 clips of 0.2 s each), written directly with tarfile (fast)."""
    import io
    import tarfile

    root = tmp_path_factory.mktemp("shards_10k")
    flac = A.encode_flac(tone_clip(0.2, 0))

    def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    for s in range(MANY_SHARDS):
        with tarfile.open(root / f"shard-{s:06d}.tar", "w") as tf:
            for j in range(4):
                key = f"m{s:06d}_{j}"
                add(tf, f"{key}.flac", flac)
                add(tf, f"{key}.json", sec_meta(s * 4 + j, 0.2, "bench/many").to_json())
    return [SourceSpec("many", expand_shards(str(root)), 1.0)]


def test_resume_cost_at_10k_shards(record, many_shard_sources, bench_tokenizer):
    """The resume state and its cost do not grow with the number of shards or the position in the shard list: the
    state holds the epoch and an index into the epoch's shard order (recomputed from the seed), not a shard list."""
    tok = bench_tokenizer
    wanted = {k for base in RESUME_AT_MANY for k in range(base, base + 8)}
    states, t, forward_s = _time_resumes(many_shard_sources, tok, wanted, rounds=6)
    groups = {}
    for base in RESUME_AT_MANY:
        group = [k for k in sorted(states) if base <= k < base + 8]
        src = states[base]["chunk_start"]["sources"]["many"]
        groups[str(base)] = {
            "median_ms_over_states": round(float(np.median([np.median(t[str(k)]) * 1e3 for k in group])), 3),
            "epoch": src["epoch"],
            "next_shard": src["next_shard"],
            "state_json_bytes": len(json.dumps(states[base])),
        }
    lo, hi = (groups[str(b)]["median_ms_over_states"] for b in RESUME_AT_MANY)
    results = {
        "shards": MANY_SHARDS,
        "samples_per_shard": 4,
        "samples_reread_per_resume": RESUME_CFG.batch_size * RESUME_CFG.chunk_batches,
        "resume_then_next_batch": groups,
        "ratio_late_over_10": round(hi / lo, 3),
        "forward_without_decoding_s": round(forward_s, 2),
        "resumed_batches_match": True,
        "goal": {"target": "the same cost at batch 10 and 6,000 with 10^4 shards", "met": bool(hi / lo < 1.25)},
    }
    record(
        "resume_cost_10k_shards",
        results,
        f"10^4 shards: resume + next batch {lo:.2f} ms at batch 10, {hi:.2f} ms at batch 6,000 (epoch "
        f"{groups['6000']['epoch']}, shard {groups['6000']['next_shard']} of the epoch; ratio {hi / lo:.2f}; state "
        f"{groups['6000']['state_json_bytes']} bytes)",
    )
