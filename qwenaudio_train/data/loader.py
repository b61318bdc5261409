"""Batches from the mixture, per rank and loader worker, with a state that resumes batch for batch.

``BatchStream`` (one slot = one rank x worker) pulls a *chunk* of ``batch_size x chunk_batches`` raw samples
from its ``MixtureStream``, sorts the chunk by duration (similar lengths share a batch, so encoder and LLM
padding stay small), cuts it into batches and shuffles their order. Its state is the mixture state at the
chunk's start plus the index of the next batch in the chunk: resuming re-reads one chunk of raw bytes (no
decoding) and continues, whatever the step.

``StatefulLoader`` runs the slots in ``torch.utils.data.DataLoader`` workers. The DataLoader serves workers
round-robin, so the loader records, for every batch it hands out, that worker's state and which worker comes
next; on resume the workers are rotated so that the first batch comes from the worker that was next.

Bad samples (undecodable audio, bad JSON, missing members, unknown task) are skipped and counted per source;
once more than ``max_bad_fraction`` of at least ``min_samples_for_bad_check`` samples were bad, the stream
stops with the first errors of each source.
"""

from __future__ import annotations

import atexit
import copy
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from qwenaudio_train.audio import AudioError
from qwenaudio_train.data.processing import SampleProcessor, collate, parse_meta
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.data.stream import MixtureStream, SourceSpec, _stable_int
from qwenaudio_train.faults import ignore_stop_signals


class DataError(RuntimeError):
    """The data stream is unusable (too many bad samples, incompatible resume state)."""


@dataclass
class BatchingConfig:
    batch_size: int = 8  # samples per batch (the cap when a budget is set)
    chunk_batches: int = 16  # batches per duration-sorted chunk; 1 disables duration bucketing
    max_batch_seconds: float = 0.0  # audio budget per batch, counted padded (len x longest clip); 0 = fixed size
    # duration: similar clip lengths share a batch (low encoder padding). task_duration: same task first, then
    # duration - tasks differ in target length, so this also keeps LLM token padding low (use a large chunk).
    sort_by: str = "duration"
    open_shards: int = 2
    max_bad_fraction: float = 0.05
    min_samples_for_bad_check: int = 200


class BatchStream:
    """Batches of one slot. ``state_dict()`` after a batch resumes at the following batch."""

    def __init__(
        self,
        sources: list[SourceSpec],
        processor: SampleProcessor,
        pad_id: int,
        cfg: BatchingConfig,
        seed: int,
        slot: int = 0,
        n_slots: int = 1,
        state: dict[str, Any] | None = None,
        parse_fn: Callable[[dict], Any] = parse_meta,
        collate_fn: Callable[..., dict] = collate,
    ):
        # parse_fn/collate_fn: the sample format (tagged multi-task samples by default; chat.parse_chat_meta and
        # chat.collate_chat for conversations). parse_fn's result needs a `duration` for bucketing.
        self.sources, self.processor, self.pad_id, self.cfg = sources, processor, pad_id, cfg
        self.parse_fn, self.collate_fn = parse_fn, collate_fn
        self.seed, self.slot, self.n_slots = seed, slot, n_slots
        st = copy.deepcopy(state) if state else {}
        self.counts: dict[str, dict[str, int]] = st.get("counts", {"good": {}, "bad": {}})
        self.errors: dict[str, list[str]] = defaultdict(list, st.get("errors", {}))
        self.chunk_index = int(st.get("chunk_index", -1))
        self.next_batch = int(st.get("next_batch", 0))
        self.chunk_start = st.get("chunk_start")
        self.mixture = MixtureStream(sources, seed, slot, n_slots, cfg.open_shards, state=self.chunk_start)
        self._chunk: list[list[tuple[dict, Any]]] | None = None
        if self.chunk_start is not None:
            self._chunk = self._pull_chunk(replay=True)

    # -- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "chunk_start": self.chunk_start,
                "chunk_index": self.chunk_index,
                "next_batch": self.next_batch,
                "counts": self.counts,
                "errors": {k: v[:5] for k, v in self.errors.items()},
            }
        )

    # -- stages --------------------------------------------------------------------------------------------
    def _bad(self, source: str, err: Exception) -> None:
        self.counts["bad"][source] = self.counts["bad"].get(source, 0) + 1
        if len(self.errors[source]) < 5:
            self.errors[source].append(str(err))
        good, bad = sum(self.counts["good"].values()), sum(self.counts["bad"].values())
        if good + bad >= self.cfg.min_samples_for_bad_check and bad > self.cfg.max_bad_fraction * (good + bad):
            raise DataError(
                f"{bad} of {good + bad} samples were bad (> data.max_bad_fraction={self.cfg.max_bad_fraction}); "
                f"first errors per source: {dict(self.errors)}. Run `qwenaudio-data check` on the shards."
            )

    def _pull_chunk(self, replay: bool = False) -> list[list[tuple[dict, Any]]]:
        if not replay:
            self.chunk_start = self.mixture.state_dict()
            self.chunk_index += 1
        size = self.cfg.batch_size * self.cfg.chunk_batches
        items: list[tuple[dict, Any]] = []
        while len(items) < size:
            raw = next(self.mixture)
            try:
                items.append((raw, self.parse_fn(raw)))
            except SampleError as e:
                if not replay:
                    self._bad(raw["__source__"], e)
        # Stable sort by duration, then a seeded shuffle of whole batches so lengths do not trend within a chunk.
        if self.cfg.sort_by == "task_duration":
            order = sorted(range(len(items)), key=lambda i: (getattr(items[i][1], "task", ""), items[i][1].duration, i))
        else:
            order = sorted(range(len(items)), key=lambda i: (items[i][1].duration, i))
        batches = self._cut(order, [items[i][1].duration for i in range(len(items))])
        perm = np.random.default_rng(_stable_int(self.seed, self.slot, "chunk", self.chunk_index)).permutation(
            len(batches)
        )
        return [[items[j] for j in batches[p]] for p in perm]

    def _cut(self, order: list[int], durations: list[float]) -> list[list[int]]:
        """Cut duration-sorted indices into batches: ``batch_size`` each, or, with a budget, as many as fit in
        ``max_batch_seconds`` of padded audio (batch length x its longest clip) - short clips make big batches."""
        bs, budget = self.cfg.batch_size, self.cfg.max_batch_seconds
        if budget <= 0:
            return [order[i : i + bs] for i in range(0, len(order), bs)]
        batches: list[list[int]] = [[]]
        for i in order:  # ascending duration: the newest clip is the longest of its batch
            cur = batches[-1]
            if cur and ((len(cur) + 1) * durations[i] > budget or len(cur) >= bs):
                batches.append([])
            batches[-1].append(i)
        return batches

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            if self._chunk is None or self.next_batch >= len(self._chunk):
                self._chunk = self._pull_chunk()
                self.next_batch = 0
            items = self._chunk[self.next_batch]
            batch_id = self.next_batch
            self.next_batch += 1
            examples = []
            for n, (raw, meta) in enumerate(items):
                source = raw["__source__"]
                try:
                    ex = self.processor(
                        raw, meta, aug_seed=_stable_int(self.seed, self.slot, self.chunk_index, batch_id, n) % (2**63)
                    )
                except (SampleError, AudioError, ValueError) as e:
                    self._bad(source, e)
                    continue
                self.counts["good"][source] = self.counts["good"].get(source, 0) + 1
                examples.append(ex)
            if not examples:
                continue
            batch = self.collate_fn(examples, self.pad_id)
            batch["data_state"] = self.state_dict()
            return batch


class MixtureBatches(IterableDataset):
    """IterableDataset over one rank's slots; worker ``w`` serves logical slot ``(w + rotate) % workers``."""

    def __init__(
        self,
        sources: list[SourceSpec],
        processor: SampleProcessor,
        pad_id: int,
        cfg: BatchingConfig,
        seed: int,
        rank: int,
        world: int,
        num_workers: int,
        states: dict[int, Any],
        rotate: int,
        formats: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.args = (sources, processor, pad_id, cfg, seed)
        self.formats = formats or {}
        self.rank, self.world, self.workers = rank, world, max(1, num_workers)
        self.states, self.rotate = states, rotate

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        w = info.id if info is not None else 0
        logical = (w + self.rotate) % self.workers
        slot = self.rank * self.workers + logical
        stream = BatchStream(
            *self.args, slot=slot, n_slots=self.world * self.workers, state=self.states.get(logical), **self.formats
        )
        for batch in stream:
            batch["worker"] = logical
            yield batch


_RUNNING: weakref.WeakSet[StatefulLoader] = weakref.WeakSet()  # loaders whose workers are running


@atexit.register  # registered after multiprocessing's own exit hook, so it runs before it (LIFO)
def _close_running_loaders() -> None:
    """At interpreter exit, stop the workers of loaders still being iterated (a test, a notebook, an error): they
    ignore SIGTERM, which is how multiprocessing's exit hook would stop them, and it would wait on them forever."""
    for loader in list(_RUNNING):
        loader.close()


class StatefulLoader:
    """A DataLoader over ``MixtureBatches`` whose ``state_dict()`` is the position of the last batch handed out."""

    def __init__(
        self,
        sources: list[SourceSpec],
        processor: SampleProcessor,
        pad_id: int,
        cfg: BatchingConfig,
        seed: int,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 0,
        state: dict[str, Any] | None = None,
        prefetch_factor: int = 2,
        parse_fn: Callable[[dict], Any] = parse_meta,
        collate_fn: Callable[..., dict] = collate,
    ):
        self.workers = max(1, num_workers)
        self.world = world
        if state is not None and (state.get("workers") != self.workers or state.get("world") != world):
            raise DataError(
                f"the checkpoint's data position was saved with world size {state.get('world')} x "
                f"{state.get('workers')} loader workers, this run has {world} x {self.workers}; resume with the "
                "same data.num_workers and number of ranks, or start the data stream afresh with "
                "trainer.resume_data=false (the model and optimizer still resume)"
            )
        self.states: dict[int, Any] = {int(k): v for k, v in (state or {}).get("slots", {}).items()}
        self.next_worker = int((state or {}).get("next", 0))
        dataset = MixtureBatches(
            sources,
            processor,
            pad_id,
            cfg,
            seed,
            rank,
            world,
            num_workers,
            self.states,
            self.next_worker,
            formats={"parse_fn": parse_fn, "collate_fn": collate_fn},
        )
        kwargs: dict[str, Any] = {"batch_size": None, "num_workers": num_workers}
        if num_workers > 0:
            # Workers ignore the stop signals: torchrun signals the rank's whole process group, and the rank must
            # outlive its workers to save (faults.py).
            kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False, worker_init_fn=ignore_stop_signals)
        self.loader = DataLoader(dataset, **kwargs)
        self._live: Any = None  # the running DataLoader iterator (its workers), while iterated

    def state_dict(self) -> dict[str, Any]:
        return {
            "world": self.world,
            "workers": self.workers,
            "next": self.next_worker,
            "slots": {str(k): v for k, v in self.states.items()},
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._live = iter(self.loader)
        _RUNNING.add(self)
        try:
            for batch in self._live:
                w = int(batch.pop("worker"))
                self.states[w] = batch.pop("data_state")
                self.next_worker = (w + 1) % self.workers
                yield batch
        finally:
            self.close()

    def close(self) -> None:
        """Stop the loader's workers now. They ignore SIGTERM (a preempted rank must outlive them to save), so
        the SIGTERM that interpreter exit sends to live daemonic workers would wait on them forever."""
        live, self._live = self._live, None
        _RUNNING.discard(self)
        shutdown = getattr(live, "_shutdown_workers", None)  # DataLoader's own graceful stop (done event + None)
        if shutdown is not None:
            shutdown()

    def data_counts(self) -> dict[str, dict[str, int]]:
        """Good/bad sample counts per source summed over this rank's workers (as of the last batch)."""
        out: dict[str, dict[str, int]] = {"good": {}, "bad": {}}
        for st in self.states.values():
            for kind in ("good", "bad"):
                for src, n in st["counts"][kind].items():
                    out[kind][src] = out[kind].get(src, 0) + n
        return out
