"""Batches from the mixture: an order defined by the global batch, the same whatever the ranks and loader workers.

The data order is ``L`` *logical streams* (``n_streams``), fixed when a run starts at world size x gradient
accumulation (the micro-batches of one global step) and kept in the data state for the life of the run. Stream
``l`` is a ``BatchStream`` with ``slot=l, n_slots=L``: shard split, mixture RNG, chunk sorting, batch cuts and
SpecAugment seeds are keyed by ``l`` alone. Global step ``k`` takes the ``k``-th batch of every stream: rank ``r``
of ``W`` (accumulation ``A = L / W``) takes streams ``r + W*a``, ``a = 0..A-1``, as its micro-batches, so global
batch ``k`` holds the same samples for any ``W`` dividing ``L`` and any number of workers.

``BatchStream`` (one stream) pulls a *chunk* of raw samples from its ``MixtureStream`` (``batch_size x
chunk_batches`` of them, or enough to fill ``chunk_batches`` budgeted batches: ``budget.py``), sorts it by
duration (similar lengths share a batch, so encoder and LLM padding stay small), cuts it into batches and shuffles
their order. Its position is the mixture state at the chunk's start plus the index of the next batch in the
chunk: resuming re-reads one chunk of raw bytes (no decoding) and continues, whatever the step.

``StatefulLoader`` runs a rank's streams in ``torch.utils.data.DataLoader`` workers. The rank's micro-batches
form one sequence (item ``i`` is raw batch ``i // A`` of its stream ``a = i % A``); worker ``w`` of ``N``
produces the items with ``i % N == w``, so the DataLoader's round-robin hands them out in order and ``N`` may
change between runs. Every worker runs all the rank's streams but decodes only its own items: it pulls and
sorts the others' raw samples without decoding them. That reads the rank's raw bytes ``N`` times and keeps
decoding, the real cost, split ``N`` ways; a worker keeps the bytes of its own batches only (the others' samples
keep their metadata), so a rank holds about one chunk of raw bytes per stream. Each worker opens ``A x sources x
open_shards`` shards at once: with a large ``A``, mind ``ulimit -n``. The loader's state is, per stream, its
position after the last batch handed out, its good/bad counts and how many batches it gave: independent of ``W``
and ``N``. A batch whose samples were all bad is skipped for the stream's next one (the other streams' batches
wait), so batch ``k`` of a stream is its ``k``-th non-empty batch whatever the topology.

Bad samples (undecodable audio, bad JSON, missing members, unknown task) are skipped and counted per source;
once more than ``max_bad_fraction`` of at least ``min_samples_for_bad_check`` samples of a stream were bad, the
stream stops with the first errors of each source.
"""

from __future__ import annotations

import atexit
import copy
import logging
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from qwenaudio_train.audio import AudioError
from qwenaudio_train.data.budget import LengthFn, chunk_full, cut_batches
from qwenaudio_train.data.data_state import STATE_VERSION, fresh_stream_state, upgrade

# DataError, merge_rank_states and loader_streams are re-exported: the trainer and checkpoint.load use them from here.
from qwenaudio_train.data.data_state import DataError as DataError
from qwenaudio_train.data.data_state import loader_streams as loader_streams
from qwenaudio_train.data.data_state import merge_rank_states as merge_rank_states
from qwenaudio_train.data.processing import SampleProcessor, collate, parse_meta
from qwenaudio_train.data.schema import SampleError
from qwenaudio_train.data.stream import MixtureStream, SourceSpec, _stable_int, few_shard_warning
from qwenaudio_train.faults import ignore_stop_signals

log = logging.getLogger(__name__)


@dataclass
class BatchingConfig:
    batch_size: int = 8  # samples per batch without a budget
    chunk_batches: int = 16  # batches per duration-sorted chunk; 1 disables duration bucketing
    max_batch_seconds: float = 0.0  # audio budget per batch, counted padded (len x longest clip); 0 = none
    max_batch_tokens: int = 0  # LLM token budget per batch, padded (rows x longest) or packed (sum); 0 = none
    max_batch_size: int = 256  # with a budget: the most samples in one batch (batch_size is then no cap)
    packing: bool = False  # the token budget counts packed tokens (data.packing)
    # duration: similar clip lengths share a batch (low encoder padding). task_duration: same task first, then
    # duration - tasks differ in target length, so this also keeps LLM token padding low (use a large chunk).
    sort_by: str = "duration"
    open_shards: int = 2
    max_bad_fraction: float = 0.05
    min_samples_for_bad_check: int = 200


def _check_bad(counts: dict[str, dict[str, int]], errors: dict[str, list[str]], cfg: BatchingConfig) -> None:
    good, bad = sum(counts["good"].values()), sum(counts["bad"].values())
    if good + bad >= cfg.min_samples_for_bad_check and bad > cfg.max_bad_fraction * (good + bad):
        raise DataError(
            f"{bad} of {good + bad} samples were bad (> data.max_bad_fraction={cfg.max_bad_fraction}); "
            f"first errors per source: {dict(errors)}. Run `qwenaudio-data check` on the shards."
        )


def _new_delta() -> dict[str, Any]:
    return {"good": {}, "bad": {}, "errors": {}}


class BatchStream:
    """Batches of one logical stream. ``state_dict()`` after a batch resumes at the following batch."""

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
        length_fn: LengthFn | None = None,
        check_bad: bool = True,
        on_chunk: Callable[[list[list[tuple[dict, Any]]], int], None] | None = None,
    ):
        # parse_fn/collate_fn: the sample format (tagged multi-task samples by default; chat.parse_chat_meta and
        # chat.collate_chat for conversations). parse_fn's result needs a `duration` for bucketing. length_fn:
        # estimated LLM tokens of a raw sample (budget.length_fn_for), needed by max_batch_tokens.
        # check_bad=False: the caller checks the bad-sample share on counts it sums (StatefulLoader). on_chunk(chunk,
        # first): called with each new chunk and the index of its next batch (a loader worker drops the bytes of
        # the batches other workers decode).
        if cfg.max_batch_tokens > 0 and length_fn is None:
            raise ValueError("data.max_batch_tokens needs a length_fn (budget.length_fn_for(processor))")
        self.sources, self.processor, self.pad_id, self.cfg = sources, processor, pad_id, cfg
        self.parse_fn, self.collate_fn, self.length_fn, self.check_bad = parse_fn, collate_fn, length_fn, check_bad
        self.on_chunk = on_chunk
        self.seed, self.slot, self.n_slots = seed, slot, n_slots
        st = copy.deepcopy(state) if state else {}
        self.counts: dict[str, dict[str, int]] = st.get("counts", {"good": {}, "bad": {}})
        self.errors: dict[str, list[str]] = defaultdict(list, st.get("errors", {}))
        self.delta = _new_delta()  # counts and errors since the last take_delta() (the loader sums them)
        self.chunk_index = int(st.get("chunk_index", -1))
        self.next_batch = int(st.get("next_batch", 0))
        self.chunk_start = st.get("chunk_start")
        self.mixture = MixtureStream(sources, seed, slot, n_slots, cfg.open_shards, state=self.chunk_start)
        self._chunk: list[list[tuple[dict, Any]]] | None = None
        if self.chunk_start is not None:
            self._chunk = self._pull_chunk(replay=True)
            if on_chunk is not None:
                on_chunk(self._chunk, self.next_batch)

    # -- state ---------------------------------------------------------------------------------------------
    def position(self) -> dict[str, Any]:
        """Where the stream is (after the last batch planned), without its counts."""
        return copy.deepcopy(
            {"chunk_start": self.chunk_start, "chunk_index": self.chunk_index, "next_batch": self.next_batch}
        )

    def state_dict(self) -> dict[str, Any]:
        return dict(
            self.position(),
            counts=copy.deepcopy(self.counts),
            errors={k: list(v[:5]) for k, v in self.errors.items()},
        )

    def take_delta(self) -> dict[str, Any]:
        delta, self.delta = self.delta, _new_delta()
        return delta

    # -- stages --------------------------------------------------------------------------------------------
    def _count(self, kind: str, source: str, err: Exception | None = None) -> None:
        for counts in (self.counts[kind], self.delta[kind]):
            counts[source] = counts.get(source, 0) + 1
        if err is not None:
            for errors in (self.errors, self.delta["errors"]):
                kept = errors.setdefault(source, [])
                if len(kept) < 5:
                    kept.append(str(err))

    def _bad(self, source: str, err: Exception) -> None:
        self._count("bad", source, err)
        if self.check_bad:
            _check_bad(self.counts, self.errors, self.cfg)

    def _pull_chunk(self, replay: bool = False) -> list[list[tuple[dict, Any]]]:
        if not replay:
            self.chunk_start = self.mixture.state_dict()
            self.chunk_index += 1
        items: list[tuple[dict, Any]] = []
        lengths: list[int] = []
        seconds, tokens = 0.0, 0
        use_length = self.length_fn is not None and self.cfg.max_batch_tokens > 0
        while not chunk_full(len(items), seconds, tokens, self.cfg):
            raw = next(self.mixture)
            try:
                meta = self.parse_fn(raw)
            except SampleError as e:
                if not replay:
                    self._bad(raw["__source__"], e)
                continue
            n_tokens = self.length_fn(raw, meta) if use_length and self.length_fn is not None else 0
            items.append((raw, meta))
            lengths.append(n_tokens)
            seconds, tokens = seconds + float(meta.duration), tokens + n_tokens
        # Stable sort by duration, then a seeded shuffle of whole batches so lengths do not trend within a chunk.
        if self.cfg.sort_by == "task_duration":
            order = sorted(range(len(items)), key=lambda i: (getattr(items[i][1], "task", ""), items[i][1].duration, i))
        else:
            order = sorted(range(len(items)), key=lambda i: (items[i][1].duration, i))
        batches = cut_batches(order, [m.duration for _, m in items], lengths, self.cfg)
        perm = np.random.default_rng(_stable_int(self.seed, self.slot, "chunk", self.chunk_index)).permutation(
            len(batches)
        )
        return [[items[j] for j in batches[p]] for p in perm]

    def plan(self) -> tuple[list[tuple[dict, Any]], int]:
        """The raw samples of the next batch and its index in the chunk; moves the position past it (no decoding)."""
        if self._chunk is None or self.next_batch >= len(self._chunk):
            self._chunk = self._pull_chunk()
            self.next_batch = 0
            if self.on_chunk is not None:
                self.on_chunk(self._chunk, 0)
        batch_id = self.next_batch
        self.next_batch += 1
        return self._chunk[batch_id], batch_id

    def decode(self, items: list[tuple[dict, Any]], batch_id: int) -> dict[str, Any] | None:
        """The collated batch of planned samples; None when every one of them was bad (counted)."""
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
            self._count("good", source)
            examples.append(ex)
        return self.collate_fn(examples, self.pad_id) if examples else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            batch = self.decode(*self.plan())
            self.take_delta()
            if batch is not None:
                batch["data_state"] = self.state_dict()
                return batch


class MixtureBatches(IterableDataset):
    """IterableDataset over one rank's streams: the rank's items ``i``, worker ``w`` of ``N`` yielding ``i % N == w``.

    An item is the batch (or ``{"__empty__": True}`` for a batch of bad samples only) with ``__stream__`` (its
    logical stream), ``__pos__`` (the stream's position after it) and ``__delta__`` (the counts it adds)."""

    def __init__(
        self,
        sources: list[SourceSpec],
        processor: SampleProcessor,
        pad_id: int,
        cfg: BatchingConfig,
        seed: int,
        streams: list[int],
        n_streams: int,
        num_workers: int,
        states: dict[int, Any],
        formats: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.args = (sources, processor, pad_id, cfg, seed)
        self.formats = formats or {}
        self.streams, self.n_streams, self.workers = streams, n_streams, max(1, num_workers)
        self.states = states

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        w, n, n_acc = info.id if info is not None else 0, self.workers, len(self.streams)
        planned = [0] * n_acc  # batches planned per stream: stream a's j-th batch is the rank's item j * n_acc + a

        def keep_own(a: int) -> Callable[[list[list[tuple[dict, Any]]], int], None]:
            def strip(chunk: list[list[tuple[dict, Any]]], first: int) -> None:
                # Batches this worker never decodes keep their metadata only: a chunk's raw bytes are held 1/N times.
                for b, batch in enumerate(chunk):
                    if b < first or ((planned[a] + b - first) * n_acc + a) % n != w:
                        batch[:] = [({k: v for k, v in raw.items() if k.startswith("__")}, meta) for raw, meta in batch]

            return strip

        streams = [
            BatchStream(*self.args, slot=sid, n_slots=self.n_streams, state=self.states.get(sid), check_bad=False,
                        on_chunk=keep_own(a), **self.formats)
            for a, sid in enumerate(self.streams)
        ]  # fmt: skip
        i = 0
        while True:
            a = i % n_acc
            stream = streams[a]
            items, batch_id = stream.plan()
            planned[a] += 1
            if i % n == w:
                batch = stream.decode(items, batch_id)
                item: dict[str, Any] = batch if batch is not None else {"__empty__": True}
                item.update(__stream__=self.streams[a], __pos__=stream.position(), __delta__=stream.take_delta())
                yield item
            else:
                stream.take_delta()  # another worker's batch: its owner reports the counts
            i += 1


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
        n_streams: int | None = None,
        length_fn: LengthFn | None = None,
    ):
        # n_streams: L = world x grad_accum of the run's first start (None: world, accumulation 1). On resume the
        # state's L is the run's; a different n_streams is refused (the global batch would change).
        self.cfg, self.rank, self.world, self.workers = cfg, rank, world, max(1, num_workers)
        state = self._check_state(state, rank, world, n_streams)
        self.n_streams = int(state["n_streams"]) if state else (n_streams or world)
        if self.n_streams % world:
            raise DataError(f"data: {self.n_streams} logical streams cannot be split over world size {world}")
        self.accum = self.n_streams // world  # micro-batches per step on this world size
        self.streams = [rank + world * a for a in range(self.accum)]
        saved = (state or {}).get("slots", {})
        missing = [sid for sid in self.streams if state and str(sid) not in saved]
        if missing:
            raise DataError(
                f"the checkpoint's data state has no position for logical stream(s) {missing} of {self.n_streams}: "
                "a data_state_rank*.json of the checkpoint is missing; restore it, or resume with "
                "trainer.resume_data=false (the model and optimizer still resume)"
            )
        self.states: dict[int, Any] = {
            sid: dict(fresh_stream_state(), **copy.deepcopy(saved[str(sid)]))
            if str(sid) in saved
            else fresh_stream_state()
            for sid in self.streams
        }
        if rank == 0:
            for source in sources:
                message = few_shard_warning(source, self.n_streams)
                if message:
                    log.warning(message)
        dataset = MixtureBatches(
            sources,
            processor,
            pad_id,
            cfg,
            seed,
            self.streams,
            self.n_streams,
            num_workers,
            self.states,
            formats={"parse_fn": parse_fn, "collate_fn": collate_fn, "length_fn": length_fn},
        )
        kwargs: dict[str, Any] = {"batch_size": None, "num_workers": num_workers}
        if num_workers > 0:
            # Workers ignore the stop signals: torchrun signals the rank's whole process group, and the rank must
            # outlive its workers to save (faults.py).
            kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False, worker_init_fn=ignore_stop_signals)
        self.loader = DataLoader(dataset, **kwargs)
        self._live: Any = None  # the running DataLoader iterator (its workers), while iterated

    @staticmethod
    def _check_state(
        state: dict[str, Any] | None, rank: int, world: int, n_streams: int | None
    ) -> dict[str, Any] | None:
        if state is None:
            return None
        if "n_streams" not in state:  # version 1: this rank's own file, not merged by checkpoint.load
            upgraded = upgrade(state, rank) if state.get("world") == world else None
            if upgraded is None:
                raise DataError(
                    f"the checkpoint's data position was saved by an earlier version with world size "
                    f"{state.get('world')} x {state.get('workers')} loader workers, which maps onto this run "
                    f"({world} ranks) only with the same ranks and one worker; resume on that, or start the data "
                    "stream afresh with trainer.resume_data=false (the model and optimizer still resume)"
                )
            state = upgraded
        saved = int(state["n_streams"])
        if saved % world:
            divisors = [d for d in range(1, saved + 1) if saved % d == 0]
            raise DataError(
                f"the checkpoint's data order has {saved} logical streams (world size x trainer.grad_accum when the "
                f"run started), which world size {world} does not divide: run on {divisors} ranks, or start the data "
                "stream afresh with trainer.resume_data=false (the model and optimizer still resume)"
            )
        if n_streams is not None and n_streams != saved and state.get("upgraded_from"):
            raise DataError(
                f"the checkpoint's data position was saved by an earlier version (one stream per rank, {saved} ranks), "
                f"which maps onto this run only with trainer.grad_accum=1 ({n_streams} streams asked): resume with "
                "trainer.resume_data=false to start the data stream afresh (the model and optimizer still resume)"
            )
        if n_streams is not None and n_streams != saved:
            raise DataError(
                f"the checkpoint's data order has {saved} logical streams, this run asks for {n_streams} "
                f"(world size {world} x trainer.grad_accum): set trainer.grad_accum={saved // world} to keep the "
                "global batch, or start the data stream afresh with trainer.resume_data=false"
            )
        return state

    def state_dict(self) -> dict[str, Any]:
        """This rank's streams (``checkpoint.load`` merges every rank's into one state for any world size)."""
        return {
            "version": STATE_VERSION,
            "n_streams": self.n_streams,
            "slots": {str(sid): copy.deepcopy(st) for sid, st in self.states.items()},
        }

    def _fold(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Account one item of a stream into its state; the batch, or None for an empty one."""
        st = self.states[item.pop("__stream__")]
        st.update(item.pop("__pos__"))
        delta = item.pop("__delta__")
        for kind in ("good", "bad"):
            for src, n in delta[kind].items():
                st["counts"][kind][src] = st["counts"][kind].get(src, 0) + n
        for src, messages in delta["errors"].items():
            kept = st["errors"].setdefault(src, [])
            kept.extend(messages[: max(0, 5 - len(kept))])
        _check_bad(st["counts"], st["errors"], self.cfg)
        if item.pop("__empty__", False):
            return None
        st["batches"] += 1
        return item

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._live = iter(self.loader)
        _RUNNING.add(self)
        waiting: dict[int, deque[dict[str, Any]]] = {sid: deque() for sid in self.streams}
        try:
            while True:
                # The next micro-batch comes from the stream that has given the fewest (then the first of the
                # rank's streams): round-robin over the rank's streams, also after a resume saved mid-step.
                sid = min(self.streams, key=lambda s: (self.states[s]["batches"], s))
                batch = None
                while waiting[sid] and batch is None:
                    batch = self._fold(waiting[sid].popleft())
                if batch is not None:
                    yield batch
                    continue
                item = next(self._live, None)
                if item is None:
                    return
                waiting[int(item["__stream__"])].append(item)
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
        """Good/bad sample counts per source summed over this rank's streams (as of the last batch)."""
        out: dict[str, dict[str, int]] = {"good": {}, "bad": {}}
        for st in self.states.values():
            for kind in ("good", "bad"):
                for src, n in st["counts"][kind].items():
                    out[kind][src] = out[kind].get(src, 0) + n
        return out
