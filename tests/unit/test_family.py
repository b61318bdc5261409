"""Model families (model/family.py): Qwen-Audio stays as it was; a Qwen2-Audio tokenizer loads as-is with its own
audio ids, chat renders as Qwen2-Audio-Instruct's template, and the fusion keeps its bos/eos token embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwenaudio_train.model.family import QWEN2_AUDIO, QWEN2_AUDIO_CHAT_TEMPLATE, QWEN_AUDIO, get_family

QWEN2_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
_CORPUS = [
    "You are a helpful assistant.",
    "What does the person say? The person says hello world.",
    "Audio 1: Audio 2: what sound is this? A dog barks, a bird sings, a tone rings.",
    "Detect the language and recognize the speech: the quick brown fox jumps over the lazy dog",
    "system user assistant",
]


def build_qwen2_audio_tokenizer(out: Path) -> Path:
    """A tiny Qwen2 tokenizer (transformers' `Qwen2Tokenizer`: Qwen's pre-tokenizer, byte-level BPE) carrying
    Qwen2-Audio's special tokens and chat template, saved the way transformers saves it."""
    import json

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    from qwenaudio_train.tokenizer import QWEN_PAT_STR

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PAT_STR), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges)
    tok.add_special_tokens({"extra_special_tokens": QWEN2_SPECIALS})
    tok.chat_template = QWEN2_AUDIO_CHAT_TEMPLATE
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def qwen2_tok(tmp_path_factory):
    from qwenaudio_train.tokenizer import load_tokenizer

    return load_tokenizer(build_qwen2_audio_tokenizer(tmp_path_factory.mktemp("qwen2tok")))


def test_families_are_named_and_qwen_audio_is_the_default():
    from qwenaudio_train.model import ModelConfig

    assert ModelConfig().family == "qwen_audio" and get_family("qwen_audio") is QWEN_AUDIO
    assert (QWEN_AUDIO.n_mels, QWEN2_AUDIO.n_mels) == (80, 128)
    assert QWEN_AUDIO.span_text(2) == "<audio>[[[AUDIO:modality]]][[[AUDIO:modality]]]</audio>"
    assert QWEN2_AUDIO.span_text(1) == "<|audio_bos|><|AUDIO|><|audio_eos|>"
    with pytest.raises(ValueError, match="model.family='qwen3': choose one of qwen_audio, qwen2_audio"):
        ModelConfig(family="qwen3")
    assert ModelConfig(family="qwen2_audio", n_mels=128).n_mels == 128
    assert ModelConfig(n_mels=128).family == "qwen_audio"  # a large-v3 encoder with Qwen-Audio's format


def test_qwen2_audio_tokenizer_loads_as_is_with_its_ids(qwen2_tok):
    hf = qwen2_tok.hf_tokenizer
    assert qwen2_tok.family is QWEN2_AUDIO
    assert len(qwen2_tok) == len(hf)  # nothing registered: the release's 3522 tokens are not added
    assert qwen2_tok.audio_start_id == hf.convert_tokens_to_ids("<|audio_bos|>")
    assert qwen2_tok.audio_pad_id == hf.convert_tokens_to_ids("<|AUDIO|>")
    assert qwen2_tok.audio_end_id == hf.convert_tokens_to_ids("<|audio_eos|>")
    assert qwen2_tok.audio_span_ids(2) == [
        qwen2_tok.audio_start_id,
        *[qwen2_tok.audio_pad_id] * 2,
        qwen2_tok.audio_end_id,
    ]
    # "audio" special: only the three audio tokens; <|im_end|> typed in content stays text
    ids = qwen2_tok.encode("a<|AUDIO|>b<|im_end|>", allowed_special="audio")
    assert qwen2_tok.audio_pad_id in ids and qwen2_tok.im_end_id not in ids


def test_release_tokenizer_keeps_its_family(tmp_path):
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer(_CORPUS, tmp_path / "tok", vocab_size=300)
    assert tok.family is QWEN_AUDIO and tok.audio_start_id == tok.token_to_id("<audio>")
    assert "family" not in (tmp_path / "tok" / "qwenaudio_tokenizer.json").read_text()


def test_chat_renders_as_qwen2_audio_instructs_template(qwen2_tok):
    from qwenaudio_train.chat.render import render

    conv = {
        "messages": [
            {"role": "user", "content": "<audio>a.wav</audio>What is this?"},
            {"role": "assistant", "content": "A dog barks."},
            {"role": "user", "content": "<audio>b.wav</audio>And this?"},
        ]
    }
    ids, mask = render(conv, qwen2_tok, [2, 3], add_generation_prompt=True)
    hf_messages = [
        {"role": "user", "content": [{"type": "audio", "audio": "a.wav"}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A dog barks."},
        {"role": "user", "content": [{"type": "audio", "audio": "b.wav"}, {"type": "text", "text": "And this?"}]},
    ]
    text = qwen2_tok.hf_tokenizer.apply_chat_template(hf_messages, add_generation_prompt=True, tokenize=False)
    assert "Audio 2: <|audio_bos|>" in text  # numbering counts the whole conversation
    pieces = text.split("<|AUDIO|>")  # the processor expands each clip's token to its N positions
    expanded = pieces[0] + "".join("<|AUDIO|>" * n + rest for n, rest in zip([2, 3], pieces[1:]))
    expected = qwen2_tok.hf_tokenizer.encode(expanded, add_special_tokens=False)
    # The template ends every turn with "\n" and then opens the assistant turn: the same ids.
    assert ids == expected
    trained = [i for i, m in zip(ids, mask) if m]
    assert qwen2_tok.decode(trained) == "A dog barks.<|im_end|>"


def test_qwen2_fusion_keeps_bos_eos_token_embeddings():
    from qwenaudio_train.model import ModelConfig, build_model

    cfg = ModelConfig(
        family="qwen2_audio", n_mels=128, vocab_size=64, audio_start_id=10, audio_pad_id=11, audio_end_id=12, eod_id=0
    )
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    ids = torch.tensor([[1, 10, 11, 11, 12, 2]])
    mel = torch.randn(1, 128, 8)
    with torch.no_grad():
        out = model.embed(ids, mel, [8])
        plain = model.llm.get_input_embeddings()(ids)
        feats, _ = model.audio(mel, [8])
    assert torch.equal(out[0, [0, 1, 4, 5]], plain[0, [0, 1, 4, 5]])  # bos/eos stay token embeddings
    torch.testing.assert_close(out[0, 2:4], feats[0, :2])
    # Qwen-Audio's fusion (the default) overwrites the bos/eos positions with the learned rows
    model.cfg.family = "qwen_audio"
    with torch.no_grad():
        learned = model.embed(ids, mel, [8])
    bos, eos = model.audio.bos_eos()
    torch.testing.assert_close(learned[0, 1], bos)
    torch.testing.assert_close(learned[0, 4], eos)


def test_natural_prompts_for_qwen2_audio_and_tags_for_qwen_audio():
    from qwenaudio_train.tasks import TASKS, get_task

    asr = get_task("asr")
    assert QWEN2_AUDIO.train_prefix(asr, asr.example_meta) == "Detect the language and recognize the speech: <|en|>"
    aac = get_task("aac")
    assert QWEN2_AUDIO.eval_prefix(aac, aac.example_meta) == "Generate the caption in English:"
    for task in TASKS.values():  # every task has a prompt in both families; Qwen-Audio's is the tags, unchanged
        assert QWEN_AUDIO.eval_prefix(task, task.example_meta) == task.eval_prefix(task.example_meta)
        assert QWEN2_AUDIO.train_prefix(task, task.example_meta)


def test_pretraining_sample_of_the_qwen2_audio_family(qwen2_tok):
    """A tagged sample becomes `<|audio_bos|> <|AUDIO|> x N <|audio_eos|>` + the natural-language prompt + target."""
    import io

    import numpy as np
    import soundfile as sf

    from qwenaudio_train import audio as A
    from qwenaudio_train.data.processing import SampleProcessor
    from qwenaudio_train.tasks import get_task

    meta = get_task("asr").example_meta
    assert meta is not None
    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32), 16000, format="FLAC")
    raw = {"__key__": "s0", "flac": buf.getvalue(), "json": meta.to_json()}
    n = A.audio_positions(16000)
    for train in (True, False):
        ex = SampleProcessor(qwen2_tok, n_mels=128, train=train)(raw)
        assert ex.mel.shape[0] == 128
        assert ex.input_ids[: n + 2] == qwen2_tok.audio_span_ids(n)
        prompt = qwen2_tok.encode("Detect the language and recognize the speech: <|en|>")
        assert ex.input_ids[n + 2 : n + 2 + len(prompt)] == prompt
    assert ex.reference == meta.target.strip()


def test_a_tokenizer_of_another_family_than_model_family_stops_with_the_fix(qwen2_tok):
    from qwenaudio_train.config import ConfigError, validate

    cfg = validate({"model": {"preset": "tiny", "tokenizer": "qwen2-tok"}})
    with pytest.raises(ConfigError, match=r"model.family=qwen_audio but the tokenizer .* set model.family=qwen2_audio"):
        cfg.model_config(qwen2_tok)
    cfg.model.family = "qwen2_audio"
    assert cfg.model_config(qwen2_tok).audio_pad_id == qwen2_tok.audio_pad_id
