"""Qwen2-Audio, the whole path without downloads: a tiny `Qwen2AudioForConditionalGeneration` built and saved by
transformers itself (random weights, 128 mel bins, a tiny Qwen2 tokenizer with Qwen2-Audio's tokens and chat
template, `WhisperFeatureExtractor(feature_size=128)` + `Qwen2AudioProcessor`) -> `qwen2-audio-to-ours` -> chat SFT
with our trainer (full and LoRA) on chat shards built by `qwenaudio-data chat-shards` -> `qwenaudio-export` (LoRA
merged) -> `ours-to-qwen2-audio` -> transformers' `AutoProcessor` + greedy `generate` on a 30-s clip equal our
`chat()` token for token, prompt ids included.

The clip is 30 s so both are exact: the port always runs its encoder on 3000 frames, ours on the clip's real
length (docs/interop.md, "the padding edge")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.unit.test_family import build_qwen2_audio_tokenizer

SR = 16000
QUESTION = "What is this?"


def _clip(path: Path, seconds: float, freq: float, seed: int) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(0, 0.05, t.shape)
    sf.write(str(path), (0.4 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def port_src(tmp_path_factory) -> Path:
    """A tiny Qwen2-Audio directory exactly as transformers saves one (config, safetensors, tokenizer with its
    chat template, preprocessor_config.json)."""
    from transformers import (
        AutoTokenizer,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    root = tmp_path_factory.mktemp("qwen2_audio_src")
    tok = AutoTokenizer.from_pretrained(str(build_qwen2_audio_tokenizer(root / "tok")))
    audio = dict(
        model_type="qwen2_audio_encoder", num_mel_bins=128, d_model=64, encoder_layers=2, encoder_attention_heads=4,
        encoder_ffn_dim=128, max_source_positions=1500,
    )  # fmt: skip
    text = dict(
        model_type="qwen2", vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=4096, tie_word_embeddings=False,
        eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )  # fmt: skip
    config = Qwen2AudioConfig(
        audio_config=audio, text_config=text, audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>")
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    with torch.no_grad():  # weights at a realistic scale: logits far apart, so greedy decoding is not a coin toss
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5 / p.shape[1] ** 0.5)
    model.save_pretrained(str(root / "port"))
    extractor = WhisperFeatureExtractor(feature_size=128)
    Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tok, chat_template=tok.chat_template).save_pretrained(
        str(root / "port")
    )
    return root / "port"


@pytest.fixture(scope="module")
def imported(port_src) -> Path:
    from qwenaudio_train.interop.cli import main

    out = port_src.parent / "ours"
    assert main(["qwen2-audio-to-ours", str(port_src), str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def chat_shards(tmp_path_factory) -> Path:
    from qwenaudio_train.cli.data import main as data_main

    root = tmp_path_factory.mktemp("qwen2_chat")
    lines = []
    for i in range(8):
        name = f"c{i}.wav"
        _clip(root / name, 1.0 + 0.25 * i, 220.0 * (1 + i % 2), seed=i)
        answer = "A high tone." if i % 2 else "A low tone."
        msgs = [
            {"role": "user", "content": f"<audio>{name}</audio>{QUESTION}"},
            {"role": "assistant", "content": answer},
        ]
        lines.append(json.dumps({"key": f"c{i}", "messages": msgs}))
    (root / "conv.jsonl").write_text("\n".join(lines) + "\n")
    assert data_main(["chat-shards", "--jsonl", str(root / "conv.jsonl"), "--out", str(root / "data" / "shards")]) == 0
    return root / "data"


def _sft(imported: Path, data: Path, run: Path, *extra: str):
    from qwenaudio_train.trainer import Trainer

    cfg = compose(
        "sft",
        [
            f"data.root={data}",
            f"model.tokenizer={imported / 'tokenizer'}",
            f"model.init_from={imported}",
            "model.family=qwen2_audio",
            "model.n_mels=128",
            f"run_dir={run}",
            "trainer.max_steps=6",
            "trainer.log_every=1",
            "trainer.save_every=6",
            "data.batch_size=4",
            "data.num_workers=0",
            "optim.lr=3e-3",
            "optim.warmup_steps=1",
            "logger.wandb_mode=disabled",
            "logger.progress=false",
            *extra,
        ],
    )
    trainer = Trainer(cfg)
    trainer.train()
    return trainer, [r["loss"] for r in read_metrics(run)]


def _port_inputs(port: Path, clip: Path) -> dict:
    """The processor's inputs for one question about `clip` (its chat template, feature extractor, expansion)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(port))
    conversation = [
        {"role": "user", "content": [{"type": "audio", "audio": str(clip)}, {"type": "text", "text": QUESTION}]}
    ]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    wav, _ = sf.read(str(clip), dtype="float32")
    return dict(processor(text=text, audio=[wav], sampling_rate=SR, return_tensors="pt"))


def _transformers_reply(port: Path, clip: Path, max_new_tokens: int) -> tuple[list[int], list[int], torch.Tensor]:
    """(prompt ids, new ids, prompt logits [S, V]) of transformers alone on the exported directory: AutoProcessor's
    chat template and feature extractor, `Qwen2AudioForConditionalGeneration.generate`, greedy."""
    from transformers import AutoTokenizer, Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(str(port), dtype=torch.float32).eval()
    inputs = _port_inputs(port, clip)
    tok = AutoTokenizer.from_pretrained(str(port))
    stop = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop, pad_token_id=stop[1]
        )
        logits = model(**inputs).logits[0]
    prompt = inputs["input_ids"][0].tolist()
    return prompt, out[0, len(prompt) :].tolist(), logits


def _check_exported_equals_ours(run: Path, tmp: Path) -> Path:
    from qwenaudio_train.chat.inference import chat, load_mel
    from qwenaudio_train.interop.cli import main
    from qwenaudio_train.runs import export, load_exported

    exported = export(run, tmp / "exported")  # LoRA merged
    port = tmp / "port"
    assert main(["ours-to-qwen2-audio", str(exported), str(port)]) == 0
    for name in ("preprocessor_config.json", "tokenizer_config.json", "chat_template.jinja", "model.safetensors"):
        assert (port / name).is_file(), name

    clip = _clip(tmp / "clip30.wav", 30.0, 330.0, seed=99)
    prompt, new, port_logits = _transformers_reply(port, clip, max_new_tokens=12)

    model, tok = load_exported(exported)
    sent: list[list[int]] = []
    generate = model.generate

    def spy(input_ids, *args, **kwargs):  # the ids our chat() sends and gets, unchanged
        sent.append(input_ids[0].tolist())
        out = generate(input_ids, *args, **kwargs)
        sent.append(out[0].tolist())
        return out

    model.generate = spy  # type: ignore[method-assign]
    reply, _ = chat(model, tok, QUESTION, audio=[clip], max_new_tokens=12)
    assert sent[0] == prompt  # our render = the processor's chat template + audio expansion
    ours_new = sent[1][: len(new)]
    assert ours_new == new, (ours_new, new)
    stop = {tok.im_end_id, tok.eod_id}
    cut = next((i for i, t in enumerate(new) if t in stop), len(new))
    assert reply == tok.decode(new[:cut])
    # Greedy tokens of a tiny model can be few or repetitive: the function itself, every prompt position
    mel, _ = load_mel(clip, model.audio.n_mels)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        ours = model(ids, torch.ones_like(ids), mel[None], torch.tensor([mel.shape[1]])).logits[0]
    torch.testing.assert_close(ours, port_logits, atol=1e-4, rtol=1e-4)
    return clip


def test_qwen2_audio_import_full_sft_export_generates_like_transformers(imported, chat_shards, tmp_path):
    trainer, losses = _sft(imported, chat_shards, tmp_path / "full")
    assert trainer.model.cfg.family == "qwen2_audio"
    assert losses[-1] < losses[0]
    _check_exported_equals_ours(tmp_path / "full", tmp_path)


def test_qwen2_audio_lora_sft_merged_export_generates_like_transformers(imported, chat_shards, tmp_path):
    trainer, losses = _sft(imported, chat_shards, tmp_path / "lora", "lora.enabled=true", "lora.r=4")
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert losses[-1] < losses[0]
    clip = _check_exported_equals_ours(tmp_path / "lora", tmp_path)  # the merged export

    # The adapter itself: converted, it loads with peft onto the exported base (the imported model) and computes
    # what the merged export computes.
    from peft import PeftModel
    from transformers import Qwen2AudioForConditionalGeneration

    from qwenaudio_train.interop.cli import main

    adapter = tmp_path / "lora" / "checkpoints" / "step_00000006" / "adapter"
    assert main(["ours-to-qwen2-audio", str(imported), str(tmp_path / "base_port")]) == 0
    assert main(["adapter-to-qwen2-audio", str(adapter), str(tmp_path / "port_adapter")]) == 0
    inputs = _port_inputs(tmp_path / "port", clip)
    load = Qwen2AudioForConditionalGeneration.from_pretrained
    with torch.no_grad():
        merged = load(str(tmp_path / "port"), dtype=torch.float32).eval()(**inputs).logits
        base = load(str(tmp_path / "base_port"), dtype=torch.float32).eval()
        before = base(**inputs).logits
        with_adapter = PeftModel.from_pretrained(base, str(tmp_path / "port_adapter")).eval()(**inputs).logits
    assert not torch.allclose(before, merged, atol=1e-3)  # the adapter matters
    torch.testing.assert_close(with_adapter, merged, atol=1e-4, rtol=1e-4)


def test_qwen2_audio_base_prompt_evaluates_like_the_release_eval_script(port_src, imported, tmp_path):
    """Continued pretraining's format through the same eval runner: a tagged ASR sample of the Qwen2-Audio family
    is prompted as the release's evaluate_asr.py prompts Qwen2-Audio-7B, and our runner's prediction equals
    transformers' greedy `generate` on that prompt (30-s clip: both exact)."""
    import io

    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    from qwenaudio_train.data.processing import SampleProcessor
    from qwenaudio_train.data.shards import write_shards
    from qwenaudio_train.eval.runner import EvalConfig, generate_predictions, split_samples
    from qwenaudio_train.runs import load_exported
    from qwenaudio_train.tasks import get_task

    meta = get_task("asr").example_meta
    assert meta is not None
    clip = _clip(tmp_path / "asr.wav", 30.0, 300.0, seed=5)
    wav, _ = sf.read(str(clip), dtype="float32")
    flac = io.BytesIO()
    sf.write(flac, wav, SR, format="FLAC")
    write_shards([("a0", flac.getvalue(), meta)], tmp_path / "test")

    model, tok = load_exported(imported)
    cfg = EvalConfig(max_new_tokens=8, progress_every=0)
    (record,) = generate_predictions(model, tok, str(tmp_path / "test"), cfg, n_mels=128)

    processor = AutoProcessor.from_pretrained(str(port_src))
    port = Qwen2AudioForConditionalGeneration.from_pretrained(str(port_src), dtype=torch.float32).eval()
    prompt = "<|audio_bos|><|AUDIO|><|audio_eos|>Detect the language and recognize the speech: <|en|>"
    inputs = processor(text=prompt, audio=[wav], sampling_rate=SR, return_tensors="pt")
    stop = [tok.eod_id, tok.im_end_id]
    with torch.no_grad():
        out = port.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=stop, pad_token_id=tok.eod_id)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    cut = next((i for i, t in enumerate(new) if t in stop), len(new))
    assert record["prediction"] == tok.decode(new[:cut])
    # the prompt ids themselves: our eval example = the release script's processor output
    raw = next(iter(split_samples(str(tmp_path / "test"))))
    assert SampleProcessor(tok, n_mels=128, train=False)(raw).input_ids == inputs["input_ids"][0].tolist()
    assert record["reference"] == meta.target.strip()
