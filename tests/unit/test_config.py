"""Config composition and validation: every preset composes; typos and bad values fail with the key named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.config import CONFIG_DIR, ConfigError, compose, validate

REPO = Path(__file__).resolve().parents[2]


def _groups(name: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / name).glob("*.yaml"))


@pytest.mark.parametrize("model", _groups("model"))
@pytest.mark.parametrize("zero", _groups("deepspeed"))
def test_every_model_and_deepspeed_preset_composes(model, zero):
    cfg = compose("pretrain", [f"model={model}", f"deepspeed={zero}"])
    assert cfg.model.preset == model and cfg.deepspeed.zero_stage == int(zero[-1])


@pytest.mark.parametrize("experiment", _groups("experiment"))
def test_experiments_compose_and_apply_last(experiment):
    cfg = compose("pretrain", [f"experiment={experiment}", "logger=online"])
    assert cfg.name == experiment and cfg.run_dir == f"runs/{experiment}"


@pytest.mark.parametrize("logger", _groups("logger"))
def test_loggers_compose(logger):
    assert compose("pretrain", [f"logger={logger}"]).logger.wandb_mode == logger


def test_defaults_follow_the_paper_stage_one():
    cfg = compose("pretrain")
    assert cfg.trainer.freeze == "pretrain"
    assert cfg.model.tokenizer == "artifacts/synthetic/tokenizer"  # interpolated from data.root
    assert set(cfg.data.sources) == {"asr", "srwt", "lid", "sec", "mna"}
    assert cfg.data.sources["asr"].shards == "artifacts/synthetic/train/asr"


def test_model_dims_are_overridable_and_7b_keeps_its_sources():
    cfg = compose("pretrain", ["model.encoder_d_model=128", "model.llm_layers=3"])
    assert cfg.model.encoder_d_model == 128 and cfg.model.llm_layers == 3
    big = compose("pretrain", ["model=qwen_audio_7b"]).model.resolved()
    assert big.encoder_source == "openai/whisper-large-v2" and big.encoder_layers == 32 and big.dtype == "bfloat16"


def test_typo_in_yaml_or_dict_names_the_key():
    with pytest.raises(ConfigError, match="learnig_rate"):
        validate({"tokenizer": "t", "optim": {"learnig_rate": 1.0}})
    with pytest.raises(ConfigError, match="max_steps"):
        validate({"tokenizer": "t", "trainer": {"max_steps": "many"}})


def test_bad_values_name_the_choices():
    with pytest.raises(ConfigError, match="wandb_mode='cloud'"):
        compose("pretrain", ["logger.wandb_mode=cloud"])
    with pytest.raises(ConfigError, match="zero_stage=4"):
        compose("pretrain", ["deepspeed.zero_stage=4"])
    with pytest.raises(ConfigError, match="tokenizer is not set"):
        validate({"tokenizer": ""})


def test_unknown_override_fails_in_hydra_with_its_name():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="learnig_rate"):
        compose("pretrain", ["optim.learnig_rate=1"])


def test_entry_point_reports_config_errors_before_starting(tmp_path):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", "logger.wandb_mode=cloud", f"run_dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2
    assert "logger.wandb_mode='cloud'" in r.stderr and "choose one of" in r.stderr


def test_launch_script_fixes_one_run_dir_for_all_ranks(tmp_path):
    env = dict(os.environ, NPROC="4", DRY_RUN="1", PYTHON=sys.executable)
    r = subprocess.run(
        ["bash", str(REPO / "launch" / "train.sh"), "experiment=debug"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    cmd = r.stdout.strip().splitlines()[-1]
    assert "--nproc_per_node 4" in cmd and "-m qwenaudio_train.pretrain" in cmd
    assert "run_dir=runs/debug-" in cmd  # chosen once by the script, passed to every rank
    r2 = subprocess.run(
        ["bash", str(REPO / "launch" / "train.sh"), "run_dir=runs/x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
    )
    assert r2.stdout.strip().splitlines()[-1].count("run_dir=") == 1
