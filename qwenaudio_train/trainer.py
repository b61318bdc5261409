"""The training loop: one visible, step-based ``train()`` and a ``train_step()`` that fit on a screen.

A step = ``grad_accum`` micro-batches per rank, one optimizer update. The loss of a step is the mean over
*every target token of the step on every rank*: each micro-batch contributes ``sum of its token losses /
global target tokens``, so short and long targets weigh per token, not per batch (see ``train_step``).

Preemption: SIGTERM or SIGUSR1 on any rank makes every rank finish its step, save and leave ``train()``
(``stopped_by``); what follows (exit code 3, the record for ``launch/``) is in ``faults.py``.

Must not: parse configs (``config.py``), know file layouts of checkpoints (``checkpoint.py``) or of data
(``data/``). Runs the same under torchrun on N GPUs and as 1-2 CPU processes with gloo.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from qwenaudio_train import checkpoint, distributed, elastic, faults, metrics
from qwenaudio_train.config import DataConfig, TrainConfig, to_container
from qwenaudio_train.data.budget import length_fn_for
from qwenaudio_train.data.loader import BatchingConfig, StatefulLoader
from qwenaudio_train.data.mixture import build_sources
from qwenaudio_train.data.processing import IGNORE_INDEX, SampleProcessor, collate_for
from qwenaudio_train.distributed import all_reduce_sum, deepspeed_config, init_distributed
from qwenaudio_train.flops import SUMMED_KEYS, BatchInfo, Checkpointing, ModelDims, Trainable, combine, step_flops
from qwenaudio_train.metrics import MetricsLogger, end_line, resume_line, startup_lines
from qwenaudio_train.model import HOST_INPUTS, MODEL_INPUTS, build_model
from qwenaudio_train.optim import apply_freeze, build_optimizer, lr_at, set_lr
from qwenaudio_train.runs import save_run_tokenizer
from qwenaudio_train.tokenizer import load_tokenizer

if TYPE_CHECKING:
    from qwenaudio_train.data.stream import SourceSpec

# DeepSpeed 0.19 calls a collective torch deprecated; the warning would repeat at every log step.
warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*is deprecated", category=FutureWarning)


class NonFiniteLossError(RuntimeError):
    pass


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = init_distributed()
        self.grad_accum = cfg.trainer.grad_accum  # the one place read from: a resume may adjust it (world size change)
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_dir = checkpoint.checkpoint_dir(self.run_dir)
        self.tokenizer = load_tokenizer(cfg.tokenizer_source())
        if self.dist.is_main:  # the run carries its tokenizer: eval, export and chat work from anywhere
            save_run_tokenizer(self.tokenizer, self.run_dir)
            faults.clear_signal_stop(self.run_dir)
        self.resume_notes: list[str] = []  # checkpoints trainer.resume=auto skipped, printed at start-up
        ds = cfg.deepspeed
        self.resumed_from = checkpoint.resume_point(
            cfg.trainer.resume, self.ckpt_dir, cfg.trainer.resume_data, self.resume_notes.append, ds.load_universal
        )
        self.resume_plan = elastic.prepare(self.resumed_from, cfg, self.dist, self.resume_notes.append)  # + checks
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.grad_accum = self.resume_plan.grad_accum  # trainer.elastic: the saved global batch on this world size
        self.model = build_model(cfg.model_config(self.tokenizer))
        self.param_counts = apply_freeze(self.model, cfg.trainer.freeze)
        if cfg.lora.enabled:  # adapters on the LLM; with freeze_audio the adapters are all that trains
            self.param_counts = apply_lora_counted(self.model, cfg.lora)
        self.checkpointing = Checkpointing.from_config(cfg.deepspeed)  # per tower, every k-th layer
        if self.checkpointing.encoder or self.checkpointing.llm:
            self.model.gradient_checkpointing_enable(**vars(self.checkpointing))
        self.engine, self.optimizer = self._build_engine()
        self.step, self.samples_seen, self.tokens_seen = 0, 0, 0
        data_state, wandb_id = self._resume(self.resumed_from) if self.resumed_from else (None, None)
        self.loader = self._build_loader(data_state)
        self.logger = MetricsLogger(
            self.run_dir,
            self.dist.is_main,
            cfg.trainer.max_steps,
            self.step,
            wandb_mode=cfg.logger.wandb_mode,
            wandb_project=cfg.logger.project,
            run_name=cfg.name,
            config=to_container(cfg),
            progress=cfg.logger.progress,
            resume_id=wandb_id,
        )
        self._stop_signal: int | None = None
        self.stopped_by: str | None = None  # the signal(s) that stopped train(), as agreed by all ranks
        self._progress_step = self.step
        self.nonfinite_in_a_row, self.nonfinite_total = 0, 0
        self.flop_dims, self.trainable = ModelDims.from_model(self.model), Trainable.from_model(self.model)
        from qwenaudio_train.flops import detect_peak_tflops

        self.peak_tflops = cfg.trainer.peak_tflops or (  # 0 = the device's own peak when it is a known GPU
            detect_peak_tflops(torch.cuda.get_device_name(self.dist.device)) if self.dist.device.type == "cuda" else 0.0
        )
        self.last_checkpoint: Path | None = self.resumed_from  # for the end-of-run line
        self.last_loss: tuple[int, float] | None = None
        for sig in faults.STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        if self.dist.is_main:  # the console is rank 0's
            self._print_startup(data_restored=data_state is not None)

    # -- set-up helpers ------------------------------------------------------------------------------------
    def _build_engine(self) -> tuple[Any, Any]:
        import deepspeed  # after init_distributed, which quiets DeepSpeed on ranks > 0 before its import

        ds = self.cfg.deepspeed
        config = deepspeed_config(
            ds.zero_stage,
            self.cfg.data.batch_size,
            self.grad_accum,
            self.dist.world_size,
            self.cfg.optim.grad_clip,
            bf16=ds.bf16,
            offload_optimizer=ds.offload_optimizer,
            offload_param=ds.offload_param,
            activation_checkpointing=self.checkpointing.encoder or self.checkpointing.llm,
            **{k: getattr(ds, k) for k in distributed.COMM_KNOBS},  # overlap_comm, bucket sizes
            load_universal=ds.load_universal or self.resume_plan.universal,
        )
        optimizer = build_optimizer(self.model, self.cfg.optim)
        engine, optimizer, _, _ = deepspeed.initialize(model=self.model, optimizer=optimizer, config=config)
        return engine, optimizer

    def _resume(self, path: Path) -> tuple[dict[str, Any] | None, str | None]:
        """Restore weights, optimizer, RNG and counters from ``path``; return (this rank's data state, wandb id)."""
        state, data_state = checkpoint.load(self.engine, path, self.dist.rank, universal=self.resume_plan.universal)
        self.step, self.samples_seen = state["step"], state.get("samples_seen", 0)
        self.tokens_seen = state.get("tokens_seen", 0)
        return (data_state if self.cfg.trainer.resume_data else None), state.get("wandb_id")

    def _print_startup(self, data_restored: bool) -> None:
        for line in self.resume_notes:
            self.logger.console(line)
        for line in startup_lines(self._startup_summary()):
            self.logger.console(line)
        self.logger.console(resume_line(self.resumed_from, self.step, self.samples_seen, data_restored))

    def _startup_summary(self) -> dict[str, Any]:
        """The numbers of the start-up summary (``metrics.startup_lines`` words them)."""
        m, d, ds = self.cfg.model.resolved(), self.cfg.data, self.cfg.deepspeed
        return {
            "name": self.cfg.name,
            "model": {
                "preset": m.preset,
                "encoder": m.encoder_source or f"{m.encoder_layers} layers x {m.encoder_d_model}",
                "llm": m.llm_source or f"{m.llm_layers} layers x {m.llm_hidden_size}",
            },
            "params": metrics.tower_params(self.model),
            "sources": [{"name": s.name, "weight": s.weight, "hours": _source_hours(d, s)} for s in self.sources],
            "batch": {
                "world_size": self.dist.world_size,
                "grad_accum": self.grad_accum,
                "micro_batch": d.batch_size,
                "max_batch_seconds": d.max_batch_seconds,
                "max_batch_tokens": d.max_batch_tokens,
                "max_batch_size": d.max_batch_size,
                "zero_stage": ds.zero_stage,
                "dtype": "bf16" if ds.bf16 else "fp32",
            },
            "run_dir": str(self.run_dir),
            "tokenizer": str(self.cfg.model.tokenizer),
        }

    def _build_loader(self, data_state: dict[str, Any] | None) -> StatefulLoader:
        d = self.cfg.data
        self.sources = sources = build_sources(d.sources, d.weighting, d.temperature)
        formats: dict[str, Any] = {}
        if d.format == "chat":
            from qwenaudio_train.chat import ChatProcessor, collate_chat, parse_chat_meta

            processor: Any = ChatProcessor(
                self.tokenizer,
                n_mels=self.cfg.model.n_mels,
                spec_augment=d.spec_augment,
                **d.clip_policy(),
                max_tokens=d.max_tokens,
                system=d.system,
            )
            formats = {"parse_fn": parse_chat_meta, "collate_fn": collate_chat}
        else:
            processor = SampleProcessor(
                self.tokenizer,
                n_mels=self.cfg.model.n_mels,
                train=True,
                spec_augment=d.spec_augment,
                **d.clip_policy(),
                seed=self.cfg.seed,
            )
        batching = BatchingConfig(
            batch_size=d.batch_size,
            chunk_batches=d.chunk_batches,
            open_shards=d.open_shards,
            max_batch_seconds=d.max_batch_seconds,
            max_batch_tokens=d.max_batch_tokens,
            max_batch_size=d.max_batch_size,
            packing=bool(getattr(d, "packing", False)),
            sort_by=d.sort_by,
            max_bad_fraction=d.max_bad_fraction,
        )
        # The data order: world size x accumulation logical streams, fixed for the run (a resume keeps the saved
        # number: an elastic resume sets the accumulation to loader_streams(data_state) // world size first).
        accum = int(getattr(self, "grad_accum", self.cfg.trainer.grad_accum))
        formats["collate_fn"] = collate_for(formats.get("collate_fn"), d, self.tokenizer)  # packing, host-side spans
        return StatefulLoader(
            sources,
            processor,
            self.tokenizer.eod_id,
            batching,
            self.cfg.seed,
            self.dist.rank,
            self.dist.world_size,
            d.num_workers,
            state=data_state,
            n_streams=self.dist.world_size * accum,
            length_fn=length_fn_for(processor) if d.max_batch_tokens > 0 else None,
            **formats,
        )

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signum  # acted on at the end of the current step, on all ranks together

    # -- the loop ------------------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        try:
            return self._train(iter(self.loader))
        finally:  # loader workers ignore SIGTERM (they must outlive a preemption save): stop them explicitly
            self.loader.close()

    def _train(self, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        cfg = self.cfg.trainer
        window: dict[str, Any] = metrics.new_window()
        started, first_step = time.perf_counter(), self.step
        last_log = started
        while self.step < cfg.max_steps:
            lr = lr_at(self.step, cfg.max_steps, self.cfg.optim)
            set_lr(self.optimizer, lr)
            stats = self.train_step(batches)
            self.step += 1
            self.nonfinite_in_a_row = 0 if stats["finite"] else self.nonfinite_in_a_row + 1
            self.nonfinite_total += 0 if stats["finite"] else 1
            if self.nonfinite_in_a_row >= cfg.max_nonfinite_in_a_row:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_a_row} steps in a row had a non-finite loss (last: step {self.step}); "
                    f"stopping without saving. The last good checkpoint is "
                    f"{checkpoint.latest_checkpoint(self.ckpt_dir)}: lower optim.lr or check the data, then resume."
                )
            metrics.accumulate(window, stats)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                self._log(window, lr, now - last_log)
                window, last_log = metrics.new_window(), now
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps):
                self.evaluate()
            self.stopped_by = faults.agree_on_stop(self._stop_signal, self.dist.device)
            if self.step % cfg.save_every == 0 or self.step == cfg.max_steps or self.stopped_by:
                self.save()
            if self.stopped_by:
                code = faults.EXIT_SIGNAL_SAVED
                self.logger.progress(0, line=f"{self.stopped_by}: saved step {self.step}, exiting with code {code}")
                if self.dist.is_main:
                    faults.record_signal_stop(self.run_dir, self.stopped_by, self.step, self.last_checkpoint)
                break
        steps_run, seconds = self.step - first_step, time.perf_counter() - started
        line = end_line(
            self.step, cfg.max_steps, steps_run, seconds, self.last_loss, self.last_checkpoint, self.logger.path
        )
        self.logger.console(line)
        self.logger.close()
        return {
            "step": self.step,
            "resumed_from": str(self.resumed_from) if self.resumed_from else None,
            "stopped_by": self.stopped_by,
        }

    def train_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """One optimizer step. Nothing here waits for the device but the one finiteness agreement at the end: the
        target-token count comes from the host copy of the labels, the loss and per-task sums stay on the device
        (read once per log window, `Trainer._log`), the token all-reduce runs beside the first forward and feeds the
        loss scale on the device."""
        waited = time.perf_counter()
        micro = [next(batches) for _ in range(self.grad_accum)]
        waited = time.perf_counter() - waited  # blocked on the loader: data_wait
        device = self.dist.device
        # Target tokens of the whole step over all ranks: labels are shifted inside the model, so a label at
        # position 0 never counts. DeepSpeed divides gradients by world size and grad_accum, so each micro-batch's
        # token-loss sum is scaled by world * grad_accum / global_tokens to make the update that of the mean loss.
        local_tokens = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)  # host tensors
        global_tokens = distributed.all_reduce_started(distributed.to_device([local_tokens], device))
        scale: torch.Tensor | None = None
        tasks = sorted({t for b in micro for t in b["tasks"]})
        task_id = {t: i for i, t in enumerate(tasks)}
        # [loss sum, non-finite micro-batches, per-task loss sums..., per-task target tokens...], on the device
        acc = torch.zeros(2 + 2 * len(tasks), dtype=torch.float64, device=device)
        flops = combine(
            step_flops(self.flop_dims, BatchInfo.from_batch(b), self.trainable, self.checkpointing) for b in micro
        )
        for b in micro:
            inputs = {k: b[k] if k in HOST_INPUTS else b[k].to(device) for k in MODEL_INPUTS if k in b}
            out = self.engine(**inputs, return_logits=False)
            loss = out.loss_sum
            if self.step + 1 in self.cfg.trainer.inject_nan_at:
                loss = loss * float("nan")
            acc[0] += loss.detach()
            acc[1] += (~torch.isfinite(loss.detach())).double()
            rows = torch.tensor([task_id[t] for t in b["tasks"]]).to(device, non_blocking=True)
            acc[2:].index_add_(0, rows, out.sample_loss_sum.detach().double())
            acc[2 + len(tasks) :].index_add_(0, rows, out.sample_tokens.double())
            # Every micro-batch goes backward (a non-finite one too): whether the step is applied is agreed once
            # below, so no rank waits for its device in the middle of the step.
            if scale is None:  # the token count has been summing over ranks during the first forward
                scale = (self.dist.world_size * len(micro) / global_tokens().clamp(min=1.0)).float()
            self.engine.backward(loss * scale)
            if not self.engine.is_gradient_accumulation_boundary():
                self.engine.step()  # DeepSpeed's micro-step bookkeeping
        # The one agreement of the step (one all-reduce, one read): every rank steps or every rank skips.
        finite = distributed.all_reduce_(acc[1:2].clone()).item() == 0
        if finite:
            self.engine.step()
        else:
            # ZeRO's optimizers discard a step whose gradient norm is not finite; without ZeRO the gradients are
            # in .grad: zeroed, so the neutralised step below computes nothing from them.
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.zero_()
            faults.skip_step(self.engine, self.optimizer, set_lr)  # a real skip: weights, optimizer state kept
        return {
            # A skipped step counts for nothing in the logged loss, including its finite micro-batches.
            "loss_sum": acc[0] if finite else 0.0,
            "tokens": local_tokens if finite else 0,
            "task_loss": [(tasks, acc[2:])] if finite else [],  # (names, [sums..., tokens...]) read by `Trainer._log`
            "samples": sum(len(b["tasks"]) for b in micro),
            "finite": finite,
            "input_tokens": sum(b["padding"]["tokens"] for b in micro),
            "audio_seconds": sum(b["audio_seconds"] for b in micro),
            "audio_frames": sum(b["padding"]["audio_frames"] for b in micro),
            "data_wait": waited,
            "flops": flops,  # from the host-side shapes (flops.py): useful work, padding shares
            "grad_norm": metrics.or_nan(self.engine.get_global_grad_norm() if finite else None),  # read in _log
        }

    def _log(self, w: dict[str, Any], lr: float, seconds: float) -> None:
        local_loss, grad_norm, task_loss = metrics.read_window(w, self.dist.device)  # the window's one device read
        tasks = sorted(task_loss)
        gathered: list[Any] = [task_loss]
        if dist.is_initialized() and self.dist.world_size > 1:
            gathered = [None] * self.dist.world_size
            dist.all_gather_object(gathered, task_loss)
            tasks = sorted({t for g in gathered for t in g})
        totals = all_reduce_sum(
            [local_loss, w["tokens"], w["samples"], w["input_tokens"], w["audio_seconds"], w["audio_frames"]]
            + [w["data_wait"]],
            self.dist.device,
        )
        loss_sum, tokens, samples, in_tokens, audio_s, frames, waited = totals
        waited_max = distributed.all_reduce_(distributed.to_device([w["data_wait"]], self.dist.device), "max").item()
        self.samples_seen += int(samples)
        self.tokens_seen += int(in_tokens)
        counts = self.loader.data_counts()
        bad = all_reduce_sum([sum(counts["bad"].values())], self.dist.device)[0]
        record: dict[str, Any] = {
            "step": self.step,
            "loss": loss_sum / tokens if tokens else float("nan"),
            "lr": lr,
            "grad_norm": grad_norm,
            "samples_per_s": samples / seconds,
            "tokens_per_s": in_tokens / seconds,
            "audio_hours_per_s": audio_s / 3600 / seconds,
            # share of the window each rank spent blocked in next(batches): mean over ranks, and the worst rank
            "data_wait": waited / self.dist.world_size / seconds,
            "data_wait/max": waited_max / seconds,
            "samples_seen": self.samples_seen,
            "tokens_seen": self.tokens_seen,
            "data_bad": int(bad),
            "nonfinite_steps": self.nonfinite_total,
            "memory_gb": metrics.memory_gb(self.dist.device),
        }
        # Useful model FLOPs from the real shapes (flops.py): frozen towers forward + input gradient only, attention
        # per sample, LM head on targets, no padding and no activation recomputation.
        f = combine([dict(zip(SUMMED_KEYS, all_reduce_sum([w["flops"][k] for k in SUMMED_KEYS], self.dist.device)))])
        record["tflops_per_s"] = f["flops"] / seconds / 1e12
        record["hardware_tflops_per_s"] = f["flops_hardware"] / seconds / 1e12  # padding + recomputation included
        record["padding/encoder"], record["padding/llm"] = f["padding/encoder"], f["padding/llm"]
        if self.peak_tflops > 0:
            record["mfu"] = record["tflops_per_s"] / (self.peak_tflops * self.dist.world_size)
        for t in tasks:
            s = sum(g.get(t, [0.0, 0.0])[0] for g in gathered)
            n = sum(g.get(t, [0.0, 0.0])[1] for g in gathered)
            record[f"loss/{t}"] = s / max(n, 1)
        # Summed over ranks (issue 16): every rank reduces the same list, the configured sources in sorted order.
        sources = sorted(self.cfg.data.sources)
        summed = all_reduce_sum([counts["bad"].get(s, 0) for s in sources], self.dist.device) if sources else []
        for src, n in zip(sources, summed):
            if n:
                record[f"data/bad/{src}"] = int(n)
        self.logger.log(record)
        self.last_loss = (self.step, record["loss"])
        self.logger.progress(
            self.step - self._progress_step,
            postfix={"loss": f"{record['loss']:.3f}"},
            line=self.logger.summary_line(record, self.cfg.trainer.max_steps),
        )
        self._progress_step = self.step

    def evaluate(self) -> dict[str, Any]:
        """Greedy generation on a slice of data.valid with the release's prompts, scored and logged (kind=eval)."""
        from qwenaudio_train.eval.runner import EvalConfig, evaluate_model

        t, valid = self.cfg.trainer, self.cfg.data.valid
        if not valid:
            raise ValueError("Trainer.evaluate needs data.valid (the held-out shards)")
        ecfg = EvalConfig(
            batch_size=self.cfg.data.batch_size, max_new_tokens=t.eval_max_new_tokens, max_samples=t.eval_samples
        )
        _, results = evaluate_model(
            self.model,
            self.tokenizer,
            valid,
            ecfg,
            self.cfg.model.n_mels,
            self.dist.rank,
            self.dist.world_size,
            self.dist.device,
        )
        self.model.train()
        record: dict[str, Any] = {"kind": "eval", "step": self.step}
        for group, r in results.items():
            record[f"eval/{group}/{r['headline']}"] = r[r["headline"]]
        self.logger.log(record)
        return record

    def _weights_finite(self) -> bool:
        bad = 0.0
        for p in self.model.parameters():
            local = getattr(p, "ds_tensor", p)  # ZeRO-3 keeps this rank's shard in ds_tensor
            if local.numel() and not torch.isfinite(local).all():
                bad = 1.0
                break
        return all_reduce_sum([bad], self.dist.device)[0] == 0

    def save(self) -> Path:
        if not self._weights_finite():
            raise NonFiniteLossError(
                f"weights are non-finite at step {self.step}: refusing to save over "
                f"{checkpoint.latest_checkpoint(self.ckpt_dir)}"
            )
        state = {
            "samples_seen": self.samples_seen,
            "tokens_seen": self.tokens_seen,
            "config": to_container(self.cfg),
            "wandb_id": self.logger.wandb_id,
            "tokenizer": str(self.cfg.model.tokenizer),
            "world_size": self.dist.world_size,
            "param_counts": self.param_counts,
        }
        path = checkpoint.save(
            self.engine,
            self.ckpt_dir,
            self.step,
            state,
            self.loader.state_dict(),
            self.dist.rank,
            keep_last=self.cfg.trainer.keep_last,
        )
        if self.cfg.lora.enabled and self.dist.is_main and self.cfg.deepspeed.zero_stage < 3:
            from qwenaudio_train.lora import save_adapter

            save_adapter(self.model, path / "adapter", self.cfg.lora)  # the adapter alone, a few MB
        self.last_checkpoint = path
        return path


def apply_lora_counted(model: torch.nn.Module, cfg: Any) -> dict[str, int]:
    from qwenaudio_train.lora import apply_lora

    apply_lora(model, cfg)
    counts = {"trainable": 0, "frozen": 0}
    for p in model.parameters():
        counts["trainable" if p.requires_grad else "frozen"] += p.numel()
    return counts


def _source_hours(data: DataConfig, source: SourceSpec) -> float | None:
    """A source's hours for the start-up summary: from the config, else its shard manifest, else unknown."""
    from qwenaudio_train.data.mixture import manifest_hours

    hours = data.sources[source.name].hours
    if hours is None:
        try:
            hours = manifest_hours(source.shards)
        except (FileNotFoundError, KeyError, ValueError):
            return None
    return float(hours)
