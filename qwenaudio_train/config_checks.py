"""What ``config.check_train`` checks beyond the schema, before a run starts: unknown keys and the disk.

* ``unknown_keys``: keys of a composed config that the schema lacks. Hydra's ``+optim.learning_rate=1e-4`` adds
  one to the composed config without complaint and the schema merge would silently drop it; here it is an error.
* ``disk_problems``: what the config points to: the tokenizer, each source's shards, the held-out split when
  periodic evaluation is on, local model directories (``model.encoder_source=/data/...`` that does not exist is
  "no such directory", not a hub error) and their ``n_mels``, and the checkpoint a run resumes.
* ``pipe_problem``: a ``pipe:`` shard spec runs a shell command; it is refused unless ``allow_pipe`` is set.

``trainer.max_steps`` below the step of the checkpoint the run resumes is an error (exit 2 before anything
starts): the run would train nothing and its config says otherwise. ``max_steps`` equal to it is not: a finished
run started again (a requeued job) has nothing left to do.

Every problem is one line naming the key and the fix. Must not: build a model, read audio or open a tar (only
paths, manifests and small JSON files are read, so the check takes about a second).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

if typing.TYPE_CHECKING:
    from qwenaudio_train.config import TrainConfig


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _unknown(value: Any, schema: Any, prefix: str) -> list[str]:
    schema = _unwrap(schema)
    if not isinstance(value, dict):
        return []
    if dataclasses.is_dataclass(schema):
        hints = typing.get_type_hints(schema)
        out: list[str] = []
        for key, sub in value.items():
            if key in hints:
                out += _unknown(sub, hints[key], f"{prefix}{key}.")
                continue
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = (
                f"did you mean {prefix}{close[0]}?"
                if close
                else f"{prefix.rstrip('.') or 'the top level'} has {', '.join(hints)}"
            )
            out.append(
                f"{prefix}{key}: not a config key (a `+{prefix}{key}=...` override is not one either); {hint} "
                "(every key: docs/configs.md)"
            )
        return out
    if typing.get_origin(schema) is dict:
        value_type = typing.get_args(schema)[1]
        return [p for key, sub in value.items() for p in _unknown(sub, value_type, f"{prefix}{key}.")]
    return []


def unknown_keys(node: DictConfig, schema: Any) -> list[str]:
    """One line per key of ``node`` (a composed config, unresolved) that the dataclass ``schema`` lacks."""
    container = OmegaConf.to_container(node, resolve=False)
    if isinstance(container, dict):
        container.pop("tokenizer", None)  # the top-level key of configs saved before model.tokenizer (validate maps it)
    return _unknown(container, schema, "")


def pipe_problem(key: str, spec: str | None, allow_pipe: bool, flag: str = "data.allow_pipe=true") -> str | None:
    """The line refusing a ``pipe:`` spec (it runs a shell command) unless it is allowed; None otherwise."""
    if spec and str(spec).startswith("pipe:") and not allow_pipe:
        return f"{key}={spec!r} is a pipe: spec, which runs a shell command; allow it explicitly with {flag}"
    return None


def path_like(value: str) -> bool:
    """A value meant as a local path (a hub name is ``owner/name``: at most one slash, no leading ./~)."""
    return value.startswith((".", "/", "~")) or value.count("/") > 1


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _model_problems(cfg: TrainConfig) -> list[str]:
    out = []
    model = cfg.model.resolved()
    for key, what in (("encoder_source", "Whisper model"), ("llm_source", "causal LM"), ("init_from", "export")):
        value = getattr(model, key)
        if not value:
            continue
        path = Path(value).expanduser()
        if key == "init_from" or path_like(value):
            if not path.is_dir():
                out.append(
                    f"model.{key}={value}: no such directory; give the local {what} directory"
                    + (" (qwenaudio-export's output)" if key == "init_from" else " or a hub name (owner/name)")
                )
                continue
        if key == "encoder_source" and path.is_dir():  # a Whisper config.json says how many mel bins it takes
            config = _read_json(path / "config.json") or {}
            n = config.get("num_mel_bins")
            if isinstance(n, int) and n != model.n_mels:
                out.append(f"model.n_mels={model.n_mels}: the encoder {value} takes {n} mel bins; set model.n_mels={n}")
        if key == "init_from":
            from qwenaudio_train.model.qwen_audio import MODEL_CONFIG

            n = (_read_json(path / MODEL_CONFIG) or {}).get("n_mels")
            if isinstance(n, int) and n != model.n_mels:
                out.append(f"model.n_mels={model.n_mels}: model.init_from={value} takes {n}; set model.n_mels={n}")
    if model.preset != "tiny" and not model.init_from and not model.llm_source:  # a 7B LLM of random weights
        out.append(
            f"model.preset={model.preset} has no LLM weights: give model.init_from=<a converted or exported model> "
            "or model.llm_source=<a Qwen2 directory> (`python -m qwenaudio_train.interop qwen-v1-llm Qwen/Qwen-7B DIR` "
            "converts the paper's Qwen-7B; docs/interop.md)"
        )
    return out


def _resume_problems(cfg: TrainConfig) -> list[str]:
    from qwenaudio_train import checkpoint

    resume = cfg.trainer.resume
    if resume in ("none", "never", ""):
        return []
    if resume == "auto":
        path = checkpoint.latest_checkpoint(checkpoint.checkpoint_dir(Path(cfg.run_dir)))
        if path is None:
            return []  # a fresh run
    else:
        path = Path(resume).expanduser()
        if not checkpoint.is_checkpoint(path):
            latest = checkpoint.latest_checkpoint(checkpoint.checkpoint_dir(path)) if path.is_dir() else None
            fix = f"trainer.resume={latest} (the latest of that run)" if latest else "a run's checkpoints/step_XXXXXXXX"
            return [
                f"trainer.resume={resume}: not a checkpoint directory (no trainer_state.json); give {fix}, "
                "auto (the latest in run_dir) or none"
            ]
    state = _read_json(path / "trainer_state.json") or {}  # a damaged state is the resume's to report, not ours
    step = state.get("step")
    if isinstance(step, int) and cfg.trainer.max_steps < step:
        return [
            f"trainer.max_steps={cfg.trainer.max_steps} is below step {step} of the checkpoint this run resumes "
            f"({path}): raise trainer.max_steps above {step} to train on, or start afresh with trainer.resume=none "
            "or another run_dir"
        ]
    return []


def disk_problems(cfg: TrainConfig) -> list[str]:
    """One line per thing the config points to that is missing or does not fit (see the module docstring)."""
    from qwenaudio_train.config import TOKENIZER_HINT
    from qwenaudio_train.data.shards import ShardError, expand_shards

    tok = cfg.tokenizer_source()
    if path_like(tok) and not Path(tok).expanduser().exists():  # alone: a wrong data.root would repeat it per path
        fix = TOKENIZER_HINT.split(": ", 1)[1]
        return [f"model.tokenizer={tok}: no such file or directory. {fix[0].upper()}{fix[1:]}"]
    out = []
    if not cfg.data.sources:
        out.append("data.sources is empty: give at least one source (data.sources.<name>.shards=<dir or glob>)")
    specs: dict[str, str | None] = {f"data.sources.{name}.shards": src.shards for name, src in cfg.data.sources.items()}
    specs |= {"data.valid": cfg.data.valid, "data.test": cfg.data.test}
    for key, spec in specs.items():
        refused = pipe_problem(key, spec, cfg.data.allow_pipe)
        if refused:
            out.append(refused)
        elif spec and (key.startswith("data.sources") or (key == "data.valid" and cfg.trainer.eval_every)):
            try:
                found = expand_shards(spec)
            except ShardError as e:
                out.append(f"{key}={spec}: {e}")
                continue
            text = [p for p in found if p.endswith((".jsonl", ".json"))]  # e.g. SFT pointed at its conversations
            if text:
                out.append(
                    f"{key}={spec}: {os.path.basename(text[0])} is JSON lines, not a tar shard; convert it with "
                    f"`qwenaudio-data chat-shards --jsonl {text[0]} --out DIR` and point {key} at DIR"
                )
    out += _model_problems(cfg)
    out += _resume_problems(cfg)
    return out
