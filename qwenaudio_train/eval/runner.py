"""One evaluation runner for every task: load a model, generate with the release's prompts, score, report.

Flow: shards of a split (or a release eval ``.jsonl``, read directly by ``release_jsonl``) -> this rank's
samples -> eval prompts from the task registry (``tasks.eval_prefix``)
-> batches by duration, left-padded with ``<|endoftext|>`` -> greedy generation -> decode up to
``<|endoftext|>`` -> gather on rank 0 -> one scorer per metric family (``scorers.py``) per group
(task, and language for ASR-like tasks) -> ``eval.json`` (scores + every prediction) and ``eval.md``.
Rank 0 prints progress to stderr while it generates (samples done / total of its share, elapsed, rate).
Must not: contain per-task copies of this flow (the release's eval_audio/ scripts did), or score (``scorers.py``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from qwenaudio_train.data.processing import Example, SampleProcessor, collate, parse_meta
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.data.stream import expand_shards, iter_split
from qwenaudio_train.eval.release_jsonl import ReleaseEvalSet, release_jsonl_files
from qwenaudio_train.eval.scorers import HEADLINE, HIGHER_IS_BETTER, RELEASE_KEY, score
from qwenaudio_train.tasks import get_task

LANGUAGE_GROUPED_METRICS = ("wer", "srwt", "bleu")

# The release's headline results (facts §4), matched against a sample's `source` (lower case, `_` and `-` alike),
# each under the key of the release's own definition (``RELEASE_KEY``), never a cleaned or normalised variant.
# Values are in the scorers' units: WER as a fraction, BLEU in points, AAS in ms.
RELEASE_HEADLINES: tuple[tuple[str, str, float], ...] = (
    (r"librispeech.*dev.clean", "wer", 0.018),
    (r"librispeech.*dev.other", "wer", 0.040),
    (r"librispeech.*test.clean", "wer", 0.020),
    (r"librispeech.*test.other", "wer", 0.042),
    (r"aishell.?1.*dev|aishell.*dev", "wer", 0.012),
    (r"aishell.?1.*test|aishell.*test", "wer", 0.013),
    (r"covost2.*en.de", "bleu score", 25.1),
    (r"covost2.*de.en", "bleu score", 33.9),
    (r"covost2.*en.zh", "bleu score", 41.5),
    (r"covost2.*zh.en", "bleu score", 15.7),
    (r"covost2.*es.en", "bleu score", 39.7),
    (r"covost2.*fr.en", "bleu score", 38.5),
    (r"covost2.*it.en", "bleu score", 36.0),
    (r"cochlscene", "accuracy_release", 0.795),
    (r"tut2017", "accuracy_release", 0.649),
    (r"meld", "accuracy_release", 0.557),
    (r"clothoaqa|clotho_aqa", "accuracy_release", 0.579),
    (r"clothoaqa|clotho_aqa", "yes_no_accuracy_release", 0.749),
    (r"vocalsound", "accuracy_release", 0.9289),
    (r"nsynth", "instrument_accuracy_release", 0.7882),
    (r"nsynth", "sonic_map_release", 0.4742),
    (r"clotho(?!.?aqa)", "cider", 0.441),
    (r"clotho(?!.?aqa)", "spice", 0.136),
    (r"clotho(?!.?aqa)", "spider", 0.288),
)


def release_headline(source: str, key: str) -> float | None:
    import re

    s = source.lower()
    for pattern, metric_key, value in RELEASE_HEADLINES:
        if metric_key == key and re.search(pattern, s):
            return value
    return None


@dataclass
class EvalConfig:
    batch_size: int = 16
    max_new_tokens: int = 96
    max_samples: int = 0  # per split, 0 = all
    progress_every: int = 10  # batches between two progress lines on rank 0 (0: none)


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


def group_name(task: str, metric: str, lang: str | None) -> str:
    return f"{task}/{lang}" if metric in LANGUAGE_GROUPED_METRICS and lang else task


def split_samples(split: str | list[str], rank: int = 0, world: int = 1) -> Iterator[dict[str, Any]]:
    """This rank's raw samples of a split (``{"__key__", "__url__", "flac", "json"}``): a shard spec through
    ``iter_split``, release eval ``.jsonl`` files straight from their audio (no shards written). Errors of the
    spec (no shards, a missing jsonl, a bad line) are raised here, before any sample is read."""
    jsonl = release_jsonl_files(split)
    if jsonl is not None:
        return ReleaseEvalSet(jsonl).samples(rank, world)
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
    processor = SampleProcessor(tokenizer, n_mels=n_mels, train=False)
    examples: list[Example] = []
    for i, raw in enumerate(split_samples(split, rank, world)):
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


def score_records(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Scores per group: ``{"asr/en": {"metric": "wer", "headline": "wer", "wer": ..., "n": ...}, ...}``.

    Groups are task (and language for ASR-like tasks); samples of a source with a release headline are also
    scored as their own group ``<task>@<source>`` (the release groups by source), whose headline is the
    release's own definition (``RELEASE_KEY``) with the release's value as ``release``."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        task = get_task(r["task"])
        groups[group_name(r["task"], task.metric, r["lang"])].append(r)
        if release_headline(r["source"], RELEASE_KEY.get(task.metric, "")) is not None:
            groups[f"{r['task']}@{r['source']}"].append(r)
    results: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        rs = groups[name]
        metric = get_task(rs[0]["task"]).metric
        kw: dict[str, Any] = {"lang": rs[0]["lang"]} if metric in LANGUAGE_GROUPED_METRICS else {}
        if metric == "caption":
            kw["references_multi"] = [r.get("references") or [r["reference"]] for r in rs]
        s = score(metric, [r["prediction"] for r in rs], [r["reference"] for r in rs], **kw)
        results[name] = {
            **{k: v for k, v in dict(s).items() if isinstance(v, (int, float, str))},
            "metric": metric,
            "headline": HEADLINE[metric],
            "higher_is_better": HIGHER_IS_BETTER[metric],
            "n": len(rs),
        }
        if "@" in name:
            results[name]["headline"] = RELEASE_KEY[metric]
            results[name]["release"] = release_headline(rs[0]["source"], RELEASE_KEY[metric])
    return results


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(
    results: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]] | None = None, title: str = ""
) -> str:
    lines = [f"### {title}", ""] if title else []
    with_release = any("release" in r for r in results.values())
    head = (
        "| task | n | metric | score |"
        + (" untrained | better |" if baseline else "")
        + (" release |" if with_release else "")
    )
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        key = r["headline"]
        row = f"| {name} | {r['n']} | {key} ({'higher' if r['higher_is_better'] else 'lower'} is better) | {_fmt(r.get(key))} |"
        if baseline:
            b = baseline.get(name, {}).get(key, float("nan"))
            row += f" {_fmt(b)} | {'yes' if is_better(r.get(key), b, r['higher_is_better']) else 'NO'} |"
        if with_release:
            row += f" {_fmt(r['release']) if r.get('release') is not None else ''} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def is_better(value: Any, baseline: Any, higher_is_better: bool) -> bool:
    """Strictly better; a missing/nan score is the worst possible."""
    worst = -math.inf if higher_is_better else math.inf
    v = worst if value is None or (isinstance(value, float) and math.isnan(value)) else value
    b = worst if baseline is None or (isinstance(baseline, float) and math.isnan(baseline)) else baseline
    return v > b if higher_is_better else v < b


def write_report(
    out_dir: Path,
    records: list[dict[str, Any]],
    results: dict[str, Any],
    baseline: dict[str, Any] | None,
    meta: dict[str, Any],
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "eval.json"
    js.write_text(
        json.dumps(
            {"meta": meta, "results": results, "baseline": baseline, "predictions": records},
            indent=2,
            ensure_ascii=False,
            default=float,
        )
    )
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:  # the release writes one result file per source
        by_source[r["source"]].append(r)
    src_dir = out_dir / "by_source"
    src_dir.mkdir(exist_ok=True)
    for source, rs in by_source.items():
        (src_dir / (source.replace("/", "__") + ".json")).write_text(json.dumps(rs, indent=1, ensure_ascii=False))
    plot = plot_results(results, baseline, out_dir / "eval.png")
    md = out_dir / "eval.md"
    md.write_text(
        f"# Evaluation of {meta.get('checkpoint')}\n\nsplit: {meta.get('split')}, "
        f"{meta.get('samples')} samples, {meta.get('seconds', 0):.0f} s\n\n"
        + markdown_table(results, baseline)
        + (f"\n![scores]({plot.name})\n" if plot else "")
    )
    return js, md


def _missing(v: Any) -> bool:
    return not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v))


def draw_panel(ax: Any, name: str, result: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """One group's bars: ours, the untrained baseline and the release's number where there is one.

    A missing or nan score is drawn as a hatched, unfilled bar up to the panel's top marked "n/a": a bar of
    height 0 would read as the best possible result for a lower-is-better metric (WER 0, DER 0).
    """
    key = result["headline"]
    bars: dict[str, Any] = {"ours": result.get(key)}
    if baseline is not None:
        bars["untrained"] = baseline.get(key)
    if result.get("release") is not None:
        bars["release"] = result["release"]
    colors = dict(zip(("ours", "untrained", "release"), ("tab:blue", "tab:gray", "tab:green")))
    finite = [float(v) for v in bars.values() if not _missing(v)]
    top = max([*finite, 0.0]) * 1.1 or 1.0
    for x, (label, v) in enumerate(bars.items()):
        if _missing(v):
            ax.bar(x, top, fill=False, hatch="//", edgecolor="0.6", linewidth=0.8)
            ax.text(x, top / 2, "n/a", ha="center", va="center", fontsize=8, color="0.3")
        else:
            ax.bar(x, float(v), color=colors[label])
            ax.text(x, float(v), f"{float(v):.3g}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(bars)), list(bars))
    ax.set_ylim(min([*finite, 0.0]), top)
    ax.set_title(f"{name}\n{key} ({'higher' if result['higher_is_better'] else 'lower'} better)", fontsize=8)
    ax.tick_params(labelsize=7)


def plot_results(results: dict[str, Any], baseline: dict[str, Any] | None, path: Path) -> Path | None:
    """One panel per group (``draw_panel``): ours, the untrained baseline and the release's number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(2.2 * len(names) + 1, 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        draw_panel(ax, name, results[name], baseline.get(name) if baseline and name in baseline else None)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
