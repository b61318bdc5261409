"""Elastic resume (issue 15): a run continued on another number of ranks (``trainer.elastic=true``) trains the same
global batches with the same optimizer trajectory. ZeRO-2, and ZeRO-3 with stage 1's frozen LLM: 2 ranks
(accumulation 1) -> 1 rank (accumulation 2) and 1 -> 2; a change of loader workers; a two-node torchrun job on one
machine (c10d rendezvous on localhost) resumed as one node of two ranks and as two nodes again.

"Killed" = ``conftest.rollback``: a finished run cut back to a mid-run checkpoint, so every resumed step is compared
with the same uninterrupted run. The sample keys each step consumed are recorded by running this module as the
entry point (``python -m tests.integration.test_elastic <overrides>``, or ``train_recording`` in-process):
``<run_dir>/keys_rank<R>.jsonl``, one line per micro-batch; the trainer itself is unchanged.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import rollback, subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]
STEPS, CUT = 6, 3  # debug runs: 6 steps, checkpoints at 3 and 6; the "kill" leaves step 3


def train_recording(overrides: list[str]) -> Any:
    """Train like qwenaudio-pretrain, writing the keys of every micro-batch the trainer takes (with its step)."""
    from qwenaudio_train.trainer import Trainer

    trainer = Trainer(compose("pretrain", overrides))
    out = Path(trainer.run_dir) / f"keys_rank{trainer.dist.rank}.jsonl"

    def batches():
        for batch in trainer.loader:
            with out.open("a") as f:
                f.write(json.dumps({"step": trainer.step + 1, "keys": list(batch["keys"])}) + "\n")
            yield batch

    try:
        trainer._train(batches())
    finally:
        trainer.loader.close()
    return trainer


def _torchrun(nproc: int, overrides: list[str]) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    done = subprocess.run(
        [*cmd, "-m", "tests.integration.test_elastic", *overrides],
        cwd=REPO,
        env=subprocess_env(OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run)}


def _keys(run: Path, steps: range) -> Counter[str]:
    """The multiset of sample keys the steps in ``steps`` consumed, over every rank."""
    keys: Counter[str] = Counter()
    for file in run.glob("keys_rank*.jsonl"):
        for line in file.read_text().splitlines():
            record = json.loads(line)
            if record["step"] in steps:
                keys.update(record["keys"])
    return keys


def _killed_copy(run: Path, to: Path) -> Path:
    """``run`` as if killed right after its checkpoint of step CUT, without its recorded keys."""
    shutil.copytree(run, to)
    rollback(to, CUT)
    for file in to.glob("keys_rank*.jsonl"):
        file.unlink()
    return to


def _assert_continues(ref: Path, first: Path, resumed: Path, micro_batches: int) -> None:
    """Steps after CUT: the reference's losses (1e-5); the keys of the whole run (``first``'s up to CUT, then the
    resumed run's): the reference's exactly, ``micro_batches`` x 4 samples a step."""
    want, got = _losses(ref), _losses(resumed)
    assert sorted(got) == list(range(1, STEPS + 1))
    assert [got[s] for s in range(CUT + 1, STEPS + 1)] == pytest.approx(
        [want[s] for s in range(CUT + 1, STEPS + 1)], abs=1e-5
    )
    whole = _keys(first, range(1, CUT + 1)) + _keys(resumed, range(CUT + 1, STEPS + 1))
    assert whole == _keys(ref, range(1, STEPS + 1))
    assert sum(whole.values()) == STEPS * micro_batches * 4  # debug: batch_size 4


@pytest.fixture(scope="module", params=[(2, "none"), (3, "pretrain")], ids=["zero2", "zero3-frozen-llm"])
def two_rank_run(request, corpus, tmp_path_factory) -> tuple[str, Path]:
    """The uninterrupted reference: 2 ranks x accumulation 1 (global batch 2 x 4 samples), keys recorded. ZeRO-3
    with stage 1's freeze (the LLM frozen: parameters without optimizer state)."""
    zero, freeze = request.param
    run = tmp_path_factory.mktemp(f"elastic_z{zero}") / "two_ranks"
    _torchrun(
        2, train_overrides(corpus, run, f"deepspeed=zero{zero}", f"trainer.freeze={freeze}", "trainer.keep_last=5")
    )
    return f"deepspeed=zero{zero} trainer.freeze={freeze}", run


def test_two_ranks_resumed_on_one_rank_continue_exactly(corpus, two_rank_run, tmp_path):
    setup, ref = two_rank_run
    run = _killed_copy(ref, tmp_path / "to_one_rank")
    trainer = train_recording(train_overrides(corpus, run, *setup.split(), "trainer.elastic=true"))
    assert trainer.grad_accum == 2  # the global batch of 2 ranks x 1, on 1 rank
    assert "elastic resume: 1 ranks x 2 accumulation (was 2 x 1)" in trainer.resume_notes
    converted = run / "checkpoints" / f"step_{CUT:08d}" / "universal"
    assert converted.is_dir() and not converted.with_name("universal.partial").exists()
    _assert_continues(ref, ref, run, micro_batches=2)


def test_one_rank_with_accumulation_resumed_on_two_ranks_continues_exactly(corpus, two_rank_run, tmp_path):
    setup, ref = two_rank_run
    one = tmp_path / "one_rank"  # 1 rank x accumulation 2: the same global batches as the 2-rank reference
    train_recording(train_overrides(corpus, one, *setup.split(), "trainer.grad_accum=2", "trainer.keep_last=5"))
    assert list(_losses(one).values()) == pytest.approx(list(_losses(ref).values()), abs=1e-5)
    run = _killed_copy(one, tmp_path / "to_two_ranks")
    out = _torchrun(2, train_overrides(corpus, run, *setup.split(), "trainer.grad_accum=2", "trainer.elastic=true"))
    assert "elastic resume: 2 ranks x 1 accumulation (was 1 x 2)" in out
    _assert_continues(ref, one, run, micro_batches=2)
    state = json.loads((run / "checkpoints" / f"step_{STEPS:08d}" / "trainer_state.json").read_text())
    assert (state["world_size"], state["global_micro_batches"]) == (2, 2)


def test_a_change_of_loader_workers_continues_exactly(corpus, tmp_path):
    ref = tmp_path / "no_workers"
    train_recording(train_overrides(corpus, ref, "trainer.keep_last=5", "data.num_workers=0"))
    run = _killed_copy(ref, tmp_path / "two_workers")
    train_recording(train_overrides(corpus, run, "trainer.keep_last=5", "data.num_workers=2"))
    _assert_continues(ref, ref, run, micro_batches=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(run: Path, overrides: list[str]) -> None:
    """launch/multinode.sh run twice on this machine: two nodes of one rank, one c10d rendezvous on localhost."""
    env = subprocess_env(
        NNODES="2", NPROC="1", MASTER_ADDR="localhost", MASTER_PORT=str(_free_port()), PYTHON=sys.executable
    )
    env["OMP_NUM_THREADS"] = "1"
    launch = ["bash", str(REPO / "launch" / "multinode.sh"), *overrides]
    nodes = [subprocess.Popen(launch, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    nodes.append(
        subprocess.Popen(launch, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    )
    outs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outs)


def test_two_nodes_resumed_as_one_node_of_two_ranks_and_as_two_nodes_again(corpus, tmp_path):
    run = tmp_path / "nodes"
    overrides = train_overrides(corpus, run, "trainer.save_every=2", "trainer.keep_last=5")
    _two_nodes(run, overrides)  # the uninterrupted reference: 2 nodes x 1 rank
    want = _losses(run)
    assert sorted(want) == list(range(1, STEPS + 1))
    ref = json.loads((run / "checkpoints" / f"step_{STEPS:08d}" / "trainer_state.json").read_text())
    assert ref["world_size"] == 2
    rollback(run, 2)  # killed after step 2: one node of two ranks continues
    env = subprocess_env(NPROC="2", PYTHON=sys.executable, OMP_NUM_THREADS="1")
    subprocess.run(["bash", str(REPO / "launch" / "train.sh"), *overrides], cwd=REPO, env=env, check=True, timeout=600)
    assert _losses(run) == want
    rollback(run, 4)  # killed after step 4: two nodes again
    _two_nodes(run, overrides)
    assert _losses(run) == want


if __name__ == "__main__":  # under torchrun: one rank of a recorded run
    train_recording(sys.argv[1:])
