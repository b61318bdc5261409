"""Any Hugging Face ``datasets`` dataset saved locally with ``save_to_disk`` -> shards of one task.

Columns are mapped on the command line::

    python -m data_recipes.hf_datasets --root SAVED_DIR --out OUT --task asr --target-column text \\
        [--audio-column audio] [--text-language en] [--audio-language en | --audio-language-column lang] \\
        [--meta-column question ...] [--key-column id] [--name mycorpus] [--long-audio skip|windows|keep] \\
        [--subsets train test]

ROOT is a ``Dataset`` or ``DatasetDict`` directory; the subsets are the ``DatasetDict``'s splits (a single
``Dataset`` is the subset ``--split-name``, default ``train``). The audio column may hold:

* encoded bytes (``Value("binary")``), or ``{"bytes": ..., "path": ...}`` (the ``Audio`` feature);
* a path string (relative paths are resolved against ``--audio-root``, default ROOT);
* ``{"array": [...], "sampling_rate": sr}`` (decoded samples; resampled to 16 kHz, channels averaged).

datasets 5.x decodes its ``Audio`` feature only through torchcodec: the column is read with
``Audio(decode=False)`` and decoded here with soundfile, so torchcodec is never needed.

Targets: a string; a list (joined with ``", "`` - for ``sec``/``mic`` also ``meta.labels``); a ``ClassLabel``
integer (its name). ``--meta-column COL`` or ``COL=FIELD`` copies a column into ``meta`` (e.g.
``--meta-column QuestionText=question`` for ``aqa``). Conventions filled in when absent: ``asr``/``srwt``/``dasr``
audio language = text language; ``lid`` ``meta.language`` = audio language; ``sec``/``mic`` ``meta.labels``.
Samples' ``source`` is ``<name>/<split>`` (``--name`` defaults to ROOT's folder name); keys are
``<name>-<split>-<key column or row index>``. ``--long-audio windows`` splits clips over 30 s into windows (only
for clip-level targets), ``--long-audio keep`` keeps them whole (up to ``--max-seconds``, 600 s); the default skips and
counts them.

Owns: column mapping and audio-cell decoding. Must not: download (the dataset is read from disk only) or use the
``Audio`` decoder.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_recipes.common import LayoutError, RawItem, Recipe, main_with_options, make_key
from qwenaudio_train.audio import SAMPLE_RATE

LABEL_TASKS = ("sec", "mic")
SPEECH_SAME_LANGUAGE = ("asr", "srwt", "dasr", "osr", "ser", "sf")


def _load(path: Path) -> Any:
    import datasets

    datasets.disable_progress_bars()
    try:
        return datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise LayoutError(f"hf_datasets: no dataset saved with save_to_disk at {str(path)!r} ({e})") from e


def _array_audio(cell: dict[str, Any], where: str) -> np.ndarray:
    import soxr

    wav = np.asarray(cell["array"], dtype=np.float32)
    sr = int(cell.get("sampling_rate") or 0)
    if sr <= 0:
        raise ValueError(f"{where}: audio array without a sampling_rate")
    if wav.ndim == 2:  # (channels, samples) as datasets writes it, or (samples, channels)
        wav = wav.mean(axis=0 if wav.shape[0] < wav.shape[1] else 1)
    if sr != SAMPLE_RATE:
        wav = soxr.resample(wav, sr, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(wav, dtype=np.float32)


class HFDataset(Recipe):
    layout = """\
ROOT/    a datasets.Dataset or DatasetDict written by save_to_disk (dataset_info.json / dataset_dict.json)"""
    tasks = ()

    def __init__(
        self,
        root: str | None,
        task: str,
        target_column: str,
        audio_column: str = "audio",
        text_language: str = "en",
        audio_language: str | None = None,
        audio_language_column: str | None = None,
        meta_columns: tuple[str, ...] = (),
        key_column: str | None = None,
        name: str | None = None,
        split_name: str = "train",
        audio_root: str | None = None,
        long_audio: str = "skip",
    ) -> None:
        if long_audio not in ("skip", "windows", "keep"):
            raise ValueError(f"--long-audio must be skip, windows or keep, got {long_audio!r}")
        self.task = task.lower()
        self.tasks = (self.task,)
        self.target_column, self.audio_column = target_column, audio_column
        self.text_language, self.audio_language = text_language, audio_language
        self.audio_language_column, self.key_column = audio_language_column, key_column
        self.meta_map = [tuple(m.split("=", 1)) if "=" in m else (m, m) for m in meta_columns]
        self.split_name, self.long_audio = split_name, long_audio
        self.audio_root = audio_root
        self.name = name or (make_key(Path(root).resolve().name) if root else "hf")
        self._data: Any = None
        self.subsets = ()
        if root is not None:
            import datasets

            self._data = _load(Path(root))
            if isinstance(self._data, datasets.DatasetDict):
                self.subsets = tuple(self._data.keys())
            else:
                self.subsets = (split_name,)

    def _split(self, subset: str) -> Any:
        import datasets

        data = self._data[subset] if isinstance(self._data, datasets.DatasetDict) else self._data
        columns = [self.audio_column, self.target_column] + [c for c, _ in self.meta_map]
        columns += [c for c in (self.audio_language_column, self.key_column) if c]
        absent = [c for c in columns if c not in data.column_names]
        if absent:
            raise ValueError(f"hf_datasets: split {subset!r} has no column(s) {absent}; columns: {data.column_names}")
        data = data.select_columns(list(dict.fromkeys(columns)))
        if isinstance(data.features[self.audio_column], datasets.Audio):
            data = data.cast_column(self.audio_column, datasets.Audio(decode=False))
        return data

    def check(self, root: Path, subset: str) -> None:
        if self._data is None:
            raise ValueError("hf_datasets: build HFDataset with the dataset directory (root=...) before converting")
        self._split(subset)

    def _audio(self, cell: Any, root: Path, where: str) -> Any:
        base = Path(self.audio_root) if self.audio_root else root
        if isinstance(cell, (bytes, bytearray)):
            return bytes(cell)
        if isinstance(cell, str):
            path = Path(cell) if os.path.isabs(cell) else base / cell
            if not path.is_file():
                raise self.missing(path, f"audio file of {where}")
            return str(path)
        if isinstance(cell, dict):
            if cell.get("bytes"):
                return bytes(cell["bytes"])
            if cell.get("array") is not None:
                return _array_audio(cell, where)
            if cell.get("path"):
                return self._audio(cell["path"], root, where)
        raise ValueError(
            f"hf_datasets: {where}: audio cell is neither bytes, a path, {{bytes, path}} nor "
            f"{{array, sampling_rate}}: {type(cell).__name__}"
        )

    def _target(self, value: Any, feature: Any) -> tuple[str, list[str] | None]:
        import datasets

        if isinstance(feature, datasets.ClassLabel) and isinstance(value, int):
            value = feature.int2str(value)
        if isinstance(value, (list, tuple)):
            inner = getattr(feature, "feature", None)
            labels = [
                inner.int2str(v) if isinstance(inner, datasets.ClassLabel) and isinstance(v, int) else str(v)
                for v in value
            ]
            return ", ".join(labels), labels
        return str(value).strip(), None

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        data = self._split(subset)
        target_feature = data.features[self.target_column]
        seen: set[str] = set()
        for i, row in enumerate(data):
            where = f"row {i} of split {subset!r}"
            target, labels = self._target(row[self.target_column], target_feature)
            if not target:
                continue
            meta: dict[str, Any] = {field: row[col] for col, field in self.meta_map}
            audio_language = str(row[self.audio_language_column]) if self.audio_language_column else self.audio_language
            if audio_language is None and self.task in SPEECH_SAME_LANGUAGE:
                audio_language = self.text_language
            if self.task in LABEL_TASKS and "labels" not in meta:
                meta["labels"] = labels or [target]
            if self.task == "lid" and "language" not in meta and audio_language:
                meta["language"] = audio_language
            key = make_key(self.name, subset, row[self.key_column] if self.key_column else f"{i:08d}")
            if key in seen:
                raise ValueError(f"hf_datasets: key column {self.key_column!r} repeats {key!r} ({where})")
            seen.add(key)
            yield RawItem(
                key=key,
                audio=self._audio(row[self.audio_column], root, where),
                task=self.task,
                target=target,
                text_language=self.text_language,
                audio_language=audio_language,
                meta=meta,
                long_audio=self.long_audio,
            )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default=None, help="task of every sample (asr, sec, aac, ...); required")
    parser.add_argument("--target-column", default=None, help="column holding the target; required")
    parser.add_argument("--audio-column", default="audio", help="column holding the audio (default audio)")
    parser.add_argument("--text-language", default="en", help="language of the targets (default en)")
    parser.add_argument("--audio-language", default=None, help="spoken language (speech tasks)")
    parser.add_argument("--audio-language-column", default=None, help="column giving the spoken language per row")
    parser.add_argument(
        "--meta-column", action="append", default=[], metavar="COL[=FIELD]", help="copy a column into meta (repeatable)"
    )
    parser.add_argument("--key-column", default=None, help="column of unique ids for keys (default row index)")
    parser.add_argument("--name", default=None, help="corpus name for source/keys (default ROOT's folder name)")
    parser.add_argument("--split-name", default="train", help="subset name of a single Dataset (default train)")
    parser.add_argument("--audio-root", default=None, help="base of relative audio paths (default ROOT)")
    parser.add_argument(
        "--long-audio",
        choices=("skip", "windows", "keep"),
        default="skip",
        help="clips over 30 s: skip (default), split into windows (clip-level targets only) or keep whole",
    )


def _make(o: argparse.Namespace, root: str | None) -> HFDataset:
    if root is not None and (not o.task or not o.target_column):
        raise ValueError("hf_datasets needs --task and --target-column")
    return HFDataset(
        root,
        o.task or "asr",
        o.target_column or "text",
        o.audio_column,
        o.text_language,
        o.audio_language,
        o.audio_language_column,
        tuple(o.meta_column),
        o.key_column,
        o.name,
        o.split_name,
        o.audio_root,
        o.long_audio,
    )


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(_make, add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
