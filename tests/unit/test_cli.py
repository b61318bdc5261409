"""`qwenaudio-data`: tokenizer training, shard checking, the task listing; errors name the file and the fix."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from qwenaudio_train.cli.data import main
from qwenaudio_train.tokenizer import load_tokenizer


def test_tokenizer_command_trains_a_loadable_tokenizer(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nle chat est noir\n" * 20, encoding="utf-8")
    assert main(["tokenizer", "--text", str(text), "--out", str(tmp_path / "tok"), "--vocab-size", "300"]) == 0
    tok = load_tokenizer(tmp_path / "tok")
    assert tok.decode(tok.encode("the cat<|endoftext|>")) == "the cat<|endoftext|>"
    assert main(["tokenizer", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "t2")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_check_command_reports_a_bad_sample_and_exits_1(tmp_path, capsys):
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tf:
        for name, data in [("a.flac", b"not audio"), ("a.json", b'{"task": "asr"}')]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert main(["check", str(shard)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] and all(p["key"] == "a" for p in report["problems"])
    assert main(["check", str(tmp_path / "nothing-*.tar")]) == 2
    assert "no shards match" in capsys.readouterr().err


def test_tasks_command_lists_the_registry(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("asr", "srwt", "lid", "sec", "mna"):
        assert f"\n{name}" in "\n" + out
    assert "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>" in out


@pytest.mark.parametrize(
    "module",
    ["qwenaudio_train.cli.data", "qwenaudio_train.export", "qwenaudio_train.cli.chat", "qwenaudio_train.interop"],
)
def test_argparse_clis_have_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(["--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module,expect",
    [
        ("qwenaudio_train.pretrain", "experiment=qwen_audio_pretrain"),
        ("qwenaudio_train.sft", "model.init_from"),
        ("qwenaudio_train.evaluate", "checkpoint=<run dir"),
    ],
)
def test_hydra_entry_points_have_help(module, expect):
    import subprocess
    import sys
    from pathlib import Path

    r = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 0 and expect in r.stdout and "== Config groups ==" in r.stdout
