"""A run that dies with loader workers alive exits: the workers ignore SIGTERM (a preempted rank must outlive them to
save), so the trainer stops them itself instead of leaving interpreter exit waiting on them forever."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import subprocess_env, train_overrides


def test_fatal_data_error_with_workers_exits_naming_the_shard(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "shard-000000.tar").write_text("not a tar")
    overrides = train_overrides(corpus, tmp_path / "run", "data.num_workers=1", f"data.sources.asr.shards={bad}")
    r = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.pretrain", *overrides],
        capture_output=True,
        text=True,
        timeout=180,  # before the fix: the error printed at once, then the process never exited
        env=subprocess_env(),
    )
    assert r.returncode != 0
    assert "source 'asr' has no readable shard" in r.stderr and "shard-000000.tar" in r.stderr
