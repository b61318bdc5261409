"""LibriSpeech (OpenSLR 12) -> ``asr`` shards, one shard set per subset.

    python -m data_recipes.librispeech --root RAW_DIR --out OUT_DIR [--subsets dev-clean test-clean ...]

Raw layout (the OpenSLR tarballs extracted; ``RAW_DIR`` is the ``LibriSpeech/`` directory or its parent)::

    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   one "<utt-id> TRANSCRIPT" per line
    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac  16 kHz FLAC, utt-id = file stem

Samples: key ``librispeech-<utt-id>``, target = the transcript as the corpus writes it (upper case, no
punctuation: spoken form), audio and text language ``en``, ``meta.speaker`` and ``meta.chapter``; source
``librispeech/<subset>``. Without ``--subsets`` every subset present under the root is converted. Utterances
longer than 30 s (a few in the training subsets) are kept whole (the transcript follows the whole utterance; the
windowed encoder reads them); ``--max-seconds`` caps them (30: skipped and counted, as before).

Owns: reading the LibriSpeech layout. Must not: normalise text (the eval scorer does).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key

SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)


def _numeric_sorted(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (int(p.name) if p.name.isdigit() else float("inf"), p.name))


class LibriSpeech(Recipe):
    name = "librispeech"
    layout = """\
<root>/LibriSpeech/ (or <root> itself)
  <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   lines "<speaker>-<chapter>-<nnnn> TRANSCRIPT"
  <subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac
subsets: """ + ", ".join(SUBSETS)
    subsets = SUBSETS
    tasks = ("asr",)

    @staticmethod
    def base(root: Path) -> Path:
        return root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return tuple(s for s in SUBSETS if (self.base(root) / s).is_dir())

    def check(self, root: Path, subset: str) -> None:
        self.require(self.base(root) / subset, f"subset directory {subset!r}")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        subset_dir = self.base(root) / subset
        for speaker_dir in _numeric_sorted([p for p in subset_dir.iterdir() if p.is_dir()]):
            for chapter_dir in _numeric_sorted([p for p in speaker_dir.iterdir() if p.is_dir()]):
                trans = self.require(
                    chapter_dir / f"{speaker_dir.name}-{chapter_dir.name}.trans.txt", "chapter transcript"
                )
                for line in trans.read_text(encoding="utf-8").splitlines():
                    if not line.strip():
                        continue
                    utt, _, text = line.strip().partition(" ")
                    yield RawItem(
                        key=make_key("librispeech", utt),
                        audio=chapter_dir / f"{utt}.flac",
                        task=task,
                        target=text.strip(),
                        text_language="en",
                        audio_language="en",
                        meta={"speaker": speaker_dir.name, "chapter": chapter_dir.name},
                        long_audio="keep",  # the target follows the whole utterance: kept whole
                    )


RECIPE = LibriSpeech()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
