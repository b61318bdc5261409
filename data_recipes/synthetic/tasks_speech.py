"""The one-voice speech tasks of the full preset: s2tt, dasr, did, sgc, sap, er, ks, ic, sf, ser. A planner per
task (registered with ``@planner``) draws what is said and by whom; one renderer says it and writes the label.

Owns: the labels of these tasks, each a function of what was planned.
Must not: draw outside the ``_Draw`` / ``rng`` it is given (the order of draws is part of the output).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_recipes.synthetic.parallel import (
    ALL_LANGUAGES,
    PARALLEL_ADVERBS,
    PARALLEL_OBJECTS,
    PARALLEL_SUBJECTS,
    PARALLEL_VERBS,
    S2TT_DIRECTIONS,
    parallel_sentence,
)
from data_recipes.synthetic.plan import Job, _Draw, planner, renderer
from data_recipes.synthetic.presets import SR
from data_recipes.synthetic.speech import AGE_GROUPS, DIALECTS, EMOTIONS, _dress, _say, _sentence_of, _speech_meta
from data_recipes.synthetic.text import (
    COMMANDS,
    ENTITY_FILLERS,
    ENTITY_TEMPLATES,
    GRAMMARS,
    KEYWORDS,
    SLOT_FILLERS,
    fill_template,
)
from data_recipes.tts import VARIANT_GENDER, VARIANTS
from qwenaudio_train.data.schema import SampleMeta, Word


@planner("s2tt")
def _plan_s2tt(d: _Draw, i: int) -> dict[str, Any]:
    """S2TT: a meaning of the parallel lexicon, said in the source language of the direction of sample `i`."""
    src, tgt = S2TT_DIRECTIONS[i % len(S2TT_DIRECTIONS)]
    sizes = (len(PARALLEL_SUBJECTS), len(PARALLEL_VERBS), len(PARALLEL_OBJECTS), len(PARALLEL_ADVERBS))

    def meaning() -> tuple[int, ...] | None:
        m = tuple(d.index(k) for k in sizes)
        # a sentence that a grammar of the first five tasks also makes keeps that task's split
        clash = any(d.legacy.get((x, parallel_sentence(m, x, spoken=True)), d.split) != d.split for x in ALL_LANGUAGES)
        return None if clash else m

    m = d.pick(meaning, lambda m: ("parallel", *m))
    return {
        "language": src,
        "target_language": tgt,
        "meaning": list(m),
        "say": parallel_sentence(m, src, spoken=src == "ja"),
        "speaker": d.speaker(src),
    }


@planner("dasr", "did")
def _plan_dasr_did(d: _Draw, i: int) -> dict[str, Any]:
    """DASR / DID: a sentence said with the regional voice of the dialect of sample `i`."""
    dialect = list(DIALECTS)[i % len(DIALECTS)]
    lang, accent = DIALECTS[dialect]
    return {
        "language": lang,
        "dialect": dialect,
        "text": d.sentence(lang),
        "speaker": d.speaker(lang, accent=accent),
    }


@planner("sgc")
def _plan_sgc(d: _Draw, i: int) -> dict[str, Any]:
    """SGC: a sentence said by a variant of the gender of sample `i` (alternating, shifted per language cycle)."""
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    gender = ("male", "female")[(i + i // len(ALL_LANGUAGES)) % 2]
    variants = [v for v in VARIANTS if VARIANT_GENDER[v] == gender]
    return {
        "language": lang,
        "gender": gender,
        "text": d.sentence(lang),
        "speaker": d.speaker(lang, variants=variants),
    }


@planner("sap")
def _plan_sap(d: _Draw, i: int) -> dict[str, Any]:
    """SAP: a sentence said by a variant, rate and pitch of the age group of sample `i`."""
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    group = list(AGE_GROUPS)[i % len(AGE_GROUPS)]
    a = AGE_GROUPS[group]
    return {
        "language": lang,
        "age": group,
        "text": d.sentence(lang),
        "speaker": d.speaker(lang, variants=a["variants"], rate=a["rate"], pitch=a["pitch"]),
    }


@planner("er")
def _plan_er(d: _Draw, i: int) -> dict[str, Any]:
    """ER: a sentence said with the rate, pitch, pitch range and level of the emotion of sample `i`."""
    rng = d.rng
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    emotion = list(EMOTIONS)[i % len(EMOTIONS)]
    e = EMOTIONS[emotion]
    return {
        "language": lang,
        "emotion": emotion,
        "text": d.sentence(lang),
        "speaker": d.speaker(lang, rate=e["rate"], pitch=e["pitch"], pitch_range=e["range"]),
        "level": round(float(rng.uniform(*e["level"])), 3),
    }


@planner("ks")
def _plan_ks(d: _Draw, i: int) -> dict[str, Any]:
    """KS: one keyword of the language of sample `i`."""
    lang = ALL_LANGUAGES[i % len(ALL_LANGUAGES)]
    return {"language": lang, "keyword": KEYWORDS[lang][d.index(len(KEYWORDS[lang]))], "speaker": d.speaker(lang)}


@planner("ic", "sf")
def _plan_ic_sf(d: _Draw, i: int) -> dict[str, Any]:
    """IC / SF: a templated voice command of this split, with its intent and slots."""
    rng = d.rng

    def command() -> tuple[str, str, list[dict[str, str]]] | None:
        intent, template = COMMANDS[d.index(len(COMMANDS))]
        filled = fill_template(template, SLOT_FILLERS, rng)
        return None if filled is None else (intent, *filled)

    intent, text, slots = d.pick(command, lambda c: ("command", c[1]))
    return {"language": "en", "intent": intent, "text": text, "slots": slots, "speaker": d.speaker("en")}


@planner("ser")
def _plan_ser(d: _Draw, i: int) -> dict[str, Any]:
    """SER: a templated sentence of this split with person, city and date entities."""
    rng = d.rng

    def sentence() -> tuple[str, list[dict[str, str]]] | None:
        return fill_template(ENTITY_TEMPLATES[d.index(len(ENTITY_TEMPLATES))], ENTITY_FILLERS, rng)

    text, entities = d.pick(sentence, lambda c: ("entities", c[0]))
    return {"language": "en", "text": text, "entities": entities, "speaker": d.speaker("en")}


@renderer("s2tt", "dasr", "did", "sgc", "sap", "er", "ks", "ic", "sf", "ser")
def _r_one_voice(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, SampleMeta]:
    """Tasks of one utterance by one speaker: s2tt, dasr, did, sgc, sap, er, ks, ic, sf, ser."""
    p, task = job.params, job.task
    lang, speaker = p["language"], p["speaker"]
    if task == "s2tt":
        say = p["say"] + GRAMMARS[lang].full_stop if lang == "ja" else p["say"]
    elif task == "ks":
        say = _sentence_of(lang, p["keyword"])
    else:
        say = _sentence_of(lang, p["text"])
    wav, words, _, _ = _say(say, speaker)
    if task == "ks":  # an isolated word in a clip of at least 1 s, as Speech Commands
        wav, shift = _dress(rng, wav, lead=(0.1, 0.5), tail=(0.1, 0.4), min_seconds=1.0)
    else:
        wav, shift = _dress(rng, wav, level=p.get("level"))
    duration = len(wav) / SR
    spk = speaker.name
    if task == "s2tt":
        tgt = p["target_language"]
        return wav, _speech_meta(
            job,
            parallel_sentence(p["meaning"], tgt),
            duration,
            tgt,
            transcript=parallel_sentence(p["meaning"], lang),
            speaker=spk,
        )
    if task == "dasr":
        meta = _speech_meta(job, p["text"], duration, dialect=p["dialect"], speaker=spk)
        if GRAMMARS[lang].joiner.join(w.word for w in words) == p["text"]:
            meta.words = [Word(w.word, round(w.start + shift, 4), round(w.end + shift, 4)) for w in words]
        return wav, meta
    if task in ("did", "sgc", "sap", "er"):
        label = {"did": "dialect", "sgc": "gender", "sap": "age", "er": "emotion"}[task]
        return wav, _speech_meta(job, p[label], duration, "en", **{label: p[label]}, text=p["text"], speaker=spk)
    if task == "ks":
        return wav, _speech_meta(job, p["keyword"], duration, speaker=spk)
    if task == "ic":
        return wav, _speech_meta(job, p["intent"], duration, transcript=p["text"], speaker=spk)
    if task == "sf":
        return wav, _speech_meta(job, p["text"], duration, slots=p["slots"], intent=p["intent"], speaker=spk)
    return wav, _speech_meta(job, p["text"], duration, entities=p["entities"], speaker=spk)  # ser
