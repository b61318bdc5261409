"""Audio longer than 30 s (issue 13): 30-s windows, each encoded as a clip of its own, joined into one span.

Lengths (positions = sum over windows), features (a window's log-mel and encoder output equal that window alone;
a batch mixing a long and a short clip equals each alone), the model's fusion and generation with a long span,
and the policies (window, reject, truncate, the data.max_audio_seconds limit) of the processors and the check.
"""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch

from qwenaudio_train import audio as A
from qwenaudio_train.data.processing import SampleProcessor, collate
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.model import build_model
from tests.unit.test_model import END, EOD, PAD, START, tiny_cfg
from tests.unit.test_stream import _Tok

SR = A.SAMPLE_RATE


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Tone sweep plus noise whose loudness changes over time (each window gets its own max-8 floor)."""
    n = A.samples_for_duration(seconds)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    envelope = 0.05 + 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 47.0))
    x = envelope * np.sin(2 * np.pi * (200 + 20 * t) * t) + 0.02 * rng.standard_normal(n)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_cfg()).eval()


# --- lengths ---------------------------------------------------------------------------------------------------


def test_positions_of_a_long_clip_are_the_sum_over_its_windows() -> None:
    for seconds, windows in [(65.0, [30.0, 30.0, 5.0]), (95.0, [30.0, 30.0, 30.0, 5.0]), (180.0, [30.0] * 6)]:
        n = A.samples_for_duration(seconds)
        expected = sum(A.audio_positions(A.samples_for_duration(w)) for w in windows)
        assert A.audio_positions(n) == expected
        assert A.audio_span_length(n) == expected + 2
        assert A.window_frames(n) == [A.samples_for_duration(w) // A.HOP_LENGTH for w in windows]
        assert A.split_frames(sum(A.window_frames(n))) == A.window_frames(n)
    assert A.audio_positions(A.samples_for_duration(65.0)) == 750 + 750 + 125
    # <= 30 s: the release's count, unchanged (one window, never cut).
    for n in [0, 479, 480, 16000, 479_999, 480_000]:
        assert A.window_frames(n) == [A.mel_frames(n)]
        assert A.audio_positions(n) == A.pooled_frames(A.encoder_frames(A.mel_frames(n)))
    # A remainder too short to have a position (< 3 hops, 30 ms) is dropped; from 3 hops on it is a window.
    assert A.window_frames(2 * A.N_SAMPLES + 479) == [3000, 3000]
    assert A.window_frames(2 * A.N_SAMPLES + 480) == [3000, 3000, 3]
    assert A.audio_positions(2 * A.N_SAMPLES + 479) == 1500
    assert A.audio_positions(2 * A.N_SAMPLES + 480) == 1501


def test_the_encoder_counts_positions_as_the_tokenizer_does(model) -> None:
    samples = [A.samples_for_duration(s) for s in (95.0, 10.0, 60.0, 30.0, 61.0)]
    frames = [sum(A.window_frames(n)) for n in samples]
    assert model.audio.positions(frames) == [A.audio_positions(n) for n in samples]


# --- features --------------------------------------------------------------------------------------------------


def test_each_window_log_mel_equals_the_window_alone() -> None:
    wav = signal(95.0)
    mel = A.windowed_log_mel(wav)
    assert mel.shape == (A.N_MELS, sum(A.window_frames(len(wav))))
    start = 0
    for i, w in enumerate(A.split_windows(wav)):
        alone = A.log_mel_spectrogram(w)
        part = mel[:, start : start + alone.shape[1]]
        assert (part - alone).abs().max().item() <= 1e-6, i
        start += alone.shape[1]
    assert start == mel.shape[1]
    # <= 30 s: exactly log_mel_spectrogram; a remainder under 3 hops leaves no frames behind.
    short = signal(12.0)
    assert torch.equal(A.windowed_log_mel(short), A.log_mel_spectrogram(short))
    assert A.windowed_log_mel(signal(60.0)[: 2 * A.N_SAMPLES]).shape[1] == 6000
    assert A.windowed_log_mel(np.concatenate([signal(60.0), np.zeros(300, np.float32)])).shape[1] == 6000


def _encode(model, mels: list[torch.Tensor]) -> list[torch.Tensor]:
    lengths = [m.shape[1] for m in mels]
    batch = torch.zeros(len(mels), A.N_MELS, max(lengths))
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    with torch.no_grad():
        feats, positions = model.audio(batch, lengths)
    return [feats[i, : int(n)] for i, n in enumerate(positions)]


def test_each_window_encodes_as_the_window_alone(model) -> None:
    wav = signal(95.0, seed=1)
    (joined,) = _encode(model, [A.windowed_log_mel(wav)])
    assert joined.shape[0] == A.audio_positions(len(wav))
    start = 0
    for w in A.split_windows(wav):
        (alone,) = _encode(model, [A.log_mel_spectrogram(w)])
        got = joined[start : start + alone.shape[0]]
        assert (got - alone).abs().max().item() <= 1e-6
        start += alone.shape[0]
    assert start == joined.shape[0]


def test_a_batch_mixing_long_and_short_clips_equals_each_alone(model) -> None:
    long_mel, short_mel = A.windowed_log_mel(signal(95.0, seed=2)), A.windowed_log_mel(signal(10.0, seed=3))
    long_b, short_b = _encode(model, [long_mel, short_mel])
    (long_a,) = _encode(model, [long_mel])
    (short_a,) = _encode(model, [short_mel])
    assert long_b.shape == long_a.shape and short_b.shape == short_a.shape == (250, 64)
    assert (long_b - long_a).abs().max().item() <= 1e-6
    assert (short_b - short_a).abs().max().item() <= 1e-6
    # the short clip first too: the windows re-join by clip, whatever the order
    short_c, long_c = _encode(model, [short_mel, long_mel])
    assert (long_c - long_a).abs().max().item() <= 1e-6 and (short_c - short_a).abs().max().item() <= 1e-6


def test_the_model_fuses_and_generates_with_a_windowed_span(model) -> None:
    wav = signal(65.0, seed=4)
    mel = A.windowed_log_mel(wav)
    n = A.audio_positions(len(wav))
    ids = torch.tensor([[START] + [PAD] * n + [END] + [7, 8, 9]])
    labels = torch.tensor([[-100] * (n + 2) + [7, 8, 9]])
    out = model(ids, torch.ones_like(ids), mel[None], torch.tensor([mel.shape[1]]), labels=labels)
    assert torch.isfinite(out.loss)
    new = model.generate(ids, torch.ones_like(ids), mel[None], torch.tensor([mel.shape[1]]), max_new_tokens=3,
                         eos_token_id=[EOD], pad_token_id=EOD)  # fmt: skip
    assert new.shape == (1, 3)
    with pytest.raises(ValueError, match="tokenizer and audio lengths disagree"):  # a 30-s span for a 65-s clip
        model.embed(torch.tensor([[START] + [PAD] * 750 + [END]]), mel[None], torch.tensor([mel.shape[1]]))


# --- policies --------------------------------------------------------------------------------------------------


def _raw(key: str, seconds: float) -> dict[str, object]:
    buf = io.BytesIO()
    sf.write(buf, signal(seconds), SR, format="FLAC")
    meta = {"task": "asr", "text_language": "en", "target": "hello world", "duration": seconds, "source": "t"}
    return {"__key__": key, "__url__": "mem.tar", "flac": buf.getvalue(), "json": json.dumps(meta).encode()}


def test_window_is_the_default_and_spans_the_whole_clip() -> None:
    raw = _raw("long", 95.0)
    ex = SampleProcessor(_Tok(), train=True, spec_augment=True)(raw, aug_seed=3)
    n = A.audio_positions(A.samples_for_duration(95.0))
    assert ex.input_ids[: n + 2] == _Tok().audio_span_ids(n)
    assert ex.mel.shape == (A.N_MELS, 9500) and ex.duration == pytest.approx(95.0)
    batch = collate([ex, SampleProcessor(_Tok(), train=False)(_raw("short", 4.0))], pad_id=0)
    assert batch["audio_lengths"].tolist() == [9500, 400]
    # SpecAugment masks each 30-s window as a clip of its own: a <= 30 s clip gets exactly the masks it had.
    short = _raw("s", 20.0)
    mel = SampleProcessor(_Tok(), train=True, spec_augment=True)(short, aug_seed=5).mel
    plain = SampleProcessor(_Tok(), train=False)(short).mel
    assert torch.equal(mel, A.spec_augment(plain, generator=torch.Generator().manual_seed(5)))


def test_reject_and_truncate_still_work() -> None:
    raw = _raw("long", 40.0)
    with pytest.raises(SampleError, match=r"'long'.*40\.0 s, longer than the encoder's 30 s.*data.long_audio=window"):
        SampleProcessor(_Tok(), long_audio="reject")(raw)
    ex = SampleProcessor(_Tok(), long_audio="truncate")(raw)
    assert ex.mel.shape[1] == 3000 and ex.input_ids[:752] == _Tok().audio_span_ids(750)


def test_over_max_audio_seconds_is_a_clear_error() -> None:
    raw = _raw("hour", 70.0)
    with pytest.raises(SampleError, match=r"sample 'hour'.*70\.0 s, longer than data\.max_audio_seconds=60; raise"):
        SampleProcessor(_Tok(), max_audio_seconds=60.0)(raw)
    assert SampleProcessor(_Tok(), max_audio_seconds=70.0)(raw).mel.shape[1] == 7000


def test_the_check_accepts_long_clips_under_window(tmp_path) -> None:
    from qwenaudio_train.cli.data import main as data_main
    from qwenaudio_train.data.shards import check_shards

    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tf:
        for key, secs in [("long", 95.0), ("short", 3.0)]:
            raw = _raw(key, secs)
            for ext in ("flac", "json"):
                data = raw[ext]
                assert isinstance(data, bytes)
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    assert check_shards(str(shard))["ok"]
    assert check_shards(str(shard), long_audio="window")["hours"] == pytest.approx(98.0 / 3600, abs=1e-6)
    assert [p["key"] for p in check_shards(str(shard), long_audio="reject")["problems"]] == ["long"]
    assert data_main(["check", str(shard)]) == 0
    assert data_main(["check", "--long-audio", "reject", str(shard)]) == 1


def test_chat_processor_and_load_mel_window_long_clips(tmp_path) -> None:
    from qwenaudio_train import chat as C
    from qwenaudio_train.tokenizer import train_bpe_tokenizer
    from tests.unit.test_chat import CORPUS

    tok = train_bpe_tokenizer(CORPUS, tmp_path / "tok", vocab_size=300)
    wav = tmp_path / "long.wav"
    sf.write(wav, signal(65.0), SR)
    conv = {"key": "c", "messages": [{"role": "user", "content": f"<audio>{wav}</audio>what?"},
                                     {"role": "assistant", "content": "a tone"}]}  # fmt: skip
    ex = C.ChatProcessor(tok, spec_augment=True).process(conv, aug_seed=1)
    n = A.audio_positions(A.samples_for_duration(65.0))
    assert ex.input_ids.count(tok.audio_pad_id) == n == 1625 and ex.mels[0].shape[1] == 6500
    with pytest.raises(SampleError, match=r"'c'.*65\.0 s, longer than the encoder's 30 s"):
        C.ChatProcessor(tok, long_audio="reject").process(conv)
    mel, samples = C.load_mel(wav)
    assert samples == A.samples_for_duration(65.0) and torch.equal(mel, A.windowed_log_mel(A.load_audio(wav)))
    with pytest.raises(A.AudioError, match=r"long\.wav: audio is 65\.0 s; chat takes at most 60 s"):
        C.load_mel(wav, max_audio_seconds=60.0)
