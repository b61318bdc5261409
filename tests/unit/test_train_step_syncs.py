"""Host syncs of `Trainer.train_step`: the loop reads the device once per step (the finiteness agreement), whatever
the gradient accumulation (issue 11). 1 rank, CPU, the tiny model of `experiment=debug`.

A CPU has no device queue to wait for, so the test reproduces what `torch.cuda.set_sync_debug_mode` reports on a
GPU: a `TorchFunctionMode` marks "device" tensors (the model's parameters and buffers, tensors created with a
`device=` or moved with `.to(...)`, which it copies as a real host -> device move would, and everything computed
from them) and counts the reads that would wait for the device (`.item()`, `.tolist()`, `float()`, `int()`,
`bool()`...) per place. Reads of host tensors (the collated batch's labels) cost nothing and are not counted.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from qwenaudio_train.config import compose
from tests.integration.conftest import corpus as corpus  # the session corpus fixture
from tests.integration.conftest import train_overrides

READS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__bool__,
    torch.Tensor.__index__,
    torch.Tensor.numpy,
}
PACKAGE = str(Path(__file__).resolve().parents[2] / "qwenaudio_train")
LOOP = ("trainer.py", "metrics.py", "distributed.py", "faults.py")  # the training loop's own modules


class DeviceReads(TorchFunctionMode):
    """Counts reads of device tensors by who made them: the loop's own code (`loop`), the model's forward
    (`model`), DeepSpeed's backward and optimizer step (`engine`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.device: dict[int, torch.Tensor] = {id(t): t for t in [*model.parameters(), *model.buffers()]}
        self.reads: collections.Counter[str] = collections.Counter()

    def _mark(self, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            self.device[id(out)] = out  # kept alive: ids are not reused while the mode runs
        elif isinstance(out, (tuple, list)):
            for o in out:
                self._mark(o)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = [a for x in [*args, *kwargs.values()] for a in (x if isinstance(x, (list, tuple)) else [x])]
        on_device = any(isinstance(a, torch.Tensor) and id(a) in self.device for a in flat)
        if on_device and func in READS:
            self.reads[self._who()] += 1
        out = func(*args, **kwargs)
        if func is torch.Tensor.to or "device" in kwargs:
            if isinstance(out, torch.Tensor) and any(out is a for a in flat):
                out = out.clone()  # a host -> device move makes a new tensor; the host copy stays a host tensor
            self._mark(out)
        elif on_device:
            self._mark(out)
        return out

    @staticmethod
    def _who() -> str:
        frame = sys._getframe(2)
        innermost = frame.f_code.co_filename
        if innermost.startswith(PACKAGE) and innermost.endswith(LOOP):
            return "loop"
        while frame is not None:
            if frame.f_code.co_filename.startswith(str(Path(PACKAGE) / "model")):
                return "model"
            frame = frame.f_back
        return "engine"


def _reads_per_step(corpus: Path, tmp_path: Path, accum: int, steps: int = 2) -> dict[str, float]:
    """Device reads per step by who made them; checks on the way that the log window reads its sums in one go."""
    from qwenaudio_train import metrics
    from qwenaudio_train.trainer import Trainer

    overrides = train_overrides(corpus, tmp_path / f"accum{accum}", f"trainer.grad_accum={accum}")
    trainer = Trainer(compose("pretrain", [*overrides, "trainer.resume=none"]))
    try:
        batches = iter(trainer.loader)
        trainer.train_step(batches)  # the first step builds DeepSpeed's buffers
        trainer.step += 1
        counter, window = DeviceReads(trainer.model), metrics.new_window()
        with counter:
            for _ in range(steps):
                stats = trainer.train_step(batches)
                trainer.step += 1
                assert stats["finite"]
                metrics.accumulate(window, stats)
        per_step = {k: v / steps for k, v in counter.reads.items()}
        # The log window: loss, grad norm and per-task sums of its steps, read in one transfer.
        counter.reads.clear()
        with counter:
            loss_sum, _, tasks = metrics.read_window(window, trainer.dist.device)
        assert sum(counter.reads.values()) == 1, counter.reads
        assert sum(v[0] for v in tasks.values()) == pytest.approx(loss_sum, rel=1e-6)  # float32 sums
        assert sum(v[1] for v in tasks.values()) == window["tokens"] > 0
        return per_step
    finally:
        trainer.loader.close()
        trainer.logger.close()


def test_train_step_reads_the_device_once_per_step_at_any_accumulation(corpus, tmp_path):
    one, four = (_reads_per_step(corpus, tmp_path, accum) for accum in (1, 4))
    # The loop's own code: the finiteness agreement, once per step (the loss and per-task sums stay on the device
    # until the log window reads them; the token count comes from the host labels).
    assert one.get("loop", 0) == four.get("loop", 0) == 1, (one, four)
    # DeepSpeed's step (its gradient norm) runs once per step too: nothing per micro-batch outside the forward.
    assert one.get("engine", 0) == four.get("engine", 0), (one, four)
    # The model's forward reads happen per micro-batch (span bookkeeping, transformers' mask checks): counted
    # apart, never more than per forward.
    assert four.get("model", 0) <= 4 * one.get("model", 0), (one, four)
