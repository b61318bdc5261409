"""The shard layer: the one reader, the one writer and the checks of webdataset tar shard sets.

A shard set is a directory of webdataset tars ``<prefix>-000000.tar, <prefix>-000001.tar ...`` plus a
``manifest.json`` that says what is inside without opening the tars::

    {"format": "webdataset", "version": 1,
     "shards":    [{"name": "shard-000000.tar", "samples": 500, "seconds": 1234.5, "tasks": {"asr": 500}}, ...],
     "totals":    {"samples": N, "hours": H},
     "tasks":     {"asr": {"samples": N, "hours": H}, ...},
     "languages": {"en": {"samples": N, "hours": H}, ..., "none": {...}},     # by audio_language
     "task_languages": {"asr": {"en": {"samples": N, "hours": H}, ...}, ...}}

A sample is the run of consecutive tar members sharing a key (webdataset's rule: the key is the member path up
to the first dot of its basename, the extension the rest): tagged samples are ``<key>.flac`` + ``<key>.json``,
chat samples ``<key>.json`` + ``<key>.audioK.flac`` (``chat_shards.py``).

Owns: ``ShardError`` (the one error of the shard layer), ``expand_shards`` (files, globs, brace patterns and
directories, searched recursively, -> tar paths), ``read_shard`` (the one reader: members grouped into samples,
from a sample offset, optionally one slot's share; ``stream.ShardCursor``, ``stream.iter_split`` and
``check_shards`` use it; ``iter_shard`` is its plain form), ``ShardSetWriter`` (the one writer, on webdataset's
``TarWriter``; ``write_shards`` and ``chat_shards.ChatShardWriter`` use it), ``write_shards`` (tagged samples +
manifest) and ``check_shards`` (decode every sample, report problems by shard and key, never raise on data).
Must not: mix, shuffle, tokenise or batch (``stream.py`` and ``processing.py`` do that).

    python -m qwenaudio_train.data.shards DIR_OR_TAR...   # check shards; exit status 1 if any problem
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import sys
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qwenaudio_train.audio import N_SAMPLES, SAMPLE_RATE
from qwenaudio_train.data.schema import AUDIO_EXTENSIONS, SampleError, SampleMeta

MANIFEST = "manifest.json"
NO_LANGUAGE = "none"  # manifest bucket for samples whose audio_language is None (sounds, music)
# Tolerance between the duration in the metadata and the decoded audio: one 10-ms frame.
DURATION_TOLERANCE = 0.01

PathSpec = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


class ShardError(RuntimeError):
    """A shard set cannot be found or read (no match, unreadable or truncated tar, bad input to a shard
    converter); the message names the path and the fix. ``samples_before``: for a damaged tar, how many whole
    samples came before the damage (0: nothing in it is readable); None when it does not apply."""

    def __init__(self, message: str, samples_before: int | None = None):
        super().__init__(message)
        self.samples_before = samples_before


# ---------------------------------------------------------------------------------------------------------------
# Finding shards
# ---------------------------------------------------------------------------------------------------------------
def _tars_under(directory: str) -> list[str]:
    # Recursive: recipes write <split>/<task>/shard-*.tar, the demo corpus <split>/shard-*.tar; both are "a split".
    # Sorted full paths give one stable order on every machine; hidden folders (.cache, ...) are not searched.
    return sorted(p for p in glob.glob(os.path.join(directory, "**", "*.tar"), recursive=True) if os.path.isfile(p))


def expand_shards(spec: PathSpec, strict: bool = True) -> list[str]:
    """Tar paths of a shard spec: a list, a glob (``**`` recurses), a brace pattern ``a-{000..009}.tar``, a file,
    or a directory (its ``*.tar`` at any depth, in sorted path order).

    ``strict`` (default): ShardError for a path that does not exist or a spec that matches nothing, naming it
    and the fix. ``strict=False`` keeps missing paths (so that ``check_shards`` reports them) and lets an empty
    match contribute nothing.
    """
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    out: list[str] = []
    for item in specs:
        s = os.path.expanduser(os.fspath(item))
        if os.path.isdir(s):
            found = _tars_under(s)
        elif "{" in s and ".." in s:
            import braceexpand

            found = list(braceexpand.braceexpand(s))
        elif any(c in s for c in "*?["):
            found = sorted(glob.glob(s, recursive=True))
        else:
            found = [s]
        if strict:
            for p in found:
                if not p.startswith("pipe:") and not os.path.exists(p):
                    raise ShardError(
                        f"shard {p!r} does not exist; check the source's `shards` path (relative paths are "
                        f"resolved from the working directory {os.getcwd()!r})"
                    )
            if not found:
                raise ShardError(f"no shards match {s!r}; build the data first (e.g. `make data`) or fix the path")
        out.extend(found)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reading: the one reader
# ---------------------------------------------------------------------------------------------------------------
def _split_member(name: str) -> tuple[str, str]:
    """webdataset's rule: key = path up to the first dot of the basename, extension = the rest (lower case)."""
    dirname, base = os.path.split(name)
    key, _, ext = base.partition(".")
    return (f"{dirname}/{key}" if dirname else key), ext.lower()


def _open_tar(url: str) -> tarfile.TarFile:
    if url.startswith("pipe:"):
        import webdataset as wds

        return tarfile.open(fileobj=wds.gopen(url, "rb"), mode="r|*")
    # Random access: the members of skipped samples are passed by seeking over their data, so resuming inside a
    # shard costs its headers only.
    return tarfile.open(url, mode="r:*")


def read_shard(
    url: str | os.PathLike[str], offset: int = 0, keep_mod: tuple[int, int] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, sample)`` of one tar in order, from sample index ``offset``; the one shard reader.

    A sample is ``{"__key__", "__url__", ext: bytes, ...}``; ``index`` counts every sample of the tar (also the
    skipped ones). ``keep_mod=(n, r)`` keeps only samples with ``index % n == r`` (one slot's share). Members of
    skipped samples are not read. Raises FileNotFoundError naming a missing path, and ShardError naming the path
    and the last good sample for a file that is not a readable tar or is truncated (after yielding the samples
    before the damage).
    """
    p = os.fspath(url)
    if not p.startswith("pipe:") and not os.path.isfile(p):
        raise FileNotFoundError(f"shard not found: {p!r}; check the path, or rebuild the shard set")

    def wanted(i: int) -> bool:
        return i >= offset and (keep_mod is None or i % keep_mod[0] == keep_mod[1])

    index = -1
    current: dict[str, Any] | None = None
    try:
        with _open_tar(p) as tf:
            for member in tf:
                if not member.isfile():
                    continue
                key, ext = _split_member(member.name)
                if current is None or key != current["__key__"]:
                    if current is not None and wanted(index):
                        yield index, current
                    index += 1
                    current = {"__key__": key, "__url__": p}
                if wanted(index):
                    f = tf.extractfile(member)
                    current[ext] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, OSError) as e:
        reason = str(e).splitlines()[-1].lstrip("- ")  # "r:*" lists every compression it tried: the tar one is last
        if current is None:
            raise ShardError(
                f"shard {p!r} is not a readable tar ({reason}); re-write it or fix the path (shards are webdataset "
                "tars: a chat .jsonl becomes shards with `qwenaudio-data chat-shards`)",
                samples_before=0,
            ) from e
        raise ShardError(
            f"shard {p!r} is truncated or damaged at sample {index} ({current['__key__']!r}): {reason}; re-write "
            f"it, or run `qwenaudio-data check {p}` to list what is readable",
            samples_before=index,
        ) from e
    if current is not None and wanted(index):
        yield index, current


def iter_shard(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar, in order: ``{"__key__", "__url__", ext: bytes...}`` (``read_shard`` without the
    indices). Raises FileNotFoundError for a missing path, ShardError for an unreadable or truncated tar."""
    for _, sample in read_shard(path):
        yield sample


# ---------------------------------------------------------------------------------------------------------------
# Writing: the one writer
# ---------------------------------------------------------------------------------------------------------------
def _shard_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"-\d{6}\.tar")


def _validate_key(key: Any, seen: set[str]) -> str:
    if not isinstance(key, str) or not key or key.strip() != key:
        raise ValueError(f"sample key {key!r} must be a non-empty string without surrounding whitespace")
    # webdataset splits a member name at the first dot of its basename: "a.b.flac" would be key "a", ext "b.flac".
    if "." in key:
        raise ValueError(f"sample key {key!r} contains a dot; webdataset would split it (use e.g. '-' instead)")
    if key in seen:
        raise ValueError(f"duplicate sample key {key!r}; keys must be unique within a shard set")
    seen.add(key)
    return key


class ShardSetWriter:
    """Samples as ``<key>.<ext>`` members into ``<out_dir>/<prefix>-NNNNNN.tar``: the one shard writer.

    Built on webdataset's ``TarWriter`` (tarfile's PAX format: webdataset 1.0.2 ignores its ``format`` argument),
    with a fixed mtime, owner and mode, so the tars are byte-reproducible. A float ``mtime`` adds a PAX mtime
    record to every member (what ``ShardWriter(mtime=0.0)`` always wrote for tagged shards); an int one gives
    plain ustar headers (chat shards). A new tar starts after ``max_count`` samples or ``max_size`` bytes of member data (the rule
    of webdataset's ``ShardWriter``). Members are written in the order given: ``TarWriter`` sorts the members of
    one ``write``, and chat shards put the conversation first, so each member is its own ``write``. Keys must be
    unique, non-empty and dot-free (ValueError). Shards of an earlier run with this prefix, and its manifest, are
    removed on creation. ``empty_shard``: with no sample at all, ``close`` still writes an empty first tar.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        prefix: str = "shard",
        max_count: int = 1000,
        max_size: float = 5e8,
        user: str = "bigdata",
        group: str = "bigdata",
        mode: int = 0o444,
        mtime: float = 0.0,
        empty_shard: bool = False,
    ):
        if "." in prefix or "/" in prefix or not prefix:
            raise ValueError(f"shard prefix {prefix!r} must be a non-empty name without dots or slashes")
        self.out = os.fspath(out_dir)
        os.makedirs(self.out, exist_ok=True)
        pattern = _shard_pattern(prefix)
        for name in os.listdir(self.out):
            if pattern.fullmatch(name) or name == MANIFEST:
                os.remove(os.path.join(self.out, name))
        self.prefix, self.max_count, self.max_size = prefix, max_count, max_size
        self.tar_options = {"user": user, "group": group, "mode": mode, "mtime": mtime, "encoder": False}
        self.empty_shard = empty_shard
        self.names: list[str] = []  # tars written, in order
        self.seen: set[str] = set()
        self._tar: Any = None
        self._count = 0
        self._size = 0

    def _next_tar(self) -> None:
        import webdataset as wds  # imported here: reading and checking shards must not need it

        self._close_tar()
        self.names.append(f"{self.prefix}-{len(self.names):06d}.tar")
        self._tar = wds.TarWriter(os.path.join(self.out, self.names[-1]), **self.tar_options)
        self._count = self._size = 0

    def _close_tar(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def write(self, key: str, members: Sequence[tuple[str, bytes]]) -> str:
        """Write one sample (``(extension, bytes)`` members, in this order); returns its tar's file name."""
        _validate_key(key, self.seen)
        if self._tar is None or self._count >= self.max_count or self._size >= self.max_size:
            self._next_tar()
        for ext, data in members:
            self._size += self._tar.write({"__key__": key, ext: bytes(data)})
        self._count += 1
        return self.names[-1]

    def close(self) -> list[str]:
        """Finish the last tar; returns the file names written."""
        if not self.names and self.empty_shard:
            self._next_tar()
        self._close_tar()
        return list(self.names)

    def discard(self) -> None:
        """Close and delete what was written (a failed conversion leaves no partial set behind)."""
        self._close_tar()
        for name in self.names:
            path = os.path.join(self.out, name)
            if os.path.exists(path):
                os.remove(path)
        self.names = []


def _bucket() -> dict[str, float]:
    return {"samples": 0, "hours": 0.0}


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (_rounded(v) if isinstance(v, dict) else round(v, 6) if isinstance(v, float) else v)
        for k, v in sorted(d.items())
    }


def write_shards(
    samples: Iterable[tuple[str, bytes, SampleMeta]],
    out_dir: str | os.PathLike[str],
    prefix: str = "shard",
    max_count: int = 1000,
    max_size: float = 5e8,
) -> dict[str, Any]:
    """Write ``(key, flac_bytes, meta)`` samples as ``<out_dir>/<prefix>-NNNNNN.tar`` and ``manifest.json``.

    Each sample becomes ``<key>.flac`` and ``<key>.json`` (``meta.to_json()``). A new shard starts after
    ``max_count`` samples or ``max_size`` bytes. Shards of an earlier run with the same prefix are removed
    first, so the directory holds exactly this set. Keys must be unique and contain no dot (ValueError).
    Tars are byte-reproducible (fixed mtime). Returns the manifest dict (also written to disk).
    """
    # webdataset's defaults (owner "bigdata", mode 0444) and an empty first tar for an empty set: the bytes of
    # every shard set written so far (pinned by tests/unit/test_synthetic.py) stay the same.
    writer = ShardSetWriter(out_dir, prefix, max_count, max_size, empty_shard=True)
    shards: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, float]] = {}
    languages: dict[str, dict[str, float]] = {}
    task_languages: dict[str, dict[str, dict[str, float]]] = {}
    seconds_total = 0.0
    try:
        for key, audio, meta in samples:
            if not isinstance(meta, SampleMeta):
                raise TypeError(f"sample {key!r}: meta must be a SampleMeta, got {type(meta).__name__}")
            name = writer.write(key, [("flac", bytes(audio)), ("json", meta.to_json())])
            shard = shards.setdefault(name, {"name": name, "samples": 0, "seconds": 0.0, "tasks": {}})
            shard["samples"] += 1
            shard["seconds"] += meta.duration
            shard["tasks"][meta.task] = shard["tasks"].get(meta.task, 0) + 1
            lang = meta.audio_language or NO_LANGUAGE
            for b in (
                tasks.setdefault(meta.task, _bucket()),
                languages.setdefault(lang, _bucket()),
                task_languages.setdefault(meta.task, {}).setdefault(lang, _bucket()),
            ):
                b["samples"] += 1
                b["hours"] += meta.duration / 3600
            seconds_total += meta.duration
    finally:
        names = writer.close()
    for name in names:  # the empty first tar of an empty set is listed too, so the manifest matches the disk
        shards.setdefault(name, {"name": name, "samples": 0, "seconds": 0.0, "tasks": {}})
    manifest = {
        "format": "webdataset",
        "version": 1,
        "shards": [
            dict(s, seconds=round(s["seconds"], 3), tasks=dict(sorted(s["tasks"].items()))) for s in shards.values()
        ],
        "totals": {"samples": len(writer.seen), "hours": round(seconds_total / 3600, 6)},
        "tasks": _rounded(tasks),
        "languages": _rounded(languages),
        "task_languages": _rounded(task_languages),
    }
    with open(os.path.join(writer.out, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return manifest


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a shard directory (FileNotFoundError naming the path if there is none)."""
    path = os.path.join(os.fspath(out_dir), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no shard manifest at {path!r}; write the shards with write_shards()")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------------------------
def _problem(shard: str, key: str | None, message: str) -> dict[str, Any]:
    return {"shard": shard, "key": key, "message": message}


def format_report(report: dict[str, Any], max_problems: int = 20) -> str:
    """A human-readable summary of a ``check_shards`` report."""
    lines = [
        f"{report['shards']} shards, {report['samples']} samples, {report['good']} good "
        f"({report['hours']:.3f} h), {len(report['problems'])} problems"
    ]
    lines += [f"  {t}: {n}" for t, n in sorted(report["tasks"].items())]
    for p in report["problems"][:max_problems]:
        lines.append(f"  PROBLEM {p['shard']}: " + (f"{p['key']}: " if p["key"] is not None else "") + p["message"])
    if len(report["problems"]) > max_problems:
        lines.append(f"  ... and {len(report['problems']) - max_problems} more")
    notes = report.get("notes", [])
    lines += [f"  note {n['shard']}: {n['message']}" for n in notes[:3]]
    if len(notes) > 3:
        lines.append(f"  ... and {len(notes) - 3} more notes")
    return "\n".join(lines)


def check_sample(
    sample: dict[str, Any], long_audio: str = "window", notes: list[str] | None = None
) -> tuple[SampleMeta, float]:
    """Decode one raw sample fully; return (meta, audio seconds) or raise SampleError saying what is wrong.

    The loader's own validation (``processing.validate_sample``: metadata, a known task, audio that decodes at any
    rate or channel count, a clip the encoder takes under ``long_audio``), plus what only a check compares: the
    metadata's duration and word timings against the audio. Audio that training
    accepts but converts (not 16 kHz, not mono) is no problem: a line goes to ``notes`` when given."""
    import soundfile as sf

    from qwenaudio_train.audio import AudioError
    from qwenaudio_train.data.processing import validate_sample

    key = sample.get("__key__", "?")
    if "json" not in sample:
        raise SampleError(f"sample {key!r}: no .json metadata member")
    meta = SampleMeta.from_json(sample["json"], key)
    try:
        meta, _, wav = validate_sample(sample, meta, long_audio=long_audio)
    except AudioError as e:
        raise SampleError(f"sample {key!r}: {e}") from e
    if notes is not None:
        info = sf.info(io.BytesIO(next(sample[e] for e in AUDIO_EXTENSIONS if e in sample)))
        if info.samplerate != SAMPLE_RATE or info.channels != 1:
            notes.append(
                f"sample {key!r}: audio is {info.samplerate} Hz x {info.channels} channels; training converts it to "
                f"{SAMPLE_RATE} Hz mono (storing that saves the work)"
            )
    seconds = len(wav) / SAMPLE_RATE
    if long_audio == "truncate" and len(wav) >= N_SAMPLES:
        return meta, seconds  # cut to the encoder's 30 s: the metadata describes the whole clip
    if abs(seconds - meta.duration) > DURATION_TOLERANCE:
        raise SampleError(
            f"sample {key!r}: metadata duration {meta.duration:.3f} s but the audio lasts {seconds:.3f} s"
        )
    prev = 0.0
    for w in meta.words or []:
        if not (prev - 1e-6 <= w.start <= w.end <= seconds + DURATION_TOLERANCE):
            raise SampleError(
                f"sample {key!r}: word {w.word!r} [{w.start}, {w.end}] is out of order or outside "
                f"the {seconds:.3f}-s clip"
            )
        prev = w.start
    return meta, seconds


def check_shards(paths: PathSpec, long_audio: str = "window") -> dict[str, Any]:
    """Decode every sample of the given tars (or directories of tars, searched recursively) and report problems
    by shard and key.

    Never raises on bad data: missing or unreadable shards, duplicate keys, metadata that fails
    ``SampleMeta.from_json``, missing members, an unknown task, audio that does not decode, a clip the
    encoder cannot take under ``long_audio`` (as ``data.long_audio``: ``window``, the default, takes clips up to
    600 s in 30-s windows; ``reject`` refuses clips over 30 s; ``truncate`` cuts them) or too short, or a duration that
    disagrees with the metadata all become entries of ``problems``: what the loader would skip, and more
    (``check_sample``). Audio that training converts (another rate, stereo) is a note, not a problem. Returns a
    JSON-serialisable dict::

        {"ok": bool, "shards": n, "samples": n (seen), "good": n, "hours": h (good audio),
         "tasks": {task: good samples}, "problems": [{"shard": path, "key": key or None, "message": str}],
         "notes": [{"shard": path, "key": key, "message": str}]}

    (``key`` is None for a problem with the shard itself.)
    """
    report: dict[str, Any] = {
        "ok": True,
        "shards": 0,
        "samples": 0,
        "good": 0,
        "hours": 0.0,
        "tasks": {},
        "problems": [],
        "notes": [],
    }
    problems: list[dict[str, Any]] = report["problems"]
    seen: dict[str, str] = {}
    seconds = 0.0
    for path in expand_shards(paths, strict=False):
        report["shards"] += 1
        try:
            for sample in iter_shard(path):
                key = sample["__key__"]
                report["samples"] += 1
                if key in seen:
                    problems.append(_problem(path, key, f"sample {key!r}: duplicate key (also in {seen[key]})"))
                    continue
                seen[key] = path
                notes: list[str] = []
                try:
                    meta, secs = check_sample(sample, long_audio, notes)
                except SampleError as e:
                    problems.append(_problem(path, key, str(e)))
                    continue
                report["notes"] += [_problem(path, key, n) for n in notes]
                report["good"] += 1
                seconds += secs
                report["tasks"][meta.task] = report["tasks"].get(meta.task, 0) + 1
        except (FileNotFoundError, ShardError) as e:
            problems.append(_problem(path, None, str(e)))
    if report["shards"] == 0:
        problems.append(_problem(str(paths), None, "no shards found"))
    report["hours"] = round(seconds / 3600, 6)
    report["ok"] = not problems
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print((__doc__ or "").strip().splitlines()[-1].strip())
        return 2
    report = check_shards(args)
    print(format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
