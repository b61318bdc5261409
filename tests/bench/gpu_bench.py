"""Stage-1 training throughput on one CUDA device at the real shapes, for three ways of batching the same clips.

    python tests/bench/gpu_bench.py                      # `make bench-gpu`: one CUDA device, under 8 minutes
    python tests/bench/gpu_bench.py --dry-run --out DIR  # tiny shapes on the CPU, 1-2 steps (the unit test)

Builds random-weight models of the real shapes on the device (a Whisper-large-v2 encoder with an LLM of Qwen2-1.5B
dims, then one of Qwen2-7B dims when memory allows), in bfloat16, frozen for stage 1 (`apply_freeze("pretrain")`:
the encoder, pool, projector and audio bos/eos train, the LLM is frozen but the gradient crosses it), and runs
forward + backward + AdamW (torch's, no DeepSpeed, no data loader: the model's step alone) on one set of clips
drawn from a mixed duration distribution (1-30 s, mean ~10 s), batched three ways:

* ``pad30``: every clip padded to 30 s before the encoder, the LLM seeing each clip's real positions (what
  transformers' Qwen2-Audio path does, and ms-swift and LLaMA-Factory with it); a fixed number of clips per batch;
* ``bucketed``: clips sorted by duration and cut into batches under a budget of computed encoder frames and LLM
  tokens (short clips make bigger batches); this model's encoder runs each batch at its longest clip;
* ``packed``: the same duration-sorted clips cut under the same encoder-frame budget, their samples packed into
  shared LLM rows (`data.packing`: the library's collate, position ids restarting per sample, attention confined to
  each sample), the LLM token budget counted on the packed tokens.

Per scheme: samples/s, audio hours/s, LLM tokens/s (real tokens), TFLOP/s and MFU from `qwenaudio_train.flops`
(useful work: padding is cost), padding shares of both towers, peak device memory. With DeepSpeed installed, the
peak memory of one stage-1 step of the 7B shape under ZeRO-2 and ZeRO-3 (one process: nothing is partitioned
across ranks, so this is the per-device cost of each stage's bookkeeping, not of a multi-GPU run).
Writes ``bench_results/gpu.json`` and ``bench_results/gpu.md`` (a markdown table).
Not a test: pytest does not collect it (no ``test_`` prefix); tests/unit/test_gpu_bench_dry_run.py runs its dry run.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from qwenaudio_train import audio as A  # noqa: E402
from qwenaudio_train.data.processing import collate as library_collate  # noqa: E402
from qwenaudio_train.flops import BatchInfo, ModelDims, combine, step_flops  # noqa: E402
from qwenaudio_train.model import HOST_INPUTS, MODEL_INPUTS, ModelConfig, build_model  # noqa: E402
from qwenaudio_train.model.config import PRESETS, WHISPER_LARGE_ENCODER  # noqa: E402
from qwenaudio_train.optim import OptimConfig, apply_freeze, build_optimizer  # noqa: E402

IGNORE = -100
WHISPER_LARGE_V2 = WHISPER_LARGE_ENCODER  # the library's preset dims
LLMS: dict[str, dict[str, Any]] = {
    "qwen2_1.5b": dict(
        llm_hidden_size=1536,
        llm_layers=28,
        llm_heads=12,
        llm_kv_heads=2,
        llm_intermediate_size=8960,
        llm_tie_word_embeddings=True,
        vocab_size=151936,
    ),
    # Qwen2-7B: the dims of the library's preset (qwen_audio_qwen2_7b), without its hub source
    "qwen2_7b": {k: v for k, v in PRESETS["qwen_audio_qwen2_7b"].items() if k.startswith("llm_") and k != "llm_source"}
    | {"vocab_size": PRESETS["qwen_audio_qwen2_7b"]["vocab_size"]},
}
TINY = dict(
    encoder_d_model=64,
    encoder_layers=2,
    encoder_heads=4,
    encoder_ffn_dim=128,
    llm_hidden_size=64,
    llm_layers=2,
    llm_heads=4,
    llm_kv_heads=2,
    llm_intermediate_size=128,
    llm_tie_word_embeddings=False,
    vocab_size=512,
)
# Dense bf16 peak TFLOP/s per device, by name (the MFU denominator); --peak-tflops overrides.
PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}
PROMPT_TOKENS = 6  # task tags before the audio (<|startoftranscript|><|en|>... in the release's grammar)
TAG_TOKENS = 4  # tags after the audio
TEXT_TOKENS_PER_S = 3.0  # a transcript's tokens per second of speech


def model_config(name: str, dtype: str, attn: str) -> ModelConfig:
    dims = TINY if name == "tiny" else {**WHISPER_LARGE_V2, **LLMS[name]}
    vocab = int(dims["vocab_size"])
    return ModelConfig(
        preset="tiny",  # dims given in full below; no source checkpoint: random weights, no download
        dtype=dtype,
        attn_implementation=attn,
        audio_start_id=vocab - 4,
        audio_end_id=vocab - 3,
        audio_pad_id=vocab - 2,
        eod_id=vocab - 1,
        **dims,
    )


def durations(n: int, seed: int) -> list[float]:
    """Clip durations in seconds: log-normal around 8 s, clipped to [1, 30] (mean ~10 s, a tail of long clips)."""
    rng = np.random.default_rng(seed)
    return [float(d) for d in np.clip(rng.lognormal(math.log(8.0), 0.6, n), 1.0, 30.0)]


def sample_layout(seconds: float) -> tuple[int, int, int]:
    """(mel frames, LLM tokens, target tokens) of one ASR-like sample of `seconds`."""
    samples = A.samples_for_duration(seconds)
    target = int(TEXT_TOKENS_PER_S * seconds) + 2  # + the end token
    tokens = PROMPT_TOKENS + A.audio_positions(samples) + 2 + TAG_TOKENS + target
    return A.mel_frames(samples), tokens, target


def batches_pad30(clips: list[float], clips_per_batch: int) -> list[list[int]]:
    return [list(range(i, min(i + clips_per_batch, len(clips)))) for i in range(0, len(clips), clips_per_batch)]


def batches_bucketed(clips: list[float], frame_budget: int, token_budget: int) -> list[list[int]]:
    """Sorted by duration, cut greedily so that computed encoder frames (clips x longest) and LLM tokens
    (rows x longest row) stay under their budgets; a clip over a budget alone still makes a batch of one."""
    order = sorted(range(len(clips)), key=lambda i: clips[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        mel, tok, _ = sample_layout(clips[i])
        trial = cur + [i]
        frames = len(trial) * max(sample_layout(clips[j])[0] for j in trial)
        tokens = len(trial) * max(sample_layout(clips[j])[1] for j in trial)
        if cur and (frames > frame_budget or tokens > token_budget):
            out.append(cur)
            trial = [i]
        cur = trial
    if cur:
        out.append(cur)
    return out


def batches_packed(clips: list[float], frame_budget: int, token_budget: int) -> list[list[int]]:
    """As `batches_bucketed`, with the LLM tokens counted packed (their sum, not rows x longest)."""
    order = sorted(range(len(clips)), key=lambda i: clips[i])
    out: list[list[int]] = []
    cur: list[int] = []
    tokens = 0
    for i in order:
        mel, tok, _ = sample_layout(clips[i])  # ascending: the newest clip is the longest
        if cur and ((len(cur) + 1) * mel > frame_budget or tokens + tok > token_budget):
            out.append(cur)
            cur, tokens = [], 0
        cur.append(i)
        tokens += tok
    if cur:
        out.append(cur)
    return out


def collate_packed(clips: list[float], idx: list[int], cfg: ModelConfig, seed: int, row_tokens: int) -> dict[str, Any]:
    """The same samples as `collate`, packed by the library's own collate (`data.packing=true`)."""
    from types import SimpleNamespace

    flat = collate(clips, idx, cfg, False, seed)
    examples = []
    for b, i in enumerate(idx):
        n = int(flat["attention_mask"][b].sum())
        mel = flat["audio_features"][b, :, : int(flat["audio_lengths"][b])]
        examples.append(
            SimpleNamespace(
                input_ids=flat["input_ids"][b, :n].tolist(), labels=flat["labels"][b, :n].tolist(), mel=mel,
                key=str(i), task="asr", source="bench", duration=clips[i], meta={}, reference="",
            )
        )  # fmt: skip
    batch = library_collate(
        examples, int(cfg.eod_id), packing=True, max_tokens_per_row=row_tokens,
        audio_ids=(int(cfg.audio_start_id), int(cfg.audio_end_id)),
    )  # fmt: skip
    batch.update(info=BatchInfo.from_batch(batch), seconds=flat["seconds"], pad30=False)
    return batch


def collate(clips: list[float], idx: list[int], cfg: ModelConfig, pad30: bool, seed: int) -> dict[str, Any]:
    """Host tensors of one batch: rows `prompt <audio> pad*N </audio> tags target eod`, loss on the target."""
    g = torch.Generator().manual_seed(seed)
    vocab = int(cfg.vocab_size or 0)
    rows, labels, mels = [], [], []
    for i in idx:
        mel, tokens, target = sample_layout(clips[i])
        n = A.audio_positions(A.samples_for_duration(clips[i]))
        text = torch.randint(0, vocab - 8, (PROMPT_TOKENS + TAG_TOKENS + target,), generator=g).tolist()
        row = text[:PROMPT_TOKENS] + [cfg.audio_start_id] + [cfg.audio_pad_id] * n + [cfg.audio_end_id]
        row += text[PROMPT_TOKENS:]
        row[-1] = cfg.eod_id
        rows.append(row)
        labels.append([IGNORE] * (len(row) - target) + row[-target:])
        mels.append(mel)
    s = max(map(len, rows))
    input_ids = torch.full((len(rows), s), cfg.eod_id)
    mask = torch.zeros((len(rows), s), dtype=torch.long)
    lab = torch.full((len(rows), s), IGNORE)
    for b, (row, label) in enumerate(zip(rows, labels)):
        input_ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
        lab[b, : len(row)] = torch.tensor(label)
    frames = A.N_FRAMES if pad30 else max(mels)
    features = torch.randn(len(rows), cfg.n_mels, frames, generator=g)
    info = BatchInfo(
        clip_frames=tuple(mels),
        row_tokens=tuple(len(r) for r in rows),
        row_length=s,
        target_tokens=int((lab[:, 1:] != IGNORE).sum()),
        run_mel_frames=A.N_FRAMES if pad30 else None,
    )
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "labels": lab,
        "audio_features": features,
        "audio_lengths": torch.tensor(mels),
        "info": info,
        "seconds": sum(clips[i] for i in idx),
        "pad30": pad30,
    }


def _pad30_forward(model: Any, batch: dict[str, torch.Tensor]) -> Any:
    """The model's forward with every clip run through the encoder at 30 s and the LLM fed each clip's real
    positions (transformers' Qwen2-Audio way): the encoder is called at full length and the model reads the real
    positions from its output, as Qwen2-Audio masks its 30-s output by the clip's length."""
    audio = model.audio
    real = batch["audio_lengths"]

    def full_length(mel: torch.Tensor, lengths: Any) -> tuple[torch.Tensor, torch.Tensor]:
        feats, _ = type(audio).forward(audio, mel, [A.N_FRAMES] * mel.shape[0])
        return feats, torch.tensor(audio.positions(real), device=feats.device)

    audio.forward = full_length  # an instance attribute: nn.Module.__call__ dispatches to it for this call only
    try:
        return model(
            **{k: batch[k] for k in ("input_ids", "attention_mask", "audio_features", "labels")},
            audio_lengths=real,
            return_logits=False,
        )
    finally:
        del audio.forward


def run_scheme(
    model: Any,
    optimizer: Any,
    batches: list[dict[str, Any]],
    dims: ModelDims,
    device: torch.device,
    warmup: int,
    deadline: float,
) -> dict[str, Any]:
    """Train on the first `warmup` batches untimed (kernels, allocator), then time all of `batches`: every scheme is
    timed on the same clips."""

    def step(b: dict[str, Any]) -> None:
        inputs = {  # as the trainer moves them: span bookkeeping stays on the host
            k: b[k] if k in HOST_INPUTS else b[k].to(device, non_blocking=True) for k in MODEL_INPUTS if k in b
        }
        if b["pad30"]:
            out = _pad30_forward(model, inputs)
        else:
            out = model(**inputs, return_logits=False)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for b in batches[:warmup]:
        step(b)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed, start = [], time.perf_counter()
    for b in batches:
        step(b)
        timed.append(b)
        if time.perf_counter() > deadline:
            break
    _sync(device)
    seconds = time.perf_counter() - start
    counts = combine(step_flops(dims, b["info"], "pretrain") for b in timed)
    samples = sum(len(b["info"].clip_frames) for b in timed)
    return {
        "steps": len(timed),
        "steps_planned": len(batches),
        "truncated": len(timed) < len(batches),  # the time budget ran out: fewer clips than the other schemes
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "audio_hours_per_s": sum(b["seconds"] for b in timed) / 3600 / seconds,
        "tokens_per_s": counts["tokens/llm"] / seconds,
        "tflops_per_s": counts["flops"] / seconds / 1e12,
        "tflops_computed_per_s": counts["flops_computed"] / seconds / 1e12,
        "padding/encoder": counts["padding/encoder"],
        "padding/llm": counts["padding/llm"],
        "mean_clips_per_batch": samples / max(1, len(timed)),
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_llm(name: str, args: argparse.Namespace, device: torch.device, deadline: float) -> dict[str, Any]:
    cfg = model_config(name, args.dtype, args.attn)
    torch.manual_seed(0)
    with torch.device(device):  # random init on the device: seconds, not minutes of CPU init at 7B
        model = build_model(cfg).train()
    counts = apply_freeze(model, "pretrain")
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = build_optimizer(model, OptimConfig(lr=1e-5))
    dims = ModelDims.from_model(model)
    clips = durations(args.samples, args.seed)
    per_30s_tokens = sample_layout(30.0)[1]
    schemes: dict[str, Any] = {}
    plans = {
        "pad30": [
            collate(clips, idx, cfg, True, k) for k, idx in enumerate(batches_pad30(clips, args.clips_per_batch))
        ],
        "bucketed": [
            collate(clips, idx, cfg, False, k)
            for k, idx in enumerate(
                batches_bucketed(clips, args.clips_per_batch * A.N_FRAMES, args.clips_per_batch * per_30s_tokens)
            )
        ],
        "packed": [
            collate_packed(clips, idx, cfg, k, args.row_tokens)
            for k, idx in enumerate(
                batches_packed(clips, args.clips_per_batch * A.N_FRAMES, args.clips_per_batch * per_30s_tokens)
            )
        ],
    }
    for scheme, batches in plans.items():
        try:
            schemes[scheme] = run_scheme(model, optimizer, batches, dims, device, args.warmup, deadline)
        except torch.cuda.OutOfMemoryError as e:
            schemes[scheme] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
            optimizer.zero_grad(set_to_none=True)  # the next scheme starts clean
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak = args.peak_tflops
    for s in schemes.values():
        if "tflops_per_s" in s:
            s["mfu"] = s["tflops_per_s"] / peak if peak else None
    p30, buck = schemes.get("pad30", {}), schemes.get("bucketed", {})
    if "audio_hours_per_s" in p30 and "audio_hours_per_s" in buck:
        schemes["bucketed_vs_pad30_audio_hours"] = buck["audio_hours_per_s"] / p30["audio_hours_per_s"]
    packed = schemes.get("packed", {})
    if "audio_hours_per_s" in p30 and "audio_hours_per_s" in packed:
        schemes["packed_vs_pad30_audio_hours"] = packed["audio_hours_per_s"] / p30["audio_hours_per_s"]
    result = {
        "llm": name,
        "params": {"trainable": counts["trainable"], "frozen": counts["frozen"]},
        "samples": args.samples,
        "mean_clip_seconds": float(np.mean(clips)),
        "schemes": schemes,
    }
    del model, optimizer, plans
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def _init_world_of_one(init: Any, attempts: int = 3) -> None:
    """A process group of one on a free port; another port when a concurrent job took that one first."""
    for attempt in range(attempts):
        try:
            init()
            return
        except torch.distributed.DistNetworkError:
            if attempt == attempts - 1:
                raise
            for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
                os.environ.pop(k, None)  # init_distributed picks a fresh port when RANK is unset


def zero_memory(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Peak device memory of one stage-1 step under DeepSpeed ZeRO-2 and ZeRO-3 (one process)."""
    try:
        import deepspeed
    except ImportError:
        return {"omitted": "DeepSpeed is not installed"}
    from qwenaudio_train.distributed import deepspeed_config, init_distributed

    _init_world_of_one(init_distributed)
    name = args.zero_llm
    cfg = model_config(name, args.dtype, args.attn)
    clips = [30.0] * args.clips_per_batch
    batch = collate(clips, list(range(len(clips))), cfg, False, 0)
    out: dict[str, Any] = {"llm": name, "world_size": 1, "clips_per_batch": len(clips)}
    for stage in (2, 3):
        try:
            torch.manual_seed(0)
            with torch.device(device):
                model = build_model(cfg).train()
            apply_freeze(model, "pretrain")
            optimizer = build_optimizer(model, OptimConfig(lr=1e-5))
            ds = deepspeed_config(stage, len(clips), 1, 1, 1.0, bf16=args.dtype == "bfloat16")
            engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            inputs = {
                k: batch[k].to(device)
                for k in ("input_ids", "attention_mask", "labels", "audio_features", "audio_lengths")
            }
            loss = engine(**inputs, return_logits=False).loss
            engine.backward(loss)
            engine.step()
            _sync(device)
            out[f"zero{stage}_peak_memory_gb"] = (
                torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            )
            del engine, model, optimizer, loss
        except Exception as e:  # a stage that fails is reported, the benchmark goes on
            out[f"zero{stage}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"GPU benchmark ({result['device']}, {result['dtype']}, attention {result['attn']}, stage-1 freeze, "
        f"{result['date']})",
        "",
        "| LLM | batching | clips/batch | samples/s | audio h/s | tokens/s | TFLOP/s | MFU | padding enc / LLM | peak GB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for run in result["runs"]:
        for scheme, s in run["schemes"].items():
            if not isinstance(s, dict):
                continue
            if "samples_per_s" not in s:
                lines.append(f"| {run['llm']} | {scheme} | {s.get('omitted') or s.get('error')} |||||||| ")
                continue
            lines.append(
                f"| {run['llm']} | {scheme} | {s['mean_clips_per_batch']:.1f} | {s['samples_per_s']:.2f} | "
                f"{s['audio_hours_per_s']:.4f} | {s['tokens_per_s']:.0f} | {s['tflops_per_s']:.1f} | "
                f"{f(s['mfu'] and 100 * s['mfu'], '.1f')}{'' if s['mfu'] is None else '%'} | "
                f"{100 * s['padding/encoder']:.0f}% / {100 * s['padding/llm']:.0f}% | {f(s['peak_memory_gb'], '.1f')} |"
            )
    z = result.get("zero")
    if z:
        lines += [
            "",
            f"ZeRO memory ({z.get('llm', '')}, one process): "
            + json.dumps({k: v for k, v in z.items() if k.startswith("zero") or k == "omitted"}),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, a few steps (the unit test)")
    p.add_argument("--out", default=str(REPO / "bench_results"), help="directory for gpu.json and gpu.md")
    p.add_argument("--llms", default="qwen2_1.5b,qwen2_7b", help="comma-separated: " + ", ".join(LLMS))
    p.add_argument("--samples", type=int, default=192, help="clips in the set each scheme batches")
    p.add_argument("--clips-per-batch", type=int, default=8, help="pad30's batch; bucketed's budget in 30-s clips")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--row-tokens", type=int, default=4096, help="packed: LLM tokens per row (data.max_tokens_per_row)")
    p.add_argument("--attn", default="sdpa")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing in both towers")
    p.add_argument("--peak-tflops", type=float, default=None, help="dense peak per device (default: by name)")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop timing new steps after this many seconds")
    p.add_argument("--zero", choices=["auto", "off"], default="auto", help="ZeRO-2/3 memory when DeepSpeed is here")
    p.add_argument("--zero-llm", default="qwen2_7b")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.dry_run:
        device = torch.device("cpu")
        args.llms, args.zero_llm, args.dtype = "tiny", "tiny", "float32"
        args.samples, args.clips_per_batch, args.warmup = min(args.samples, 6), min(args.clips_per_batch, 2), 1
    elif not torch.cuda.is_available():
        raise SystemExit("gpu_bench: no CUDA device here; run on a GPU machine, or --dry-run for the CPU check")
    else:
        device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    if args.peak_tflops is None and device.type == "cuda":
        args.peak_tflops = next((v for k, v in PEAKS.items() if k in name), None)
    deadline = start + args.budget_s
    runs = []
    for llm in args.llms.split(","):
        try:
            runs.append(bench_llm(llm, args, device, deadline))
        except torch.cuda.OutOfMemoryError as e:
            runs.append({"llm": llm, "schemes": {"all": {"error": f"out of memory: {str(e).splitlines()[0]}"}}})
    result: dict[str, Any] = {
        "device": name,
        "peak_tflops": args.peak_tflops,
        "dtype": args.dtype,
        "attn": args.attn,
        "checkpointing": args.checkpointing,
        "dry_run": args.dry_run,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "runs": runs,
    }
    if args.zero == "auto" and time.perf_counter() < deadline:
        result["zero"] = zero_memory(args, device)
    result["wall_s"] = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "gpu.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
