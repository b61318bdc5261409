"""What someone else made runs nothing and reads nothing it should not: ``pipe:`` shard specs are the user's explicit
choice (never a checkpoint's), and an eval jsonl's audio paths stay under their root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.config import ConfigError, validate, validate_eval
from qwenaudio_train.eval.release_jsonl import ReleaseEvalSet
from qwenaudio_train.evaluate import resolve_split

REPO = Path(__file__).resolve().parents[2]


def test_a_checkpoints_pipe_split_is_never_used(tmp_path):
    marker = tmp_path / "ran"
    stored = validate({"model": {"tokenizer": "t"}, "data": {"test": f"pipe:touch {marker}", "allow_pipe": True}})
    with pytest.raises(ValueError, match=r"stored data.test is a pipe: spec .* never taken from a checkpoint"):
        resolve_split("test", stored, tmp_path, allow_pipe=True)  # even with the user's opt-in: give it yourself
    assert not marker.exists()


def test_a_pipe_split_given_by_the_user_needs_allow_pipe(tmp_path):
    spec = "pipe:cat x.tar"
    with pytest.raises(ValueError, match="runs a shell command; allow it explicitly with allow_pipe=true"):
        resolve_split(spec, None, tmp_path)
    assert resolve_split(spec, None, tmp_path, allow_pipe=True) == spec
    with pytest.raises(ConfigError, match="allow_pipe=true"):
        validate_eval({"checkpoint": "c", "split": spec})
    assert validate_eval({"checkpoint": "c", "split": spec, "allow_pipe": True}).split == spec


def test_qwenaudio_eval_refuses_a_pipe_split_before_loading_anything(tmp_path):
    marker = tmp_path / "ran"
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.evaluate", f"checkpoint={tmp_path}", f"split='pipe:touch {marker}'"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "allow_pipe=true" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("audio", ["../secret.wav", "/etc/hostname", "audio/../../secret.wav"])
def test_eval_jsonl_audio_outside_its_root_is_refused(tmp_path, audio):
    jsonl = tmp_path / "data" / "eval.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text(json.dumps({"audio": audio, "gt": "x", "source": "librispeech_test_clean"}) + "\n")
    with pytest.raises(ValueError, match=r"eval.jsonl:1: audio .* lies outside the audio root"):
        ReleaseEvalSet([jsonl])
    with pytest.raises(ValueError, match="lies outside the audio root"):
        ReleaseEvalSet([jsonl], root=tmp_path / "data" / "audio")  # relative paths start from a given root too


def test_eval_jsonl_audio_under_its_root_is_read(tmp_path):
    jsonl = tmp_path / "eval.jsonl"
    lines = [{"audio": "audio/./x.wav"}, {"audio": str(tmp_path / "audio" / "y.wav")}]  # absolute, under the root
    jsonl.write_text("".join(json.dumps(dict(ln, gt="x", source="librispeech_test_clean")) + "\n" for ln in lines))
    read = [ln.audio for lines in ReleaseEvalSet([jsonl]).lines.values() for ln in lines]
    assert read == [tmp_path / "audio" / "x.wav", tmp_path / "audio" / "y.wav"]


def test_qwenaudio_eval_takes_the_users_audio_root_for_a_jsonl(tmp_path):
    """`qwenaudio-eval audio_root=DIR` reaches the reader: a path outside the jsonl's folder is read only when the
    user names a root that holds it."""
    from qwenaudio_train.eval.runner import split_samples

    jsonl = tmp_path / "lists" / "eval.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text(
        json.dumps({"audio": str(tmp_path / "audio" / "x.wav"), "gt": "x", "source": "librispeech_test_clean"}) + "\n"
    )
    with pytest.raises(ValueError, match="lies outside the audio root"):
        split_samples(str(jsonl))
    with pytest.raises(FileNotFoundError, match="x.wav"):  # under the user's root: accepted, then read (missing)
        list(split_samples(str(jsonl), audio_root=str(tmp_path)))
