"""One metrics logger: a JSONL file always, wandb on rank 0 when enabled, a progress bar, and the console.

Key names are stable (tests and notebooks read the JSONL): ``step``, ``loss``, ``lr``, ``grad_norm``,
``loss/<task>``, ``samples_per_s``, ``tokens_per_s``, ``audio_hours_per_s``, ``data/bad/<source>``...
The console is what a researcher reads on stdout: a start-up summary (``startup_lines``), where the run starts
from, one line per logged step (``summary_line``, with the loss of every task) and an end-of-run line
(``end_line``); the progress bar stays on stderr. Only rank 0 writes anything.
Must not: compute training quantities (the trainer passes numbers in).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal, cast


class MetricsLogger:
    def __init__(
        self,
        run_dir: Path,
        enabled: bool,
        total_steps: int,
        start_step: int = 0,
        wandb_mode: str = "offline",
        wandb_project: str = "qwenaudio-train",
        run_name: str | None = None,
        config: dict[str, Any] | None = None,
        progress: bool = True,
        resume_id: str | None = None,
    ):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._wandb = None
        self._bar = None
        self.wandb_id: str | None = resume_id
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", buffering=1)
        if wandb_mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self._wandb = wandb.init(
                project=wandb_project,
                name=run_name,
                dir=str(run_dir),
                mode=cast(Literal["online", "offline", "disabled"], wandb_mode),  # checked by config.validate
                config=config,
                id=resume_id,
                resume="allow" if resume_id else None,
            )
            self.wandb_id = self._wandb.id
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, initial=start_step, dynamic_ncols=True, file=sys.stderr, desc="train", disable=None
            )

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        self._file.write(json.dumps(record, default=float) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=record.get("step"))

    def summary_line(self, r: dict[str, Any], total_steps: int) -> str:
        return summary_line(r, total_steps)

    def console(self, line: str) -> None:
        """One line for the researcher on stdout (rank 0 only), written above the progress bar if there is one."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def progress(self, steps: int = 1, postfix: dict[str, Any] | None = None, line: str | None = None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(steps)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
        if line:
            self.console(line)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()


def summary_line(r: dict[str, Any], total_steps: int) -> str:
    """The one-line summary of a logged step: loss and each task's, lr, grad norm, throughput (samples, tokens, audio
    hours, TFLOP/s and MFU), peak memory, bad samples."""
    parts = [f"step {r['step']}/{total_steps}", f"loss {r['loss']:.4f}"]
    tasks = sorted(k.split("/", 1)[1] for k in r if k.startswith("loss/"))
    if tasks:
        parts.append(" ".join(f"{t} {r['loss/' + t]:.3f}" for t in tasks))
    parts.append(f"lr {r['lr']:.2e}")
    if "grad_norm" in r and r["grad_norm"] is not None and math.isfinite(r["grad_norm"]):
        parts.append(f"gnorm {r['grad_norm']:.2f}")
    parts.append(f"{r.get('samples_per_s', 0):.1f} samples/s")
    parts.append(f"{r.get('tokens_per_s', 0):.0f} tok/s")
    if "audio_hours_per_s" in r:
        parts.append(f"{r['audio_hours_per_s']:.3g} audio h/s")
    if "tflops_per_s" in r:
        parts.append(f"{r['tflops_per_s']:.3g} TFLOP/s" + (f" (MFU {100 * r['mfu']:.1f}%)" if "mfu" in r else ""))
    if "memory_gb" in r:
        parts.append(f"mem {r['memory_gb']:.1f} GB")
    if r.get("data_bad", 0):
        parts.append(f"bad samples {r['data_bad']}")
    return " | ".join(parts)


def human_count(n: float) -> str:
    """1234 -> '1.2K', 7_615_616_512 -> '7.62B' (parameter counts at a glance)."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return str(int(n))


def human_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


def human_hours(h: float) -> str:
    if h >= 100:
        return f"{h:,.0f} h"
    return f"{h:.3g} h" if h >= 1 else f"{h * 60:.3g} min"


def _wrap(head: str, parts: list[str], width: int = 120) -> list[str]:
    """``head`` then the parts joined by `` | ``, continued on indented lines past ``width`` characters."""
    lines, line = [], head
    for i, part in enumerate(parts):
        sep = "" if line.endswith(" ") else " | "
        if i and len(line) + len(sep) + len(part) > width:
            lines.append(line)
            line, sep = " " * len(head), ""
        line += sep + part
    return [*lines, line]


def startup_lines(summary: dict[str, Any]) -> list[str]:
    """The start-up summary from the numbers the trainer gathered (see ``Trainer._startup_summary``)."""
    m, b = summary["model"], summary["batch"]
    counts = summary["params"]
    params = [
        f"{tower} {human_count(c['total'])} ({human_count(c['trainable'])} trainable)" for tower, c in counts.items()
    ]
    total, trainable = (sum(c[k] for c in counts.values()) for k in ("total", "trainable"))
    params.append(f"total {human_count(total)} ({human_count(trainable)} trainable)")
    weight_sum = sum(s["weight"] for s in summary["sources"]) or 1.0
    sources = [
        f"{s['name']} {100 * s['weight'] / weight_sum:.1f}% (weight {s['weight']:.3g}"
        + (f", {human_hours(s['hours'])})" if s.get("hours") is not None else ")")
        for s in summary["sources"]
    ]
    cap = "up to " if b.get("max_batch_seconds") else ""
    per_step = b["world_size"] * b["grad_accum"] * b["micro_batch"]
    batch = (
        f"world size {b['world_size']} x grad accum {b['grad_accum']} x micro-batch {cap}{b['micro_batch']}"
        + (f" ({b['max_batch_seconds']:g} s of audio)" if cap else "")
        + f" = {cap}{per_step} samples/step"
    )
    return [
        f"run {summary['name']} | model {m['preset']}: audio encoder {m['encoder']}, LLM {m['llm']}",
        *_wrap("  parameters  ", params),
        *_wrap("  data        ", sources),
        f"  batch       {batch} | ZeRO-{b['zero_stage']} | {b['dtype']}",
        f"  run dir     {summary['run_dir']}",
        f"  tokenizer   {summary['tokenizer']}",
    ]


def resume_line(checkpoint: Path | str | None, step: int, samples_seen: int, data_restored: bool) -> str:
    if checkpoint is None:
        return "starting from scratch"
    data = "data position restored" if data_restored else "data stream restarts from the seed"
    return f"resumed from {checkpoint} at step {step} (samples seen {samples_seen}, {data})"


def end_line(
    step: int,
    total_steps: int,
    steps_run: int,
    seconds: float,
    last_loss: tuple[int, float] | None,
    last_checkpoint: Path | str | None,
    metrics_path: Path | str,
) -> str:
    """The end-of-run line: where the run got to, how long it took, the last loss and where to find the results."""
    verb = "finished" if step >= total_steps else "stopped"
    steps = f"{steps_run} step" + ("" if steps_run == 1 else "s")
    parts = [f"{verb} at step {step}/{total_steps} ({steps} in {human_seconds(seconds)})"]
    if last_loss is None:
        parts.append("no loss logged")
    else:
        at = "" if last_loss[0] == step else f" (step {last_loss[0]})"
        parts.append(f"final loss {last_loss[1]:.4f}{at}")
    parts.append(f"last checkpoint {last_checkpoint or 'none'}")
    parts.append(f"metrics {metrics_path}")
    return " | ".join(parts)


def read_metrics(run_dir: Path, kind: str = "train") -> list[dict[str, Any]]:
    """The run's records of one kind (``train`` or ``eval``) in step order. After a crash and resume some steps
    were logged twice: the record written last (by the resumed run) wins. A line cut by a kill is skipped."""
    by_step: dict[int, dict[str, Any]] = {}
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind", "train") == kind:
            by_step[int(record["step"])] = record
    return [by_step[s] for s in sorted(by_step)]
