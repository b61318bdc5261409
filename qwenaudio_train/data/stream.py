"""Streaming a weighted mixture of shard sets, with a small state that resumes exactly.

Stages (each with its own serialisable state, so a checkpoint can hold the data position):

1. ``ShardCursor`` - reads one webdataset tar from a sample offset with ``shards.read_shard`` (the one shard
   reader; local file: headers are skipped by seeking, so resuming inside a shard costs at most one shard's
   headers).
2. ``SourceStream`` - one task source: its shard list, reshuffled each epoch from ``(seed, source, epoch)``,
   split across the *slots* (the loader's logical streams, ``loader.py``) without duplicates, and ``open_shards``
   shards read at once and interleaved at random for local shuffling. Infinite: epochs follow each other
   (step-based training).
3. ``MixtureStream`` - draws the next sample's source by weight with one RNG per slot.

State of a slot = the RNG state + per source ``(epoch, next_shard, open cursors)``: a few hundred bytes, and
restoring it never replays the stream, so resuming at batch 10 or 10,000 costs the same.

Splitting across slots: with at least as many shards as slots, each slot owns whole shards (shard ``i`` of the
epoch's order goes to slot ``i % n_slots``); with fewer shards, every slot reads every shard and keeps sample
``j`` when ``j % n_slots == slot``. Either way no sample is seen twice in an epoch across slots. The second way
walks every shard once per slot (for local uncompressed tars the skipped members are seeked over, so mostly
headers; compressed or ``pipe:`` shards are read whole by every slot): ``few_shard_warning`` says so at start-up,
with the fix (re-shard to at least as many shards as slots). Byte-range splitting would need a per-shard index.

Damaged shards: a shard that is not a readable tar (or a missing one) or a tar cut mid-member ends its cursor;
the source logs it (once per shard and slot, naming it) and hands out one *bad record* in its place
(``{"__key__", "__url__", "__source__", BAD_RECORD: message}``), which the sample parser rejects, so the loader
counts it as a bad sample of its source. Once every shard of a source has proved unreadable (nothing read before
the damage), the source stops with ShardError naming the files: never a loop reopening them.

This module reads raw samples (dicts of bytes); decoding and tokenising happen in ``processing.py``. Must not:
parse tars itself (``shards.py`` does), decode audio or tokenise.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from qwenaudio_train.data.schema import BAD_RECORD

# ShardError and expand_shards are re-exported: callers of the streaming API import them from here.
from qwenaudio_train.data.shards import ShardError as ShardError
from qwenaudio_train.data.shards import expand_shards as expand_shards
from qwenaudio_train.data.shards import read_shard

log = logging.getLogger(__name__)
MAX_ERRORS = 20  # messages kept per source: a shard damaged in every epoch must not grow memory


def _stable_int(*parts: Any) -> int:
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


class ShardCursor:
    """Iterate the samples of one tar from sample index ``offset``; ``position`` is the next raw index.

    A resumable view of ``shards.read_shard``: ``position`` (saved in checkpoints) moves past each sample as it
    is handed out. A missing or damaged shard ends the cursor and leaves the reason in ``errors``.
    """

    def __init__(self, url: str, offset: int = 0, keep_mod: tuple[int, int] | None = None):
        self.url = url
        self.position = offset
        self.keep_mod = keep_mod  # (n_slots, slot): keep raw samples j with j % n_slots == slot
        self._iter = self._samples(offset)
        self.errors: list[str] = []
        self.unreadable = False  # the error came before any whole sample of the tar (not a tar, missing, cut early)

    def _samples(self, offset: int) -> Iterator[dict[str, Any]]:
        try:
            for index, sample in read_shard(self.url, offset, self.keep_mod):
                sample["__index__"] = index
                self.position = index + 1
                yield sample
        except FileNotFoundError as e:
            self.errors.append(str(e))
            self.unreadable = True
        except ShardError as e:
            self.errors.append(str(e))
            self.unreadable = e.samples_before == 0

    def __next__(self) -> dict[str, Any]:
        return next(self._iter)


@dataclass
class SourceSpec:
    name: str
    shards: list[str]
    weight: float = 1.0


def few_shard_warning(spec: SourceSpec, n_slots: int) -> str | None:
    """The start-up warning for a source with fewer shards than slots (every slot then walks every shard), or None."""
    n = len(spec.shards)
    if n >= n_slots:
        return None
    return (
        f"data source {spec.name!r} has {n} shard(s) for {n_slots} logical streams (world size x grad_accum): "
        f"every stream walks all its shards and keeps 1 sample in {n_slots} ({n_slots}x reads for compressed or "
        f"pipe: shards, {n_slots}x tar headers for local ones). Re-shard it into at least {n_slots} shards: re-run "
        "its recipe with a smaller --shard-samples (python -m data_recipes.<recipe> --root ... --out ... "
        "--shard-samples N), or `qwenaudio-data chat-shards --shard-samples N` for chat data"
    )


class SourceStream:
    """One source's infinite, epoch-reshuffled, slot-split stream of raw samples."""

    def __init__(
        self,
        spec: SourceSpec,
        seed: int,
        slot: int,
        n_slots: int,
        open_shards: int,
        rng: np.random.Generator,
        state: dict[str, Any] | None = None,
    ):
        self.spec = spec
        self.seed = seed
        self.slot, self.n_slots = slot, n_slots
        self.open_shards = max(1, open_shards)
        self.rng = rng  # shared with the mixture: one RNG state per slot
        self.whole_shards = len(spec.shards) >= n_slots
        self.errors: list[str] = []  # the first MAX_ERRORS damaged-shard messages
        self.bad_shards = 0  # cursors ended by damage (each handed out as one bad record)
        self.unreadable: dict[str, str] = {}  # shard -> its error, for shards with nothing readable
        st = state or {"epoch": 0, "next_shard": 0, "open": []}
        self.epoch = int(st["epoch"])
        self.next_shard = int(st["next_shard"])
        self.order = self._epoch_order(self.epoch)
        self.cursors: list[ShardCursor] = [self._cursor(i, off) for i, off in st["open"]]
        self._cursor_ids: list[int] = [i for i, _ in st["open"]]
        self._fill()

    def _epoch_order(self, epoch: int) -> list[str]:
        rng = np.random.default_rng(_stable_int(self.seed, self.spec.name, epoch))
        shards = [self.spec.shards[i] for i in rng.permutation(len(self.spec.shards))]
        if self.whole_shards:
            shards = shards[self.slot :: self.n_slots]
        return shards

    def _cursor(self, order_idx: int, offset: int) -> ShardCursor:
        keep = None if self.whole_shards else (self.n_slots, self.slot)
        return ShardCursor(self.order[order_idx], offset, keep)

    def _fill(self) -> None:
        while len(self.cursors) < self.open_shards:
            if self.next_shard >= len(self.order):
                if self.cursors:
                    return  # finish the epoch's open shards before starting the next epoch
                self.epoch += 1
                self.next_shard = 0
                self.order = self._epoch_order(self.epoch)
                if not self.order:
                    raise ShardError(f"source {self.spec.name!r}: slot {self.slot} has no shards")
            self.cursors.append(self._cursor(self.next_shard, 0))
            self._cursor_ids.append(self.next_shard)
            self.next_shard += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "next_shard": self.next_shard,
            "open": [[i, c.position] for i, c in zip(self._cursor_ids, self.cursors)],
        }

    def __next__(self) -> dict[str, Any]:
        empty_passes = 0
        while True:
            self._fill()
            k = int(self.rng.integers(len(self.cursors)))
            try:
                sample = next(self.cursors[k])
            except StopIteration:
                cursor = self.cursors[k]
                del self.cursors[k], self._cursor_ids[k]
                if cursor.errors:
                    return self._bad_record(cursor)
                if cursor.position == 0:
                    empty_passes += 1
                if empty_passes > 4 * (len(self.spec.shards) + 1):
                    raise ShardError(
                        f"source {self.spec.name!r}: shards yield no samples for slot {self.slot}"
                    ) from None
                continue
            sample["__source__"] = self.spec.name
            return sample

    def _bad_record(self, cursor: ShardCursor) -> dict[str, Any]:
        """A damaged shard's stand-in in the stream (counted as a bad sample); ShardError naming the files once
        no shard of the source is readable."""
        message = cursor.errors[-1]
        self.bad_shards += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)
        if cursor.unreadable and cursor.url not in self.unreadable:
            self.unreadable[cursor.url] = message
            log.warning("source %r: %s", self.spec.name, message)
        elif not cursor.unreadable and self.bad_shards <= len(self.spec.shards):
            log.warning("source %r: %s", self.spec.name, message)
        if set(self.unreadable) >= set(self.spec.shards):
            names = ", ".join(sorted(os.path.basename(u) for u in self.unreadable)[:5])
            raise ShardError(
                f"source {self.spec.name!r} has no readable shard ({len(self.unreadable)} of "
                f"{len(self.spec.shards)}: {names}): {message}. Fix data.sources.{self.spec.name}.shards"
            )
        return {
            "__key__": f"{os.path.basename(cursor.url)}@{cursor.position}",
            "__url__": cursor.url,
            "__source__": self.spec.name,
            BAD_RECORD: message,
        }


class MixtureStream:
    """Infinite weighted mixture of sources for one slot; ``state_dict()`` is the whole data position."""

    def __init__(
        self,
        sources: list[SourceSpec],
        seed: int,
        slot: int = 0,
        n_slots: int = 1,
        open_shards: int = 2,
        state: dict[str, Any] | None = None,
    ):
        if not sources:
            raise ShardError("the data mixture has no sources; set data.sources in the config")
        weights = np.array([s.weight for s in sources], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"mixture weights must be >= 0 with a positive sum, got { {s.name: s.weight for s in sources} }"
            )
        self.probs = weights / weights.sum()
        self.rng = np.random.default_rng(_stable_int(seed, "mixture", slot))
        if state is not None:
            self.rng.bit_generator.state = state["rng"]
        src_states = (state or {}).get("sources", {})
        self.sources = [
            SourceStream(s, seed, slot, n_slots, open_shards, self.rng, src_states.get(s.name)) for s in sources
        ]
        self.slot, self.n_slots = slot, n_slots

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "sources": {s.spec.name: s.state_dict() for s in self.sources}}

    def __iter__(self) -> MixtureStream:
        return self

    def __next__(self) -> dict[str, Any]:
        i = int(self.rng.choice(len(self.sources), p=self.probs))
        return next(self.sources[i])

    def errors(self) -> list[str]:
        return [e for s in self.sources for e in s.errors]


def iter_split(shards: list[str], slot: int = 0, n_slots: int = 1) -> Iterator[dict[str, Any]]:
    """One deterministic pass over a split (evaluation): sample j of the concatenation goes to slot j % n_slots.
    ShardError (naming the shard) for a missing or damaged shard, after the samples before the damage."""
    j = 0
    for url in shards:
        try:
            for index, sample in read_shard(url):
                if j % n_slots == slot:
                    sample["__index__"] = index
                    yield sample
                j += 1
        except FileNotFoundError as e:
            raise ShardError(str(e)) from e
