"""The task registry: for each task, its tag prefix, its target formatter, its eval prompt and its metric.

Owns: `Task`, `TASKS`, `get_task`, `register_task`, and the task-specific target formats that need both a builder
and a parser (SRWT word timestamps, MNA note analysis). Small now; built to grow to the 30+ tasks of facts section
5 by adding `register_task(Task(...))` entries, each with an example sample.

Prompts follow the released code (`eval_audio/evaluate_*.py`): the eval prefix of every family of facts section 4
comes out verbatim from `Task.eval_prefix`.

Must not: import torch or a tokenizer, read audio, or assemble ids / loss masks (the sample builder does: it appends
`<|endoftext|>` after the target and masks the prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenaudio_train.data.schema import SampleError, SampleMeta, Word
from qwenaudio_train.tags import (
    ENDOFTEXT,
    INSTRUMENT,
    LANGUAGES,
    PITCH,
    SIL,
    SONIC,
    TIME_TOKEN_RE,
    VELOCITY,
    Tags,
    parse_tags,
    time_token,
)

FAMILIES = ("speech", "sound", "music")
# Metric names the eval runner maps to scorers.
METRICS = ("wer", "bleu", "srwt", "accuracy", "mna", "caption", "aqa")


# ---------------------------------------------------------------------------------------------------------------
# The Task record
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One task: how a sample's metadata becomes (tag prefix, target), and how it is prompted and scored at eval.

    build_tags / build_target are the task's rules; `eval_primer` is text the release appends to the prefix at
    eval time and removes from the expected output (SRWT's `<|0.00|>`).
    """

    name: str
    family: str
    description: str
    metric: str
    build_tags: Callable[[SampleMeta], Tags]
    build_target: Callable[[SampleMeta], str] = field(default=lambda meta: meta.target)
    eval_primer: str = ""
    example_meta: SampleMeta | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"task {self.name!r}: unknown family {self.family!r}; valid: {', '.join(FAMILIES)}")
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name!r}: unknown metric {self.metric!r}; valid: {', '.join(METRICS)}")

    def tags(self, meta: SampleMeta) -> Tags:
        return self.build_tags(meta)

    def prompt(self, meta: SampleMeta) -> str:
        """The training prefix after the audio: the rendered tags."""
        return self.build_tags(meta).render()

    def format_target(self, meta: SampleMeta) -> str:
        """The training target after the prefix (without `<|endoftext|>`)."""
        return self.build_target(meta)

    def eval_prefix(self, meta: SampleMeta) -> str:
        """The prompt the release uses at evaluation (after `<audio>PATH</audio>`)."""
        return self.prompt(meta) + self.eval_primer

    def eval_target(self, meta: SampleMeta) -> str:
        """What the model should generate after `eval_prefix` (the target minus the primer)."""
        target = self.format_target(meta)
        if self.eval_primer:
            if not target.startswith(self.eval_primer):
                raise SampleError(
                    f"task {self.name!r}: target {target[:40]!r} does not start with {self.eval_primer!r}"
                )
            target = target[len(self.eval_primer) :]
        return target

    def example(self, meta: SampleMeta | None = None) -> str:
        """One training text after the audio: prefix + target + `<|endoftext|>` (of `meta` or the built-in example)."""
        meta = meta if meta is not None else self.example_meta
        if meta is None:
            raise ValueError(f"task {self.name!r} has no example sample; pass one")
        return self.prompt(meta) + self.format_target(meta) + ENDOFTEXT


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


def describe_tasks() -> str:
    """A table of the registry with one example per task (for a CLI listing)."""
    lines = []
    for t in TASKS.values():
        lines.append(f"{t.name:<6} {t.family:<7} {t.metric:<9} {t.description}")
        if t.example_meta is not None:
            lines.append(f"       e.g. {t.example()}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the task rules
# ---------------------------------------------------------------------------------------------------------------
def _speech_language(meta: SampleMeta) -> str:
    """Spoken language of a speech sample; a transcript's language when the shard leaves it unset."""
    return meta.audio_language or meta.text_language


def _field(meta: SampleMeta, key: str) -> Any:
    if key not in meta.meta:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta lacks {key!r} (has {sorted(meta.meta)})"
        )
    return meta.meta[key]


def _words(meta: SampleMeta) -> list[Word]:
    if not meta.words:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: needs word timings (`words`)")
    return meta.words


def _analysis(instruction: str | None, task: str = "keyword", audio_language: str | None = None,
              text_language: str = "en") -> Tags:
    return Tags("startofanalysis", audio_language, task, text_language, False, instruction)


# ---------------------------------------------------------------------------------------------------------------
# SRWT: words with timestamps
# ---------------------------------------------------------------------------------------------------------------
def format_srwt(words: Sequence[Word | tuple[str, float, float]]) -> str:
    """Word-timestamp target: time tokens and words alternate, starting at `<|0.00|>`, sharing boundaries; a gap
    before a word is `<|sil|>` followed by the word's start time.

    e.g. `<|0.00|><|sil|><|0.54|>word<|0.86|>next<|1.20|>`. Times are rounded to 10 ms; a word that starts before
    the previous one ends is moved to that end (boundaries never go backwards).
    """
    out = [time_token(0.0)]
    t = 0  # centiseconds of the last time token written
    for w in words:
        text, start, end = (w.word, w.start, w.end) if isinstance(w, Word) else w
        text = str(text).strip()
        if not text:
            continue
        s = max(_centis(start), t)
        e = max(_centis(end), s)
        if s > t:
            out += [SIL, time_token(s / 100)]
        out += [text, time_token(e / 100)]
        t = e
    return "".join(out)


def _centis(seconds: float) -> int:
    return min(max(int(round(float(seconds) * 100)), 0), 3000)


def parse_srwt(text: str) -> list[tuple[str, float, float]]:
    """(word, start, end) of every timed word in an SRWT target or model output, `<|sil|>` spans skipped.

    Accepts the full target, the text after the eval prefix (no leading time token: `<|0.00|>` is implied), or text
    still carrying the tag prefix. Incomplete trailing words (no end time) are dropped.
    """
    if text.startswith("<|startoftranscript|>") or text.startswith("<|startofanalysis|>"):
        _tags, text = parse_tags(text)
    if not TIME_TOKEN_RE.match(text):
        text = time_token(0.0) + text
    pieces = TIME_TOKEN_RE.split(text)  # ["", s, cs, seg, s, cs, seg, ...]
    times = [int(pieces[i]) + int(pieces[i + 1]) / 100 for i in range(1, len(pieces), 3)]
    segments = [pieces[i] for i in range(3, len(pieces), 3)]
    words = []
    for k, seg in enumerate(segments[: len(times) - 1]):
        seg = seg.strip()
        if seg and seg != SIL:
            words.append((seg, round(times[k], 2), round(times[k + 1], 2)))
    return words


# ---------------------------------------------------------------------------------------------------------------
# MNA: note analysis
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class NoteAnalysis:
    pitch: int | None
    velocity: int | None
    instrument: str
    sonic: list[str]


def format_mna(pitch: int, velocity: int, instrument: str, sonic: Sequence[str] | str = ()) -> str:
    """`<|pitch|><|midi_pitch_N|><|velocity|><|midi_velocity_N|><|instrument|>NAME<|sonic|>a, b` (release format)."""
    for name, v in (("pitch", pitch), ("velocity", velocity)):
        if not (isinstance(v, int) and 0 <= v <= 127):
            raise ValueError(f"note analysis {name} must be a MIDI integer 0..127, got {v!r}")
    qualities = [sonic] if isinstance(sonic, str) and sonic else list(sonic or [])
    return (
        f"{PITCH}<|midi_pitch_{pitch}|>{VELOCITY}<|midi_velocity_{velocity}|>"
        f"{INSTRUMENT}{instrument}{SONIC}{', '.join(qualities)}"
    )


_PITCH_RE = re.compile(r"<\|pitch\|><\|midi_pitch_(\d+)\|>")
_VELOCITY_RE = re.compile(r"<\|velocity\|><\|midi_velocity_(\d+)\|>")


def parse_mna(text: str) -> NoteAnalysis:
    """Read a note-analysis target or model output as the release's scorer does (missing parts -> None / "" / [])."""
    p = _PITCH_RE.search(text)
    v = _VELOCITY_RE.search(text)

    def after(marker: str) -> str:
        i = text.find(marker)
        return "" if i < 0 else text[i + len(marker) :].split("<", 1)[0]

    sonic = [s.strip() for s in after(SONIC).split(",")]
    return NoteAnalysis(
        pitch=int(p.group(1)) if p else None,
        velocity=int(v.group(1)) if v else None,
        instrument=after(INSTRUMENT).strip(),
        sonic=[s for s in sonic if s],
    )


def _mna_target(meta: SampleMeta) -> str:
    try:
        return format_mna(
            int(_field(meta, "pitch")),
            int(_field(meta, "velocity")),
            str(_field(meta, "instrument")),
            meta.meta.get("sonic") or [],
        )
    except (TypeError, ValueError) as e:
        if isinstance(e, SampleError):
            raise
        raise SampleError(f"task 'mna' sample from {meta.source!r}: {e}") from e


def _lid_target(meta: SampleMeta) -> str:
    if meta.audio_language not in LANGUAGES:
        raise SampleError(
            f"task 'lid' sample from {meta.source!r}: audio_language {meta.audio_language!r} is not one of "
            f"{', '.join(LANGUAGES)}"
        )
    return LANGUAGES[meta.audio_language]


def _question(meta: SampleMeta) -> str:
    return str(_field(meta, "question"))


def _ex(task: str, target: str, audio_language: str | None = None, text_language: str = "en", **kw: Any) -> SampleMeta:
    return SampleMeta(task=task, text_language=text_language, target=target, duration=kw.pop("duration", 2.0),
                      source="example", audio_language=audio_language, words=kw.pop("words", None), meta=kw)


# ---------------------------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------------------------
register_task(Task(
    name="asr", family="speech", metric="wer",
    description="speech recognition: transcript without inverse text normalisation",
    build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "transcribe", m.text_language, False, "wo_itn"),
    example_meta=_ex("asr", "hello world", "en"),
))

register_task(Task(
    name="s2tt", family="speech", metric="bleu",
    description="speech-to-text translation from audio_language into text_language (CoVoST2 prompt)",
    build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "translate", m.text_language, False, "itn"),
    example_meta=_ex("s2tt", "Hallo Welt", "en", "de"),
))

register_task(Task(
    name="srwt", family="speech", metric="srwt",
    description="speech recognition with word-level timestamps (<|sil|> marks gaps)",
    build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "transcribe", m.text_language, True, None),
    build_target=lambda m: format_srwt(_words(m)),
    eval_primer=time_token(0.0),  # the release's eval prompt ends with <|0.00|>
    example_meta=_ex("srwt", "hello world", "en",
                     words=[Word("hello", 0.54, 0.86), Word("world", 0.86, 1.2)]),
))

# Language identification. The release has no LID output instruction, so this is our convention: the keyword
# task of the analysis family with the audio language hidden (<|unknown|>), answered by the English name.
register_task(Task(
    name="lid", family="speech", metric="accuracy",
    description="spoken language identification; target is the English language name (our convention)",
    build_tags=lambda m: _analysis(None),
    build_target=_lid_target,
    example_meta=_ex("lid", "english", "en"),
))

register_task(Task(
    name="er", family="speech", metric="accuracy",
    # Facts §5 names emotion recognition ER and keeps SER for speech entity recognition; the release's eval
    # table calls MELD "SER". Task names live in shard metadata, so we follow the task list: er.
    description="speech emotion recognition (MELD prompt)",
    # The release's prompt hard-codes <|en|> as audio language (MELD is English): default to it.
    build_tags=lambda m: _analysis("emotion_recognition", audio_language=m.audio_language or "en",
                                   text_language=m.text_language),
    example_meta=_ex("er", "neutral", "en"),
))

register_task(Task(
    name="vsc", family="speech", metric="accuracy",
    description="vocal sound classification (VocalSound prompt)",
    # The release's prompt uses <|en|> as audio language for these non-verbal sounds: default to it.
    build_tags=lambda m: _analysis("vocal_classification", audio_language=m.audio_language or "en",
                                   text_language=m.text_language),
    example_meta=_ex("vsc", "laughter"),
))

register_task(Task(
    name="aac", family="sound", metric="caption",
    description="audio captioning in Clotho style",
    build_tags=lambda m: _analysis("caption_clotho", task="caption", text_language=m.text_language),
    example_meta=_ex("aac", "a dog barks while cars pass by"),
))

register_task(Task(
    name="sec", family="sound", metric="accuracy",
    description="sound event classification; target is the event label",
    build_tags=lambda m: _analysis("event", text_language=m.text_language),
    example_meta=_ex("sec", "dog bark"),
))

register_task(Task(
    name="asc", family="sound", metric="accuracy",
    description="acoustic scene classification (CochlScene / TUT2017 prompt)",
    build_tags=lambda m: _analysis("scene", text_language=m.text_language),
    example_meta=_ex("asc", "street traffic"),
))

register_task(Task(
    name="aqa", family="sound", metric="aqa",
    description="audio question answering; meta.question holds the question, target the answer (ClothoAQA prompt)",
    # The release's prompt uses <|en|> as audio language (the question's language): default to it.
    build_tags=lambda m: Tags("startofanalysis", m.audio_language or "en", "question", question=_question(m)),
    example_meta=_ex("aqa", "yes", question="Is there a dog barking?"),
))

register_task(Task(
    name="mna", family="music", metric="mna",
    description="music note analysis: pitch, velocity, instrument, sonic qualities (NSynth prompt)",
    build_tags=lambda m: _analysis("note_analysis", text_language=m.text_language),
    build_target=_mna_target,
    example_meta=_ex("mna", "", pitch=60, velocity=100, instrument="keyboard_acoustic", sonic=["bright", "percussive"]),
))
