"""Rendering (in worker processes) and the corpus: every job rendered to (key, FLAC, metadata), written as
shard sets in the layout of the package docstring, with the top-level manifest, text.txt and the CLI.

Owns: the output layout, the order in which samples are written, sharding, the manifest and the summary.
Must not: draw content (the planners do) or know about tokenizers, models or training (the task formatters are
used only to write text.txt).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from data_recipes.synthetic.plan import _RENDER, RENDERERS, Job, _rng, plan_full_split, plan_split
from data_recipes.synthetic.presets import (
    ASR_LANGUAGES,
    FULL_TASKS,
    LONG_TASKS,
    NEW_TASKS,
    PRESETS,
    SPLITS,
    SR,
    TASKS,
    Sizes,
)
from data_recipes.synthetic.speech import _speech
from data_recipes.synthetic.tasks_long import LONG_RENDERERS, plan_long_split
from data_recipes.synthetic.text import GRAMMARS
from qwenaudio_train.audio import encode_flac
from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.data.shards import write_shards

# --help's description: the first line of the package docstring.
DESCRIPTION = "The offline multi-task corpus: synthetic speech (espeak-ng), sound events, notes and music (numpy)."


def render(job: Job) -> tuple[str, bytes, SampleMeta]:
    """One sample: (key, 16 kHz FLAC bytes, metadata). A pure function of the job."""
    if job.task in LONG_RENDERERS:  # long_asr, long_srwt: their own seed streams (tasks_long)
        wav, meta = LONG_RENDERERS[job.task](job)
    else:
        rng = _rng(job.seed, _RENDER, job.split, job.task, job.index)
        make = RENDERERS.get(job.task, _speech)  # asr, srwt, lid: _speech
        wav, meta = make(job, rng)
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
    meta.duration = len(wav) / SR
    return job.key, encode_flac(wav, SR), meta


def _shuffled(jobs: list[Job], seed: int, split: str) -> list[Job]:
    order = np.random.default_rng([seed, 3, SPLITS.index(split)]).permutation(len(jobs))
    return [jobs[i] for i in order]


def _render_all(jobs: list[Job], pool: ProcessPoolExecutor | None) -> Iterator[tuple[str, bytes, SampleMeta]]:
    return pool.map(render, jobs, chunksize=8) if pool is not None else map(render, jobs)


def build_corpus(
    out_dir: str | os.PathLike[str],
    sizes: Sizes,
    seed: int = 0,
    workers: int | None = None,
    asr_languages: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
    tasks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build the corpus under `out_dir` (layout in the module docstring); returns the top-level manifest.
    `tasks` and `asr_languages` default to the preset's (`sizes.tasks`, `sizes.asr_languages`)."""
    started = time.perf_counter()
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    asr_languages = tuple(sizes.asr_languages if asr_languages is None else asr_languages)
    tasks = tuple(sizes.tasks if tasks is None else tasks)
    unknown = [t for t in tasks if t not in FULL_TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(FULL_TASKS)}")
    # The first five tasks are planned exactly as in the tiny and demo presets; the others after them, with the
    # sentences of the first five kept in their splits (`legacy`), so no split leaks into another.
    taken: set[tuple[str, str]] = set()
    legacy: dict[tuple[str, str], str] = {}
    plans: dict[str, list[Job]] = {}
    for split in SPLITS:
        before = set(taken)
        plans[split] = plan_split(split, sizes.of(split), seed, taken, asr_languages, tasks)
        legacy.update((s, split) for s in taken - before)
    for split in SPLITS:
        plans[split] += plan_full_split(split, sizes.of(split), seed, legacy, [t for t in NEW_TASKS if t in tasks])
    # Long-form speech last, into shard sets of their own and out of text.txt: nothing else moves (tasks_long).
    long_plans = {
        s: plan_long_split(s, sizes.long_of(s), seed, legacy, sizes.long_seconds, asr_languages) for s in SPLITS
    }
    manifests: dict[str, dict[str, Any]] = {}
    targets: list[str] = []

    def tee(samples: Iterator[tuple[str, bytes, SampleMeta]]) -> Iterator[tuple[str, bytes, SampleMeta]]:
        for s in samples:
            targets.append(target_text(s[2]))
            yield s

    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for split in SPLITS:
            jobs = plans[split]
            if split == "train":  # one shard set per task: the mixture's sources
                results = _render_all(jobs, pool)
                for task, group in itertools.groupby(results, key=lambda s: s[2].task):
                    shard_size = max(1, math.ceil(sizes.train / 4))  # >= 4 shards: 2 ranks x 2 workers own whole shards
                    manifests[f"train/{task}"] = write_shards(
                        tee(group), os.path.join(out, "train", task), max_count=shard_size
                    )
            else:
                shard_size = max(1, math.ceil(len(jobs) / 2))
                manifests[split] = write_shards(
                    tee(_render_all(_shuffled(jobs, seed, split), pool)), os.path.join(out, split), max_count=shard_size
                )
            log(f"{split}: {len(jobs)} samples written ({time.perf_counter() - started:.1f} s)")
        for split, jobs in long_plans.items():
            if not jobs:
                continue
            if split == "train":
                for task in LONG_TASKS:
                    mine = [j for j in jobs if j.task == task]
                    path = os.path.join(out, "train", task)
                    manifests[f"train/{task}"] = write_shards(_render_all(mine, pool), path, max_count=4)
            else:
                path = os.path.join(out, f"{split}_long")
                manifests[f"{split}_long"] = write_shards(
                    _render_all(_shuffled(jobs, seed, split), pool), path, max_count=4
                )
            log(f"{split} (long): {len(jobs)} samples written ({time.perf_counter() - started:.1f} s)")
    finally:
        if pool is not None:
            pool.shutdown()

    with open(os.path.join(out, "text.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in targets)
    manifest = {  # no timings or paths of this machine: the file is as reproducible as the shards
        "name": "synthetic",
        "seed": seed,
        "sizes": {s: sizes.of(s) for s in SPLITS},
        "asr_languages": list(asr_languages),
        "shard_sets": {name: f"{name}/manifest.json" for name in manifests},
        "splits": _summarise(manifests),
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log(format_summary(manifest, time.perf_counter() - started))
    return manifest


def target_text(meta: SampleMeta) -> str:
    """The words of a sample for the tokenizer (a line of text.txt): the target, and for ``mna`` also the sonic
    qualities that the tagged target carries. For the tasks of the full preset: the formatted target with its
    special tokens removed ("gender: female", "speaker 1 speaker 2", "set an alarm for seven am"...), after the
    question for AQA / MQA (the question is text of the prompt)."""
    if meta.task in TASKS:
        if meta.task == "mna" and meta.meta.get("sonic"):
            return f"{meta.target} {', '.join(meta.meta['sonic'])}"
        return meta.target.replace("\n", " ")
    from qwenaudio_train.tasks import get_task  # noqa: PLC0415 (only the full preset needs the formatters)

    text = re.sub(r"<\|[^|<>]*\|>", " ", get_task(meta.task).format_target(meta))
    if "question" in meta.meta:
        text = f"{meta.meta['question']} {text}"
    return " ".join(text.split())


def _summarise(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per split: {task: {language: {samples, hours}}} merged over the split's shard sets (the long tasks' under
    "<split>_long", so the other splits' totals are those of their own shard sets)."""
    out: dict[str, Any] = {}
    for name, m in manifests.items():
        split = name.split("/")[0] if not name.startswith("train/long_") else "train_long"
        for task, langs in sorted(m["task_languages"].items(), key=lambda kv: _task_order(kv[0])):
            for lang, b in langs.items():
                slot = out.setdefault(split, {}).setdefault(task, {}).setdefault(lang, {"samples": 0, "hours": 0.0})
                slot["samples"] += b["samples"]
                slot["hours"] = round(slot["hours"] + b["hours"], 6)
    return out


def _task_order(task: str) -> int:
    return FULL_TASKS.index(task) if task in FULL_TASKS else len(FULL_TASKS)


def format_summary(manifest: dict[str, Any], seconds: float | None = None) -> str:
    took = f", built in {seconds:.1f} s" if seconds is not None else ""
    lines = [f"synthetic corpus, seed {manifest['seed']}{took}"]
    for split, tasks in manifest["splits"].items():
        n = sum(b["samples"] for langs in tasks.values() for b in langs.values())
        h = sum(b["hours"] for langs in tasks.values() for b in langs.values())
        lines.append(f"{split}: {n} samples, {h:.3f} h")
        for task, langs in tasks.items():
            tn = sum(b["samples"] for b in langs.values())
            th = sum(b["hours"] for b in langs.values())
            per = "  ".join(f"{lang} {b['samples']}/{b['hours'] * 60:.1f}m" for lang, b in sorted(langs.items()))
            lines.append(f"  {task:<5} {tn:>5} samples {th:7.3f} h   [{per}]")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_recipes.synthetic", description=DESCRIPTION)
    p.add_argument("--out", required=True, help="output directory (its shard sets are replaced)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="sizes per task (default: demo)")
    p.add_argument("--seed", type=int, default=0)
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=None, help=f"{split} samples per task (overrides the preset)")
    p.add_argument(
        "--long",
        default=None,
        help="long-form samples per long task (long_asr, long_srwt) as TRAIN,VALID,TEST (default: the preset's; "
        "0,0,0 when --train, --valid or --test is given)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: min(2, cpu count))")
    p.add_argument(
        "--asr-languages",
        default=None,
        help=f"comma-separated ASR languages from {','.join(GRAMMARS)} (default: the preset's; "
        f"{','.join(ASR_LANGUAGES)} for tiny and demo)",
    )
    p.add_argument(
        "--tasks", default=None, help=f"comma-separated tasks from {','.join(FULL_TASKS)} (default: the preset's)"
    )
    a = p.parse_args(argv)
    preset = PRESETS[a.preset]
    resized = any(getattr(a, s) is not None for s in SPLITS)
    try:
        long = preset.long if a.long is None and not resized else tuple(int(x) for x in (a.long or "0,0,0").split(","))
    except ValueError:
        long = ()
    if len(long) != 3 or min(long) < 0:
        p.error(f"--long {a.long!r}: give three sample counts >= 0, TRAIN,VALID,TEST (e.g. 16,4,4)")
    sizes = Sizes(
        *(getattr(a, s) if getattr(a, s) is not None else preset.of(s) for s in SPLITS),
        tasks=preset.tasks,
        asr_languages=preset.asr_languages,
        long=(long[0], long[1], long[2]),
        long_seconds=preset.long_seconds,
    )
    langs = sizes.asr_languages if a.asr_languages is None else tuple(x for x in a.asr_languages.split(",") if x)
    bad = [x for x in langs if x not in GRAMMARS]
    if bad or not langs:
        p.error(f"--asr-languages: {bad or 'none given'}; choose from {','.join(GRAMMARS)}")
    tasks = sizes.tasks if a.tasks is None else tuple(x for x in a.tasks.split(",") if x)
    bad = [x for x in tasks if x not in FULL_TASKS]
    if bad or not tasks:
        p.error(f"--tasks: {bad or 'none given'}; choose from {','.join(FULL_TASKS)}")
    if min(sizes.train, sizes.valid, sizes.test) < 0:
        p.error("sizes must be >= 0")
    build_corpus(a.out, sizes, a.seed, a.workers, langs, tasks=tasks)
    return 0
