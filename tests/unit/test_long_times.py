"""Times past 30 s (issue 13, docs/long_audio.md): `<|window_k|>` + the released time token of `t - 30 k`.

Round trips of every timed format at the edges of the windows, the scorers (AAS, event F1) on long outputs against
hand-computed values, outputs of <= 30 s exactly as the release writes them, and the tokenizer option that appends
the window markers after the last released id (released ids untouched, nothing appended unless asked)."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path

import pytest

from qwenaudio_train import tags as T
from qwenaudio_train.eval.events import sed_score
from qwenaudio_train.eval.timestamps import srwt_score
from qwenaudio_train.formats import (
    format_spans,
    format_srwt,
    parse_spans,
    parse_srwt,
    parse_srwt_release,
    parse_srwt_segments,
)
from qwenaudio_train.tokenizer import load_tokenizer, train_bpe_tokenizer

EDGES = (0.0, 29.99, 30.0, 30.01, 95.37, 599.99)
WRITTEN = (
    "<|0.00|>",
    "<|29.99|>",
    "<|30.00|>",
    "<|window_1|><|0.01|>",
    "<|window_3|><|5.37|>",
    "<|window_19|><|29.99|>",
)


# ---------------------------------------------------------------------------------------------------------------
# The scheme
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "written"), list(zip(EDGES, WRITTEN)))
def test_long_time_round_trip(seconds: float, written: str) -> None:
    assert T.long_time(seconds) == written
    assert T.parse_long_time(written) == seconds


def test_window_edges_and_range() -> None:
    # a window's end time is its own 30.00 (60.00 ends window 1), the next centisecond opens the next window
    assert T.long_time(60.0) == "<|window_1|><|30.00|>" and T.long_time(60.01) == "<|window_2|><|0.01|>"
    assert T.parse_long_time("<|window_1|><|0.00|>") == 30.0  # never written, still read
    assert T.long_time(T.MAX_LONG_TIME + 5) == f"<|window_{T.N_WINDOW_TOKENS}|><|30.00|>"
    assert T.long_time(-1.0) == "<|0.00|>"
    assert T.time_token(31.7) == "<|30.00|>"  # the single released token still clamps
    for bad in ("<|window_1|>", "<|30.01|>", "<|window_1|><|30.01|>", "30.01"):
        with pytest.raises(ValueError, match="is not a time"):
            T.parse_long_time(bad)


def test_markers_are_not_released_tokens() -> None:
    assert len(T.LONG_TIME_TOKENS) == T.N_WINDOW_TOKENS == 119
    assert T.LONG_TIME_TOKENS[0] == "<|window_1|>" and T.LONG_TIME_TOKENS[-1] == "<|window_119|>"
    assert not set(T.LONG_TIME_TOKENS) & set(T.SPECIAL_TOKENS)
    assert len(T.SPECIAL_TOKENS) == 3522 and T.RELEASED_SPECIAL_IDS["</audio>"] == 155164


# ---------------------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------------------
def test_srwt_round_trip_across_windows() -> None:
    words = [("a", 0.0, 29.99), ("b", 29.99, 30.0), ("c", 30.0, 30.01), ("d", 95.37, 599.99)]
    text = format_srwt(words)
    assert text == (
        "<|0.00|>a<|29.99|>b<|30.00|>c<|window_1|><|0.01|><|sil|><|window_3|><|5.37|>d<|window_19|><|29.99|>"
    )
    assert parse_srwt(text) == words
    segments = parse_srwt_segments(text)
    assert segments is not None and [(s.start, s.end) for s in segments][-2:] == [(30.01, 95.37), (95.37, 599.99)]
    # the release-exact reader: markers belong to the time, not to a segment
    release = parse_srwt_release(text)
    assert release == (
        ["a", "b", "c", "<|sil|>", "d"],
        [(0.0, 29.99), (29.99, 30.0), (30.0, 30.01), (30.01, 95.37), (95.37, 599.99)],
    )


def test_short_outputs_are_the_releases() -> None:
    words = [("hello", 0.54, 0.86), ("world", 0.86, 30.0)]
    assert format_srwt(words) == "<|0.00|><|sil|><|0.54|>hello<|0.86|>world<|30.00|>"
    assert format_spans([("dog", 0.5, 1.2), ("car", 0.9, 30.0)]) == "<|0.50|>dog<|1.20|><|0.90|>car<|30.00|>"


@pytest.mark.parametrize("start", EDGES)
def test_spans_round_trip(start: float) -> None:
    # grounding / events / speaker turns: spans that cross windows and overlap out of window order
    spans = [("speech", start, round(start + 14.99, 2)), ("dog bark", round(start + 0.01, 2), round(start + 0.02, 2))]
    text = format_spans(spans)
    assert parse_spans(text) == sorted(spans, key=lambda s: (s[1], s[2]))
    assert parse_spans("<|startofanalysis|><|unknown|><|caption|><|en|><|timestamps|><|event|>" + text) == sorted(
        spans, key=lambda s: (s[1], s[2])
    )


def test_spans_overlapping_back_across_a_window() -> None:
    text = format_spans([("speech", 25.0, 40.0), ("dog", 28.0, 32.0)])
    # each time carries its own marker: the second span's start goes back to window 0 with no marker at all
    assert text == "<|25.00|>speech<|window_1|><|10.00|><|28.00|>dog<|window_1|><|2.00|>"
    assert parse_spans(text) == [("speech", 25.0, 40.0), ("dog", 28.0, 32.0)]


def test_grounding_chat_answer() -> None:
    from data_recipes.sft_builder import GROUNDING_A, _span

    answer = GROUNDING_A.format(w="nine", s=T.long_time(95.37), e=T.long_time(96.0))
    assert answer == 'The word "nine" starts at <|window_3|><|5.37|> seconds and ends at <|window_3|><|6.00|> seconds.'
    times = [T.long_time_seconds(m) for m in T.LONG_TIME_RE.finditer(answer)]
    assert times == [95.37, 96.0]
    assert _span(1.5, 2.0) == "from <|1.50|> to <|2.00|> seconds"  # <= 30 s: as before
    assert _span(29.0, 31.0) == "from <|29.00|> to <|window_1|><|1.00|> seconds"


# ---------------------------------------------------------------------------------------------------------------
# Scorers on long outputs, against hand-computed values
# ---------------------------------------------------------------------------------------------------------------
def test_aas_on_long_outputs() -> None:
    ref = format_srwt([("hello", 29.5, 30.4), ("world", 95.0, 95.37)])
    hyp = format_srwt([("hello", 29.6, 30.6), ("world", 95.1, 95.57)])
    assert (
        ref == "<|0.00|><|sil|><|29.50|>hello<|window_1|><|0.40|><|sil|><|window_3|><|5.00|>world<|window_3|><|5.37|>"
    )
    scores = srwt_score([hyp], [ref])
    # paper AAS: mean over equal words of (|ds| + |de|) / 2 = ((0.1 + 0.2) / 2 + (0.1 + 0.2) / 2) / 2 = 0.15 s
    assert scores["aas_ms"] == pytest.approx(150.0)
    assert scores["aligned_words"] == 2 and scores["wer"] == 0.0 and scores["parse_errors"] == 0
    # release AAS: raw segments (silences included), sum |ds| + |de| / pairs:
    # sil 0 + 0.1, hello 0.1 + 0.2, sil 0.2 + 0.1, world 0.1 + 0.2 -> 1.0 s / 4 = 250 ms
    assert scores["aas_release_ms"] == pytest.approx(250.0)
    assert scores["aligned_release"] == 4


def test_aas_a_missing_marker_is_a_30_s_shift() -> None:
    ref = "<|0.00|>a<|window_1|><|1.00|>"
    hyp = "<|0.00|>a<|1.00|>"  # the model forgot the window: the end is read 30 s early
    assert srwt_score([hyp], [ref])["aas_ms"] == pytest.approx(15000.0)


def test_event_f1_on_long_outputs() -> None:
    ref = format_spans([("dog", 28.0, 31.0), ("speech", 95.0, 100.0), ("car", 590.0, 599.99)])
    hyp = format_spans([("dog", 28.1, 31.3), ("speech", 95.3, 100.0), ("car", 590.0, 599.99)])
    s = sed_score([hyp], [ref])
    # dog: onset 0.1 <= 0.2, offset 0.3 <= max(0.2, 0.2 * 3 s) -> match; speech: onset 0.3 > 0.2 -> miss; car: match
    assert (s["event_precision"], s["event_recall"], s["event_f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # 1 s segments: ref dog 28..30, speech 95..99, car 590..599 (18); hyp has dog 28..31 (one more): tp 18, fp 1
    assert s["segment_f1"] == pytest.approx(36 / 37)
    assert s["segment_error_rate"] == pytest.approx(1 / 18)


# ---------------------------------------------------------------------------------------------------------------
# Tokenizers: the markers only when asked, after the last released id, contiguous
# ---------------------------------------------------------------------------------------------------------------
LONG_TEXT = "<|0.00|>a<|29.99|>b<|window_1|><|0.01|><|sil|><|window_19|><|29.99|>"


@pytest.fixture(scope="module")
def released(shared_spec: Path):
    return load_tokenizer(shared_spec / "qwen.tiktoken"), load_tokenizer(shared_spec / "qwen.tiktoken", True)


def test_released_tokenizer_keeps_its_ids(released) -> None:
    plain, long = released
    assert not plain.long_time_tokens and long.long_time_tokens
    assert plain.vocab_size == 155165 and long.vocab_size == 155165 + 119
    for tok, idx in T.RELEASED_SPECIAL_IDS.items():
        assert long.token_to_id(tok) == idx == plain.token_to_id(tok)
    assert [long.token_to_id(t) for t in T.LONG_TIME_TOKENS] == list(range(155165, 155165 + 119))
    with pytest.raises(KeyError):
        plain.token_to_id("<|window_1|>")
    ids = long.encode(LONG_TEXT)
    assert long.decode(ids) == LONG_TEXT and parse_srwt(long.decode(ids)) == parse_srwt(LONG_TEXT)
    assert ids.count(long.token_to_id("<|window_1|>")) == 1 and ids == long.encode(LONG_TEXT, allowed_special="audio")
    # without the option the marker is ordinary text (several BPE ids), and short texts encode alike in both
    assert len(plain.encode("<|window_1|>")) > 1 and plain.decode(plain.encode(LONG_TEXT)) == LONG_TEXT
    short = "<|0.00|><|sil|><|0.54|>word<|30.00|>"
    assert plain.encode(short) == long.encode(short)


def test_tiktoken_option_survives_save_and_pickle(tmp_path: Path) -> None:
    ranks = tmp_path / "bytes.tiktoken"
    ranks.write_text("".join(f"{base64.b64encode(bytes([i])).decode()} {i}\n" for i in range(256)), encoding="utf-8")
    tok = load_tokenizer(ranks, long_time_tokens=True)
    assert tok.token_to_id("<|window_1|>") == 256 + len(T.SPECIAL_TOKENS)
    again = load_tokenizer(tok.save_pretrained(tmp_path / "saved"))
    assert again.long_time_tokens and again.encode(LONG_TEXT) == tok.encode(LONG_TEXT)
    assert pickle.loads(pickle.dumps(tok)).encode(LONG_TEXT) == tok.encode(LONG_TEXT)
    plain_dir = load_tokenizer(ranks).save_pretrained(tmp_path / "plain")
    assert "long_time_tokens" not in (plain_dir / "qwenaudio_tokenizer.json").read_text()
    assert not load_tokenizer(plain_dir).long_time_tokens


def test_bpe_option_contiguous_after_the_released_tokens(tmp_path: Path) -> None:
    texts = ["the quick brown fox", "jumps over the lazy dog"] * 10
    plain = train_bpe_tokenizer(texts, tmp_path / "plain", vocab_size=280)
    long = train_bpe_tokenizer(texts, tmp_path / "long", vocab_size=280, long_time_tokens=True)
    assert not plain.long_time_tokens and plain.vocab_size + 119 == long.vocab_size
    last = long.token_to_id(T.SPECIAL_TOKENS[-1])
    assert [long.token_to_id(t) for t in T.LONG_TIME_TOKENS] == list(range(last + 1, last + 120))
    assert all(plain.token_to_id(t) == long.token_to_id(t) for t in T.SPECIAL_TOKENS[::50])
    reloaded = load_tokenizer(tmp_path / "long")
    assert reloaded.long_time_tokens and reloaded.encode(LONG_TEXT) == long.encode(LONG_TEXT)
    audio_only = long.encode(LONG_TEXT, allowed_special="audio")
    assert audio_only == long.encode(LONG_TEXT) and long.decode(audio_only) == LONG_TEXT


def test_data_cli_trains_a_bpe_with_the_markers(tmp_path: Path) -> None:
    from qwenaudio_train.cli.data import main

    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox\njumps over the lazy dog\n" * 10, encoding="utf-8")
    assert main(["tokenizer", "--text", str(text), "--out", str(tmp_path / "tok"), "--vocab-size", "280"]) == 0
    assert main(["tokenizer", "--text", str(text), "--out", str(tmp_path / "long"), "--long-time-tokens"]) == 0
    assert not load_tokenizer(tmp_path / "tok").long_time_tokens and load_tokenizer(tmp_path / "long").long_time_tokens
