"""Mozilla Common Voice -> ``asr`` shards, one shard set per (locale, split), for the tag languages.

    python -m data_recipes.commonvoice --root RAW_DIR --out OUT_DIR [--subsets en/train en/test zh-CN/dev ...]

Raw layout (a ``cv-corpus-<version>-<date>`` release extracted; ``RAW_DIR`` is that directory)::

    <locale>/train.tsv, dev.tsv, test.tsv, validated.tsv     tab-separated with a header; columns used:
                                                            path (clip file name), sentence
    <locale>/clips/<path>                                   MP3 (any rate; resampled to 16 kHz)

Only the locales whose language has a Qwen-Audio tag are converted (``LOCALES``: en de es fr it ja ko zh-CN).
Subsets are ``<locale>/<split>`` with split one of train, dev, test, validated (validated is the superset of the
three, for custom splits). Without ``--subsets``: train, dev and test of every supported locale present.

Samples: key ``commonvoice-<clip stem>``, target = the sentence as the corpus writes it (cased, punctuated),
audio and text language = the tag language (``zh-CN`` -> ``zh``), ``meta.client_id`` and ``meta.locale``;
source ``commonvoice/<locale>/<split>``. Rows with an empty sentence are skipped. Old releases whose ``path``
lacks the ``.mp3`` extension are handled.

Owns: reading the Common Voice layout. Must not: normalise text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key, read_delimited

# Common Voice locale -> Qwen-Audio language tag. zh-TW / zh-HK are left out: their audio or script does not
# match one tag unambiguously (Taiwanese Mandarin in traditional script, Cantonese).
LOCALES = {"en": "en", "de": "de", "es": "es", "fr": "fr", "it": "it", "ja": "ja", "ko": "ko", "zh-CN": "zh"}
SPLITS = ("train", "dev", "test", "validated")
DEFAULT_SPLITS = ("train", "dev", "test")


def clip_path(clips: Path, path: str) -> Path:
    """The clip file of a TSV ``path`` value (releases before v3 wrote it without the extension)."""
    return clips / (path if Path(path).suffix else f"{path}.mp3")


class CommonVoice(Recipe):
    name = "commonvoice"
    layout = """\
<root>/ (a cv-corpus-<version>-<date> directory)
  <locale>/{train,dev,test,validated}.tsv   tab-separated, header; columns used: path, sentence
  <locale>/clips/<path>                     MP3 clips
locales: """ + ", ".join(LOCALES)
    subsets = tuple(f"{loc}/{split}" for loc in LOCALES for split in SPLITS)
    tasks = ("asr",)

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return tuple(f"{loc}/{s}" for loc in LOCALES for s in DEFAULT_SPLITS if (root / loc / f"{s}.tsv").is_file())

    def check(self, root: Path, subset: str) -> None:
        locale, split = subset.split("/")
        self.require(root / locale / f"{split}.tsv", f"the {split} TSV of locale {locale!r}")
        self.require(root / locale / "clips", f"the clips directory of locale {locale!r}")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        locale, split = subset.split("/")
        lang = LOCALES[locale]
        clips = root / locale / "clips"
        for row in read_delimited(root / locale / f"{split}.tsv"):
            sentence = (row.get("sentence") or "").strip()
            if not sentence:
                continue
            path = clip_path(clips, row["path"])
            yield RawItem(
                key=make_key("commonvoice", Path(row["path"]).stem),
                audio=path,
                task=task,
                target=sentence,
                text_language=lang,
                audio_language=lang,
                meta={"client_id": row.get("client_id", ""), "locale": locale},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )


RECIPE = CommonVoice()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
