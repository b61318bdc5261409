"""Runs, checkpoints and exported models as inputs: find them, resolve what they need, load them.

One home for what ``qwenaudio-eval``, ``qwenaudio-export`` and ``qwenaudio-chat`` (and notebooks) do with a path a
user gives them:

* a **run directory** (``runs/demo``): its latest complete checkpoint;
* a **checkpoint directory** (``runs/demo/checkpoints/step_00001500``);
* an **exported model directory** (``qwenaudio-export`` / ``save_pretrained``: ``qwen_audio_config.json``).

A run carries its tokenizer: the trainer saves it into ``<run_dir>/tokenizer/`` (``save_run_tokenizer``) and an
export into ``<out>/tokenizer/``, so all three work from any working directory and on another machine. Runs made
before that fall back to the tokenizer path in the run's config, resolved as given (relative to the directory the
run was started from), with an error naming the fix when it is not there.

Must not: train, evaluate or parse command lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from qwenaudio_train import checkpoint as ckpt
from qwenaudio_train.config_checks import path_like

if TYPE_CHECKING:
    from qwenaudio_train.config import TrainConfig
    from qwenaudio_train.model import QwenAudioModel
    from qwenaudio_train.tokenizer import AudioTokenizer

TOKENIZER_DIR = "tokenizer"  # inside a run directory and inside an exported model directory


@dataclass
class Loaded:
    """A model ready for inference, with what came with it."""

    model: QwenAudioModel
    tokenizer: AudioTokenizer
    source: Path  # the checkpoint or exported directory actually loaded
    train_config: TrainConfig | None  # None for an exported directory


def is_exported(path: str | os.PathLike[str]) -> bool:
    """An exported model directory (``model.save_pretrained`` wrote its ``qwen_audio_config.json``)."""
    from qwenaudio_train.model import MODEL_CONFIG

    return (Path(path) / MODEL_CONFIG).is_file()


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint directory as given, or the latest complete checkpoint of a run directory."""
    path = Path(path)
    if ckpt.is_checkpoint(path):
        return path
    found = ckpt.latest_checkpoint(ckpt.checkpoint_dir(path)) if path.is_dir() else None
    if found is None:
        what = "does not exist" if not path.exists() else "holds no complete checkpoint"
        raise FileNotFoundError(
            f"{path} {what}: give a run directory (with checkpoints/), a checkpoint directory "
            f"(checkpoints/step_XXXXXXXX) or an exported model directory (qwenaudio-export)"
        )
    return found


def run_dir_of(checkpoint_dir: Path) -> Path:
    """``<run_dir>/checkpoints/step_N`` -> ``<run_dir>``."""
    return checkpoint_dir.resolve().parent.parent


def save_run_tokenizer(tokenizer: AudioTokenizer, run_dir: str | os.PathLike[str]) -> Path:
    """Keep the run's tokenizer inside the run directory (rank 0, once per run; unchanged on resume)."""
    out = Path(run_dir) / TOKENIZER_DIR
    if not out.is_dir():
        tmp = out.with_name(out.name + ".partial")
        tokenizer.save_pretrained(tmp)
        tmp.rename(out)
    return out


def tokenizer_of_checkpoint(checkpoint_dir: Path, configured: str) -> str:
    """The tokenizer a checkpoint was trained with: the copy inside its run, else the configured path."""
    inside = run_dir_of(checkpoint_dir) / TOKENIZER_DIR
    if inside.is_dir():
        return str(inside)
    if Path(configured).expanduser().exists() or not path_like(configured):
        return configured  # a path that exists from here, or a hub name (org/name) from the local cache
    raise FileNotFoundError(
        f"the tokenizer of {checkpoint_dir} ({configured}) is not found from {Path.cwd()} and the run holds no "
        f"{TOKENIZER_DIR}/ copy (a run made before runs carried their tokenizer): run from the directory the run "
        f"was started in, or give the tokenizer explicitly (qwenaudio-chat --tokenizer, qwenaudio-export --tokenizer)"
    )


def load_trained(
    checkpoint_dir: Path, untrained: bool = False, tokenizer: str | None = None, trust_remote_code: bool = False
) -> tuple[QwenAudioModel, AudioTokenizer, TrainConfig]:
    """(model, tokenizer, train config) of a training checkpoint (any ZeRO stage); ``untrained`` gives the run's
    step-0 weights (same seed). LoRA checkpoints come back merged. Remote code: the caller's ``trust_remote_code``,
    never the checkpoint's stored config."""
    import torch

    from qwenaudio_train.config import validate
    from qwenaudio_train.model import build_model
    from qwenaudio_train.tokenizer import load_tokenizer

    cfg = validate(ckpt.read_trainer_state(checkpoint_dir)["config"])
    cfg.model.trust_remote_code = trust_remote_code
    tok = load_tokenizer(tokenizer or tokenizer_of_checkpoint(checkpoint_dir, cfg.tokenizer_source()))
    torch.manual_seed(cfg.seed)  # the same initial weights as the training run
    model = build_model(cfg.model_config(tok))
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
    return model, tok, cfg


def load_exported(
    model_dir: Path,
    adapter: str | None = None,
    tokenizer: str | None = None,
    merge: bool = True,
    trust_remote_code: bool = False,
) -> tuple[QwenAudioModel, AudioTokenizer]:
    """An exported model directory, optionally with a LoRA adapter (merged into the weights unless ``merge=False``).
    Remote code: the caller's ``trust_remote_code``, never the folder's own config."""
    from qwenaudio_train.model import QwenAudioModel
    from qwenaudio_train.tokenizer import load_tokenizer

    model = QwenAudioModel.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    tok_path = Path(tokenizer) if tokenizer else model_dir / TOKENIZER_DIR
    if not tokenizer and not tok_path.exists():
        raise FileNotFoundError(f"{model_dir} has no {TOKENIZER_DIR}/ directory: give the tokenizer explicitly")
    tok = load_tokenizer(tok_path)
    if adapter:
        from qwenaudio_train.lora import load_adapter, merge_lora

        model = cast("QwenAudioModel", load_adapter(model, adapter))
        if merge:
            model = cast("QwenAudioModel", merge_lora(model))
    return model.eval(), tok


def load(
    path: str | os.PathLike[str],
    adapter: str | None = None,
    tokenizer: str | None = None,
    merge: bool = True,
    trust_remote_code: bool = False,
) -> Loaded:
    """Any of the three inputs (run, checkpoint, exported directory), ready for inference. Python code shipped with
    a model runs only when the caller passes ``trust_remote_code=True`` (a command-line choice, never the folder's)."""
    path = Path(path)
    if is_exported(path):
        model, tok = load_exported(path, adapter, tokenizer, merge, trust_remote_code)
        return Loaded(model, tok, path, None)
    source = resolve_checkpoint(path)
    model, tok, cfg = load_trained(source, tokenizer=tokenizer, trust_remote_code=trust_remote_code)
    if adapter:
        from qwenaudio_train.lora import load_adapter, merge_lora

        model = cast("QwenAudioModel", load_adapter(model, adapter))
        if merge:
            model = cast("QwenAudioModel", merge_lora(model))
    return Loaded(model, tok, source, cfg)


def export(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    tokenizer: str | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """A checkpoint (any ZeRO stage; LoRA merged) as a self-contained model directory with its tokenizer."""
    model, tok, _ = load_trained(
        resolve_checkpoint(checkpoint), tokenizer=tokenizer, trust_remote_code=trust_remote_code
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out / TOKENIZER_DIR)
    return out
