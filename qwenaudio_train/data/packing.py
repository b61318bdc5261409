"""Packing: the examples of one micro-batch share LLM rows up to a token budget, and the host-side bookkeeping of a
batch (audio spans, target positions) that the model would otherwise find with device syncs.

Owns: the packing plan (`pack_rows`: first-fit decreasing on token count for the number of rows, then rows
of even length; deterministic), the packed token tensors
(`pack_tokens`: position ids restarting at 0 per sample, labels that never cross a sample boundary, the
packed-document layout `sample_spans`), and the host-side indices every training batch can carry (`audio_spans`,
`target_index`).
Must not: read audio, tokenize, know the model or a device (everything here is CPU tensors built in the collate
function), or reorder the samples of a batch as the trainer sees them: `sample_spans` and the batch's `tasks` /
`keys` stay in the order the loader handed the examples over.

Layout of a packed micro-batch of N samples in R rows of S tokens::

    row r: [sample a: ids ...][sample b: ids ...] ... [pad ...]     position_ids: 0..len_a-1, 0..len_b-1, ..., 0..
    sample_spans [N, 3] = (row, start, end) of each sample, end exclusive, in the examples' order
    labels[start] = -100 for every sample: the last token of the previous sample predicts nothing

The encoder's clips follow the audio spans row-major (row 0's samples left to right, then row 1 ...), the order in
which the model finds the spans in input_ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IGNORE_INDEX = -100


def pack_rows(lengths: Sequence[int], budget: int, keys: Sequence[str] | None = None) -> list[list[int]]:
    """Indices of the samples in each row. First-fit decreasing on `lengths` decides the number of rows R; the
    samples are then dealt, longest first, to the least-filled of R rows (rows of even length: every row is padded
    to the longest one), unless that breaks the budget, when first-fit's rows stay. Ties go by index, so the plan
    depends on the lengths alone. ValueError naming the sample and `data.max_tokens_per_row` if one sample
    exceeds `budget`."""
    if budget < 1:
        raise ValueError(f"data.max_tokens_per_row={budget}: must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        if n > budget:
            name = keys[i] if keys is not None else f"#{i}"
            raise ValueError(
                f"sample {name!r} has {n} tokens, more than data.max_tokens_per_row={budget}: raise "
                f"data.max_tokens_per_row to at least {n} (or data.max_tokens for chat, to skip such samples)"
            )
        for r, room in enumerate(free):
            if n <= room:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(budget - n)
    even: list[list[int]] = [[] for _ in rows]
    fill = [0] * len(rows)
    for i in order:
        r = min(range(len(rows)), key=lambda r: (fill[r], r))
        even[r].append(i)
        fill[r] += lengths[i]
    return even if max(fill, default=0) <= budget else rows


def pack_tokens(examples: Sequence[Any], pad_id: int, max_tokens_per_row: int) -> dict[str, Any]:
    """Pack examples (with `input_ids`, `labels` lists and a `key`) into rows of at most `max_tokens_per_row`.

    Returns input_ids / attention_mask / labels / position_ids [R, S] (S = the longest packed row),
    sample_spans [N, 3] (row, start, end) in the examples' order, and `order`: the example indices row-major
    (the order of their audio clips)."""
    lengths = [len(e.input_ids) for e in examples]
    rows = pack_rows(lengths, max_tokens_per_row, [str(getattr(e, "key", i)) for i, e in enumerate(examples)])
    seq = max(sum(lengths[i] for i in row) for row in rows)
    R = len(rows)
    input_ids = torch.full((R, seq), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((R, seq), dtype=torch.long)
    labels = torch.full((R, seq), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((R, seq), dtype=torch.long)
    sample_spans = torch.zeros((len(examples), 3), dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            e, n = examples[i], lengths[i]
            sl = slice(start, start + n)
            input_ids[r, sl] = torch.tensor(e.input_ids)
            attention_mask[r, sl] = 1
            position_ids[r, sl] = torch.arange(n)
            if e.labels:
                labels[r, sl] = torch.tensor(e.labels)
            # Position start - 1 (the previous sample's last token) would predict this label: never a target.
            labels[r, start] = IGNORE_INDEX
            sample_spans[i] = torch.tensor([r, start, start + n])
            start += n
        # The padding tail counts up from 0 as a sequence of its own: flash attention's varlen path (which splits
        # rows where position ids restart) then never joins it to the last sample.
        position_ids[r, start:] = torch.arange(seq - start)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "position_ids": position_ids,
        "sample_spans": sample_spans,
        "order": [i for row in rows for i in row],
    }


def audio_spans(input_ids: torch.Tensor, start_id: int, end_id: int) -> torch.Tensor:
    """(row, start, end) of every `<audio> ... </audio>` span of a host tensor input_ids [B, S], row-major, as a
    LongTensor [A, 3]: what `QwenAudioModel.audio_spans` finds with `nonzero()` on the device."""
    starts = (input_ids == start_id).nonzero()
    ends = (input_ids == end_id).nonzero()
    if starts.shape[0] != ends.shape[0] or bool((starts[:, 0] != ends[:, 0]).any()):
        raise ValueError(f"input_ids hold {starts.shape[0]} <audio> but {ends.shape[0]} </audio> tokens (or a span "
                         "crosses a row)")  # fmt: skip
    return torch.cat([starts, ends[:, 1:]], dim=1)


def target_index(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices (row * S + t) of the positions t of labels [B, S] whose next token is a target, row-major:
    the rows the LM head runs on, without a boolean mask on the device."""
    seq = labels.shape[1]
    t = (labels[:, 1:] != IGNORE_INDEX).nonzero()
    return t[:, 0] * seq + t[:, 1]
