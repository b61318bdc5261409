"""The step line's FLOPs, MFU and padding come from the real shapes of each step (qwenaudio_train/flops.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenaudio_train.config import compose
from qwenaudio_train.flops import BatchInfo, Trainable, combine, step_flops
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import train_overrides


def test_logged_flops_equal_the_shapes_of_the_batches_trained(corpus, tmp_path: Path) -> None:
    from qwenaudio_train.trainer import Trainer

    cfg = compose(
        "pretrain",
        train_overrides(
            corpus, tmp_path / "run", "trainer.max_steps=2", "trainer.peak_tflops=1", "trainer.freeze=pretrain"
        ),
    )
    trainer = Trainer(cfg)
    seen: list[dict] = []
    original = trainer.train_step

    def recording_step(batches):
        def tee():
            for b in batches:
                seen.append(b)
                yield b

        return original(tee())

    trainer.train_step = recording_step  # type: ignore[method-assign]
    trainer.train()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2]
    assert trainer.trainable == Trainable(encoder=True, llm=False, llm_backward=True)  # stage-1 freeze
    for record, batch in zip(records, seen):
        expected = combine([step_flops(trainer.flop_dims, BatchInfo.from_batch(batch), trainer.trainable)])
        assert record["padding/encoder"] == pytest.approx(expected["padding/encoder"])
        assert record["padding/llm"] == pytest.approx(expected["padding/llm"])
        assert 0.0 <= record["padding/llm"] < 1.0 and record["tflops_per_s"] > 0
        assert record["mfu"] == pytest.approx(record["tflops_per_s"] / 1.0)
        assert record["hardware_tflops_per_s"] >= record["tflops_per_s"]  # padding is computed, not useful
