"""The GPU benchmark (`make bench-gpu`, tests/bench/gpu_bench.py) run as a dry run: tiny shapes on the CPU, a few
steps of every batching scheme and the ZeRO memory probe, so that the script a GPU session runs never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_bench_dry_run(tmp_path):
    # Without the process-group variables an in-process training test of this session may have set: the child
    # would otherwise join (or collide with) that group's port.
    group = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE")
    env = {k: v for k, v in os.environ.items() if k not in group}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "bench" / "gpu_bench.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["dry_run"] and result["device"] and [r["llm"] for r in result["runs"]] == ["tiny"]
    schemes = result["runs"][0]["schemes"]
    pad30, bucketed, packed = schemes["pad30"], schemes["bucketed"], schemes["packed"]
    for s in (pad30, bucketed, packed):
        assert s["steps"] == s["steps_planned"] > 0 and not s["truncated"]
        assert s["samples_per_s"] > 0 and s["audio_hours_per_s"] > 0 and s["tokens_per_s"] > 0
        assert 0 < s["tflops_per_s"] <= s["tflops_computed_per_s"]
        assert s["mfu"] is None  # no peak is known for a CPU
    assert pad30["samples"] == bucketed["samples"] == packed["samples"] == result["runs"][0]["samples"]  # 3 ways
    # 30-s padding computes mostly padding in the encoder; duration buckets far less
    assert pad30["padding/encoder"] > 0.3 > bucketed["padding/encoder"]
    # packed rows: (almost) no LLM padding, and fewer rows than samples
    assert packed["padding/llm"] < bucketed["padding/llm"] and packed["padding/llm"] < 0.05
    assert schemes["packed_vs_pad30_audio_hours"] > 0
    zero = result["zero"]
    assert "omitted" in zero or {"zero2_peak_memory_gb", "zero3_peak_memory_gb"} <= set(zero), zero
    table = (tmp_path / "gpu.md").read_text()
    assert (
        "| LLM | batching |" in table
        and "| tiny | pad30 |" in table
        and "| tiny | bucketed |" in table
        and "| tiny | packed |" in table
    )
