"""Unit tests of qwenaudio_train.model on tiny CPU models: encoder lengths and padding, the stock-forward
equivalence, fusion, loss, loading/saving and greedy generation. No network, no real checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qwenaudio_train import audio as A
from qwenaudio_train.model import (
    IGNORE_INDEX,
    AudioEncoder,
    ModelConfig,
    QwenAudioModel,
    build_model,
    build_whisper_encoder,
    whisper_config_from_dims,
)

VOCAB = 320
PAD, START, END, EOD = 300, 301, 302, 303  # audio pad, <audio>, </audio>, <|endoftext|>
N_MELS = 80


def tiny_cfg(**overrides) -> ModelConfig:
    kwargs = dict(preset="tiny", vocab_size=VOCAB, audio_pad_id=PAD, audio_start_id=START, audio_end_id=END, eod_id=EOD)
    kwargs.update(overrides)
    return ModelConfig(**kwargs)


@pytest.fixture(scope="module")
def model() -> QwenAudioModel:
    torch.manual_seed(0)
    return build_model(tiny_cfg()).eval()


def make_batch(rows: list[list[object]], mel_lengths: list[int], seed: int = 0, left_pad: bool = False):
    """rows: per row a list of ints (text token counts) and "a" (the next clip). Returns input_ids,
    attention_mask, labels (targets = text tokens after the last clip of the row), mel [A, 80, Lmax], lengths."""
    g = torch.Generator().manual_seed(seed)
    clip = iter(mel_lengths)
    seqs, labs = [], []
    for row in rows:
        ids: list[int] = []
        lab: list[int] = []
        for item in row:
            if item == "a":
                n = A.pooled_frames(A.encoder_frames(next(clip)))
                span = [START] + [PAD] * n + [END]
                ids += span
                lab += [IGNORE_INDEX] * len(span)
            else:
                text = torch.randint(0, 290, (int(item),), generator=g).tolist()
                ids += text
                lab += text
        seqs.append(ids)
        labs.append(lab)
    s = max(map(len, seqs))
    input_ids = torch.full((len(seqs), s), EOD)
    mask = torch.zeros(len(seqs), s, dtype=torch.long)
    labels = torch.full((len(seqs), s), IGNORE_INDEX)
    for b, (ids, lab) in enumerate(zip(seqs, labs)):
        sl = slice(s - len(ids), s) if left_pad else slice(0, len(ids))
        input_ids[b, sl] = torch.tensor(ids)
        mask[b, sl] = 1
        labels[b, sl] = torch.tensor(lab)
    mel = torch.randn(len(mel_lengths), N_MELS, max(mel_lengths, default=1), generator=g)
    return input_ids, mask, labels, mel, torch.tensor(mel_lengths)


# --- encoder --------------------------------------------------------------------------------------------------


def test_positions_equal_audio_formula(model):
    samples = [480000, 8000, 12345, 999, 160 * 7, 16000 * 17 + 5]
    lengths = torch.tensor([A.mel_frames(n) for n in samples])
    mel = torch.randn(len(samples), N_MELS, A.N_FRAMES)
    with torch.no_grad():
        feats, positions = model.audio(mel, lengths)
    expected = [A.audio_positions(n) for n in samples]
    assert positions.tolist() == expected
    assert expected[0] == 750
    assert feats.shape == (len(samples), max(expected), 64)
    assert model.audio.positions(lengths) == expected


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_padding_invariance(attn):
    torch.manual_seed(1)
    audio = build_model(tiny_cfg(attn_implementation=attn)).audio.eval()
    short, long = 137, 900
    clip = torch.randn(1, N_MELS, short)
    batch = torch.randn(2, N_MELS, long) * 5  # junk everywhere, incl. the short clip's padding
    batch[0, :, :short] = clip[0]
    with torch.no_grad():
        alone, n_alone = audio(clip, [short])
        batched, n_batched = audio(batch, [short, long])
    n = int(n_alone[0])
    assert n == int(n_batched[0]) == A.pooled_frames(A.encoder_frames(short))
    assert batched.shape[1] == A.pooled_frames(A.encoder_frames(long))  # compute followed the longest clip
    torch.testing.assert_close(batched[0, :n], alone[0, :n], atol=1e-5, rtol=0)


def test_length_following_forward_equals_stock_forward():
    torch.manual_seed(2)
    wcfg = whisper_config_from_dims(tiny_cfg(attn_implementation="eager"))
    whisper = build_whisper_encoder(wcfg).eval()
    audio = AudioEncoder(whisper, llm_hidden_size=64).eval()
    mel = torch.randn(2, N_MELS, A.N_FRAMES)
    with torch.no_grad():
        stock = whisper(mel).last_hidden_state  # layers then final layer norm, no pool
        hidden, t = audio.encode_frames(mel, [A.N_FRAMES, A.N_FRAMES])
        ours = audio.ln_post(hidden)  # we pool before the norm; compare the unpooled path
        assert t == [1500, 1500]
        torch.testing.assert_close(ours, stock, atol=1e-5, rtol=1e-5)
        # and the pooled output is ln_post(avgpool(hidden)) projected
        feats, _ = audio(mel, [A.N_FRAMES, A.N_FRAMES])
        pooled = hidden.view(2, 750, 2, -1).mean(2)
        torch.testing.assert_close(feats, audio.proj(audio.ln_post(pooled)), atol=1e-5, rtol=1e-5)
        # sdpa (boolean mask) agrees with eager (additive mask) on a padded batch
        lengths = [3000, 411]
        eager_out, positions = audio(mel, lengths)
        wcfg._attn_implementation = "sdpa"
        sdpa_out, _ = audio(mel, lengths)
        for i, n in enumerate(positions.tolist()):
            torch.testing.assert_close(sdpa_out[i, :n], eager_out[i, :n], atol=1e-5, rtol=1e-5)


def test_attention_backends_agree():
    """eager, sdpa and flex_attention (the back-ends that run on a CPU) give the same logits on a batch padded on
    both sides (clips of three lengths, rows of two), so each honours the same key-padding and causal masks."""
    input_ids, mask, _, mel, lengths = make_batch(ROWS, LENGTHS, seed=11)
    logits = {}
    for attn in ("eager", "sdpa", "flex_attention"):
        torch.manual_seed(11)
        model = build_model(tiny_cfg(attn_implementation=attn)).eval()
        assert model.llm.config._attn_implementation == model.audio.whisper_config._attn_implementation == attn
        with torch.no_grad():
            logits[attn] = model(input_ids, mask, mel, lengths).logits[mask.bool()]  # real tokens only
    for attn in ("sdpa", "flex_attention"):
        torch.testing.assert_close(logits[attn], logits["eager"], atol=1e-5, rtol=0)


def test_attention_backend_names_and_flash_without_its_package():
    with pytest.raises(ValueError, match="flex_attention, flash_attention_2"):
        tiny_cfg(attn_implementation="flash")
    import importlib.util

    from qwenaudio_train.model.config import check_attn_backend

    if importlib.util.find_spec("flash_attn") is None:  # the CPU case: a one-line error naming the install
        with pytest.raises(ImportError, match="pip install flash-attn"):
            build_model(tiny_cfg(attn_implementation="flash_attention_2"))
    else:
        check_attn_backend("flash_attention_2")


def test_bad_lengths_rejected(model):
    with pytest.raises(ValueError, match="audio lengths"):
        model.audio(torch.randn(1, N_MELS, 50), [60])
    with pytest.raises(ValueError, match="audio lengths"):
        model.audio(torch.randn(1, N_MELS, 50), [0])


# --- fusion, loss -------------------------------------------------------------------------------------------


ROWS = [[5, "a", 3, "a", 6], [2, "a", 9]]  # 2 rows x 3 clips
LENGTHS = [300, 97, 1000]


def test_forward_backward_shapes_and_gradients():
    torch.manual_seed(3)
    model = build_model(tiny_cfg()).train()
    input_ids, mask, labels, mel, lengths = make_batch(ROWS, LENGTHS)
    out = model(input_ids, mask, mel, lengths, labels)
    assert out.logits.shape == (2, input_ids.shape[1], VOCAB)
    assert out.sample_loss_sum.shape == out.sample_tokens.shape == (2,)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    for name in [
        "audio.conv1.weight",
        "audio.conv2.weight",
        "audio.layers.0.self_attn.q_proj.weight",
        "audio.layers.1.fc2.weight",
        "audio.ln_post.weight",
        "audio.proj.weight",
        "audio.audio_bos_eos_token.weight",
        "llm.model.embed_tokens.weight",
        "llm.model.layers.1.mlp.down_proj.weight",
        "llm.lm_head.weight",
    ]:
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    assert not model.audio.embed_positions.weight.requires_grad
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {"audio", "llm"}
    counts = model.num_parameters()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["audio"] == sum(v for k, v in counts.items() if k.startswith("audio."))
    assert model.audio.layer_id("audio.conv1.weight") == 0
    assert model.audio.layer_id("audio.layers.1.fc1.weight") == 2
    assert model.audio.layer_id("audio.proj.weight") == 3


def test_fusion_writes_bos_audio_eos(model):
    input_ids, _, _, mel, lengths = make_batch(ROWS, LENGTHS)
    with torch.no_grad():
        fused = model.embed(input_ids, mel, lengths)
        plain = model.llm.get_input_embeddings()(input_ids)
        feats, positions = model.audio(mel, lengths)
    bos, eos = model.audio.audio_bos_eos_token.weight
    spans = model.audio_spans(input_ids)
    assert [b for b, _, _ in spans] == [0, 0, 1]
    written = torch.zeros(input_ids.shape, dtype=torch.bool)
    for k, (b, s, e) in enumerate(spans):
        n = int(positions[k])
        assert e - s - 1 == n
        torch.testing.assert_close(fused[b, s], bos)
        torch.testing.assert_close(fused[b, s + 1 : e], feats[k, :n])
        torch.testing.assert_close(fused[b, e], eos)
        written[b, s : e + 1] = True
    torch.testing.assert_close(fused[~written], plain[~written])


def test_wrong_spans_raise_clear_errors(model):
    input_ids, mask, labels, mel, lengths = make_batch(ROWS, LENGTHS)
    with pytest.raises(ValueError, match="3 audio spans but 2 audio clips"):
        model(input_ids, mask, mel[:2], lengths[:2], labels)
    with pytest.raises(ValueError, match="positions"):  # clips swapped: span lengths disagree
        model(input_ids, mask, mel[[1, 0, 2]], lengths[[1, 0, 2]], labels)
    bad = input_ids.clone()
    bad[1, bad[1] == END] = 7  # an <audio> without </audio>
    with pytest.raises(ValueError, match="<audio>"):
        model(bad, mask, mel, lengths, labels)


def test_loss_equals_manual_cross_entropy(model):
    input_ids, mask, labels, mel, lengths = make_batch(ROWS, LENGTHS, seed=4)
    with torch.no_grad():
        out = model(input_ids, mask, mel, lengths, labels)
        lean = model(input_ids, mask, mel, lengths, labels, return_logits=False)
    logits, targets = out.logits[:, :-1], labels[:, 1:]
    manual = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, manual)
    assert int(out.n_tokens) == int((targets != IGNORE_INDEX).sum())
    for b in range(2):
        row = F.cross_entropy(logits[b], targets[b], ignore_index=IGNORE_INDEX, reduction="sum")
        torch.testing.assert_close(out.sample_loss_sum[b], row)
    assert lean.logits is None
    torch.testing.assert_close(lean.loss, out.loss)
    torch.testing.assert_close(lean.sample_loss_sum, out.sample_loss_sum)
    assert lean.sample_tokens.tolist() == out.sample_tokens.tolist()


def test_text_only_batch_still_touches_encoder():
    torch.manual_seed(5)
    model = build_model(tiny_cfg()).train()
    input_ids, mask, labels, _, _ = make_batch([[12], [7]], [])
    out = model(input_ids, mask, None, None, labels)
    out.loss.backward()
    grad = model.audio.proj.weight.grad
    assert grad is not None and grad.abs().sum() == 0  # reached, and zero


def test_gradient_checkpointing_same_loss_and_grads():
    torch.manual_seed(6)
    model = build_model(tiny_cfg()).train()
    batch = make_batch(ROWS, LENGTHS, seed=6)
    model(*batch[:2], batch[3], batch[4], batch[2]).loss.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(*batch[:2], batch[3], batch[4], batch[2]).loss.backward()
    for n, g in ref.items():
        torch.testing.assert_close(model.get_parameter(n).grad, g, atol=1e-6, rtol=1e-4)


# --- construction, loading, saving ------------------------------------------------------------------------


def test_presets():
    from omegaconf import OmegaConf

    big = ModelConfig(preset="qwen_audio_7b").resolved()
    assert big.encoder_source == "openai/whisper-large-v2" and big.llm_source is None  # Qwen-7B v1 dims, native
    assert ModelConfig(preset="qwen_audio_qwen2_7b").resolved().llm_source == "Qwen/Qwen2-7B"
    assert (big.encoder_d_model, big.encoder_layers, big.encoder_heads, big.n_mels) == (1280, 32, 20, 80)
    assert big.trust_remote_code is False and big.dtype == "bfloat16"
    assert big.resolved() == big
    small = ModelConfig(encoder_layers=3).resolved()
    assert small.encoder_source is None and small.encoder_layers == 3 and small.encoder_d_model == 64
    # a default instance inside a Hydra/OmegaConf schema must not pin tiny's values
    merged = OmegaConf.merge(OmegaConf.structured(ModelConfig()), {"preset": "qwen_audio_7b"})
    assert OmegaConf.to_object(merged).resolved() == big
    with pytest.raises(ValueError):
        ModelConfig(preset="huge")


@pytest.mark.parametrize("whisper_class", ["WhisperModel", "WhisperForConditionalGeneration"])
def test_build_from_local_checkpoints(tmp_path, whisper_class):
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM, WhisperConfig

    torch.manual_seed(7)
    wcfg = WhisperConfig(
        num_mel_bins=N_MELS, d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, max_source_positions=1500,
    )  # fmt: skip
    whisper = getattr(transformers, whisper_class)(wcfg)
    whisper.save_pretrained(tmp_path / "whisper")
    qcfg = Qwen2Config(
        vocab_size=256, hidden_size=48, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, tie_word_embeddings=False,
    )  # fmt: skip
    qwen = Qwen2ForCausalLM(qcfg)
    qwen.save_pretrained(tmp_path / "qwen")

    cfg = tiny_cfg(encoder_source=str(tmp_path / "whisper"), llm_source=str(tmp_path / "qwen"))
    model = build_model(cfg)
    enc = whisper.get_encoder() if hasattr(whisper, "get_encoder") else whisper.model.encoder
    ours = model.audio.state_dict()
    for name, value in enc.state_dict().items():
        ours_name = name.replace("layer_norm.", "ln_post.") if name.startswith("layer_norm.") else name
        torch.testing.assert_close(ours[ours_name], value, atol=0, rtol=0)
    assert model.audio.proj.in_features == 32 and model.audio.proj.out_features == 48
    # the LLM is grown to the tokenizer's vocab (300 rounded up to 320), old rows kept
    assert model.llm.get_input_embeddings().weight.shape == (320, 48)
    assert model.llm.get_output_embeddings().weight.shape == (320, 48)
    loaded = model.llm.state_dict()
    for name, value in qwen.state_dict().items():
        torch.testing.assert_close(loaded[name][: value.shape[0]], value, atol=0, rtol=0)
    input_ids, mask, labels, mel, lengths = make_batch([[3, "a", 4]], [250])
    assert torch.isfinite(model(input_ids, mask, mel, lengths, labels).loss)


def test_save_and_load_round_trip(tmp_path, model):
    input_ids, mask, _, mel, lengths = make_batch(ROWS, LENGTHS, seed=8)
    model.save_pretrained(tmp_path / "ckpt")
    again = QwenAudioModel.from_pretrained(tmp_path / "ckpt").eval()
    assert again.cfg == model.cfg
    with torch.no_grad():
        a = model(input_ids, mask, mel, lengths).logits
        b = again(input_ids, mask, mel, lengths).logits
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not again.audio.embed_positions.weight.requires_grad


# --- generation ---------------------------------------------------------------------------------------------


def test_batched_generate_equals_per_sample(model):
    rows = [[4, "a", 3], [1, "a", 8, "a", 2], [6]]
    lengths = [410, 120, 333]
    input_ids, mask, _, mel, lens = make_batch(rows, lengths, seed=9, left_pad=True)
    free = model.generate(input_ids, mask, mel, lens, max_new_tokens=8, eos_token_id=EOD)
    eos = [EOD, int(free[0, 2])]  # a second stop id that ends row 0 early: exercises the padding of done rows
    batched = model.generate(input_ids, mask, mel, lens, max_new_tokens=8, eos_token_id=eos)
    assert batched.shape[0] == 3 and batched.shape[1] <= 8
    clip_of_row = [[0], [1, 2], []]
    for b in range(3):
        keep = mask[b].bool()
        clips = clip_of_row[b]
        single = model.generate(
            input_ids[b : b + 1, keep], mask[b : b + 1, keep],
            mel[clips] if clips else None, lens[clips] if clips else None,
            max_new_tokens=8, eos_token_id=eos,
        )  # fmt: skip
        n = single.shape[1]
        assert batched[b, :n].tolist() == single[0].tolist()
        if b == 0:
            assert n <= 3 and single[0, -1] == eos[1]
        assert all(t == EOD for t in batched[b, n:].tolist())  # rows that stopped early are padded

    with torch.no_grad():
        logits = model(input_ids, mask, mel, lens).logits
    assert batched[:, 0].tolist() == logits[:, -1].argmax(-1).tolist()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_bfloat16_forward_backward(attn):
    torch.manual_seed(10)
    model = build_model(tiny_cfg(dtype="bfloat16", attn_implementation=attn)).train()
    assert model.audio.conv1.weight.dtype == model.llm.lm_head.weight.dtype == torch.bfloat16
    input_ids, mask, labels, mel, lengths = make_batch(ROWS, LENGTHS, seed=10)
    out = model(input_ids, mask, mel, lengths, labels)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()
    assert torch.isfinite(model.audio.conv1.weight.grad.float()).all()
