"""The music tasks: mna (one note, a task of the first five) and the pieces of the full preset, mic, mgr, mc,
mqa, smer (recipes drawn per split by planners registered with ``@planner``; pieces rendered from recipes).

Owns: drawing recipes and what makes two pieces the same piece (``_recipe_id``, held out between splits).
Must not: draw outside the ``_Draw`` / ``rng`` it is given (the order of draws is part of the output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_recipes.synthetic.music import (
    GENRES,
    MQA_QUESTIONS,
    MUSIC_EMOTIONS,
    music_answer,
    music_caption,
    music_labels,
    synth_music,
    synth_note,
)
from data_recipes.synthetic.plan import Job, _Draw, planner, renderer
from data_recipes.synthetic.presets import NUMPY_SOURCE, SR
from qwenaudio_train.data.schema import SampleMeta


@renderer("mna")
def _note(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    p = job.params
    n = int(rng.uniform(1.0, 3.0) * SR)
    x = synth_note(rng, p["instrument"], p["pitch"], p["velocity"], p["sonic"], n)
    meta = {"pitch": p["pitch"], "velocity": p["velocity"], "instrument": p["instrument"], "sonic": list(p["sonic"])}
    return x, SampleMeta(
        task="mna", text_language="en", target=p["instrument"], duration=n / SR, source=NUMPY_SOURCE, meta=meta
    )


def _recipe(
    d: _Draw, genre: str | None = None, free: bool = False, emotion: str | None = None, need: Sequence[str] = ()
) -> dict[str, Any]:
    """A music recipe. `free`: each optional role (chords, bass line, drums) present or not at random, so that
    instruments do not follow from the genre. `emotion`: the mode, tempo and dynamics of MUSIC_EMOTIONS.
    `need`: roles that must be present ("melody", "bass")."""
    rng = d.rng
    choices = [g for g in GENRES if all(GENRES[g][r] for r in need)]
    genre = genre or choices[d.index(len(choices))]
    g = GENRES[genre]
    melody = g["melody"][d.index(len(g["melody"]))] if g["melody"] else None
    harmonies = [h for h in g["harmony"] if h != melody]
    harmony: str | None = harmonies[d.index(len(harmonies))]
    bass, drums = bool(g["bass"]), bool(g["drums"])
    if free:
        harmony = harmony if (melody is None or rng.random() < 0.7) else None
        bass = bass and ("bass" in need or rng.random() < 0.7)
        drums = drums and rng.random() < 0.7
    if emotion is not None:
        e = MUSIC_EMOTIONS[emotion]
        mode, bpm, velocity = e["mode"], int(rng.integers(e["bpm"][0], e["bpm"][1] + 1)), e["velocity"]
        velocity = int(rng.integers(velocity[0], velocity[1] + 1))
    else:
        mode = ("major", "minor")[d.index(2)]
        bpm, velocity = int(rng.integers(g["bpm"][0], g["bpm"][1] + 1)), int(rng.integers(70, 111))
    bar_s = g["meter"] * 60.0 / bpm
    bars = int(np.clip(round(float(rng.uniform(5.0, 9.0)) / bar_s), 2, 8))
    return {
        "genre": genre,
        "bpm": bpm,
        "mode": mode,
        "root": d.index(12),
        "progression": d.index(3),
        "bars": bars,
        "velocity": velocity,
        "melody": melody,
        "harmony": harmony,
        "bass": bass,
        "drums": drums,
    }


def _recipe_id(r: dict[str, Any]) -> list[object]:
    """What makes two pieces the same piece (the tempo to 10 bpm), whatever the task: held out between splits."""
    return ["recipe", r["genre"], r["mode"], r["root"], r["progression"], r["bpm"] // 10, music_labels(r)]


@planner("mic")
def _plan_mic(d: _Draw, i: int) -> dict[str, Any]:
    """MIC: a recipe with free roles (the instruments do not follow from the genre)."""
    r = d.pick(lambda: _recipe(d, free=True), _recipe_id)
    return {"recipe": r}


@planner("mgr")
def _plan_mgr(d: _Draw, i: int) -> dict[str, Any]:
    """MGR: a recipe of the genre of sample `i`."""
    genre = list(GENRES)[i % len(GENRES)]
    r = d.pick(lambda: _recipe(d, genre=genre), _recipe_id)
    return {"recipe": r}


@planner("mc")
def _plan_mc(d: _Draw, i: int) -> dict[str, Any]:
    """MC: a recipe with free roles (the caption is built from it when rendering)."""
    r = d.pick(lambda: _recipe(d, free=True), _recipe_id)
    return {"recipe": r}


@planner("mqa")
def _plan_mqa(d: _Draw, i: int) -> dict[str, Any]:
    """MQA: a recipe that has what the question of sample `i` asks about, the question and its answer."""
    kind = list(MQA_QUESTIONS)[i % len(MQA_QUESTIONS)]
    need = {"melody": ("melody",), "bass": ("melody",)}.get(kind, ())
    r = d.pick(lambda: _recipe(d, free=True, need=need), _recipe_id)
    return {"recipe": r, "question": MQA_QUESTIONS[kind], "answer": music_answer(r, kind)}


@planner("smer")
def _plan_smer(d: _Draw, i: int) -> dict[str, Any]:
    """SMER: a recipe with the mode, tempo and dynamics of the emotion of sample `i`."""
    emotion = list(MUSIC_EMOTIONS)[i % len(MUSIC_EMOTIONS)]
    r = d.pick(lambda: _recipe(d, emotion=emotion, free=True), _recipe_id)
    return {"recipe": r, "emotion": emotion}


@renderer("mic", "mgr", "mc", "mqa", "smer")
def _r_music(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Music tasks on generated pieces: mic, mgr, mc, mqa, smer."""
    p, task = job.params, job.task
    r = p["recipe"]
    wav = synth_music(rng, r)
    labels = music_labels(r)
    meta: dict[str, Any] = {"recipe": dict(r)}
    if task == "mic":
        target, meta["labels"] = ", ".join(labels), labels
    elif task == "mgr":
        target = r["genre"]
    elif task == "mc":
        target = music_caption(r)
    elif task == "mqa":
        target, meta["question"] = p["answer"], p["question"]
    else:
        target = p["emotion"]
    return wav, SampleMeta(
        task=task, text_language="en", target=target, duration=len(wav) / SR, source=NUMPY_SOURCE, meta=meta
    )
