"""Stage 2 on the tiny corpus: chat conversations from the labelled shards, full fine-tuning and LoRA from an
exported stage-1 model; the loss falls, the adapter is saved alone and merges for evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_recipes.sft_builder import BuildConfig, build
from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics


@pytest.fixture(scope="module")
def chat_data(corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sft")
    build([corpus / "train"], root / "train.jsonl", BuildConfig(seed=0), out_shards=root / "shards")
    return root


@pytest.fixture(scope="module")
def stage1(corpus, tmp_path_factory) -> Path:
    from qwenaudio_train.runs import export
    from qwenaudio_train.trainer import Trainer

    run = tmp_path_factory.mktemp("stage1") / "run"
    Trainer(compose("pretrain", ["experiment=debug", f"data.root={corpus}", f"run_dir={run}"])).train()
    return export(run, run.parent / "exported")


def _sft(corpus: Path, chat_data: Path, stage1: Path, run: Path, *extra: str):
    from qwenaudio_train.trainer import Trainer

    cfg = compose(
        "sft",
        [
            f"data.root={chat_data}",
            f"model.tokenizer={corpus / 'tokenizer'}",
            f"model.init_from={stage1}",
            f"run_dir={run}",
            "trainer.max_steps=12",
            "trainer.log_every=1",
            "trainer.save_every=12",
            "data.batch_size=4",
            "data.num_workers=0",
            "optim.lr=3e-3",
            "optim.warmup_steps=2",
            "logger.wandb_mode=disabled",
            "logger.progress=false",
            *extra,
        ],
    )
    trainer = Trainer(cfg)
    trainer.train()
    return trainer, [r["loss"] for r in read_metrics(run)]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def test_full_sft_trains_the_llm_only_and_loss_falls(corpus, chat_data, stage1, tmp_path):
    trainer, losses = _sft(corpus, chat_data, stage1, tmp_path / "full")
    assert _mean(losses[-4:]) < _mean(losses[:4])
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("llm.") for n in trainable)  # encoder frozen (sft policy)


def test_lora_sft_saves_the_adapter_alone_and_evaluation_merges_it(corpus, chat_data, stage1, tmp_path):
    from qwenaudio_train.runs import load_trained

    run = tmp_path / "lora"
    trainer, losses = _sft(corpus, chat_data, stage1, run, "lora.enabled=true", "lora.r=4")
    assert _mean(losses[-4:]) < _mean(losses[:4])
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    adapter = run / "checkpoints" / "step_00000012" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    model, _, _ = load_trained(run / "checkpoints" / "step_00000012")  # wraps, loads, merges
    assert not any("lora_" in n for n, _ in model.named_parameters())
    live = trainer.model
    batch = next(iter(trainer.loader))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "audio_features", "audio_lengths")}
    live.eval()
    with torch.no_grad():
        a = live(**inputs).logits
        b = model(**inputs).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)  # merged weights = base + adapter
    assert json.loads((run / "checkpoints" / "step_00000012" / "trainer_state.json").read_text())["config"]["lora"][
        "enabled"
    ]


def test_base_model_plus_adapter_evaluates_like_the_trained_run(corpus, chat_data, stage1, tmp_path):
    """qwenaudio-eval's `checkpoint=<exported base> adapter=<dir>` path equals the merged checkpoint."""
    from qwenaudio_train.runs import load_exported as load_model_dir
    from qwenaudio_train.runs import load_trained

    run = tmp_path / "lora"
    trainer, _ = _sft(
        corpus, chat_data, stage1, run, "lora.enabled=true", "lora.r=4", "trainer.max_steps=3", "trainer.save_every=3"
    )
    ckpt = run / "checkpoints" / "step_00000003"
    with_adapter, _ = load_model_dir(stage1, str(ckpt / "adapter"))
    merged, _, _ = load_trained(ckpt)
    batch = next(iter(trainer.loader))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "audio_features", "audio_lengths")}
    with torch.no_grad():
        torch.testing.assert_close(with_adapter(**inputs).logits, merged(**inputs).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("lora", [False, True])
def test_sft_under_zero3(corpus, chat_data, stage1, tmp_path, lora):
    _, losses = _sft(corpus, chat_data, stage1, tmp_path / "z3", "deepspeed=zero3", f"lora.enabled={lora}")
    assert _mean(losses[-4:]) < _mean(losses[:4])
