"""A process that leaves a loader with workers half-iterated still exits: the workers ignore SIGTERM (a preempted
rank must outlive them to save), so the loader stops them itself at interpreter exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_interpreter_exits_with_a_half_iterated_loader(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from qwenaudio_train.data.loader import BatchingConfig, StatefulLoader
        from qwenaudio_train.data.processing import SampleProcessor
        from qwenaudio_train.data.stream import SourceSpec, expand_shards
        from tests.unit.test_stream import _Tok, write_task_shards

        shards = write_task_shards(Path({str(tmp_path)!r}), "a", n_shards=2, per_shard=4)
        loader = StatefulLoader([SourceSpec("a", expand_shards(str(shards)), 1.0)],
                                SampleProcessor(_Tok(), train=True, seed=0), 0, BatchingConfig(batch_size=2), seed=0,
                                num_workers=1)
        LIVE = iter(loader)  # kept alive to the end: a worker is running when the interpreter exits
        next(LIVE)
        print("one batch", flush=True)
    """)
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,  # hung forever before
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert r.returncode == 0 and "one batch" in r.stdout, r.stderr[-2000:]
