"""What every interop direction shares: the weight-name template machinery, reading and writing checkpoint
directories, and building a native transformers LLM from converted weights.

Owns: name templates (`{i}` a layer index, `{p}` weight|bias, `{rest}` any dotted tail; one (src, dst) table
serves both directions of a conversion), `load_release_checkpoint` (any transformers weight format, no code),
`save_weights`, `load_native_llm`.
Must not: hold a layout's name table (release.py and qwen2_audio.py do), touch the training loop, or need network
or trust_remote_code (hub names go through `huggingface_hub.snapshot_download`, which honours HF_HUB_OFFLINE).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from qwenaudio_train.model import torch_dtype

if TYPE_CHECKING:
    from transformers import PreTrainedModel

StateDict = dict[str, torch.Tensor]

# ----------------------------------------------------------------------------------------------------------------
# Name templates

_FIELDS = {"{i}": r"(?P<i>\d+)", "{p}": r"(?P<p>weight|bias)", "{rest}": r"(?P<rest>.+)"}


def name_pattern(template: str) -> re.Pattern[str]:
    """The regex matching a name template in full (`{i}`, `{p}`, `{rest}` become named groups)."""
    regex = re.escape(template)
    for field, group in _FIELDS.items():
        regex = regex.replace(re.escape(field), group)
    return re.compile(regex + "$")


def fill_name(template: str, groups: Mapping[str, str]) -> str:
    """A name template with its fields filled from a match's groups."""
    for name, value in groups.items():
        template = template.replace("{" + name + "}", value)
    return template


def rename(key: str, table: list[tuple[str, str]], reverse: bool = False) -> str | None:
    """`key` renamed by the first (src, dst) row of `table` whose src matches it (dst -> src with `reverse`);
    None when no row matches."""
    for src, dst in table:
        if reverse:
            src, dst = dst, src
        m = name_pattern(src).match(key)
        if m:
            return fill_name(dst, m.groupdict())
    return None


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing checkpoint directories


def resolve_dir(source: str | Path) -> Path:
    """A local checkpoint directory, or a hub name downloaded (weights and json only, never code)."""
    path = Path(source)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.bin"]
    return Path(snapshot_download(repo_id=str(source), allow_patterns=patterns))  # honours HF_HUB_OFFLINE


def load_release_checkpoint(source: str | Path) -> tuple[StateDict, dict[str, Any]]:
    """(state dict, config.json) of a checkpoint directory (or hub name) in any transformers weight format:
    sharded or single safetensors, or pytorch_model*.bin (read with weights_only=True). Code files are ignored."""
    root = resolve_dir(source)
    config = json.loads((root / "config.json").read_text())
    files: list[Path] = []
    for index_name, pattern in (
        ("model.safetensors.index.json", "*.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model*.bin"),
    ):
        index = root / index_name
        if index.is_file():
            files = [root / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        else:
            files = sorted(root.glob(pattern))
        if files:
            break
    if not files:
        raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin weights in {root}")
    sd: StateDict = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd.update(load_file(str(f)))
        else:
            sd.update(torch.load(str(f), map_location="cpu", weights_only=True, mmap=True))
    return sd, config


def save_weights(sd: Mapping[str, torch.Tensor], out_dir: Path, max_shard_size: str) -> None:
    """Write safetensors shards (+ index when sharded) the way transformers' save_pretrained does."""
    from huggingface_hub import save_torch_state_dict

    save_torch_state_dict(
        {k: v.detach().contiguous().cpu() for k, v in sd.items()},
        out_dir,
        max_shard_size=max_shard_size,
        metadata={"format": "pt"},
    )


# ----------------------------------------------------------------------------------------------------------------
# Building our models from converted weights


def dtype_name(dtype: torch.dtype) -> str:
    """The ModelConfig.dtype name of a torch dtype."""
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]


def checkpoint_dtype(name: str | None, llm_sd: Mapping[str, torch.Tensor]) -> torch.dtype:
    """The dtype to build a converted LLM in: the one `name` designates, or for None / "auto" the checkpoint's own
    (that of its token embedding, `model.embed_tokens.weight` of the LLM's state dict)."""
    named = torch_dtype(name)
    return named if isinstance(named, torch.dtype) else llm_sd["model.embed_tokens.weight"].dtype


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """The entries of `sd` under `prefix`, with the prefix removed (e.g. "llm." -> the LLM's own state dict)."""
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def load_native_llm(config: Any, llm_sd: StateDict, dtype: torch.dtype) -> PreTrainedModel:
    """A native transformers causal LM from a config and a complete state dict, built on the meta device by
    transformers (no random init, no zero.Init conflicts). Strict about missing/unexpected keys."""
    from transformers import PreTrainedModel
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    # transformers annotates the mapping's values as class pairs; a config type with one causal LM maps to the class.
    model_class: object = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    if not (isinstance(model_class, type) and issubclass(model_class, PreTrainedModel)):
        raise TypeError(f"no single native causal LM class for {type(config).__name__}: {model_class!r}")
    # output_loading_info=True makes from_pretrained return (model, loading info), which its annotation omits.
    loaded: object = model_class.from_pretrained(
        None, config=config, state_dict=llm_sd, dtype=dtype, output_loading_info=True
    )
    if not isinstance(loaded, tuple):
        raise TypeError(f"{model_class.__name__}.from_pretrained(output_loading_info=True) gave no loading info")
    llm, info = loaded
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    bad = {k: sorted(set(v) - tied) for k, v in info.items() if k in ("missing_keys", "unexpected_keys")}
    if any(bad.values()) or info.get("mismatched_keys"):
        raise ValueError(
            f"converted LLM weights do not fit {model_class.__name__}: {bad}, {info.get('mismatched_keys')}"
        )
    if not isinstance(llm, PreTrainedModel):
        raise TypeError(f"{model_class.__name__}.from_pretrained gave a {type(llm).__name__}")
    return llm.eval()
