"""Checkpoints: every stateful part of a run, saved atomically, found again automatically.

Layout of ``<run_dir>/checkpoints/``::

    step_00000200/                       one checkpoint (a DeepSpeed tag directory)
        mp_rank_00_model_states.pt       DeepSpeed: module (+ frozen params), ...
        *optim_states.pt                 DeepSpeed: ZeRO optimizer partitions, one per rank
        trainer_state.json               step, samples/tokens seen, resolved config, code version (readable)
        data_state_rank<R>.json          rank R's data position (per loader worker)
        rng_rank<R>.pt                   rank R's python/numpy/torch RNG states
        universal/                       the same, in DeepSpeed's universal format (elastic.py; made on demand)
    latest                               the tag of the newest complete checkpoint (written last)

A save is written under ``step_N.partial`` and renamed once every rank has finished, then ``latest`` is
replaced atomically: a crash at any moment leaves the previous checkpoint intact and ``latest`` pointing at a
complete one. ``keep_last`` older checkpoints are kept. Every file name of this layout lives here: the trainer asks
(``checkpoint_dir``, ``resume_point``, ``check_compatible``) and never opens a checkpoint file itself.

Resume checks: ``trainer_state.json`` lists every file of the save with its size (``files``), so a resume stops,
naming the file, when one is missing or cut short; ``trainer.resume=auto`` then falls back to the newest intact
checkpoint (logged), an explicit ``trainer.resume=<dir>`` stops with the one to give instead.

Trust boundary: a checkpoint is data, never code. Nothing here unpickles arbitrary objects: our own files load with
``torch.load(weights_only=True)``, and DeepSpeed's loader (which asks for full pickles) runs inside
``weights_only_loads``, which forces ``weights_only=True`` with an allow-list of the few DeepSpeed classes its files
hold (``_deepspeed_safe_globals``). A file that needs anything else stops the load, naming the class it asks for;
a legitimate DeepSpeed class belongs on that list, never a blanket ``weights_only=False``.
Must not: decide when to save (the trainer does).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qwenaudio_train.distributed import all_reduce_sum, barrier, collective_device

_STEP_DIR = re.compile(r"^step_(\d{8})$")
_STATE = "trainer_state.json"  # written last into a save: its presence marks a complete checkpoint
_NO_RESUME = ("none", "never", "")
_FILES = "files"  # trainer_state.json key: {file name: size in bytes} of every file of the save
UNIVERSAL = "universal"  # a checkpoint's conversion to DeepSpeed's universal format (another world size)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed, loaded or saved; the message names the file and the fix."""


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
    """Python, numpy and torch RNG states as tensors, ints and tuples only: loadable with ``weights_only=True``."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
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
    """The readable state of a checkpoint; ``CheckpointError`` naming the file when it is missing or not JSON."""
    file = Path(path) / _STATE
    try:
        state = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing: {path} is not a complete checkpoint") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON ({e}): the file was cut short or edited") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"{file} has no integer 'step': the file was edited or is not a trainer state")
    return state


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


def problems(path: Path, resume_data: bool = True, universal: bool = False) -> list[str]:
    """What stops ``path`` from being resumed exactly: unreadable state, a file of the save missing or cut short
    (by the size list the save recorded), a rank's data position or RNG missing. Empty for an intact checkpoint.
    Without ``resume_data`` (the data stream restarts) positions and RNG are not needed; a ``universal`` checkpoint
    (ds_to_universal's own layout) is checked for its state only."""
    try:
        state = read_trainer_state(path)
    except CheckpointError as e:
        return [str(e)]
    found: list[str] = []
    files: dict[str, int] = {} if universal else state.get(_FILES) or {}
    for name, size in sorted(files.items()):
        if not resume_data and name.startswith(("data_state_rank", "rng_rank")):
            continue  # the data stream restarts from the seed: its position is not needed
        file = path / name
        if not file.is_file():
            found.append(f"{file} is missing")
        elif file.stat().st_size != size:
            found.append(f"{file} is cut short or changed ({file.stat().st_size} bytes, saved {size})")
    ranks = range(int(state.get("world_size", 1)))
    needed = [f"{kind}_rank{r}.{ext}" for r in ranks for kind, ext in (("rng", "pt"), ("data_state", "json"))]
    needed = needed if resume_data else []
    if not universal and not any(p.name.endswith("model_states.pt") for p in path.iterdir()):
        needed.append("mp_rank_00_model_states.pt")  # a save made before the size list: DeepSpeed's model file
    found += [f"{path / n} is missing" for n in needed if n not in files and not (path / n).is_file()]
    return found


def resume_point(
    resume: str | None,
    ckpt_dir: Path,
    resume_data: bool = True,
    log: Callable[[str], None] = print,
    universal: bool = False,
) -> Path | None:
    """``resolve`` plus the checks of ``problems``. ``auto`` falls back to the newest intact checkpoint and ``log``s
    each one it skips; an explicit checkpoint with a problem stops, naming the file and the checkpoint to give."""
    if resume is None or resume in _NO_RESUME:
        return None
    if resume != "auto":
        path = resolve(resume, ckpt_dir)
        assert path is not None
        found = problems(path, resume_data, universal)
        if found:
            older = [p for p in _candidates(ckpt_dir) if p != path and p.name < path.name]
            raise CheckpointError(f"cannot resume {path}: {'; '.join(found)}. {_fallback_fix(older, resume_data)}")
        return path
    candidates = _candidates(ckpt_dir)
    skipped: list[str] = []
    for path in candidates:
        found = problems(path, resume_data, universal)
        if not found:
            for line in skipped:
                log(f"trainer.resume=auto: skipped {line}; resuming from the newest intact checkpoint {path}")
            return path
        skipped.append(f"{path.name} ({'; '.join(found)})")
    if skipped:
        raise CheckpointError(
            f"no intact checkpoint in {ckpt_dir}: {' | '.join(skipped)}. Start afresh with trainer.resume=none "
            "(or a new run_dir); the checkpoints are left as they are"
        )
    return None


def _candidates(ckpt_dir: Path) -> list[Path]:
    """Checkpoints to resume from, best first: the one ``latest`` names, then every step directory, newest first."""
    steps = sorted((p for p in list_checkpoints(ckpt_dir)), reverse=True)
    latest = ckpt_dir / "latest"
    named = ckpt_dir / latest.read_text().strip() if latest.is_file() else None
    return ([named] if named in steps else []) + [p for p in steps if p != named]


def _fallback_fix(older: list[Path], resume_data: bool) -> str:
    for path in older:
        if not problems(path, resume_data):
            return f"Resume from the previous intact checkpoint with trainer.resume={path}"
    return "No older intact checkpoint: start afresh with trainer.resume=none (or a new run_dir)"


def check_world_size(path: Path, world_size: int, load_universal: bool = False, elastic: bool = False) -> None:
    """Raise with the fix when ``path`` was saved by another number of ranks than this run has: ZeRO optimizer
    partitions are per rank. A universal checkpoint (``load_universal``) loads at any world size, and
    ``trainer.elastic`` converts one (elastic.py)."""
    saved = read_trainer_state(path).get("world_size", world_size)
    if saved == world_size or load_universal or elastic:
        return
    raise RuntimeError(
        f"checkpoint {path} was saved by {saved} ranks, this run has {world_size}. ZeRO partitions the "
        f"optimizer per rank: resume with {saved} ranks, or add trainer.elastic=true (rank 0 converts the "
        "checkpoint once with deepspeed.checkpoint.ds_to_universal, every rank resumes it as with "
        "deepspeed.load_universal=true, and the accumulation keeps the global batch; see README, FAQ)."
    )


def check_compatible(
    path: Path, world_size: int, zero_stage: int, load_universal: bool = False, elastic: bool = False
) -> None:
    """``check_world_size``, and the ZeRO stage: DeepSpeed's files differ per stage (an ``AssertionError`` deep in
    its loader otherwise). ``elastic`` changes the world size only, never the stage."""
    check_world_size(path, world_size, load_universal, elastic)
    saved = read_trainer_state(path).get("config", {}).get("deepspeed", {}).get("zero_stage", zero_stage)
    if saved != zero_stage and not load_universal:
        raise CheckpointError(
            f"checkpoint {path} was saved with deepspeed.zero_stage={saved}, this run has {zero_stage}: resume with "
            f"deepspeed=zero{saved}, or convert it with deepspeed.checkpoint.ds_to_universal and resume with "
            "deepspeed.load_universal=true"
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


def _deepspeed_safe_globals() -> list[Any]:
    """The classes DeepSpeed 0.19's checkpoint files hold besides tensors and containers (ZeRO optimizer states)."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, ZeroStageEnum, fragment_address]


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Within: every ``torch.load`` (DeepSpeed's, which asks for ``weights_only=False``, included) unpickles tensors,
    containers and the allow-listed DeepSpeed classes only; anything else raises instead of running."""
    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    with torch.serialization.safe_globals(_deepspeed_safe_globals()):
        torch.load = load
        try:
            yield
        finally:
            torch.load = original


def _write_failure(exc: BaseException, ckpt_dir: Path, step: int, needed: int) -> CheckpointError:
    """Say what happened when a save could not be written (disk full, read-only, no permission)."""
    previous = latest_checkpoint(ckpt_dir)
    kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
    code = next((e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno), None)
    try:
        free = shutil.disk_usage(ckpt_dir).free
    except OSError:
        free = None
    if code == errno.ENOSPC or (free is not None and free < needed):
        what = f"no space left on the device of {ckpt_dir} ({free} bytes free, a checkpoint needs about {needed})"
        fix = "free space there or lower trainer.keep_last, then resume"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = f"checkpoint directory {ckpt_dir} is read-only or not writable by this user ({os.strerror(code)})"
        fix = "make it writable or give another run_dir, then resume"
    else:
        what = f"could not write checkpoint {tag_for(step)} in {ckpt_dir} ({type(exc).__name__}: {exc})"
        fix = "fix the cause, then resume"
    return CheckpointError(f"{what}: step {step} was not saved; {kept}; {fix}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _size(path: Path | None) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path and path.is_dir() else 0


def save(
    engine: Any,
    ckpt_dir: Path,
    step: int,
    trainer_state: dict[str, Any],
    data_state: dict[str, Any],
    rank: int,
    keep_last: int = 3,
) -> Path:
    """Collective: every rank calls it. Returns the published checkpoint directory; a save that cannot be written
    raises ``CheckpointError`` on every rank saying why (no space, read-only) and leaves the previous one intact."""
    tag = tag_for(step)
    partial = tag + ".partial"
    final = ckpt_dir / tag
    tmp_dir = ckpt_dir / partial
    needed = _size(latest_checkpoint(ckpt_dir))
    failure: BaseException | None = None
    if rank == 0:
        try:  # a writable directory, checked before DeepSpeed, which reports a read-only one as a missing parent
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp_dir, ignore_errors=True)
            tmp_dir.mkdir()
        except OSError as e:
            failure = e
    _raise_if_any_failed(failure, ckpt_dir, step, needed, tmp_dir, rank)
    try:
        engine.save_checkpoint(str(ckpt_dir), tag=partial, save_latest=False)
        (tmp_dir / f"data_state_rank{rank}.json").write_text(json.dumps(data_state))
        torch.save(rng_state(), tmp_dir / f"rng_rank{rank}.pt")
    except (OSError, RuntimeError) as e:
        failure = e
    _raise_if_any_failed(failure, ckpt_dir, step, needed or _size(tmp_dir), tmp_dir, rank)
    if rank == 0:
        try:
            files = {f.name: f.stat().st_size for f in sorted(tmp_dir.iterdir()) if f.is_file()}
            # micro-batches per step over all ranks: what an elastic resume on another world size keeps (elastic.py)
            micro = engine.train_batch_size() // engine.train_micro_batch_size_per_gpu()
            state = dict(
                trainer_state, step=step, code_version=code_version(), global_micro_batches=micro, **{_FILES: files}
            )
            (tmp_dir / _STATE).write_text(json.dumps(state, indent=2, default=str))
        except OSError as e:
            failure = e
    _raise_if_any_failed(failure, ckpt_dir, step, needed, tmp_dir, rank)
    if rank == 0:
        if final.exists():  # a re-save of the same step (e.g. signal right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp_dir, final)
        _atomic_write_text(ckpt_dir / "latest", tag)
        for old in list_checkpoints(ckpt_dir)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def _raise_if_any_failed(
    failure: BaseException | None, ckpt_dir: Path, step: int, needed: int, tmp_dir: Path, rank: int
) -> None:
    """Collective: all ranks learn whether any failed, and all raise together (none is left waiting)."""
    if all_reduce_sum([1.0 if failure else 0.0], collective_device())[0] == 0:
        return
    if rank == 0:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # the space it held, back
    if failure is None:
        raise CheckpointError(f"another rank could not write checkpoint {tag_for(step)} in {ckpt_dir} (see its error)")
    raise _write_failure(failure, ckpt_dir, step, needed) from failure


def load(
    engine: Any, path: Path, rank: int, load_optimizer: bool = True, universal: bool = False
) -> tuple[dict[str, Any], dict | None]:
    """Collective: restore model/optimizer into ``engine``, this rank's RNG; return (trainer_state, data_state).
    Only weights and allow-listed classes are unpickled (``weights_only_loads``). ``universal``: the weights and
    optimizer come from ``path``'s universal conversion (elastic.py), at any world size; RNG and positions from
    ``path`` (a rank beyond the saved world keeps its seeded RNG)."""
    load_dir, tag = (path, UNIVERSAL) if universal else (path.parent, path.name)
    groups = [{k: v for k, v in g.items() if k != "params"} for g in engine.optimizer.param_groups]
    try:
        with weights_only_loads():
            load_path, _ = engine.load_checkpoint(
                str(load_dir), tag=tag, load_optimizer_states=load_optimizer, load_lr_scheduler_states=False
            )
    except Exception as e:
        older = [p for p in _candidates(path.parent) if p.name < path.name]
        raise CheckpointError(
            f"could not load checkpoint {path} ({_reason(e)}): a file of it is damaged or holds more than weights "
            f"(nothing in it was run). {_fallback_fix(older, True)}"
        ) from e
    if load_path is None:
        raise CheckpointError(f"DeepSpeed could not load checkpoint {path}; is it complete?")
    if universal:
        _repair_universal_load(engine.optimizer, groups)
    state = read_trainer_state(path)
    rng_file = path / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(_load_file(rng_file, _numpy_safe_globals()))
    return state, _data_state(path, rank)


def _data_state(path: Path, rank: int) -> dict[str, Any] | None:
    """Every rank's saved data position merged into one (``data.loader.merge_rank_states``): any rank of any world
    size finds its logical streams there. None when the checkpoint holds none."""
    from qwenaudio_train.data.loader import merge_rank_states

    saved = {}
    for file in path.glob("data_state_rank*.json"):
        suffix = file.stem.removeprefix("data_state_rank")
        if suffix.isdigit():
            saved[int(suffix)] = json.loads(file.read_text())
    return merge_rank_states(saved, rank)


def _repair_universal_load(optimizer: Any, groups: list[dict[str, Any]]) -> None:
    """Undo two slips of DeepSpeed 0.19's ZeRO-3 universal load, harmless to repeat at other stages: it gives every
    parameter group the first group's hyperparameters (weight decay, lr_scale), and one ``step`` tensor to all of
    them, which the optimizer then advances once per group and step (bias correction off from the 2nd group on)."""
    for group, own in zip(optimizer.param_groups, groups):
        group.update(own)  # this run's own, from the config
    for state in getattr(optimizer, "optimizer", optimizer).state.values():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"] = state["step"].clone()


def _numpy_safe_globals() -> list[Any]:
    """What rng files of older saves hold (numpy's RNG state as an array): arrays and dtypes, no functions of ours."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _reason(e: BaseException) -> str:
    """One line of an exception: torch's weights-only refusal is a paragraph whose useful line names the global."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
    return f"{type(e).__name__}: {useful.split('. Please use')[0]}"


def _load_file(file: Path, safe_globals: list[Any] | None = None) -> Any:
    """``torch.load(weights_only=True)`` with the file's name in any error."""
    try:
        with torch.serialization.safe_globals(safe_globals or []):
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{file} could not be loaded ({_reason(e)}): it is damaged or holds more than weights (nothing in it was "
            "run); use another checkpoint"
        ) from e


def load_model_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Full fp32 weights of a checkpoint, without DeepSpeed's engine (for eval/export). ZeRO-3 is consolidated."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state = read_trainer_state(path) if is_checkpoint(path) else {}
    zero_stage = int(state.get("config", {}).get("deepspeed", {}).get("zero_stage", 0))
    if zero_stage == 3:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        try:
            with weights_only_loads():
                return get_fp32_state_dict_from_zero_checkpoint(str(path.parent), tag=path.name)
        except Exception as e:
            raise CheckpointError(
                f"could not consolidate ZeRO-3 checkpoint {path} ({type(e).__name__}: {e}): a file of it is damaged "
                "or holds more than weights; use another checkpoint"
            ) from e
    model_file = path / "mp_rank_00_model_states.pt"
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file} is missing: {path} is not a complete DeepSpeed checkpoint")
    blob = _load_file(model_file, _deepspeed_safe_globals())
    return {k: v.float() if v.is_floating_point() else v for k, v in blob["module"].items()}
