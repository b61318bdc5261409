"""Entry point of evaluation: ``qwenaudio-eval checkpoint=<run or checkpoint dir> [split=test]``.

Writes ``eval.json`` (scores + every prediction) and ``eval.md`` (the per-task table, beside the untrained
model's scores when ``baseline=untrained``) and prints the table. Runs on 1 process or under torchrun.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from qwenaudio_train import runs
from qwenaudio_train.config import CONFIG_DIR, ConfigError, TrainConfig, validate_eval
from qwenaudio_train.config_checks import pipe_problem
from qwenaudio_train.entry import prevalidate
from qwenaudio_train.eval.release_jsonl import release_jsonl_files
from qwenaudio_train.eval.runner import EvalConfig, evaluate_model, markdown_table, write_report


def resolve_split(split: str, train_cfg: TrainConfig | None, work_dir: Path, allow_pipe: bool = False) -> str:
    """test/valid from the run's data config, a shard spec, or a release eval jsonl (the runner reads it directly,
    its audio from the jsonl's folder; ``work_dir`` is no longer used: nothing is converted).

    A ``pipe:`` spec runs a shell command: it is used only when the user gives it here with ``allow_pipe``, never
    when it comes from the checkpoint's stored config (a checkpoint may come from someone else)."""
    if train_cfg is not None and split in ("test", "valid"):
        spec = {"test": train_cfg.data.test, "valid": train_cfg.data.valid}[split]
        if not spec:
            raise ValueError(f"split={split!r}: the run's data config has no such split; give a shard spec")
        if spec.startswith("pipe:"):
            raise ValueError(
                f"split={split!r}: the checkpoint's stored data.{split} is a pipe: spec ({spec!r}), which runs a "
                "shell command and is never taken from a checkpoint; give the split yourself "
                "(split='pipe:...' allow_pipe=true, or a shard directory)"
            )
        return spec
    refused = pipe_problem("split", split, allow_pipe, flag="allow_pipe=true")
    if refused:
        raise ValueError(refused)
    jsonl = release_jsonl_files(split)
    for path in jsonl or []:
        if not path.is_file():
            raise FileNotFoundError(f"eval jsonl {path} does not exist")
    return split


def run(cfg: DictConfig) -> dict[str, Any]:
    from qwenaudio_train.distributed import init_distributed

    info = init_distributed()
    job = validate_eval(cfg)
    loaded = runs.load(job.checkpoint, job.adapter, merge=False)
    model, tokenizer, train_cfg, checkpoint_dir = loaded.model, loaded.tokenizer, loaded.train_config, loaded.source
    n_mels = model.cfg.n_mels
    out_dir = Path(job.out_dir) if job.out_dir else checkpoint_dir / f"eval_{Path(str(job.split)).stem}"
    split = resolve_split(str(job.split), train_cfg, out_dir, allow_pipe=job.allow_pipe)
    ecfg = EvalConfig(
        batch_size=job.batch_size, max_new_tokens=job.max_new_tokens, max_samples=job.max_samples,
        audio_root=job.audio_root, release_compat=job.audio.release_compat,
    )  # fmt: skip
    records, results = evaluate_model(model, tokenizer, split, ecfg, n_mels, info.rank, info.world_size, info.device)
    baseline = None
    if job.baseline == "untrained" and train_cfg is not None:
        base_model, _, _ = runs.load_trained(checkpoint_dir, untrained=True)
        _, baseline = evaluate_model(
            base_model, tokenizer, split, ecfg, n_mels, info.rank, info.world_size, info.device
        )
    if info.rank == 0:
        meta = {
            "checkpoint": str(checkpoint_dir),
            "split": str(split),
            "samples": len(records),
            "seconds": sum(r.get("seconds", 0) for r in list(results.values())[:1]),
        }
        js, md = write_report(out_dir, records, results, baseline, meta)
        print(markdown_table(results, baseline, title=f"{checkpoint_dir} on {job.split}"))
        print(f"wrote {js} and {md}")
    return {"results": results, "baseline": baseline}


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except (FileNotFoundError, ValueError, ConfigError) as e:
        print(f"qwenaudio-eval: {e}", file=sys.stderr)
        sys.exit(2)
    import torch.distributed as dist

    if dist.is_initialized():  # an orderly end: no rank leaves while rank 0 still writes the report
        dist.barrier()
        dist.destroy_process_group()


def check_job(cfg: Any) -> None:
    """What ``qwenaudio-eval`` can check before any process group starts: the schema and that the model is there."""
    job = validate_eval(cfg)
    if not Path(job.checkpoint).exists():
        raise ConfigError(
            f"checkpoint={job.checkpoint}: no such file or directory; give a run directory, a checkpoint directory "
            "(checkpoints/step_XXXXXXXX) or an exported model directory (qwenaudio-export)"
        )


def main() -> None:
    prevalidate("qwenaudio-eval", "eval", sys.argv[1:], check_job)
    _main()


if __name__ == "__main__":
    main()
