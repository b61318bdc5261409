"""AudioCaps audio captioning -> ``aac`` shards.

AudioCaps publishes only captions and YouTube references; the audio is downloaded by the user (10-s clips of
AudioSet videos). Raw layout::

    ROOT/{train,val,test}.csv      audiocap_id,youtube_id,start_time,caption   (also read from ROOT/dataset/)
    ROOT/audio/<split>/<name>      the clips; also looked up in ROOT/<split>/ and ROOT/audio/

``<name>`` is any of the names common download tools write, tried in this order (extension wav, flac, mp3 or
ogg): ``<youtube_id>_<start_time>`` (e.g. ``r1nicOVtvkQ_130.wav``), ``<audiocap_id>``,
``Y<youtube_id>_<start>.000_<end>.000`` (AudioSet style), ``Y<youtube_id>``, ``<youtube_id>``. A file longer
than 11 s is taken as the full video and the annotated 10 s from ``start_time`` are cut from it.

    python -m data_recipes.audiocaps --root ROOT --out OUT [--subsets train val test]
                                     [--caption-mode clip|each] [--skip-missing]

Samples: ``task="aac"``, ``target`` a caption, ``meta.captions`` every caption of the clip (val/test have five
rows per clip), ``meta.youtube_id``, ``meta.start_time``, ``meta.audiocap_ids``,
``meta.caption_style="audiocaps"`` (the release's ``<|caption_audiocaps|>``). Caption modes as in
``data_recipes.clotho``. A clip whose audio is missing stops the conversion with an error naming it; with
``--skip-missing`` (videos disappear from YouTube) it is skipped and counted as ``skipped_missing`` instead.
Without ``--subsets``, the splits whose CSV is present are converted.

Owns: the AudioCaps layout, clip grouping and file-name lookup. Must not: download anything.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from data_recipes.clotho import (
    CAPTION_MODES,
    AudioIndex,
    add_caption_options,
    caption_items,
    load_region,
    read_csv,
)
from data_recipes.common import RawItem, Recipe, main_with_options, make_key, present_subsets

CLIP_S = 10.0


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise ValueError(f"start_time {s!r} is not a number") from None


class AudioCaps(Recipe):
    name = "audiocaps"
    layout = """\
ROOT/{train,val,test}.csv    audiocap_id,youtube_id,start_time,caption (or ROOT/dataset/<split>.csv)
ROOT/audio/<split>/<name>    user-downloaded clips (also ROOT/<split>/, ROOT/audio/), <name> one of
                             <youtube_id>_<start_time>, <audiocap_id>, Y<youtube_id>_<start>.000_<end>.000,
                             Y<youtube_id>, <youtube_id>  (.wav/.flac/.mp3/.ogg)"""
    subsets = ("train", "val", "test")
    tasks = ("aac",)

    def __init__(self, caption_mode: str = "clip", skip_missing: bool = False) -> None:
        if caption_mode not in CAPTION_MODES:
            raise ValueError(f"--caption-mode must be one of {CAPTION_MODES}, got {caption_mode!r}")
        self.caption_mode = caption_mode
        self.skip_missing = skip_missing

    def _csv(self, root: Path, subset: str) -> Path:
        for p in (root / f"{subset}.csv", root / "dataset" / f"{subset}.csv"):
            if p.is_file():
                return p
        raise self.missing(root / f"{subset}.csv", f"the {subset} caption CSV")

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        self._csv(root, subset)

    @staticmethod
    def candidates(youtube_id: str, start: str, audiocap_ids: list[str]) -> list[str]:
        t = _number(start)
        whole = str(int(t)) if t == int(t) else str(t)
        return (
            [f"{youtube_id}_{start}", f"{youtube_id}_{whole}"]
            + audiocap_ids
            + [f"Y{youtube_id}_{t:.3f}_{t + CLIP_S:.3f}", f"Y{youtube_id}", youtube_id]
        )

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        csv_path = self._csv(root, subset)
        clips: dict[tuple[str, str], list[dict[str, str]]] = {}
        for row in read_csv(csv_path):
            ytid, start = (row.get("youtube_id") or "").strip(), (row.get("start_time") or "").strip()
            if not ytid or not start:
                raise ValueError(f"{csv_path}: a row lacks youtube_id or start_time: {row}")
            clips.setdefault((ytid, start), []).append(row)
        index = AudioIndex([root / "audio" / subset, root / subset, root / "audio"])
        for (ytid, start), rows in clips.items():
            ids = [(r.get("audiocap_id") or "").strip() for r in rows]
            names = self.candidates(ytid, start, [i for i in ids if i])
            path = index.find(names)
            t = _number(start)
            if path is not None:
                audio = functools.partial(load_region, str(path), t, t + CLIP_S)
            elif self.skip_missing:
                audio = None  # counted as skipped_missing
            else:
                raise self.missing(
                    root / "audio" / subset / f"{names[0]}.wav",
                    f"audio of clip {ytid} at {start} s (tried {', '.join(names)}; --skip-missing skips absent clips)",
                )
            meta = {"youtube_id": ytid, "start_time": t, "audiocap_ids": ids, "caption_style": "audiocaps"}
            key = make_key(self.name, subset, ytid, start)
            yield from caption_items(key, audio, [r.get("caption") or "" for r in rows], meta, self.caption_mode)


def add_options(parser: argparse.ArgumentParser) -> None:
    add_caption_options(parser)
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip clips whose audio is absent (counted as skipped_missing) instead of failing",
    )


RECIPE = AudioCaps()


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: AudioCaps(o.caption_mode, o.skip_missing), add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
