"""Chat SFT data from labelled shards: questions and answers generated from raw labels (the paper's stage-2 recipe).

    python -m data_recipes.sft_builder --shards artifacts/synthetic/train --out artifacts/sft/train.jsonl --seed 0
        [--out-shards artifacts/sft/shards] [--text-weight 0.1] [--compare-prob 0.2] [--followup-prob 0.5]

Reads every sample of the shard sets under `--shards` (one pass, `data.stream.iter_split`) and writes conversations
in the schema of `qwenaudio_train.chat` (one JSON object a line), of four kinds:

* `task`: one audio, a question phrased for its task (several phrasings per task, chosen by a seeded RNG) and an
  answer built from the label; with `--followup-prob`, a second turn asks a follow-up (first word, word count,
  "is it X?", the note's pitch...);
* `grounding`: samples with word timings get a transcription turn, then the release's grounding question
  (`Find the start time and end time of the word "X"`) answered with time tokens:
  `The word "X" starts at <|a|> seconds and ends at <|b|> seconds.`;
* `compare`: two clips of one classification task with different labels ("Which of the two clips contains the
  sound of a siren?", "What is the difference between the two recordings?");
* `text`: pure-text instructions (arithmetic, sorting, word games, capitals, greetings), a `--text-weight` fraction
  of all conversations, so the chat model keeps following text-only instructions.

User turns label their clips as the release's inference does (`tokenizer.from_list_format`: `Audio 1:<audio>0</audio>`,
numbered per turn), the format `qwenaudio_train.chat` renders for training and `chat()` sends: see `chat.render`.

Audio: the JSON-lines file references FLAC copies written once per clip to `--audio-dir` (default
`<out stem>_audio/` beside it), by paths relative to the file's directory (`ChatProcessor(root=<that dir>)`).
With `--out-shards`, every conversation is also written as a chat shard sample (`<key>.json` + `<key>.audioK.flac`
members, `audios` naming the members) that `chat.ChatProcessor` reads, plus `manifest.json`
(`qwenaudio_train.data.chat_shards.ChatShardWriter`; `qwenaudio-data chat-shards` converts your own JSON lines).

Same shards + same seed = byte-identical output. Must not: tokenize, or invent facts the labels do not support
(every answer is derived from the sample's target, meta or word timings).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenaudio_train.data.chat_shards import ChatShardWriter
from qwenaudio_train.data.schema import SampleError, SampleMeta, audio_member
from qwenaudio_train.data.shards import ShardError, expand_shards
from qwenaudio_train.data.stream import iter_split
from qwenaudio_train.tags import LANGUAGES, long_time

KINDS = ("task", "grounding", "compare", "text")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_MASS_NOUNS = {
    "speech",
    "music",
    "rain",
    "water",
    "wind",
    "laughter",
    "applause",
    "noise",
    "silence",
    "traffic",
    "thunder",
    "white noise",
    "static",
    "singing",
    "crying",
    "breathing",
}
Fields = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# Wording helpers
# ---------------------------------------------------------------------------------------------------------------
def _a(noun: str) -> str:
    """`noun` with an indefinite article when it takes one: "siren" -> "a siren", "alarm" -> "an alarm",
    mass nouns, plurals and -ing forms unchanged ("laughter", "dogs", "throat clearing")."""
    n = noun.strip()
    if not n or n.lower() in _MASS_NOUNS or n.endswith("ing") or (n.endswith("s") and not n.endswith("ss")):
        return n
    return ("an " if n[0].lower() in "aeiou" else "a ") + n


def _sentence(text: str) -> str:
    """Capitalised, ending in punctuation: "a dog barks" -> "A dog barks."."""
    t = text.strip()
    if not t:
        return t
    t = t[0].upper() + t[1:]
    return t if t[-1] in ".!?\"'" else t + "."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _language(code: str | None) -> str:
    return _cap(LANGUAGES.get(code or "", code or "unknown"))


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _labels(meta: SampleMeta) -> list[str]:
    labels = meta.meta.get("labels")
    if isinstance(labels, list) and labels:
        return [str(x) for x in labels]
    return [x.strip() for x in meta.target.split(",") if x.strip()]


def _note(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _span(start: float, end: float) -> str:
    # Times past 30 s as <|window_k|><|t - 30 k|> (docs/long_audio.md); those up to 30 s are the release's tokens.
    return f"from {long_time(start)} to {long_time(end)} seconds"


# ---------------------------------------------------------------------------------------------------------------
# Per-task question/answer templates
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QA:
    """Question and answer phrasings (str.format templates) and the fields they read from a sample.
    `fields(meta)` returns None when the sample cannot be asked about (e.g. an empty label)."""

    questions: tuple[str, ...]
    answers: tuple[str, ...]
    fields: Callable[[SampleMeta], Fields | None]


def _target(meta: SampleMeta) -> Fields | None:
    t = meta.target.strip()
    return {"t": t, "x": t, "X": _cap(t), "C": _sentence(t)} if t else None


def _s2tt(meta: SampleMeta) -> Fields | None:
    f = _target(meta)
    return f and {**f, "tl": _language(meta.text_language), "sl": _language(meta.audio_language)}


def _lid(meta: SampleMeta) -> Fields | None:
    f = _target(meta)
    return f and {**f, "X": _cap(meta.target.strip())}


def _sv(meta: SampleMeta) -> Fields | None:
    same = meta.target.strip().lower() == "same"
    return {
        "a": "Yes, both utterances come from the same speaker."
        if same
        else "No, they are spoken by two different speakers."
    }


def _sd(meta: SampleMeta) -> Fields | None:
    segs = meta.meta.get("segments") or []
    if not segs:
        return None
    return {"a": _sentence("; ".join(f"{s['speaker']} speaks {_span(s['start'], s['end'])}" for s in segs))}


def _sed(meta: SampleMeta) -> Fields | None:
    events = meta.meta.get("events") or []
    if not events:
        return None
    return {"a": _sentence("; ".join(f"{e['label']} {_span(e['start'], e['end'])}" for e in events))}


def _entities(key: str, empty: str, fmt: Callable[[dict[str, Any]], str]) -> Callable[[SampleMeta], Fields | None]:
    def fields(meta: SampleMeta) -> Fields | None:
        items = meta.meta.get(key) or []
        return {"a": _sentence("; ".join(fmt(e) for e in items)) if items else empty}

    return fields


def _label_list(meta: SampleMeta) -> Fields | None:
    labels = _labels(meta)
    if not labels:
        return None
    joined = _join([_a(x) if len(labels) == 1 else x for x in labels])
    return {"x": _join(labels), "X": _cap(_join(labels)), "ax": joined}


def _intent(meta: SampleMeta) -> Fields | None:
    f = _target(meta)
    return f and {**f, "x": meta.target.strip().replace("_", " ")}


def _question(meta: SampleMeta) -> Fields | None:
    f = _target(meta)
    q = str(meta.meta.get("question", "")).strip()
    return f and q and {**f, "q": q}


def _mna(meta: SampleMeta) -> Fields | None:
    m = meta.meta
    try:
        pitch, velocity, instrument = int(m["pitch"]), int(m["velocity"]), str(m["instrument"])
    except (KeyError, TypeError, ValueError):
        return None
    sonic = m.get("sonic") or []
    sonic = [sonic] if isinstance(sonic, str) else list(sonic)
    return {
        "instrument": instrument,
        "ainstrument": _a(instrument),
        "Ainstrument": _cap(_a(instrument)),
        "pitch": pitch,
        "velocity": velocity,
        "note": _note(pitch),
        "sonic": f" Its timbre is {_join(sonic)}." if sonic else "",
    }


def _song(meta: SampleMeta) -> Fields | None:
    t = meta.target.strip()
    if not t:
        return None
    if " - " in t:
        title, artist = t.split(" - ", 1)
        return {"a": f'This is "{title}" by {artist}.'}
    return {"a": f'This is "{t}".'}


_TRANSCRIBE_Q = (
    "What does the person say?",
    "What is being said in this recording?",
    "Transcribe the speech in this audio.",
    "Please write down what you hear.",
    "Can you tell me what the speaker says?",
)
_TRANSCRIBE_A = ('The person says: "{t}".', "{t}", 'The speaker says "{t}".')

QA_TEMPLATES: dict[str, QA] = {
    "asr": QA(_TRANSCRIBE_Q, _TRANSCRIBE_A, _target),
    "srwt": QA(_TRANSCRIBE_Q, _TRANSCRIBE_A, _target),
    "dasr": QA(
        ("What does the speaker say?", "Transcribe this dialect speech.", "Write down what is said."),
        ('The speaker says: "{t}".', "{t}"),
        _target,
    ),
    "osr": QA(
        (
            "What do the speakers say?",
            "Transcribe everything the speakers say, in order.",
            "Several people talk at once here. What do they say?",
        ),
        ("{t}", 'They say: "{t}".'),
        _target,
    ),
    "s2tt": QA(
        (
            "Translate what the speaker says into {tl}.",
            "What is the {tl} translation of this speech?",
            "Please translate the audio into {tl}.",
        ),
        ("{t}", 'In {tl}, the speaker says: "{t}".'),
        _s2tt,
    ),
    "did": QA(
        ("Which dialect does the speaker use?", "What dialect is spoken here?"),
        ("The speaker uses the {x} dialect.", "It is {x}."),
        _target,
    ),
    "lid": QA(
        (
            "Which language is spoken in this audio?",
            "What language is the speaker using?",
            "Identify the language of the speech.",
        ),
        ("The speaker is speaking {X}.", "{X}.", "The language is {X}."),
        _lid,
    ),
    "sgc": QA(
        ("Is the speaker male or female?", "What is the gender of the speaker?"),
        ("The speaker is {x}.", "{X}."),
        _target,
    ),
    "er": QA(
        (
            "What emotion does the speaker express?",
            "How does the speaker feel?",
            "What is the emotional tone of this speech?",
        ),
        ("The speaker sounds {x}.", "The emotion is {x}."),
        _target,
    ),
    "sv": QA(
        (
            "Are the two utterances in this clip spoken by the same person?",
            "Is it the same speaker throughout this clip?",
        ),
        ("{a}",),
        _sv,
    ),
    "sd": QA(
        ("Who speaks when in this recording?", "Give the speaker turns with their start and end times."), ("{a}",), _sd
    ),
    "ser": QA(
        ("Which named entities are mentioned in this speech?", "List the entities the speaker mentions."),
        ("{a}",),
        _entities("entities", "No named entities are mentioned.", lambda e: f'"{e["value"]}" ({e["type"]})'),
    ),
    "ks": QA(
        ("Which keyword is spoken?", "What single word does the speaker say?"),
        ('The keyword is "{x}".', "{x}"),
        _target,
    ),
    "ic": QA(
        ("What does the speaker want to do?", "What is the intent of this request?"), ("The intent is {x}.",), _intent
    ),
    "sf": QA(
        ("Which slots can you fill from this request?", "Extract the slot values from this request."),
        ("{a}",),
        _entities("slots", "There are no slots to fill.", lambda e: f"{e['type']}: {e['value']}"),
    ),
    "sap": QA(
        ("How old does the speaker sound?", "Which age group does the speaker belong to?"),
        ("The speaker's age group is {x}.", "{X}."),
        _target,
    ),
    "vsc": QA(
        ("What kind of vocal sound is this?", "What vocal sound does the person make?"),
        ("The vocal sound is {x}.", "{X}."),
        _target,
    ),
    "aac": QA(
        (
            "Describe this audio.",
            "What can you hear in this recording?",
            "Write a caption for this audio.",
            "Briefly describe the sounds in this clip.",
        ),
        ("{C}",),
        _target,
    ),
    "sec": QA(
        (
            "What sound events can you hear?",
            "Which sounds are present in this clip?",
            "Name the sound events in this recording.",
        ),
        ("I can hear {ax}.", "The clip contains {ax}.", "{X}."),
        _label_list,
    ),
    "asc": QA(
        (
            "Where was this recorded?",
            "What acoustic scene is this?",
            "Which environment does this recording come from?",
        ),
        ("The scene is {x}.", "It sounds like {x}."),
        _target,
    ),
    "sed": QA(
        ("When does each sound event occur?", "List the sound events with their start and end times."), ("{a}",), _sed
    ),
    "aqa": QA(("{q}",), ("{t}",), _question),
    "sid": QA(("Who is the singer?", "Which singer performs this song?"), ("The singer is {x}.", "{x}."), _target),
    "smer": QA(
        ("What mood does this music convey?", "What emotion does this song express?"),
        ("The music sounds {x}.", "It feels {x}."),
        _target,
    ),
    "mc": QA(
        ("Describe this music.", "What does this piece of music sound like?", "Write a caption for this music."),
        ("{C}",),
        _target,
    ),
    "mic": QA(
        ("Which instruments are playing?", "What instruments can you hear?"), ("I can hear {ax}.", "{X}."), _label_list
    ),
    "mna": QA(
        (
            "What instrument plays this note, and what is its pitch?",
            "Analyse this musical note.",
            "Which instrument and note is this?",
        ),
        (
            "This is {ainstrument} playing {note} (MIDI pitch {pitch}) at velocity {velocity}.{sonic}",
            "{Ainstrument} note: {note}, MIDI pitch {pitch}, velocity {velocity}.{sonic}",
        ),
        _mna,
    ),
    "mgr": QA(
        ("What genre is this music?", "Which genre does this song belong to?"),
        ("The genre is {x}.", "This is {x} music."),
        _target,
    ),
    "mr": QA(("Which song is this?", "Can you name this song and its artist?"), ("{a}",), _song),
    "mqa": QA(("{q}",), ("{t}",), _question),
}
GENERIC_QA = QA(("What can you tell me about this audio?", "Describe what you hear."), ("{C}",), _target)

# Classification tasks that can be compared across two clips: how a clip with label x is described.
COMPARE_DESC: dict[str, Callable[[str], str]] = {
    "sec": lambda x: f"contains the sound of {_a(x)}",
    "vsc": lambda x: f"contains {_a(x)}",
    "er": lambda x: f"has {_a(x)} speaker",
    "sgc": lambda x: f"has {_a(x)} speaker",
    "lid": lambda x: f"is spoken in {_cap(x)}",
    "did": lambda x: f"is in the {x} dialect",
    "asc": lambda x: f'comes from the "{x}" scene',
    "ks": lambda x: f'contains the keyword "{x}"',
    "mgr": lambda x: f"is {x} music",
    "smer": lambda x: f"sounds {x}",
    "sid": lambda x: f"is sung by {x}",
    "mna": lambda x: f"is played on {_a(x)}",
}
_ORDINAL = ("first", "second")
TRANSCRIPT_TASKS = ("asr", "srwt", "dasr", "osr")
GROUNDING_Q = (
    'Find the start time and end time of the word "{w}"',
    'When does the speaker say "{w}"?',
    'At what time is the word "{w}" spoken?',
)
GROUNDING_A = 'The word "{w}" starts at {s} seconds and ends at {e} seconds.'


# ---------------------------------------------------------------------------------------------------------------
# Conversation builders
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Clip:
    key: str
    meta: SampleMeta
    flac: bytes


@dataclass
class Built:
    key: str
    kind: str
    task: str
    messages: list[dict[str, str]]
    clips: list[Clip] = field(default_factory=list)


def _user(text: str, n_audio: int = 0, first: int = 0) -> dict[str, str]:
    # The release's from_list_format spelling, numbered per turn: what chat.render trains on and chat() sends.
    refs = "".join(f"Audio {k + 1}:<audio>{first + k}</audio>\n" for k in range(n_audio))
    return {"role": "user", "content": refs + text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _qa(clip: Clip, rng: random.Random) -> tuple[str, str] | None:
    qa = QA_TEMPLATES.get(clip.meta.task, GENERIC_QA)
    f = qa.fields(clip.meta)
    if not f:
        return None
    return rng.choice(qa.questions).format(**f), rng.choice(qa.answers).format(**f)


def _label(meta: SampleMeta) -> str | None:
    """The single label a clip is compared by (None: not comparable)."""
    if meta.task not in COMPARE_DESC:
        return None
    if meta.task == "mna":
        return str(meta.meta.get("instrument", "")) or None
    labels = _labels(meta)
    return labels[0] if len(labels) == 1 else None


def _followup(clip: Clip, rng: random.Random, pool_labels: Sequence[str]) -> tuple[str, str] | None:
    m = clip.meta
    words = m.target.split()
    if m.task in TRANSCRIPT_TASKS + ("ks",) and words:
        choice = rng.randrange(3)
        if choice == 0:
            n = len(words)
            return rng.choice(
                ("How many words does the speaker say?", "How many words are spoken?")
            ), f"The speaker says {n} word{'s' if n != 1 else ''}."
        if choice == 1:
            return "What is the first word?", f'The first word is "{words[0]}".'
        return "What is the last word?", f'The last word is "{words[-1]}".'
    if m.task == "mna":
        f = _mna(m)
        if f is None:
            return None
        if rng.random() < 0.5:
            return "What is its pitch?", f"Its pitch is {f['note']} (MIDI pitch {f['pitch']})."
        return "How hard was the note played?", f"It was played at velocity {f['velocity']}."
    if m.task == "s2tt" and m.meta.get("transcript"):
        return (
            f"What did the speaker say in {_language(m.audio_language)}?",
            f'The speaker said: "{m.meta["transcript"]}".',
        )
    label = _label(m)
    if label is not None:
        others = sorted({x for x in pool_labels if x != label})
        shown = _label_form(m.task, label)
        if others and rng.random() < 0.5:
            return f"Could it be {_label_form(m.task, rng.choice(others))} instead?", f"No, it is {shown}."
        return f"Are you sure it is {shown}?", f"Yes, it is {shown}."
    return None


def _label_form(task: str, label: str) -> str:
    """How a label reads after "it is": "a siren", "English", "jazz music", "angry"."""
    if task == "lid":
        return _cap(label)
    if task in ("sec", "vsc", "mna"):
        return _a(label)
    if task == "asc":
        return f'the "{label}" scene'
    if task == "mgr":
        return f"{label} music"
    if task == "did":
        return f"the {label} dialect"
    return label


def build_task(clip: Clip, rng: random.Random, followup_prob: float, pool_labels: Sequence[str]) -> Built | None:
    first = _qa(clip, rng)
    if first is None:
        return None
    msgs = [_user(first[0], 1), _assistant(first[1])]
    if rng.random() < followup_prob:
        second = _followup(clip, rng, pool_labels)
        if second is not None:
            msgs += [_user(second[0]), _assistant(second[1])]
    return Built(f"{clip.key}-task", "task", clip.meta.task, msgs, [clip])


def _grounding_phrase(meta: SampleMeta, rng: random.Random) -> tuple[str, float, float] | None:
    """A one- or two-word phrase occurring once in the word timings, with its start and end."""
    words = meta.words or []
    if not words:
        return None
    tokens = [w.word for w in words]
    candidates = []
    for n in (1, 2):
        for i in range(len(tokens) - n + 1):
            phrase = tuple(tokens[i : i + n])
            occurrences = sum(tuple(tokens[j : j + n]) == phrase for j in range(len(tokens) - n + 1))
            start, end = words[i].start, words[i + n - 1].end
            if occurrences == 1 and end > start and len(" ".join(phrase)) > 1:  # any time: long_time writes it
                candidates.append((" ".join(phrase), start, end))
    return rng.choice(candidates) if candidates else None


def build_grounding(clip: Clip, rng: random.Random) -> Built | None:
    phrase = _grounding_phrase(clip.meta, rng)
    transcript = " ".join(w.word for w in clip.meta.words or [])
    if phrase is None or not transcript:
        return None
    w, s, e = phrase
    first_q = rng.choice(_TRANSCRIBE_Q)
    first_a = rng.choice(_TRANSCRIBE_A).format(t=clip.meta.target.strip() or transcript)
    msgs = [
        _user(first_q, 1),
        _assistant(first_a),
        _user(rng.choice(GROUNDING_Q).format(w=w)),
        _assistant(GROUNDING_A.format(w=w, s=long_time(s), e=long_time(e))),
    ]
    return Built(f"{clip.key}-grounding", "grounding", clip.meta.task, msgs, [clip])


def build_compare(a: Clip, b: Clip, rng: random.Random) -> Built | None:
    la, lb = _label(a.meta), _label(b.meta)
    if la is None or lb is None or la == lb or a.meta.task != b.meta.task:
        return None
    desc = COMPARE_DESC[a.meta.task]
    if rng.random() < 0.5:
        k = rng.randrange(2)
        target = (la, lb)[k]
        q = rng.choice(("Which of the two clips {d}?", "Which recording {d}, the first or the second?")).format(
            d=desc(target)
        )
        ans = rng.choice((f"The {_ORDINAL[k]} clip {desc(target)}.", f"Audio {k + 1}."))
    else:
        q = rng.choice(("What is the difference between the two recordings?", "How do the two clips differ?"))
        ans = f"The first recording {desc(la)}, and the second recording {desc(lb)}."
    return Built(f"{a.key}-vs-{b.key}", "compare", a.meta.task, [_user(q, 2), _assistant(ans)], [a, b])


# -- pure text ---------------------------------------------------------------------------------------------------
_WORDS = (
    "apple",
    "river",
    "window",
    "garden",
    "music",
    "yellow",
    "bridge",
    "candle",
    "forest",
    "rocket",
    "pencil",
    "ocean",
    "tiger",
    "cloud",
    "silver",
    "planet",
    "orange",
    "summer",
    "violin",
    "market",
)
_CAPITALS = (
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("China", "Beijing"),
    ("Korea", "Seoul"),
    ("Canada", "Ottawa"),
    ("Egypt", "Cairo"),
    ("Peru", "Lima"),
)


def build_text(rng: random.Random, index: int) -> Built:
    kind = rng.randrange(7)
    if kind == 0:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op, sym, val = rng.choice((("plus", "+", a + b), ("minus", "-", a - b), ("times", "*", a * b)))
        msgs = [
            _user(rng.choice((f"What is {a} {op} {b}?", f"Compute {a} {sym} {b}."))),
            _assistant(f"{a} {sym} {b} = {val}."),
        ]
        if rng.random() < 0.5:
            msgs += [_user("And what is that times 2?"), _assistant(f"{val} * 2 = {val * 2}.")]
    elif kind == 1:
        ws = rng.sample(_WORDS, rng.randint(3, 5))
        msgs = [_user(f"Reverse the order of these words: {', '.join(ws)}."), _assistant(", ".join(ws[::-1]) + ".")]
    elif kind == 2:
        ns = [rng.randint(1, 99) for _ in range(rng.randint(3, 6))]
        msgs = [
            _user(f"Sort these numbers from smallest to largest: {', '.join(map(str, ns))}."),
            _assistant(", ".join(map(str, sorted(ns))) + "."),
        ]
    elif kind == 3:
        w = rng.choice(_WORDS)
        msgs = [
            _user(rng.choice((f'How many letters are in the word "{w}"?', f'Count the letters of "{w}".'))),
            _assistant(f'The word "{w}" has {len(w)} letters.'),
        ]
    elif kind == 4:
        ws = " ".join(rng.sample(_WORDS, 3))
        msgs = [_user(f'Write "{ws}" in capital letters.'), _assistant(ws.upper())]
    elif kind == 5:
        country, city = rng.choice(_CAPITALS)
        msgs = [
            _user(rng.choice((f"What is the capital of {country}?", f"Which city is the capital of {country}?"))),
            _assistant(f"The capital of {country} is {city}."),
        ]
    else:
        msgs = rng.choice(
            (
                [_user("Hello!"), _assistant("Hello! How can I help you today?")],
                [
                    _user("Who are you?"),
                    _assistant("I am a helpful assistant. I can listen to audio and answer questions about it."),
                ],
                [
                    _user("What can you do?"),
                    _assistant(
                        "I can transcribe speech, describe sounds and music, and answer "
                        "questions about audio clips you share with me."
                    ),
                ],
            )
        )
    return Built(f"text-{index:06d}", "text", "text", msgs)


# ---------------------------------------------------------------------------------------------------------------
# The pass over the shards
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class BuildConfig:
    seed: int = 0
    text_weight: float = 0.1  # fraction of all conversations that are pure text
    compare_prob: float = 0.2  # chance a comparable clip also yields a two-clip comparison
    followup_prob: float = 0.5  # chance a task conversation gets a follow-up turn
    grounding_prob: float = 0.5  # chance a clip with word timings yields a grounding conversation (always: srwt)
    pool_size: int = 64  # recent clips kept per task to draw comparison partners from
    max_conversations: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.text_weight < 1.0:
            raise ValueError(f"text_weight must be in [0, 1), got {self.text_weight}")


def iter_clips(shard_dirs: Sequence[str | os.PathLike[str]], counts: dict[str, int]) -> Iterator[Clip]:
    """Labelled samples of the shard sets (directories searched recursively for *.tar), in sorted path order."""
    shards = expand_shards([str(d) for d in shard_dirs])
    for raw in iter_split(shards):
        try:
            meta = SampleMeta.from_json(raw["json"], raw["__key__"]) if "json" in raw else None
            if meta is None:
                raise SampleError(f"sample {raw['__key__']!r}: no .json member")
            _, flac = audio_member(raw)
        except SampleError:
            counts["skipped_bad"] = counts.get("skipped_bad", 0) + 1
            continue
        yield Clip(key=str(raw["__key__"]).replace(".", "_").replace("/", "_"), meta=meta, flac=flac)


def build_conversations(clips: Iterable[Clip], cfg: BuildConfig) -> Iterator[Built]:
    """Conversations from clips, deterministic for a clip order and seed. Per-clip wording comes from an RNG
    seeded by (seed, clip key), so it does not depend on other clips; pairing and text mixing use the run's RNG."""
    run_rng = random.Random(f"sft:{cfg.seed}")
    pools: dict[str, list[Clip]] = {}
    n_out, n_text = 0, 0

    def text_before() -> Iterator[Built]:
        nonlocal n_text
        # Geometric number of text conversations per audio one: the expected text share is text_weight.
        while run_rng.random() < cfg.text_weight:
            yield build_text(random.Random(f"text:{cfg.seed}:{n_text}"), n_text)
            n_text += 1

    for clip in clips:
        rng = random.Random(f"{cfg.seed}:{clip.key}")
        pool = pools.setdefault(clip.meta.task, [])
        built: list[Built | None] = []
        if clip.meta.words and (clip.meta.task == "srwt" or rng.random() < cfg.grounding_prob):
            built.append(build_grounding(clip, rng))
        if clip.meta.task != "srwt" or not built or built[0] is None:
            labels = [x for c in pool if (x := _label(c.meta)) is not None]
            built.append(build_task(clip, rng, cfg.followup_prob, labels))
        label = _label(clip.meta)
        if label is not None and pool and run_rng.random() < cfg.compare_prob:
            partners = [c for c in pool if _label(c.meta) not in (None, label)]
            if partners:
                other = run_rng.choice(partners)
                pair = (clip, other) if run_rng.random() < 0.5 else (other, clip)
                built.append(build_compare(*pair, rng))
        pool.append(clip)
        del pool[: -cfg.pool_size]
        for b in built:
            if b is None:
                continue
            for t in text_before():
                yield t
                n_out += 1
            yield b
            n_out += 1
            if cfg.max_conversations is not None and n_out >= cfg.max_conversations:
                return


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------
def _record(b: Built, audios: list[str]) -> dict[str, Any]:
    return {
        "key": b.key,
        "kind": b.kind,
        "task": b.task,
        "source": b.clips[0].meta.source if b.clips else "sft/text",
        "duration": round(sum(c.meta.duration for c in b.clips), 6),
        "messages": b.messages,
        "audios": audios,
    }


def build(
    shard_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    cfg: BuildConfig,
    audio_dir: str | os.PathLike[str] | None = None,
    out_shards: str | os.PathLike[str] | None = None,
    shard_samples: int = 1000,
) -> dict[str, Any]:
    """Write the JSON-lines file (+ audio copies, + chat shards) and return the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    audio_root = Path(audio_dir) if audio_dir is not None else out.parent / f"{out.stem}_audio"
    audio_root.mkdir(parents=True, exist_ok=True)
    rel_root = os.path.relpath(audio_root, out.parent)
    counts: dict[str, int] = {}
    kinds: dict[str, int] = {k: 0 for k in KINDS}
    tasks: dict[str, int] = {}
    written: set[str] = set()
    seen_keys: set[str] = set()
    writer = ChatShardWriter(out_shards, shard_samples) if out_shards is not None else None
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for b in build_conversations(iter_clips(shard_dirs, counts), cfg):
            if b.key in seen_keys:
                raise ValueError(f"duplicate conversation key {b.key!r}: shard keys must be unique")
            seen_keys.add(b.key)
            paths = []
            for clip in b.clips:
                if clip.key not in written:
                    (audio_root / f"{clip.key}.flac").write_bytes(clip.flac)
                    written.add(clip.key)
                paths.append(f"{rel_root}/{clip.key}.flac")
            f.write(json.dumps(_record(b, paths), ensure_ascii=False, sort_keys=True) + "\n")
            if writer is not None:
                # Members audio0.flac, audio1.flac ... replace the copies' paths in the shard's record.
                writer.write(b.key, _record(b, []), [c.flac for c in b.clips], sum(c.meta.duration for c in b.clips))
            kinds[b.kind] += 1
            tasks[b.task] = tasks.get(b.task, 0) + 1
            n += 1
    summary = {
        "conversations": n,
        "kinds": kinds,
        "tasks": dict(sorted(tasks.items())),
        "audio_files": len(written),
        "skipped_bad": counts.get("skipped_bad", 0),
        "seed": cfg.seed,
    }
    if writer is not None:
        writer.close(summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m data_recipes.sft_builder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--shards",
        action="append",
        required=True,
        help="shard directory (searched recursively) or shard spec; repeat for several",
    )
    p.add_argument("--out", required=True, help="output JSON-lines file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio-dir", default=None, help="where the FLAC copies go (default: <out stem>_audio/)")
    p.add_argument("--out-shards", default=None, help="also write chat shards to this directory")
    p.add_argument("--shard-samples", type=int, default=1000, help="conversations per chat shard")
    p.add_argument("--text-weight", type=float, default=0.1, help="fraction of pure-text conversations")
    p.add_argument("--compare-prob", type=float, default=0.2)
    p.add_argument("--followup-prob", type=float, default=0.5)
    p.add_argument("--grounding-prob", type=float, default=0.5)
    p.add_argument("--max-conversations", type=int, default=None)
    args = p.parse_args(argv)
    cfg = BuildConfig(
        seed=args.seed,
        text_weight=args.text_weight,
        compare_prob=args.compare_prob,
        followup_prob=args.followup_prob,
        grounding_prob=args.grounding_prob,
        max_conversations=args.max_conversations,
    )
    try:
        summary = build(args.shards, args.out, cfg, args.audio_dir, args.out_shards, args.shard_samples)
    except (FileNotFoundError, ValueError, ShardError) as e:
        print(f"sft_builder: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
