"""Shared test fixtures and markers. Tests never need network or hub weights. Tests that compare with the
release's files or real recordings read the sibling `shared/` folder: without it they skip, except under
`CI=true`, where a missing `shared/` fails them loudly (CI must never skip the reference comparisons silently).

Markers by folder: `tests/unit` -> `unit`, `tests/integration` -> `integration`, `tests/bench` -> `bench`; `slow`
and `gpu` are set by the tests themselves (`make test-unit`, `make test`, `make test-all`, `make bench`)."""

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


def _shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_dir():
        message = f"{path} is missing: the reference comparisons that read shared/{relative} cannot run"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: place the shared/ folder beside the repository)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_spec() -> Path:
    return _shared("spec")


@pytest.fixture(scope="session")
def real_audio_dir() -> Path:
    return _shared("fixtures/real_audio")


@pytest.fixture(scope="session")
def release_tiktoken(shared_spec: Path) -> tuple[object, set[str]]:
    """A bare tiktoken Encoding of the released tokenizer, built from the shared files (not through our tokenizer),
    and the audio tags (the release's AUDIO_ST) its make_context allows in text."""
    import base64
    import json

    import tiktoken

    from qwenaudio_train.tokenizer import QWEN_PAT_STR

    ranks = {}
    for line in (shared_spec / "qwen.tiktoken").read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    spec = json.loads((shared_spec / "qwen_audio_special_tokens.json").read_text(encoding="utf-8"))
    specials = spec["qwen_base_special_tokens"] + spec["audio_special_tokens"]
    enc = tiktoken.Encoding(
        "release",
        pat_str=QWEN_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={t: i for i, t in enumerate(specials, start=len(ranks))},
    )
    return enc, set(spec["audio_special_tokens"])


_FOLDER_MARKERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "bench": pytest.mark.bench}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(REPO / "tests").parts[0]
        if folder in _FOLDER_MARKERS:
            item.add_marker(_FOLDER_MARKERS[folder])


@pytest.fixture(autouse=True)
def _restore_environ():
    """In-process training sets the process-group variables (RANK, MASTER_PORT...); child processes started by
    later tests must not inherit them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
