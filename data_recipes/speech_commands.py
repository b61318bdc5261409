"""Google Speech Commands (v0.02, also v0.01) -> ``ks`` (keyword spotting) shards.

    python -m data_recipes.speech_commands --root RAW_DIR --out OUT_DIR [--subsets train validation test]

Raw layout (``speech_commands_v0.02.tar.gz`` extracted; ``RAW_DIR`` is the extracted directory)::

    <word>/<speaker hash>_nohash_<n>.wav   1-s 16 kHz clips, e.g. right/bb05582b_nohash_3.wav (35 words in v0.02)
    validation_list.txt                    one "<word>/<file>.wav" per line
    testing_list.txt                       likewise
    _background_noise_/                    long noise recordings: ignored (not keywords)

Subsets: ``validation`` and ``test`` are the two lists; ``train`` is every other clip, as the dataset's README
defines it. Samples: key ``speechcommands-<word>-<file stem>``, target = the word (the folder name), audio and
text language ``en``, ``meta.speaker`` (the hash); source ``speech_commands/<subset>``.

Owns: reading the Speech Commands layout. Must not: add the 12-class "unknown"/"silence" remapping (a mixture or
eval choice, not a corpus fact).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key

LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}


class SpeechCommands(Recipe):
    name = "speech_commands"
    layout = """\
<root>/<word>/<speaker hash>_nohash_<n>.wav    e.g. right/bb05582b_nohash_3.wav
<root>/validation_list.txt, <root>/testing_list.txt   "<word>/<file>.wav" per line (train = all other clips)
<root>/_background_noise_/                      ignored"""
    subsets = ("train", "validation", "test")
    tasks = ("ks",)

    def check(self, root: Path, subset: str) -> None:
        for name in LISTS.values():  # train is defined by both lists
            if subset == "train" or LISTS[subset] == name:
                self.require(root / name, "a split list")

    @staticmethod
    def _listed(root: Path, name: str) -> list[str]:
        lines = (root / name).read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip()]

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        if subset == "train":
            held_out = set(self._listed(root, LISTS["validation"])) | set(self._listed(root, LISTS["test"]))
            rels = [
                f"{p.parent.name}/{p.name}" for p in sorted(root.glob("*/*.wav")) if not p.parent.name.startswith("_")
            ]
            rels = [r for r in rels if r not in held_out]
        else:
            rels = self._listed(root, LISTS[subset])
        for rel in rels:
            word, _, fname = rel.partition("/")
            stem = Path(fname).stem
            yield RawItem(
                key=make_key("speechcommands", word, stem),
                audio=root / word / fname,
                task=task,
                target=word,
                text_language="en",
                audio_language="en",
                meta={"speaker": stem.split("_nohash_")[0]},
            )


RECIPE = SpeechCommands()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
