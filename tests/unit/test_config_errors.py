"""Every config mistake of issue 16 fails in ``config.check_train`` (what the entry points run before Hydra and
DeepSpeed start) with one line naming the key and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.config import ConfigError, check_train, compose_raw

REPO = Path(__file__).resolve().parents[2]
TASKS = ("asr", "srwt", "lid", "sec", "mna")  # the sources of configs/data/synthetic.yaml


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root the default mixture finds: a tokenizer path and one (empty) tar per source."""
    (tmp_path / "tokenizer").mkdir()
    for task in TASKS:
        (tmp_path / "train" / task).mkdir(parents=True)
        (tmp_path / "train" / task / "shard-000000.tar").write_bytes(b"")
    return tmp_path


def _check(root: Path, *overrides: str):
    return check_train(compose_raw("pretrain", [f"data.root={root}", f"run_dir={root}/run", *overrides]))


def _problem(root: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as e:
        _check(root, *overrides)
    return str(e.value)


def test_the_fixture_config_is_valid(root):
    cfg = _check(root)
    assert set(cfg.data.sources) == set(TASKS)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.sources.asr.weight=-1", "data.sources.asr.weight=-1.0: must be >= 0"),
        ("trainer.save_every=0", "trainer.save_every=0: must be >= 1"),
        ("trainer.log_every=0", "trainer.log_every=0: must be >= 1"),
        ("data.batch_size=0", "data.batch_size=0: must be >= 1 (samples per micro-batch"),
        ("trainer.grad_accum=0", "trainer.grad_accum=0: must be >= 1 (micro-batches per optimizer step)"),
        ("optim.lr=-1e-4", "optim.lr=-0.0001: must be >= 0"),
    ],
)
def test_a_value_no_run_can_use_names_its_key(root, override, expected):
    message = _problem(root, override)
    assert message.splitlines() == [message] and message.startswith(expected), message


def test_all_zero_weights_point_at_data_sources(root):
    message = _problem(root, *(f"data.sources.{t}.weight=0" for t in TASKS))
    assert "every weight is 0" in message and "data.sources.<name>.weight" in message
    assert "data.train" not in message


def test_every_problem_gets_its_own_line(root):
    message = _problem(root, "trainer.save_every=0", "data.batch_size=0")
    assert len(message.splitlines()) == 2


def test_unknown_keys_are_errors_also_with_plus(root):
    message = _problem(root, "+optim.learning_rate=1e-4")
    assert message.startswith("optim.learning_rate: not a config key") and "optim has lr" in message
    assert "did you mean trainer.save_every" in _problem(root, "+trainer.save_evry=3")


def test_missing_shards_name_the_source(root):
    message = _problem(root, f"data.sources.asr.shards={root}/nowhere")
    assert message.startswith(f"data.sources.asr.shards={root}/nowhere:") and "does not exist" in message


def test_a_chat_jsonl_given_as_shards_says_how_to_convert_it(root):
    jsonl = root / "chat.jsonl"
    jsonl.write_text('{"messages": []}\n')
    message = _problem(root, f"data.sources.asr.shards={jsonl}")
    assert message.startswith(f"data.sources.asr.shards={jsonl}: chat.jsonl is JSON lines, not a tar shard")
    assert f"qwenaudio-data chat-shards --jsonl {jsonl} --out DIR" in message


def test_a_pipe_spec_is_refused_unless_allowed(root):
    spec = "data.sources.asr.shards='pipe:cat x.tar'"
    message = _problem(root, spec)
    assert "runs a shell command" in message and "data.allow_pipe=true" in message
    assert "pipe:" in _problem(root, "data.test='pipe:cat t.tar'")
    assert _check(root, spec, "data.allow_pipe=true").data.sources["asr"].shards == "pipe:cat x.tar"


def test_a_wrong_local_weights_path_is_no_such_directory(root):
    message = _problem(root, "model.encoder_source=/data/nowhere/whisper-large-v2")
    assert message.startswith("model.encoder_source=/data/nowhere/whisper-large-v2: no such directory")
    assert "no such directory" in _problem(root, f"model.init_from={root}/no_export")


def test_n_mels_must_match_a_local_encoder(root):
    encoder = root / "whisper"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"model_type": "whisper", "num_mel_bins": 128}))
    message = _problem(root, f"model.encoder_source={encoder}")
    assert message == f"model.n_mels=80: the encoder {encoder} takes 128 mel bins; set model.n_mels=128"
    assert _check(root, f"model.encoder_source={encoder}", "model.n_mels=128").model.n_mels == 128


def _fake_checkpoint(run_dir: Path, step: int) -> Path:
    path = run_dir / "checkpoints" / f"step_{step:08d}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"step": step}))
    (run_dir / "checkpoints" / "latest").write_text(path.name)
    return path


def test_max_steps_below_the_resumed_step_is_an_error(root):
    ckpt = _fake_checkpoint(root / "run", 10)
    message = _problem(root, "trainer.max_steps=5")
    assert message.startswith("trainer.max_steps=5 is below step 10") and str(ckpt) in message
    assert "trainer.resume=none" in message
    assert _check(root, "trainer.max_steps=10").trainer.max_steps == 10  # a finished run started again: no error
    assert _check(root, "trainer.max_steps=5", "trainer.resume=none").trainer.max_steps == 5


def test_a_bad_resume_dir_is_named(root):
    message = _problem(root, f"trainer.resume={root}/nothing")
    assert message.startswith(f"trainer.resume={root}/nothing: not a checkpoint directory")
    ckpt = _fake_checkpoint(root / "run", 4)  # a run dir given instead of one of its checkpoints: say which one
    assert f"trainer.resume={ckpt}" in _problem(root, f"trainer.resume={root}/run")


def test_the_entry_point_stops_before_anything_starts(root):
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", f"data.root={root}", f"run_dir={root}/run",
         "trainer.grad_accum=0", "data.sources.lid.weight=-2", "+optim.learning_rate=1e-4"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        "qwenaudio-pretrain: optim.learning_rate: not a config key (a `+optim.learning_rate=...` override is not one "
        "either); optim has lr, weight_decay, beta1, beta2, eps, warmup_steps, min_lr_ratio, grad_clip, layer_decay "
        "(every key: docs/configs.md)"
    ]
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", f"data.root={root}", f"run_dir={root}/run",
         "trainer.grad_accum=0", "data.sources.lid.weight=-2"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and not (root / "run").exists()
    assert r.stderr.splitlines() == [
        "qwenaudio-pretrain: trainer.grad_accum=0: must be >= 1 (micro-batches per optimizer step)",
        "qwenaudio-pretrain: data.sources.lid.weight=-2.0: must be >= 0 (0 leaves the source out)",
    ]
