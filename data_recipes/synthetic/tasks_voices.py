"""The several-voice speech tasks of the full preset: osr (two overlapping voices), sv (two utterances, same
speaker or not), sd (turns of 2-3 speakers). Planners registered with ``@planner``, one renderer.

Owns: the timing of voices on one timeline and the labels (transcripts in order of start, same / different,
speaker segments).
Must not: draw outside the ``_Draw`` / ``rng`` it is given (the order of draws is part of the output).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_recipes.synthetic.parallel import ALL_LANGUAGES
from data_recipes.synthetic.plan import Job, _Draw, planner, renderer
from data_recipes.synthetic.presets import SR
from data_recipes.synthetic.sounds import _mix
from data_recipes.synthetic.speech import _dress, _say, _sentence_of, _speech_meta
from data_recipes.synthetic.text import GRAMMARS
from data_recipes.tts import Speaker, voiced_span
from qwenaudio_train.data.schema import SampleMeta


def _alternating(rng: np.random.Generator, n_speakers: int, turns: int) -> list[int]:
    """Speaker of each turn: every speaker once first (shuffled), then never the same speaker twice in a row."""
    order = [int(x) for x in rng.permutation(n_speakers)]
    while len(order) < turns:
        order.append(int(rng.choice([s for s in range(n_speakers) if s != order[-1]])))
    return order


@planner("osr")
def _plan_osr(d: _Draw, i: int) -> dict[str, Any]:
    """OSR: two sentences of one language by two different voices, the second starting after `delay`."""
    rng = d.rng
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    a = d.sentence(lang)
    first = d.speaker(lang)
    return {
        "language": lang,
        "texts": [a, d.sentence(lang, avoid=[a])],
        "speakers": [first, d.speaker(lang, avoid=[first.variant])],
        "delay": round(float(rng.uniform(0.3, 0.7)), 3),
    }


@planner("sv")
def _plan_sv(d: _Draw, i: int) -> dict[str, Any]:
    """SV: two sentences by the same speaker (even `i`) or two different variants (odd `i`)."""
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    a = d.sentence(lang)
    first = d.speaker(lang)
    same = i % 2 == 0
    return {
        "language": lang,
        "texts": [a, d.sentence(lang, avoid=[a])],
        "speakers": [first, first if same else d.speaker(lang, avoid=[first.variant])],
    }


@planner("sd")
def _plan_sd(d: _Draw, i: int) -> dict[str, Any]:
    """SD: 2 (or every third sample 3) distinct speakers taking 3-5 short turns, with gaps or overlaps."""
    rng = d.rng
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    n_speakers = 3 if i % 3 == 2 else 2
    speakers: list[Speaker] = []
    for _ in range(n_speakers):
        speakers.append(d.speaker(lang, avoid=[s.variant for s in speakers]))
    turns = _alternating(rng, n_speakers, int(rng.integers(n_speakers + 1, 6)))
    texts: list[str] = []
    for _ in turns:
        texts.append(d.sentence(lang, short=True, avoid=texts))
    gaps = [round(float(rng.uniform(-0.4, 0.8)), 3) for _ in turns]
    return {"language": lang, "speakers": speakers, "turns": turns, "texts": texts, "gaps": gaps}


@renderer("osr", "sv", "sd")
def _r_voices(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Tasks of several utterances: osr (two overlapping voices), sv (two utterances, 1 s apart), sd (turns)."""
    p, task = job.params, job.task
    lang, joiner = p["language"], GRAMMARS[p["language"]].joiner
    speakers: list[Speaker] = p["speakers"]
    names = [s.name for s in speakers]
    if task == "sv":
        (a, *_), (b, *_) = (_say(_sentence_of(lang, t), s) for t, s in zip(p["texts"], speakers))
        gains = rng.uniform(0.6, 1.0, 2)
        wav, _ = _dress(rng, np.concatenate([a * gains[0], np.zeros(SR), b * gains[1]]))
        target = "same" if names[0] == names[1] else "different"
        return wav, _speech_meta(job, target, len(wav) / SR, "en", speakers=names, texts=p["texts"])
    if task == "osr":
        (a, _, a_on, a_off), (b, _, b_on, _) = (_say(_sentence_of(lang, t), s) for t, s in zip(p["texts"], speakers))
        lead = float(rng.uniform(0.1, 0.5))
        b_voiced = lead + a_on + max(0.3, p["delay"] * (a_off - a_on))  # B starts speaking while A speaks
        gain_db = float(rng.uniform(-6, 0))
        gains = (1.0, 10 ** (gain_db / 20)) if rng.random() < 0.5 else (10 ** (gain_db / 20), 1.0)
        parts = [(a * gains[0], lead), (b * gains[1], b_voiced - b_on)]
        spans = [(lead + a_on, lead + a_off)]
        _, b_off = voiced_span(b, SR)
        spans.append((b_voiced, b_voiced - b_on + b_off))
        wav, _ = _dress(rng, _mix(parts, float(rng.uniform(0.05, 0.3))), lead=(0, 0), tail=(0, 0))
        segments = [{"speaker": n, "start": round(s, 3), "end": round(e, 3)} for n, (s, e) in zip(names, spans)]
        return wav, _speech_meta(
            job,
            joiner.join(p["texts"]),
            len(wav) / SR,
            n_speakers=2,
            segments=segments,
            speakers=names,
            texts=p["texts"],
        )
    # sd: turns one after the other, a gap (or, when negative, an overlap) between the voiced parts
    parts, segments = [], []
    cursor = float(rng.uniform(0.1, 0.5))  # where the next turn starts speaking
    last_start = -1.0
    for turn, text, gap in zip(p["turns"], p["texts"], p["gaps"]):
        x, _, on, off = _say(_sentence_of(lang, text), speakers[turn])
        start = max(cursor, last_start + 0.5)  # each turn starts clearly after the previous one
        parts.append((x * float(rng.uniform(0.6, 1.0)), start - on))
        segments.append({"speaker": names[turn], "start": round(start, 3), "end": round(start + off - on, 3)})
        last_start = start
        cursor = start + (off - on) + gap
    wav, _ = _dress(rng, _mix(parts, float(rng.uniform(0.1, 0.4))), lead=(0, 0), tail=(0, 0))
    return wav, _speech_meta(
        job,
        joiner.join(p["texts"]),
        len(wav) / SR,
        "en",  # the target says "speaker N"
        segments=segments,
        n_speakers=len(speakers),
        speakers=names,
        texts=p["texts"],
    )
