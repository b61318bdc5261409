"""How a run meets faults: preemption signals and non-finite steps. The trainer decides when; this says what.

* Preemption: ``STOP_SIGNALS`` (SIGTERM from SLURM / torchrun / kill, SIGUSR1 before a time limit) make the trainer
  save and stop. After that save the entry points exit with ``EXIT_SIGNAL_SAVED`` and rank 0 records the stop in
  ``<run_dir>/SIGNAL_STOP_FILE``, which ``launch/`` turns into the same exit code (torchrun itself exits 1).
  Loader workers ignore these signals (``ignore_stop_signals``): torchrun signals each rank's whole process group,
  and a worker that died of it would crash the rank before it could save.
* Non-finite steps: ``skip_step`` runs DeepSpeed's step (its micro-step bookkeeping must advance on every rank) with
  lr 0 and then puts the optimizer's state back, so a skipped step changes neither weights nor Adam's step count
  and moments.

Must not: decide when to save or stop (``trainer.py``), or know checkpoint files (``checkpoint.py``).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import torch

from qwenaudio_train.distributed import all_reduce_sum

EXIT_SIGNAL_SAVED = 3  # process exit code after a clean save on SIGTERM/SIGUSR1 (launch/README.md)
SIGNAL_STOP_FILE = "stopped_by_signal.json"  # in the run directory: {"signal", "step", "checkpoint"}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: the worker lives on until its rank has saved and shuts it down."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def agree_on_stop(received: int | None, device: torch.device) -> str | None:
    """Collective: the stop signals any rank received (e.g. "SIGUSR1"), the same on every rank; None to go on."""
    got = all_reduce_sum([1.0 if received == s else 0.0 for s in STOP_SIGNALS], device)
    return "+".join(s.name for s, n in zip(STOP_SIGNALS, got) if n > 0) or None


def record_signal_stop(run_dir: Path, signal_name: str | None, step: int, checkpoint: Path | None) -> None:
    """Rank 0, after the save: what ``launch/`` reads to exit with ``EXIT_SIGNAL_SAVED``."""
    record = {"signal": signal_name, "step": step, "checkpoint": str(checkpoint)}
    (Path(run_dir) / SIGNAL_STOP_FILE).write_text(json.dumps(record) + "\n")


def clear_signal_stop(run_dir: Path) -> None:
    """Rank 0, at start: the record describes the last stop of this run only."""
    (Path(run_dir) / SIGNAL_STOP_FILE).unlink(missing_ok=True)


def base_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer that holds the state under DeepSpeed's wrappers (ZeRO keeps it as ``.optimizer``)."""
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    return optimizer


def skip_step(engine: Any, optimizer: Any, set_lr: Any) -> None:
    """DeepSpeed's optimizer step, made a no-op: lr 0 leaves every weight unchanged (AdamW's decay too), and the
    state the zero gradient would still change (Adam's step count +1, moments x beta1 / x beta2) is put back."""
    set_lr(optimizer, 0.0)
    opt = base_optimizer(optimizer)
    state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in opt.state.items()}
    group_steps = [g.get("step") for g in opt.param_groups]  # DeepSpeed's CPU Adam counts steps per group
    engine.step()
    for p in [p for p in opt.state if p not in state]:
        del opt.state[p]  # created by the skipped step (a first step)
    for p, saved in state.items():
        for k, v in saved.items():
            current = opt.state[p].get(k)
            if torch.is_tensor(v) and torch.is_tensor(current):
                current.copy_(v)  # in place: ZeRO's flat and offloaded buffers keep their storage
            else:
                opt.state[p][k] = v
    for g, step in zip(opt.param_groups, group_steps):
        if step is not None:
            g["step"] = step
