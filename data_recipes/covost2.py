"""CoVoST 2 (speech translation over Common Voice clips) -> ``s2tt`` shards, one set per (pair, split).

    python -m data_recipes.covost2 --root RAW_DIR --out OUT_DIR [--subsets en_de/test zh-CN_en/test ...]

Raw layout (the one fairseq's ``prep_covost_data.py`` reads: per source language, the Common Voice clips plus the
CoVoST TSVs)::

    <src>/clips/<path>                             Common Voice clips (MP3) of the source language
    <src>/covost_v2.<src>_<tgt>.<split>.tsv        split TSVs written by CoVoST's get_covost_splits.py: tab-
                                                   separated, header "path sentence translation client_id",
                                                   pandas QUOTE_NONE with backslash escapes
  or, when the split TSVs were not generated:
    <src>/covost_v2.<src>_<tgt>.tsv                the released TSV (path, translation, split) and
    <src>/validated.tsv                            Common Voice's validated.tsv (path, sentence, client_id):
                                                   joined on path exactly as get_covost_splits.py does
                                                   (train = "train" + "train_covost" rows)

Subsets are ``<src>_<tgt>/<split>`` (split train, dev, test) for the pairs whose two languages have Qwen-Audio
tags (``PAIRS``: X->en for fr de es it zh-CN ja, en->X for de zh-CN ja; the release evaluates en-de de-en en-zh
zh-en es-en fr-en it-en). Without ``--subsets``, every pair and split whose TSVs are present.

Samples: key ``covost2-<src>_<tgt>-<clip stem>``, target = the translation, ``text_language`` = target language,
``audio_language`` = source language (``zh-CN`` -> ``zh``), ``meta.transcript`` = the source sentence,
``meta.client_id``; source ``covost2/<src>_<tgt>/<split>``.

Owns: reading the CoVoST 2 layout. Must not: normalise text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import RawItem, Recipe, main, make_key, read_delimited
from data_recipes.commonvoice import clip_path

TAG = {"en": "en", "de": "de", "es": "es", "fr": "fr", "it": "it", "ja": "ja", "zh-CN": "zh"}
PAIRS = tuple(f"{x}_en" for x in ("fr", "de", "es", "it", "zh-CN", "ja")) + tuple(
    f"en_{x}" for x in ("de", "zh-CN", "ja")
)
SPLITS = ("train", "dev", "test")


class CoVoST2(Recipe):
    name = "covost2"
    layout = """\
<root>/<src>/clips/<path>                         Common Voice MP3 clips of the source language
<root>/<src>/covost_v2.<src>_<tgt>.<split>.tsv    from get_covost_splits.py: path, sentence, translation, client_id
  or <root>/<src>/covost_v2.<src>_<tgt>.tsv (path, translation, split) + <root>/<src>/validated.tsv (Common Voice)
pairs: """ + ", ".join(PAIRS)
    subsets = tuple(f"{pair}/{split}" for pair in PAIRS for split in SPLITS)
    tasks = ("s2tt",)

    @staticmethod
    def _parse(subset: str) -> tuple[str, str, str]:
        pair, split = subset.split("/")
        src, tgt = pair.split("_")
        return src, tgt, split

    @staticmethod
    def _split_tsv(root: Path, src: str, tgt: str, split: str) -> Path:
        return root / src / f"covost_v2.{src}_{tgt}.{split}.tsv"

    @staticmethod
    def _full_tsv(root: Path, src: str, tgt: str) -> Path:
        return root / src / f"covost_v2.{src}_{tgt}.tsv"

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        out = []
        for subset in self.subsets:
            src, tgt, split = self._parse(subset)
            if self._split_tsv(root, src, tgt, split).is_file() or self._full_tsv(root, src, tgt).is_file():
                out.append(subset)
        return tuple(out)

    def check(self, root: Path, subset: str) -> None:
        src, tgt, split = self._parse(subset)
        self.require(root / src / "clips", f"the Common Voice clips directory of {src!r}")
        if not self._split_tsv(root, src, tgt, split).is_file():
            if not self._full_tsv(root, src, tgt).is_file():
                raise self.missing(
                    self._split_tsv(root, src, tgt, split),
                    f"the CoVoST 2 {src}->{tgt} {split} TSV (or the released "
                    f"covost_v2.{src}_{tgt}.tsv with validated.tsv)",
                )
            self.require(
                root / src / "validated.tsv", f"Common Voice's validated.tsv (to join with covost_v2.{src}_{tgt}.tsv)"
            )

    def _rows(self, root: Path, src: str, tgt: str, split: str) -> list[dict[str, str]]:
        split_tsv = self._split_tsv(root, src, tgt, split)
        if split_tsv.is_file():
            return read_delimited(split_tsv, escapechar="\\")
        # The join of get_covost_splits.py: validated.tsv (path, sentence, client_id) x covost (path,
        # translation, split), inner on path, in validated.tsv's order.
        wanted = {split, f"{split}_covost"} if split == "train" else {split}
        covost = {}
        for r in read_delimited(self._full_tsv(root, src, tgt), escapechar="\\"):
            if r.get("split") in wanted:
                covost[r["path"]] = r["translation"]
        rows = []
        for r in read_delimited(root / src / "validated.tsv", escapechar="\\"):
            if r["path"] in covost:
                rows.append(
                    {
                        "path": r["path"],
                        "sentence": r.get("sentence", ""),
                        "translation": covost[r["path"]],
                        "client_id": r.get("client_id", ""),
                    }
                )
        return rows

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        src, tgt, split = self._parse(subset)
        clips = root / src / "clips"
        for row in self._rows(root, src, tgt, split):
            translation = (row.get("translation") or "").strip()
            if not translation:
                continue
            yield RawItem(
                key=make_key("covost2", f"{src}_{tgt}", Path(row["path"]).stem),
                audio=clip_path(clips, row["path"]),
                task=task,
                target=translation,
                text_language=TAG[tgt],
                audio_language=TAG[src],
                meta={"transcript": (row.get("sentence") or "").strip(), "client_id": row.get("client_id", "")},
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )


RECIPE = CoVoST2()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
