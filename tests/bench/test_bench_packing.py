"""Packing (issue 11, items 1 and 8): padding of the loader's batches on the demo mixture, packing off vs on.

The demo experiment's mixture (``experiment=demo``: its sources and weights, the data defaults: batch 8,
``chunk_batches`` 16, duration-sorted chunks) over ``artifacts/synthetic`` (``make data``) when it is built, else
the same recipe (``data_recipes.synthetic``, preset demo) built into a temporary folder. Sources whose shards are
not in the corpus (the long-form ones of a corpus built before them) are left out and listed.

For each variant the same samples in the same batches (one ``BatchStream``, seed 0; only the collate function
differs: ``collate_for`` as the trainer binds it) go through ``flops.BatchInfo`` / ``step_flops`` /
``combine``, the accounting ``metrics.jsonl`` reports:

* ``padding/encoder``: share of the encoder frames computed that are padding (every clip of a micro-batch runs
  at its longest clip's length; packing keeps the clip set of a micro-batch, so only the batching decides it);
* ``padding/llm``: share of the LLM tokens computed that are padding (rows x row length).

Decoding and log-mel are replaced by the lengths they produce (``LengthOnlyProcessor`` of the data benchmark,
checked there against ``SampleProcessor``): padding depends on lengths only. The issue's target: < 3% on both sides
with packing. Results: ``bench_results/packing.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qwenaudio_train.data.loader import BatchingConfig, BatchStream
from qwenaudio_train.data.processing import collate_for
from qwenaudio_train.data.stream import SourceSpec, expand_shards
from qwenaudio_train.flops import BatchInfo, ModelDims, combine, step_flops
from tests.bench.conftest import REPO
from tests.bench.test_bench_data import LengthOnlyProcessor

pytestmark = pytest.mark.bench

BATCHES = 200
TARGET = 0.03
BUDGETS = (256, 512, 2048)  # data.max_tokens_per_row (2048: the default)
CHUNKS = (16, 64)  # data.chunk_batches: 16 = the default


@pytest.fixture(scope="module")
def demo_corpus(tmp_path_factory) -> Path:
    built = REPO / "artifacts" / "synthetic"
    if (built / ".done").exists() and (built / "tokenizer").is_dir():
        return built
    from data_recipes.synthetic import PRESETS, build_corpus
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    root = tmp_path_factory.mktemp("demo_corpus")
    build_corpus(root, PRESETS["demo"], seed=0, workers=1, log=lambda _: None)
    lines = [ln for ln in (root / "text.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
    train_bpe_tokenizer(lines, root / "tokenizer")
    return root


def _measure(sources: list[SourceSpec], tok: Any, data: Any, dims: ModelDims, chunk: int, packing: bool,
             budget: int) -> dict[str, Any]:  # fmt: skip
    batching = BatchingConfig(batch_size=data.batch_size, chunk_batches=chunk, open_shards=data.open_shards,
                              sort_by=data.sort_by)  # fmt: skip
    settings = type("Data", (), {"packing": packing, "max_tokens_per_row": budget})()
    stream = BatchStream(sources, LengthOnlyProcessor(tok), tok.eod_id, batching, seed=0,
                         collate_fn=collate_for(None, settings, tok))  # fmt: skip
    parts, keys, rows, samples = [], [], 0, 0
    for _ in range(BATCHES):
        b = next(stream)
        parts.append(step_flops(dims, BatchInfo.from_batch(b), "pretrain"))
        keys.append(tuple(b["keys"]))
        rows += b["input_ids"].shape[0]
        samples += len(b["tasks"])
    total = combine(parts)
    return {
        "padding/encoder": round(total["padding/encoder"], 4),
        "padding/llm": round(total["padding/llm"], 4),
        "rows_per_batch": round(rows / BATCHES, 2),
        "samples_per_batch": round(samples / BATCHES, 2),
        "keys": keys,
    }


def test_packing_padding(record, demo_corpus):
    from qwenaudio_train.config import compose
    from qwenaudio_train.tokenizer import load_tokenizer

    cfg = compose("pretrain", ["experiment=demo", f"data.root={demo_corpus}"])
    tok = load_tokenizer(demo_corpus / "tokenizer")
    dims = ModelDims.from_config(cfg.model_config(tok))
    present = {n: s for n, s in cfg.data.sources.items() if s.weight and Path(str(s.shards)).exists()}
    left_out = sorted(set(cfg.data.sources) - set(present))
    sources = [SourceSpec(n, expand_shards(s.shards), s.weight) for n, s in present.items()]

    results: dict[str, Any] = {"corpus": str(demo_corpus.relative_to(REPO)) if demo_corpus.is_relative_to(REPO)
                               else "built in a temporary folder (preset demo)",  # fmt: skip
                               "sources": {s.name: s.weight for s in sources}, "left_out": left_out,
                               "batches": BATCHES, "batch_size": cfg.data.batch_size, "variants": {}}  # fmt: skip
    for chunk in CHUNKS:
        off = _measure(sources, tok, cfg.data, dims, chunk, False, 0)
        results["variants"][f"chunk{chunk}/padded"] = {k: v for k, v in off.items() if k != "keys"}
        for budget in BUDGETS:
            on = _measure(sources, tok, cfg.data, dims, chunk, True, budget)
            assert on["keys"] == off["keys"]  # the same samples in the same micro-batches
            assert on["padding/encoder"] == off["padding/encoder"]  # packing keeps each micro-batch's clips
            results["variants"][f"chunk{chunk}/packed{budget}"] = {k: v for k, v in on.items() if k != "keys"}
    met = [k for k, v in results["variants"].items() if max(v["padding/encoder"], v["padding/llm"]) < TARGET]
    results["target"] = {"share": TARGET, "met_by": met}
    line = "; ".join(f"{k}: encoder {v['padding/encoder']:.1%} llm {v['padding/llm']:.1%} "
                     f"({v['rows_per_batch']} rows)" for k, v in results["variants"].items())  # fmt: skip
    record("packing", results, line)
