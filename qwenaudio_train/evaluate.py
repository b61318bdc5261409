"""Entry point of evaluation: ``qwenaudio-eval checkpoint=<run or checkpoint dir> [split=test]``.

Writes ``eval.json`` (scores + every prediction) and ``eval.md`` (the per-task table, beside the untrained
model's scores when ``baseline=untrained``) and prints the table. Runs on 1 process or under torchrun.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from qwenaudio_train import checkpoint as ckpt
from qwenaudio_train.config import CONFIG_DIR, TrainConfig, validate
from qwenaudio_train.eval.runner import EvalConfig, evaluate_model, markdown_table, write_report


def resolve_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if (path / "trainer_state.json").is_file():
        return path
    found = ckpt.latest_checkpoint(path / "checkpoints") if path.is_dir() else None
    if found is None:
        raise FileNotFoundError(
            f"no checkpoint at {path}: give a run directory with checkpoints/ or a "
            "checkpoint directory containing trainer_state.json"
        )
    return found


def resolve_split(split: str, train_cfg: TrainConfig | None, work_dir: Path) -> str:
    """test/valid from the run's data config, a shard spec, or a release eval jsonl (converted to shards)."""
    if train_cfg is not None and split in ("test", "valid"):
        spec = {"test": train_cfg.data.test, "valid": train_cfg.data.valid}[split]
        if not spec:
            raise ValueError(f"split={split!r}: the run's data config has no such split; give a shard spec")
        return spec
    if split.endswith(".jsonl"):
        from data_recipes.common import convert
        from data_recipes.release_eval_jsonl import ReleaseEvalJsonl

        path = Path(split)
        if not path.is_file():
            raise FileNotFoundError(f"eval jsonl {path} does not exist")
        out = work_dir / "release_eval_shards"
        convert(ReleaseEvalJsonl(path.parent, [str(path)]), path.parent, out)
        return str(out / "*" / "*" / "*.tar")
    return split


def load_model_dir(model_dir: Path, adapter: str | None = None) -> tuple[Any, Any]:
    """An exported model directory (qwenaudio-export / save_pretrained), optionally with a LoRA adapter."""
    from qwenaudio_train.model import QwenAudioModel
    from qwenaudio_train.tokenizer import load_tokenizer

    model = QwenAudioModel.from_pretrained(model_dir)
    tokenizer = load_tokenizer(model_dir / "tokenizer")
    if adapter:
        from qwenaudio_train.lora import load_adapter

        model = load_adapter(model, adapter)
    return model.eval(), tokenizer


def load_trained(checkpoint_dir: Path, untrained: bool = False) -> tuple[Any, Any, TrainConfig]:
    """(model, tokenizer, train config) of a checkpoint; ``untrained`` gives the run's step-0 weights."""
    from qwenaudio_train.model import build_model
    from qwenaudio_train.tokenizer import load_tokenizer

    state = json.loads((checkpoint_dir / "trainer_state.json").read_text())
    cfg = validate(state["config"])
    tokenizer = load_tokenizer(cfg.tokenizer)
    torch.manual_seed(cfg.seed)  # the same initial weights as the training run
    model = build_model(cfg.model_config(tokenizer))
    if cfg.lora.enabled:  # the checkpoint holds llm.base_model.model.* keys: wrap first, merge after loading
        from qwenaudio_train.lora import apply_lora

        apply_lora(model, cfg.lora)
    if not untrained:
        missing, unexpected = model.load_state_dict(ckpt.load_model_state_dict(checkpoint_dir), strict=False)
        if unexpected or [m for m in missing if "rotary" not in m]:
            raise RuntimeError(
                f"checkpoint {checkpoint_dir} does not match the model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
    if cfg.lora.enabled:
        from qwenaudio_train.lora import merge_lora

        merge_lora(model)
    model.eval()
    return model, tokenizer, cfg


def run(cfg: DictConfig) -> dict[str, Any]:
    from qwenaudio_train.distributed import init_distributed

    info = init_distributed()
    source = Path(cfg.checkpoint)
    if (source / "qwen_audio_config.json").is_file():  # an exported model directory
        checkpoint_dir = source
        model, tokenizer = load_model_dir(source, cfg.get("adapter"))
        train_cfg, n_mels = None, model.cfg.n_mels
    else:
        checkpoint_dir = resolve_checkpoint(cfg.checkpoint)
        model, tokenizer, train_cfg = load_trained(checkpoint_dir)
        n_mels = train_cfg.model.n_mels
    out_dir = Path(cfg.out_dir) if cfg.out_dir else checkpoint_dir / f"eval_{Path(str(cfg.split)).stem}"
    split = resolve_split(str(cfg.split), train_cfg, out_dir)
    ecfg = EvalConfig(batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens, max_samples=cfg.max_samples)
    records, results = evaluate_model(model, tokenizer, split, ecfg, n_mels, info.rank, info.world_size, info.device)
    baseline = None
    if cfg.baseline == "untrained" and train_cfg is not None:
        base_model, _, _ = load_trained(checkpoint_dir, untrained=True)
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
        print(markdown_table(results, baseline, title=f"{checkpoint_dir} on {cfg.split}"))
        print(f"wrote {js} and {md}")
    return {"results": results, "baseline": baseline}


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"qwenaudio-eval: {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
