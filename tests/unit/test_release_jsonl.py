"""The library's reader of the release's eval jsonl: the samples qwenaudio-eval reads straight from a .jsonl are
the samples the recipe writes as shards, in the order the shards were read; long clips skipped and counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_recipes.common import convert
from data_recipes.release_eval_jsonl import ReleaseEvalJsonl
from qwenaudio_train.data.processing import parse_meta
from qwenaudio_train.data.stream import expand_shards, iter_split
from qwenaudio_train.eval.release_jsonl import ReleaseEvalSet, line_fields, release_jsonl_files
from qwenaudio_train.eval.runner import split_samples
from qwenaudio_train.evaluate import resolve_split
from tests.unit import recipe_fixtures_sm as fx


def _members(sample: dict) -> tuple:
    return sample["__key__"], sample["json"], sample["flac"]


def test_reader_yields_the_recipes_shard_samples_in_the_shards_order(tmp_path: Path) -> None:
    jsonl, lines = fx.build_release_jsonl(tmp_path / "data")
    # a 31-s clip: skipped by both, and counted
    fx.write_audio(tmp_path / "data" / "audio" / "long.wav", 31.0, 16000)
    with open(jsonl, "a", encoding="utf-8") as f:
        f.write(json.dumps({"audio": "audio/long.wav", "gt": "too long", "source": "librispeech_test_other"}) + "\n")
    summary = convert(ReleaseEvalJsonl(tmp_path / "data", [jsonl.name]), tmp_path / "data", tmp_path / "out")
    assert summary["totals"]["skipped_long"] == 1
    shards = list(iter_split(expand_shards(str(tmp_path / "out" / "*" / "*" / "*.tar"))))

    evalset = ReleaseEvalSet([jsonl])  # audio paths from the jsonl's folder
    direct = list(evalset.samples())
    assert [_members(s) for s in direct] == [_members(s) for s in shards] and len(direct) == len(lines)
    assert evalset.skipped == {"long": 1, "bad": 0}
    assert direct[0]["__url__"].endswith("eval.jsonl:2")  # aishell1_test sorts first; its line is the 2nd
    assert parse_meta(direct[0]).source == "aishell/aishell1_test"

    # the runner's entry: a .jsonl split is read directly, and each rank reads a disjoint share
    assert [_members(s) for s in split_samples(str(jsonl))] == [_members(s) for s in direct]
    shares = [[s["__key__"] for s in split_samples(str(jsonl), r, 3)] for r in range(3)]
    assert sorted(k for share in shares for k in share) == sorted(s["__key__"] for s in direct)
    assert all(len(share) >= 3 for share in shares)


def test_long_clips_are_counted_on_stderr_and_missing_audio_names_the_line(tmp_path: Path, capsys) -> None:
    jsonl, _ = fx.build_release_jsonl(tmp_path / "data")
    fx.write_audio(tmp_path / "elsewhere" / "long.wav", 31.0, 16000)
    extra = tmp_path / "data" / "more.jsonl"
    extra.write_text(json.dumps({"audio": "long.wav", "gt": "x", "source": "vocalsound_more"}) + "\n")
    evalset = ReleaseEvalSet([extra], root=tmp_path / "elsewhere")  # root overrides the jsonl's folder
    assert list(evalset.samples()) == [] and evalset.skipped["long"] == 1
    assert "release_eval/vocalsound_more/vsc: skipped 1 clips longer than 30 s" in capsys.readouterr().err

    os.remove(tmp_path / "data" / "audio" / "tut.wav")
    with pytest.raises(FileNotFoundError, match=r"eval.jsonl:6.*tut.wav"):
        ReleaseEvalSet([jsonl]).samples(1, 2).__next__()  # every rank checks every path: all fail alike
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        ReleaseEvalSet([tmp_path / "nowhere.jsonl"])
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        resolve_split(str(tmp_path / "nowhere.jsonl"), None, tmp_path)
    assert resolve_split(str(jsonl), None, tmp_path) == str(jsonl)  # nothing converted: the runner reads it


def test_line_fields_and_split_kinds() -> None:
    f = line_fields({"audio": "a.wav", "gt": "Hallo", "source": "covost2_en_de_test"}, "x.jsonl:1")
    assert (f["task"], f["audio_language"], f["text_language"], f["target"]) == ("s2tt", "en", "de", "Hallo")
    with pytest.raises(ValueError, match=r"x.jsonl:1: line lacks 'gt'"):
        line_fields({"audio": "a.wav", "source": "s"}, "x.jsonl:1")
    assert release_jsonl_files("a/b.jsonl") == [Path("a/b.jsonl")]
    assert release_jsonl_files(["a.jsonl", "b.jsonl"]) == [Path("a.jsonl"), Path("b.jsonl")]
    assert release_jsonl_files("data/test") is None and release_jsonl_files(["a.jsonl", "b.tar"]) is None
