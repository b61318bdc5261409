"""Typed configuration at the boundary: Hydra composes YAML, this module validates it once.

``configs/pretrain.yaml`` is a defaults list over the groups ``model/ data/ optim/ deepspeed/ logger/``;
``load_config`` merges the composed tree into the ``TrainConfig`` dataclass schema, so a typo
(``optim.learning_rate``) or a wrong type fails before any process group starts, naming the key. Each builder
then receives only its own section. Must not: build anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from qwenaudio_train.lora import LoraConfig
from qwenaudio_train.model import ModelConfig
from qwenaudio_train.optim import OptimConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    pass


@dataclass
class SourceConfig:
    shards: str = "???"  # a glob, brace pattern, directory of .tar files, or list
    weight: float | None = 1.0  # explicit weight; null = by hours (data.weighting=hours)
    hours: float | None = None  # hours of the source; null = read from the shard set's manifest.json
    max_hours: float | None = None  # cap on the hours counted for weighting (large corpora do not drown others)


@dataclass
class DataConfig:
    root: str = "artifacts/synthetic"
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    valid: str | None = None  # shard spec of the held-out split used by eval
    test: str | None = None
    batch_size: int = 8  # samples per micro-batch per rank (the cap when max_batch_seconds is set)
    chunk_batches: int = 16  # duration bucketing: batches per sorted chunk (1 = off)
    max_batch_seconds: float = 0.0  # audio budget per micro-batch, padded; 0 = fixed batch_size
    sort_by: str = "duration"  # duration | task_duration (also low LLM padding; pair with chunk_batches ~128)
    weighting: str = "explicit"  # explicit (each source's weight) | hours (hours ** (1 / temperature))
    temperature: float = 1.0  # with weighting=hours: 1 = proportional to hours, larger = flatter
    open_shards: int = 2  # shards read at once per source (local shuffling)
    num_workers: int = 1  # DataLoader workers per rank
    spec_augment: bool = True
    long_audio: str = "reject"  # reject | truncate
    max_bad_fraction: float = 0.05
    format: str = "tagged"  # tagged (multi-task pretraining samples) | chat (ChatML conversations, stage 2)
    max_tokens: int | None = None  # chat: conversations longer than this are skipped and counted, never cut
    system: str = "You are a helpful assistant."  # chat: default system prompt


@dataclass
class DeepSpeedConfig:
    zero_stage: int = 2
    bf16: bool = False
    offload_optimizer: bool = False
    offload_param: bool = False
    activation_checkpointing: bool = False
    load_universal: bool = False  # resume from a universal checkpoint (ds_to_universal): another world size


@dataclass
class LoggerConfig:
    wandb_mode: str = "offline"  # online | offline | disabled
    project: str = "qwenaudio-train"
    progress: bool = True


@dataclass
class TrainerConfig:
    max_steps: int = 1000
    freeze: str = "pretrain"  # pretrain | sft | none | regex:<pattern>
    grad_accum: int = 1
    log_every: int = 10
    save_every: int = 500
    keep_last: int = 3
    resume: str = "auto"  # auto | none | <checkpoint dir>
    resume_data: bool = True
    max_nonfinite_in_a_row: int = 5  # a non-finite loss skips its step; this many in a row stop the run
    peak_tflops: float = 0.0  # per device, for the MFU estimate (e.g. 312 for an A100 in bf16); 0 = not logged
    inject_nan_at: list[int] = field(default_factory=list)  # fault injection (tests): steps whose loss is NaN
    eval_every: int = 0  # periodic evaluation on data.valid every N steps (0 = off), logged as kind=eval
    eval_samples: int = 64  # samples of data.valid per periodic evaluation (0 = all)
    eval_max_new_tokens: int = 64


@dataclass
class TrainConfig:
    name: str = "pretrain"
    seed: int = 0
    run_dir: str = "runs/pretrain"
    tokenizer: str = "???"  # a transformers tokenizer dir/hub name, or a Qwen .tiktoken file
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def model_config(self, tokenizer: Any) -> ModelConfig:
        """The model section completed with what only the tokenizer knows (vocabulary and special ids)."""
        return dataclasses.replace(
            self.model,
            vocab_size=tokenizer.vocab_size,
            audio_start_id=tokenizer.audio_start_id,
            audio_end_id=tokenizer.audio_end_id,
            audio_pad_id=tokenizer.audio_pad_id,
            eod_id=tokenizer.eod_id,
        )


_VALID = {
    ("logger", "wandb_mode"): ("online", "offline", "disabled"),
    ("data", "long_audio"): ("reject", "truncate"),
    ("data", "weighting"): ("explicit", "hours"),
    ("data", "format"): ("tagged", "chat"),
    ("data", "sort_by"): ("duration", "task_duration"),
    ("deepspeed", "zero_stage"): (0, 1, 2, 3),
}


def validate(cfg: DictConfig | dict[str, Any]) -> TrainConfig:
    """Merge a composed config into the schema; raise ConfigError naming the bad key and the fix."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    if "hydra" in cfg:
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
        obj: TrainConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        raise ConfigError(
            f"config error at {key!r}: {e.msg if hasattr(e, 'msg') else e}. "
            f"Check the spelling against the schema in qwenaudio_train/config.py "
            f"and the YAML under configs/."
        ) from None
    for (section, key), allowed in _VALID.items():
        value = getattr(getattr(obj, section), key)
        if value not in allowed:
            raise ConfigError(f"{section}.{key}={value!r}: choose one of {allowed}")
    if obj.tokenizer in ("???", ""):
        raise ConfigError(
            "tokenizer is not set: give a tokenizer directory, hub name or .tiktoken file "
            "(the demo's is built by `make data`)"
        )
    if obj.trainer.eval_every and not obj.data.valid:
        raise ConfigError("trainer.eval_every is set but data.valid is not: give the held-out shards")
    if obj.trainer.eval_every and obj.deepspeed.zero_stage == 3:
        raise ConfigError(
            "trainer.eval_every with deepspeed.zero_stage=3 is not supported yet (generation over "
            "partitioned weights needs every rank in lock-step): evaluate checkpoints with qwenaudio-eval"
        )
    for name, src in obj.data.sources.items():
        if src.shards in ("???", ""):
            raise ConfigError(f"data.sources.{name}.shards is not set")
    return obj


def register_schema() -> None:
    """Make the schema the base of ``configs/pretrain.yaml`` (its defaults list starts with ``train_schema``), so
    every schema field is overridable from the command line and a typo fails during composition."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


register_schema()


def to_container(cfg: TrainConfig) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def compose(config_name: str = "pretrain", overrides: list[str] | None = None) -> TrainConfig:
    """Compose ``configs/<config_name>.yaml`` with overrides (Hydra's Compose API) and validate it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides or []))
    return validate(cfg)
