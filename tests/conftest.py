"""Shared test fixtures. Tests never need network, hub weights or the sibling `shared/` folder to pass:
tests that read `shared/` skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_spec() -> Path:
    path = SHARED / "spec"
    if not path.is_dir():
        pytest.skip("shared/spec not present beside the repository")
    return path


@pytest.fixture(scope="session")
def real_audio_dir() -> Path:
    path = SHARED / "fixtures" / "real_audio"
    if not path.is_dir():
        pytest.skip("shared/fixtures/real_audio not present beside the repository")
    return path


@pytest.fixture(autouse=True)
def _restore_environ():
    """In-process training sets the process-group variables (RANK, MASTER_PORT...); child processes started by
    later tests must not inherit them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
