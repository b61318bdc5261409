"""MMAU and AIR-Bench foundation in their released formats: readers, the documented answer parsing (no LLM judge),
and scoring through ``qwenaudio-score``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwenaudio_train.cli.score import main
from qwenaudio_train.eval.benchmarks import choice_prompt, read_airbench_foundation, read_mmau
from qwenaudio_train.eval.choice import choice_score, mmau_string_match, parse_choice
from qwenaudio_train.eval.records import RecordError, read_records
from qwenaudio_train.eval.report import score_records

OPTS = ["Man", "Woman", "A man and a child", "Robot"]


@pytest.mark.parametrize(
    ("answer", "picked"),
    [
        ("B", 1),  # rule 1: a letter
        ("(C) A man and a child", 2),
        ("A. Man", 0),
        ("The answer is (D).", 3),
        ("Answer: C", 2),
        ("E", None),  # past the last option
        ("a woman.", 1),  # rule 2: the option's text, case and punctuation ignored
        ("I think it is a robot<|endoftext|>", 3),  # rule 3: exactly one option inside
        ("a man and a child, surely", 2),  # "man" only as part of another option found
        ("man", 0),
        ("man or woman", None),  # two options: no pick
        ("A dog", None),  # "A" followed by a word is an article, not a letter
        ("Option b", None),  # a lower-case letter after "option" is a word
        ("", None),
    ],
)
def test_parse_choice_rules(answer: str, picked: int | None) -> None:
    assert parse_choice(answer, OPTS) == picked


def test_mmau_string_match_is_the_authors_rule() -> None:
    assert mmau_string_match("It is a man", "Man", OPTS) is False  # "a" is a word of another option
    assert mmau_string_match("man", "Man", OPTS) is True
    assert mmau_string_match("The woman", "Woman", ["Woman", "Man"]) is True
    assert mmau_string_match("", "Man", OPTS) is False


def test_choice_score_counts_unparsed_as_wrong() -> None:
    out = choice_score(["B", "robot", "no idea"], ["Woman", "Robot", "Man"], choices=[OPTS] * 3, details=True)
    assert out["accuracy"] == pytest.approx(2 / 3) and out["unparsed"] == 1.0 and out["n"] == 3.0
    assert [d["picked"] for d in out["details"]] == [1, 3, None]


def _mmau(tmp_path: Path) -> Path:
    items = [
        {"id": "q1", "audio_id": "./test-mini-audios/q1.wav", "question": "Who speaks?", "choices": OPTS,
         "answer": "Man", "task": "sound", "category": "Reasoning", "difficulty": "easy"},
        {"id": "q2", "audio_id": "./test-mini-audios/q2.wav", "question": "Which genre?",
         "choices": ["Jazz", "Rock"], "answer": "Rock", "task": "music"},
    ]  # fmt: skip
    path = tmp_path / "mmau-test-mini.json"
    path.write_text(json.dumps(items))
    return path


def test_read_mmau_and_prompt(tmp_path: Path) -> None:
    items = read_mmau(_mmau(tmp_path))
    assert [i.source for i in items] == ["mmau/sound", "mmau/music"]
    assert items[0].audio == tmp_path / "test-mini-audios" / "q1.wav" and items[0].meta["difficulty"] == "easy"
    assert choice_prompt(items[1]) == "Which genre?\nA. Jazz\nB. Rock\nAnswer with the option's letter."
    results = score_records([items[0].record("A"), items[1].record("Jazz")], by="source")
    assert results["mmau@mmau/sound"]["accuracy"] == 1.0 and results["mmau@mmau/music"]["accuracy"] == 0.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "audio_id": "a", "question": "q", "choices": ["a", "b"], "answer": "c"}]))
    with pytest.raises(ValueError, match=r"bad.json\[0\]: answer 'c' is not one of the options"):
        read_mmau(bad)


def _airbench_item(**extra: Any) -> dict[str, Any]:
    item = {"uniq_id": 7, "task_name": "Speaker_Gender_Recognition", "dataset_name": "VoxCeleb1",
            "path": "id1.wav", "question": "What is the gender?", "choice_a": "male", "choice_b": "female",
            "choice_c": "", "answer_gt": "female"}  # fmt: skip
    return {**item, **extra}


def test_read_airbench_foundation(tmp_path: Path) -> None:
    (tmp_path / "Speaker_Gender_Recognition_VoxCeleb1").mkdir()
    (tmp_path / "Speaker_Gender_Recognition_VoxCeleb1" / "id1.wav").write_bytes(b"")
    path = tmp_path / "Foundation_meta.json"
    path.write_text(json.dumps([_airbench_item()]))
    (item,) = read_airbench_foundation(path)
    assert item.choices == ("male", "female") and item.answer == "female"  # empty choice_c dropped
    assert item.audio == tmp_path / "Speaker_Gender_Recognition_VoxCeleb1" / "id1.wav"
    assert item.source == "airbench/Speaker_Gender_Recognition"


def test_score_cli_reads_benchmark_answer_forms(tmp_path: Path) -> None:
    mmau = json.loads(_mmau(tmp_path).read_text())
    mmau[0]["model_prediction"], mmau[1]["model_prediction"] = "(A) Man", "B"
    sub = tmp_path / "mmau_submission.json"
    sub.write_text(json.dumps(mmau))
    air = tmp_path / "air.jsonl"
    air.write_text(json.dumps(_airbench_item(response="B")) + "\n" + json.dumps(_airbench_item(response="male")) + "\n")
    assert main([str(sub), str(air), "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "eval.json").read_text())["results"]
    assert results["mmau@mmau/sound"]["accuracy"] == 1.0 and results["mmau@mmau/music"]["accuracy"] == 1.0
    air_result = results["airbench@airbench/Speaker_Gender_Recognition"]
    assert air_result["accuracy"] == 0.5 and air_result["n"] == 2 and "ci_low" in air_result
    (tmp_path / "noanswer.jsonl").write_text(json.dumps(_airbench_item()) + "\n")
    with pytest.raises(RecordError, match="without the model's answer"):
        read_records([tmp_path / "noanswer.jsonl"])
