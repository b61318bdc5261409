"""Scores and reports from prediction records: grouping, the release's published figures beside the release's
own definitions, 95% bootstrap intervals, ``eval.json`` / ``eval.md`` / the plot. Used by the runner
(``qwenaudio-eval``) and by ``qwenaudio-score`` (any model's predictions), so both write the same files.

A record is ``{"task", "source", "lang", "prediction", "reference"}`` (+ ``"references"``: every reference
caption; + ``"metric"`` to override the task's metric; + ``"key"``). Modes: ``release`` scores ASR-like WER as
the release does; ``normalized`` with Qwen2-Audio's normalisers (Whisper English normaliser, basic otherwise);
``both`` reports the release's under its keys and the normalised ones with a ``_normalized`` suffix. Only the
release's own definition (``scorers.RELEASE_KEY``) ever stands beside a published figure.

Must not: run models or read audio (``runner.py``), hold metric arithmetic (the scorer modules), import torch.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from qwenaudio_train.eval.bootstrap import bootstrap_ci
from qwenaudio_train.eval.common import ScorerDependencyError
from qwenaudio_train.eval.scorers import HEADLINE, HIGHER_IS_BETTER, RELEASE_KEY, score
from qwenaudio_train.tasks import get_task

SCORE_MODES = ("release", "normalized", "both")
# Names the release's scripts print, for the families whose scorer module does not already store them: the
# caption script prints pycocoevalcap's method names.
PRINTED_NAMES: dict[str, dict[str, str]] = {"caption": {"CIDEr": "cider", "SPICE": "spice", "SPIDEr": "spider"}}
NORMALIZED_METRICS = ("wer",)  # the families whose text normalisation the mode changes

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
    """The release's published value of ``key`` for a source name, or None."""
    s = source.lower()
    for pattern, metric_key, value in RELEASE_HEADLINES:
        if metric_key == key and re.search(pattern, s):
            return value
    return None


def release_figures(source: str) -> dict[str, float]:
    """Every published value of the release for a source name, by the key of its definition."""
    s = source.lower()
    return {key: value for pattern, key, value in RELEASE_HEADLINES if re.search(pattern, s)}


def group_name(task: str, metric: str, lang: str | None) -> str:
    return f"{task}/{lang}" if metric in LANGUAGE_GROUPED_METRICS and lang else task


def record_metric(record: dict[str, Any]) -> str:
    """A record's metric family: its own ``metric`` field, else its task's (the task registry)."""
    return str(record.get("metric") or get_task(record["task"]).metric)


def score_group(rs: list[dict[str, Any]], metric: str, mode: str = "release") -> dict[str, Any]:
    """Every value of one group's scorer (floats and notes), in the requested mode (``SCORE_MODES``)."""
    if mode not in SCORE_MODES:
        raise ValueError(f"unknown score mode {mode!r}; known: {', '.join(SCORE_MODES)}")
    kw = _score_kw(rs, metric)
    preds, refs = [r["prediction"] for r in rs], [r["reference"] for r in rs]
    if metric not in NORMALIZED_METRICS:
        out = dict(score(metric, preds, refs, **kw))
    elif mode == "both":
        out = dict(score(metric, preds, refs, mode="release", **kw))
        norm = score(metric, preds, refs, mode="normalized", **kw)
        out.update({f"{k}_normalized": v for k, v in norm.items() if k not in ("n", "details")})
    else:
        out = dict(score(metric, preds, refs, mode=mode, **kw))
    out.update({printed: out[key] for printed, key in PRINTED_NAMES.get(metric, {}).items() if key in out})
    return {k: v for k, v in out.items() if isinstance(v, (int, float, str))}


def _score_kw(rs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    kw: dict[str, Any] = {"lang": rs[0]["lang"]} if metric in LANGUAGE_GROUPED_METRICS and rs[0].get("lang") else {}
    if metric == "caption":
        kw["references_multi"] = [r.get("references") or [r["reference"]] for r in rs]
    if metric == "choice":
        kw["choices"] = [r.get("choices") or [] for r in rs]
    return kw


def score_records(
    records: list[dict[str, Any]], mode: str = "release", by: str = "task", ci: bool = True
) -> dict[str, dict[str, Any]]:
    """Scores per group: ``{"asr/en": {"metric": "wer", "headline": "wer", "wer": ..., "n": ...}, ...}``.

    ``by="task"`` (the runner): groups are task (and language for ASR-like tasks), and samples of a source with
    a release figure are also scored as their own group ``<task>@<source>``. ``by="source"``
    (``qwenaudio-score``): one group ``<task>@<source>`` per source, as the release's scripts group. A
    ``@`` group's headline is the release's own definition (``RELEASE_KEY``), with the release's figure as
    ``release`` (all of them in ``release_figures``), unless the mode normalised that definition away.
    ``ci`` adds the headline's 95% bootstrap interval (``ci_low``/``ci_high``, fixed seed). A scorer that
    lacks an optional package (``ScorerDependencyError``) leaves its group with nan and the reason in
    ``error`` (also printed on stderr): no other number takes its place, and the other groups are kept.
    """
    if by not in ("task", "source"):
        raise ValueError(f"by must be 'task' or 'source', got {by!r}")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        metric = record_metric(r)
        if by == "source":
            groups[f"{r['task']}@{r['source']}"].append(r)
            continue
        groups[group_name(r["task"], metric, r.get("lang"))].append(r)
        if release_headline(r["source"], RELEASE_KEY.get(metric, "")) is not None:
            groups[f"{r['task']}@{r['source']}"].append(r)
    results: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        rs = groups[name]
        metric = record_metric(rs[0])
        headline = HEADLINE[metric]
        figures = release_figures(rs[0]["source"]) if "@" in name else {}
        exact = metric in RELEASE_KEY and not (mode == "normalized" and metric in NORMALIZED_METRICS)
        if "@" in name and exact:
            headline = RELEASE_KEY[metric]
        try:
            values = score_group(rs, metric, mode)
        except ScorerDependencyError as e:
            print(f"score: {name}: {e}", file=sys.stderr)
            values = {headline: math.nan, "error": str(e)}
        result: dict[str, Any] = {
            **values,
            "metric": metric,
            "headline": headline,
            "higher_is_better": HIGHER_IS_BETTER[metric],
            "n": len(rs),
            "mode": mode if metric in NORMALIZED_METRICS else "release",
        }
        if figures and exact:
            result["release_figures"] = figures
            if headline in figures:
                result["release"] = figures[headline]
        value = values.get(headline)
        if ci and "error" not in values and isinstance(value, (int, float)) and not math.isnan(value):
            wer_mode = {"mode": "normalized"} if metric in NORMALIZED_METRICS and mode == "normalized" else {}
            result.update(
                bootstrap_ci(
                    metric,
                    [r["prediction"] for r in rs],
                    [r["reference"] for r in rs],
                    headline,
                    {**_score_kw(rs, metric), **wer_mode},
                )
            )
        results[name] = result
    return results


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _with_ci(r: dict[str, Any]) -> str:
    value = _fmt(r.get(r["headline"]))
    low, high = r.get("ci_low"), r.get("ci_high")
    if isinstance(low, float) and isinstance(high, float) and not (math.isnan(low) or math.isnan(high)):
        return f"{value} [{low:.4g}, {high:.4g}]"
    return value + (f" ({r['error']})" if r.get("error") else "")


def markdown_table(
    results: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]] | None = None, title: str = ""
) -> str:
    """One row per group: n, the headline metric, its value with the 95% bootstrap interval, the untrained
    baseline when given, and the release's figure only where the headline is the release's own definition."""
    lines = [f"### {title}", ""] if title else []
    with_release = any("release" in r for r in results.values())
    head = (
        "| task | n | metric | score [95% CI] |"
        + (" untrained | better |" if baseline else "")
        + (" release |" if with_release else "")
    )
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        key = r["headline"]
        row = f"| {name} | {r['n']} | {key} ({'higher' if r['higher_is_better'] else 'lower'} is better) | {_with_ci(r)} |"
        if baseline:
            b = baseline.get(name, {}).get(key, float("nan"))
            row += f" {_fmt(b)} | {'yes' if is_better(r.get(key), b, r['higher_is_better']) else 'NO'} |"
        if with_release:
            row += f" {_fmt(r['release']) if r.get('release') is not None else ''} |"
        lines.append(row)
    # The release's other published figures (AQA's yes/no subset, NSynth's sonic MAP, SPICE...), each beside the
    # value of its own definition.
    more = [
        f"- {name}: {key} {_fmt(r.get(key))} (release {_fmt(value)})"
        for name, r in results.items()
        for key, value in r.get("release_figures", {}).items()
        if key != r["headline"]
    ]
    return (
        "\n".join(lines)
        + "\n"
        + ("\nOther release figures, beside the same definition:\n" + "\n".join(more) + "\n" if more else "")
    )


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
        + "\nScores in brackets: 95% bootstrap interval over utterances (fixed seed); n: utterances in the group. "
        "The release column stands only beside the release's own definition of the metric.\n"
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
