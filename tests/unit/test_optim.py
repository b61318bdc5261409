"""Freeze policies, parameter groups (no decay on norms/biases/embeddings, layer-wise lr decay), schedule."""

from __future__ import annotations

import math

import pytest
import torch

from qwenaudio_train.model import ModelConfig, build_model
from qwenaudio_train.optim import OptimConfig, apply_freeze, build_optimizer, lr_at, param_groups, set_lr


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(vocab_size=300, audio_start_id=297, audio_end_id=298, audio_pad_id=296, eod_id=0))


POSITIONS = "audio.embed_positions.weight"


def test_pretrain_freezes_the_llm_and_trains_the_audio_side(model):
    counts = apply_freeze(model, "pretrain")
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.startswith("audio.") and name != POSITIONS), name
    trainable = sum(p.numel() for n, p in model.named_parameters() if n.startswith("audio.") and n != POSITIONS)
    assert counts["trainable"] == trainable
    assert any(n.startswith("audio.proj") for n, p in model.named_parameters() if p.requires_grad)
    assert any("bos_eos" in n for n, p in model.named_parameters() if p.requires_grad)


def test_sft_none_and_regex_policies(model):
    apply_freeze(model, "sft")
    assert all(p.requires_grad == n.startswith("llm.") for n, p in model.named_parameters())
    apply_freeze(model, "none")
    assert all(p.requires_grad == (n != POSITIONS) for n, p in model.named_parameters())
    apply_freeze(model, r"regex:^audio\.proj\.")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"audio.proj.weight", "audio.proj.bias"}
    with pytest.raises(ValueError, match="choose one of"):
        apply_freeze(model, "stage1")
    with pytest.raises(ValueError, match="no trainable"):
        apply_freeze(model, "regex:^nothing$")


@pytest.mark.parametrize("policy", ["pretrain", "sft", "none", "regex:embed_positions", r"regex:^audio\."])
def test_whisper_positions_never_train(model, policy):
    # Whisper's positions are a fixed sinusoid (a buffer in the release): no policy may train them.
    if policy == "regex:embed_positions":
        with pytest.raises(ValueError, match="no trainable"):
            apply_freeze(model, policy)
    else:
        apply_freeze(model, policy)
    positions = dict(model.named_parameters())[POSITIONS]
    assert not positions.requires_grad
    assert all(positions is not p for g in param_groups(model, OptimConfig(layer_decay=0.9)) for p in g["params"])


def test_param_groups_decay_and_layerwise_lr(model):
    apply_freeze(model, "none")
    cfg = OptimConfig(weight_decay=0.1, layer_decay=0.5)
    groups = param_groups(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    by_param = {names[id(p)]: g for g in groups for p in g["params"]}
    assert len(by_param) == sum(1 for p in model.parameters() if p.requires_grad)  # all but the positions
    assert by_param["audio.layers.0.self_attn.q_proj.bias"]["weight_decay"] == 0.0
    assert by_param["audio.layers.0.self_attn.q_proj.weight"]["weight_decay"] == 0.1
    assert by_param["audio.ln_post.weight"]["weight_decay"] == 0.0
    emb = next(n for n in by_param if n.startswith("llm.") and "embed_tokens" in n)
    assert by_param[emb]["weight_decay"] == 0.0
    # 2 encoder layers: layer 1 gets 0.5^1, layer 0 0.5^2, the conv stem 0.5^3, the projector the full lr
    assert by_param["audio.layers.1.fc1.weight"]["lr_scale"] == 0.5
    assert by_param["audio.layers.0.fc1.weight"]["lr_scale"] == 0.25
    assert by_param["audio.conv1.weight"]["lr_scale"] == 0.125
    assert by_param["audio.proj.weight"]["lr_scale"] == 1.0
    opt = build_optimizer(model, cfg)
    set_lr(opt, 1.0)
    assert sorted({g["lr"] for g in opt.param_groups}) == [0.125, 0.25, 0.5, 1.0]


def test_schedule_warmup_then_cosine():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(10, 100, cfg) == pytest.approx(1.0)
    assert lr_at(55, 100, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(100, 100, cfg) == pytest.approx(0.1)
    assert lr_at(500, 100, cfg) == pytest.approx(0.1)
    values = [lr_at(s, 100, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize(("layer_decay", "weight_decay"), [(1.0, 0.05), (1.0, 0.0), (0.5, 0.05), (0.5, 0.0)])
def test_groups_share_hyper_parameters_and_update_as_one_group_per_parameter(model, layer_decay, weight_decay):
    """Parameters that share every hyper-parameter share a group (one ZeRO buffer, all-gather and norm term each):
    2 groups without layer decay (1 without weight decay), 2 per distinct lr scale with it. The update is that of one
    group per parameter with the same hyper-parameters, bit for bit, through set_lr's per-group scales."""
    apply_freeze(model, "none")
    cfg = OptimConfig(weight_decay=weight_decay, layer_decay=layer_decay)
    groups = param_groups(model, cfg)
    scales = {g["lr_scale"] for g in groups}
    assert len(scales) == (1 if layer_decay == 1.0 else 4)  # 2 encoder layers, the stem, the rest
    assert len(groups) == len(scales) * (2 if weight_decay else 1)
    assert len({(g["weight_decay"], g["lr_scale"]) for g in groups}) == len(groups)  # no two alike
    torch.manual_seed(1)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = [{n: torch.randn_like(p) for n, p in model.named_parameters() if p.requires_grad} for _ in range(4)]

    def train(groups: list[dict]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(start[n])
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        for step, g in enumerate(grads):
            set_lr(opt, lr_at(step, 10, cfg))
            for n, p in model.named_parameters():
                p.grad = g.get(n)
            opt.step()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    merged = train(param_groups(model, cfg))
    one_each = [{**{k: v for k, v in g.items() if k != "params"}, "params": [p]} for g in groups for p in g["params"]]
    assert len(one_each) > len(groups)
    alone = train(one_each)
    assert all(torch.equal(merged[n], alone[n]) for n in merged)
    assert any(not torch.equal(merged[n], start[n]) for n in merged)  # it did train
    with torch.no_grad():  # the module's shared model back as it was
        for n, p in model.named_parameters():
            p.copy_(start[n])
