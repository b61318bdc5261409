"""MELD (Multimodal EmotionLines Dataset, audio only) -> ``er`` (emotion recognition) shards.

    python -m data_recipes.meld --root RAW_DIR --out OUT_DIR [--subsets train dev test]

Raw layout (``MELD.Raw.tar.gz`` extracted with its inner train/dev/test archives; ``RAW_DIR`` is ``MELD.Raw/``)::

    {train,dev,test}_sent_emo.csv     CSV with a header: Sr No., Utterance, Speaker, Emotion, Sentiment,
                                      Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime
                                      (also found as <split>/<split>_sent_emo.csv)
    train_splits/dia{D}_utt{U}.mp4                  the clips of each split (also found under <split>/)
    dev_splits_complete/dia{D}_utt{U}.mp4
    output_repeated_splits_test/dia{D}_utt{U}.mp4

The audio is inside the MP4 videos, which soundfile cannot read. Extract it once, beside each video, as
``dia{D}_utt{U}.wav`` (or ``.flac``), e.g. with ffmpeg::

    for f in train_splits/*.mp4 dev_splits_complete/*.mp4 output_repeated_splits_test/*.mp4; do
        ffmpeg -nostdin -loglevel error -i "$f" -vn -ac 1 -ar 16000 "${f%.mp4}.wav"; done

A CSV row whose video exists but whose wav does not stops the recipe with an error naming the wav (and this
command). A row with neither file is one of the release's known gaps (e.g. dev dia110_utt7): it is skipped and
counted as ``skipped_missing``.

Samples: key ``meld-<split>-dia<D>-utt<U>``, target = the emotion label as the CSV writes it (neutral, joy,
sadness, anger, surprise, fear, disgust), audio and text language ``en``, ``meta.sentiment``, ``meta.speaker``,
``meta.transcript``; source ``meld/<split>``. Utterances longer than 30 s are kept whole (``--max-seconds`` caps them).

Owns: reading the MELD layout. Must not: decode video (extract the audio first, as above).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from data_recipes.common import LayoutError, RawItem, Recipe, main, make_key, read_delimited

VIDEO_DIRS = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
AUDIO_SUFFIXES = (".wav", ".flac")
EXTRACT_HINT = (
    "extract the audio of every video first, e.g. "
    "ffmpeg -nostdin -i dia0_utt0.mp4 -vn -ac 1 -ar 16000 dia0_utt0.wav (soundfile cannot read mp4)"
)


class Meld(Recipe):
    name = "meld"
    layout = (
        """\
<root>/ (MELD.Raw)
  {train,dev,test}_sent_emo.csv   (or <split>/<split>_sent_emo.csv): Sr No., Utterance, Speaker, Emotion,
                                  Sentiment, Dialogue_ID, Utterance_ID, ...
  train_splits/, dev_splits_complete/, output_repeated_splits_test/   (or under <split>/)
      dia{D}_utt{U}.mp4  +  dia{D}_utt{U}.wav extracted beside it ("""
        + EXTRACT_HINT
        + ")"
    )
    subsets = ("train", "dev", "test")
    tasks = ("er",)

    @staticmethod
    def _first(candidates: list[Path]) -> Path | None:
        return next((p for p in candidates if p.exists()), None)

    def csv_path(self, root: Path, split: str) -> Path:
        name = f"{split}_sent_emo.csv"
        return self._first([root / name, root / split / name]) or root / name

    def video_dir(self, root: Path, split: str) -> Path:
        name = VIDEO_DIRS[split]
        return self._first([root / name, root / split / name]) or root / name

    def check(self, root: Path, subset: str) -> None:
        self.require(self.csv_path(root, subset), f"the {subset} annotation CSV")
        self.require(self.video_dir(root, subset), f"the {subset} clip directory")

    def _audio(self, clip_dir: Path, stem: str) -> Path | None:
        for suffix in AUDIO_SUFFIXES:
            if (clip_dir / f"{stem}{suffix}").is_file():
                return clip_dir / f"{stem}{suffix}"
        if (clip_dir / f"{stem}.mp4").is_file():
            raise LayoutError(
                f"meld: audio not found: expected {str(clip_dir / (stem + '.wav'))!r} beside {stem}.mp4; {EXTRACT_HINT}"
            )
        return None  # listed in the CSV but absent from the release

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        clip_dir = self.video_dir(root, subset)
        for row in read_delimited(self.csv_path(root, subset), delimiter=",", errors="replace"):
            dia, utt = row["Dialogue_ID"].strip(), row["Utterance_ID"].strip()
            stem = f"dia{dia}_utt{utt}"
            yield RawItem(
                key=make_key("meld", subset, f"dia{dia}", f"utt{utt}"),
                audio=self._audio(clip_dir, stem),
                task=task,
                target=row["Emotion"].strip().lower(),
                text_language="en",
                audio_language="en",
                meta={
                    "sentiment": row.get("Sentiment", "").strip(),
                    "speaker": row.get("Speaker", ""),
                    "transcript": row.get("Utterance", ""),
                },
                long_audio="keep",  # the target follows the whole utterance: kept whole
            )


RECIPE = Meld()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
