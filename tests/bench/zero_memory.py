"""Per-rank memory of parameters, gradients and optimizer state under DeepSpeed ZeRO 1/2/3, in fp32 and bf16
(run by test_bench_train.py).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/bench/zero_memory.py --out DIR

For each precision and stage, builds a Qwen-Audio-shaped model (``--size small``: ~10 M parameters, so that
partitioning is visible; ``tiny``: the test preset), wraps it with ``deepspeed.initialize`` (our config, torch
AdamW; ``bf16`` turns on DeepSpeed's bf16 mode, which runs on the CPU accelerator), takes one training step and
counts on this rank:

* ``param_bytes_held``: model parameter storage resident on this rank (ZeRO-3: its partition only), in the
  training dtype;
* ``grad_bytes``: gradient storage held after backward, before the step (what is resident when the step
  starts): ``p.grad`` and the ZeRO optimizer's gradient partitions and flat buffers, each storage counted once;
* ``adam_state_bytes``: the tensors in the optimizer's state (exp_avg, exp_avg_sq, step), counted after the step
  (torch's AdamW creates them lazily);
* ``fp32_master_bytes``: the fp32 weights the optimizer updates on this rank, and whether they are the model's
  own parameter storage or a separate copy. ZeRO-1/2 keep a flat fp32 partition even in fp32 training. ZeRO-3
  means to reuse the parameter partition when it is already fp32 on the right device, but DeepSpeed 0.19.8
  compares a ``torch.device`` with a device-name string there (never equal), so it copies as well;
* ``optimizer_extra_bytes``: Adam state + the master weights when they are a copy;
* ``total_bytes``: parameters + gradients + optimizer extra: the model-state memory of the rank (activations
  and communication buckets not counted).

Writes ``DIR/rank<R>.json``. Not a test: pytest does not collect it (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path
from typing import Any

import torch

from qwenaudio_train import audio as A
from qwenaudio_train.distributed import deepspeed_config, init_distributed
from qwenaudio_train.model import ModelConfig, build_model
from qwenaudio_train.optim import OptimConfig, build_optimizer

VOCAB = 4096
IDS = dict(audio_start_id=4000, audio_end_id=4001, audio_pad_id=4002, eod_id=4003)
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "small": dict(
        encoder_d_model=256,
        encoder_layers=4,
        encoder_heads=4,
        encoder_ffn_dim=1024,
        llm_hidden_size=256,
        llm_layers=4,
        llm_heads=4,
        llm_kv_heads=2,
        llm_intermediate_size=1024,
    ),
}


def model_config(size: str) -> ModelConfig:
    return ModelConfig(preset="tiny", vocab_size=VOCAB, **IDS, **SIZES[size])


def dummy_batch(batch: int = 2, seconds: float = 1.0, text: int = 24) -> dict[str, torch.Tensor]:
    """Rows of ``<audio> pad*N </audio> text``, loss on the text; the same on every rank (seeded)."""
    g = torch.Generator().manual_seed(0)
    samples = A.samples_for_duration(seconds)
    frames, n_pos = A.mel_frames(samples), A.audio_positions(samples)
    span = [IDS["audio_start_id"]] + [IDS["audio_pad_id"]] * n_pos + [IDS["audio_end_id"]]
    rows = [span + torch.randint(0, 3900, (text,), generator=g).tolist() for _ in range(batch)]
    input_ids = torch.tensor(rows)
    labels = input_ids.clone()
    labels[:, : len(span)] = -100
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "audio_features": torch.randn(batch, 80, frames, generator=g),
        "audio_lengths": torch.full((batch,), frames),
    }


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _tensors(obj: Any, depth: int = 0) -> list[torch.Tensor]:
    if torch.is_tensor(obj):
        return [obj]
    if depth > 2:
        return []
    if isinstance(obj, (list, tuple)):
        return [t for x in obj for t in _tensors(x, depth + 1)]
    if isinstance(obj, dict):
        return [t for x in obj.values() for t in _tensors(x, depth + 1)]
    return []


def grad_bytes(engine: Any, model: torch.nn.Module) -> int:
    """Gradient storage held on this rank: ``p.grad`` and every tensor the ZeRO optimizer keeps under an attribute
    named like a gradient (``averaged_gradients``, ``grad_partitions_flat_buffer``, ...). Partitions are often
    views of one flat buffer: each storage counts once, at its full size."""
    found = [p.grad for p in model.parameters() if p.grad is not None]
    for name, value in vars(engine.optimizer).items():
        if "grad" in name.lower():
            found += _tensors(value)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in found if t.numel()}
    return sum(storages.values())


def optimizer_bytes(engine: Any, model: torch.nn.Module, stage: int) -> dict[str, Any]:
    zero_opt = engine.optimizer
    inner = getattr(zero_opt, "optimizer", zero_opt) if stage > 0 else zero_opt
    state = sum(_nbytes(v) for s in inner.state.values() for v in s.values() if torch.is_tensor(v))
    # The fp32 weights the optimizer updates. ZeRO-3 empties the inner optimizer's param_groups between steps
    # (it swaps sub-groups in during step), so read the partitions from the ZeRO optimizer itself.
    if stage == 0:
        masters = [p for g in inner.param_groups for p in g["params"]]
        params = [p for p in model.parameters() if p.requires_grad]
    elif stage in (1, 2):
        masters = list(zero_opt.single_partition_of_fp32_groups)
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        masters = list(zero_opt.fp32_partitioned_groups_flat)
        params = list(zero_opt.fp16_partitioned_groups_flat)
    param_storage = {p.untyped_storage().data_ptr() for p in params}
    shared = all(m.untyped_storage().data_ptr() in param_storage for m in masters)
    master = sum(_nbytes(m) for m in masters)
    if stage == 3:
        held = sum(_nbytes(p.ds_tensor) for p in model.parameters() if hasattr(p, "ds_tensor"))
    else:
        held = sum(_nbytes(p) for p in model.parameters())
    return {
        "adam_state_bytes": state,
        "fp32_master_bytes": master,
        "master_is_the_param_storage": shared,
        "optimizer_extra_bytes": state + (0 if shared else master),
        "param_bytes_held": held,
    }


def main() -> None:
    import deepspeed

    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--stages", default="1,2,3", help="comma-separated ZeRO stages (0 = no partitioning)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    a = p.parse_args()
    dist_info = init_distributed()
    world, rank = dist_info.world_size, dist_info.rank
    result: dict[str, Any] = {"rank": rank, "world_size": world, "size": a.size, "precisions": {}}
    for precision in a.precisions.split(","):
        bf16 = precision == "bf16"
        stages: dict[str, Any] = {}
        for stage in (int(s) for s in a.stages.split(",")):
            torch.manual_seed(0)
            model = build_model(model_config(a.size))  # outside zero.Init: deepspeed.initialize partitions it
            n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            optimizer = build_optimizer(model, OptimConfig())
            config = deepspeed_config(
                stage, micro_batch_size=2, grad_accum=1, world_size=world, grad_clip=1.0, bf16=bf16
            )
            engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
            batch = dummy_batch()
            if bf16:
                batch["audio_features"] = batch["audio_features"].bfloat16()
            out = engine(**batch, return_logits=False)
            engine.backward(out.loss_sum / out.n_tokens.clamp(min=1))
            grads = grad_bytes(engine, model)
            engine.step()
            result["trainable_params"] = n_params
            counts = optimizer_bytes(engine, model, stage)
            counts["grad_bytes"] = grads
            counts["total_bytes"] = counts["param_bytes_held"] + grads + counts["optimizer_extra_bytes"]
            stages[str(stage)] = counts
            del engine, model, optimizer, out
            gc.collect()
        result["precisions"][precision] = stages
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / f"rank{rank}.json").write_text(json.dumps(result, indent=1))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    main()
