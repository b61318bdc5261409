"""Loading what someone else made runs none of their code: an exported model folder that asks for remote code, and
a checkpoint file holding a pickle that would run a command (each proven dangerous first, then loaded safely)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qwenaudio_train import checkpoint
from qwenaudio_train.cli.chat import load_chat_model
from qwenaudio_train.model import ModelConfig, QwenAudioModel, build_model
from qwenaudio_train.tokenizer import train_bpe_tokenizer

EVIL_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("remote code ran")
from transformers import Qwen2Config, Qwen2ForCausalLM


class EvilConfig(Qwen2Config):
    pass


class EvilForCausalLM(Qwen2ForCausalLM):
    config_class = EvilConfig
"""


class _Evil:
    """Unpickling this runs ``exec``: it writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pickle ran')",)


def _crafted_export(tmp_path: Path, marker: Path) -> Path:
    """A real export whose own config says trust_remote_code and whose llm/ ships Python that writes ``marker``."""
    cfg = ModelConfig(preset="tiny", vocab_size=320, audio_pad_id=300, audio_start_id=301, audio_end_id=302, eod_id=303)
    out = tmp_path / "export"
    build_model(cfg).save_pretrained(out)
    saved = json.loads((out / "qwen_audio_config.json").read_text())
    (out / "qwen_audio_config.json").write_text(json.dumps({**saved, "trust_remote_code": True}))
    llm_config = json.loads((out / "llm" / "config.json").read_text())
    llm_config["auto_map"] = {
        "AutoConfig": "evil_model.EvilConfig",
        "AutoModelForCausalLM": "evil_model.EvilForCausalLM",
    }
    (out / "llm" / "config.json").write_text(json.dumps(llm_config))
    (out / "llm" / "evil_model.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    return out


def test_an_export_asking_for_remote_code_in_its_own_config_runs_none(tmp_path):
    marker = tmp_path / "remote_code_ran"
    export = _crafted_export(tmp_path, marker)
    model = QwenAudioModel.from_pretrained(export)  # what runs.load does with an exported directory
    assert not marker.exists() and model.cfg.trust_remote_code is False
    train_bpe_tokenizer(["a few words to train on", "and a few more"], export / "tokenizer", vocab_size=300)
    load_chat_model(export)  # qwenaudio-chat --model DIR
    assert not marker.exists()
    init_cfg = ModelConfig(
        preset="tiny", vocab_size=320, audio_pad_id=300, audio_start_id=301, audio_end_id=302, eod_id=303
    )
    build_model(ModelConfig(**{**init_cfg.to_dict(), "init_from": str(export)}))  # model.init_from=DIR
    assert not marker.exists()
    # The folder is really dangerous: the user's explicit choice runs its code.
    QwenAudioModel.from_pretrained(export, trust_remote_code=True)
    assert marker.read_text() == "remote code ran"


def test_a_crafted_pickle_in_a_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pickle_ran"
    path = tmp_path / "checkpoints" / checkpoint.tag_for(2)
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"step": 2, "config": {"deepspeed": {"zero_stage": 2}}}))
    model_file = path / "mp_rank_00_model_states.pt"
    torch.save({"module": _Evil(marker)}, model_file)
    # eval / export read the weights: refused, naming the file
    with pytest.raises(checkpoint.CheckpointError, match=r"mp_rank_00_model_states.pt could not be loaded .*nothing"):
        checkpoint.load_model_state_dict(path)
    assert not marker.exists()
    # DeepSpeed's resume path asks torch.load for full pickles: inside weights_only_loads it gets weights only
    with checkpoint.weights_only_loads(), pytest.raises(Exception, match="Weights only load failed"):
        torch.load(model_file, weights_only=False)
    assert not marker.exists()
    # The file is really dangerous: a plain full unpickle runs it.
    torch.load(model_file, weights_only=False)
    assert marker.read_text() == "pickle ran"
