"""AISHELL-2 (iOS training data + the AISHELL dev/test set) -> ``asr`` shards (Mandarin).

    python -m data_recipes.aishell2 --root RAW_DIR --out OUT_DIR [--subsets train test-ios ...]

Raw layout (as distributed; the Kaldi/WeNet aishell2 recipes read the same files)::

    AISHELL-2/iOS/data/wav.scp        lines "IC0001W0001<TAB>wav/C0001/IC0001W0001.wav" (relative to iOS/data)
    AISHELL-2/iOS/data/trans.txt      lines "IC0001W0001<TAB>厨房用具"
    AISHELL-2/iOS/data/wav/C0001/IC0001W0001.wav
    AISHELL-DEV-TEST-SET/{iOS,Android,Mic}/{dev,test}/{wav.scp,trans.txt,wav/...}   same formats

``RAW_DIR`` holds ``AISHELL-2/`` and/or ``AISHELL-DEV-TEST-SET/``. Subsets: ``train`` (AISHELL-2/iOS/data) and
``dev-ios test-ios dev-android test-android dev-mic test-mic``; without ``--subsets``, every one present.

Samples: key ``aishell2-<utt-id>`` (for the dev/test set ``aishell2-<device>-<utt-id>``), target = the trans.txt
text as written, audio and text language ``zh``, ``meta.speaker`` (the wav's parent directory); source
``aishell2/<subset>``. Utterances in only one of wav.scp and trans.txt are skipped, as the Kaldi recipe does.

Owns: reading the AISHELL-2 layout. Must not: normalise text (the Kaldi recipe upper-cases English; we do not).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key

DEVICES = {"ios": "iOS", "android": "Android", "mic": "Mic"}
SUBSETS = ("train",) + tuple(f"{split}-{dev}" for dev in DEVICES for split in ("dev", "test"))


def _read_pairs(path: Path) -> dict[str, str]:
    """Kaldi-style "<id><TAB or space><value>" lines (the first whitespace separates the id)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


class Aishell2(Recipe):
    name = "aishell2"
    layout = """\
<root>/AISHELL-2/iOS/data/{wav.scp,trans.txt,wav/C0001/IC0001W0001.wav}     subset train
<root>/AISHELL-DEV-TEST-SET/{iOS,Android,Mic}/{dev,test}/{wav.scp,trans.txt,wav/...}   subsets dev-ios ... test-mic
  wav.scp:   "IC0001W0001<TAB>wav/C0001/IC0001W0001.wav" (relative to the directory holding wav.scp)
  trans.txt: "IC0001W0001<TAB>厨房用具\""""
    subsets = SUBSETS
    tasks = ("asr",)

    @staticmethod
    def corpus_dir(root: Path, subset: str) -> Path:
        if subset == "train":
            nested = root / "AISHELL-2" / "iOS" / "data"
            return nested if nested.is_dir() or not (root / "iOS" / "data").is_dir() else root / "iOS" / "data"
        split, device = subset.split("-")
        return root / "AISHELL-DEV-TEST-SET" / DEVICES[device] / split

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return tuple(s for s in SUBSETS if (self.corpus_dir(root, s) / "wav.scp").is_file())

    def check(self, root: Path, subset: str) -> None:
        d = self.corpus_dir(root, subset)
        self.require(d / "wav.scp", f"wav.scp of subset {subset!r}")
        self.require(d / "trans.txt", f"trans.txt of subset {subset!r}")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        d = self.corpus_dir(root, subset)
        wavs, texts = _read_pairs(d / "wav.scp"), _read_pairs(d / "trans.txt")
        unmatched = len(set(wavs) ^ set(texts))
        prefix = ("aishell2",) if subset == "train" else ("aishell2", subset.split("-")[1])
        for utt, rel in wavs.items():
            if utt not in texts:
                continue
            path = d / rel
            yield RawItem(
                key=make_key(*prefix, utt),
                audio=path,
                task=task,
                target=texts[utt],
                text_language="zh",
                audio_language="zh",
                meta={"speaker": path.parent.name},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )
        if unmatched:
            print(
                f"aishell2/{subset}: {unmatched} utterances are in only one of wav.scp and trans.txt; skipped",
                file=sys.stderr,
            )


RECIPE = Aishell2()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
