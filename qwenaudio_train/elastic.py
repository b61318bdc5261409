"""Elastic resume: a checkpoint saved by W0 ranks continued by W ranks (``trainer.elastic=true``).

Optimizer state: ZeRO partitions it per rank, so a checkpoint of another world size is converted once to
DeepSpeed's universal format (one file per parameter and state, any world size can read it): rank 0 runs
``deepspeed.checkpoint.ds_to_universal`` in-process (under ``checkpoint.weights_only_loads``: a checkpoint stays data)
into ``<checkpoint>/universal/``, written as ``universal.partial`` and renamed when complete, so a crash mid-way
leaves nothing a later run trusts; a later resume reuses a complete conversion. The other ranks wait; then every
rank loads it with DeepSpeed's universal loading (``checkpoint.load(..., universal=True)``). Exact on the tiny model
with several parameter groups: ZeRO-2 and ZeRO-3 with stage 1's frozen LLM (tests/integration/test_elastic.py), ZeRO-1
checked once by hand; ZeRO-0 keeps the whole optimizer state in the model file and needs no conversion (checked by
hand). A ZeRO-stage change stays refused (``checkpoint.check_compatible``).

Global batch: L = world size x accumulation is fixed when the run starts: the data order's number of logical
streams (``data.loader.loader_streams`` of the saved data state), else trainer_state.json's
``global_micro_batches``, else (older saves) the saved world size x ``trainer.grad_accum``. W ranks accumulate L / W
micro-batches, so the global batch, the data each step consumes (data/loader.py) and the schedule are unchanged.

RNG: the per-rank RNG files of W0 ranks cannot map one to one onto W ranks. Rank r restores old rank r's file when
there is one; a rank beyond the old world keeps the state seeded at start (``seed``). Nothing the loss depends on
draws from these generators: the data order and SpecAugment are seeded per data stream (data/), and the models
train without dropout.
Must not: choose the checkpoint (checkpoint.resume_point), read data positions (data/), build engines (trainer).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenaudio_train import checkpoint
from qwenaudio_train.distributed import all_reduce_sum, barrier, collective_device


@dataclass(frozen=True)
class ElasticPlan:
    """How a resume continues the checkpoint's global batch on this run's ranks."""

    saved_world: int
    saved_accum: int
    world: int
    grad_accum: int
    zero_stage: int
    universal: bool = False  # resumes from the checkpoint's universal conversion (checkpoint.load(universal=True))

    @property
    def convert(self) -> bool:
        """The optimizer state must go through the universal format: ZeRO partitions it per rank."""
        return self.world != self.saved_world and self.zero_stage > 0

    @property
    def changed(self) -> bool:
        return (self.world, self.grad_accum) != (self.saved_world, self.saved_accum)

    def line(self) -> str:
        return (
            f"elastic resume: {self.world} ranks x {self.grad_accum} accumulation "
            f"(was {self.saved_world} x {self.saved_accum})"
        )


def global_micro_batches(path: Path, state: dict[str, Any]) -> int:
    """L of a checkpoint: micro-batches per optimizer step over all ranks (``state``: its trainer state)."""
    from qwenaudio_train.data.loader import loader_streams

    data_file = path / "data_state_rank0.json"
    data_state = json.loads(data_file.read_text()) if data_file.is_file() else None
    if data_state and "n_streams" in data_state:  # the data order's own L (a state that predates it has none)
        return int(loader_streams(data_state) or 0)
    if state.get("global_micro_batches"):
        return int(state["global_micro_batches"])
    accum = state.get("config", {}).get("trainer", {}).get("grad_accum", 1)
    return int(state.get("world_size", 1)) * int(accum)


def plan(path: Path, world: int, zero_stage: int) -> ElasticPlan:
    """The accumulation that keeps ``path``'s global batch on ``world`` ranks; ``ConfigError`` naming the valid
    world sizes when ``world`` does not divide it."""
    from qwenaudio_train.config import ConfigError

    state = checkpoint.read_trainer_state(path)
    total = global_micro_batches(path, state)
    saved_world = int(state.get("world_size", world))
    if total % world:
        valid = ", ".join(str(w) for w in range(1, total + 1) if total % w == 0)
        raise ConfigError(
            f"trainer.elastic: checkpoint {path} keeps a global batch of {total} micro-batches (world size x "
            f"grad_accum at the run's start), which {world} ranks cannot share evenly: resume with {valid} ranks"
        )
    return ElasticPlan(saved_world, total // saved_world, world, total // world, zero_stage)


def prepare(path: Path | None, cfg: Any, dist: Any, log: Callable[[str], None] = print) -> ElasticPlan:
    """Collective, before any compute: ``checkpoint.check_compatible`` (another world size without
    ``trainer.elastic``, or another ZeRO stage, stops with the fix); with ``trainer.elastic`` the plan that keeps
    the global batch (``log``ged when it changes anything), the checkpoint converted when the world size changed.
    A fresh run, or one without ``trainer.elastic``: the configured accumulation, nothing converted."""
    ds, elastic, accum = cfg.deepspeed, cfg.trainer.elastic, cfg.trainer.grad_accum
    if path is not None:
        checkpoint.check_compatible(path, dist.world_size, ds.zero_stage, ds.load_universal, elastic)
    if path is None or not elastic:
        return ElasticPlan(dist.world_size, accum, dist.world_size, accum, ds.zero_stage)
    resume = plan(path, dist.world_size, ds.zero_stage)
    if resume.changed or resume.grad_accum != cfg.trainer.grad_accum:
        log(resume.line())
    if resume.convert and not ds.load_universal:  # (a checkpoint given already converted loads as it is)
        universal_checkpoint(path, dist.rank, log)
        resume = dataclasses.replace(resume, universal=True)
    return resume


def universal_checkpoint(path: Path, rank: int, log: Callable[[str], None] = print) -> Path:
    """Collective: ``path`` converted to DeepSpeed's universal format, by rank 0, once. Returns the converted
    directory on every rank, or raises ``CheckpointError`` on every rank (the checkpoint itself untouched)."""
    final = path / checkpoint.UNIVERSAL
    failure: BaseException | None = None
    if rank == 0 and not final.is_dir():
        started = time.perf_counter()
        try:
            _convert(path, final)
            log(f"converted {path.name} to DeepSpeed's universal format in {time.perf_counter() - started:.1f} s")
        except Exception as e:  # any failure of the converter: all ranks must learn of it
            failure = e
    if all_reduce_sum([1.0 if failure else 0.0], collective_device())[0] > 0:
        why = f"{type(failure).__name__}: {failure}" if failure else "rank 0 failed, see its error"
        raise checkpoint.CheckpointError(
            f"could not convert {path} to DeepSpeed's universal format ({why}); the checkpoint is unchanged: "
            "resume it with its own number of ranks, or fix the cause and resume again"
        ) from failure
    barrier()
    return final


def _convert(path: Path, final: Path) -> None:
    """ds_to_universal into ``universal.partial``, renamed to ``final`` once complete."""
    from deepspeed.checkpoint import ds_to_universal

    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a conversion cut short earlier
    args = argparse.Namespace(
        input_folder=str(path),
        output_folder=str(partial),
        num_extract_workers=1,  # in-process: no worker pool forked from a rank that holds a process group
        num_merge_workers=1,
        keep_temp_folder=False,
        strict=True,
        inject_missing_state=True,  # our engine saves no universal-checkpoint info of its own (no tensor parallelism)
    )
    out = io.StringIO()  # its progress lines and bars: shown only when it fails
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), checkpoint.weights_only_loads():
            ds_to_universal.main(args)
    except Exception as e:
        shutil.rmtree(partial, ignore_errors=True)
        tail = " | ".join(ln for ln in out.getvalue().splitlines()[-3:] if ln.strip())
        raise RuntimeError(f"{type(e).__name__}: {e}" + (f" (after: {tail})" if tail else "")) from e
    finally:
        with contextlib.suppress(FileNotFoundError):  # it names the newest conversion in the parent: not our layout
            (path / "latest_universal").unlink()
    os.replace(partial, final)
