"""The trainer's console: what a researcher reads on stdout, written by rank 0 only.

Short runs of the debug experiment on the tiny corpus (2 steps, then 1 more on resume), and the formatting and
quieting helpers on their own. metrics.jsonl keeps its keys: test_train.py reads it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from qwenaudio_train.config import compose
from qwenaudio_train.metrics import MetricsLogger, end_line, read_metrics, resume_line, startup_lines, summary_line
from tests.integration.conftest import subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]
TASKS = ("asr", "srwt", "lid", "sec", "mna")


def _train_console(corpus: Path, run: Path, *extra: str) -> tuple[str, str]:
    """Train in this process; return (stdout, stderr) of the run."""
    from qwenaudio_train.trainer import Trainer

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        Trainer(compose("pretrain", train_overrides(corpus, run, *extra))).train()
    return out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fresh(corpus, tmp_path_factory) -> tuple[Path, str, str]:
    run = tmp_path_factory.mktemp("console") / "run"
    out, err = _train_console(corpus, run, "trainer.max_steps=2", "trainer.save_every=2")
    return run, out, err


def test_start_up_summary(fresh, corpus):
    run, out, _ = fresh
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("run debug | model tiny"))
    start = lines.index("starting from scratch")  # the resume line closes the summary
    summary = "\n".join(lines[head:start])
    assert "audio encoder 2 layers x 64, LLM 2 layers x 64" in summary
    assert "parameters  audio encoder " in summary and " | LLM " in summary and "trainable" in summary
    for task, share in zip(TASKS, ("42.9%", "14.3%", "14.3%", "14.3%", "14.3%")):
        assert f"{task} {share} (weight " in summary  # every source, its share of the mixture ...
    assert " min)" in summary  # ... and its hours (from the shards' manifest)
    assert "world size 1 x grad accum 1 x micro-batch 4 = 4 samples/step | ZeRO-2 | fp32" in summary
    assert f"run dir     {run}" in summary and f"tokenizer   {corpus / 'tokenizer'}" in summary
    assert lines[start - 1].startswith("  tokenizer ")


def test_step_lines_show_every_task_loss_and_the_end_line(fresh):
    run, out, err = fresh
    records = read_metrics(run)
    steps = [ln for ln in out.splitlines() if ln.startswith("step ")]
    assert [s.split(" | ")[0] for s in steps] == ["step 1/2", "step 2/2"]
    for line, r in zip(steps, records):
        assert f"| loss {r['loss']:.4f} |" in line
        tasks = sorted(k.split("/", 1)[1] for k in r if k.startswith("loss/"))
        assert tasks and " ".join(f"{t} {r['loss/' + t]:.3f}" for t in tasks) in line  # the JSONL's loss/<task>
    end = out.splitlines()[-1]
    assert end.startswith("finished at step 2/2 (2 steps in ")
    assert f"final loss {records[-1]['loss']:.4f}" in end
    assert f"last checkpoint {run / 'checkpoints' / 'step_00000002'}" in end
    assert f"metrics {run / 'metrics.jsonl'}" in end
    assert "step 1/2" not in err and "starting from scratch" not in err  # stdout only; stderr is the progress bar's


def test_resume_line(fresh, corpus, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(fresh[0], run)
    out, _ = _train_console(corpus, run, "trainer.max_steps=3")
    ckpt = run / "checkpoints" / "step_00000002"
    assert f"resumed from {ckpt} at step 2 (samples seen 8, data position restored)" in out.splitlines()
    assert out.splitlines()[-1].startswith("finished at step 3/3 (1 step in ")


def test_only_rank_0_writes(tmp_path, capsys):
    quiet = MetricsLogger(tmp_path, enabled=False, total_steps=1, wandb_mode="disabled", progress=False)
    quiet.console("from rank 1")
    quiet.progress(1, line="step line of rank 1")
    loud = MetricsLogger(tmp_path, enabled=True, total_steps=1, wandb_mode="disabled", progress=False)
    loud.console("from rank 0")
    loud.close()
    assert capsys.readouterr().out == "from rank 0\n"


def test_ranks_above_0_keep_deepspeed_errors_and_drop_its_warnings():
    from qwenaudio_train.distributed import quiet_other_ranks

    ds_logger = logging.getLogger("DeepSpeed")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    ds_logger.addHandler(handler)
    filters = list(ds_logger.filters)
    try:
        with warnings.catch_warnings(record=True) as caught:
            quiet_other_ranks(0)  # rank 0 shows everything
            ds_logger.warning("rank 0 warning")
            quiet_other_ranks(1)
            quiet_other_ranks(1)  # idempotent
            ds_logger.warning("rank 1 warning")
            ds_logger.error("rank 1 error")
            warnings.warn("repeated on every rank", UserWarning, stacklevel=1)
        assert seen == ["rank 0 warning", "rank 1 error"] and caught == []
    finally:
        ds_logger.removeHandler(handler)
        ds_logger.filters[:] = filters


def test_formatting_without_a_run():
    record = {"step": 3, "loss": 2.5, "lr": 1e-4, "grad_norm": float("nan"), "loss/lid": 0.5, "loss/asr": 3.25}
    assert summary_line(record, 10).startswith("step 3/10 | loss 2.5000 | asr 3.250 lid 0.500 | lr 1.00e-04 |")
    record.update(audio_hours_per_s=0.5, tflops_per_s=152.3, mfu=0.4871, memory_gb=61.24, data_bad=2)
    assert summary_line(record, 10).endswith("| 0.5 audio h/s | 152 TFLOP/s (MFU 48.7%) | mem 61.2 GB | bad samples 2")
    assert resume_line(None, 0, 0, False) == "starting from scratch"
    assert (
        resume_line("ck", 7, 56, False)
        == "resumed from ck at step 7 (samples seen 56, data stream restarts from the seed)"
    )
    assert end_line(4, 10, 4, 75, (3, 2.5), "ck", "m.jsonl") == (
        "stopped at step 4/10 (4 steps in 1m15s) | final loss 2.5000 (step 3) | last checkpoint ck | metrics m.jsonl"
    )
    lines = startup_lines(
        {
            "name": "x",
            "model": {"preset": "qwen_audio_7b", "encoder": "openai/whisper-large-v2", "llm": "Qwen/Qwen2-7B"},
            "params": {"audio encoder": {"total": 640_000_000, "trainable": 640_000_000}, "LLM": {"total": 7.6e9, "trainable": 0}},
            "sources": [{"name": f"s{i}", "weight": 1.0, "hours": 1000.0 if i else None} for i in range(12)],
            "batch": {"world_size": 16, "grad_accum": 2, "micro_batch": 8, "max_batch_seconds": 240.0,
                      "max_batch_tokens": 0, "max_batch_size": 256, "zero_stage": 3, "dtype": "bf16"},
            "run_dir": "runs/x",
            "tokenizer": "tok",
        }
    )  # fmt: skip
    assert "LLM 7.6B (0 trainable) | total 8.24B (640M trainable)" in lines[1]
    assert "s0 8.3% (weight 1) | s1 8.3% (weight 1, 1,000 h)" in lines[2]
    assert all(len(ln) <= 120 for ln in lines[2:6]) and lines[5].startswith("    " * 3)  # many sources wrap
    # a budget fills the micro-batch (batch_size is no cap then): the step is fixed in audio seconds
    text = "\n".join(lines)
    assert "micro-batch 240 s of audio (at most 256 clips) = 7680 s of audio per step | ZeRO-3 | bf16" in text


def test_two_ranks_print_one_console(corpus, tmp_path):
    """Under torchrun only rank 0 speaks: one summary, and DeepSpeed's per-rank notices once."""
    run = tmp_path / "two"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        + ["-m", "qwenaudio_train.pretrain", *train_overrides(corpus, run, "trainer.max_steps=1")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env(OMP_NUM_THREADS="1"),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert out.count("run debug | model tiny") == 1 and out.count("starting from scratch") == 1
    assert "world size 2 x grad accum 1 x micro-batch 4 = 8 samples/step" in out
    assert out.count("step 1/1 | loss ") == 1 and out.count("finished at step 1/1") == 1
    assert out.count("Setting accelerator to CPU") <= 1 and out.count("built successfully") <= 1
    assert "compilers.C.base" not in out + r.stderr  # the op builders' compiler probes
