"""``qwenaudio-score`` end to end on records in the release's result form (``{gt, response, source}``, as its
``eval_audio/evaluate_*.py`` dump them): groups by source, the release's definitions beside its figures, 95%
bootstrap intervals, eval.json/eval.md like ``qwenaudio-eval``, and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from qwenaudio_train.cli.score import main
from qwenaudio_train.eval.records import RecordError, read_records
from qwenaudio_train.eval.report import score_records

NOTE = "<|pitch|><|midi_pitch_{}|><|velocity|><|midi_velocity_100|><|instrument|>organ<|sonic|>bright"

RELEASE_RESULTS: list[dict[str, Any]] = [
    # ASR: the release's cleaning (special tokens, case, space before punctuation) -> 1 edit / 6 words
    {
        "gt": "the cat sat on the mat",
        "response": "The cat sat on a mat<|endoftext|>",
        "source": "librispeech_test_clean",
    },
    {"gt": "hello world", "response": "hello world", "source": "librispeech_test_clean"},
    {"gt": "colour", "response": "color", "source": "librispeech_test_clean"},
    # emotion: raw match (neutral != Neutral for the release)
    {"gt": "neutral", "response": "Neutral", "source": "meld_test"},
    {"gt": "joy", "response": "joy", "source": "meld_test"},
    # AQA: accuracy and bi_ACC_score on the yes/no subset
    {"gt": "yes", "response": "yes", "source": "clothoaqa_test"},
    {"gt": "no", "response": "No", "source": "clothoaqa_test"},
    {"gt": "a dog", "response": "a dog", "source": "clothoaqa_test"},
    # S2TT: BLEU with the 13a tokenizer of the target language from the source name
    {"gt": "Das ist ein kleines Haus.", "response": "Das ist ein kleines Haus.", "source": "covost2_en_de_test"},
    # MNA, SRWT (the gt's time tokens make it SRWT), and a caption with several references
    {"gt": NOTE.format(60), "response": NOTE.format(60), "source": "nsynth_test"},
    {"gt": NOTE.format(62), "response": NOTE.format(50), "source": "nsynth_test"},
    {"gt": "<|0.00|>今<|0.30|>天<|0.60|>", "response": "今<|0.30|>天<|0.70|>", "source": "srwt_zh", "lang": "zh"},
    {"gt": ["a dog barks", "a dog is barking loudly"], "response": "a dog barks", "source": "clotho_eval"},
]


def _write(path: Path, rows: list[dict[str, Any]], as_list: bool = False) -> Path:
    text = json.dumps(rows) if as_list else "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_score_release_form_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preds = _write(tmp_path / "results.jsonl", RELEASE_RESULTS)
    assert main([str(preds), "--out", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    assert "| task | n | metric | score [95% CI] |" in table
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    results = report["results"]
    assert set(results) == {
        "asr@librispeech_test_clean", "er@meld_test", "aqa@clothoaqa_test", "s2tt@covost2_en_de_test",
        "mna@nsynth_test", "srwt@srwt_zh", "aac@clotho_eval",
    }  # fmt: skip
    asr = results["asr@librispeech_test_clean"]
    assert asr["wer"] == pytest.approx(2 / 9) and asr["release"] == 0.020 and asr["headline"] == "wer"
    assert asr["ci_low"] <= asr["wer"] <= asr["ci_high"] and asr["n"] == 3
    meld = results["er@meld_test"]
    assert meld["headline"] == "accuracy_release" and meld["ACC_score"] == 0.5 and meld["release"] == 0.557
    assert meld["accuracy"] == 1.0  # the cleaned accuracy is kept, but never beside the release's figure
    aqa = results["aqa@clothoaqa_test"]
    assert aqa["ACC_score"] == pytest.approx(2 / 3) and aqa["bi_ACC_score"] == 0.5
    assert aqa["release_figures"] == {"accuracy_release": 0.579, "yes_no_accuracy_release": 0.749}
    assert results["s2tt@covost2_en_de_test"]["bleu score"] == pytest.approx(100.0)
    mna = results["mna@nsynth_test"]
    assert mna["instrument_score"] == 1.0 and mna["top1acc"] == 0.5 and mna["headline"] == "instrument_accuracy_release"
    srwt = results["srwt@srwt_zh"]
    assert srwt["AAS"] == pytest.approx(0.1) and srwt["WER"] == 0.0  # the release drops 今 (before the first time)
    aac = results["aac@clotho_eval"]
    assert aac["refs_per_sample"] == 2.0 and aac["CIDEr"] == aac["cider"] and aac["headline"] == "cider"
    md = (tmp_path / "out" / "eval.md").read_text()
    assert "95% bootstrap interval" in md and "| 0.557 |" in md
    assert "- aqa@clothoaqa_test: yes_no_accuracy_release 0.5 (release 0.749)" in md
    assert len(report["predictions"]) == len(RELEASE_RESULTS)


def test_score_modes_and_json_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qwenaudio_train.eval import text

    spelling = tmp_path / "english.json"
    spelling.write_text(json.dumps({"colour": "color"}))
    monkeypatch.setenv(text.SPELLING_MAP_ENV, str(spelling))
    text.reset_english_normalizer()
    try:
        records = read_records([_write(tmp_path / "r.json", RELEASE_RESULTS[:3], as_list=True)])
        both = score_records(records, mode="both", by="source")["asr@librispeech_test_clean"]
        assert both["wer"] == pytest.approx(2 / 9) and both["wer_normalized"] == pytest.approx(1 / 9)
        assert both["release"] == 0.020  # beside the release's definition
        norm = score_records(records, mode="normalized", by="source")["asr@librispeech_test_clean"]
        assert norm["wer"] == pytest.approx(1 / 9) and "release" not in norm  # never beside a normalised WER
    finally:
        text.reset_english_normalizer()


def test_bootstrap_interval_is_deterministic_and_brackets(tmp_path: Path) -> None:
    rows = [{"gt": "yes", "response": "yes" if i % 3 else "no", "source": "meld_x"} for i in range(60)]
    records = read_records([_write(tmp_path / "r.jsonl", rows)])
    a = score_records(records, by="source")["er@meld_x"]
    b = score_records(records, by="source")["er@meld_x"]
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    assert a["ci_low"] < a["accuracy_release"] < a["ci_high"] and a["ci_resamples"] == 1000
    assert a["ci_high"] - a["ci_low"] < 0.35


def test_our_records_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = [{"task": "asr", "source": "x", "lang": "en", "prediction": "a b", "reference": "a c"}]
    records = read_records([_write(tmp_path / "ours.jsonl", ours)])
    assert score_records(records, by="source")["asr@x"]["wer"] == 0.5
    with pytest.raises(RecordError, match=r"bad.jsonl:1: source 'mystery' has no known prefix.*pass --task"):
        read_records([_write(tmp_path / "bad.jsonl", [{"gt": "a", "response": "a", "source": "mystery"}])])
    assert main([str(tmp_path / "bad.jsonl")]) == 2
    assert "pass --task" in capsys.readouterr().err
    assert main([str(tmp_path / "bad.jsonl"), "--task", "asc", "--no-ci"]) == 0
    with pytest.raises(RecordError, match="lacks 'response'"):
        read_records([_write(tmp_path / "half.jsonl", [{"gt": "a", "source": "meld"}])])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_records([tmp_path / "missing.jsonl"])


def test_ja_mecab_scores_or_is_a_reported_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sacrebleu

    rows = [{"gt": "今日は良い天気です", "response": "今日はいい天気です", "source": "covost2_en_ja_test"}]
    preds = _write(tmp_path / "ja.jsonl", rows)
    try:
        sacrebleu.BLEU(tokenize="ja-mecab")
    except (ImportError, RuntimeError):
        pass
    else:  # MeCab installed (the eval extra): the release's tokenizer scores
        assert main([str(preds), "--out", str(tmp_path / "o")]) == 0
        result = json.loads((tmp_path / "o" / "eval.json").read_text())["results"]["s2tt@covost2_en_ja_test"]
        hyps, refs = [rows[0]["response"]], [rows[0]["gt"]]
        assert result["bleu score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="ja-mecab").score)
        return
    assert main([str(preds), "--out", str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "ja-mecab" in captured.err and "qwenaudio-train[eval]" in captured.err
    result = json.loads((tmp_path / "o" / "eval.json").read_text())["results"]["s2tt@covost2_en_ja_test"]
    assert math.isnan(result["bleu score"]) and "MeCab" in result["error"]


def test_help() -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
