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


def test_config_reference_is_generated_from_the_schemas():
    from qwenaudio_train.config_reference import reference_markdown

    doc = (REPO / "docs" / "configs.md").read_text()
    assert doc == reference_markdown(), "docs/configs.md is stale: run `make config-docs`"
    for key in ("data.sort_by", "model.tokenizer", "trainer.eval_every", "lora.r", "baseline"):
        assert f"`{key}`" in doc


def test_yaml_files_do_not_repeat_schema_defaults():
    """Each default is written once (the schema): a group file sets only values that differ from it."""
    import dataclasses

    from omegaconf import OmegaConf

    from qwenaudio_train.config import DataConfig, DeepSpeedConfig, LoggerConfig, TrainConfig

    identity = {"preset", "zero_stage", "wandb_mode"}  # the value an option stands for (zero2: zero_stage=2)
    schemas = {"deepspeed": DeepSpeedConfig, "logger": LoggerConfig, "data": DataConfig}
    schemas |= {f.name: f.type for f in dataclasses.fields(TrainConfig) if f.name in ("model", "optim")}
    for group, schema in schemas.items():
        defaults = OmegaConf.structured(schema if isinstance(schema, type) else getattr(TrainConfig(), group))
        for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
            for key, value in (OmegaConf.to_container(OmegaConf.load(path)) or {}).items():
                if key in defaults and key not in identity and not isinstance(value, dict):
                    assert value != defaults[key], f"{path.name}: {key}={value!r} repeats the schema default"


def test_user_config_dir_adds_groups(tmp_path):
    """A user's own config directory (Hydra's --config-dir): their mixture beside the shipped groups."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "my_mixture.yaml").write_text(
        "root: /data/mine\nsources:\n  asr: {shards: '${data.root}/train/asr', weight: 2.0}\ntest: ${data.root}/test\n"
    )
    cfg = compose("pretrain", ["data=my_mixture", "model.tokenizer=/data/tok"], config_dirs=[tmp_path])
    assert cfg.data.sources["asr"].shards == "/data/mine/train/asr" and cfg.data.test == "/data/mine/test"
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", "--config-dir", str(tmp_path), "data=my_mixture",
         "model.tokenizer=/data/tok", "--cfg", "job"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "root: /data/mine" in r.stdout and "my_mixture" not in r.stderr


def test_missing_tokenizer_stops_with_one_line_naming_the_fix(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", f"data.root={tmp_path}/nowhere", f"run_dir={tmp_path}/r"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "model.tokenizer=" in r.stderr and "qwenaudio-data tokenizer" in r.stderr and "qwen.tiktoken" in r.stderr
    with pytest.raises(ConfigError, match="model.tokenizer is not set"):
        compose("pretrain", ["model.tokenizer=???"])
