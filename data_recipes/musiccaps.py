"""MusicCaps music captioning -> ``mc`` shards.

MusicCaps publishes captions and YouTube references only; the user downloads the 10-s clips. Raw layout::

    ROOT/musiccaps-public.csv    ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,
                                 is_balanced_subset,is_audioset_eval
    ROOT/audio/<name>            the clips; also looked up in ROOT/music_data/ and ROOT/

``<name>`` is ``<ytid>``, ``<ytid>_<start_s>``, ``<ytid>_<start_s>-<end_s>`` or ``<ytid>_<start_s>_<end_s>`` with
extension wav, flac, mp3 or ogg. A file more than 1 s longer than ``end_s - start_s`` is taken as the full
recording and ``[start_s, end_s)`` is cut from it.

    python -m data_recipes.musiccaps --root ROOT --out OUT [--subsets train eval] [--skip-missing]

Subsets: ``eval`` (``is_audioset_eval`` true, the usual test set) and ``train`` (the rest). Samples:
``task="mc"``, ``target`` the caption, ``meta.aspects`` (``aspect_list`` as a list), ``meta.audioset_labels``
(mids), ``meta.ytid``, ``meta.start_s``, ``meta.end_s``, ``meta.balanced``. Keys ``musiccaps-<ytid>``. A missing
clip stops the conversion with an error naming it, or with ``--skip-missing`` is counted as ``skipped_missing``.
Clips over 30 s are skipped (a caption describes the whole clip).

Owns: the MusicCaps layout. Must not: download anything.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from data_recipes.clotho import AudioIndex, load_region, read_csv
from data_recipes.common import RawItem, Recipe, main_with_options, make_key

CSV = "musiccaps-public.csv"


def parse_aspects(text: str) -> list[str]:
    """``aspect_list`` is a Python list literal (``"['low quality', 'sustained strings melody']"``)."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return [a.strip() for a in text.strip("[]").split(",") if a.strip(" '\"")]
    return [str(a).strip() for a in value] if isinstance(value, (list, tuple)) else [str(value)]


def _num(s: str) -> str:
    """'30.0' -> '30', '12.5' -> '12.5' (download tools name files after the integer seconds)."""
    f = float(s)
    return str(int(f)) if f == int(f) else str(f)


class MusicCaps(Recipe):
    name = "musiccaps"
    layout = f"""\
ROOT/{CSV}     ytid,start_s,end_s,...,aspect_list,caption,...,is_balanced_subset,is_audioset_eval
ROOT/audio/<ytid>.wav         user-downloaded 10-s clips (also ROOT/music_data/, ROOT/; names <ytid>,
                              <ytid>_<start_s>, <ytid>_<start_s>-<end_s>; .wav/.flac/.mp3/.ogg)"""
    subsets = ("train", "eval")
    tasks = ("mc",)

    def __init__(self, skip_missing: bool = False) -> None:
        self.skip_missing = skip_missing

    def check(self, root: Path, subset: str) -> None:
        self.require(root / CSV, "the MusicCaps CSV")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        index = AudioIndex([root / "audio", root / "music_data", root])
        for row in read_csv(root / CSV):
            is_eval = (row.get("is_audioset_eval") or "").strip().lower() == "true"
            if is_eval != (subset == "eval"):
                continue
            ytid, caption = (row.get("ytid") or "").strip(), (row.get("caption") or "").strip()
            if not ytid or not caption:
                raise ValueError(f"{root / CSV}: a row lacks ytid or caption: {row}")
            start, end = float(row["start_s"]), float(row["end_s"])
            s, e = _num(row["start_s"]), _num(row["end_s"])
            names = [ytid, f"{ytid}_{s}", f"{ytid}_{s}-{e}", f"{ytid}_{s}_{e}"]
            path = index.find(names)
            if path is not None:
                audio = functools.partial(load_region, str(path), start, end)
            elif self.skip_missing:
                audio = None  # counted as skipped_missing
            else:
                raise self.missing(
                    root / "audio" / f"{ytid}.wav",
                    f"audio of clip {ytid} (tried {', '.join(names)}; --skip-missing skips absent clips)",
                )
            meta = {
                "aspects": parse_aspects(row.get("aspect_list") or ""),
                "audioset_labels": [m for m in (row.get("audioset_positive_labels") or "").split(",") if m],
                "ytid": ytid,
                "start_s": start,
                "end_s": end,
                "balanced": (row.get("is_balanced_subset") or "").strip().lower() == "true",
            }
            yield RawItem(
                key=make_key(self.name, ytid), audio=audio, task="mc", target=caption, text_language="en", meta=meta
            )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip clips whose audio is absent (counted as skipped_missing) instead of failing",
    )


RECIPE = MusicCaps()


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: MusicCaps(o.skip_missing), add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
