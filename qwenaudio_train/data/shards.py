"""Writing, reading and checking shard sets in the one sample schema (see ``schema.py``).

A shard set is a directory of webdataset tars ``<prefix>-000000.tar, <prefix>-000001.tar ...`` plus a
``manifest.json`` that says what is inside without opening the tars::

    {"format": "webdataset", "version": 1,
     "shards":    [{"name": "shard-000000.tar", "samples": 500, "seconds": 1234.5, "tasks": {"asr": 500}}, ...],
     "totals":    {"samples": N, "hours": H},
     "tasks":     {"asr": {"samples": N, "hours": H}, ...},
     "languages": {"en": {"samples": N, "hours": H}, ..., "none": {...}},     # by audio_language
     "task_languages": {"asr": {"en": {"samples": N, "hours": H}, ...}, ...}}

Owns: ``write_shards`` (samples -> tars + manifest), ``iter_shard`` (one tar -> raw sample dicts, plain
``tarfile``), ``check_shards`` (decode every sample, report problems by shard and key, never raise on data).
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

from qwenaudio_train.audio import SAMPLE_RATE
from qwenaudio_train.data.schema import AUDIO_EXTENSIONS, SampleError, SampleMeta

MANIFEST = "manifest.json"
NO_LANGUAGE = "none"  # manifest bucket for samples whose audio_language is None (sounds, music)
# Tolerance between the duration in the metadata and the decoded audio: one 10-ms frame.
DURATION_TOLERANCE = 0.01


class ShardError(RuntimeError):
    """A shard cannot be opened or read as a tar at all; the message names the path."""


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


def _bucket() -> dict[str, float]:
    return {"samples": 0, "hours": 0.0}


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
    import webdataset as wds  # imported here: reading and checking shards must not need it

    if "." in prefix or "/" in prefix or not prefix:
        raise ValueError(f"shard prefix {prefix!r} must be a non-empty name without dots or slashes")
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    pattern = _shard_pattern(prefix)
    for name in os.listdir(out):
        if pattern.fullmatch(name) or name == MANIFEST:
            os.remove(os.path.join(out, name))

    shards: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, float]] = {}
    languages: dict[str, dict[str, float]] = {}
    task_languages: dict[str, dict[str, dict[str, float]]] = {}
    seen: set[str] = set()
    seconds_total = 0.0

    writer = wds.ShardWriter(
        os.path.join(out, f"{prefix}-%06d.tar"), maxcount=max_count, maxsize=max_size, verbose=0, mtime=0.0
    )
    try:
        for key, audio, meta in samples:
            _validate_key(key, seen)
            if not isinstance(meta, SampleMeta):
                raise TypeError(f"sample {key!r}: meta must be a SampleMeta, got {type(meta).__name__}")
            writer.write({"__key__": key, "flac": bytes(audio), "json": meta.to_json()})
            shard = shards.setdefault(
                os.path.basename(writer.fname),
                {"name": os.path.basename(writer.fname), "samples": 0, "seconds": 0.0, "tasks": {}},
            )
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
        writer.close()
    if not shards:  # ShardWriter opened (and wrote) an empty first tar: list it so the manifest matches the disk
        shards["empty"] = {"name": f"{prefix}-000000.tar", "samples": 0, "seconds": 0.0, "tasks": {}}

    def rounded(d: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (rounded(v) if isinstance(v, dict) else round(v, 6) if isinstance(v, float) else v)
            for k, v in sorted(d.items())
        }

    manifest = {
        "format": "webdataset",
        "version": 1,
        "shards": [
            dict(s, seconds=round(s["seconds"], 3), tasks=dict(sorted(s["tasks"].items()))) for s in shards.values()
        ],
        "totals": {"samples": len(seen), "hours": round(seconds_total / 3600, 6)},
        "tasks": rounded(tasks),
        "languages": rounded(languages),
        "task_languages": rounded(task_languages),
    }
    with open(os.path.join(out, MANIFEST), "w", encoding="utf-8") as f:
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


def _split_member(name: str) -> tuple[str, str]:
    """webdataset's rule: key = path up to the first dot of the basename, extension = the rest (lower case)."""
    dirname, base = os.path.split(name)
    key, _, ext = base.partition(".")
    return (f"{dirname}/{key}" if dirname else key), ext.lower()


def iter_shard(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar, in order: ``{"__key__", "__url__", ext: bytes...}`` (members grouped by key).

    Streams with ``tarfile`` (no webdataset). Raises FileNotFoundError naming a missing path, and ShardError
    naming the path for a file that is not a readable tar (including one truncated mid-way).
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"shard not found: {p!r}")
    current: dict[str, Any] | None = None
    try:
        with tarfile.open(p, mode="r|*") as tf:
            for member in tf:
                if not member.isfile():
                    continue
                key, ext = _split_member(member.name)
                if current is not None and key != current["__key__"]:
                    yield current
                    current = None
                if current is None:
                    current = {"__key__": key, "__url__": p}
                f = tf.extractfile(member)
                current[ext] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ShardError(f"shard {p!r} is not a readable tar or is truncated ({e})") from e
    if current is not None:
        yield current


def expand_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Tar paths from files and directories (a directory contributes its ``*.tar``, sorted). Missing paths are
    kept, so that the caller reports them."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        p = os.fspath(item)
        out.extend(sorted(glob.glob(os.path.join(p, "*.tar"))) if os.path.isdir(p) else [p])
    return out


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
    return "\n".join(lines)


def check_sample(sample: dict[str, Any]) -> tuple[SampleMeta, float]:
    """Decode one raw sample fully; return (meta, audio seconds) or raise SampleError saying what is wrong."""
    import numpy as np
    import soundfile as sf

    key = sample.get("__key__", "?")
    if "json" not in sample:
        raise SampleError(f"sample {key!r}: no .json metadata member")
    meta = SampleMeta.from_json(sample["json"], key)
    exts = [e for e in AUDIO_EXTENSIONS if e in sample]
    if not exts:
        members = sorted(k for k in sample if not k.startswith("__"))
        raise SampleError(f"sample {key!r}: no audio member (one of {AUDIO_EXTENSIONS}); has {members}")
    try:
        with sf.SoundFile(io.BytesIO(sample[exts[0]])) as f:
            sr, channels, declared = f.samplerate, f.channels, f.frames
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        reason = (getattr(e, "error_string", None) or str(e)).strip()
        raise SampleError(f"sample {key!r}: audio does not decode ({reason})") from e
    if data.shape[0] < declared:
        raise SampleError(f"sample {key!r}: truncated audio ({data.shape[0]} of {declared} frames decode)")
    if data.shape[0] == 0:
        raise SampleError(f"sample {key!r}: empty audio")
    if not np.isfinite(data).all():
        raise SampleError(f"sample {key!r}: audio has NaN or infinite values")
    if sr != SAMPLE_RATE or channels != 1:
        raise SampleError(f"sample {key!r}: audio is {sr} Hz x {channels} channels; shards hold {SAMPLE_RATE} Hz mono")
    seconds = data.shape[0] / sr
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


def check_shards(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Decode every sample of the given tars (or directories of tars) and report problems by shard and key.

    Never raises on bad data: missing or unreadable shards, duplicate keys, metadata that fails
    ``SampleMeta.from_json``, missing members, audio that does not decode, wrong rate, or a duration that
    disagrees with the metadata all become entries of ``problems``. Returns a JSON-serialisable dict::

        {"ok": bool, "shards": n, "samples": n (seen), "good": n, "hours": h (good audio),
         "tasks": {task: good samples}, "problems": [{"shard": path, "key": key or None, "message": str}]}

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
    }
    problems: list[dict[str, Any]] = report["problems"]
    seen: dict[str, str] = {}
    seconds = 0.0
    for path in expand_paths(paths):
        report["shards"] += 1
        try:
            for sample in iter_shard(path):
                key = sample["__key__"]
                report["samples"] += 1
                if key in seen:
                    problems.append(_problem(path, key, f"sample {key!r}: duplicate key (also in {seen[key]})"))
                    continue
                seen[key] = path
                try:
                    meta, secs = check_sample(sample)
                except SampleError as e:
                    problems.append(_problem(path, key, str(e)))
                    continue
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
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    report = check_shards(args)
    print(format_report(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
