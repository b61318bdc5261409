"""Training benchmarks: our DeepSpeed step against a bare PyTorch loop, and ZeRO optimizer memory per rank.

1. Loop throughput (goal: ``Trainer.train_step`` >= 0.95x the steps/s of a bare loop). The Trainer is built like
   the integration tests build it (``compose("pretrain", ["experiment=debug", ...])`` on the tiny corpus: tiny
   model, ZeRO-2, world of one, fp32). The bare loop trains the same model (same seed, same parameter groups,
   torch AdamW), on the same pre-built batches, with the same loss scaling (token-loss sum / target tokens),
   ``clip_grad_norm_`` and ``optimizer.step()``. Data loading is excluded from both; steps are interleaved.
   A third variant drives the Trainer's DeepSpeed engine directly (forward, backward, step: no token all-reduce,
   finiteness check or per-task losses) to tell the Trainer's own cost from DeepSpeed's. Measured at batch 4
   (the debug experiment) and 16: DeepSpeed's per-step cost is mostly per parameter, so its share shrinks as
   the compute per step grows. One torch thread, as each rank has under torchrun (OMP_NUM_THREADS=1).
2. Optimizer-state bytes per rank for ZeRO 1/2/3 at world size 1 and 2: ``zero_memory.py`` under
   ``torch.distributed.run`` (the first DeepSpeed init on a machine JIT-compiles a comm op, ~40 s, cached).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.bench.conftest import REPO, interleaved, summary, threads

pytestmark = pytest.mark.bench

N_BATCHES = 8
ROUNDS, PER_ROUND = 6, 5
DIST_ENV = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "TORCHELASTIC_RUN_ID",
)


@pytest.fixture
def make_trainer(tiny_corpus, tmp_path):
    """Build Trainers on the tiny corpus; the process group, env and signal handlers they set are undone after."""
    from qwenaudio_train.config import compose
    from qwenaudio_train.trainer import Trainer

    env = dict(os.environ)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    built = []

    def make(*overrides: str) -> Trainer:
        run = tmp_path / f"run{len(built)}"
        cfg = compose(
            "pretrain",
            ["experiment=debug", f"data.root={tiny_corpus}", f"run_dir={run}", "trainer.resume=none", *overrides],
        )
        built.append(Trainer(cfg))
        return built[-1]

    yield make
    for t in built:
        t.logger.close()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    os.environ.clear()
    os.environ.update(env)
    for s, h in handlers.items():
        signal.signal(s, h)


def _compare(trainer: Any, thread_counts: list[int]) -> dict[str, Any]:
    """Interleaved step times of ``trainer.train_step`` and of a bare loop over the same model and batches."""
    from qwenaudio_train.data.processing import IGNORE_INDEX
    from qwenaudio_train.model import build_model
    from qwenaudio_train.optim import apply_freeze, build_optimizer, lr_at, set_lr
    from qwenaudio_train.trainer import MODEL_INPUTS

    cfg = trainer.cfg
    batches = list(itertools.islice(iter(trainer.loader), N_BATCHES))
    lr = lr_at(0, cfg.trainer.max_steps, cfg.optim)
    set_lr(trainer.optimizer, lr)

    torch.manual_seed(cfg.seed)  # the Trainer's seed before build_model: the same initial weights
    model = build_model(cfg.model_config(trainer.tokenizer))
    apply_freeze(model, cfg.trainer.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(model, cfg.optim)
    set_lr(optimizer, lr)
    model.train()

    def bare_step(batch: dict[str, Any]) -> float:
        tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        out = model(**{k: batch[k] for k in MODEL_INPUTS}, return_logits=False)
        (out.loss_sum * (1.0 / max(tokens, 1))).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out.loss_sum.detach())

    engine = trainer.engine

    def engine_step(batch: dict[str, Any]) -> float:
        tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        out = engine(**{k: batch[k] for k in MODEL_INPUTS}, return_logits=False)
        engine.backward(out.loss_sum * (1.0 / max(tokens, 1)))
        engine.step()
        return float(out.loss_sum.detach())

    ds_iter, bare_iter, engine_iter = (itertools.cycle(batches) for _ in range(3))
    # Same weights and batch: the first step's losses agree (a check that both loops do the same work).
    first_ds = trainer.train_step(ds_iter)["loss_sum"]
    first_bare = bare_step(next(bare_iter))
    assert first_ds == pytest.approx(first_bare, rel=1e-5)

    fns = {
        "trainer_train_step": lambda: trainer.train_step(ds_iter),
        "deepspeed_engine_only": lambda: engine_step(next(engine_iter)),
        "bare_pytorch": lambda: bare_step(next(bare_iter)),
    }
    by_threads = {}
    for n_threads in thread_counts:
        with threads(n_threads):
            t = interleaved(fns, ROUNDS, PER_ROUND, warmup=2, budget_s=6.0)
        ms = {k: summary(v) for k, v in t.items()}
        ratio = ms["bare_pytorch"]["median"] / ms["trainer_train_step"]["median"]  # = steps/s ours / bare
        by_threads[str(n_threads)] = {
            "step_ms": ms,
            "steps_per_s": {k: round(1e3 / v["median"], 2) for k, v in ms.items()},
            "throughput_ratio_ours_over_bare": round(ratio, 3),
            "throughput_ratio_engine_only_over_bare": round(
                ms["bare_pytorch"]["median"] / ms["deepspeed_engine_only"]["median"], 3
            ),
        }
    return {
        "zero_stage": cfg.deepspeed.zero_stage,
        "world_size": 1,
        "batch_size": cfg.data.batch_size,
        "trainable_params": sum(p.numel() for p in params),
        "first_step_loss_sum": [first_ds, first_bare],
        "threads": by_threads,
    }


def test_train_step_vs_bare_loop(record, make_trainer):
    # One torch thread: what every rank gets under torchrun (launch/train.sh), which sets OMP_NUM_THREADS=1.
    runs = {
        "tiny_batch4": _compare(make_trainer(), [1]),
        # A larger batch: DeepSpeed's per-step cost is mostly per parameter, so its share shrinks with compute.
        "tiny_batch16": _compare(make_trainer("data.batch_size=16"), [1]),
    }
    main = runs["tiny_batch4"]["threads"]
    results = {
        "model": "tiny (configs/model/tiny.yaml), experiment=debug, fp32",
        "prebuilt_batches": N_BATCHES,
        "rounds": ROUNDS,
        "steps_per_round": PER_ROUND,
        "runs": runs,
        "goal": {
            "target_ratio": 0.95,
            "ratio_min_batch4": min(v["throughput_ratio_ours_over_bare"] for v in main.values()),
        },
    }
    results["goal"]["met"] = results["goal"]["ratio_min_batch4"] >= 0.95
    line = "; ".join(
        f"{name} @{th}t: train_step {v['step_ms']['trainer_train_step']['median']:.1f} ms, engine "
        f"only {v['step_ms']['deepspeed_engine_only']['median']:.1f} ms, bare "
        f"{v['step_ms']['bare_pytorch']['median']:.1f} ms, ratio {v['throughput_ratio_ours_over_bare']}"
        for name, r in runs.items()
        for th, v in r["threads"].items()
    )
    record("train_step", results, line)


def _run_zero_memory(world: int, out: Path) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env.setdefault("WANDB_MODE", "disabled")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(world),
        str(Path(__file__).with_name("zero_memory.py")),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, env=env, cwd=REPO, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def test_zero_optimizer_memory(record, tmp_path):
    results: dict[str, Any] = {"world_sizes": {}}
    for world in (1, 2):
        ranks = _run_zero_memory(world, tmp_path / f"world{world}")
        results["trainable_params"] = ranks[0]["trainable_params"]
        results["model"] = f"{ranks[0]['size']} (tests/bench/zero_memory.py)"
        results["world_sizes"][str(world)] = {
            stage: {k: [r["stages"][stage][k] for r in ranks] for k in ranks[0]["stages"][stage]}
            for stage in ranks[0]["stages"]
        }
    one, two = results["world_sizes"]["1"], results["world_sizes"]["2"]
    for stage in ("1", "2", "3"):
        # Partitioning is visible: each of 2 ranks holds about half of what the single rank holds.
        assert max(two[stage]["adam_state_bytes"]) < 0.6 * one[stage]["adam_state_bytes"][0]
    mib = lambda b: b / 2**20  # noqa: E731
    line = "; ".join(
        f"ZeRO-{s}: optimizer extra MiB/rank 1 rank {mib(one[s]['optimizer_extra_bytes'][0]):.1f}, 2 ranks "
        f"{mib(max(two[s]['optimizer_extra_bytes'])):.1f} (params held {mib(max(two[s]['param_bytes_held'])):.1f})"
        for s in one
    )
    record("zero_memory", results, f"{results['trainable_params']:,} trainable params; " + line)
