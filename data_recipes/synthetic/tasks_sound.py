"""The sound tasks: sec (one sound event, a task of the first five) and the scenes of the full preset, sed,
aac, aqa (planners registered with ``@planner``; scenes rendered from the SEC sounds).

Owns: scene layouts, captions and question/answer pairs, each read from the planned scene.
Must not: draw outside the ``_Draw`` / ``rng`` it is given (the order of draws is part of the output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_recipes.synthetic.plan import Job, _Draw, planner, renderer
from data_recipes.synthetic.presets import NUMPY_SOURCE, SR
from data_recipes.synthetic.sounds import (
    AQA_KINDS,
    CAPTION_PHRASES,
    CONTINUOUS_SOUNDS,
    COUNT_UNITS,
    SEC_CLASSES,
    SOUND_NAMES,
    _add_noise,
    _mix,
    _ramp,
    _unit,
    active_span,
)
from data_recipes.synthetic.text import NUMBER_WORDS
from qwenaudio_train.data.schema import SampleMeta


@renderer("sec")
def _sound(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    label = job.params["label"]
    n = int(rng.uniform(1.0, 4.0) * SR)
    x = _ramp(SEC_CLASSES[label](rng, n), 0.01)
    x = x / max(float(np.max(np.abs(x))), 1e-9) * rng.uniform(0.2, 0.9)
    if rng.random() < 0.5:  # light background noise
        x = _add_noise(rng, x, rng.uniform(15, 35))
    return x, SampleMeta(task="sec", text_language="en", target=label, duration=n / SR, source=NUMPY_SOURCE)


def _sequential(
    rng: np.random.Generator,
    labels: Sequence[str],
    dur: tuple[float, float] = (0.8, 2.2),
    gap: tuple[float, float] = (0.3, 0.8),
) -> list[dict[str, Any]]:
    """Events one after the other with gaps: their order is unambiguous."""
    at, events = float(rng.uniform(0.2, 0.8)), []
    for label in labels:
        d = float(rng.uniform(*dur))
        events.append(
            {"label": label, "start": round(at, 3), "dur": round(d, 3), "gain_db": round(float(rng.uniform(-8, 0)), 2)}
        )
        at += d + float(rng.uniform(*gap))
    return events


@planner("sed")
def _plan_sed(d: _Draw, i: int) -> dict[str, Any]:
    """SED: 2-4 different sounds placed in a 6-10 s clip."""
    rng = d.rng

    def scene() -> list[dict[str, Any]]:
        labels = [str(x) for x in rng.choice(list(SEC_CLASSES), int(rng.integers(2, 5)), replace=False)]
        duration = float(rng.uniform(6.0, 10.0))
        events = []
        for label in labels:
            dur = float(rng.uniform(0.6, 2.5))
            events.append(
                {
                    "label": label,
                    "start": round(float(rng.uniform(0.1, duration - dur - 0.1)), 3),
                    "dur": round(dur, 3),
                    "gain_db": round(float(rng.uniform(-10, 0)), 2),
                }
            )
        return [{"duration": round(duration, 3)}] + sorted(events, key=lambda e: e["start"])

    events = d.pick(scene, lambda ev: ("sed", sorted(e["label"] for e in ev[1:])))
    return {"duration": events[0]["duration"], "events": events[1:]}


@planner("aac")
def _plan_aac(d: _Draw, i: int) -> dict[str, Any]:
    """AAC: a scene of two or three sounds one after another, or one during another, and its caption."""
    rng = d.rng
    structure = ("then2", "while", "then3")[i % 3]  # (one sound alone is SEC; 8 captions cannot be split)

    def captioned() -> tuple[str, list[dict[str, Any]]]:
        if structure == "while":
            a = CONTINUOUS_SOUNDS[d.index(len(CONTINUOUS_SOUNDS))]
            b = [x for x in SEC_CLASSES if x != a][d.index(len(SEC_CLASSES) - 1)]
            outer = float(rng.uniform(3.0, 6.0))
            inner = float(rng.uniform(0.8, min(2.5, outer - 1.0)))
            s0 = float(rng.uniform(0.2, 0.8))
            s1 = s0 + float(rng.uniform(0.4, outer - inner - 0.4))
            events = [
                {"label": a, "start": round(s0, 3), "dur": round(outer, 3), "gain_db": -4.0},
                {"label": b, "start": round(s1, 3), "dur": round(inner, 3), "gain_db": 0.0},
            ]
            return f"{CAPTION_PHRASES[b]} while {CAPTION_PHRASES[a]}", events
        labels = [str(x) for x in rng.choice(list(SEC_CLASSES), 2 if structure == "then2" else 3, replace=False)]
        events = _sequential(rng, labels)
        return ", then ".join(CAPTION_PHRASES[x] for x in labels), events

    caption, events = d.pick(captioned, lambda c: ("aac", c[0]))
    return {"caption": caption, "events": events}


@planner("aqa")
def _plan_aqa(d: _Draw, i: int) -> dict[str, Any]:
    """AQA: a scene and a question of the kind of sample `i`, answered from the scene."""
    rng = d.rng
    kind = AQA_KINDS[i % len(AQA_KINDS)]

    def qa() -> tuple[str, str, list[dict[str, Any]]]:
        classes = list(SEC_CLASSES)
        if kind == "count":
            unit = COUNT_UNITS[d.index(len(COUNT_UNITS))]
            n = int(rng.integers(1, 6))
            events = _sequential(rng, [unit] * n, dur=(0.3, 0.3), gap=(0.25, 0.6))
            for e in events:
                e["unit"] = True
            if rng.random() < 0.5:  # a quiet continuous background
                end = events[-1]["start"] + 0.6
                bg = CONTINUOUS_SOUNDS[d.index(len(CONTINUOUS_SOUNDS))]
                events.insert(0, {"label": bg, "start": 0.0, "dur": round(end, 3), "gain_db": -16.0})
            return f"how many {unit}s are there?", NUMBER_WORDS[n], events
        k = int(rng.integers(1 if kind in ("exists", "n_sounds") else 2, 4 if kind != "n_sounds" else 5))
        labels = [str(x) for x in rng.choice(classes, k, replace=False)]
        events = _sequential(rng, labels)
        if kind == "exists":
            asked = (
                labels[d.index(k)]
                if rng.random() < 0.5
                else [x for x in classes if x not in labels][d.index(len(classes) - k)]
            )
            return f"is there {SOUND_NAMES[asked]}?", "yes" if asked in labels else "no", events
        if kind in ("first", "last"):
            return f"which sound comes {kind}?", labels[0 if kind == "first" else -1], events
        if kind == "before":
            a, b = (labels[j] for j in rng.choice(k, 2, replace=False))
            answer = "yes" if labels.index(a) < labels.index(b) else "no"
            return f"does the {a} come before the {b}?", answer, events
        return "how many different sounds are there?", NUMBER_WORDS[k], events

    question, answer, events = d.pick(qa, lambda c: ("aqa", c[0], c[1], [e["label"] for e in c[2]]))
    return {"question": question, "answer": answer, "events": events}


def _scene(
    rng: np.random.Generator, events: Sequence[dict[str, Any]], duration: float | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A clip of SEC sounds placed at their planned starts, and each event's audible span (from the event's own
    signal, -40 dB of its peak) as {label, start, end}, ordered by start."""
    parts, spans = [], []
    for e in events:
        if e.get("unit"):
            x = _unit(e["label"], rng)
        else:
            x = _ramp(SEC_CLASSES[e["label"]](rng, int(e["dur"] * SR)), 0.01)
        x = x / max(float(np.max(np.abs(x))), 1e-9) * 10 ** (e["gain_db"] / 20)
        on, off = active_span(x)
        parts.append((x, e["start"]))
        spans.append({"label": e["label"], "start": round(e["start"] + on, 3), "end": round(e["start"] + off, 3)})
    end = max(int(round(s * SR)) + len(x) for x, s in parts) / SR
    wav = _mix(parts, max(0.0, (duration or 0.0) - end) or float(rng.uniform(0.3, 1.0)))
    wav = wav / max(float(np.max(np.abs(wav))), 1e-9) * rng.uniform(0.3, 0.9)
    wav = wav + rng.standard_normal(len(wav)) * 10 ** (rng.uniform(-65, -50) / 20)  # a faint noise floor
    return wav, sorted(spans, key=lambda s: (s["start"], s["end"]))


@renderer("sed", "aac", "aqa")
def _r_scene(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Sound tasks on generated scenes: sed, aac, aqa."""
    p, task = job.params, job.task
    wav, spans = _scene(rng, p["events"], p.get("duration"))
    labels = list(dict.fromkeys(s["label"] for s in spans))
    if task == "sed":
        target, meta = ", ".join(labels), {"events": spans, "labels": labels}
    elif task == "aac":
        target, meta = p["caption"], {"events": spans, "labels": labels}
    else:
        target, meta = p["answer"], {"question": p["question"], "events": spans}
    return wav, SampleMeta(
        task=task, text_language="en", target=target, duration=len(wav) / SR, source=NUMPY_SOURCE, meta=meta
    )
