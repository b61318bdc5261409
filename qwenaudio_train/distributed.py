"""Process-group set-up from the launcher's environment, the DeepSpeed config dict, and rank helpers.

Works under torchrun (RANK/LOCAL_RANK/WORLD_SIZE/MASTER_* set), under the ``deepspeed`` launcher, under SLURM
(``srun`` sets SLURM_PROCID...), and as a single plain process (a world of one is set up on localhost).
Backend: NCCL when CUDA is available, gloo otherwise (CPU runs, tests).
Console: every rank runs the same code, so ranks > 0 keep DeepSpeed's errors and drop its warnings and notices
(rank 0 shows each once); see ``quiet_other_ranks``.
Must not: build models or read data.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import logging
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_from_slurm() -> None:
    """Map SLURM's variables to torch's when launched with srun and no torchrun."""
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ:
        return
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    os.environ["WORLD_SIZE"] = os.environ.get("SLURM_NTASKS", "1")
    if "MASTER_ADDR" not in os.environ and "SLURM_JOB_NODELIST" in os.environ:
        import subprocess

        hosts = subprocess.run(
            ["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        os.environ["MASTER_ADDR"] = hosts[0]
    os.environ.setdefault("MASTER_PORT", str(29500 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))


def init_distributed(timeout_minutes: int = 30) -> DistInfo:
    """Initialise the default process group (idempotent) and return this process's place in it."""
    _env_from_slurm()
    if "RANK" not in os.environ:  # a plain `python -m ...`: a world of one
        os.environ.update(
            RANK="0",
            LOCAL_RANK="0",
            WORLD_SIZE="1",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=os.environ.get("MASTER_PORT", str(_free_port())),
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    quiet_other_ranks(rank)  # before DeepSpeed is imported: it warns at import time
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        import deepspeed

        # DeepSpeed prints (not logs) a line when it builds its comm op: once is enough, from rank 0.
        with contextlib.redirect_stdout(io.StringIO()) if rank > 0 else contextlib.nullcontext():
            deepspeed.init_distributed(
                dist_backend="nccl" if device.type == "cuda" else "gloo",
                timeout=datetime.timedelta(minutes=timeout_minutes),
            )
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world, device=device)


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def quiet_other_ranks(rank: int) -> None:
    """Console hygiene, idempotent. All ranks: the C-compiler probes DeepSpeed's op builders log at INFO (under
    Hydra's INFO root logger) are hidden. Ranks > 0: DeepSpeed's logger keeps only errors and Python warnings are
    ignored, since rank 0 prints the same ones. A filter, not a level: DeepSpeed resets its logger's level when
    it is imported, and filters survive that."""
    logging.getLogger("compilers").setLevel(logging.WARNING)
    if rank == 0:
        return
    ds_logger = logging.getLogger("DeepSpeed")
    if not any(isinstance(f, _ErrorsOnly) for f in ds_logger.filters):
        ds_logger.addFilter(_ErrorsOnly())
    warnings.simplefilter("ignore")


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def collective_device() -> torch.device:
    """Where the default group's collectives take their tensors: the current GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few scalars over ranks (one collective)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


def to_device(values: list[float], device: torch.device) -> torch.Tensor:
    """Host numbers as a float64 tensor on ``device``, copied without waiting for the device's queue (a blocking
    copy would wait for every kernel queued before it: a host sync)."""
    return torch.tensor(values, dtype=torch.float64).to(device, non_blocking=True)


def all_reduce_(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce ``t`` over ranks in place (``sum`` or ``max``), left on its device: no host read."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t


def all_reduce_started(t: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Start summing ``t`` over ranks in place and return what waits for it: the collective runs while the caller
    computes (gloo's thread; NCCL's stream, where the wait holds the device's queue, not the host)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return lambda: t
    work = dist.all_reduce(t, async_op=True)
    return lambda: (work.wait(), t)[1]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


# DeepSpeedConfig fields passed to `deepspeed_config` by name (ZeRO communication)
COMM_KNOBS = (
    "overlap_comm",
    "reduce_bucket_size",
    "allgather_bucket_size",
    "stage3_prefetch_bucket_size",
    "stage3_param_persistence_threshold",
)


def deepspeed_config(
    zero_stage: int,
    micro_batch_size: int,
    grad_accum: int,
    world_size: int,
    grad_clip: float,
    bf16: bool = False,
    offload_optimizer: bool = False,
    offload_param: bool = False,
    activation_checkpointing: bool = False,
    load_universal: bool = False,
    extra: dict[str, Any] | None = None,
    overlap_comm: bool | None = None,
    reduce_bucket_size: int = 200_000_000,
    allgather_bucket_size: int = 200_000_000,
    stage3_prefetch_bucket_size: int = 50_000_000,
    stage3_param_persistence_threshold: int | None = None,
) -> dict[str, Any]:
    """The DeepSpeed config dict. The optimizer and schedule are ours (passed to ``deepspeed.initialize``).

    ``overlap_comm`` / ``stage3_param_persistence_threshold`` None: chosen by the device (CUDA: overlap on, DeepSpeed's
    threshold 1e5; CPU: overlap off, threshold 0 so that the tiny CPU models are partitioned at all)."""
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"deepspeed.zero_stage={zero_stage}: choose 0, 1, 2 or 3")
    cuda = torch.cuda.is_available()
    zero: dict[str, Any] = {"stage": zero_stage}
    if zero_stage >= 1:
        zero.update(reduce_bucket_size=int(reduce_bucket_size), allgather_bucket_size=int(allgather_bucket_size))
    if zero_stage >= 2:
        zero.update(overlap_comm=cuda if overlap_comm is None else bool(overlap_comm), contiguous_gradients=True)
    if zero_stage == 3:
        threshold = stage3_param_persistence_threshold
        threshold = (100_000 if cuda else 0) if threshold is None else threshold
        zero.update(
            stage3_prefetch_bucket_size=int(stage3_prefetch_bucket_size),
            stage3_param_persistence_threshold=int(threshold),
            stage3_gather_16bit_weights_on_model_save=True,
        )
        if threshold == 0:  # nothing persists whole: tiny models are partitioned too (a ZeRO-3 test tests something)
            zero["stage3_model_persistence_threshold"] = 0
    if offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if offload_param and zero_stage == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    cfg: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch_size * grad_accum * world_size,
        "gradient_clipping": grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bool(bf16)},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }
    if activation_checkpointing:
        cfg["activation_checkpointing"] = {"partition_activations": False, "contiguous_memory_optimization": False}
    if load_universal:
        cfg["checkpoint"] = {"load_universal": True}
    if extra:
        cfg.update(extra)
    return cfg
