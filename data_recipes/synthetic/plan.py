"""Planning (cheap, in the main process): the seed streams, jobs, the held-out split of a piece of content,
the first five tasks' plan, and the registry of the full preset's task families.

A job is everything needed to render one sample. The first five tasks are planned here (``plan_split``) exactly as
in the tiny and demo presets. Each task of the full preset has a planner, ``f(d, i) -> params`` (``d`` draws the
content of one split of one task, ``i`` is the sample index), and a renderer, ``f(job, rng) -> (wav, meta)``;
the family modules (``tasks_speech``, ``tasks_voices``, ``tasks_sound``, ``tasks_music``) register both with
``@planner(...)`` / ``@renderer(...)`` when the package is imported.

Owns: the seed streams (their indices are part of the output), ``Job``, ``split_of``, ``_Draw``, the registries.
Must not: synthesise audio or write files (``build.py`` renders and writes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_recipes.synthetic.music import INSTRUMENTS, SONIC_QUALITIES, VELOCITIES
from data_recipes.synthetic.presets import ASR_LANGUAGES, FULL_TASKS, LID_LANGUAGES, SPLITS, SRWT_LANGUAGES, TASKS
from data_recipes.synthetic.sounds import SEC_CLASSES
from data_recipes.synthetic.text import GRAMMARS, Grammar
from data_recipes.tts import PITCH_RANGE, RATE_RANGE, VARIANTS, Speaker
from qwenaudio_train.data.schema import SampleMeta

_PLAN, _RENDER = 1, 2  # purpose tags of the seed streams


def _rng(seed: int, purpose: int, split: str, task: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, SPLITS.index(split), FULL_TASKS.index(task), index])


@dataclass(frozen=True)
class Job:
    """Everything needed to render one sample, independent of every other sample."""

    key: str
    task: str
    split: str
    index: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)


def _novel_sentence(grammar: Grammar, rng: np.random.Generator, short: bool, taken: set[tuple[str, str]]) -> str:
    for _ in range(2000):
        s = grammar.sentence(rng, short)
        if (grammar.language, s) not in taken:
            taken.add((grammar.language, s))
            return s
    raise RuntimeError(f"grammar {grammar.language!r} ran out of new sentences; ask for fewer samples or add words")


def plan_split(
    split: str,
    n: int,
    seed: int,
    taken: set[tuple[str, str]],
    asr_languages: Sequence[str] = ASR_LANGUAGES,
    tasks: Sequence[str] = TASKS,
) -> list[Job]:
    """The jobs of one split for the first five tasks (those of `tasks` among TASKS), `n` per task, task by
    task. `taken` holds the sentences of earlier splits (and receives this split's): a sentence is used once in
    the whole corpus."""
    jobs: list[Job] = []
    for task in (t for t in TASKS if t in tasks):
        rng = _rng(seed, _PLAN, split, task)
        for i in range(n):
            params: dict[str, Any] = {}
            if task in ("asr", "srwt", "lid"):
                langs = {"asr": tuple(asr_languages), "srwt": SRWT_LANGUAGES, "lid": LID_LANGUAGES}[task]
                lang = langs[i % len(langs)]
                params = {
                    "language": lang,
                    "text": _novel_sentence(GRAMMARS[lang], rng, short=(task == "lid"), taken=taken),
                }
                key = f"{task}-{lang}-{split}-{i:06d}"
            elif task == "sec":
                params = {"label": list(SEC_CLASSES)[i % len(SEC_CLASSES)]}
                key = f"{task}-{split}-{i:06d}"
            else:
                instrument = list(INSTRUMENTS)[i % len(INSTRUMENTS)]
                lo, hi = INSTRUMENTS[instrument]
                tone = rng.choice(["bright", "dark", ""], p=[0.3, 0.3, 0.4])
                extra = [
                    q
                    for q, p in (("distortion", 0.15), ("fast_decay", 0.2), ("percussive", 0.25), ("reverb", 0.2))
                    if rng.random() < p
                ]
                sonic = sorted(([str(tone)] if tone else []) + extra, key=SONIC_QUALITIES.index)
                params = {
                    "instrument": instrument,
                    "pitch": int(rng.integers(lo, hi + 1)),
                    "velocity": int(VELOCITIES[int(rng.integers(len(VELOCITIES)))]),
                    "sonic": sonic,
                }
                key = f"{task}-{split}-{i:06d}"
            jobs.append(Job(key, task, split, i, seed, params))
    return jobs


def split_of(seed: int, *content: object) -> str:
    """The split that owns a piece of content (a sentence, a speaker, a scene, a recipe...) in the tasks of the
    full preset: 80 % train, 10 % valid, 10 % test, a pure function of the seed and the content. Valid and test
    samples are thereby made of content that training never shows: new sentences and commands, new speakers
    (variant, rate, pitch), new combinations of sounds, new recipes."""
    digest = hashlib.sha256(json.dumps([seed, *content], ensure_ascii=False).encode("utf-8")).digest()
    r = int.from_bytes(digest[:4], "big") % 10
    return "valid" if r == 0 else "test" if r == 1 else "train"


@dataclass
class _Draw:
    """Drawing content for one split of one task of the full preset (in the planning process)."""

    seed: int
    split: str
    rng: np.random.Generator
    legacy: dict[tuple[str, str], str]  # (language, sentence) of the first five tasks -> its split

    def pick(self, draw: Callable[[], Any], content: Callable[[Any], Sequence[object]]) -> Any:
        """Draw until the content belongs to this split (None from `draw`: try again)."""
        for _ in range(20000):
            x = draw()
            if x is not None and split_of(self.seed, *content(x)) == self.split:
                return x
        raise RuntimeError(f"found no content for split {self.split!r}; ask for fewer samples or add words")

    def index(self, n: int) -> int:
        return int(self.rng.integers(n))

    def sentence(self, language: str, short: bool = False, avoid: Sequence[str] = ()) -> str:
        """A grammar sentence of this split; sentences of the first five tasks keep the split they have there."""
        grammar = GRAMMARS[language]
        for _ in range(20000):
            s = grammar.sentence(self.rng, short)
            if (
                s not in avoid
                and self.legacy.get((language, s), split_of(self.seed, "sentence", language, s)) == self.split
            ):
                return s
        raise RuntimeError(f"grammar {language!r} has no sentence left for split {self.split!r}")

    def speaker(
        self,
        language: str,
        variants: Sequence[str] = VARIANTS,
        rate: tuple[int, int] = RATE_RANGE,
        pitch: tuple[int, int] = PITCH_RANGE,
        accent: str | None = None,
        pitch_range: tuple[int, int] | None = None,
        avoid: Sequence[str] = (),
    ) -> Speaker:
        """A speaker of this split: the identity (variant, rate, pitch) decides the split."""
        variants = [v for v in variants if v not in avoid]

        def draw() -> Speaker:
            return Speaker(
                language,
                variants[self.index(len(variants))],
                int(self.rng.integers(rate[0], rate[1] + 1)),
                int(self.rng.integers(pitch[0], pitch[1] + 1)),
                accent,
                None if pitch_range is None else int(self.rng.integers(pitch_range[0], pitch_range[1] + 1)),
            )

        return self.pick(draw, lambda s: ("speaker", s.variant, s.rate_wpm, s.pitch))


# The task families of the full preset register here (see the module docstring).
Planner = Callable[[_Draw, int], dict[str, Any]]
Renderer = Callable[[Job, np.random.Generator], tuple[np.ndarray, SampleMeta]]
PLANNERS: dict[str, Planner] = {}  # every task of NEW_TASKS -> its planner
RENDERERS: dict[str, Renderer] = {}  # every task but asr, srwt and lid (speech._speech renders those) -> renderer


def _register(registry: dict[str, Any], tasks: Sequence[str], fn: Any) -> None:
    taken = [t for t in tasks if t in registry]
    if taken:  # two families claiming a task: the second would silently win
        raise ValueError(f"tasks {taken} are registered twice")
    registry.update(dict.fromkeys(tasks, fn))


def planner(*tasks: str) -> Callable[[Planner], Planner]:
    """Register the decorated ``f(d, i) -> params`` as the planner of ``tasks``."""

    def add(fn: Planner) -> Planner:
        _register(PLANNERS, tasks, fn)
        return fn

    return add


def renderer(*tasks: str) -> Callable[[Renderer], Renderer]:
    """Register the decorated ``f(job, rng) -> (wav, meta)`` as the renderer of ``tasks``."""

    def add(fn: Renderer) -> Renderer:
        _register(RENDERERS, tasks, fn)
        return fn

    return add


def _plan_new(task: str, d: _Draw, i: int) -> dict[str, Any]:
    """The parameters of sample `i` of a task of the full preset: every label-bearing choice is made by the
    task's planner."""
    plan = PLANNERS.get(task)
    if plan is None:
        raise ValueError(f"unknown task {task!r}")
    return plan(d, i)


def plan_full_split(
    split: str, n: int, seed: int, legacy: dict[tuple[str, str], str], tasks: Sequence[str]
) -> list[Job]:
    """The jobs of one split for the tasks of the full preset that are not among the first five, task by task."""
    jobs: list[Job] = []
    for task in tasks:
        rng = _rng(seed, _PLAN, split, task)
        d = _Draw(seed, split, rng, legacy)
        for i in range(n):
            params = _plan_new(task, d, i)
            lang = params.get("language")
            key = f"{task}-{lang}-{split}-{i:06d}" if lang else f"{task}-{split}-{i:06d}"
            jobs.append(Job(key.replace(" ", "_"), task, split, i, seed, params))
    return jobs
