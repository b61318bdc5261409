"""Step time of ``Trainer.train_step`` against DeepSpeed's engine alone and a bare PyTorch DDP loop, on every rank
(run by test_bench_train.py).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/bench/train_ranks.py \
        --corpus DIR --out DIR [--batch-sizes 4,16]

Each rank builds the Trainer as the integration tests do (``compose("pretrain", ["experiment=debug", ...])``: tiny
model, ZeRO-2, fp32) on the tiny corpus, so the Trainer's collectives (the token-count all-reduce, the
finiteness agreement, DeepSpeed's gradient reduce-scatter and all-gather) run across real ranks. Compared with:

* ``bare_pytorch_ddp``: the same model (same seed, parameter groups, torch AdamW) under
  ``torch.nn.parallel.DistributedDataParallel`` (gloo), on this rank's same pre-built batches, with the same loss
  scaling (token-loss sum x world / global target tokens, the token count all-reduced first, as the Trainer
  does), ``clip_grad_norm_`` and ``optimizer.step()``: what a plain PyTorch data-parallel loop does;
* ``deepspeed_engine_only``: the Trainer's own DeepSpeed engine (the same model) driven directly on this rank's
  same batches: ``engine(batch)``, ``engine.backward``, ``engine.step`` with a local token scaling, nothing read
  back: DeepSpeed's cost without the Trainer's (token all-reduce, finiteness agreement, FLOP count, per-task sums,
  data-wait clock). The goal (issue 11): ``train_step`` within 5% of it.

Steps are interleaved (round robin, order rotating) with a fixed number of rounds: every rank must run the same
collectives in the same order, so no time budget may end a round early on one rank only. Each rank writes
``DIR/rank<R>.json`` with its own step times (milliseconds). Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
from pathlib import Path
from typing import Any

import torch

ROUNDS, PER_ROUND, WARMUP, N_BATCHES = 6, 4, 2, 8


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1e3 for s in seconds]
    return {"median": round(statistics.median(ms), 3), "min": round(min(ms), 3), "max": round(max(ms), 3), "n": len(ms)}


def _interleaved(fns: dict[str, Any], rounds: int, per_round: int, warmup: int) -> dict[str, list[float]]:
    """``conftest.interleaved`` without its time budget (a budget could end a round on one rank only)."""
    import time

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for _ in range(per_round):
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
    return times


def compare(trainer: Any) -> dict[str, Any]:
    """Interleaved step times of the Trainer, its engine alone and a bare DDP loop, over the same batches."""
    from torch.nn.parallel import DistributedDataParallel

    from qwenaudio_train.data.processing import IGNORE_INDEX
    from qwenaudio_train.distributed import all_reduce_sum
    from qwenaudio_train.model import build_model
    from qwenaudio_train.optim import apply_freeze, build_optimizer, lr_at, set_lr
    from qwenaudio_train.trainer import MODEL_INPUTS

    cfg, world = trainer.cfg, trainer.dist.world_size
    batches = list(itertools.islice(iter(trainer.loader), N_BATCHES))  # this rank's own batches
    lr = lr_at(0, cfg.trainer.max_steps, cfg.optim)
    set_lr(trainer.optimizer, lr)

    torch.manual_seed(cfg.seed)  # the Trainer's seed before build_model: the same initial weights
    model = build_model(cfg.model_config(trainer.tokenizer))
    apply_freeze(model, cfg.trainer.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(model, cfg.optim)
    set_lr(optimizer, lr)
    model.train()
    ddp = DistributedDataParallel(model)  # averages gradients over ranks, as DeepSpeed does

    def target_tokens(batch: dict[str, Any]) -> int:
        return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

    def bare_step(batch: dict[str, Any]) -> float:
        global_tokens = all_reduce_sum([target_tokens(batch)], torch.device("cpu"))[0]
        out = ddp(**{k: batch[k] for k in MODEL_INPUTS if k in batch}, return_logits=False)
        (out.loss_sum * (world / max(global_tokens, 1.0))).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out.loss_sum.detach())

    engine = trainer.engine

    def engine_step(batch: dict[str, Any]) -> None:
        out = engine(**{k: batch[k] for k in MODEL_INPUTS if k in batch}, return_logits=False)
        engine.backward(out.loss_sum * (1.0 / max(target_tokens(batch), 1)))
        engine.step()

    ds_iter, bare_iter, engine_iter = (itertools.cycle(batches) for _ in range(3))
    # Same weights and batch on this rank: the first step's local losses agree (both loops do the same work).
    first_ds = float(trainer.train_step(ds_iter)["loss_sum"])  # a device tensor: read here, once
    first_bare = bare_step(next(bare_iter))
    assert abs(first_ds - first_bare) <= 1e-5 * abs(first_bare), (first_ds, first_bare)

    fns = {
        "trainer_train_step": lambda: trainer.train_step(ds_iter),
        "deepspeed_engine_only": lambda: engine_step(next(engine_iter)),
        "bare_pytorch_ddp": lambda: bare_step(next(bare_iter)),
    }
    ms = {k: _summary(v) for k, v in _interleaved(fns, ROUNDS, PER_ROUND, WARMUP).items()}
    bare = ms["bare_pytorch_ddp"]["median"]
    return {
        "zero_stage": cfg.deepspeed.zero_stage,
        "world_size": world,
        "batch_size_per_rank": cfg.data.batch_size,
        "trainable_params": sum(p.numel() for p in params),
        "first_step_loss_sum": [first_ds, first_bare],
        "step_ms": ms,
        "throughput_ratio_ours_over_bare": round(bare / ms["trainer_train_step"]["median"], 3),
        "throughput_ratio_ours_over_engine_only": round(
            ms["deepspeed_engine_only"]["median"] / ms["trainer_train_step"]["median"], 3
        ),
        "throughput_ratio_engine_only_over_bare": round(bare / ms["deepspeed_engine_only"]["median"], 3),
    }


def main() -> None:
    from qwenaudio_train.config import compose
    from qwenaudio_train.trainer import Trainer

    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-sizes", default="4,16")
    a = p.parse_args()
    torch.set_num_threads(1)  # what each rank gets under torchrun (launch/train.sh sets OMP_NUM_THREADS=1)
    result: dict[str, Any] = {"runs": {}}
    for bs in (int(x) for x in a.batch_sizes.split(",")):
        # One run dir per batch size, the same on every rank (rank 0 writes it, as in a real run).
        run = Path(a.out) / f"run_batch{bs}"
        overrides = ["experiment=debug", f"data.root={a.corpus}", f"run_dir={run}", "trainer.resume=none"]
        trainer = Trainer(compose("pretrain", [*overrides, f"data.batch_size={bs}"]))
        result["runs"][f"tiny_batch{bs}"] = compare(trainer)
        result["rank"] = trainer.dist.rank
        trainer.logger.close()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / f"rank{result['rank']}.json").write_text(json.dumps(result, indent=1))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    main()
