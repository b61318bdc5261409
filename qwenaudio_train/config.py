"""Typed configuration at the boundary: Hydra composes YAML, this module validates it once.

The YAML lives inside the package (``qwenaudio_train/configs/``, shipped in the wheel; the repository's top-level
``configs`` points there). ``configs/pretrain.yaml`` is a defaults list over the groups ``model/ data/ optim/
deepspeed/ logger/``, based on the ``TrainConfig`` dataclass schema below: every default is written once, here (or
in the section's own dataclass), and the YAML files set only what differs. A typo (``optim.learning_rate``), a
wrong type or a value outside a choice fails during composition or in ``validate``, before any process group
starts, naming the key. Each builder then receives only its own section. ``docs/configs.md`` is generated from
these schemas (``python -m qwenaudio_train.config_reference``). A user's own config directory is added with Hydra's
``--config-dir DIR`` (its ``data/*.yaml``, ``experiment/*.yaml`` ... join the shipped groups).
Must not: build anything.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from qwenaudio_train.lora import LoraConfig
from qwenaudio_train.model import ModelConfig
from qwenaudio_train.optim import OptimConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # shipped inside the package (wheel included)


class ConfigError(ValueError):
    pass


TOKENIZER_HINT = (  # the fix, for every way the tokenizer can be missing
    "model.tokenizer is not set: give the release's qwen.tiktoken (model.tokenizer=/path/to/Qwen-Audio/qwen.tiktoken), "
    "a transformers tokenizer directory or hub name, or a BPE trained on your text "
    "(qwenaudio-data tokenizer --text corpus.txt --out DIR; `make data` builds the demo's)"
)


class Choice(str, Enum):
    """A config value from a fixed set: compares equal to its string and prints as it (``data.long_audio ==
    "reject"``); OmegaConf rejects anything else during composition, naming the key and the choices."""

    def __str__(self) -> str:
        return str(self.value)


class LongAudio(Choice):
    window = "window"  # a clip over 30 s is encoded in 30-s windows joined into one span (up to max_audio_seconds)
    reject = "reject"  # a clip over 30 s is a bad sample (skipped and counted)
    truncate = "truncate"  # cut to 30 s (targets are not re-based)


class Weighting(Choice):
    explicit = "explicit"  # each source's `weight`
    hours = "hours"  # hours ** (1 / temperature), from each shard set's manifest.json


class DataFormat(Choice):
    tagged = "tagged"  # multi-task pretraining samples (audio + hierarchical tags + target)
    chat = "chat"  # ChatML conversations (stage 2)


class SortBy(Choice):
    duration = "duration"
    task_duration = "task_duration"  # single-task batches: low LLM padding too (pair with chunk_batches ~128)


class WandbMode(Choice):
    online = "online"
    offline = "offline"
    disabled = "disabled"


class Baseline(Choice):
    untrained = "untrained"  # the run's step-0 weights (same seed), scored beside the checkpoint
    none = "none"


@dataclass
class SourceConfig:
    shards: str = "???"  # a glob, brace pattern, directory of .tar files, or list
    weight: float | None = 1.0  # explicit weight; null = by hours (data.weighting=hours)
    hours: float | None = None  # hours of the source; null = read from the shard set's manifest.json
    max_hours: float | None = None  # cap on the hours counted for weighting (large corpora do not drown others)


@dataclass
class DataConfig:
    root: str | None = None  # a folder the mixture refers to as ${data.root} (e.g. a recipe's --out)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    valid: str | None = None  # shard spec of the held-out split used by eval
    test: str | None = None
    batch_size: int = 8  # samples per micro-batch per rank when no budget is set (max_batch_seconds/_tokens)
    chunk_batches: int = 16  # duration bucketing: batches per sorted chunk (1 = off)
    max_batch_seconds: float = 0.0  # audio budget per micro-batch, padded (rows x longest clip); 0 = none
    max_batch_tokens: int = 0  # LLM token budget per micro-batch, padded (rows x longest; packed: sum); 0 = none
    max_batch_size: int = 256  # with a budget: the most samples in one micro-batch (batch_size is then no cap)
    sort_by: SortBy = SortBy.duration  # duration | task_duration (also low LLM padding; chunk_batches ~128)
    weighting: Weighting = Weighting.explicit  # explicit (each source's weight) | hours (hours ** (1 / temperature))
    temperature: float = 1.0  # with weighting=hours: 1 = proportional to hours, larger = flatter
    open_shards: int = 2  # shards read at once per source (local shuffling)
    num_workers: int = 1  # DataLoader workers per rank
    spec_augment: bool = True
    long_audio: LongAudio = LongAudio.window  # window (30-s windows, one span) | reject | truncate
    max_audio_seconds: float = 600.0  # long_audio=window: longer clips are bad samples (memory grows linearly)
    max_bad_fraction: float = 0.05
    format: DataFormat = DataFormat.tagged  # tagged (multi-task pretraining samples) | chat (ChatML, stage 2)
    max_tokens: int | None = None  # chat: conversations longer than this are skipped and counted, never cut
    system: str = "You are a helpful assistant."  # chat: default system prompt
    allow_pipe: bool = False  # allow `pipe:<shell command>` shard specs (they run the command): never from a checkpoint
    packing: bool = False  # pack each micro-batch's samples into shared LLM rows (attention and positions per sample)
    max_tokens_per_row: int = 2048  # with packing: the row budget; must hold the longest sample (else an error)

    def clip_policy(self) -> dict[str, Any]:
        """The processors' long-clip arguments (``processing.fit_clip``): ``long_audio`` and ``max_audio_seconds``."""
        return {"long_audio": self.long_audio, "max_audio_seconds": self.max_audio_seconds}


@dataclass
class DeepSpeedConfig:
    zero_stage: int = 2
    bf16: bool = False
    offload_optimizer: bool = False
    offload_param: bool = False
    # Activation checkpointing: recompute a tower's layers in backward (less memory, one more forward of them). A
    # frozen tower the gradient crosses (stage 1's LLM) keeps its activations too: checkpointing it costs as much.
    checkpoint_encoder: bool = False  # recompute the audio encoder's layers in backward
    checkpoint_llm: bool = False  # recompute the LLM's decoder layers in backward
    checkpoint_every: int = 1  # checkpoint layers 0, k, 2k... of each checkpointed tower (1 = every layer)
    activation_checkpointing: bool = False  # deprecated: true = checkpoint_encoder + checkpoint_llm (both towers)
    # ZeRO communication; bucket sizes in elements (bigger: fewer, larger collectives, more memory in flight).
    overlap_comm: bool | None = None  # ZeRO-2/3: reduce gradients during backward; null = on with CUDA, off on CPU
    reduce_bucket_size: int = 200_000_000  # ZeRO-1/2/3: gradient elements reduced per collective
    allgather_bucket_size: int = 200_000_000  # ZeRO-1/2: updated parameter elements gathered per collective
    stage3_prefetch_bucket_size: int = 50_000_000  # ZeRO-3: parameters fetched ahead of the layer that needs them
    # ZeRO-3: smaller parameters stay whole on every rank. Null = 1e5 (DeepSpeed's) with CUDA, 0 on CPU (tiny models)
    stage3_param_persistence_threshold: int | None = None  # ZeRO-3: unpartitioned below this size; null = by device
    load_universal: bool = False  # resume from a universal checkpoint (ds_to_universal): another world size


@dataclass
class LoggerConfig:
    wandb_mode: WandbMode = WandbMode.offline  # online | offline | disabled
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
    elastic: bool = False  # resume on another number of ranks (universal checkpoint; accumulation keeps the batch)
    max_nonfinite_in_a_row: int = 5  # a non-finite loss skips its step; this many in a row stop the run
    peak_tflops: float = 0.0  # per device, dense bf16 TFLOP/s for MFU; 0 = a known GPU's own (A100, H100, H200...)
    inject_nan_at: list[int] = field(default_factory=list)  # fault injection (tests): steps whose loss is NaN
    eval_every: int = 0  # periodic evaluation on data.valid every N steps (0 = off), logged as kind=eval
    eval_samples: int = 64  # samples of data.valid per periodic evaluation (0 = all)
    eval_max_new_tokens: int = 64


@dataclass
class TrainConfig:
    name: str = "pretrain"  # names the run (run_dir default, wandb)
    seed: int = 0  # initial weights, data order, augmentation
    run_dir: str = "runs/pretrain"  # checkpoints/, metrics.jsonl, tokenizer/, wandb/ of the run
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def tokenizer_source(self) -> str:
        """``model.tokenizer``, which ``validate`` guarantees is set."""
        if not self.model.tokenizer:
            raise ConfigError(TOKENIZER_HINT)
        return self.model.tokenizer

    def model_config(self, tokenizer: Any) -> ModelConfig:
        """The model section completed with what only the tokenizer knows (vocabulary and special ids). ConfigError
        when the tokenizer carries another model family's audio tokens than `model.family`."""
        carried = getattr(getattr(tokenizer, "family", None), "name", self.model.family)
        if carried != self.model.family:
            raise ConfigError(
                f"model.family={self.model.family} but the tokenizer {self.model.tokenizer} carries the {carried} "
                f"family's audio tokens: set model.family={carried}, or give a {self.model.family} tokenizer"
            )
        return dataclasses.replace(
            self.model,
            vocab_size=tokenizer.vocab_size,
            audio_start_id=tokenizer.audio_start_id,
            audio_end_id=tokenizer.audio_end_id,
            audio_pad_id=tokenizer.audio_pad_id,
            eod_id=tokenizer.eod_id,
        )


_VALID = {("deepspeed", "zero_stage"): (0, 1, 2, 3)}


@dataclass
class EvalAudioConfig:
    """How evaluation computes the audio input."""

    # The release's front-end and encoder edge (log-mel floored over the 30-s padded clip, the last convolution
    # window reading the padded log-mel, clips cut at 30 s): scoring a released checkpoint then reproduces the
    # release's own per-clip outputs (with eval batch_size=1, or the release's own batches). Off: each clip is
    # computed on its real length, as training does.
    release_compat: bool = False


@dataclass
class EvalJobConfig:
    """The schema of ``configs/eval.yaml`` (``qwenaudio-eval``)."""

    checkpoint: str = "???"  # a checkpoint dir (step_XXXXXXXX), a run dir (its latest), or an exported model dir
    adapter: str | None = None  # a LoRA adapter directory applied on top of an exported model
    split: str = "test"  # test | valid (the run's data config), a shard spec/dir, or a release eval .jsonl file
    batch_size: int = 16
    max_new_tokens: int = 96
    max_samples: int = 0  # 0 = the whole split
    baseline: Baseline = Baseline.untrained  # untrained (the run's step-0 weights, same seed) | none
    allow_pipe: bool = False  # allow a `pipe:<shell command>` split given here (never the one a checkpoint stores)
    out_dir: str | None = None  # default: <checkpoint>/eval_<split>
    audio_root: str | None = None  # split=<file>.jsonl: audio paths must stay under it (default: the jsonl's folder)
    audio: EvalAudioConfig = field(default_factory=EvalAudioConfig)


def _without_hydra_keys(cfg: DictConfig) -> DictConfig:
    """A composed config (``hydra`` node) or a YAML file loaded as it is (``defaults`` list): only the fields."""
    if "hydra" in cfg or "defaults" in cfg:
        return OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k not in ("hydra", "defaults")])
    return cfg


def validate(cfg: DictConfig | dict[str, Any]) -> TrainConfig:
    """Merge a composed config into the schema; raise ConfigError naming the bad key and the fix."""
    node: Any = _without_hydra_keys(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg)
    if "tokenizer" in node:  # the top-level key of configs saved before the tokenizer joined the model section
        legacy = node.tokenizer
        node = OmegaConf.masked_copy(node, [str(k) for k in node if k != "tokenizer"])
        if OmegaConf.select(node, "model.tokenizer", default=None) in (None, "???"):
            node = OmegaConf.merge(node, {"model": {"tokenizer": legacy}})
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), node)
        obj: TrainConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        if key == "model.tokenizer":
            raise ConfigError(TOKENIZER_HINT) from None
        raise ConfigError(
            f"config error at {key!r}: {e.msg if hasattr(e, 'msg') else e}. "
            f"Check the spelling against the schema in qwenaudio_train/config.py "
            f"and the YAML under configs/."
        ) from None
    for (section, key), allowed in _VALID.items():
        value = getattr(getattr(obj, section), key)
        if value not in allowed:
            raise ConfigError(f"{section}.{key}={value!r}: choose one of {allowed}")
    carried = Path(obj.model.init_from or "") / "tokenizer"
    if obj.model.init_from and carried.is_dir():  # an exported model carries its tokenizer: its ids are the model's
        obj.model.tokenizer = str(carried)
    if obj.model.tokenizer in (None, "???", ""):
        raise ConfigError(TOKENIZER_HINT)
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
    problems = value_problems(obj)
    if problems:
        raise ConfigError("\n".join(problems))
    return obj


_AT_LEAST_ONE = {  # key -> what it counts: 0 would divide by zero or make no batch at all
    "trainer.save_every": "steps between checkpoints (the last step is saved too)",
    "trainer.log_every": "steps between metric lines",
    "trainer.grad_accum": "micro-batches per optimizer step",
    "deepspeed.checkpoint_every": "checkpoint every k-th layer (1 = every layer)",
    "data.batch_size": "samples per micro-batch per rank",
    "data.chunk_batches": "batches per duration-sorted chunk (1 = no bucketing)",
    "data.open_shards": "shards read at once per source",
    "data.max_tokens_per_row": "tokens per packed LLM row (data.packing)",
    "data.max_batch_size": "the most samples in one budgeted micro-batch",
}


def value_problems(obj: TrainConfig) -> list[str]:
    """One line per value no run can use (each names the key and the fix); no disk access."""
    out = []
    for key, what in _AT_LEAST_ONE.items():
        section, field_name = key.split(".")
        value = getattr(getattr(obj, section), field_name)
        if value < 1:
            out.append(f"{key}={value}: must be >= 1 ({what})")
    for key, value in (("trainer.max_steps", obj.trainer.max_steps), ("optim.lr", obj.optim.lr),
                       ("data.max_batch_seconds", obj.data.max_batch_seconds), ("data.max_batch_tokens",
                       obj.data.max_batch_tokens), ("data.num_workers",
                       obj.data.num_workers), ("trainer.eval_every", obj.trainer.eval_every)):  # fmt: skip
        if value < 0:
            out.append(f"{key}={value}: must be >= 0")
    if obj.data.max_audio_seconds <= 0:
        out.append(f"data.max_audio_seconds={obj.data.max_audio_seconds}: must be > 0 (the longest clip, in seconds)")
    if obj.data.weighting == Weighting.explicit:
        for name, src in obj.data.sources.items():
            if src.weight is None:
                out.append(
                    f"data.sources.{name}.weight is null: set a weight, or weigh by hours (data.weighting=hours)"
                )
            elif src.weight < 0:
                out.append(f"data.sources.{name}.weight={src.weight}: must be >= 0 (0 leaves the source out)")
        weights = [src.weight for src in obj.data.sources.values()]
        if weights and all(w is not None and w == 0 for w in weights):
            out.append(
                "data.sources: every weight is 0; give at least one source a positive data.sources.<name>.weight"
            )
    else:
        for name, src in obj.data.sources.items():
            for key, value in (("hours", src.hours), ("max_hours", src.max_hours)):
                if value is not None and value <= 0:
                    out.append(f"data.sources.{name}.{key}={value}: must be > 0 (null: read from the manifest)")
        if obj.data.temperature <= 0:
            out.append(f"data.temperature={obj.data.temperature}: must be > 0")
    return out


def register_schema() -> None:
    """Make the schema the base of ``configs/pretrain.yaml`` (its defaults list starts with ``train_schema``), so
    every schema field is overridable from the command line and a typo fails during composition."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    ConfigStore.instance().store(name="eval_schema", node=EvalJobConfig)


register_schema()


def to_container(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON-able values (choices as their strings), e.g. for the config saved in every checkpoint."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)  # type: ignore[return-value]


def compose_raw(
    config_name: str = "pretrain", overrides: list[str] | None = None, config_dirs: Sequence[str | Path] | None = None
) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with overrides (Hydra's Compose API), not yet validated; ``config_dirs``
    are the user's own config directories, searched before the shipped ones (``--config-dir`` on the CLI)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    GlobalHydra.instance().clear()
    overrides = list(overrides or [])
    if config_dirs:  # what `--config-dir DIR` does on the command line: the user's groups join the shipped ones
        paths = ",".join(f"file://{Path(d).resolve()}" for d in config_dirs)
        overrides.append(f"hydra.searchpath=[{paths}]")
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except ConfigCompositionException as e:
        raise _composition_error(e) from None
    finally:
        GlobalHydra.instance().clear()


def compose(
    config_name: str = "pretrain", overrides: list[str] | None = None, config_dirs: Sequence[str | Path] | None = None
) -> TrainConfig:
    """``compose_raw`` validated against the training schema."""
    return validate(compose_raw(config_name, overrides, config_dirs))


def check_train(cfg: DictConfig | dict[str, Any]) -> TrainConfig:
    """``validate`` plus what can be checked before a run starts (the entry points call it first): unknown keys
    (also those added with ``+``), the data sources, and what the config points to on disk (tokenizer, shards,
    local model directories and their ``n_mels``, the checkpoint it resumes). ConfigError with one line per
    problem. Fast: no model is built, only paths, manifests and small JSON files are read."""
    from qwenaudio_train.config_checks import disk_problems, unknown_keys

    unknown = unknown_keys(_without_hydra_keys(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg), TrainConfig)
    if unknown:
        raise ConfigError("\n".join(unknown))
    obj = validate(cfg)
    problems = disk_problems(obj)
    if problems:
        raise ConfigError("\n".join(problems))
    return obj


def validate_eval(cfg: DictConfig | dict[str, Any]) -> EvalJobConfig:
    """The composed ``eval.yaml`` as an ``EvalJobConfig``; ConfigError names a missing or bad field."""
    node = _without_hydra_keys(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg)
    try:
        obj: EvalJobConfig = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(EvalJobConfig), node))  # type: ignore[assignment]
    except OmegaConfBaseException as e:
        if "checkpoint" in str(getattr(e, "full_key", "")):
            raise ConfigError(
                "checkpoint is not set: give checkpoint=<run dir | checkpoint dir | exported dir>"
            ) from None
        raise ConfigError(f"config error at {getattr(e, 'full_key', '')!r}: {getattr(e, 'msg', e)}") from None
    from qwenaudio_train.config_checks import pipe_problem

    refused = pipe_problem("split", obj.split, obj.allow_pipe, flag="allow_pipe=true")
    if refused:
        raise ConfigError(refused)
    return obj


def _composition_error(e: Exception) -> Exception:
    """A bad value caught by the schema during composition, as ``key='value': choose one of (...)``."""
    cause = e.__cause__
    key = getattr(cause, "full_key", None)
    for schema in (TrainConfig, EvalJobConfig):
        node: Any = schema
        for part in (key or "").split("."):
            hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
            node = hints.get(part)
        if key and isinstance(node, type) and issubclass(node, Choice):
            value = next((o.split("=", 1)[1] for o in str(e).split() if o.startswith(f"{key}=")), "?")
            return ConfigError(f"{key}={value!r}: choose one of {tuple(c.value for c in node)}")
    return e


def _absolute(spec: str | None, local_only: bool = False) -> str | None:
    """A local path or shard spec made absolute; ``pipe:``/URLs and ``???`` as they are. Unless ``local_only`` (data
    paths), a relative path that does not exist here stays as it is: it may be a hub name (``Qwen/Qwen2-7B``)."""
    if not spec or spec == "???" or ":" in spec.split("/")[0] or Path(spec).is_absolute():
        return spec
    if local_only or Path(spec).expanduser().exists():
        return str(Path(spec).expanduser().absolute())
    return spec


def with_absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """The run's config with its local paths made absolute, so the config saved in every checkpoint (and so
    ``qwenaudio-eval split=test``, ``qwenaudio-export``, ``qwenaudio-chat``) works from any working directory."""
    data = dataclasses.replace(
        cfg.data,
        root=_absolute(cfg.data.root, local_only=True),
        valid=_absolute(cfg.data.valid, local_only=True),
        test=_absolute(cfg.data.test, local_only=True),
        sources={
            name: dataclasses.replace(src, shards=_absolute(src.shards, local_only=True) or src.shards)
            for name, src in cfg.data.sources.items()
        },
    )
    model = dataclasses.replace(
        cfg.model,
        init_from=_absolute(cfg.model.init_from),
        encoder_source=_absolute(cfg.model.encoder_source),
        llm_source=_absolute(cfg.model.llm_source),
    )
    model = dataclasses.replace(model, tokenizer=_absolute(cfg.model.tokenizer) or cfg.model.tokenizer)
    return dataclasses.replace(cfg, data=data, model=model)
