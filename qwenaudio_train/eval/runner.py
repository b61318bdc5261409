"""One evaluation runner for every task: load a model, generate with the release's prompts, score, report.

Flow: shards of a split (or a release eval ``.jsonl``, read directly by ``release_jsonl``) -> this rank's
samples -> eval prompts from the task registry (``tasks.eval_prefix``)
-> batches by duration, left-padded with ``<|endoftext|>`` -> greedy generation -> decode up to
``<|endoftext|>`` -> gather on rank 0 -> one scorer per metric family (``scorers.py``) per group
(task, and language for ASR-like tasks) -> ``eval.json`` (scores + every prediction) and ``eval.md``, both
written by ``report.py`` (the code ``qwenaudio-score`` uses for any model's predictions).
Rank 0 prints progress to stderr while it generates (samples done / total of its share, elapsed, rate).
Must not: contain per-task copies of this flow (the release's eval_audio/ scripts did), score (``scorers.py``) or
format reports (``report.py``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from qwenaudio_train.data.processing import Example, SampleProcessor, collate, parse_meta
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.data.stream import expand_shards, iter_split
from qwenaudio_train.eval.release_jsonl import ReleaseEvalSet, release_jsonl_files
from qwenaudio_train.eval.report import (  # noqa: F401 - the report's names, importable from the runner as before
    RELEASE_HEADLINES,
    draw_panel,
    group_name,
    is_better,
    markdown_table,
    plot_results,
    release_headline,
    score_records,
    write_report,
)


@dataclass
class EvalConfig:
    batch_size: int = 16
    max_new_tokens: int = 96
    max_samples: int = 0  # per split, 0 = all
    progress_every: int = 10  # batches between two progress lines on rank 0 (0: none)
    audio_root: str | None = None  # release eval .jsonl: the folder its audio paths must stay under (default: its own)
    release_compat: bool = False  # the release's front-end and encoder edge (eval.yaml audio.release_compat)


def progress_line(done: int, total: int, seconds: float, rank: int = 0, world: int = 1) -> str:
    """``eval: 160/512 samples (31%), 42 s, 3.8 samples/s, ~93 s left`` (of this rank's share when world > 1)."""
    share = f" on rank {rank} of {world}" if world > 1 else ""
    rate = done / seconds if seconds > 0 else 0.0
    left = f", ~{(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
    pct = 100 * done // total if total else 100
    return f"eval: {done}/{total} samples{share} ({pct}%), {seconds:.0f} s, {rate:.1f} samples/s{left}"


def _say(line: str) -> None:
    # tqdm.write keeps a live progress bar (the trainer's, during periodic eval) intact under the line.
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def split_samples(
    split: str | list[str], rank: int = 0, world: int = 1, audio_root: str | None = None
) -> Iterator[dict[str, Any]]:
    """This rank's raw samples of a split (``{"__key__", "__url__", "flac", "json"}``): a shard spec through
    ``iter_split``, release eval ``.jsonl`` files straight from their audio (no shards written). Errors of the
    spec (no shards, a missing jsonl, a bad line) are raised here, before any sample is read."""
    jsonl = release_jsonl_files(split)
    if jsonl is not None:
        return ReleaseEvalSet(jsonl, root=audio_root).samples(rank, world)
    return iter_split(expand_shards(split), rank, world)


@torch.no_grad()
def generate_predictions(
    model: Any,
    tokenizer: Any,
    split: str | list[str],
    cfg: EvalConfig,
    n_mels: int,
    rank: int = 0,
    world: int = 1,
    device: torch.device | None = None,
) -> list[dict[str, Any]]:
    """Predictions for this rank's share of the split, one dict per sample."""
    device = device or torch.device("cpu")
    show = rank == 0 and cfg.progress_every > 0
    t0 = time.perf_counter()
    processor = SampleProcessor(tokenizer, n_mels=n_mels, train=False, release_compat=cfg.release_compat)
    examples: list[Example] = []
    for i, raw in enumerate(split_samples(split, rank, world, cfg.audio_root)):
        if cfg.max_samples and i >= math.ceil(cfg.max_samples / world):
            break
        try:
            examples.append(processor(raw, parse_meta(raw)))
        except SampleError as e:  # a bad eval sample is reported, not fatal
            print(f"eval: skipping {raw.get('__key__')}: {e}")
    examples.sort(key=lambda e: e.duration)  # similar lengths share a batch: little padding
    if show:
        share = f" (rank {rank} of {world})" if world > 1 else ""
        _say(f"eval: {len(examples)} samples read in {time.perf_counter() - t0:.0f} s{share}; generating")
    model.eval()
    model.audio.release_compat = cfg.release_compat  # the encoder edge matching the processor's front-end
    out: list[dict[str, Any]] = []
    stop_ids = [tokenizer.eod_id, tokenizer.im_end_id]
    t_gen = time.perf_counter()
    for b, start in enumerate(range(0, len(examples), cfg.batch_size)):
        chunk = examples[start : start + cfg.batch_size]
        batch = collate(chunk, tokenizer.eod_id, left_pad=True)
        new = model.generate(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            audio_features=batch["audio_features"].to(device),
            audio_lengths=batch["audio_lengths"].to(device),
            max_new_tokens=cfg.max_new_tokens,
            eos_token_id=stop_ids,
        )
        for ex, ids in zip(chunk, new.tolist()):
            ids = ids[: ids.index(tokenizer.eod_id)] if tokenizer.eod_id in ids else ids
            ids = ids[: ids.index(tokenizer.im_end_id)] if tokenizer.im_end_id in ids else ids
            record = {
                "key": ex.key,
                "task": ex.task,
                "source": ex.meta["source"],
                "lang": ex.meta["text_language"],
                "prediction": tokenizer.decode(ids),
                "reference": ex.reference,
            }
            if ex.meta.get("captions"):  # all reference captions (Clotho has five): CIDEr uses every one
                record["references"] = list(ex.meta["captions"])
            out.append(record)
        if show and ((b + 1) % cfg.progress_every == 0 or len(out) == len(examples)):
            _say(progress_line(len(out), len(examples), time.perf_counter() - t_gen, rank, world))
    return out


def gather(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return records
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, records)
    return [r for p in parts for r in p]


def evaluate_model(
    model: Any,
    tokenizer: Any,
    split: str | list[str],
    cfg: EvalConfig,
    n_mels: int,
    rank: int = 0,
    world: int = 1,
    device: torch.device | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    t0 = time.perf_counter()
    records = gather(generate_predictions(model, tokenizer, split, cfg, n_mels, rank, world, device))
    results = score_records(records) if rank == 0 else {}
    if rank == 0:
        for r in results.values():
            r["seconds"] = time.perf_counter() - t0
    return records, results
