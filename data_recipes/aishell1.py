"""AISHELL-1 (OpenSLR 33) -> ``asr`` shards (Mandarin), one shard set per split.

    python -m data_recipes.aishell1 --root RAW_DIR --out OUT_DIR [--subsets train dev test]

Raw layout (``data_aishell.tgz`` extracted, and each per-speaker ``wav/S0002.tar.gz`` extracted in place, as
the Kaldi/WeNet recipes do; ``RAW_DIR`` is ``data_aishell/`` or its parent)::

    data_aishell/transcript/aishell_transcript_v0.8.txt   lines "BAC009S0002W0122 而 对 楼市 成交 抑制 ..."
    data_aishell/wav/{train,dev,test}/<speaker>/<utt-id>.wav   e.g. wav/train/S0002/BAC009S0002W0122.wav

Samples: key ``aishell1-<utt-id>``, target = the transcript with the word-segmentation spaces removed (Chinese is
written without spaces; the release scores zh per character anyway), audio and text language ``zh``,
``meta.speaker``; source ``aishell1/<split>``. Wav files that the transcript does not list (a few hundred in the
release) are skipped, as the Kaldi recipe does, and their number is printed.

Owns: reading the AISHELL-1 layout. Must not: normalise text beyond removing the segmentation spaces.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key

TRANSCRIPT = Path("transcript") / "aishell_transcript_v0.8.txt"


class Aishell1(Recipe):
    name = "aishell1"
    layout = """\
<root>/data_aishell/ (or <root> itself)
  transcript/aishell_transcript_v0.8.txt     lines "BAC009S0002W0122 而 对 楼市 成交 ..."
  wav/{train,dev,test}/<speaker>/<utt-id>.wav (extract each wav/<speaker>.tar.gz in wav/ first)"""
    subsets = ("train", "dev", "test")
    tasks = ("asr",)

    @staticmethod
    def base(root: Path) -> Path:
        return root / "data_aishell" if (root / "data_aishell").is_dir() else root

    def check(self, root: Path, subset: str) -> None:
        base = self.base(root)
        self.require(base / TRANSCRIPT, "the transcript")
        split_dir = base / "wav" / subset
        if not split_dir.is_dir():
            packed = sorted((base / "wav").glob("*.tar.gz")) if (base / "wav").is_dir() else []
            what = (
                f"split directory (found {len(packed)} unextracted wav/*.tar.gz: extract them in wav/)"
                if packed
                else "split directory"
            )
            raise self.missing(split_dir, what)

    def _transcripts(self, base: Path) -> dict[str, str]:
        out = {}
        for line in (base / TRANSCRIPT).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = "".join(parts[1:])
        return out

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        base = self.base(root)
        texts = self._transcripts(base)
        untranscribed = 0
        for wav in sorted((base / "wav" / subset).glob("*/*.wav")):
            text = texts.get(wav.stem)
            if text is None:
                untranscribed += 1
                continue
            yield RawItem(
                key=make_key("aishell1", wav.stem),
                audio=wav,
                task=task,
                target=text,
                text_language="zh",
                audio_language="zh",
                meta={"speaker": wav.parent.name},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )
        if untranscribed:
            print(
                f"aishell1/{subset}: {untranscribed} wav files have no transcript line and were skipped",
                file=sys.stderr,
            )


RECIPE = Aishell1()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
