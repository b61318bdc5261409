"""Long audio (issue 13, item 4): time and memory of one training step on a 30/60/120/300-s clip grow linearly.

One step = the model's forward (encoder over the clip's 30-s windows, LLM over its audio span + a 20-token
target) and backward, fp32, on the CPU, the log-mel computed beforehand (not timed). Two models: the tiny preset
(2 x 64 encoder, tiny LLM) and the same LLM behind a mid-size encoder (Whisper-base dims: 6 layers x 512).

Each (model, duration) runs in its own child process (``python tests/bench/test_bench_long_audio.py MODEL SECONDS``)
so the memory figures are that step's alone:

* ``peak_rss_mib``: how far the step raised the process's peak resident memory (``resource.getrusage``
  ``ru_maxrss`` after the step minus before it; the model and a warm-up step on a 1-s clip are already counted
  before), i.e. activations, gradients and temporaries of the step; allocator caching can hide a few MiB.
* ``saved_mib``: bytes of the tensors autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``,
  each storage once): the activation memory, exact and independent of the allocator.
* ``step_s``: wall time of the forward + backward (the median of 2 after the warm-up).

Results go to ``bench_results/long_audio.json`` with the ratio of each figure to the 30-s one (linear: 2, 4, 10).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SECONDS = [30.0, 60.0, 120.0, 300.0]
MODELS = {
    "tiny": {},
    "whisper_base_encoder": {"encoder_d_model": 512, "encoder_layers": 6, "encoder_heads": 8, "encoder_ffn_dim": 2048},
}
TARGET_TOKENS = 20


def _step_figures(model_name: str, seconds: float) -> dict[str, Any]:
    """Child process: build the model, warm up on 1 s, then measure forward + backward on `seconds` of audio."""
    import numpy as np
    import torch

    from qwenaudio_train import audio as A
    from qwenaudio_train.model import ModelConfig, build_model

    torch.manual_seed(0)
    vocab, pad, start, end, eod = 320, 300, 301, 302, 303
    cfg = ModelConfig(preset="tiny", vocab_size=vocab, audio_pad_id=pad, audio_start_id=start, audio_end_id=end,
                      eod_id=eod, **MODELS[model_name])  # fmt: skip
    model = build_model(cfg).train()

    def batch(secs: float) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng(0)
        wav = (0.1 * rng.standard_normal(A.samples_for_duration(secs))).astype(np.float32)
        mel = A.windowed_log_mel(wav)
        n = A.audio_positions(len(wav))
        target = list(range(10, 10 + TARGET_TOKENS))
        ids = torch.tensor([[start] + [pad] * n + [end] + target])
        labels = torch.tensor([[-100] * (n + 2) + target])
        return ids, torch.ones_like(ids), mel[None], torch.tensor([mel.shape[1]]), labels

    def step(inputs: tuple[torch.Tensor, ...]) -> None:
        ids, mask, mel, lengths, labels = inputs
        out = model(ids, mask, mel, lengths, labels=labels)
        out.loss.backward()
        model.zero_grad(set_to_none=True)

    step(batch(1.0))  # warm-up: allocator, kernels, gradients' first allocation
    inputs = batch(seconds)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        saved[st.data_ptr()] = st.nbytes()
        return t

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        step(inputs)
        times.append(time.perf_counter() - t0)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):  # after the peak is read: it adds nothing
        ids, mask, mel, lengths, labels = inputs
        model(ids, mask, mel, lengths, labels=labels).loss.backward()
    model.zero_grad(set_to_none=True)
    return {
        "audio_positions": int(A.audio_positions(A.samples_for_duration(seconds))),
        "encoder_windows": len(A.window_frames(A.samples_for_duration(seconds))),
        "step_s": round(statistics.median(times), 4),
        "saved_mib": round(sum(saved.values()) / 2**20, 3),
        "peak_rss_mib": round(max(0, rss_after - rss_before) / 1024, 2),
        "threads": torch.get_num_threads(),
    }


@pytest.mark.bench
def test_long_audio_time_and_memory_are_linear(record) -> None:
    results: dict[str, Any] = {"seconds": SECONDS, "target_tokens": TARGET_TOKENS, "models": {}}
    lines = []
    for name in MODELS:
        rows = {}
        for secs in SECONDS:
            r = subprocess.run([sys.executable, __file__, name, str(secs)], capture_output=True, text=True, cwd=REPO,
                               timeout=900)  # fmt: skip
            assert r.returncode == 0, r.stderr[-2000:]
            rows[str(int(secs))] = json.loads(r.stdout.strip().splitlines()[-1])
        base = rows[str(int(SECONDS[0]))]
        for row in rows.values():
            for k in ("step_s", "saved_mib", "peak_rss_mib"):
                row[f"{k}_ratio"] = round(row[k] / base[k], 2) if base[k] else None
        results["models"][name] = rows
        lines.append(
            f"{name}: step x" + "/".join(f"{rows[str(int(s))]['step_s_ratio']}" for s in SECONDS)
            + ", saved x" + "/".join(f"{rows[str(int(s))]['saved_mib_ratio']}" for s in SECONDS)
        )  # fmt: skip
        assert rows["300"]["audio_positions"] == 10 * rows["30"]["audio_positions"]  # positions are linear exactly
    record("long_audio", results, "; ".join(lines) + " (30/60/120/300 s; linear = 1/2/4/10)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    print(json.dumps(_step_figures(sys.argv[1], float(sys.argv[2]))))
