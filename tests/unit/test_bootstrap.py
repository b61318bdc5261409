"""Bootstrap intervals: the per-utterance decompositions reproduce each corpus-level score exactly, intervals are
deterministic and bracket the score, and resampling happens at the utterance level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qwenaudio_train.eval.bootstrap import bootstrap_ci
from qwenaudio_train.eval.scorers import score
from qwenaudio_train.eval.translation import bleu_from_stats, bleu_sentence_stats

HYPS = ["the cat sat on the mat", "a dog barks loudly today<|endoftext|>", "hello", "", "rain falls on the roof"]
REFS = ["the cat sat on a mat", "the dog barks loudly", "hello there", "something", "rain falls on a roof"]


def test_bleu_sentence_stats_sum_to_corpus_bleu() -> None:
    out = score("bleu", HYPS, REFS)
    assert bleu_from_stats(np.sum(bleu_sentence_stats(HYPS, REFS), axis=0)) == pytest.approx(out["bleu"])
    raw = np.sum(bleu_sentence_stats(HYPS, REFS, raw=True), axis=0)
    assert bleu_from_stats(raw) == pytest.approx(out["bleu score"])


def test_bleu_interval_brackets_and_is_deterministic() -> None:
    a = bootstrap_ci("bleu", HYPS * 4, REFS * 4, "bleu", {"lang": "en"})
    b = bootstrap_ci("bleu", HYPS * 4, REFS * 4, "bleu", {"lang": "en"})
    assert a == b and a["ci_resamples"] == 1000
    assert a["ci_low"] <= score("bleu", HYPS * 4, REFS * 4)["bleu"] <= a["ci_high"]
    assert bootstrap_ci("bleu", HYPS * 4, REFS * 4, "bleu", {"lang": "en"}, seed=1) != a


def test_srwt_release_parts_sum_to_release_aas() -> None:
    refs = ["<|0.00|>a<|0.50|>b<|1.00|>", "<|0.00|>c<|0.40|>"]
    hyps = ["<|0.00|>a<|0.60|>b<|1.00|>", "<|0.00|>c<|0.30|>"]
    out = score("srwt", hyps, refs, details=True)
    rows = out["details"]
    total = sum(r["shift_release_s"] for r in rows) / sum(r["tokens_release"] for r in rows)
    assert 1000 * total == pytest.approx(out["aas_release_ms"])
    ci = bootstrap_ci("srwt", hyps, refs, "aas_release_ms")
    assert ci["ci_resamples"] == 1000 and ci["ci_low"] <= out["aas_release_ms"] <= ci["ci_high"]
    # an unreadable output breaks the release's one-to-one pairing: no per-utterance parts, a rescoring instead
    broken = score("srwt", ["nothing", hyps[1]], refs, details=True)
    assert "tokens_release" not in broken["details"][0]
    assert math.isnan(bootstrap_ci("srwt", ["nothing", hyps[1]], refs, "aas_release_ms")["ci_low"])


def test_caption_and_mna_fast_paths() -> None:
    preds, refs = ["a dog barks", "rain falls", "a car passes"], ["A dog barks.", "Rain falls on a roof.", "wind"]
    ci = bootstrap_ci("caption", preds, refs, "cider")
    assert ci["ci_resamples"] == 1000 and ci["ci_low"] <= score("caption", preds, refs, spice=False)["cider"]
    note = "<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>{}"
    mna = bootstrap_ci("mna", [note.format("organ"), note.format(" organ")], [note.format("organ")] * 2,
                       "instrument_accuracy_release")  # fmt: skip
    assert mna["ci_low"] == 0.0 and mna["ci_high"] == 1.0 and mna["ci_resamples"] == 1000


def test_empty_group_has_no_interval() -> None:
    assert math.isnan(bootstrap_ci("wer", [], [], "wer")["ci_low"])
