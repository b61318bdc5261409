"""The loader's data state: per logical stream, its position, counts and batches given; independent of the world
size and the loader workers. Owns the state's format, the upgrade of the earlier one-slot-per-rank-x-worker format
(version 1) and the merge of every rank's saved file into one state any rank of any world size reads its streams
from (``checkpoint.load``). Must not: read files or run streams (``checkpoint.py`` reads, ``loader.py`` runs).

A state: ``{"version": 2, "n_streams": L, "slots": {"<l>": {"chunk_start", "chunk_index", "next_batch", "counts",
"errors", "batches"}}}`` (a rank's file holds its own streams; the merged state all ``L``).
"""

from __future__ import annotations

from typing import Any

STATE_VERSION = 2  # the per-stream data state; version 1 (no "n_streams") held one slot per rank x worker


class DataError(RuntimeError):
    """The data stream is unusable (too many bad samples, incompatible resume state)."""


def fresh_stream_state() -> dict[str, Any]:
    return {"chunk_start": None, "chunk_index": -1, "next_batch": 0, "counts": {"good": {}, "bad": {}},
            "errors": {}, "batches": 0}  # fmt: skip


def upgrade(state: dict[str, Any], rank: int) -> dict[str, Any] | None:
    """A version-1 state (one slot per rank x worker) of ``rank`` as logical streams, or None when it cannot map:
    with one worker per rank its slot ``rank`` of ``world`` is exactly logical stream ``rank`` of ``L = world``."""
    if "n_streams" in state:
        return state
    if state.get("workers") != 1 or set(state.get("slots", {})) - {"0"}:
        return None
    slot = state.get("slots", {}).get("0")
    slots = {str(rank): dict(slot, batches=0)} if slot is not None else {}
    return {"version": STATE_VERSION, "n_streams": int(state["world"]), "slots": slots, "upgraded_from": 1}


def merge_rank_states(states: dict[int, dict[str, Any]], rank: int) -> dict[str, Any] | None:
    """One data state from every rank's saved file (``{saved rank: its state}``): the union of the streams, which
    any rank of any world size dividing ``n_streams`` reads its own from. A version-1 state that cannot map onto
    streams is returned as ``rank``'s own (the loader then says why it cannot resume it)."""
    if not states:
        return None
    upgraded = {r: upgrade(s, r) for r, s in states.items()}
    if any(u is None for u in upgraded.values()):
        return states.get(rank)
    sizes = {int(u["n_streams"]) for u in upgraded.values() if u is not None}
    if len(sizes) != 1:
        raise DataError(f"the checkpoint's data state files disagree on the number of streams ({sorted(sizes)})")
    slots = {k: v for u in upgraded.values() if u is not None for k, v in u["slots"].items()}
    merged = {"version": STATE_VERSION, "n_streams": sizes.pop(), "slots": slots}
    return merged | ({"upgraded_from": 1} if any("upgraded_from" in u for u in upgraded.values() if u) else {})


def loader_streams(data_state: dict[str, Any] | None) -> int | None:
    """``L``, the number of logical streams a saved data state (``checkpoint.load``'s) was made with; the run's
    gradient accumulation on world size ``W`` is ``L // W``. None without a state or for one that cannot map."""
    if not data_state:
        return None
    if "n_streams" in data_state:
        return int(data_state["n_streams"])
    upgraded = upgrade(data_state, 0)
    return int(upgraded["n_streams"]) if upgraded is not None else None
