"""One metrics logger: a JSONL file always, wandb on rank 0 when enabled, a progress bar, and the console.

Key names are stable (tests and notebooks read the JSONL): ``step``, ``loss``, ``lr``, ``grad_norm``,
``loss/<task>``, ``samples_per_s``, ``tokens_per_s``, ``audio_hours_per_s``, ``data/bad/<source>``, ``mfu``,
``tflops_per_s``, ``hardware_tflops_per_s``, ``padding/encoder``, ``padding/llm`` (flops.py), ``data_wait`` (share
of the window's wall time a rank spent blocked in ``next(batches)``, the loader not keeping up: mean over ranks)
and ``data_wait/max`` (the most blocked rank)...
The log window (``new_window``, ``accumulate``, ``read_window``) sums the step statistics the trainer passes in;
the loss and per-task sums stay on the device until ``read_window`` reads them in one transfer per window.
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

import torch

from qwenaudio_train.distributed import to_device
from qwenaudio_train.flops import combine


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
    micro_batches = b["world_size"] * b["grad_accum"]
    budgets = [(b.get("max_batch_seconds") or 0, "s of audio"), (b.get("max_batch_tokens") or 0, "tokens")]
    budgets = [(v, unit) for v, unit in budgets if v]
    batch = f"world size {b['world_size']} x grad accum {b['grad_accum']} x micro-batch "
    if budgets:  # budgets fill a micro-batch (short clips make big ones): the step is fixed in seconds / tokens
        batch += " / ".join(f"{v:g} {unit}" for v, unit in budgets) + f" (at most {b.get('max_batch_size')} clips)"
        batch += " = " + " / ".join(f"{micro_batches * v:g} {unit}" for v, unit in budgets) + " per step"
    else:
        batch += f"{b['micro_batch']} = {micro_batches * b['micro_batch']} samples/step"
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


def or_nan(value: Any) -> Any:
    return float("nan") if value is None else value


def new_window() -> dict[str, Any]:
    return {
        "loss_sum": 0.0,  # a device tensor once a step has run (read in `read_window`)
        "tokens": 0,
        "samples": 0,
        "input_tokens": 0,
        "audio_seconds": 0.0,
        "audio_frames": 0,
        "data_wait": 0.0,
        "task_loss": [],  # (task names, device tensor [loss sums..., tokens...]) per step
        "flops": combine([]),
        "grad_norm": float("nan"),
    }


def accumulate(w: dict[str, Any], s: dict[str, Any]) -> None:
    for k in ("loss_sum", "tokens", "samples", "input_tokens", "audio_seconds", "audio_frames", "data_wait"):
        w[k] = w[k] + s[k]  # not in place: the first step's device tensor must not be changed later
    w["grad_norm"] = s["grad_norm"]
    w["flops"] = combine([w["flops"], s["flops"]])
    w["task_loss"] += s["task_loss"]


def read_window(w: dict[str, Any], device: torch.device) -> tuple[float, float, dict[str, list[float]]]:
    """(loss sum, last grad norm, task -> [loss sum, target tokens]) of a log window: its device values read in one
    transfer (one host sync per window, none per step)."""
    values = [w["loss_sum"], w["grad_norm"]]
    parts = [v.detach().reshape(-1).double() if torch.is_tensor(v) else to_device([v], device) for v in values]
    read = torch.cat(parts + [t for _, t in w["task_loss"]]).tolist()
    out: dict[str, list[float]] = {}
    at = 2
    for names, t in w["task_loss"]:
        for i, name in enumerate(names):
            acc = out.setdefault(name, [0.0, 0.0])
            acc[0] += read[at + i]
            acc[1] += read[at + len(names) + i]
        at += t.numel()
    return read[0], read[1], out


def tower_params(model: torch.nn.Module) -> dict[str, dict[str, int]]:
    """Total and trainable parameters of the audio encoder (``audio.``: encoder, pool, projector, bos/eos) and the
    LLM, at full size under ZeRO-3 (``ds_numel``)."""
    out = {"audio encoder": {"total": 0, "trainable": 0}, "LLM": {"total": 0, "trainable": 0}}
    for name, p in model.named_parameters():
        tower = out["audio encoder" if name.startswith("audio.") else "LLM"]
        n = int(getattr(p, "ds_numel", p.numel()))
        tower["total"] += n
        tower["trainable"] += n if p.requires_grad else 0
    return out


def memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import psutil

    return psutil.Process().memory_info().rss / 2**30
