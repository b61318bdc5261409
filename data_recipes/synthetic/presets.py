"""The tasks, splits, languages and sizes of the offline corpus: the names every other module of the package
indexes by (the seed streams are indexed in ``FULL_TASKS`` and ``SPLITS``, so their order is part of the output).

Owns: the task lists (the first five, the full preset's, the long-form ones), the splits, the language lists, the sample sources and
the presets. Must not: draw anything or import the rest of the package (every module imports this one).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenaudio_train.audio import SAMPLE_RATE

SR = SAMPLE_RATE
TASKS: tuple[str, ...] = ("asr", "srwt", "lid", "sec", "mna")  # the tasks of the tiny and demo presets
# The full preset adds these (registry order); seeds are indexed in FULL_TASKS, so the first five keep theirs.
NEW_TASKS: tuple[str, ...] = (
    "s2tt",
    "osr",
    "dasr",
    "did",
    "sgc",
    "er",
    "sv",
    "sd",
    "ser",
    "ks",
    "ic",
    "sf",
    "sap",
    "aac",
    "sed",
    "aqa",
    "smer",
    "mc",
    "mic",
    "mgr",
    "mqa",
)
FULL_TASKS: tuple[str, ...] = TASKS + NEW_TASKS
# Long-form speech (tasks_long.py): plan tasks whose samples are the registry's asr / srwt, 1-5 min long.
LONG_TASKS: tuple[str, ...] = ("long_asr", "long_srwt")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
ASR_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "zh", "fr")
SRWT_LANGUAGES: tuple[str, ...] = ("en",)
LID_LANGUAGES: tuple[str, ...] = ("en", "zh", "de", "es", "ko", "fr", "ja", "it")
SPEECH_SOURCE = "synthetic/espeak"
NUMPY_SOURCE = "synthetic/numpy"


@dataclass(frozen=True)
class Sizes:
    """Samples per task in each split; the tasks and ASR languages a preset builds."""

    train: int
    valid: int
    test: int
    tasks: tuple[str, ...] = TASKS
    asr_languages: tuple[str, ...] = ASR_LANGUAGES
    # Samples per long task in (train, valid, test) (0: none) and their length range in seconds.
    long: tuple[int, int, int] = (0, 0, 0)
    long_seconds: tuple[float, float] = (60.0, 300.0)

    def of(self, split: str) -> int:
        return int(getattr(self, split))

    def long_of(self, split: str) -> int:
        return int(self.long[SPLITS.index(split)])


PRESETS: dict[str, Sizes] = {
    # Enough for a tiny model to learn every task on CPU; builds in about a minute on 2 cores. The test split is
    # large enough (40 utterances per ASR language) for the eval report's 95% intervals to separate the trained
    # model from the untrained one on every task; its size changes no train or valid sample.
    # The long tasks: few and at most 2 minutes, so the demo still builds in minutes and trains on CPU.
    "demo": Sizes(train=800, valid=40, test=200, long=(16, 4, 4), long_seconds=(60.0, 120.0)),
    # Unit tests: every task, all 8 LID languages, every ASR language in every split, in a few seconds.
    "tiny": Sizes(train=8, valid=8, test=8),
    # Every task of FULL_TASKS (26), ASR in all 8 languages; builds in about FULL_MINUTES minutes on 2 cores.
    "full": Sizes(train=600, valid=40, test=40, tasks=FULL_TASKS, asr_languages=LID_LANGUAGES, long=(32, 4, 4)),
    # Unit tests of the full preset: every task, every label of the cycled ones (dialects, languages) in train.
    "full_tiny": Sizes(train=8, valid=4, test=4, tasks=FULL_TASKS, asr_languages=LID_LANGUAGES),
}
