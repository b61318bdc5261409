"""Packing (data.packing): the packer's plan and layout, and a packed batch's loss, per-sample sums and gradients
equal to the padded batch of the same samples (tiny model, float32, CPU) for every back-end that runs on a CPU,
tagged and chat samples, with LoRA."""

from __future__ import annotations

import pytest
import torch

from qwenaudio_train import audio as A
from qwenaudio_train import lora as L
from qwenaudio_train.chat.processing import ChatExample, collate_chat
from qwenaudio_train.data.packing import audio_spans, pack_rows
from qwenaudio_train.data.processing import IGNORE_INDEX, Example, collate
from qwenaudio_train.flops import BatchInfo, ModelDims, step_flops
from qwenaudio_train.model import ModelConfig, QwenAudioModel, build_model
from qwenaudio_train.model.qwen_audio import _token_samples, _varlen_kwargs

VOCAB = 320
PAD, START, END, EOD = 300, 301, 302, 303
N_MELS = 80
IDS = (START, END)
TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _fresh_compile_caches():
    """Flex kernels compiled here must not meet other modules' shapes (and vice versa): a kernel recompiled with
    dynamic shapes fails to build on a CPU (see `run`)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_model(attn: str = "eager", seed: int = 0) -> QwenAudioModel:
    cfg = ModelConfig(preset="tiny", vocab_size=VOCAB, audio_pad_id=PAD, audio_start_id=START, audio_end_id=END,
                      eod_id=EOD, attn_implementation=attn)  # fmt: skip
    torch.manual_seed(seed)
    return build_model(cfg).eval()  # eval: no dropout, so both layouts see the same function


def span(frames: int) -> list[int]:
    return [START] + [PAD] * A.pooled_frames(A.encoder_frames(frames)) + [END]


def tagged(i: int, frames: int, prefix: int, target: int, g: torch.Generator) -> Example:
    ids = span(frames) + torch.randint(0, 290, (prefix,), generator=g).tolist()
    text = torch.randint(0, 290, (target,), generator=g).tolist() + [EOD]
    return Example(key=f"s{i}", source="src", task=("asr", "aac")[i % 2], input_ids=ids + text,
                   labels=[IGNORE_INDEX] * len(ids) + text, mel=torch.randn(N_MELS, frames, generator=g),
                   duration=frames / 100)  # fmt: skip


def tagged_examples(seed: int = 0) -> list[Example]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(120, 3, 9), (40, 2, 4), (300, 4, 12), (64, 2, 3), (90, 3, 7), (17, 1, 2)]
    return [tagged(i, *s, g) for i, s in enumerate(shapes)]


def chat_examples(seed: int = 1) -> list[ChatExample]:
    """Conversations with 0, 1 and 2 audios, targets (assistant turns) in the middle and at the end."""
    g = torch.Generator().manual_seed(seed)

    def text(n: int) -> list[int]:
        return torch.randint(0, 290, (n,), generator=g).tolist()

    out = []
    for i, clips in enumerate([(80,), (33, 150), (), (60,)]):
        ids: list[int] = text(4)
        labels = [IGNORE_INDEX] * len(ids)
        for frames in clips:
            ids += span(frames) + text(2)
            labels += [IGNORE_INDEX] * (len(span(frames)) + 2)
        for turn in range(2):
            reply = text(3 + i + turn) + [EOD]
            ids += reply
            labels += reply
            user = text(3)
            ids += user
            labels += [IGNORE_INDEX] * len(user)
        mels = [torch.randn(N_MELS, f, generator=g) for f in clips]
        out.append(ChatExample(key=f"c{i}", source="chat", task=("chat", "qa")[i % 2], input_ids=ids, labels=labels,
                               mels=mels, n_mels=N_MELS, duration=sum(clips) / 100))  # fmt: skip
    return out


def run(model: QwenAudioModel, batch: dict, **kw) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(loss_sum, n_tokens, per-sample sums; every parameter's gradient). FlexAttention has no backward on a CPU
    (torch 2.13: NotImplementedError), so with flex_attention only the forward values are compared."""
    keys = ("input_ids", "attention_mask", "labels", "audio_features", "audio_lengths", "position_ids",
            "sample_spans", "audio_spans", "target_index")  # fmt: skip
    model.zero_grad(set_to_none=True)
    backward = model.llm.config._attn_implementation != "flex_attention"
    # Static shapes: inductor's CPU code for a flex kernel recompiled with dynamic shapes fails to build (torch
    # 2.13, "cur_qSplitSize8 was not declared"); GPUs take Triton's path.
    with torch.set_grad_enabled(backward), torch._dynamo.config.patch(automatic_dynamic_shapes=False):
        out = model(**{k: batch[k] for k in keys if k in batch}, **kw)
    if backward:
        out.loss_sum.backward()
    values = {k: getattr(out, k).detach() for k in ("loss_sum", "n_tokens", "sample_loss_sum", "sample_tokens")}
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return values, grads


def assert_same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    (va, ga), (vb, gb) = a, b
    for k in va:
        assert va[k].shape == vb[k].shape, k
        assert (va[k].double() - vb[k].double()).abs().max() <= TOL, (k, va[k], vb[k])
    assert ga.keys() == gb.keys()
    if not ga:  # flex_attention on a CPU: forward only
        return
    worst = max((ga[n] - gb[n]).abs().max().item() for n in ga)
    assert worst <= TOL, worst


# --- the packer --------------------------------------------------------------------------------------------------


def test_first_fit_decreasing_plan_and_error():
    # first-fit decreasing needs 3 rows ([9, 1], [5, 4], [3]: the longest 10); dealt evenly the longest is 9
    assert pack_rows([5, 9, 3, 4, 1], 10) == [[1], [0, 4], [3, 2]]
    assert pack_rows([2, 2, 2], 10) == [[0, 1, 2]]
    # dealt evenly, a row would hold 5 + 3 + 3 > 10: first-fit decreasing's rows stay
    assert pack_rows([5, 5, 4, 3, 3], 10) == [[0, 1], [2, 3, 4]]
    with pytest.raises(ValueError, match=r"sample 'b' has 11 tokens.*data.max_tokens_per_row=10"):
        pack_rows([3, 11], 10, keys=["a", "b"])


def test_packed_layout():
    ex = tagged_examples()
    budget = 200
    b = collate(ex, EOD, packing=True, max_tokens_per_row=budget, audio_ids=IDS)
    R, S = b["input_ids"].shape
    assert R < len(ex) and S <= budget
    assert b["tasks"] == [e.task for e in ex] and b["keys"] == [e.key for e in ex]  # examples' order kept
    spans = b["sample_spans"].tolist()
    for e, (r, s, t) in zip(ex, spans):
        assert b["input_ids"][r, s:t].tolist() == e.input_ids
        assert b["position_ids"][r, s:t].tolist() == list(range(len(e.input_ids)))
        assert b["labels"][r, s] == IGNORE_INDEX  # the previous sample's last token predicts nothing
        assert b["labels"][r, s + 1 : t].tolist() == e.labels[1:]
    assert int(b["attention_mask"].sum()) == sum(len(e.input_ids) for e in ex)
    # clips follow the audio spans row-major; the spans are those the model would find itself
    found = [(r, s, t) for r, s, t in audio_spans(b["input_ids"], *IDS).tolist()]
    assert found == tiny_model().audio_spans(b["input_ids"]) == [tuple(x) for x in b["audio_spans"].tolist()]
    order = sorted(range(len(ex)), key=lambda i: (spans[i][0], spans[i][1]))
    assert b["audio_lengths"].tolist() == [ex[i].mel.shape[1] for i in order]
    # target_index: exactly the positions whose next label is a target
    flat = (b["labels"][:, 1:] != IGNORE_INDEX).nonzero()
    assert b["target_index"].tolist() == (flat[:, 0] * S + flat[:, 1]).tolist()
    with pytest.raises(ValueError, match="data.max_tokens_per_row=50"):
        collate(ex, EOD, packing=True, max_tokens_per_row=50)


def test_flash_attention_gets_one_sequence_per_sample_and_padding_tail():
    spans = torch.tensor([[0, 0, 3], [1, 0, 4], [0, 3, 5]])  # row 0: samples of 3 and 2 tokens + 1 padding
    kw = _varlen_kwargs(spans, torch.Size((2, 6)), torch.device("cpu"))
    assert kw["cu_seq_lens_q"].tolist() == kw["cu_seq_lens_k"].tolist() == [0, 3, 5, 6, 10, 12]
    assert kw["cu_seq_lens_q"].dtype == torch.int32 and kw["max_length_q"] == kw["max_length_k"] == 4
    # the sequences are exactly the runs of one sample (or of padding) in the flattened rows
    token_sample = _token_samples(spans, torch.Size((2, 6))).flatten().tolist()
    assert token_sample == [0, 0, 0, 2, 2, -1, 1, 1, 1, 1, -1, -1]
    cu = kw["cu_seq_lens_q"].tolist()
    assert all(len(set(token_sample[a:b])) == 1 for a, b in zip(cu, cu[1:]))


def test_flops_batch_info_reads_the_packed_layout():
    ex = tagged_examples()
    packed = collate(ex, EOD, packing=True, max_tokens_per_row=400)
    padded = collate(ex, EOD)
    info = BatchInfo.from_batch(packed)
    R = packed["input_ids"].shape[0]
    by_row = [sorted((s, t - s) for r, s, t in packed["sample_spans"].tolist() if r == row) for row in range(R)]
    assert info.row_segments == tuple(tuple(n for _, n in row) for row in by_row)
    assert sorted(n for row in info.row_segments for n in row) == sorted(len(e.input_ids) for e in ex)
    assert BatchInfo.from_batch(padded).row_segments is None
    d = ModelDims.from_model(tiny_model())
    a, b = step_flops(d, info, "pretrain"), step_flops(d, BatchInfo.from_batch(padded), "pretrain")
    assert a["flops"] == pytest.approx(b["flops"])  # the same samples: the same useful work
    assert a["padding/llm"] == pytest.approx(1 - sum(info.row_tokens) / (R * info.row_length))
    assert a["padding/llm"] < b["padding/llm"]


# --- equality with the padded batch ----------------------------------------------------------------------------


@pytest.mark.parametrize("attn", ["eager", "sdpa", "flex_attention"])
def test_packed_equals_padded_tagged(attn):
    model = tiny_model(attn)
    ex = tagged_examples()
    padded = run(model, collate(ex, EOD, audio_ids=IDS), return_logits=False)
    packed = collate(ex, EOD, packing=True, max_tokens_per_row=256, audio_ids=IDS)
    assert packed["input_ids"].shape[0] < len(ex)
    assert_same(run(model, packed, return_logits=False), padded)
    # the other two loss paths of the model agree too: full logits, and the boolean-mask fallback
    assert_same(run(model, packed, return_logits=True), padded)
    no_host = {k: v for k, v in packed.items() if k not in ("target_index", "audio_spans")}
    assert_same(run(model, no_host, return_logits=False), padded)


@pytest.mark.parametrize("attn", ["eager", "sdpa", "flex_attention"])
def test_packed_equals_padded_chat(attn):
    model = tiny_model(attn, seed=1)
    ex = chat_examples()
    padded_batch = collate_chat(ex, EOD, audio_ids=IDS)
    packed_batch = collate_chat(ex, EOD, packing=True, max_tokens_per_row=400, audio_ids=IDS)
    assert packed_batch["input_ids"].shape[0] < len(ex)
    assert packed_batch["n_audios"].tolist() == [1, 2, 0, 1]
    assert_same(run(model, packed_batch, return_logits=False), run(model, padded_batch, return_logits=False))


def test_packed_equals_padded_with_lora():
    model = tiny_model("sdpa", seed=2)
    L.apply_lora(model, L.LoraConfig(r=4, dropout=0.0))
    with torch.no_grad():  # adapters start at B = 0: give them a non-zero contribution
        for p in L.lora_parameters(model).values():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    ex = tagged_examples(seed=3)
    padded = run(model, collate(ex, EOD, audio_ids=IDS), return_logits=False)
    packed = run(model, collate(ex, EOD, packing=True, max_tokens_per_row=256, audio_ids=IDS), return_logits=False)
    assert any(".lora_" in n for n in packed[1])
    assert_same(packed, padded)


def test_host_side_spans_and_targets_do_not_change_the_padded_result():
    model = tiny_model()
    ex = tagged_examples()
    with_host = collate(ex, EOD, audio_ids=IDS)
    bare = {k: v for k, v in collate(ex, EOD).items() if k != "target_index"}
    assert "audio_spans" not in bare
    assert_same(run(model, with_host, return_logits=False), run(model, bare, return_logits=False))
