"""Long-form speech (issue 13): recordings of 1-5 minutes, one speaker reading grammar sentences with pauses,
for long ASR (the whole transcript) and long word timestamps (SRWT, times past 30 s written with the window
markers of ``tags.long_time``).

The samples are ordinary ``asr`` / ``srwt`` samples of the task registry (same tags, formatter and scorer); only
their plan task (``long_asr`` / ``long_srwt``, the key prefix and the shard set) says they are long. They are built
in the demo and full presets only (``Sizes.long``), into their own shard sets (``train/long_asr``,
``train/long_srwt``, ``valid_long``, ``test_long``), and their targets stay out of ``text.txt``: every other shard
set and the BPE tokenizer trained on ``text.txt`` are byte for byte what they were without them.

Owns: the long tasks' planner, renderer and seed streams (their own purpose tags, so no other stream moves).
Must not: write files (``build.py`` does) or change how any other task is planned or rendered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from data_recipes.synthetic.plan import Job, _Draw
from data_recipes.synthetic.presets import ASR_LANGUAGES, LONG_TASKS, SPEECH_SOURCE, SPLITS, SR, SRWT_LANGUAGES
from data_recipes.synthetic.sounds import _add_noise
from data_recipes.synthetic.text import GRAMMARS
from qwenaudio_train.data.schema import SampleMeta, Word

_PLAN_LONG, _RENDER_LONG = 5, 6  # purpose tags of the long tasks' seed streams (1-3 are the other tasks')
REGISTRY_TASK = {"long_asr": "asr", "long_srwt": "srwt"}  # the task registry's name of each long task
LANGUAGES = {"long_asr": ASR_LANGUAGES, "long_srwt": SRWT_LANGUAGES}
PAUSE_SECONDS = (0.3, 1.5)  # silence between two sentences
SECONDS_PER_SENTENCE = 1.2  # a low estimate (sentences last 1.5-4 s): enough sentences are always planned


def _rng(seed: int, purpose: int, split: str, task: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, SPLITS.index(split), LONG_TASKS.index(task), index])


def plan_long_split(
    split: str,
    n: int,
    seed: int,
    legacy: dict[tuple[str, str], str],
    seconds: tuple[float, float],
    asr_languages: Sequence[str] = ASR_LANGUAGES,
) -> list[Job]:
    """The jobs of one split of the long tasks, `n` per task: a language, a speaker and a length (seconds drawn
    in `seconds`) each, and more sentences of this split than that length needs (the renderer stops at the
    length). Sentences and speakers are held out by split as in the full preset (``plan._Draw``)."""
    jobs: list[Job] = []
    for task in LONG_TASKS:
        langs = tuple(asr_languages) if task == "long_asr" else LANGUAGES[task]
        d = _Draw(seed, split, _rng(seed, _PLAN_LONG, split, task), legacy)
        for i in range(n):
            lang = langs[i % len(langs)]
            length = float(d.rng.uniform(*seconds))
            texts = [d.sentence(lang) for _ in range(math.ceil(length / SECONDS_PER_SENTENCE))]
            params: dict[str, Any] = {"language": lang, "seconds": round(length, 2), "texts": texts}
            params["speaker"] = d.speaker(lang)
            jobs.append(Job(f"{task}-{lang}-{split}-{i:06d}", task, split, i, seed, params))
    return jobs


def render_long(job: Job) -> tuple[np.ndarray, SampleMeta]:
    """One long recording: the planned sentences read by one speaker, each at its own level, a pause between two,
    until the planned length is reached; light noise half the time. Words keep their espeak timings, shifted."""
    from data_recipes.synthetic.speech import _say  # noqa: PLC0415 (speech imports the planners: no cycle at load)

    rng = _rng(job.seed, _RENDER_LONG, job.split, job.task, job.index)
    lang, speaker, grammar = job.params["language"], job.params["speaker"], GRAMMARS[job.params["language"]]
    pieces: list[np.ndarray] = [np.zeros(int(rng.uniform(0.05, 0.5) * SR))]
    words: list[Word] = []
    said: list[str] = []
    t = len(pieces[0]) / SR
    for text in job.params["texts"]:
        wav, timed, _onset, _offset = _say(text + grammar.full_stop, speaker)
        pieces.append(wav * rng.uniform(0.3, 0.9))
        words += [Word(w.word, round(w.start + t, 4), round(w.end + t, 4)) for w in timed]
        said.append(text)
        t += len(wav) / SR
        if t >= job.params["seconds"]:
            break
        pause = np.zeros(int(rng.uniform(*PAUSE_SECONDS) * SR))
        pieces.append(pause)
        t += len(pause) / SR
    pieces.append(np.zeros(int(rng.uniform(0.05, 0.3) * SR)))
    wav = np.concatenate(pieces)
    if rng.random() < 0.5:
        wav = _add_noise(rng, wav, rng.uniform(20, 40))
    meta = SampleMeta(
        task=REGISTRY_TASK[job.task],
        text_language=lang,
        target=grammar.joiner.join(said),
        duration=len(wav) / SR,
        source=SPEECH_SOURCE,
        audio_language=lang,
        words=words,
        meta={"speaker": speaker.name, "long_form": job.task, "sentences": len(said)},
    )
    return wav, meta


LONG_RENDERERS: dict[str, Callable[[Job], tuple[np.ndarray, SampleMeta]]] = dict.fromkeys(LONG_TASKS, render_long)
