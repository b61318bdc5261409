"""`release_compat`: the release's front-end and encoder edge, for scoring released checkpoints as the release does.

The references below follow the release's own steps (QwenLM/Qwen-Audio `audio.py`: `pad_or_trim` to 30 s, then
`log_mel_spectrogram`: STFT, `[..., :-1]`, the max-8 floor over all 3000 frames; `AudioEncoder.forward`: the batch
cut to the longest clip's `2 * T` frames, GELU convolutions on the padded log-mel, positions, frames past `T` zeroed,
padded keys masked with -inf, pool, ln_post, proj; `process_audio`: `mel_len = min(samples, 480000) // 160`). They
are written here step by step, independently of `audio.log_mel_spectrogram` and `AudioEncoder.encode_frames`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qwenaudio_train import audio as A
from qwenaudio_train.model import ModelConfig, build_model


def reference_log_mel(wav: np.ndarray) -> torch.Tensor:
    """The release's front-end: [80, 3000] of the clip zero-padded (or cut) to 30 s."""
    x = torch.from_numpy(np.asarray(wav, dtype=np.float32))
    x = x[: A.N_SAMPLES] if x.shape[0] >= A.N_SAMPLES else F.pad(x, (0, A.N_SAMPLES - x.shape[0]))
    stft = torch.stft(x, A.N_FFT, A.HOP_LENGTH, window=torch.hann_window(A.N_FFT), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    log_spec = torch.clamp(A.mel_filters(80) @ magnitudes, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def reference_encode(audio, mels: torch.Tensor, mel_lens: list[int]) -> list[torch.Tensor]:
    """The release's encoder forward over a batch of [A, 80, 3000] padded log-mels -> per clip [N_i, H]."""
    t = [(n - 1) // 2 + 1 for n in mel_lens]  # get_T_after_cnn
    x = mels[:, :, : 2 * max(t)]  # audio_lengths[:, 0] * 2, the batch's max
    x = F.gelu(audio.conv1(x))
    x = F.gelu(audio.conv2(x)).permute(0, 2, 1)
    x = x + audio.embed_positions.weight[: x.shape[1]]
    pad = torch.arange(x.shape[1])[None, :] >= torch.tensor(t)[:, None]
    x = x.masked_fill(pad[:, :, None], 0.0)
    mask = torch.zeros(pad.shape[0], 1, 1, pad.shape[1]).masked_fill(pad[:, None, None, :], float("-inf"))
    for layer in audio.layers:
        x = layer(x, mask)
    x = F.avg_pool1d(x.permute(0, 2, 1), 2, 2).permute(0, 2, 1)
    x = audio.proj(audio.ln_post(x))
    return [x[i, : (ti - 2) // 2 + 1] for i, ti in enumerate(t)]


def _clips() -> list[np.ndarray]:
    """Clips of odd and even mel length; the second ends on a loud burst (the boundary frame lifts the floor)."""
    g = np.random.default_rng(0)
    # 16159 samples = 100 frames + 159: a burst in the last 110 samples is seen only by frame 100, which the
    # release keeps (its floor is over the padded 3000 frames) and which is past the clip's own 100 frames.
    quiet_then_loud = 0.001 * g.standard_normal(16159)
    quiet_then_loud[-110:] = 0.9 * g.standard_normal(110)
    return [
        (0.1 * g.standard_normal(12345)).astype(np.float32),  # 77 mel frames (odd)
        quiet_then_loud.astype(np.float32),  # 100 frames (even), ends loudly
        (0.1 * g.standard_normal(20800)).astype(np.float32),  # 130 frames (even)
        (0.1 * g.standard_normal(A.N_SAMPLES + 999)).astype(np.float32),  # over 30 s: cut, 3000 frames
    ]


def test_release_log_mel_equals_the_release_front_end():
    for wav in _clips():
        ref = reference_log_mel(wav)
        n = A.mel_frames(len(wav))
        ours = A.release_log_mel(wav)
        assert ours.shape == (80, n + A.RELEASE_CARRY_FRAMES)
        torch.testing.assert_close(ours[:, :n], ref[:, :n], rtol=0, atol=1e-5)
        carried = F.pad(ref, (0, A.RELEASE_CARRY_FRAMES))[:, n : n + A.RELEASE_CARRY_FRAMES]
        torch.testing.assert_close(ours[:, n:], carried, rtol=0, atol=1e-5)
    # The loud ending: the release's floor (over the padded 30 s) differs from the floor over the real frames.
    loud = _clips()[1]
    n = A.mel_frames(len(loud))
    assert (A.log_mel_spectrogram(loud) - reference_log_mel(loud)[:, :n]).abs().max() > 1e-2


def test_release_log_mel_on_real_recordings(real_audio_dir):
    files = sorted(p for p in real_audio_dir.iterdir() if p.suffix in (".wav", ".flac", ".mp3"))
    assert files
    for path in files:
        wav = A.load_audio(path.read_bytes(), name=path.name)[: A.N_SAMPLES]
        n = A.mel_frames(len(wav))
        torch.testing.assert_close(A.release_log_mel(wav)[:, :n], reference_log_mel(wav)[:, :n], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def audio():
    torch.manual_seed(0)
    cfg = ModelConfig(preset="tiny", vocab_size=320, audio_pad_id=300, audio_start_id=301, audio_end_id=302, eod_id=303)
    encoder = build_model(cfg).audio.eval()
    with torch.no_grad():  # realistic scales: the tiny init is near zero, which would hide the edge
        for p in encoder.parameters():
            if p.requires_grad and p.dim() > 1:
                p.normal_(0.0, 0.2)
    return encoder


def _encode(audio, mels: list[torch.Tensor], compat: bool) -> list[torch.Tensor]:
    lengths = [m.shape[1] for m in mels]
    batch = torch.zeros(len(mels), 80, max(lengths))
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    audio.release_compat = compat
    try:
        feats, positions = audio(batch, lengths)
        assert positions.tolist() == [A.audio_positions(n * A.HOP_LENGTH) for n in audio._real_lengths(lengths)]
    finally:
        audio.release_compat = False
    return [feats[i, :n] for i, n in enumerate(positions.tolist())]


@torch.no_grad()
def test_compat_encoder_equals_the_release_per_clip_and_batched(audio):
    clips = _clips()
    lens = [A.mel_frames(len(w)) for w in clips]
    padded = torch.stack([reference_log_mel(w) for w in clips])
    # Batched (the release's output depends on the batch: each clip's edge reads the padded log-mel) and alone.
    for batch in ([0, 1, 2, 3], [0, 2], [1], [0]):
        ref = reference_encode(audio, padded[batch], [lens[i] for i in batch])
        ours = _encode(audio, [A.release_log_mel(clips[i]) for i in batch], compat=True)
        for r, o in zip(ref, ours):
            torch.testing.assert_close(o, r, rtol=0, atol=1e-5)
    # Without the mode a clip of odd length in a batch differs from the release (it is encoded as if alone).
    ref = reference_encode(audio, padded[[0, 2]], [lens[0], lens[2]])
    plain = _encode(audio, [A.log_mel_spectrogram(clips[0]), A.log_mel_spectrogram(clips[2])], compat=False)
    assert (plain[0] - ref[0]).abs().max() > 1e-3


@torch.no_grad()
def test_eval_processor_and_model_in_compat_mode_equal_the_release(shared_spec, audio):
    """The eval path (`qwenaudio-eval audio.release_compat=true`): SampleProcessor's example + collate + the
    model's encoder give the release's per-clip features, and the audio span the release's token count."""
    from qwenaudio_train.data.processing import SampleProcessor, collate
    from qwenaudio_train.data.schema import SampleMeta
    from qwenaudio_train.tokenizer import load_tokenizer

    tok = load_tokenizer(shared_spec / "qwen.tiktoken")
    processor = SampleProcessor(tok, train=False, release_compat=True)
    clips = _clips()
    examples = []
    for i, wav in enumerate(clips):
        meta = SampleMeta("asr", "en", "hello world", len(wav) / A.SAMPLE_RATE, "librispeech/test-clean", "en")
        raw = {"__key__": f"c{i}", "flac": A.encode_flac(wav), "json": meta.to_json()}
        examples.append(processor(raw))
    batch = collate(examples, tok.eod_id, left_pad=True)
    decoded = [A.load_audio(A.encode_flac(w), name="clip") for w in clips]  # what the processor decoded
    lens = [A.mel_frames(len(w)) for w in decoded]
    for ex, n in zip(examples, lens):  # the release's span: audio_token_num + 2 of process_audio
        t = (n - 1) // 2 + 1
        assert ex.input_ids.count(tok.audio_pad_id) == (t - 2) // 2 + 1
    ref = reference_encode(audio, torch.stack([reference_log_mel(w) for w in decoded]), lens)
    audio.release_compat = True
    try:
        feats, positions = audio(batch["audio_features"], batch["audio_lengths"])
    finally:
        audio.release_compat = False
    for i, r in enumerate(ref):
        torch.testing.assert_close(feats[i, : positions[i]], r, rtol=0, atol=1e-5)


def test_chat_front_end_in_compat_mode(tmp_path):
    """`chat()` / `qwenaudio-chat --release-compat` read a file the release's way: cut at 30 s, the release's log-mel;
    the span counts the release's positions."""
    from qwenaudio_train.chat.inference import load_mel

    wav = _clips()[3]  # over 30 s
    path = tmp_path / "long.flac"
    path.write_bytes(A.encode_flac(wav))
    decoded = A.load_audio(path.read_bytes(), name="long.flac")
    mel, samples = load_mel(path, release_compat=True)
    assert samples == A.N_SAMPLES
    torch.testing.assert_close(mel, A.release_log_mel(decoded[: A.N_SAMPLES]), rtol=0, atol=0)
    n = A.mel_frames(samples)
    torch.testing.assert_close(mel[:, :n], reference_log_mel(decoded)[:, :n], rtol=0, atol=1e-5)
    plain, plain_samples = load_mel(path)  # the default reads it whole, in 30-s windows
    assert plain_samples == len(decoded) and plain.shape[1] == A.mel_frames(len(decoded) - A.N_SAMPLES) + 3000
