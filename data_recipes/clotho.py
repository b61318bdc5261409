"""Clotho (v2.1) audio captioning -> ``aac`` shards.

Raw layout (the Zenodo release, archives extracted in place)::

    ROOT/clotho_captions_development.csv    file_name,caption_1,...,caption_5
    ROOT/clotho_captions_validation.csv
    ROOT/clotho_captions_evaluation.csv
    ROOT/development/<file_name>            15-30 s wav, 44.1 kHz
    ROOT/validation/<file_name>
    ROOT/evaluation/<file_name>

    python -m data_recipes.clotho --root ROOT --out OUT [--subsets development ...] [--caption-mode clip|each]

Without ``--subsets``, the subsets whose CSV is present are converted. Samples: ``task="aac"``, ``target`` a
caption, ``meta.captions`` all five captions of the clip (the reference set CIDEr/SPICE need),
``meta.file_name``, ``meta.caption_style="clotho"`` (the release's ``<|caption_clotho|>``).
``--caption-mode clip`` (default) writes one sample per clip with ``target = caption_1``; ``each`` writes one sample
per caption (keys ``...-c1`` .. ``-c5``; five copies of the audio) for training on every caption. Clips longer than
30 s (none in the release) are skipped: a caption describes the whole clip and cannot be re-based onto a window.

Also holds the few helpers the other sound/music recipes share (``read_csv``, ``unique_key``, ``readable``,
``AudioIndex``, ``load_region``): small additions to ``data_recipes.common`` that belong there eventually.

Owns: the Clotho layout and caption grouping. Must not: download anything or decide tags (the task registry does).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_recipes.common import RawItem, Recipe, main_with_options, make_key, present_subsets
from qwenaudio_train.audio import SAMPLE_RATE, AudioError, load_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
CAPTION_MODES = ("clip", "each")


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers of the sound/music recipes
# ---------------------------------------------------------------------------------------------------------------
def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a CSV with a header, as dicts. UTF-8 (BOM tolerated); files that are not valid UTF-8 (some
    Freesound-derived metadata) are read as cp1252 rather than failing."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            with open(path, encoding=encoding, newline="") as f:
                return [dict(r) for r in csv.DictReader(f)]
        except UnicodeDecodeError:
            continue
    with open(path, encoding="latin-1", newline="") as f:  # cp1252 leaves 5 bytes undefined; latin-1 none
        return [dict(r) for r in csv.DictReader(f)]


def readable(label: str) -> str:
    """A corpus label as text: ``pouring_water`` -> ``pouring water`` (ESC-50, FSD50K and TUT write spaces as
    underscores; the labels contain no real underscores)."""
    return " ".join(label.replace("_", " ").split())


def unique_key(key: str, seen: set[str]) -> str:
    """``key``, or ``key-2``, ``key-3``... if an earlier sample already took it (file names that differ only in
    characters ``make_key`` replaces would otherwise collide)."""
    out, n = key, 1
    while out in seen:
        n += 1
        out = f"{key}-{n}"
    seen.add(out)
    return out


class AudioIndex:
    """Audio files of some directories, found by stem (file name without extension): one ``listdir`` per
    directory instead of one ``stat`` per candidate name (corpora with user-chosen download names)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = [d for d in dirs if d.is_dir()]
        self.by_stem: dict[str, Path] = {}
        for d in self.dirs:
            for name in sorted(os.listdir(d)):
                stem, ext = os.path.splitext(name)
                if ext.lower() in AUDIO_SUFFIXES:
                    self.by_stem.setdefault(stem, d / name)

    def find(self, stems: Sequence[str]) -> Path | None:
        for s in stems:
            if s in self.by_stem:
                return self.by_stem[s]
        return None


def load_region(path: str, start_s: float, end_s: float, tolerance_s: float = 1.0) -> np.ndarray:
    """Decode a clip downloaded for the annotated region ``[start_s, end_s)`` of a recording (16 kHz mono).

    A file at most ``tolerance_s`` longer than the region is taken as the already-cut clip and kept whole;
    a longer file is taken as the full recording and the region is cut from it (the annotation covers only
    that region). Module-level so that it can run in worker processes (``functools.partial``).
    """
    wav = load_audio(path)
    length = end_s - start_s
    if wav.shape[0] / SAMPLE_RATE > length + tolerance_s:
        a, b = int(round(start_s * SAMPLE_RATE)), int(round(end_s * SAMPLE_RATE))
        if a >= wav.shape[0]:
            raise AudioError(
                f"{path}: the annotated region starts at {start_s} s but the file lasts "
                f"{wav.shape[0] / SAMPLE_RATE:.1f} s"
            )
        wav = wav[a:b]
    return wav


# ---------------------------------------------------------------------------------------------------------------
# Captions: one sample per clip or per caption (Clotho and AudioCaps)
# ---------------------------------------------------------------------------------------------------------------
def caption_items(
    key: str, audio: Any, captions: list[str], meta: dict[str, Any], mode: str, long_audio: str = "skip"
) -> Iterator[RawItem]:
    """The ``aac`` items of one clip: ``clip`` mode -> one item with the first caption as target; ``each`` ->
    one item per caption (keys ``<key>-c1``...). Every item carries all captions in ``meta.captions``."""
    captions = [c.strip() for c in captions if c and c.strip()]
    if not captions:
        return
    meta = dict(meta, captions=captions)
    if mode == "clip":
        yield RawItem(
            key=key, audio=audio, task="aac", target=captions[0], text_language="en", meta=meta, long_audio=long_audio
        )
    elif mode == "each":
        for j, cap in enumerate(captions, 1):
            yield RawItem(
                key=f"{key}-c{j}",
                audio=audio,
                task="aac",
                target=cap,
                text_language="en",
                meta=dict(meta, caption_index=j - 1),
                long_audio=long_audio,
            )
    else:
        raise ValueError(f"caption mode must be one of {CAPTION_MODES}, got {mode!r}")


# ---------------------------------------------------------------------------------------------------------------
# The Clotho recipe
# ---------------------------------------------------------------------------------------------------------------
class Clotho(Recipe):
    name = "clotho"
    layout = """\
ROOT/clotho_captions_{development,validation,evaluation}.csv   file_name,caption_1,...,caption_5
ROOT/{development,validation,evaluation}/<file_name>           the clips (wav)"""
    subsets = ("development", "validation", "evaluation")
    tasks = ("aac",)

    def __init__(self, caption_mode: str = "clip") -> None:
        if caption_mode not in CAPTION_MODES:
            raise ValueError(f"--caption-mode must be one of {CAPTION_MODES}, got {caption_mode!r}")
        self.caption_mode = caption_mode

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        self.require(root / f"clotho_captions_{subset}.csv", f"the {subset} captions CSV")
        self.require(root / subset, f"the {subset} audio folder")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        csv_path = root / f"clotho_captions_{subset}.csv"
        seen: set[str] = set()
        for row in read_csv(csv_path):
            name = (row.get("file_name") or "").strip()
            if not name:
                raise ValueError(f"{csv_path}: a row has no file_name: {row}")
            audio = root / subset / name
            if not audio.is_file():
                raise self.missing(audio, f"audio of {name!r} (listed in {csv_path.name})")
            captions = [row.get(f"caption_{j}") or "" for j in range(1, 6)]
            key = unique_key(make_key(self.name, subset, os.path.splitext(name)[0]), seen)
            yield from caption_items(
                key, str(audio), captions, {"file_name": name, "caption_style": "clotho"}, self.caption_mode
            )


def add_caption_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--caption-mode",
        choices=CAPTION_MODES,
        default="clip",
        help="clip: one sample per clip (target caption_1, all captions in meta.captions); "
        "each: one sample per caption (default clip)",
    )


RECIPE = Clotho()


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: Clotho(o.caption_mode), add_caption_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
