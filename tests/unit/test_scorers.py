"""Scorers against hand-computed numbers and the reference implementations (jiwer, sacrebleu)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jiwer
import pytest
import sacrebleu

from qwenaudio_train.eval import HEADLINE, HIGHER_IS_BETTER, SCORERS, score
from qwenaudio_train.eval.common import ScorerDependencyError
from qwenaudio_train.eval.scorers import (
    accuracy_score,
    align,
    average_precision,
    basic_normalize,
    best_mapping,
    bleu_score,
    clean_text,
    entity_score,
    mna_score,
    parse_note_analysis,
    parse_srwt,
    sd_score,
    sed_score,
    srwt_score,
    tokenize_for_wer,
    wer_score,
)
from qwenaudio_train.formats import diarization_spans, format_entities, format_spans

# ---------------------------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("raw", "lang", "clean"),
    [
        ("<|startoftranscript|><|en|>Hello , World !<|endoftext|>", "en", "hello, world!"),
        ("  Mr.  Smith ;   he said : yes ?", "en", "mr. smith; he said: yes?"),
        ("<audio>/x/a.wav</audio>It's <|im_end|>FINE", "en", "it's fine"),
        ("a\tb\n c", "en", "a b c"),
        ("Hello - world", "en", "hello - world"),  # no punctuation removal in release mode
        ("今天 天气 ，很好 。", "zh", "今天天气，很好。"),
        ("ＡＢＣ Café", "en", "ａｂｃ café"),  # no unicode normalisation either
    ],
)
def test_clean_text_release_mode(raw: str, lang: str, clean: str) -> None:
    assert clean_text(raw, lang) == clean


def test_tokenize_modes() -> None:
    assert tokenize_for_wer("Hello, world!", "en") == ["hello,", "world!"]
    assert tokenize_for_wer("Hello, world!", "en", "normalized") == ["hello", "world"]
    basic = ["mr", "smith", "won", "t", "pay", "20"]
    assert tokenize_for_wer("Mr. Smith won't pay £20 (approx)", "en", "basic") == basic
    assert tokenize_for_wer("你好 ，世界", "zh") == ["你", "好", "，", "世", "界"]
    assert tokenize_for_wer("你好 ，世界", "zh", "normalized") == ["你", "好", "世", "界"]
    with pytest.raises(ValueError, match="unknown WER mode"):
        tokenize_for_wer("a", "en", "whisper")


def test_basic_normalize_matches_whisper() -> None:
    whisper = pytest.importorskip("transformers.models.whisper.english_normalizer")
    reference = whisper.BasicTextNormalizer()
    for text in ["Hello, World! [noise] (um) café — 3.5%", "It's  <unk> fine…", "Ünïcödé ‘quotes’ & $5"]:
        assert basic_normalize(text) == reference(text)


def test_english_normalizer_mode() -> None:
    pytest.importorskip("transformers.models.whisper.english_normalizer")
    out = wer_score(["mister smith paid twenty one dollars"], ["Mr. Smith paid $21."], mode="normalized")
    assert out["wer"] == 0.0


def test_english_spelling_map_from_whisper_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Whisper's normaliser maps British spellings to American ones from english.json (data, not code): with the
    # file, colour/color is no error; without any, the mode says so instead of pretending.
    from qwenaudio_train.eval import text

    spelling = tmp_path / "english.json"
    spelling.write_text(json.dumps({"colour": "color", "favourite": "favorite"}))
    monkeypatch.setenv(text.SPELLING_MAP_ENV, str(spelling))
    text.reset_english_normalizer()
    try:
        out = wer_score(["my favorite color"], ["My favourite colour."], mode="normalized")
        assert out["wer"] == 0.0
        assert wer_score(["my favorite color"], ["My favourite colour."])["wer"] == pytest.approx(2 / 3)
        monkeypatch.setenv(text.SPELLING_MAP_ENV, str(tmp_path / "missing.json"))
        text.reset_english_normalizer()
        with pytest.raises(FileNotFoundError, match="english.json"):
            text.english_normalize("colour")
        monkeypatch.delenv(text.SPELLING_MAP_ENV)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
        text.reset_english_normalizer()
        if text.spelling_map_path() is None:
            with pytest.warns(UserWarning, match="spelling map"):
                assert text.english_normalize("colour") == "colour"
    finally:
        text.reset_english_normalizer()


# ---------------------------------------------------------------------------------------------- WER


CASES = [
    ("the cat sat on the mat", "the cat sat on mat"),
    ("Hello , World !", "hello world"),
    ("one two three", "one too three four"),
    ("<|en|>a b c<|endoftext|>", "x y"),
    ("Well ; that's it .", "well; that is it."),
]


def test_wer_equals_jiwer_on_cleaned_strings() -> None:
    refs = [r for r, _ in CASES]
    hyps = [h for _, h in CASES]
    ours = wer_score(hyps, refs)
    cleaned_refs = [clean_text(r) for r in refs]
    cleaned_hyps = [clean_text(h) for h in hyps]
    assert ours["wer"] == pytest.approx(jiwer.wer(cleaned_refs, cleaned_hyps))
    for ref, hyp in zip(cleaned_refs, cleaned_hyps):
        assert wer_score([hyp], [ref])["wer"] == pytest.approx(jiwer.wer(ref, hyp))


def test_wer_is_corpus_level_not_mean_of_samples() -> None:
    out = wer_score(["a b c d", "x"], ["a b c d", "e"])
    assert out["wer"] == pytest.approx(1 / 5)  # the mean of per-sample WERs would be 0.5
    assert (out["edits"], out["ref_words"], out["n"]) == (1.0, 5.0, 2.0)


def test_wer_empty_prediction_counts_deletions() -> None:
    out = wer_score(["", "<|endoftext|>"], ["a b c", "d"])
    assert out["wer"] == 1.0 and out["edits"] == 4.0 and out["hyp_words"] == 0.0
    assert out["wer"] == pytest.approx(jiwer.wer(["a b c", "d"], ["", ""]))


def test_wer_no_reference_words_is_nan() -> None:
    assert math.isnan(wer_score(["a"], [""])["wer"])
    assert math.isnan(wer_score([], [])["wer"])


def test_wer_extra_special_tokens_ignored() -> None:
    tags = "<|startoftranscript|><|en|><|transcribe|><|en|><|notimestamps|><|wo_itn|>"
    pred = tags + "Hello<|im_end|> world<|endoftext|>"
    assert wer_score([pred], ["hello world"])["wer"] == 0.0


def test_wer_unicode_and_case() -> None:
    out = wer_score(["café naive"], ["Café Naïve"])
    assert out["edits"] == 1.0 and out["wer"] == 0.5


def test_chinese_cer_per_character() -> None:
    out = wer_score(["今天天汽好"], ["今天 天气 好。"], lang="zh")
    # reference chars 今天天气好。(6); one substitution (汽) and one deletion (。)
    assert out["ref_words"] == 6.0 and out["edits"] == 2.0
    assert out["cer"] == out["wer"] == pytest.approx(2 / 6)
    assert "cer" not in wer_score(["a"], ["a"], lang="en")


def test_wer_details() -> None:
    out = wer_score(["a x"], ["a b"], details=True)
    assert out["details"] == [{"edits": 1, "ref_words": 2, "ref": "a b", "hyp": "a x"}]


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        wer_score(["a", "b"], ["a"])


# ---------------------------------------------------------------------------------------------- accuracy


def test_accuracy_and_macro_f1() -> None:
    refs = ["dog", "dog", "cat", "bird"]
    preds = ["Dog", "cat", "cat<|endoftext|>", ""]
    out = accuracy_score(preds, refs, details=True)
    assert out["accuracy"] == 0.5  # "Dog" right (case-insensitive), empty prediction wrong
    assert out["accuracy_release"] == 0.0  # the release compares raw strings
    # dog: tp1 fp0 fn1 -> 2/3; cat: tp1 fp1 fn0 -> 2/3; bird: tp0 fp0 fn1 -> 0
    assert out["macro_f1"] == pytest.approx(4 / 9)
    assert [d["correct"] for d in out["details"]] == [True, False, True, False]
    assert "yes_no_accuracy" not in out


def test_accuracy_release_raw_match_and_yes_no_subset() -> None:
    refs = ["yes", "No", "a dog barking"]
    preds = [" yes ", "no", "A dog barking"]
    out = accuracy_score(preds, refs)
    assert out["accuracy"] == 1.0
    assert out["accuracy_release"] == pytest.approx(1 / 3)
    assert out["yes_no_accuracy"] == 1.0 and out["yes_no_count"] == 2.0


def test_accuracy_explicit_labels() -> None:
    out = accuracy_score(["cat"], ["cat"], labels=["cat", "dog"])
    assert out["macro_f1"] == 0.5  # dog has no support and no prediction: F1 0


def test_multi_label_f1() -> None:
    # SEC / MIC targets join labels with ", "; the prediction may order them differently or miss some.
    refs = ["dog bark, car horn", "piano, violin", "speech"]
    preds = ["Car horn , dog bark<|endoftext|>", "<|instrument|>piano, cello", ""]
    out = accuracy_score(preds, refs)
    assert out["accuracy"] == 0.0  # the joined strings differ: accuracy is unchanged by the new keys
    # tp: car horn, dog bark, piano = 3; fp: cello = 1; fn: violin, speech = 2
    assert out["label_f1"] == pytest.approx(6 / 9)
    assert out["label_precision"] == pytest.approx(3 / 4) and out["label_recall"] == pytest.approx(3 / 5)
    single = accuracy_score(["dog", "cat"], ["dog", "bird"])
    assert single["label_f1"] == single["accuracy"] == 0.5
    assert math.isnan(accuracy_score([""], [""])["label_f1"])


# ---------------------------------------------------------------------------------------------- SRWT

REF_SRWT = "<|0.00|><|sil|><|0.54|>hello<|0.86|>world<|1.20|><|sil|><|1.50|>"


def _shift(text: str, seconds: float) -> str:
    segs = parse_srwt(text)
    assert segs is not None
    out = f"<|{segs[0].start + seconds:.2f}|>"
    for seg in segs:
        out += f"{seg.text}<|{seg.end + seconds:.2f}|>"
    return out


def test_parse_srwt() -> None:
    segs = parse_srwt("<|en|>" + REF_SRWT + "<|endoftext|>")
    assert segs is not None
    assert [(s.text, s.start, s.end, s.is_silence) for s in segs] == [
        ("<|sil|>", 0.0, 0.54, True),
        ("hello", 0.54, 0.86, False),
        ("world", 0.86, 1.2, False),
        ("<|sil|>", 1.2, 1.5, True),
    ]
    assert parse_srwt("no timestamps at all") is None
    assert parse_srwt("<|1.00|>") == []
    assert [(s.text, s.start) for s in parse_srwt("a<|0.20|>b<|0.40|>", implied_start=0.0) or []] == [
        ("a", 0.0),
        ("b", 0.2),
    ]
    assert parse_srwt("no time token", implied_start=0.0) is None
    assert [s.text for s in parse_srwt("<|0.10|> a <|0.20|><|0.30|>b<|0.40|>") or []] == ["a", "b"]


def test_srwt_identical() -> None:
    out = srwt_score([REF_SRWT], [REF_SRWT])
    assert out["aas_ms"] == 0.0 and out["aas_release_ms"] == 0.0
    assert out["wer"] == 0.0 and out["aligned_words"] == 2.0 and out["ref_timed_words"] == 2.0


def test_srwt_shift_100ms() -> None:
    out = srwt_score([_shift(REF_SRWT, 0.10)], [REF_SRWT])
    assert out["aas_ms"] == pytest.approx(100.0)
    assert out["aas_release_ms"] == pytest.approx(200.0)  # start and end shifts summed, not averaged
    assert out["wer"] == 0.0 and out["aligned_words"] == 2.0
    assert srwt_score([_shift(REF_SRWT, 0.10)], [REF_SRWT], include_silence=True)["aligned_words"] == 4.0


def test_srwt_missing_word_and_only_end_shift() -> None:
    pred = "<|0.00|><|sil|><|0.54|>hello<|0.96|><|sil|><|1.50|>"
    out = srwt_score([pred], [REF_SRWT])
    assert out["aligned_words"] == 1.0
    assert out["aas_ms"] == pytest.approx(50.0)  # hello: start 0, end 0.10 -> (0 + 100) / 2
    assert out["wer"] == 0.5 and out["edits"] == 1.0


def test_srwt_continuation_after_primer() -> None:
    # The eval prompt ends with <|0.00|>: the decoded continuation starts with the first segment.
    ref = "<|0.00|>hi<|0.30|>there<|0.70|>"
    out = srwt_score(["hi<|0.30|>there<|0.70|>"], [ref])
    assert out["aligned_words"] == 2.0 and out["aas_ms"] == 0.0
    assert srwt_score(["hi<|0.30|>there<|0.70|>"], [ref], implied_start=None)["aligned_words"] == 1.0
    assert out["aas_release_ms"] == 0.0  # the release drops "hi" but "there" still matches exactly
    continuation = REF_SRWT.removeprefix("<|0.00|>")
    assert srwt_score([continuation], [REF_SRWT])["aligned_words"] == 2.0
    assert srwt_score([continuation], [REF_SRWT], include_silence=True)["aligned_words"] == 4.0


def test_srwt_parse_errors() -> None:
    out = srwt_score(["hello world", REF_SRWT], [REF_SRWT, REF_SRWT], details=True)
    assert out["parse_errors"] == 1.0 and out["aligned_words"] == 2.0 and out["aas_ms"] == 0.0
    assert out["wer"] == 0.0  # the unparseable prediction's words still count in WER
    assert [d["parsed"] for d in out["details"]] == [False, True]
    assert math.isnan(srwt_score(["garbage"], [REF_SRWT])["aas_ms"])


def test_srwt_chinese_characters() -> None:
    ref = "<|0.00|>你<|0.30|>好<|0.60|>"
    pred = "<|0.00|>你<|0.40|>们<|0.60|>"
    out = srwt_score([pred], [ref], lang="zh")
    assert out["aligned_words"] == 1.0 and out["aas_ms"] == pytest.approx(50.0)
    assert out["wer"] == 0.5


def test_align() -> None:
    assert align(list("abc"), list("abc")) == [(0, 0), (1, 1), (2, 2)]
    assert align(list("abc"), list("ac")) == [(0, 0), (2, 1)]
    assert align(list("abc"), list("xbyc")) == [(1, 1), (2, 3)]
    assert align([], list("ab")) == []


# ---------------------------------------------------------------------------------------------- MNA


def _note(pitch: int, velocity: int, instrument: str, sonic: str) -> str:
    return (
        f"<|pitch|><|midi_pitch_{pitch}|><|velocity|><|midi_velocity_{velocity}|>"
        f"<|instrument|>{instrument}<|sonic|>{sonic}"
    )


def test_parse_note_analysis() -> None:
    note = parse_note_analysis(_note(60, 100, "keyboard_acoustic", "bright, percussive, made_up") + "<|endoftext|>")
    assert (note.pitch, note.velocity, note.instrument, note.qualities) == (
        60,
        100,
        "keyboard_acoustic",
        ("bright", "percussive"),
    )
    empty = parse_note_analysis("I think it is a piano")
    assert (empty.pitch, empty.velocity, empty.instrument, empty.qualities) == (None, None, None, ())
    assert parse_note_analysis("<|pitch|><|midi_pitch_x|>").pitch is None


def test_mna_four_samples_by_hand() -> None:
    refs = [
        _note(60, 100, "keyboard_acoustic", "bright, percussive"),
        _note(62, 50, "bass_electronic", "dark"),
        _note(45, 127, "guitar_acoustic", ""),
        _note(70, 75, "flute_synthetic", "bright"),
    ]
    preds = [
        _note(72, 100, "keyboard_acoustic", "bright"),  # octave error
        _note(62, 75, "bass_electronic", "dark, percussive"),
        "garbage",
        _note(70, 75, "flute_acoustic", "bright, reverb"),
    ]
    out = mna_score(preds, refs, details=True)
    assert out["instrument_accuracy"] == 0.5
    assert out["velocity_accuracy"] == 0.5
    assert out["pitch_accuracy"] == 0.5
    assert out["pitch_chroma_accuracy"] == 0.75
    # AP per label: bright 1, dark 1, percussive (missed, wrongly predicted once) = 0 * 0 + 1 * 1/4,
    # reverb (no reference positive) 0.
    assert out["sonic_ap"] == pytest.approx({"bright": 1.0, "dark": 1.0, "percussive": 0.25, "reverb": 0.0})
    assert out["sonic_map"] == pytest.approx(0.5625)
    assert out["parse_errors"] == 1.0


def test_average_precision_like_sklearn() -> None:
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333333)
    assert average_precision([1, 0, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert average_precision([1, 0], [0, 0]) == pytest.approx(0.5)
    assert average_precision([0, 0], [1, 0]) == 0.0


def _average_precision_by_hand(y_true: list[int], y_score: list[float]) -> float:
    """The scorer's own AP before it used sklearn: thresholds from high to low, ties grouped."""
    positives = sum(1 for t in y_true if t)
    if not y_true:
        return math.nan
    ap, tp, fp, prev_recall = 0.0, 0, 0, 0.0
    order = sorted(range(len(y_true)), key=lambda k: -y_score[k])
    k = 0
    while k < len(order):
        threshold = y_score[order[k]]
        while k < len(order) and y_score[order[k]] == threshold:
            tp += 1 if y_true[order[k]] else 0
            fp += 0 if y_true[order[k]] else 1
            k += 1
        precision = tp / (tp + fp)
        if positives == 0:
            return precision
        recall = tp / positives
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def test_average_precision_equals_the_previous_implementation() -> None:
    rng = __import__("random").Random(0)
    cases = [([1, 0, 1, 0], [1.0, 1.0, 0.0, 0.0]), ([0, 0, 0], [1.0, 0.0, 1.0]), ([1, 1], [0.0, 0.0])]
    for _ in range(300):
        n = rng.randint(1, 12)
        y_true = [rng.randint(0, 1) for _ in range(n)]
        # hard 0/1 scores (as MNA passes them), a few levels (many ties) or continuous scores
        levels = rng.choice([[0.0, 1.0], [0.1, 0.5, 0.9], None])
        y_score = [rng.choice(levels) if levels else rng.random() for _ in range(n)]
        cases.append((y_true, y_score))
    for y_true, y_score in cases:
        assert average_precision(y_true, y_score) == pytest.approx(_average_precision_by_hand(y_true, y_score))
    assert math.isnan(average_precision([], []))


# ---------------------------------------------------------------------------------------------- BLEU


@pytest.mark.parametrize(
    ("lang", "tok", "hyps", "refs"),
    [
        ("en", "13a", ["the cat sat on the mat.", "a dog barks"], ["the cat sat on a mat.", "the dog barks"]),
        ("de", "13a", ["Das ist gut."], ["Das ist sehr gut."]),
        ("zh", "zh", ["今天天气很好。", "我爱你"], ["今天天气不错。", "我爱你"]),
    ],
)
def test_bleu_equals_sacrebleu(lang: str, tok: str, hyps: list[str], refs: list[str]) -> None:
    out = bleu_score(hyps, refs, lang=lang)
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok)
    assert out["bleu"] == pytest.approx(expected.score)
    assert out["bp"] == pytest.approx(expected.bp) and out["bleu score"] == pytest.approx(expected.score)
    assert bleu_score([h + "<|endoftext|>" for h in hyps], refs, lang=lang)["bleu"] == pytest.approx(expected.score)


def test_bleu_japanese_mecab_or_loud_failure() -> None:
    # ja-mecab without MeCab must fail loudly: a silent 'char' fallback scored 83.26 where the release's 72.41.
    hyps, refs = ["今日はいい天気です"], ["今日は良い天気です"]
    try:
        sacrebleu.BLEU(tokenize="ja-mecab")
    except (ImportError, RuntimeError):
        with pytest.raises(ScorerDependencyError, match=r"ja-mecab.*qwenaudio-train\[eval\]"):
            bleu_score(hyps, refs, lang="ja")
        out = bleu_score(hyps, refs, lang="ja", tokenize="char")  # chosen knowingly: allowed
        assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score)
    else:
        out = bleu_score(hyps, refs, lang="ja")
        assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="ja-mecab").score)


def test_bleu_release_name_scores_raw_text() -> None:
    hyps, refs = ["the cat sat on the mat<|endoftext|>"], ["the cat sat on the mat"]
    out = bleu_score(hyps, refs)
    assert out["bleu"] == pytest.approx(100.0)
    assert out["bleu score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score)


# ---------------------------------------------------------------------------------------------- SD


def _turns(*turns: tuple[str, float, float]) -> str:
    return format_spans(diarization_spans(list(turns)))


def test_der_perfect_up_to_speaker_names() -> None:
    ref = _turns(("A", 0.2, 1.8), ("B", 1.6, 3.1), ("A", 3.0, 3.9))
    pred = "<|0.20|>Bob<|1.80|><|1.60|>alice<|3.10|><|3.00|>BOB<|3.90|>"  # other names, other case
    out = sd_score([pred], [ref], details=True)
    assert out["der"] == 0.0 and out["speaker_count_accuracy"] == 1.0
    assert out["ref_speech_s"] == pytest.approx(1.6 + 1.5 + 0.9)
    assert out["details"][0]["mapping"] == {"bob": "speaker 1", "alice": "speaker 2"}


def test_der_by_hand() -> None:
    # Reference A 0-2 s, B 2-4 s; one predicted speaker 0-3 s, mapped to A (200 frames in common, B only 100).
    ref = _turns(("A", 0.0, 2.0), ("B", 2.0, 4.0))
    out = sd_score([_turns(("x", 0.0, 3.0))], [ref])
    assert (out["missed"], out["false_alarm"], out["confusion"]) == pytest.approx((0.25, 0.0, 0.25))
    assert out["der"] == pytest.approx(0.5) and out["speaker_count_accuracy"] == 0.0
    # Overlapped reference speech (A 0-2, B 1-3): 100 frames with two speakers but one predicted -> missed.
    out = sd_score([_turns(("x", 0.0, 3.0))], [_turns(("A", 0.0, 2.0), ("B", 1.0, 3.0))])
    assert (out["missed"], out["false_alarm"], out["confusion"]) == pytest.approx((0.25, 0.0, 0.25))
    # A second predicted speaker talking over silence is false alarm.
    out = sd_score([_turns(("x", 0.0, 1.0), ("y", 1.0, 2.0))], [_turns(("A", 0.0, 1.0))])
    assert out["der"] == pytest.approx(1.0) and out["false_alarm"] == pytest.approx(1.0)


def test_der_is_corpus_level_and_unparseable_is_all_missed() -> None:
    refs = [_turns(("A", 0.0, 1.0)), _turns(("A", 0.0, 3.0))]
    preds = [_turns(("A", 0.0, 1.0)), "I think two people talk"]
    out = sd_score(preds, refs)
    assert out["der"] == pytest.approx(300 / 400)  # the mean of the per-sample DERs would be 0.5
    assert out["missed"] == pytest.approx(0.75) and out["empty_predictions"] == 1.0
    assert math.isnan(sd_score([""], [""])["der"])


def test_best_mapping_is_optimal() -> None:
    # Greedy takes 10 and is left with 0; the best one-to-one mapping takes 9 + 9.
    assert best_mapping([[10, 9], [9, 0]]) == ([(0, 1), (1, 0)], True)
    assert best_mapping([[0, 5, 0]]) == ([(0, 1)], True)
    assert best_mapping([[1], [7], [3]]) == ([(1, 0)], True)
    assert best_mapping([]) == ([], True)
    rng = __import__("random").Random(0)
    perms = __import__("itertools").permutations
    for rows, cols in [(3, 3), (2, 5), (5, 2), (6, 6), (4, 7)]:
        grid = [[rng.randint(0, 9) for _ in range(cols)] for _ in range(rows)]
        pairs, exact = best_mapping(grid)
        k = max(rows, cols)
        padded = [[grid[r][c] if r < rows and c < cols else 0 for c in range(k)] for r in range(k)]
        brute = max(sum(padded[r][p[r]] for r in range(k)) for p in perms(range(k)))
        assert exact and sum(grid[r][c] for r, c in pairs) == brute
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})


def _exact_mapping_value(overlap: list[list[int]]) -> int:
    """The best summed overlap by dynamic programming over subsets of columns (the scorer's exact method up to
    ten speakers before it used scipy): an independent check at sizes where brute force is too slow."""
    best = {0: 0}
    for row in overlap:
        nxt: dict[int, int] = {}
        for mask, value in best.items():
            for c, v in enumerate(row):
                if not mask >> c & 1:
                    key = mask | 1 << c
                    nxt[key] = max(nxt.get(key, -1), value + v)
        best = nxt
    return max(best.values())


def _block(i: int) -> list[tuple[str, float, float]]:
    """Reference turns of two speakers whose overlap with two predicted ones is [[10, 9], [9, 0]] frames."""
    t = float(i)
    return [(f"a{i}", t + 0.09, t + 0.28), (f"b{i}", t, t + 0.09)]


def _block_pred(i: int) -> list[tuple[str, float, float]]:
    t = float(i)
    return [(f"x{i}", t, t + 0.19), (f"y{i}", t + 0.19, t + 0.28)]


def test_best_mapping_is_optimal_beyond_ten_speakers() -> None:
    # Six copies of [[10, 9], [9, 0]] on the diagonal: greedy (largest entry first) takes every 10 and is left with
    # zeros (60 in all); the optimum takes every pair of 9s (108). The old scorer went greedy above ten speakers.
    grid = [[0] * 12 for _ in range(12)]
    for b in range(6):
        for r, c, v in ((0, 0, 10), (0, 1, 9), (1, 0, 9)):
            grid[2 * b + r][2 * b + c] = v
    pairs, exact = best_mapping(grid)
    assert exact and sum(grid[r][c] for r, c in pairs) == 108
    assert pairs == sorted((2 * b + r, 2 * b + 1 - r) for b in range(6) for r in (0, 1))
    rng = __import__("random").Random(1)
    for rows, cols in [(11, 11), (12, 9), (9, 12), (13, 13)]:
        grid = [[rng.choice([0, 0, rng.randint(1, 50)]) for _ in range(cols)] for _ in range(rows)]
        pairs, _ = best_mapping(grid)
        best = _exact_mapping_value(grid if rows <= cols else [list(c) for c in zip(*grid)])
        assert sum(grid[r][c] for r, c in pairs) == best
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
    # The same blocks as a diarization: 12 reference and 12 predicted speakers. Per block 28 frames of speech;
    # the optimal mapping gets 18 of them right (confusion 10), greedy only 10 (confusion 18).
    ref = _turns(*[turn for i in range(6) for turn in _block(i)])
    pred = _turns(*[turn for i in range(6) for turn in _block_pred(i)])
    out = sd_score([pred], [ref])
    assert out["ref_speech_s"] == pytest.approx(6 * 0.28)
    assert out["der"] == pytest.approx(60 / 168) and out["confusion"] == pytest.approx(60 / 168)
    assert "greedy_mappings" not in out


# ---------------------------------------------------------------------------------------------- SED


def _events(*events: tuple[str, float, float]) -> str:
    return format_spans(list(events))


def test_sed_collars() -> None:
    ref = _events(("dog bark", 1.0, 2.0), ("speech", 0.0, 10.0))
    # onset 0.20 s late (inclusive) with offset 0.20 s early; speech offset 2 s early = 20 % of 10 s.
    hit = _events(("Dog  Bark", 1.2, 1.8), ("speech", 0.0, 8.0))
    assert sed_score([hit], [ref])["event_f1"] == 1.0
    # 0.21 s onset error, and a 2.01 s offset error on the long event: both missed.
    miss = _events(("dog bark", 1.21, 2.0), ("speech", 0.0, 7.99))
    out = sed_score([miss], [ref])
    assert out["event_f1"] == 0.0 and out["event_precision"] == 0.0 and out["ref_events"] == 2.0
    # A short event's offset collar is 0.2 s, not 20 % of its length (0.1 s here).
    assert sed_score([_events(("x", 1.0, 1.65))], [_events(("x", 1.0, 1.5))])["event_f1"] == 1.0
    assert sed_score([_events(("x", 1.0, 1.71))], [_events(("x", 1.0, 1.5))])["event_f1"] == 0.0


def test_sed_by_hand() -> None:
    refs = [_events(("dog", 0.1, 1.1), ("cat", 1.0, 2.5)), _events(("car", 0.0, 3.0))]
    preds = [_events(("dog", 0.0, 1.0), ("cat", 1.0, 2.0), ("cat", 1.0, 2.4)), "no events here"]
    out = sed_score(preds, refs)
    # dog matches; cat: 1.0-2.4 matches (offset error 0.1 <= 0.3), 1.0-2.0 does not (0.5) -> tp 2, fp 1, fn 1 (car)
    assert (out["event_precision"], out["event_recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert out["event_f1"] == pytest.approx(2 / 3) and out["empty_predictions"] == 1.0
    assert out["event_f1_macro"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)  # dog, cat, car
    # 1 s segments. Sample 1: ref dog {0, 1}, cat {1, 2}; pred dog {0}, cat {1, 2}. Sample 2: ref car {0, 1, 2}.
    # tp 3 (dog 0, cat 1, cat 2), fp 0, fn 4 (dog 1, car 0-2); per segment all deletions: ER = 4 / 7.
    assert out["segment_precision"] == 1.0 and out["segment_recall"] == pytest.approx(3 / 7)
    assert out["segment_f1"] == pytest.approx(6 / 10) and out["segment_error_rate"] == pytest.approx(4 / 7)


def test_sed_optimal_matching_and_substitutions() -> None:
    # p1 fits both references, p2 only r1: a greedy first-come matching would pair p1 with r1 and miss r2.
    ref = _events(("door", 0.0, 1.0), ("door", 0.3, 1.3))
    pred = _events(("door", 0.15, 1.15), ("door", 0.0, 1.0))
    assert sed_score([pred], [ref])["event_f1"] == 1.0
    # A wrong label in the same segment is one substitution, not a deletion plus an insertion.
    out = sed_score([_events(("cat", 0.0, 0.5))], [_events(("dog", 0.0, 0.5))])
    assert out["segment_error_rate"] == 1.0 and out["event_f1"] == 0.0
    assert math.isnan(sed_score(["x"], ["y"])["event_f1"])


def _max_matching_by_augmenting_paths(n_left: int, edges: list[list[int]]) -> int:
    """The SED scorer's own maximum matching before it used scipy (Kuhn's augmenting paths)."""
    match_right: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j not in seen:
                seen.add(j)
                if j not in match_right or augment(match_right[j], seen):
                    match_right[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(n_left))


def test_max_matching_equals_augmenting_paths() -> None:
    from qwenaudio_train.eval.events import _max_matching

    rng = __import__("random").Random(0)
    assert _max_matching(0, []) == 0 and _max_matching(2, [[], []]) == 0
    for _ in range(300):
        n_left, n_right = rng.randint(0, 8), rng.randint(0, 8)
        p = rng.random()
        edges = [[j for j in range(n_right) if rng.random() < p] for _ in range(n_left)]
        assert _max_matching(n_left, edges) == _max_matching_by_augmenting_paths(n_left, edges)


# ---------------------------------------------------------------------------------------------- SER / SF


def _entities(transcript: str, *pairs: tuple[str, str]) -> str:
    return format_entities(transcript, list(pairs))


def test_entity_f1() -> None:
    refs = [
        _entities("call john smith in paris", ("person", "john smith"), ("city", "paris")),
        _entities("wake me at seven tomorrow", ("time", "seven"), ("date", "tomorrow")),
    ]
    preds = [
        _entities("Call John  Smith in Paris", ("Person", "John  Smith"), ("country", "Paris")),
        "wake me at seven tomorrow",
    ]  # no markers: the transcript is right, the entities are missed
    out = entity_score(preds, refs, details=True)
    # tp: (person, john smith); fp: (country, paris); fn: (city, paris), (time, seven), (date, tomorrow)
    assert out["entity_f1"] == pytest.approx(2 / 6)
    assert (out["entity_precision"], out["entity_recall"]) == pytest.approx((1 / 2, 1 / 4))
    assert out["value_f1"] == pytest.approx(4 / 6)  # paris is found, with the wrong type
    assert out["wer"] == 0.0 and out["ref_words"] == 10.0 and out["ref_entities"] == 4.0
    assert out["details"][0]["tp"] == 1
    perfect = entity_score(refs, refs)
    assert perfect["entity_f1"] == 1.0 and perfect["wer"] == 0.0
    # A value predicted twice but present once: one TP and one FP.
    twice = _entities("paris or paris", ("city", "paris"), ("city", "paris"))
    assert entity_score([twice], [_entities("paris or paris", ("city", "paris"))])["entity_precision"] == 0.5
    assert math.isnan(entity_score(["a"], ["a"])["entity_f1"])


# ---------------------------------------------------------------------------------------------- registry


def test_registry_headlines() -> None:
    assert set(SCORERS) == set(HEADLINE) == set(HIGHER_IS_BETTER)
    spans = "<|0.00|>speaker 1<|1.00|><|1.20|>speaker 2<|2.00|>"
    entities = "call <|startofentityvalue|>paris<|endofentityvalue|><|startofentitytype|>city<|endofentitytype|>"
    samples = {
        "aqa": (["Yes"], ["yes"]),
        "wer": (["a b"], ["a b"]),
        "accuracy": (["dog"], ["dog"]),
        "srwt": ([REF_SRWT], [REF_SRWT]),
        "mna": ([_note(60, 100, "organ_electronic", "dark")], [_note(60, 100, "organ_electronic", "dark")]),
        "bleu": (["the cat sat on the mat"], ["the cat sat on the mat"]),
        "caption": (["a dog barks", "rain falls on a roof"], ["A dog barks.", "Rain falls on a roof."]),
        "sd": ([spans], [spans]),
        "sed": ([spans], [spans]),
        "entity_f1": ([entities], [entities]),
        "choice": (["B"], ["cat"]),
    }
    perfect = {
        "wer": 0.0,
        "accuracy": 1.0,
        "aqa": 1.0,
        "srwt": 0.0,
        "mna": 1.0,
        "bleu": 100.0,
        "sd": 0.0,
        "sed": 1.0,
        "entity_f1": 1.0,
        "choice": 1.0,
    }
    assert set(samples) == set(SCORERS)
    for metric, (preds, refs) in samples.items():
        out = score(metric, preds, refs, **({"choices": [["dog", "cat"]]} if metric == "choice" else {}))
        if metric == "caption":  # CIDEr-D has no fixed maximum: check that exact captions beat wrong ones
            assert out["cider"] > score(metric, ["a cat", "wind"], refs)["cider"] >= 0.0
        else:
            assert out[HEADLINE[metric]] == pytest.approx(perfect[metric])
        assert all(isinstance(v, float) for k, v in out.items() if not k.endswith("_note")), metric
        assert all(isinstance(v, str) for k, v in out.items() if k.endswith("_note")), metric
        assert isinstance(HIGHER_IS_BETTER[metric], bool)
    assert not HIGHER_IS_BETTER["sd"] and HIGHER_IS_BETTER["caption"] and HIGHER_IS_BETTER["sed"]


@pytest.mark.parametrize("metric", ["caption", "sd", "sed", "entity_f1", "accuracy", "aqa", "mna", "srwt"])
def test_garbage_predictions_never_raise(metric: str) -> None:
    refs = {
        "caption": ["a dog barks"] * 3,
        "sd": ["<|0.00|>speaker 1<|1.00|>"] * 3,
        "sed": ["<|0.00|>dog<|1.00|>"] * 3,
        "entity_f1": ["<|startofentityvalue|>x<|endofentityvalue|>"] * 3,
        "mna": [_note(60, 100, "organ_electronic", "dark")] * 3,
        "srwt": [REF_SRWT] * 3,
    }.get(metric, ["dog"] * 3)
    preds = ["", "<|0.50|><|0.20|>speaker<|endoftext|><|1.|>", "<|startofentityvalue|>(((<|sil|>"]
    out = score(metric, preds, refs)
    headline = out[HEADLINE[metric]]
    assert isinstance(headline, float)
    assert math.isnan(headline) or headline == pytest.approx(1.0 if metric == "sd" else 0.0)


def test_unknown_metric() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown metric 'cider'; known metrics: accuracy, aqa, bleu, caption, "
        r"choice, entity_f1, mna, sd, sed, srwt, wer",
    ):
        score("cider", ["a"], ["a"])


# ---------------------------------------------------------------------------------------------- release exactness
# Each case below is a place where the release's own scoring (eval_audio/evaluate_*.py) reads or pairs differently
# from our lenient definitions; the *_release values follow the release, worked out by hand from its code.


def test_yes_no_release_is_raw_bi_acc() -> None:
    # The release's bi_ACC_score: subset gt.lower() in yes/no, raw strings compared. Cleaned: 1.0; release: 1/3.
    out = accuracy_score(["yes", "No", "yes"], ["yes", "no", "Yes"])
    assert out["yes_no_accuracy"] == 1.0
    assert out["yes_no_accuracy_release"] == pytest.approx(1 / 3) == out["bi_ACC_score"]
    assert out["ACC_score"] == out["accuracy_release"] == pytest.approx(1 / 3)


def test_srwt_release_tie_breaking_follows_edit_distance_package() -> None:
    # ref a b a / hyp b a b: two optimal alignments. edit_distance's lowest_cost_action prefers insertion over
    # deletion on ties: it pairs ref b with hyp b (1,0) and ref a with hyp a (2,1); the other path pairs (0,1), (1,2).
    assert align(list("aba"), list("bab"), release=True) == [(1, 0), (2, 1)]
    assert align(list("aba"), list("bab")) == [(0, 1), (1, 2)]
    ref = "<|0.00|>a<|1.00|>b<|2.00|>a<|3.00|>"
    hyp = "<|0.00|>b<|1.00|>a<|1.50|>b<|3.00|>"
    out = srwt_score([hyp], [ref])
    # b(1,2)~b(0,1): 1 + 1; a(2,3)~a(1,1.5): 1 + 1.5  ->  4.5 s / 2 pairs
    assert out["aas_release_ms"] == pytest.approx(2250.0) and out["AAS"] == pytest.approx(2.25)


def test_srwt_release_compares_raw_segments() -> None:
    ref = "<|0.00|>hello<|0.50|>"
    for hyp in ["<|0.00|> hello<|0.60|>", "<|0.00|>hello<|endoftext|><|0.60|>"]:
        out = srwt_score([hyp], [ref])
        assert out["aas_ms"] == pytest.approx(50.0)  # ours: stripped text, halved shift
        assert math.isnan(out["aas_release_ms"]) and "divides by zero" in out["aas_release_note"]


def test_srwt_release_counts_empty_segments() -> None:
    # Adjacent time tokens make an empty segment the release aligns like a word: a(0,.5) ''(.5,.6) b(.6,1)
    # vs a(0,.5) ''(.5,.7) b(.7,1): shifts 0, 0.1, 0.1 over 3 pairs.
    out = srwt_score(["<|0.00|>a<|0.50|><|0.70|>b<|1.00|>"], ["<|0.00|>a<|0.50|><|0.60|>b<|1.00|>"])
    assert out["aas_release_ms"] == pytest.approx(200.0 / 3)
    assert out["aas_ms"] == pytest.approx(25.0)  # ours: words only, a 0 and b (0.1 + 0) / 2, over 2 words


def test_srwt_release_output_without_time_token() -> None:
    # The release drops an unreadable output from its own list and pairs the lists by position: with one output
    # fewer than references its script stops (AssertionError). We report nan and say why.
    refs = ["<|0.00|>a<|0.50|>", "<|0.00|>b<|0.50|>"]
    out = srwt_score(["no time tokens", "<|0.00|>b<|0.50|>"], refs)
    assert math.isnan(out["aas_release_ms"]) and "AssertionError" in out["aas_release_note"]
    assert out["parse_errors"] == 1.0 and out["aas_ms"] == 0.0


def test_srwt_reference_word_at_zero_is_timed() -> None:
    # The runner's reference is the target after the prompt's <|0.00|>: its first word starts at 0.00.
    out = srwt_score(["hello<|0.50|>world<|1.00|>"], ["hello<|0.50|>world<|1.00|>"])
    assert out["aligned_words"] == 2.0 and out["aas_ms"] == 0.0
    # The release sees the gt with <|0.00|> but drops the output's text before its first time token.
    assert out["aligned_release"] == 1.0 and out["aas_release_ms"] == 0.0


def test_mna_release_reading() -> None:
    ref = _note(60, 100, "keyboard_acoustic", "bright")
    # instrument with a leading space: the release keeps it (wrong), we strip it (right)
    out = mna_score([_note(60, 100, " keyboard_acoustic", "bright")], [ref])
    assert out["instrument_accuracy"] == 1.0 and out["instrument_accuracy_release"] == 0.0
    # pitch " 60": int(" 60") == 60 for the release; our parser rejects it
    spaced = "<|pitch|><|midi_pitch_ 60|><|velocity|><|midi_velocity_100|><|instrument|>keyboard_acoustic"
    out = mna_score([spaced], [ref])
    assert out["pitch_accuracy"] == 0.0 and out["pitch_accuracy_release"] == 1.0 == out["top1acc"]
    # a field missing on both sides: the release reads 128 on both and counts it equal
    no_velocity = "<|pitch|><|midi_pitch_60|><|instrument|>organ"
    out = mna_score([no_velocity], [no_velocity])
    assert out["velocity_accuracy"] == 0.0 and out["velocity_accuracy_release"] == 1.0
    assert out["instrument_score"] == 1.0 and math.isnan(out["sonic_score"])


def test_mna_chroma_both_ways() -> None:
    # refs 60, 62; preds 72, 62. MIDI chroma: 72 % 12 == 60 % 12 -> 2/2. The release's chroma compares class
    # indices in the sorted pitches seen ({60: 0, 62: 1, 72: 2}): 0 vs 2 wrong, 1 vs 1 right -> 1/2.
    refs = [_note(60, 100, "organ", ""), _note(62, 100, "organ", "")]
    preds = [_note(72, 100, "organ", ""), _note(62, 100, "organ", "")]
    out = mna_score(preds, refs)
    assert out["pitch_chroma_accuracy"] == 1.0
    assert out["pitch_chroma_accuracy_release"] == 0.5 == out["chromaacc"]


def test_mna_release_sonic_map() -> None:
    refs = [_note(60, 100, "organ", "bright, dark"), _note(60, 100, "organ", "dark")]
    preds = [_note(60, 100, "organ", "bright"), _note(60, 100, "organ", "bright,dark")]  # no space: not split
    out = mna_score(preds, refs)
    # bright: y=[1,0], p=[1,0] -> AP 1; dark: y=[1,1], p=[0,0] -> AP = base rate 1
    assert out["sonic_map_release"] == pytest.approx(1.0)
    assert out["sonic_map"] == pytest.approx(0.75)  # ours splits "bright,dark": bright AP 0.5, dark AP 1


@pytest.mark.parametrize(
    ("pred", "ref", "lang", "edits", "ref_items"),
    [
        ("", "hello world", "en", 2, 2),  # empty output: one deletion per reference word
        ("<|endoftext|>", "hello", "en", 1, 1),  # only a special token: empty
        ("hello 世界", "hello世界", "zh", 0, 7),  # CJK mixed with Latin: every character an item, spaces gone
        ("Ünïcödé , ok", "ünïcödé, OK", "en", 0, 2),  # unicode lower-casing, space before punctuation removed
        ("a<|0.50|>b", "a b", "en", 0, 2),  # a time token is a space, as the release's remove_sp makes it
    ],
)
def test_wer_release_hand_made(pred: str, ref: str, lang: str, edits: int, ref_items: int) -> None:
    out = wer_score([pred], [ref], lang=lang)
    assert (out["edits"], out["ref_words"]) == (edits, ref_items)


def test_release_accuracy_on_empty_and_special_outputs() -> None:
    out = accuracy_score(["", "dog<|endoftext|>", " dog "], ["dog", "dog", "dog"])
    assert out["accuracy_release"] == pytest.approx(1 / 3)  # only the stripped raw " dog " matches
    assert out["accuracy"] == pytest.approx(2 / 3)


def test_srwt_release_empty_output_is_a_pattern_error() -> None:
    out = srwt_score(["", "<|0.00|>b<|0.50|>"], ["<|0.00|>a<|0.50|>", "<|0.00|>b<|0.50|>"])
    assert math.isnan(out["aas_release_ms"]) and "1 predictions" in out["aas_release_note"]
