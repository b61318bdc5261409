"""Checkpoints: every stateful part of a run, saved atomically, found again automatically.

Layout of ``<run_dir>/checkpoints/``::

    step_00000200/                       one checkpoint (a DeepSpeed tag directory)
        mp_rank_00_model_states.pt       DeepSpeed: module (+ frozen params), ...
        *optim_states.pt                 DeepSpeed: ZeRO optimizer partitions, one per rank
        trainer_state.json               step, samples/tokens seen, resolved config, code version (readable)
        data_state_rank<R>.json          rank R's data position (per loader worker)
        rng_rank<R>.pt                   rank R's python/numpy/torch RNG states
    latest                               the tag of the newest complete checkpoint (written last)

A save is written under ``step_N.partial`` and renamed once every rank has finished, then ``latest`` is
replaced atomically: a crash at any moment leaves the previous checkpoint intact and ``latest`` pointing at a
complete one. ``keep_last`` older checkpoints are kept. Every file name of this layout lives here: the trainer asks
(``checkpoint_dir``, ``resolve``, ``check_world_size``) and never opens a checkpoint file itself.
Must not: decide when to save (the trainer does).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qwenaudio_train.distributed import barrier

_STEP_DIR = re.compile(r"^step_(\d{8})$")
_STATE = "trainer_state.json"  # written last into a save: its presence marks a complete checkpoint
_NO_RESUME = ("none", "never", "")


def tag_for(step: int) -> str:
    return f"step_{step:08d}"


def code_version() -> str:
    from qwenaudio_train import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(run_dir: Path) -> Path:
    """Where a run keeps its checkpoints."""
    return Path(run_dir) / "checkpoints"


def is_checkpoint(path: Path) -> bool:
    """True for a complete checkpoint directory (one that can be resumed or exported)."""
    return (Path(path) / _STATE).is_file()


def read_trainer_state(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / _STATE).read_text())


def resolve(resume: str | None, ckpt_dir: Path) -> Path | None:
    """The checkpoint a run starts from, by ``trainer.resume``: ``auto`` = the latest complete one in ``ckpt_dir``
    (None for a fresh run), ``none``/``never`` = None, else the path of a checkpoint directory, which must exist."""
    if resume is None or resume in _NO_RESUME:
        return None
    if resume == "auto":
        return latest_checkpoint(ckpt_dir)
    path = Path(resume)
    if not is_checkpoint(path):
        raise FileNotFoundError(f"trainer.resume={resume!r} is not a checkpoint directory (no {_STATE})")
    return path


def check_world_size(path: Path, world_size: int, load_universal: bool = False) -> None:
    """Raise with the fix when ``path`` was saved by another number of ranks than this run has: ZeRO optimizer
    partitions are per rank. A universal checkpoint (``load_universal``) loads at any world size."""
    saved = read_trainer_state(path).get("world_size", world_size)
    if saved == world_size or load_universal:
        return
    raise RuntimeError(
        f"checkpoint {path} was saved by {saved} ranks, this run has {world_size}. ZeRO partitions the "
        f"optimizer per rank, so either resume with {saved} ranks, or convert it once with\n"
        f"  python -m deepspeed.checkpoint.ds_to_universal --input_folder {path} "
        f"--output_folder {path}_universal --inject_missing_state\n"
        f"and resume with trainer.resume={path}_universal deepspeed.load_universal=true "
        "trainer.resume_data=false (the data stream restarts from the seed: see README, FAQ)."
    )


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint named by ``latest``, else the newest complete step directory, else None."""
    latest = ckpt_dir / "latest"
    if latest.is_file():
        path = ckpt_dir / latest.read_text().strip()
        if is_checkpoint(path):
            return path
    complete = [p for p in list_checkpoints(ckpt_dir) if is_checkpoint(p)]
    return complete[-1] if complete else None


def save(
    engine: Any,
    ckpt_dir: Path,
    step: int,
    trainer_state: dict[str, Any],
    data_state: dict[str, Any],
    rank: int,
    keep_last: int = 3,
) -> Path:
    """Collective: every rank calls it. Returns the published checkpoint directory."""
    tag = tag_for(step)
    partial = tag + ".partial"
    final = ckpt_dir / tag
    if rank == 0:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ckpt_dir / partial, ignore_errors=True)
    barrier()
    engine.save_checkpoint(str(ckpt_dir), tag=partial, save_latest=False)
    tmp_dir = ckpt_dir / partial
    (tmp_dir / f"data_state_rank{rank}.json").write_text(json.dumps(data_state))
    torch.save(rng_state(), tmp_dir / f"rng_rank{rank}.pt")
    barrier()
    if rank == 0:
        state = dict(trainer_state, step=step, code_version=code_version())
        (tmp_dir / _STATE).write_text(json.dumps(state, indent=2, default=str))
        if final.exists():  # a re-save of the same step (e.g. signal right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp_dir, final)
        _atomic_write_text(ckpt_dir / "latest", tag)
        for old in list_checkpoints(ckpt_dir)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def load(engine: Any, path: Path, rank: int, load_optimizer: bool = True) -> tuple[dict[str, Any], dict | None]:
    """Collective: restore model/optimizer into ``engine``, this rank's RNG; return (trainer_state, data_state)."""
    load_path, _ = engine.load_checkpoint(
        str(path.parent), tag=path.name, load_optimizer_states=load_optimizer, load_lr_scheduler_states=False
    )
    if load_path is None:
        raise FileNotFoundError(f"DeepSpeed could not load checkpoint {path}; is it complete?")
    state = read_trainer_state(path)
    rng_file = path / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    data_file = path / f"data_state_rank{rank}.json"
    data_state = json.loads(data_file.read_text()) if data_file.is_file() else None
    return state, data_state


def load_model_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Full fp32 weights of a checkpoint, without DeepSpeed's engine (for eval/export). ZeRO-3 is consolidated."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = read_trainer_state(path) if is_checkpoint(path) else {}
    zero_stage = int(state.get("config", {}).get("deepspeed", {}).get("zero_stage", 0))
    if zero_stage == 3:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        return get_fp32_state_dict_from_zero_checkpoint(str(path.parent), tag=path.name)
    model_file = path / "mp_rank_00_model_states.pt"
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file} is missing: {path} is not a complete DeepSpeed checkpoint")
    blob = torch.load(model_file, map_location="cpu", weights_only=False)
    return {k: v.float() if v.is_floating_point() else v for k, v in blob["module"].items()}
