"""Damaged shards in a 2-rank run: training goes on, and ``data/bad/<source>`` is the sum over the ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]


def test_bad_shards_are_counted_over_both_ranks(corpus, tmp_path):
    src = tmp_path / "asr"
    src.mkdir()
    for tar in sorted((corpus / "train" / "asr").rglob("*.tar")):
        (src / tar.name).symlink_to(tar)
    for i in range(4):  # not tars: each is handed out as one bad sample of its source, by whichever rank opens it
        (src / f"bad-{i}.tar").write_text("not a tar\n")
    run = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "qwenaudio_train.pretrain",
         *train_overrides(corpus, run, f"data.sources.asr.shards={src}", "data.sources.asr.weight=20",
                          "trainer.max_steps=4", "trainer.save_every=4")],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(OMP_NUM_THREADS="1"), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    last = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 4
    per_rank = []
    for rank in (0, 1):  # each rank's own count, as its data position in the checkpoint of that step holds it
        state = json.loads((run / "checkpoints" / "step_00000004" / f"data_state_rank{rank}.json").read_text())
        per_rank.append(sum(slot["counts"]["bad"].get("asr", 0) for slot in state["slots"].values()))
    assert all(n > 0 for n in per_rank)  # both ranks met damaged shards: rank 0's count alone would be short
    assert last.get("data/bad/asr", 0) == sum(per_rank), (per_rank, last)
    assert last["data_bad"] == sum(per_rank)
