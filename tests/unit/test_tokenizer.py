"""Both tokenizer back-ends: released ids, special tokens as single ids, round trips, audio span expansion,
the tiny trained BPE (deterministic, fast, reloadable by AutoTokenizer)."""

from __future__ import annotations

import base64
import json
import pickle
import random
from pathlib import Path

import pytest

from qwenaudio_train import tags as T
from qwenaudio_train.tasks import TASKS
from qwenaudio_train.tokenizer import (
    QWEN_PAT_STR,
    AudioTokenizer,
    expand_audio,
    extract_audio_paths,
    load_tokenizer,
    split_audio_tags,
    train_bpe_tokenizer,
)

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "speech recognition with word level timestamps",
    "a dog barks while cars pass by in the street",
    "hello world, this is a tiny corpus.",
    "你好，世界。今天天气很好。",
    "Guten Morgen, wie geht es dir?",
    "¿Dónde está la biblioteca?",
    "music note analysis of an acoustic keyboard",
]
MIXED = (
    "<|startoftranscript|><|zh|><|transcribe|><|zh|><|notimestamps|><|wo_itn|>你好，世界 hello  wörld!\n"
    "<|0.00|><|sil|><|0.54|>word<|30.00|> emoji 🎵 tab\t<|endoftext|><|im_start|>user\n"
)


def _corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
    words += list("你好世界音频模型")
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> AudioTokenizer:
    return train_bpe_tokenizer(SENTENCES * 20, tmp_path_factory.mktemp("bpe"), vocab_size=300)


@pytest.fixture(scope="module")
def bytes_tiktoken(tmp_path_factory) -> AudioTokenizer:
    """Back-end (a) over a 256-rank file (bytes only): exercises tiktoken without the released ranks."""
    path = tmp_path_factory.mktemp("tt") / "bytes.tiktoken"
    path.write_text("".join(f"{base64.b64encode(bytes([i])).decode()} {i}\n" for i in range(256)), encoding="utf-8")
    return load_tokenizer(path)


@pytest.fixture(scope="module")
def qwen(shared_spec) -> AudioTokenizer:
    return load_tokenizer(shared_spec / "qwen.tiktoken")


# ---------------------------------------------------------------------------------------------------------------
# Released tiktoken ranks
# ---------------------------------------------------------------------------------------------------------------
def test_released_ids(qwen: AudioTokenizer, shared_spec) -> None:
    spec = json.loads((shared_spec / "qwen_audio_special_tokens.json").read_text(encoding="utf-8"))
    for tok, idx in spec["expected_ids"].items():
        assert qwen.token_to_id(tok) == idx, tok
        assert qwen.encode(tok) == [idx], tok
        assert qwen.id_to_token(idx) == tok
    assert qwen.audio_start_id == 155163 and qwen.audio_end_id == 155164 and qwen.audio_pad_id == 151851
    assert qwen.eod_id == qwen.bos_id == qwen.pad_id == 151643
    assert (qwen.im_start_id, qwen.im_end_id) == (151644, 151645)
    assert qwen.vocab_size == len(qwen) == 151643 + 3522
    assert [qwen.token_to_id(t) for t in T.SPECIAL_TOKENS] == list(range(151643, 151643 + 3522))
    assert qwen.special_ids == set(range(151643, 151643 + 3522))
    assert qwen.backend_name == "tiktoken" and qwen.hf_tokenizer is None
    assert QWEN_PAT_STR == spec["tiktoken_pattern"]


def test_released_round_trip(qwen: AudioTokenizer) -> None:
    ids = qwen.encode(MIXED)
    assert qwen.decode(ids) == MIXED
    assert ids[:6] == [151852, 151860, 151855, 151860, 151868, 154877]
    assert qwen.decode(ids, skip_special_tokens=True) == qwen.decode([i for i in ids if i < 151643])
    # BPE tokens in byte-level spelling, as transformers vocab files write them
    hello = qwen.encode(" hello")
    assert len(hello) == 1 and qwen.id_to_token(hello[0]) == "Ġhello" and qwen.token_to_id("Ġhello") == hello[0]
    assert qwen.token_to_id(b" hello") == hello[0]


def test_released_audio_span(qwen: AudioTokenizer) -> None:
    text = "Audio 1: <audio>/data/a b.flac</audio>\nAudio 2:<audio>x.wav</audio>what?"
    expanded = expand_audio(text, [3, 5])
    ids = qwen.encode(expanded)
    assert ids == qwen.encode_with_audio(text, [3, 5])
    start = ids.index(155163)
    assert ids[start : start + 5] == [155163, 151851, 151851, 151851, 155164]
    assert ids.count(151851) == 8
    assert qwen.decode(ids).endswith("</audio>what?")


def test_save_and_reload_tiktoken(qwen: AudioTokenizer, tmp_path: Path) -> None:
    out = qwen.save_pretrained(tmp_path / "tok")
    again = load_tokenizer(out)
    assert again.backend_name == "tiktoken" and again.vocab_size == qwen.vocab_size
    assert again.encode(MIXED) == qwen.encode(MIXED)


# ---------------------------------------------------------------------------------------------------------------
# tiktoken back-end without the released ranks
# ---------------------------------------------------------------------------------------------------------------
def test_bytes_tiktoken(bytes_tiktoken: AudioTokenizer, tmp_path: Path) -> None:
    tok = bytes_tiktoken
    assert tok.eod_id == 256 and tok.audio_start_id == 256 + 3520 and tok.vocab_size == 256 + 3522
    ids = tok.encode(MIXED)
    assert tok.decode(ids) == MIXED
    assert tok.encode("<|en|>") == [256 + 208 + 8]
    tok.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).encode(MIXED) == ids
    assert pickle.loads(pickle.dumps(tok)).encode(MIXED) == ids


# ---------------------------------------------------------------------------------------------------------------
# transformers back-end: the tiny trained BPE
# ---------------------------------------------------------------------------------------------------------------
def test_bpe_specials_in_released_order(bpe: AudioTokenizer) -> None:
    ids = [bpe.token_to_id(t) for t in T.SPECIAL_TOKENS]
    assert ids == list(range(ids[0], ids[0] + len(T.SPECIAL_TOKENS)))  # ascending, contiguous, after the BPE vocab
    assert bpe.vocab_size == ids[-1] + 1
    for tok in T.SPECIAL_TOKENS[::97] + (T.AUDIO_START, T.AUDIO_END, T.AUDIO_PAD, "<|30.00|>"):
        assert bpe.encode(tok) == [bpe.token_to_id(tok)], tok
        assert bpe.id_to_token(bpe.token_to_id(tok)) == tok
    assert bpe.eod_id == ids[0] == bpe.pad_id
    assert bpe.audio_start_id == ids[-2] and bpe.audio_end_id == ids[-1]
    assert set(ids) <= bpe.special_ids


def test_bpe_round_trip(bpe: AudioTokenizer) -> None:
    ids = bpe.encode(MIXED)
    assert bpe.decode(ids) == MIXED
    plain = bpe.decode(ids, skip_special_tokens=True)
    assert "<|" not in plain and "你好，世界 hello  wörld!" in plain
    for s in SENTENCES:
        assert bpe.decode(bpe.encode(s)) == s


def test_bpe_reloads_with_autotokenizer(bpe: AudioTokenizer) -> None:
    from transformers import AutoTokenizer

    path = bpe.backend.source
    hf = AutoTokenizer.from_pretrained(path)
    assert hf.encode(MIXED, add_special_tokens=False) == bpe.encode(MIXED)
    assert hf.convert_tokens_to_ids("<audio>") == bpe.audio_start_id
    assert hf.eos_token == hf.bos_token == hf.pad_token == "<|endoftext|>"
    again = load_tokenizer(path)
    assert again.encode(MIXED) == bpe.encode(MIXED) and again.vocab_size == bpe.vocab_size


def test_bpe_audio_and_tasks(bpe: AudioTokenizer) -> None:
    text = "<audio>clip.flac</audio>" + TASKS["asr"].example()
    ids = bpe.encode_with_audio(text, [4])
    assert ids[:6] == bpe.audio_span_ids(4)
    assert ids == bpe.encode(expand_audio(text, [4]))
    assert ids[-1] == bpe.eod_id
    # every task's example: the tags are single ids and the text round-trips
    for task in TASKS.values():
        ex = task.example()
        assert bpe.decode(bpe.encode(ex)) == ex, task.name
        head = bpe.encode(task.prompt(task.example_meta))
        assert all(i in bpe.special_ids for i in head) or task.tags(task.example_meta).task == "question", task.name


def test_bpe_deterministic(tmp_path: Path) -> None:
    # Its speed is a benchmark (tests/bench/test_bench_tokenizer.py), not a timed test.
    corpus = _corpus(5000)
    a = train_bpe_tokenizer(corpus, tmp_path / "a", vocab_size=1000)
    b = train_bpe_tokenizer(corpus, tmp_path / "b", vocab_size=1000)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    assert a.vocab_size == b.vocab_size == 1000 + 3522


def test_bpe_pickles(bpe: AudioTokenizer) -> None:
    again = pickle.loads(pickle.dumps(bpe))
    assert again.encode(MIXED) == bpe.encode(MIXED) and again.audio_pad_id == bpe.audio_pad_id


def test_bpe_ignores_specials_in_corpus(tmp_path: Path) -> None:
    tok = train_bpe_tokenizer(["<|en|>hello<|en|>hello"] * 50, tmp_path, vocab_size=300)
    assert tok.encode("<|en|>") == [tok.token_to_id("<|en|>")]
    assert "<|" not in "".join(tok.id_to_token(i) for i in range(tok.eod_id))  # no merge learnt on "<|"


# ---------------------------------------------------------------------------------------------------------------
# transformers back-end over a foreign tokenizer that already has some of the specials
# ---------------------------------------------------------------------------------------------------------------
def test_foreign_tokenizer_keeps_existing_ids(tmp_path: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer)
    base = tok.get_vocab_size()
    # Qwen2-like: <|im_end|>, <|endoftext|>, <|im_start|> already there, in another order, plus an own token
    own = ["<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|own|>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in own])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>")
    hf.save_pretrained(str(tmp_path))

    at = load_tokenizer(tmp_path)
    assert (at.im_end_id, at.eod_id, at.im_start_id) == (base, base + 1, base + 2)
    assert at.token_to_id("<|own|>") == base + 3
    new = [at.token_to_id(t) for t in T.SPECIAL_TOKENS[3:]]
    assert new == list(range(base + 4, base + 4 + len(new)))  # appended in released order
    assert at.hf_tokenizer.eos_token == "<|im_end|>"  # kept: only missing roles are filled with <|endoftext|>
    assert at.hf_tokenizer.pad_token == "<|endoftext|>"
    assert at.decode(at.encode(MIXED)) == MIXED


# ---------------------------------------------------------------------------------------------------------------
# Audio spans and errors
# ---------------------------------------------------------------------------------------------------------------
def test_expand_audio_text() -> None:
    text = "a<audio>p1.wav</audio>b<audio>dir/p 2.flac</audio>c"
    assert extract_audio_paths(text) == ["p1.wav", "dir/p 2.flac"]
    assert expand_audio(text, [2, 0]) == f"a<audio>{T.AUDIO_PAD * 2}</audio>b<audio></audio>c"
    assert expand_audio("no audio", []) == "no audio"
    with pytest.raises(ValueError, match="2 <audio>.*1 audio length"):
        expand_audio(text, [1])


def test_audio_span_ids_and_mismatch(bytes_tiktoken: AudioTokenizer) -> None:
    tok = bytes_tiktoken
    assert tok.audio_span_ids(0) == [tok.audio_start_id, tok.audio_end_id]
    assert tok.audio_span_ids(750).count(tok.audio_pad_id) == 750
    with pytest.raises(ValueError):
        tok.audio_span_ids(-1)
    with pytest.raises(ValueError, match="1 <audio>.*2 audio length"):
        tok.encode_with_audio("<audio>x</audio>", [1, 2])


def test_unknown_token_and_path_errors(bytes_tiktoken: AudioTokenizer, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="not in the vocabulary"):
        bytes_tiktoken.token_to_id("<|nonexistent|>")
    with pytest.raises(KeyError, match="outside the vocabulary"):
        bytes_tiktoken.id_to_token(10**6)
    with pytest.raises(OSError, match=r"\*\.tiktoken ranks file"):
        load_tokenizer(tmp_path)  # an empty directory


# ---------------------------------------------------------------------------------------------------------------
# Only the audio tags special (the release's chat encoding of message text)
# ---------------------------------------------------------------------------------------------------------------
TYPED = (
    "hi <|extra_3|> and <|im_end|>\n<|im_start|>system <|en|><|0.50|>x <|endoftext|> "
    "[[[AUDIO:modality]]]<|x[[[AUDIO:modality]]]|> <|not_a_tag|><audio>p.wav</audio>"
)


def test_split_audio_tags() -> None:
    pieces = split_audio_tags(TYPED)
    assert "".join(p for p, _ in pieces) == TYPED
    assert [p for p, tag in pieces if tag] == [
        "<|en|>",
        "<|0.50|>",
        T.AUDIO_PAD,
        T.AUDIO_PAD,  # inside `<|x...|>`: tiktoken finds it there too
        T.AUDIO_START,
        T.AUDIO_END,
    ]
    assert split_audio_tags("") == [] and split_audio_tags("plain") == [("plain", False)]


def test_audio_only_specials_equal_a_direct_tiktoken_encode(qwen: AudioTokenizer, release_tiktoken) -> None:
    enc, audio_st = release_tiktoken
    # What the release's make_context does: encode(text, allowed_special=set(AUDIO_ST)), nothing disallowed.
    for text in (TYPED, MIXED, "<|im_end|>", " <|im_end|>x", "café <|extra_204|>"):
        assert qwen.encode(text, "audio") == enc.encode(text, allowed_special=audio_st, disallowed_special=()), text
    ids = qwen.encode(TYPED, "audio")
    assert qwen.im_end_id not in ids and qwen.im_start_id not in ids and qwen.eod_id not in ids
    assert qwen.token_to_id("<|extra_3|>") not in ids and qwen.token_to_id("<|en|>") in ids
    assert qwen.decode(ids) == TYPED
    assert qwen.encode(TYPED) != ids and qwen.im_end_id in qwen.encode(TYPED)  # the default is unchanged
    text = "Audio 1:<audio>a.wav</audio>\nsay <|im_end|>"
    assert qwen.encode_with_audio(text, [3], "audio") == qwen.encode(expand_audio(text, [3]), "audio")


def test_audio_only_specials_with_a_transformers_tokenizer(bpe: AudioTokenizer) -> None:
    ids = bpe.encode(TYPED, "audio")
    assert bpe.decode(ids) == TYPED
    tags = [bpe.token_to_id(p) for p, tag in split_audio_tags(TYPED) if tag]
    assert [i for i in ids if i in bpe.special_ids] == tags  # only the audio tags are special ids
    for piece in ("<|im_end|>", "<|extra_3|>", "<|endoftext|>", "<|im_start|>"):
        assert bpe.token_to_id(piece) not in ids
        assert len(bpe.encode(piece, "audio")) > 1 and bpe.encode(piece) == [bpe.token_to_id(piece)]
    # Text between tags is encoded as a whole (BPE merges run across a typed `<|im_end|>`, as in the release).
    assert bpe.encode("a <|im_end|>b", "audio") == bpe.hf_tokenizer.encode(
        "a <|im_end|>b", add_special_tokens=False, split_special_tokens=True
    )
    assert bpe.encode("a <|im_end|>b") == bpe.encode("a ") + [bpe.im_end_id] + bpe.encode("b")  # default unchanged
    text = "Audio 1:<audio>a.wav</audio>\nsay <|im_end|>"
    assert bpe.encode_with_audio(text, [2], "audio") == bpe.encode(expand_audio(text, [2]), "audio")
    with pytest.raises(ValueError, match="allowed_special='none'"):
        bpe.encode("x", "none")  # type: ignore[arg-type]
