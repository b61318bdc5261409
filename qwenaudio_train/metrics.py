"""One metrics logger: a JSONL file always, wandb on rank 0 when enabled, a progress bar, a one-line summary.

Key names are stable (tests and notebooks read the JSONL): ``step``, ``loss``, ``lr``, ``grad_norm``,
``loss/<task>``, ``samples_per_s``, ``tokens_per_s``, ``audio_hours_per_s``, ``data/bad/<source>``...
Only rank 0 writes. Must not: compute training quantities (the trainer passes numbers in).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any


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
                mode=wandb_mode,
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
        parts = [f"step {r['step']}/{total_steps}", f"loss {r['loss']:.4f}", f"lr {r['lr']:.2e}"]
        if "grad_norm" in r and r["grad_norm"] is not None and math.isfinite(r["grad_norm"]):
            parts.append(f"gnorm {r['grad_norm']:.2f}")
        parts.append(f"{r.get('samples_per_s', 0):.1f} samples/s")
        parts.append(f"{r.get('tokens_per_s', 0):.0f} tok/s")
        if r.get("data_bad", 0):
            parts.append(f"bad samples {r['data_bad']}")
        return " | ".join(parts)

    def progress(self, steps: int = 1, postfix: dict[str, Any] | None = None, line: str | None = None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(steps)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            if line:
                self._bar.write(line, file=sys.stderr)
        elif line:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()


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
