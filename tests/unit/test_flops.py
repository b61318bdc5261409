"""The FLOP count of a training step (qwenaudio_train.flops) against torch's FlopCounterMode on the tiny model."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from qwenaudio_train.flops import BatchInfo, Checkpointing, ModelDims, Trainable, combine, mfu, step_flops
from qwenaudio_train.model import build_model
from qwenaudio_train.optim import apply_freeze
from tests.unit.test_model import make_batch, tiny_cfg

# Mixed clip and row lengths: both towers carry padding.
ROWS = [[5, "a", 30], [2, "a", 90], [40, "a", 7]]
LENGTHS = [500, 300, 1100]


def _measure(
    policy: str, rows, lengths, checkpointing: bool | Checkpointing = False, **dims
) -> tuple[float, dict[str, float]]:
    torch.manual_seed(0)
    # eager attention: its matmuls are what FlopCounterMode counts on CPU
    model = build_model(tiny_cfg(attn_implementation="eager", **dims)).train()
    apply_freeze(model, policy)
    if isinstance(checkpointing, Checkpointing):
        model.gradient_checkpointing_enable(**vars(checkpointing))
    elif checkpointing:
        model.gradient_checkpointing_enable()
    ids, mask, labels, mel, lens = make_batch(rows, lengths)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "audio_features": mel, "audio_lengths": lens}
    with FlopCounterMode(display=False) as counter:
        model(ids, mask, mel, lens, labels, return_logits=False).loss_sum.backward()
    info = BatchInfo.from_batch(batch)
    counted = step_flops(ModelDims.from_model(model), info, policy, checkpointing=checkpointing)
    assert counted == step_flops(ModelDims.from_model(model), info, Trainable.from_model(model), checkpointing)
    return float(counter.get_total_flops()), counted


@pytest.mark.parametrize("policy", ["pretrain", "none", "sft"])
def test_computed_flops_equal_flop_counter(policy):
    measured, counted = _measure(policy, ROWS, LENGTHS)
    assert counted["flops_computed"] == pytest.approx(measured, rel=0.05)
    # padding is cost, not work: the useful count is smaller, by the padding of both towers
    assert counted["flops"] < 0.9 * counted["flops_computed"]
    assert counted["flops"] == pytest.approx(counted["flops/encoder"] + counted["flops/llm"])
    t = [(n - 1) // 2 + 1 for n in LENGTHS]
    assert counted["padding/encoder"] == pytest.approx(1 - sum(t) / (3 * max(t)))
    ids, mask, *_ = make_batch(ROWS, LENGTHS)
    assert counted["padding/llm"] == pytest.approx(1 - int(mask.sum()) / mask.numel())


def test_frozen_llm_costs_forward_plus_input_gradient():
    """Stage 1 (LLM frozen) against full training: the LLM's weight matmuls go from 6x to 4x per token; the
    encoder's side is the same."""
    ids, mask, labels, _, lens = make_batch(ROWS, LENGTHS)
    info = BatchInfo.from_batch({"input_ids": ids, "attention_mask": mask, "labels": labels, "audio_lengths": lens})
    dims = ModelDims.from_config(tiny_cfg())
    frozen, full = step_flops(dims, info, "pretrain"), step_flops(dims, info, "none")
    assert frozen["flops/encoder"] == full["flops/encoder"]
    h, kv, ff = dims.llm_hidden_size, dims.llm_kv_dim, dims.llm_intermediate_size
    tokens, targets = int(mask.sum()), int((labels[:, 1:] != -100).sum())
    weight_params = dims.llm_layers * (2 * h * h + 2 * h * kv + 3 * h * ff)
    expected = 2 * weight_params * tokens + 2 * targets * h * dims.vocab_size  # the skipped weight gradients
    assert full["flops/llm"] - frozen["flops/llm"] == pytest.approx(expected)


def test_without_padding_useful_equals_computed():
    measured, counted = _measure("pretrain", [[10, "a", 20], [10, "a", 20]], [800, 800])
    assert counted["padding/encoder"] == counted["padding/llm"] == 0.0
    assert counted["flops"] == counted["flops_computed"] == pytest.approx(measured, rel=0.05)


def test_checkpoint_recomputation_is_hardware_work_only():
    measured, counted = _measure("pretrain", ROWS[:2], LENGTHS[:2], checkpointing=True)
    # non-reentrant checkpointing stops recomputing once backward has what it needs: the count is an upper bound
    assert counted["flops_hardware"] == pytest.approx(measured, rel=0.05)
    assert counted["flops_hardware"] > counted["flops_computed"] > counted["flops"]


@pytest.mark.parametrize(
    "ck", [Checkpointing(encoder=True), Checkpointing(llm=True), Checkpointing(True, True, every=2)], ids=str
)
def test_per_tower_and_every_k_checkpointing_counts_what_it_recomputes(ck):
    """Checkpointing the encoder only, the LLM only, or every 2nd layer of 3 in both (layers 0 and 2): the hardware
    count matches FlopCounterMode, and the recomputation is that tower's (share of the) layers' forward."""
    dims = {"encoder_layers": 3, "llm_layers": 3}
    measured, counted = _measure("pretrain", ROWS[:2], LENGTHS[:2], checkpointing=ck, **dims)
    assert counted["flops_hardware"] == pytest.approx(measured, rel=0.05)
    ids, mask, labels, _, lens = make_batch(ROWS[:2], LENGTHS[:2])
    info = BatchInfo.from_batch({"input_ids": ids, "attention_mask": mask, "labels": labels, "audio_lengths": lens})
    d = ModelDims.from_config(tiny_cfg(**dims))

    def extra(c: bool | Checkpointing) -> float:
        f = step_flops(d, info, "pretrain", c)
        return f["flops_hardware"] - f["flops_computed"]

    encoder, llm = extra(Checkpointing(encoder=True)), extra(Checkpointing(llm=True))
    assert encoder > 0 and llm > 0 and extra(True) == pytest.approx(encoder + llm)
    assert extra(Checkpointing(True, True, every=2)) == pytest.approx((encoder + llm) * 2 / 3)
    assert extra(Checkpointing(True, True, every=5)) == pytest.approx((encoder + llm) / 3)  # layer 0 only
    # stage 1's LLM is frozen but crossed by the gradient: recomputing it is real work; sft's encoder is not
    assert step_flops(d, info, "sft", Checkpointing(encoder=True))["flops_hardware"] == pytest.approx(
        step_flops(d, info, "sft")["flops_computed"]
    )
    with pytest.raises(ValueError, match="must be >= 1"):
        step_flops(d, info, "pretrain", Checkpointing(llm=True, every=0))


def test_dims_combine_mfu_and_packed_segments():
    torch.manual_seed(0)
    assert ModelDims.from_config(tiny_cfg()) == ModelDims.from_model(build_model(tiny_cfg()))
    big = ModelDims.from_config(tiny_cfg(preset="qwen_audio_qwen2_7b", vocab_size=151_860))
    assert (big.encoder_d_model, big.llm_hidden_size, big.llm_kv_dim, big.vocab_size) == (1280, 3584, 512, 151_872)
    a = step_flops(big, BatchInfo((3000, 1000), (800, 300), 800, 200), "pretrain")
    b = step_flops(big, BatchInfo((3000,), (790,), 790, 50), "pretrain")
    both = combine([a, b])
    assert both["flops"] == a["flops"] + b["flops"]
    assert both["padding/llm"] == pytest.approx(1 - (800 + 300 + 790) / (2 * 800 + 790))
    assert mfu(both["flops"], 2.0, 989.0, devices=2) == pytest.approx(both["flops"] / 2.0 / (2 * 989e12))
    # two samples packed in one row attend within themselves: less attention work than one long sample
    packed = step_flops(big, BatchInfo((3000,), (800,), 800, 50, row_segments=((500, 300),)), "pretrain")
    single = step_flops(big, BatchInfo((3000,), (800,), 800, 50), "pretrain")
    assert packed["flops"] < single["flops"]
    with pytest.raises(ValueError, match="from_model"):
        step_flops(big, BatchInfo((), (10,), 10, 5), "regex:^audio")


def test_known_devices_have_their_dense_bf16_peak() -> None:
    from qwenaudio_train.flops import detect_peak_tflops

    assert detect_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert detect_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert detect_peak_tflops("NVIDIA H200") == 989.0 and detect_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert detect_peak_tflops("Some Future GPU") == 0.0  # unknown: MFU is not logged rather than made up


def test_a_clip_over_30_s_counts_as_its_windows():
    # 65 s = windows of 3000, 3000 and 500 mel frames, encoded as three clips (beside a 5-s clip): counted as run.
    rows, lengths = [[3, "a", 20], [4, "a", 9]], [6500, 500]
    assert BatchInfo.from_batch(
        dict(
            zip(("input_ids", "attention_mask", "labels", "audio_features", "audio_lengths"), make_batch(rows, lengths))
        )
    ).clip_frames == (3000, 3000, 500, 500)
    measured, counted = _measure("pretrain", rows, lengths)
    assert counted["flops_computed"] == pytest.approx(measured, rel=0.05)
