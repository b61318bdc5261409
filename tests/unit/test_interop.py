"""Interop with released checkpoints, proven on tiny checkpoints this file writes itself.

The released layout (QWenLMHeadModel of Qwen-Audio, Qwen-7B v1) is checked against an independent pure-torch
reference of the released math written below (`v1_logits`: RMSNorm, rotate-half rotary, fused q|k|v causal
attention, w1 * silu(w2) MLP; `release_encoder`: openai-whisper blocks, q and k each scaled by d^-1/4, pool before
ln_post). The transformers Qwen2-Audio export is checked against transformers' own class, loaded from disk.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from qwenaudio_train import audio as A
from qwenaudio_train.interop import (
    convert_release_state_dict,
    export_qwen2_audio,
    export_release_checkpoint,
    export_release_state_dict,
    import_qwen2_audio,
    import_release_checkpoint,
    import_release_llm,
    model_to_release_config,
)
from qwenaudio_train.model import ModelConfig, build_model

VOCAB = 320
PAD, START, END, EOD = 300, 301, 302, 303  # audio pad, <audio>, </audio> (= <audio> + 1, as the release), eod
ATOL = 1e-5

# A tiny config.json in the released format. eps and rotary base are deliberately far from Qwen2's defaults
# (1e-6, 10000) so that a mapping that dropped them would fail the logits comparison.
RELEASE_CFG = {
    "architectures": ["QWenLMHeadModel"],
    "model_type": "qwen",
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 256,  # v1: w1 and w2 are each intermediate_size // 2 = 128 wide
    "kv_channels": 16,
    "layer_norm_epsilon": 1e-3,
    "max_position_embeddings": 1024,
    "no_bias": True,
    "rotary_emb_base": 500,
    "rotary_pct": 1.0,
    "seq_length": 1024,
    "tie_word_embeddings": False,
    "vocab_size": VOCAB,
    "use_dynamic_ntk": True,
    "use_logn_attn": True,
    "audio": {
        "n_mels": 80,
        "n_ctx": 1500,
        "n_state": 32,
        "n_head": 4,
        "n_layer": 2,
        "output_dim": 64,
        "avg_pool": True,
        "add_audio_bos_eos_token": True,
        "audio_start_id": START,
    },
}
IDS = dict(audio_pad_id=PAD, eod_id=EOD)  # the tiny vocabulary's ids (the release's are 151851 / 151643)


def release_state_dict(cfg: dict = RELEASE_CFG, audio: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with the released names and shapes (modeling_qwen.py / audio.py module tree)."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape: int, std: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    def norm(n: int) -> torch.Tensor:
        return 1.0 + w(n)

    h, ff = cfg["hidden_size"], cfg["intermediate_size"] // 2
    sd = {"transformer.wte.weight": w(cfg["vocab_size"], h, std=1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"transformer.h.{i}."
        sd |= {
            p + "ln_1.weight": norm(h),
            p + "attn.c_attn.weight": w(3 * h, h),
            p + "attn.c_attn.bias": w(3 * h),
            p + "attn.c_proj.weight": w(h, h),
            p + "ln_2.weight": norm(h),
            p + "mlp.w1.weight": w(ff, h),
            p + "mlp.w2.weight": w(ff, h),
            p + "mlp.c_proj.weight": w(h, ff),
        }
    sd |= {"transformer.ln_f.weight": norm(h), "lm_head.weight": w(cfg["vocab_size"], h)}
    if not audio:
        return sd
    a = cfg["audio"]
    d, m = a["n_state"], a["n_mels"]
    p = "transformer.audio."
    sd |= {
        p + "conv1.weight": w(d, m, 3),
        p + "conv1.bias": w(d),
        p + "conv2.weight": w(d, d, 3),
        p + "conv2.bias": w(d),
        p + "positional_embedding": w(a["n_ctx"], d, std=1.0),  # random, not sinusoids: proves it is copied
    }
    for i in range(a["n_layer"]):
        b = f"{p}blocks.{i}."
        sd |= {
            b + "attn.query.weight": w(d, d), b + "attn.query.bias": w(d),
            b + "attn.key.weight": w(d, d),  # openai-whisper: no key bias
            b + "attn.value.weight": w(d, d), b + "attn.value.bias": w(d),
            b + "attn.out.weight": w(d, d), b + "attn.out.bias": w(d),
            b + "attn_ln.weight": norm(d), b + "attn_ln.bias": w(d),
            b + "mlp.0.weight": w(4 * d, d), b + "mlp.0.bias": w(4 * d),
            b + "mlp.2.weight": w(d, 4 * d), b + "mlp.2.bias": w(d),
            b + "mlp_ln.weight": norm(d), b + "mlp_ln.bias": w(d),
        }  # fmt: skip
    sd |= {
        p + "ln_post.weight": norm(d),
        p + "ln_post.bias": w(d),
        p + "proj.weight": w(a["output_dim"], d),
        p + "proj.bias": w(a["output_dim"]),
        p + "audio_bos_eos_token.weight": w(2, a["output_dim"], std=1.0),
    }
    return sd


# --- independent references of the released math ----------------------------------------------------------------


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def v1_logits(sd: dict, cfg: dict, input_ids: torch.Tensor, embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Qwen v1 (QWenLMHeadModel) forward in training mode (ntk alpha 1, no logn), unpadded rows."""
    h, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_epsilon"]
    hd = h // nh
    x = sd["transformer.wte.weight"][input_ids] if embeds is None else embeds
    b, s, _ = x.shape
    inv_freq = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(s).float(), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)[None, :, None, :]  # [1, S, 1, hd]
    cos, sin = emb.cos(), emb.sin()

    def rotate(t: torch.Tensor) -> torch.Tensor:
        t1, t2 = t.chunk(2, dim=-1)
        return t * cos + torch.cat([-t2, t1], dim=-1) * sin

    causal = torch.ones(s, s, dtype=torch.bool).tril()
    for i in range(cfg["num_hidden_layers"]):
        p = f"transformer.h.{i}."
        y = _rms(x, sd[p + "ln_1.weight"], eps)
        qkv = y @ sd[p + "attn.c_attn.weight"].T + sd[p + "attn.c_attn.bias"]
        q, k, v = (t.reshape(b, s, nh, hd) for t in qkv.split(h, dim=-1))
        q, k = rotate(q), rotate(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / hd**0.5
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(b, s, h)
        x = x + o @ sd[p + "attn.c_proj.weight"].T
        y = _rms(x, sd[p + "ln_2.weight"], eps)
        a1, a2 = y @ sd[p + "mlp.w1.weight"].T, y @ sd[p + "mlp.w2.weight"].T
        x = x + (a1 * F.silu(a2)) @ sd[p + "mlp.c_proj.weight"].T
    return _rms(x, sd["transformer.ln_f.weight"], eps) @ sd["lm_head.weight"].T


def release_encoder(sd: dict, cfg: dict, mel: torch.Tensor) -> torch.Tensor:
    """openai-whisper-style encoder of the release on whole clips mel [A, n_mels, L] -> [A, N, output_dim]."""
    a = cfg["audio"]
    d, nh = a["n_state"], a["n_head"]
    p = "transformer.audio."

    def lin(x: torch.Tensor, name: str, bias: bool = True) -> torch.Tensor:
        return F.linear(x, sd[name + ".weight"], sd[name + ".bias"] if bias else None)

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (d,), sd[name + ".weight"], sd[name + ".bias"])

    x = F.gelu(F.conv1d(mel, sd[p + "conv1.weight"], sd[p + "conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, sd[p + "conv2.weight"], sd[p + "conv2.bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1) + sd[p + "positional_embedding"][: x.shape[-1]]
    n, t = x.shape[:2]
    scale = (d // nh) ** -0.25
    for i in range(a["n_layer"]):
        blk = f"{p}blocks.{i}."
        y = ln(x, blk + "attn_ln")
        q = lin(y, blk + "attn.query").view(n, t, nh, -1).permute(0, 2, 1, 3) * scale
        k = lin(y, blk + "attn.key", bias=False).view(n, t, nh, -1).permute(0, 2, 3, 1) * scale
        v = lin(y, blk + "attn.value").view(n, t, nh, -1).permute(0, 2, 1, 3)
        o = ((q @ k).softmax(-1) @ v).permute(0, 2, 1, 3).flatten(2)
        x = x + lin(o, blk + "attn.out")
        x = x + lin(F.gelu(lin(ln(x, blk + "mlp_ln"), blk + "mlp.0")), blk + "mlp.2")
    x = F.avg_pool1d(x.permute(0, 2, 1), 2, 2).permute(0, 2, 1)
    return lin(ln(x, p + "ln_post"), p + "proj")


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_sd() -> dict[str, torch.Tensor]:
    return release_state_dict()


@pytest.fixture(scope="module")
def imported(release_sd):
    return import_release_checkpoint(release_sd, RELEASE_CFG, **IDS)


def audio_row(n_text_before: int, mel_frames: int, n_text_after: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    n = A.pooled_frames(A.encoder_frames(mel_frames))
    before = torch.randint(0, 290, (n_text_before,), generator=g).tolist()
    after = torch.randint(0, 290, (n_text_after,), generator=g).tolist()
    return before + [START] + [PAD] * n + [END] + after


# --- release layout -> ours -------------------------------------------------------------------------------------


def test_llm_logits_equal_release_math(imported, release_sd):
    ids = torch.randint(0, VOCAB, (2, 37), generator=torch.Generator().manual_seed(1))
    ours = imported(ids, torch.ones_like(ids)).logits
    ref = v1_logits(release_sd, RELEASE_CFG, ids)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)
    cfg = imported.llm.config
    assert type(imported.llm).__name__ == "Qwen2ForCausalLM"
    assert (cfg.rms_norm_eps, cfg.rope_parameters["rope_theta"]) == (1e-3, 500.0)
    assert cfg.num_key_value_heads == cfg.num_attention_heads == 4 and cfg.intermediate_size == 128
    assert not cfg.tie_word_embeddings


def test_encoder_equals_release_math_per_clip(imported, release_sd):
    # Two clips of different lengths in one batch: each must equal the release's encoder run on the clip alone.
    # Even lengths, because the release slices its 30-s-padded mel to 2 x T frames: for an even length that is
    # the clip, for an odd one it is the clip plus one padding frame (a quirk we do not copy, see model.py).
    lengths = [400, 250]
    mel = torch.randn(2, 80, 400, generator=torch.Generator().manual_seed(2))
    feats, positions = imported.audio(mel, lengths)
    for i, n_mel in enumerate(lengths):
        ref = release_encoder(release_sd, RELEASE_CFG, mel[i : i + 1, :, :n_mel])[0]
        assert positions[i] == ref.shape[0] == A.pooled_frames(A.encoder_frames(n_mel))
        torch.testing.assert_close(feats[i, : positions[i]], ref, atol=ATOL, rtol=0)
    bos_eos = release_sd["transformer.audio.audio_bos_eos_token.weight"]
    assert torch.equal(imported.audio.bos_eos(), bos_eos)


def test_fused_model_logits_equal_release_math(imported, release_sd):
    # The release's fusion: hidden states from <audio> through </audio> overwritten by [bos, audio, eos].
    n_mel = 600
    ids = torch.tensor([audio_row(4, n_mel, 9, seed=3)])
    mel = torch.randn(1, 80, n_mel, generator=torch.Generator().manual_seed(4))
    ours = imported(ids, torch.ones_like(ids), audio_features=mel, audio_lengths=torch.tensor([n_mel])).logits
    feats = release_encoder(release_sd, RELEASE_CFG, mel)[0]
    bos, eos = release_sd["transformer.audio.audio_bos_eos_token.weight"]
    embeds = release_sd["transformer.wte.weight"][ids].clone()
    s, e = (ids[0] == START).nonzero().item(), (ids[0] == END).nonzero().item()
    embeds[0, s : e + 1] = torch.cat([bos[None], feats, eos[None]])
    ref = v1_logits(release_sd, RELEASE_CFG, ids, embeds=embeds)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


def test_round_trips_are_identical(imported, release_sd):
    back = export_release_state_dict(imported)
    assert set(back) == set(release_sd)
    assert all(torch.equal(back[k], release_sd[k]) for k in release_sd)
    ours = imported.state_dict()
    again = convert_release_state_dict(back, RELEASE_CFG)
    assert set(again) == set(ours)
    assert all(torch.equal(again[k], ours[k]) for k in ours)
    config = model_to_release_config(imported, seq_length=RELEASE_CFG["seq_length"])
    for key, value in RELEASE_CFG.items():
        assert config[key] == value, key


def test_release_directory_round_trip_sharded(imported, tmp_path):
    # Written as several safetensors shards + index, read back from the directory (no remote code anywhere).
    out = export_release_checkpoint(imported, tmp_path / "release", seq_length=1024, max_shard_size="100KB")
    assert (out / "model.safetensors.index.json").is_file()
    assert json.loads((out / "config.json").read_text())["audio"]["audio_start_id"] == START
    again = import_release_checkpoint(out, **IDS)
    ref = imported.state_dict()
    got = again.state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    assert again.cfg.audio_start_id == START and again.cfg.audio_end_id == END and again.cfg.dtype == "float32"
    # The older pickle format (pytorch_model.bin), in bfloat16: dtype None keeps the checkpoint's.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    torch.save({k: v.bfloat16() for k, v in export_release_state_dict(imported).items()}, bin_dir / "pytorch_model.bin")
    (bin_dir / "config.json").write_text((out / "config.json").read_text())
    bf16 = import_release_checkpoint(bin_dir, **IDS)
    assert bf16.cfg.dtype == "bfloat16" and bf16.llm.dtype == bf16.audio.proj.weight.dtype == torch.bfloat16
    assert torch.equal(bf16.audio.proj.weight, ref["audio.proj.weight"].bfloat16())


def release_precision_check(config: dict, **kwargs: bool) -> None:
    """QWenLMHeadModel.__init__ of the release (modeling_qwen.py): from_pretrained's kwargs set config fields, then
    `assert config.bf16 + config.fp16 + config.fp32 <= 1, 'Only one of "bf16", "fp16", "fp32" can be true'`."""
    merged = {**config, **kwargs}
    assert merged["bf16"] + merged["fp16"] + merged["fp32"] <= 1, 'Only one of "bf16", "fp16", "fp32" can be true'


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_release_export_loads_with_any_precision_flag(imported, tmp_path, dtype):
    # The release's config.json says bf16/fp16/fp32 all false (precision chosen at load); its README loads with
    # bf16=True. An fp32 export that wrote "fp32": true made that call fail. The weights keep their dtype.
    out = export_release_checkpoint(copy.deepcopy(imported).to(dtype), tmp_path / "release", seq_length=1024)
    config = json.loads((out / "config.json").read_text())
    assert (config["bf16"], config["fp16"], config["fp32"]) == (False, False, False)
    for flag in ("bf16", "fp16", "fp32"):
        release_precision_check(config, **{flag: True})
    assert import_release_checkpoint(out, **IDS).llm.dtype == dtype


def test_plain_qwen_v1_llm_to_native_qwen2(tmp_path):
    # The paper's stage-1 starting point: Qwen-7B v1 (no audio) -> a Qwen2 directory that build_model loads natively.
    cfg = {k: v for k, v in RELEASE_CFG.items() if k != "audio"}
    sd = release_state_dict(cfg, audio=False, seed=5)
    llm_dir = tmp_path / "qwen2"
    llm = import_release_llm(sd, cfg, eod_id=EOD, save_dir=llm_dir)
    ids = torch.randint(0, VOCAB, (1, 29), generator=torch.Generator().manual_seed(6))
    ref = v1_logits(sd, cfg, ids)
    torch.testing.assert_close(llm(input_ids=ids).logits, ref, atol=ATOL, rtol=0)
    model = build_model(
        ModelConfig(preset="tiny", llm_source=str(llm_dir), vocab_size=VOCAB, audio_start_id=START,
                    audio_end_id=END, **IDS)
    ).eval()  # fmt: skip
    torch.testing.assert_close(model(ids, torch.ones_like(ids)).logits, ref, atol=ATOL, rtol=0)
    assert export_release_state_dict({"llm." + k: v for k, v in llm.state_dict().items()}).keys() == sd.keys()


def test_refuses_what_does_not_map(release_sd):
    with pytest.raises(ValueError, match="unknown keys"):
        convert_release_state_dict({**release_sd, "transformer.h.0.attn.extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="rotary_pct"):
        convert_release_state_dict(release_sd, {**RELEASE_CFG, "rotary_pct": 0.5})
    llm_cfg = {k: v for k, v in RELEASE_CFG.items() if k != "audio"}
    llm_sd = {k: v for k, v in release_sd.items() if not k.startswith("transformer.audio.")}
    del llm_sd["transformer.h.1.ln_2.weight"]
    with pytest.raises(ValueError, match="post_attention_layernorm"):
        import_release_llm(llm_sd, llm_cfg, eod_id=EOD)
    gqa = build_model(ModelConfig(preset="tiny", vocab_size=VOCAB, audio_start_id=START, audio_end_id=END, **IDS))
    assert gqa.llm.config.num_key_value_heads < gqa.llm.config.num_attention_heads
    with pytest.raises(ValueError, match="grouped kv heads"):
        export_release_state_dict(gqa)
    with pytest.raises(ValueError, match="num_key_value_heads"):
        model_to_release_config(gqa)


# --- ours -> transformers' Qwen2-Audio ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ours():
    torch.manual_seed(7)
    return build_model(
        ModelConfig(preset="tiny", vocab_size=VOCAB, audio_start_id=START, audio_end_id=END, **IDS)
    ).eval()


@pytest.fixture(scope="module")
def port_dir(tiny_ours, tmp_path_factory):
    return export_qwen2_audio(tiny_ours, tmp_path_factory.mktemp("qwen2_audio"))


def _right_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    s = max(map(len, rows))
    ids = torch.full((len(rows), s), EOD)
    mask = torch.zeros(len(rows), s, dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return ids, mask


def test_qwen2_audio_export_equal_logits_on_30s_input(tiny_ours, port_dir):
    from transformers import Qwen2AudioForConditionalGeneration

    port = Qwen2AudioForConditionalGeneration.from_pretrained(str(port_dir)).eval()
    assert port.config.audio_token_id == PAD
    # Row 0: a full 30-s clip. Row 1: a 10-s clip (even mel length) zero-padded to 30 s, as the port insists on
    # 3000 frames; feature_attention_mask tells the port its real length. Right padding (training layout).
    lengths = [A.N_FRAMES, 1000]
    mel = torch.randn(2, 80, A.N_FRAMES, generator=torch.Generator().manual_seed(8))
    mel[1, :, lengths[1] :] = 0.0
    ids, mask = _right_padded([audio_row(3, lengths[0], 7, seed=9), audio_row(5, lengths[1], 4, seed=10)])
    assert ids.shape[1] > 750  # 750 audio positions + bos/eos for 30 s
    feature_mask = (torch.arange(A.N_FRAMES)[None, :] < torch.tensor(lengths)[:, None]).long()
    with torch.no_grad():
        ours = tiny_ours(ids, mask, audio_features=mel, audio_lengths=torch.tensor(lengths)).logits
        theirs = port(input_ids=ids, attention_mask=mask, input_features=mel,
                      feature_attention_mask=feature_mask).logits  # fmt: skip
    real = mask.bool()
    torch.testing.assert_close(ours[real], theirs[real], atol=ATOL, rtol=0)


def test_qwen2_audio_round_trip(tiny_ours, port_dir):
    back = import_qwen2_audio(port_dir)
    ours, got = tiny_ours.state_dict(), back.state_dict()
    assert set(got) == set(ours)
    embed = "llm.model.embed_tokens.weight"
    for k in ours:
        if k != embed:
            assert torch.equal(got[k], ours[k]), k
    # Only the <audio>/</audio> embedding rows changed (they now hold bos/eos); our forward never reads them.
    changed = (got[embed] != ours[embed]).any(-1).nonzero().flatten().tolist()
    assert changed == [START, END]
    assert (back.cfg.audio_start_id, back.cfg.audio_end_id, back.cfg.audio_pad_id) == (START, END, PAD)
    ids = torch.tensor([audio_row(2, 800, 5, seed=11)])
    mel = torch.randn(1, 80, 800, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        a = tiny_ours(ids, torch.ones_like(ids), audio_features=mel, audio_lengths=torch.tensor([800])).logits
        b = back(ids, torch.ones_like(ids), audio_features=mel, audio_lengths=torch.tensor([800])).logits
    assert torch.equal(a, b)


def test_qwen2_audio_import_reads_hub_legacy_names(tiny_ours, port_dir, tmp_path):
    # The hub's Qwen2-Audio checkpoints predate transformers 5's module names (audio_tower.*, language_model.model.*,
    # language_model.lm_head.*) and carry no sidecar: the ids of <|audio_bos|>/<|audio_eos|> are passed instead.
    from safetensors.torch import load_file, save_file

    sd = {}
    for f in sorted(port_dir.glob("*.safetensors")):
        sd.update(load_file(str(f)))
    legacy = {}
    for k, v in sd.items():
        if k.startswith("model.language_model."):
            k = "language_model.model." + k[len("model.language_model.") :]
        elif k == "lm_head.weight":
            k = "language_model.lm_head.weight"
        else:
            k = k[len("model.") :]
        legacy[k] = v
    assert any(k.startswith("audio_tower.") for k in legacy)
    save_file(legacy, str(tmp_path / "model.safetensors"))
    config = json.loads((port_dir / "config.json").read_text())
    config["text_config"].update(rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 12345.0})
    (tmp_path / "config.json").write_text(json.dumps(config))
    back = import_qwen2_audio(tmp_path, audio_bos_id=START, audio_eos_id=END, eod_id=EOD)
    ref = import_qwen2_audio(port_dir).state_dict()
    got = back.state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    assert torch.equal(back.audio.bos_eos(), tiny_ours.audio.bos_eos())
    # The recorded config is the checkpoint's own (not the tiny preset's defaults).
    assert (back.cfg.llm_rms_norm_eps, back.cfg.llm_rope_theta) == (1e-5, 12345.0)


def test_command_line_release_to_ours_and_back(imported, tmp_path):
    from qwenaudio_train.interop import main
    from qwenaudio_train.model import QwenAudioModel

    export_release_checkpoint(imported, tmp_path / "release", seq_length=1024)
    ids = ["--audio-pad-id", str(PAD), "--eod-id", str(EOD)]  # the tiny vocabulary's; a real release needs none
    assert main(["release-to-ours", str(tmp_path / "release"), str(tmp_path / "ours"), *ids]) == 0
    model = QwenAudioModel.from_pretrained(tmp_path / "ours")
    assert (model.cfg.audio_pad_id, model.cfg.eod_id, model.cfg.audio_start_id) == (PAD, EOD, START)
    assert main(["ours-to-release", str(tmp_path / "ours"), str(tmp_path / "again")]) == 0
    again = import_release_checkpoint(tmp_path / "again", **IDS)
    ref, got = imported.state_dict(), again.state_dict()
    assert set(got) == set(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
