"""The DeepSpeed config dict (`distributed.deepspeed_config`): ZeRO communication knobs by device, validated by
DeepSpeed's own schema (it refuses unknown keys), and wired from the `deepspeed` config section."""

from __future__ import annotations

import pytest
import torch
from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

from qwenaudio_train.config import DeepSpeedConfig, compose
from qwenaudio_train.distributed import COMM_KNOBS, deepspeed_config


def _zero(stage: int, **knobs) -> dict:
    zero = deepspeed_config(stage, 4, 2, 2, 1.0, **knobs)["zero_optimization"]
    DeepSpeedZeroConfig(**zero)  # DeepSpeed's schema accepts every key (it rejects unknown ones)
    return zero


def test_cpu_defaults_and_explicit_knobs(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _zero(0) == {"stage": 0}
    z1 = _zero(1)
    assert (z1["reduce_bucket_size"], z1["allgather_bucket_size"]) == (200_000_000, 200_000_000)
    z2 = _zero(2)
    assert z2["overlap_comm"] is False and z2["contiguous_gradients"] is True  # CPU: nothing to overlap with
    assert _zero(2, overlap_comm=True, reduce_bucket_size=5e7)["overlap_comm"] is True
    assert _zero(2, reduce_bucket_size=50_000_000, allgather_bucket_size=1000)["allgather_bucket_size"] == 1000
    z3 = _zero(3)
    # CPU: the tiny models are partitioned at all (nothing persists whole)
    assert z3["stage3_param_persistence_threshold"] == 0 == z3["stage3_model_persistence_threshold"]
    assert z3["stage3_prefetch_bucket_size"] == 50_000_000
    z3 = _zero(3, stage3_param_persistence_threshold=10, stage3_prefetch_bucket_size=7)
    assert z3["stage3_param_persistence_threshold"] == 10 and z3["stage3_prefetch_bucket_size"] == 7
    assert "stage3_model_persistence_threshold" not in z3


def test_gpu_defaults(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _zero(2)["overlap_comm"] is True and _zero(3)["overlap_comm"] is True
    assert _zero(2, overlap_comm=False)["overlap_comm"] is False
    z3 = _zero(3)
    assert z3["stage3_param_persistence_threshold"] == 100_000 and "stage3_model_persistence_threshold" not in z3


def test_knobs_come_from_the_deepspeed_section():
    defaults = DeepSpeedConfig()
    assert all(hasattr(defaults, k) for k in COMM_KNOBS)
    cfg = compose(
        "pretrain",
        ["model.tokenizer=t", "deepspeed.overlap_comm=true", "deepspeed.reduce_bucket_size=1000", "deepspeed=zero3"],
    )
    ds = cfg.deepspeed
    zero = deepspeed_config(ds.zero_stage, 4, 1, 1, 1.0, **{k: getattr(ds, k) for k in COMM_KNOBS})["zero_optimization"]
    assert zero["overlap_comm"] is True and zero["reduce_bucket_size"] == 1000 and zero["stage"] == 3


@pytest.mark.parametrize(
    ("overrides", "towers"),
    [
        ([], (False, False, 1)),
        (["deepspeed.activation_checkpointing=true"], (True, True, 1)),  # the deprecated key: both towers
        (["deepspeed.checkpoint_encoder=true", "deepspeed.checkpoint_every=4"], (True, False, 4)),
        (["deepspeed.checkpoint_llm=true"], (False, True, 1)),
    ],
)
def test_per_tower_checkpointing_from_the_config(overrides, towers):
    from qwenaudio_train.flops import Checkpointing

    cfg = compose("pretrain", ["model.tokenizer=t", *overrides])
    assert Checkpointing.from_config(cfg.deepspeed) == Checkpointing(*towers)


def test_stage1_preset_checkpoints_the_encoder_only():
    from qwenaudio_train.flops import Checkpointing

    cfg = compose("pretrain", ["model.tokenizer=t", "experiment=qwen_audio_pretrain", "data.root=d"])
    assert Checkpointing.from_config(cfg.deepspeed) == Checkpointing(encoder=True, llm=False)
