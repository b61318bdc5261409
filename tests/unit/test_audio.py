"""Audio front-end: release length formulas, decoding/resampling, Whisper log-mel against references,
SpecAugment and windowing. Synthetic tests run everywhere; real-recording tests skip without ../shared."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from qwenaudio_train import audio as A

# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def release_audio_positions(num_samples: int) -> int:
    """Qwen-Audio's release formula, re-implemented independently of qwenaudio_train.audio."""
    mel_len = min(num_samples, 480000) // 160

    def get_T_after_cnn(L_in: int, dilation: int = 1) -> int:
        for padding, kernel_size, stride in [(1, 3, 1), (1, 3, 2)]:
            L_out = L_in + 2 * padding - dilation * (kernel_size - 1) - 1
            L_out = 1 + L_out // stride
            L_in = L_out
        return L_out

    return (get_T_after_cnn(mel_len) - 2) // 2 + 1


def test_signal(num_samples: int, seed: int = 0) -> np.ndarray:
    """Chirp plus noise: energy in every mel band, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / A.SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * (200 + 100 * t) * t) + 0.05 * rng.standard_normal(num_samples)
    return x.astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spectrum.argmax()])


def whisper_extractor(n_mels: int):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels)


# ----------------------------------------------------------------------------------------------------------
# Lengths
# ----------------------------------------------------------------------------------------------------------


def test_audio_positions_match_release_formula() -> None:
    rng = np.random.default_rng(0)
    lengths = list(range(0, 2000)) + [int(v) for v in rng.integers(0, 70 * 16000, 3000)]
    lengths += [479_999, 480_000, 480_001, 16000 * 31, 10**7]
    for n in lengths:
        # Up to 30 s the release's count; a longer clip is encoded in 30-s windows (issue 13): the sum of the
        # release's count over its windows, a last window under 3 hops (no position) dropped.
        windows = [min(n - s, 480_000) for s in range(0, n, 480_000)] if n > 480_000 else [n]
        expected = sum(release_audio_positions(w) for w in windows)
        assert A.audio_positions(n) == expected, n
        assert A.audio_span_length(n) == expected + 2


def test_audio_positions_landmarks() -> None:
    assert A.audio_positions(480_000) == 750
    assert A.audio_span_length(480_000) == 752
    assert A.MAX_AUDIO_POSITIONS == 750
    # > 30 s is encoded in 30-s windows joined into one span (the release cut at 30 s): 30 + 30 + 5 s.
    assert A.audio_positions(16000 * 65) == 750 + 750 + 125
    # Very short clips: below 3 mel frames (480 samples, 30 ms) there is nothing to encode.
    assert A.audio_positions(0) == 0
    assert A.audio_positions(479) == 0
    assert A.audio_positions(480) == 1
    assert A.audio_positions(16000) == 25  # ~25 positions per second
    assert A.mel_frames(16000) == 100 and A.encoder_frames(100) == 50 and A.pooled_frames(50) == 25


def test_samples_for_duration() -> None:
    assert A.samples_for_duration(30.0) == A.N_SAMPLES
    assert A.samples_for_duration(0.1) == 1600  # rounds, not truncates (0.1 * 16000 = 1599.999...)
    assert A.samples_for_duration(1.5, sr=24000) == 36000
    with pytest.raises(ValueError):
        A.samples_for_duration(-1.0)


# ----------------------------------------------------------------------------------------------------------
# Mel filterbank and log-mel against references
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_transformers(n_mels: int) -> None:
    from transformers.audio_utils import mel_filter_bank

    ref = mel_filter_bank(
        num_frequency_bins=201,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=16000,
        norm="slaney",
        mel_scale="slaney",
    ).T
    ours = A.mel_filters(n_mels)
    assert ours.shape == (n_mels, A.N_FFT // 2 + 1) and ours.dtype == torch.float32
    # Measured max diff 9e-10 (80) / 2e-9 (128): float32 rounding of values up to ~0.03.
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-8)


def test_mel_filters_cache_is_not_mutable_from_outside() -> None:
    m = A.mel_filters()
    m.zero_()
    assert A.mel_filters().abs().sum() > 0


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_equals_whisper_extractor_on_30s(n_mels: int) -> None:
    x = test_signal(A.N_SAMPLES)
    ref = whisper_extractor(n_mels)(x, sampling_rate=16000, return_tensors="np").input_features[0]
    ours = A.log_mel_spectrogram(x, n_mels=n_mels)
    assert ours.shape == (n_mels, A.N_FRAMES) and ours.dtype == torch.float32
    # The extractor's torch path is Whisper's float32 computation; measured max diff 0.0.
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_close_to_float64_numpy_reference(n_mels: int) -> None:
    """transformers' numpy path is an independent STFT computed in float64 (no padding here: 30 s exactly)."""
    x = test_signal(A.N_SAMPLES, seed=1)
    ref = whisper_extractor(n_mels)._np_extract_fbank_features(x[None], "cpu")[0]
    ours = A.log_mel_spectrogram(x, n_mels=n_mels).numpy()
    diff = np.abs(ours - ref)
    # Whisper's (and our) float32 STFT loses precision in narrow low-frequency filters (one FFT bin) at low
    # energy: measured max 7.4e-6 (80 mels) and 4.9e-5 (128 mels, in 0.003% of the entries) on this signal,
    # up to 2.2e-5 on the real recordings. Everything else agrees to float32 rounding.
    assert diff.max() < 1e-4
    assert np.mean(diff > 1e-5) < 1e-3
    assert np.median(diff) < 1e-6


@pytest.mark.parametrize("num_samples", [84_007, 84_100, 93_680, 479_990, 500, 1000])
def test_log_mel_of_short_clip_equals_release_pad_then_slice(num_samples: int) -> None:
    """The release zero-pads to 30 s, computes Whisper's log-mel, and keeps samples // 160 frames. We compute
    on the real length and must give the same frames (including the last ones, which see the zeros)."""
    x = test_signal(num_samples, seed=2)
    n_frames = num_samples // A.HOP_LENGTH
    ref = whisper_extractor(80)(x, sampling_rate=16000, return_tensors="np").input_features[0][:, :n_frames]
    ours = A.log_mel_spectrogram(x)
    assert ours.shape == (80, n_frames)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-5)


def test_log_mel_right_edge_sees_zeros_not_reflection() -> None:
    """With fewer than 40 samples after the last full hop, the last kept frame reaches past the end of the
    clip. The release sees zeros there; a plain reflect-padded STFT of the unpadded clip would differ."""
    x = test_signal(84_007, seed=3)  # 84_007 % 160 == 7
    unpadded = whisper_extractor(80)._np_extract_fbank_features(x[None], "cpu")[0]
    ours = A.log_mel_spectrogram(x).numpy()
    assert np.abs(ours[:, :-1] - unpadded[:, :-1]).max() < 1e-4
    assert np.abs(ours[:, -1] - unpadded[:, -1]).max() > 1e-3


@pytest.mark.parametrize("n_mels", [80, 128])  # 80: Qwen-Audio (Whisper-large-v2); 128: Qwen2-Audio (large-v3)
def test_log_mel_real_recordings_equal_release(real_audio_dir: Path, n_mels: int) -> None:
    """Every real recording (speech flac/wav/mp3, a sound effect, 30 s of music), on its real frames: equal to
    transformers' WhisperFeatureExtractor(feature_size=n_mels) to 1e-5 (measured 1.2e-7 for both bin counts)."""
    fe = whisper_extractor(n_mels)
    names = ["1272-128104-0000.flac", "1089_134686_000007_000004.wav", "es.mp3", "glass-breaking-151256.mp3"]
    for name in [*names, "music.wav"]:
        x = A.load_audio(real_audio_dir / name)[: A.N_SAMPLES]  # the extractor cuts at 30 s
        ref = fe(x, sampling_rate=16000, return_tensors="np").input_features[0][:, : len(x) // 160]
        ours = A.log_mel_spectrogram(x, n_mels=n_mels).numpy()
        assert ours.shape == (n_mels, len(x) // 160), name
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5, err_msg=name)


def test_log_mel_shapes_batch_and_inputs() -> None:
    x = test_signal(50_000, seed=4)
    y = test_signal(50_000, seed=5) * 0.1
    single = A.log_mel_spectrogram(x)
    assert single.shape == (80, 50_000 // 160)
    batch = A.log_mel_spectrogram(torch.from_numpy(np.stack([x, y])))
    assert batch.shape == (2, 80, 312)
    # Each row is floored on its own (a quiet clip is not floored by a loud neighbour).
    torch.testing.assert_close(batch[0], single, rtol=0, atol=1e-6)
    torch.testing.assert_close(batch[1], A.log_mel_spectrogram(y), rtol=0, atol=1e-6)
    # float64 and torch input give the same result; integers are refused.
    torch.testing.assert_close(A.log_mel_spectrogram(x.astype(np.float64)), single)
    with pytest.raises(ValueError, match="float"):
        A.log_mel_spectrogram((x * 32767).astype(np.int16))
    # No frame yet: an empty [n_mels, 0] rather than an error.
    assert A.log_mel_spectrogram(np.zeros(100, np.float32)).shape == (80, 0)
    # Longer than 30 s is not cut: the caller decides.
    assert A.log_mel_spectrogram(test_signal(16000 * 31)).shape == (80, 3100)


def test_log_mel_dynamic_range() -> None:
    # A tone with silence around it: the floor is exactly peak - 8 in log10, i.e. 2.0 after (x + 4) / 4.
    x = np.zeros(32000, np.float32)
    x[8000:24000] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    mel = A.log_mel_spectrogram(x)
    assert torch.isclose(mel.max() - mel.min(), torch.tensor(2.0), atol=1e-6)
    # The loudest band is the one whose filter peaks nearest 1 kHz.
    assert int(mel[:, 100].argmax()) == int(A.mel_filters()[:, round(1000 / 40)].argmax())


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------


def test_load_resamples_and_downmixes_synthetic_stereo(tmp_path: Path) -> None:
    sr_in, seconds = 44100, 2.0
    t = np.arange(int(sr_in * seconds)) / sr_in
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), sr_in, subtype="PCM_16")

    wav = A.load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 32000) <= 1
    assert peak_hz(wav, 16000) == pytest.approx(440.0, abs=0.5)
    # Mono is the channel mean: amplitude 0.35, RMS 0.35 / sqrt(2) (away from the resampler's edges).
    assert np.sqrt(np.mean(wav[1000:-1000] ** 2)) == pytest.approx(0.35 / np.sqrt(2), rel=0.01)
    # Other target rates work too, and bytes decode like the path.
    assert abs(len(A.load_audio(path, sr=8000)) - 16000) <= 1
    np.testing.assert_array_equal(A.load_audio(path.read_bytes()), wav)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_load_compressed_formats(fmt: str) -> None:
    t = np.arange(48000) / 48000
    buf = io.BytesIO()
    sf.write(buf, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000, format=fmt)
    wav = A.load_audio(buf.getvalue(), name=f"tone.{fmt.lower()}")
    assert abs(len(wav) - 16000) <= 1
    assert peak_hz(wav, 16000) == pytest.approx(440.0, abs=1.0)


def test_load_real_recordings(real_audio_dir: Path) -> None:
    flac = A.load_audio(real_audio_dir / "1272-128104-0000.flac")
    assert flac.dtype == np.float32 and flac.ndim == 1
    assert len(flac) == 93_680  # 16 kHz already: no resampling, 5.855 s
    ref, sr = sf.read(real_audio_dir / "1272-128104-0000.flac", dtype="float32")
    assert sr == 16000
    np.testing.assert_array_equal(flac, ref)

    wav24 = A.load_audio(str(real_audio_dir / "1089_134686_000007_000004.wav"))
    assert abs(len(wav24) - 9 * 16000) <= 1
    orig, _ = sf.read(real_audio_dir / "1089_134686_000007_000004.wav", dtype="float32")
    # Speech has almost no energy above 8 kHz: resampling keeps the RMS.
    assert np.sqrt(np.mean(wav24**2)) == pytest.approx(np.sqrt(np.mean(orig**2)), rel=0.02)

    glass = A.load_audio(real_audio_dir / "glass-breaking-151256.mp3")  # 48 kHz stereo
    assert glass.ndim == 1 and len(glass) / 16000 == pytest.approx(4.03, abs=0.01)

    es = A.load_audio((real_audio_dir / "es.mp3").read_bytes(), name="es.mp3")
    assert es.ndim == 1 and len(es) / 16000 == pytest.approx(8.32, abs=0.01)


def test_music_longer_than_30s_splits_into_windows(real_audio_dir: Path) -> None:
    music = A.load_audio(real_audio_dir / "music.wav")
    windows = A.split_windows(music)
    assert [len(w) for w in windows[:3]] == [A.N_SAMPLES] * 3
    assert len(windows) == 4 and len(windows[3]) == len(music) - 3 * A.N_SAMPLES
    assert [A.audio_positions(len(w)) for w in windows[:3]] == [750] * 3
    assert A.log_mel_spectrogram(windows[0]).shape == (80, 3000)


# ----------------------------------------------------------------------------------------------------------
# Errors name the file and the fix
# ----------------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "clip-17.flac"
    with pytest.raises(A.AudioError, match="clip-17.flac.*not found"):
        A.load_audio(path)
    with pytest.raises(A.AudioError, match="not found"):
        A.load_audio(tmp_path)  # a directory is not an audio file


def test_undecodable_bytes() -> None:
    junk = np.random.default_rng(0).bytes(5000)
    with pytest.raises(A.AudioError, match=r"shard-3/utt-9: not a readable audio file \(wav/flac/mp3/ogg\)"):
        A.load_audio(junk, name="shard-3/utt-9")
    with pytest.raises(A.AudioError, match="not a readable audio file"):
        A.load_audio(b"")
    assert issubclass(A.AudioError, ValueError)


def test_truncated_flac_file(tmp_path: Path) -> None:
    data = A.encode_flac(test_signal(32000))
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(A.AudioError, match="cut.flac: not a readable audio file"):
        A.load_audio(path)


def test_truncated_mp3_is_detected() -> None:
    buf = io.BytesIO()
    sf.write(buf, test_signal(48000), 48000, format="MP3")
    data = buf.getvalue()
    with pytest.raises(A.AudioError, match="cut.mp3: truncated audio"):
        A.load_audio(data[: len(data) // 2], name="cut.mp3")


def test_empty_and_non_finite_audio(tmp_path: Path) -> None:
    path = tmp_path / "silence-of-nothing.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(A.AudioError, match="silence-of-nothing.wav: contains no audio samples"):
        A.load_audio(path)
    buf = io.BytesIO()
    sf.write(buf, np.array([0.1, np.nan] * 100, np.float32), 16000, format="WAV", subtype="FLOAT")
    with pytest.raises(A.AudioError, match="nan.wav: contains NaN"):
        A.load_audio(buf.getvalue(), name="nan.wav")


# ----------------------------------------------------------------------------------------------------------
# FLAC encoding for shard writers
# ----------------------------------------------------------------------------------------------------------


def test_encode_flac_round_trip() -> None:
    x = np.clip(test_signal(40_000, seed=6), -0.99, 0.99)
    data = A.encode_flac(x)
    assert data[:4] == b"fLaC"
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    back = A.load_audio(data)
    assert back.shape == x.shape
    assert np.abs(back - x).max() <= 1.0 / 32768 + 1e-7  # 16-bit quantisation
    # Torch input works; out-of-range samples clip instead of wrapping around.
    loud = A.load_audio(A.encode_flac(torch.tensor([0.0, 1.5, -1.5, 0.5])))
    assert loud[1] > 0.99 and loud[2] < -0.99
    with pytest.raises(A.AudioError):
        A.encode_flac(np.zeros((10, 2), np.float32))


# ----------------------------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------------------------


def test_split_windows_65s() -> None:
    x = np.arange(65 * 16000, dtype=np.float32)
    windows = A.split_windows(x)
    assert [len(w) / 16000 for w in windows] == [30.0, 30.0, 5.0]
    np.testing.assert_array_equal(np.concatenate(windows), x)
    assert [len(w) for w in A.split_windows(x, window_s=20.0)] == [320_000] * 3 + [80_000]
    # Short remainders can be dropped; exact multiples give no empty tail.
    assert len(A.split_windows(x[: 60 * 16000 + 100], min_window_s=0.03)) == 2
    assert len(A.split_windows(x[: 60 * 16000])) == 2
    assert A.split_windows(np.zeros(0, np.float32)) == []


def test_pad_or_trim() -> None:
    x = np.ones(100, np.float32)
    assert A.pad_or_trim(x, 160).shape == (160,) and A.pad_or_trim(x, 160)[100:].sum() == 0
    assert A.pad_or_trim(x, 50).shape == (50,)
    assert A.pad_or_trim(np.ones((2, 100), np.float32), 120).shape == (2, 120)
    t = A.pad_or_trim(torch.ones(2, 100), 130)
    assert isinstance(t, torch.Tensor) and t.shape == (2, 130) and t[:, 100:].sum() == 0
    assert A.pad_or_trim(torch.ones(700_000)).shape == (A.N_SAMPLES,)


# ----------------------------------------------------------------------------------------------------------
# SpecAugment
# ----------------------------------------------------------------------------------------------------------


def _mel(frames: int = 500, seed: int = 7) -> torch.Tensor:
    return A.log_mel_spectrogram(test_signal(frames * 160, seed=seed))


def test_spec_augment_deterministic_and_within_length() -> None:
    mel = _mel()
    original = mel.clone()
    a = A.spec_augment(mel, length=300, generator=torch.Generator().manual_seed(0))
    b = A.spec_augment(mel, length=300, generator=torch.Generator().manual_seed(0))
    assert a.shape == mel.shape
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(mel, original, rtol=0, atol=0)  # input untouched
    changed = a != mel
    assert changed.any()
    assert not changed[:, 300:].any()  # padding frames never masked
    # Masked cells hold the clip's mean over its real frames.
    fill = mel[:, :300].mean()
    assert torch.allclose(a[changed], fill.expand(int(changed.sum())))
    c = A.spec_augment(mel, length=300, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, c)


def test_spec_augment_mask_geometry_over_many_seeds() -> None:
    mel = _mel(400)
    for seed in range(50):
        out = A.spec_augment(mel, length=250, generator=torch.Generator().manual_seed(seed), mask_value=-9.0)
        masked = out == -9.0
        assert not masked[:, 250:].any()
        full_rows = masked[:, :250].all(dim=1)  # frequency-masked bands
        full_cols = masked.all(dim=0)  # time-masked frames
        assert int(full_rows.sum()) <= 27
        assert int(full_cols.sum()) <= 100
        # Every masked cell belongs to a masked band or a masked frame (no stray cells).
        assert torch.equal(masked, (full_rows[:, None] & (torch.arange(400) < 250)) | full_cols[None, :])
    # A time mask never exceeds a short clip's length.
    short = A.spec_augment(mel, length=20, generator=torch.Generator().manual_seed(3), mask_value=-9.0)
    assert not (short[:, 20:] == -9.0).any()


def test_spec_augment_batch_with_lengths() -> None:
    batch = torch.stack([_mel(seed=8), _mel(seed=9)])
    gen = torch.Generator().manual_seed(0)
    out = A.spec_augment(batch, length=torch.tensor([500, 200]), generator=gen, mask_value=0.0)
    assert out.shape == batch.shape
    assert torch.equal(out[1, :, 200:], batch[1, :, 200:])
    assert (out != batch).any()
    # Same as augmenting row by row with the same generator stream.
    gen = torch.Generator().manual_seed(0)
    rows = [A.spec_augment(batch[i], length=n, generator=gen, mask_value=0.0) for i, n in enumerate([500, 200])]
    torch.testing.assert_close(out, torch.stack(rows), rtol=0, atol=0)
    with pytest.raises(ValueError):
        A.spec_augment(batch, length=[10])
    with pytest.raises(ValueError):
        A.spec_augment(batch[0], length=501)
