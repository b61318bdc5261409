"""Every audio constant and derived length, in one place (the role of whisper/audio.py).

Owns: sample rate, STFT geometry, the 30-s window, the length formulas of the release (mel frames ->
encoder frames -> audio positions), loading/decoding, resampling, Whisper log-mel and SpecAugment.
Must not: know about tokens, tasks or models.

Data flow: bytes/path --load_audio--> float32 mono 16 kHz --log_mel_spectrogram--> [n_mels, samples // 160]
--spec_augment (training only)--> encoder. Clips longer than 30 s are the caller's decision: `windowed_log_mel`
gives the mel of consecutive 30-s windows (each computed as if alone) that the encoder reads window by window
(`window_frames` / `split_frames` are the counts), `split_windows` cuts a waveform into windows (recipes),
`pad_or_trim` reproduces the release's cut.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop
CHUNK_LENGTH = 30  # seconds the encoder's positional table covers
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames
N_MELS = 80  # Whisper-large-v2; 128 for large-v3-style encoders
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames per second
MIN_WINDOW_SAMPLES = 3 * HOP_LENGTH  # 30 ms: the shortest clip (or last window) with an audio position
MAX_AUDIO_SECONDS = 600.0  # data.max_audio_seconds: the longest clip windowed encoding takes

# Decoders soundfile's bundled libsndfile handles; named in error messages so users know what to convert to.
READABLE_FORMATS = "wav/flac/mp3/ogg"


class AudioError(ValueError):
    """A clip that cannot be used. The message names the file or sample and says how to fix it."""


# --------------------------------------------------------------------------------------------------------
# Lengths (the release's formulas; every other module derives its counts from these)
# --------------------------------------------------------------------------------------------------------


def mel_frames(num_samples: int) -> int:
    """Mel frames the release computes for a clip: samples // hop, capped at 30 s."""
    return min(num_samples, N_SAMPLES) // HOP_LENGTH


def encoder_frames(n_mel_frames: int) -> int:
    """Frames after Whisper's conv1 (k3,s1,p1) and conv2 (k3,s2,p1): (L - 1) // 2 + 1."""
    return (n_mel_frames - 1) // 2 + 1


def pooled_frames(n_encoder_frames: int) -> int:
    """Frames after the stride-2 AvgPool1d(2, 2): (T - 2) // 2 + 1."""
    return (n_encoder_frames - 2) // 2 + 1


def window_frames(num_samples: int) -> list[int]:
    """Mel frames of each 30-s window a clip is encoded in: `[samples // hop]` up to 30 s (the release's count),
    beyond that N_FRAMES per full window and `rest // hop` for the last one. A remainder shorter than
    MIN_WINDOW_SAMPLES (3 hops, 30 ms: no audio position) is dropped; a clip of <= 30 s is never cut."""
    if num_samples <= N_SAMPLES:
        return [max(num_samples, 0) // HOP_LENGTH]
    full, rest = divmod(num_samples, N_SAMPLES)
    return [N_FRAMES] * full + ([rest // HOP_LENGTH] if rest >= MIN_WINDOW_SAMPLES else [])


def split_frames(n_mel_frames: int) -> list[int]:
    """The windows of a clip's mel as the encoder reads them: N_FRAMES each, the last holding the rest (the
    inverse of `sum(window_frames(samples))`). A clip of <= 3000 frames is one window."""
    if n_mel_frames <= N_FRAMES:
        return [n_mel_frames]
    full, rest = divmod(n_mel_frames, N_FRAMES)
    return [N_FRAMES] * full + ([rest] if rest else [])


def audio_positions(num_samples: int) -> int:
    """Number of audio positions (pad tokens) a clip of `num_samples` 16 kHz samples occupies.

    The text span is this plus 2 (audio bos/eos). 30 s gives 750 (752 with bos/eos). A longer clip is encoded
    in 30-s windows (`window_frames`) whose positions join into one span: the sum over its windows.
    """
    return sum(pooled_frames(encoder_frames(f)) for f in window_frames(num_samples))


def audio_span_length(num_samples: int) -> int:
    """Length of the `<audio> pad*N </audio>` span in the text: audio positions + bos + eos."""
    return audio_positions(num_samples) + 2


def samples_for_duration(seconds: float, sr: int = SAMPLE_RATE) -> int:
    """Number of samples of `seconds` of audio at `sr` (rounded, so 0.1 s is 1600 and not 1599)."""
    if seconds < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {seconds}")
    return int(round(seconds * sr))


MAX_AUDIO_POSITIONS = audio_positions(N_SAMPLES)  # 750: one 30-s window


# --------------------------------------------------------------------------------------------------------
# Decoding, resampling, encoding
# --------------------------------------------------------------------------------------------------------


def load_audio(
    src: str | os.PathLike[str] | bytes,
    sr: int = SAMPLE_RATE,
    name: str | None = None,
) -> np.ndarray:
    """Decode a file path or encoded bytes (wav, flac, mp3, ogg) to float32 mono at `sr`.

    `name` labels the clip in error messages (a shard key, a manifest id); it defaults to the path, or to
    "<N bytes>" for raw bytes. Stereo is averaged to mono; other rates are resampled with soxr (HQ).
    Raises AudioError for missing, undecodable, truncated, empty or non-finite audio.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = name or f"<{len(src)} bytes>"
        handle: str | io.BytesIO = io.BytesIO(bytes(src))
    else:
        path = os.fspath(src)
        label = name or path
        if not os.path.isfile(path):
            raise AudioError(f"{label}: audio file not found at {path!r}; fix the path or the manifest entry")
        handle = path

    try:
        with sf.SoundFile(handle) as f:
            in_sr, fmt, declared = f.samplerate, f.format, f.frames
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        # libsndfile's message for BytesIO input contains the object's repr: keep only its error string.
        reason = (getattr(e, "error_string", None) or str(e)).strip().rstrip(".")
        raise AudioError(
            f"{label}: not a readable audio file ({READABLE_FORMATS}): {reason}; "
            "re-encode it (e.g. to 16 kHz FLAC) or drop the sample"
        ) from e

    # Truncated MP3s decode silently up to the cut (FLAC raises "lost sync" by itself). MP3 headers give only
    # an estimate of the length, so allow 1% there; exact-length formats must decode completely.
    shortfall = declared - data.shape[0]
    if shortfall > (declared // 100 if fmt == "MP3" else 0):
        raise AudioError(
            f"{label}: truncated audio: the header declares {declared} frames but only {data.shape[0]} "
            "decode; re-download or re-encode the file"
        )
    if data.shape[0] == 0:
        raise AudioError(f"{label}: contains no audio samples (empty); drop the sample from the manifest")

    wav = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise AudioError(f"{label}: contains NaN or infinite samples; re-encode it as PCM (e.g. 16-bit FLAC)")
    if in_sr != sr:
        wav = soxr.resample(wav, in_sr, sr, quality="HQ")
    return np.ascontiguousarray(wav, dtype=np.float32)


def encode_flac(wav: np.ndarray | torch.Tensor, sr: int = SAMPLE_RATE) -> bytes:
    """Encode a mono float waveform in [-1, 1] as 16-bit PCM FLAC bytes (what the shard writers store)."""
    x = _as_numpy(wav)
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"encode_flac expects a non-empty mono 1-D waveform, got shape {tuple(x.shape)}")
    # libsndfile does not clip on float -> int conversion by default: out-of-range samples would wrap around.
    x = np.clip(x, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------
# Windows: long audio is split by the caller, not silently cut
# --------------------------------------------------------------------------------------------------------


def pad_or_trim(wav: np.ndarray | torch.Tensor, length: int = N_SAMPLES) -> np.ndarray | torch.Tensor:
    """Zero-pad or cut the last axis to `length` samples (the release's 30-s cut). Keeps the array type."""
    n = wav.shape[-1]
    if isinstance(wav, torch.Tensor):
        return wav[..., :length] if n >= length else F.pad(wav, (0, length - n))
    if n >= length:
        return wav[..., :length]
    widths = [(0, 0)] * (wav.ndim - 1) + [(0, length - n)]
    return np.pad(wav, widths)


def split_windows(
    wav: np.ndarray,
    window_s: float = float(CHUNK_LENGTH),
    sr: int = SAMPLE_RATE,
    min_window_s: float = 0.0,
) -> list[np.ndarray]:
    """Split a 1-D waveform into consecutive windows of `window_s` seconds; the last one holds the remainder.

    65 s gives windows of 30, 30 and 5 s. Windows are views into `wav` (no copy). A remainder shorter than
    `min_window_s` is dropped: below 30 ms a window has 0 audio positions and cannot be encoded.
    """
    x = np.asarray(wav)
    if x.ndim != 1:
        raise ValueError(f"split_windows expects a 1-D waveform, got shape {x.shape}")
    size = samples_for_duration(window_s, sr)
    if size <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    min_size = samples_for_duration(min_window_s, sr)
    windows = [x[i : i + size] for i in range(0, x.shape[0], size)]
    return [w for w in windows if w.shape[0] >= max(min_size, 1)]


# --------------------------------------------------------------------------------------------------------
# Whisper log-mel
# --------------------------------------------------------------------------------------------------------


@functools.cache
def _mel_filters_cached(n_mels: int) -> torch.Tensor:
    # The arguments WhisperFeatureExtractor uses: librosa.filters.mel(sr=16000, n_fft=400, fmin=0, fmax=8000,
    # htk=False, norm="slaney"), i.e. Slaney's mel scale *and* Slaney's unit-area norm (the transformers default,
    # mel_scale="htk", norm=None, would give other filters). Computed in float64, stored as float32 like
    # Whisper's mel_filters.npz; transposed from transformers' [freq, mel] to [mel, freq].
    from transformers.audio_utils import mel_filter_bank

    weights = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(np.ascontiguousarray(weights.T, dtype=np.float32))


def mel_filters(n_mels: int = N_MELS) -> torch.Tensor:
    """Whisper's slaney mel filterbank, [n_mels, N_FFT // 2 + 1] float32 (a copy: the cached one is shared)."""
    if n_mels <= 0:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
    return _mel_filters_cached(n_mels).clone()


def log_mel_spectrogram(
    wav: torch.Tensor | np.ndarray,
    n_mels: int = N_MELS,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Whisper log-mel of a waveform [samples] -> [n_mels, samples // 160], or [B, samples] -> [B, n_mels, L].

    Computed on the real length (no 30-s padding: compute follows length). Frame i is exactly frame i of the
    release, which zero-pads every clip to 30 s before the STFT and slices afterwards: the frames we keep
    reach at most 40 samples past the end of the clip, so appending up to 200 zeros (never past 30 s) before
    torch's reflect padding gives the same numbers as padding to 480000. Exactly-30-s windows therefore
    reflect at the end, as Whisper does. Clips longer than 30 s are not cut (the caller decides:
    `split_windows` or `pad_or_trim`).

    The max-8 floor is taken per clip over its own frames (the release takes it over the padded 3000
    frames, whose padding lies below the floor anyway). A batch must hold clips of one length; each row is
    floored on its own, so a row equals the clip computed alone.
    """
    x = wav if isinstance(wav, torch.Tensor) else torch.from_numpy(np.asarray(wav))
    if x.ndim not in (1, 2):
        raise ValueError(f"log_mel_spectrogram expects [samples] or [batch, samples], got {tuple(x.shape)}")
    # Integer PCM (e.g. int16) would silently give a spectrum 90 dB too loud: demand floats in [-1, 1].
    if not x.is_floating_point():
        raise ValueError(f"log_mel_spectrogram expects a float waveform in [-1, 1], got dtype {x.dtype}")
    x = x.to(device=device if device is not None else x.device, dtype=torch.float32)

    n = x.shape[-1]
    n_frames = n // HOP_LENGTH
    if n_frames == 0:
        return x.new_zeros(*x.shape[:-1], n_mels, 0)
    if n < N_SAMPLES:
        x = F.pad(x, (0, min(N_SAMPLES - n, N_FFT // 2)))

    window = torch.hann_window(N_FFT, device=x.device)
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, center=True, pad_mode="reflect", return_complex=True)
    # Keep n // hop frames: this drops Whisper's last frame and any frame centred in the appended zeros.
    spec = stft[..., :n_frames]
    power = spec.real.square() + spec.imag.square()  # |X|^2 without the sqrt of abs(): ~4x faster, same to 1e-7
    mel = _mel_filters_cached(n_mels).to(x.device) @ power

    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


# Frames of the release's padded log-mel that `release_log_mel` keeps past a clip's end: the release's encoder
# reads at most frame L + 1 of a clip of L frames (its conv stack on the batch cut to an even length).
RELEASE_CARRY_FRAMES = 2


def release_log_mel(wav: torch.Tensor | np.ndarray, n_mels: int = N_MELS) -> torch.Tensor:
    """The release's front-end for one clip, for evaluating released checkpoints as the release does:
    [n_mels, L + RELEASE_CARRY_FRAMES] with L = `mel_frames(samples)`.

    The release pads (or cuts) every clip to 30 s *before* the log-mel, so its max-8 floor is taken over all 3000
    frames, the frames after the clip's end included (a loud ending leaks into frame L, which can lift the floor:
    `log_mel_spectrogram` differs there by up to ~0.2 on ~1% of clips), and its encoder's last convolution window
    reads that padded log-mel instead of zeros. Frames [0, L) are the release's; the carried frames are what its
    encoder reads past the end (zeros past 30 s, where the release's cut gives the conv's zero padding). An encoder
    with `release_compat` on takes these lengths and subtracts the carry.
    """
    x = wav if isinstance(wav, torch.Tensor) else torch.from_numpy(np.asarray(wav))
    if x.ndim != 1:
        raise ValueError(f"release_log_mel expects a 1-D waveform, got shape {tuple(x.shape)}")
    n_frames = mel_frames(x.shape[0])
    mel = log_mel_spectrogram(pad_or_trim(x, N_SAMPLES), n_mels=n_mels)  # [n_mels, 3000], floored over all
    keep = n_frames + RELEASE_CARRY_FRAMES
    return F.pad(mel[:, :keep], (0, max(0, keep - mel.shape[1])))


def windowed_log_mel(
    wav: torch.Tensor | np.ndarray, n_mels: int = N_MELS, device: str | torch.device | None = None, **options: Any
) -> torch.Tensor:
    """Log-mel of a clip of any length as the encoder reads it: [n_mels, sum(window_frames(samples))].

    Up to 30 s this is `log_mel_spectrogram(wav)`. A longer clip is cut into consecutive 30-s windows (the last
    holds the rest; a remainder under MIN_WINDOW_SAMPLES is dropped, see `window_frames`) and each window's
    log-mel is computed as if it were a clip of its own (its own STFT edges and max-8 floor), so a window's
    frames equal that window encoded alone; the windows are concatenated along time. `options` go to
    `log_mel_spectrogram` unchanged.
    """
    x = wav if isinstance(wav, torch.Tensor) else torch.from_numpy(np.asarray(wav))
    if x.ndim != 1:
        raise ValueError(f"windowed_log_mel expects one clip [samples], got {tuple(x.shape)}")
    n = x.shape[0]
    if n <= N_SAMPLES:
        return log_mel_spectrogram(x, n_mels=n_mels, device=device, **options)
    full, rest = divmod(n, N_SAMPLES)
    # The full windows as one batch: log_mel_spectrogram floors each row on its own, so a row equals it alone.
    parts = list(log_mel_spectrogram(x[: full * N_SAMPLES].reshape(full, N_SAMPLES), n_mels, device, **options))
    if rest >= MIN_WINDOW_SAMPLES:
        parts.append(log_mel_spectrogram(x[full * N_SAMPLES :], n_mels, device, **options))
    return torch.cat(parts, dim=-1)


def spec_augment_windows(mel: torch.Tensor, generator: torch.Generator | None = None, **options: Any) -> torch.Tensor:
    """SpecAugment of a windowed clip's mel [n_mels, L]: each 30-s window (`split_frames`) is masked as a clip
    of its own, in order, from one `generator`; a clip of <= 30 s gets exactly `spec_augment(mel)`'s masks."""
    parts = torch.split(mel, split_frames(mel.shape[-1]), dim=-1)
    if len(parts) == 1:
        return spec_augment(mel, generator=generator, **options)
    return torch.cat([spec_augment(p, generator=generator, **options) for p in parts], dim=-1)


# --------------------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------------------


def spec_augment(
    mel: torch.Tensor,
    length: int | Sequence[int] | torch.Tensor | None = None,
    freq_mask: int = 27,
    time_mask: int = 100,
    n_freq_masks: int = 1,
    n_time_masks: int = 1,
    generator: torch.Generator | None = None,
    mask_value: float | None = None,
) -> torch.Tensor:
    """LibriSpeech-Basic SpecAugment (Park et al. 2019: F=27, m_F=1, T=100, m_T=1, p=1; no time warp).

    `mel` is [n_mels, L] with `length` an int (real frames; None = all), or [B, n_mels, L] with one length
    per row. Each frequency mask has width f ~ U{0..F} at f0 ~ U{0..n_mels-f}; each time mask has width
    t ~ U{0..min(T, length)} at t0 ~ U{0..length-t}, so masks stay inside the real frames and padding is
    never touched. Returns a new tensor; deterministic given `generator` (CPU).

    Masked value: by default the mean of the clip's real log-mel. The paper fills with 0 on mean-normalised
    features, i.e. with the mean; Whisper's (log10 + 4) / 4 features are not zero-mean (a clip spans
    [peak - 2, peak]), so a literal 0 can lie outside a quiet clip's range. Pass mask_value=0.0 for zeros.
    """
    if mel.ndim == 2:
        if not (length is None or isinstance(length, (int, torch.Tensor))):
            raise ValueError(f"spec_augment of one [n_mels, L] clip takes one length, got {length!r}")
        one = None if length is None else int(length)
        return _spec_augment_one(mel, one, freq_mask, time_mask, n_freq_masks, n_time_masks, generator, mask_value)
    if mel.ndim != 3:
        raise ValueError(f"spec_augment expects [n_mels, L] or [B, n_mels, L], got {tuple(mel.shape)}")
    if length is None:
        lengths: list[int | None] = [None] * mel.shape[0]
    elif isinstance(length, int):
        lengths = [length] * mel.shape[0]
    else:
        lengths = [int(v) for v in (length.tolist() if isinstance(length, torch.Tensor) else length)]
        if len(lengths) != mel.shape[0]:
            raise ValueError(f"spec_augment got {len(lengths)} lengths for a batch of {mel.shape[0]}")
    return torch.stack(
        [
            _spec_augment_one(m, n, freq_mask, time_mask, n_freq_masks, n_time_masks, generator, mask_value)
            for m, n in zip(mel, lengths)
        ]
    )


def _spec_augment_one(
    mel: torch.Tensor,
    length: int | None,
    freq_mask: int,
    time_mask: int,
    n_freq_masks: int,
    n_time_masks: int,
    generator: torch.Generator | None,
    mask_value: float | None,
) -> torch.Tensor:
    n_mels, total = mel.shape
    real = total if length is None else int(length)
    if not 0 <= real <= total:
        raise ValueError(f"spec_augment length {real} outside [0, {total}] frames")
    out = mel.clone()
    if real == 0:
        return out
    fill = out[:, :real].mean() if mask_value is None else torch.tensor(mask_value, dtype=out.dtype)

    def randint(high_inclusive: int) -> int:
        return int(torch.randint(0, high_inclusive + 1, (1,), generator=generator).item())

    for _ in range(n_freq_masks):
        f = randint(min(freq_mask, n_mels))
        f0 = randint(n_mels - f)
        out[f0 : f0 + f, :real] = fill
    for _ in range(n_time_masks):
        t = randint(min(time_mask, real))
        t0 = randint(real - t)
        out[:, t0 : t0 + t] = fill
    return out


def _as_numpy(wav: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return np.ascontiguousarray(wav, dtype=np.float32)
