"""The task registry: for each task, its tag prefix, its target formatter, its eval prompt and its metric.

Owns: `Task`, `TASKS`, `get_task`, `register_task`, the 30 tasks of facts section 5 (each with a built-in example
sample), and the task-specific target formats that need both a builder and a parser: SRWT word timestamps, time
spans (SED, SD), inline entities (SER, SF) and MNA note analysis. `docs/tasks.md` is the readable table of it
(`tasks_markdown()` generates its rows; a test keeps them in sync).

Prompts follow the released code (`eval_audio/evaluate_*.py`): the eval prefix of every family of facts section 4
comes out verbatim from `Task.eval_prefix`. Every other choice is ours, written in the released vocabulary only
(`tags.py`) and marked "our convention" below and in `Task.convention`. Two rules keep the prefixes of different
tasks apart, so the model is never asked two things with the same words:
* tasks sharing an output instruction differ in another tag (task tag, timestamps, audio language) or start their
  target with an attribute key ("gender: male", `<|instrument|>guitar`) that the eval prompt forces (`eval_primer`);
* classification uses `<|keyword|>`, free text `<|caption|>`, transcripts `<|transcribe|>`, time spans `<|timestamps|>`.

Must not: import torch or a tokenizer, read audio, or assemble ids / loss masks (the sample builder does: it appends
`<|endoftext|>` after the target and masks the prefix).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
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
    special,
    time_token,
)

FAMILIES = ("speech", "sound", "music")
# Metric names the eval runner maps to scorers (eval/scorers.py). `sd` (diarization error rate over parse_spans
# output), `sed` (event F1 over parse_spans output) and `entity_f1` (typed-span F1 over parse_entities output)
# are named here for the new tasks; their scorers belong to the eval side.
METRICS = ("wer", "bleu", "srwt", "accuracy", "mna", "caption", "aqa", "sd", "sed", "entity_f1")


# ---------------------------------------------------------------------------------------------------------------
# The Task record
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One task: how a sample's metadata becomes (tag prefix, target), and how it is prompted and scored at eval.

    build_tags / build_target are the task's rules; `eval_primer` is text the eval prompt appends to the prefix
    and removes from the expected output (SRWT's `<|0.00|>`, an attribute key such as "gender:").
    `required_meta` lists the `meta` keys the formatter reads (checked, a missing one is a SampleError);
    `recipe_meta` the keys the metadata conventions ask recipes to write that the formatter does not read.
    `from_release` says the eval prompt is the release's (facts section 4); `convention` says what is ours.
    """

    name: str
    family: str
    description: str
    metric: str
    build_tags: Callable[[SampleMeta], Tags]
    build_target: Callable[[SampleMeta], str] = field(default=lambda meta: meta.target)
    eval_primer: str = ""
    example_meta: SampleMeta | None = None
    required_meta: tuple[str, ...] = ()
    recipe_meta: tuple[str, ...] = ()
    from_release: bool = False
    convention: str = ""

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
        missing = [k for k in self.required_meta if k not in meta.meta]
        if missing:
            raise SampleError(
                f"task {self.name!r} sample from {meta.source!r}: meta lacks {missing} (has {sorted(meta.meta)})"
            )
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
    """A listing of the registry with one example prefix + target per task (`qwenaudio-data tasks`)."""
    lines = []
    for t in TASKS.values():
        origin = "release prompt" if t.from_release else "our convention"
        lines.append(f"{t.name:<5} {t.family:<7} {t.metric:<10} {t.description} [{origin}]")
        if t.example_meta is not None:
            lines.append(f"      prefix: {t.prompt(t.example_meta)}")
            lines.append(f"      target: {t.format_target(t.example_meta)}{ENDOFTEXT}")
            if t.eval_primer:
                lines.append(f"      eval prompt ends with: {t.eval_primer}")
    return "\n".join(lines)


def _md(text: str) -> str:
    """A table cell in code font; `|` escaped so GitHub keeps it inside the cell."""
    return "`" + text.replace("|", "\\|") + "`" if text else ""


def tasks_markdown() -> str:
    """The task table of docs/tasks.md, generated from the registry (one row per task, in registry order)."""
    rows = [
        "| task | family | prompt (training prefix) [+ eval primer] | example target | metric "
        "| meta read (other conventional fields) | prompt | our convention |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in TASKS.values():
        m = t.example_meta
        assert m is not None, t.name
        prompt = _md(t.prompt(m)) + (f" + {_md(t.eval_primer)}" if t.eval_primer else "")
        read = ", ".join(list(t.required_meta) + (["`words` (schema field)"] if t.name == "srwt" else []))
        other = ", ".join(t.recipe_meta)
        meta_cell = (read or "-") + (f" ({other})" if other else "")
        ours = re.sub(r"<\|[^|<>]+\|>", lambda tok: _md(tok.group(0)), t.convention) if t.convention else "-"
        rows.append(
            f"| {t.name} | {t.family} | {prompt} | {_md(t.format_target(m))} | {t.metric} | {meta_cell} "
            f"| {'release' if t.from_release else 'ours'} | {ours} |"
        )
    return "\n".join(rows) + "\n"


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


def _corpus(meta: SampleMeta) -> str:
    """The corpus part of `source` ("audiocaps/train" -> "audiocaps")."""
    return meta.source.split("/", 1)[0].lower()


def _analysis(
    instruction: str | None,
    task: str = "keyword",
    audio_language: str | None = None,
    text_language: str = "en",
    timestamps: bool = False,
) -> Tags:
    return Tags("startofanalysis", audio_language, task, text_language, timestamps, instruction)


def _label(meta: SampleMeta) -> str:
    label = meta.target.strip()
    if not label:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: empty target")
    return label


def _keyed(key: str, label: Callable[[SampleMeta], str] = _label) -> Callable[[SampleMeta], str]:
    """Target "key: label" for tasks that share an output instruction; the eval prompt forces "key:"."""
    return lambda meta: f"{key}: {label(meta)}"


def _choice(*labels: str) -> Callable[[SampleMeta], str]:
    """Closed-set target: the plain target must be one of `labels` (case-insensitive)."""

    def check(meta: SampleMeta) -> str:
        label = meta.target.strip().lower()
        if label not in labels:
            raise SampleError(
                f"task {meta.task!r} sample from {meta.source!r}: target {meta.target!r} is not one "
                f"of {', '.join(labels)}"
            )
        return label

    return check


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


def _strip_prefix(text: str) -> str:
    if text.startswith("<|startoftranscript|>") or text.startswith("<|startofanalysis|>"):
        _tags, text = parse_tags(text)
    return text


def parse_srwt(text: str) -> list[tuple[str, float, float]]:
    """(word, start, end) of every timed word in an SRWT target or model output, `<|sil|>` spans skipped.

    Accepts the full target, the text after the eval prefix (no leading time token: `<|0.00|>` is implied), or text
    still carrying the tag prefix. Incomplete trailing words (no end time) are dropped.
    """
    text = _strip_prefix(text)
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
# Time spans: SED events and SD speaker turns
# ---------------------------------------------------------------------------------------------------------------
Span = tuple[str, float, float]  # (label, start, end) in seconds


def format_spans(spans: Sequence[Span]) -> str:
    """Time-span target: `<|start|>label<|end|>` per span, ordered by start (then end), no separators.

    e.g. `<|0.50|>dog bark<|1.20|><|0.90|>car horn<|3.00|>`. Unlike SRWT, spans may overlap and do not share
    boundaries. Times are rounded to 10 ms and clamped to 0..30 s; an end before its start is moved to the start.
    ValueError on an empty label or one containing a special token.
    """
    rows = []
    for label, start, end in spans:
        label = str(label).strip()
        if not label or "<|" in label:
            raise ValueError(f"span label {label!r} must be non-empty text without special tokens")
        s = _centis(start)
        rows.append((s, max(_centis(end), s), label))
    rows.sort(key=lambda r: (r[0], r[1]))  # stable: equal spans keep the caller's order
    return "".join(f"{time_token(s / 100)}{label}{time_token(e / 100)}" for s, e, label in rows)


def parse_spans(text: str) -> list[Span]:
    """(label, start, end) of every `<|t0|>label<|t1|>` span in a target or model output, in text order.

    Accepts text with or without the tag prefix. Malformed parts are skipped so partial model outputs still score
    what they got right: text without a start time, a start time followed by another time (the later one starts
    the next span), a label without an end time.
    """
    pieces = TIME_TOKEN_RE.split(_strip_prefix(text))  # [text, s, cs, text, s, cs, text, ...]
    out: list[Span] = []
    start: float | None = None
    label: str | None = None
    for i in range(1, len(pieces), 3):
        t = int(pieces[i]) + int(pieces[i + 1]) / 100
        if start is not None and label:
            out.append((label, round(start, 2), round(t, 2)))
            start, label = None, None
        else:
            start = t
        seg = pieces[i + 2].strip()
        if seg and start is not None:
            label = seg
    return out


def _meta_spans(meta: SampleMeta, key: str, label_key: str) -> list[Span]:
    try:
        return [(str(d[label_key]), float(d["start"]), float(d["end"])) for d in _field(meta, key)]
    except (KeyError, TypeError, ValueError) as e:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta.{key} must be a list of "
            f"{{{label_key}, start, end}} ({e!r})"
        ) from e


def _spans_target(meta: SampleMeta, key: str, label_key: str, relabel: bool = False) -> str:
    spans = _meta_spans(meta, key, label_key)
    try:
        return format_spans(diarization_spans(spans) if relabel else spans)
    except ValueError as e:
        raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: meta.{key}: {e}") from e


def diarization_spans(segments: Sequence[Span]) -> list[Span]:
    """Speaker turns relabelled "speaker 1", "speaker 2"... in order of first appearance (sorted by start).

    Our convention: corpus speaker ids cannot be predicted from audio and diarization is scored up to a
    permutation of speakers, so the target names speakers by the order in which they first speak.
    """
    ordered = sorted(segments, key=lambda s: (_centis(s[1]), _centis(s[2])))
    names: dict[str, str] = {}
    for spk, _s, _e in ordered:
        if not str(spk).strip():
            raise ValueError(f"empty speaker id in turn {(spk, _s, _e)!r}")
        names.setdefault(str(spk), f"speaker {len(names) + 1}")
    return [(names[str(spk)], s, e) for spk, s, e in ordered]


# ---------------------------------------------------------------------------------------------------------------
# SER / SF: typed spans marked inline with the released entity tokens
# ---------------------------------------------------------------------------------------------------------------
VALUE_START, VALUE_END = special("startofentityvalue"), special("endofentityvalue")
TYPE_START, TYPE_END = special("startofentitytype"), special("endofentitytype")


def format_entities(transcript: str, entities: Sequence[tuple[str, str] | Mapping[str, Any]]) -> str:
    """The transcript with every entity marked where it occurs, its type right after it:

    `fly to <|startofentityvalue|>boston<|endofentityvalue|><|startofentitytype|>city<|endofentitytype|> today`.
    `entities` are (type, value) pairs or {type, value} dicts in order of appearance; each value is searched
    (case-insensitive, the transcript's spelling is kept) after the previous one. ValueError naming the entity if
    a value is not found there.
    """
    out, pos = [], 0
    for ent in entities:
        etype, value = (ent["type"], ent["value"]) if isinstance(ent, Mapping) else ent
        etype, value = str(etype).strip(), str(value).strip()
        if not etype or not value:
            raise ValueError(f"entity {ent!r}: type and value must be non-empty")
        m = re.compile(re.escape(value), re.IGNORECASE).search(transcript, pos)
        if m is None:
            raise ValueError(
                f"entity value {value!r} ({etype}) not found in the transcript after character {pos} "
                f"(entities must be substrings, in order of appearance): {transcript!r}"
            )
        out += [transcript[pos : m.start()], VALUE_START, m.group(0), VALUE_END, TYPE_START, etype, TYPE_END]
        pos = m.end()
    out.append(transcript[pos:])
    return "".join(out)


_ENTITY_RE = re.compile(
    re.escape(VALUE_START)
    + r"(.*?)"
    + re.escape(VALUE_END)
    + r"(?:"
    + re.escape(TYPE_START)
    + r"(.*?)"
    + re.escape(TYPE_END)
    + r")?",
    re.DOTALL,
)


def parse_entities(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(transcript, [(type, value), ...]) of an SER/SF target or model output; inverts `format_entities`.

    The transcript keeps the values and drops the markers and types. A value without a type gets type "".
    """
    text = _strip_prefix(text)
    entities: list[tuple[str, str]] = []

    def keep_value(m: re.Match[str]) -> str:
        entities.append(((m.group(2) or "").strip(), m.group(1).strip()))
        return m.group(1)

    return _ENTITY_RE.sub(keep_value, text), entities


def _entities_target(key: str) -> Callable[[SampleMeta], str]:
    def build(meta: SampleMeta) -> str:
        try:
            return format_entities(meta.target, _field(meta, key))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, SampleError):
                raise
            raise SampleError(f"task {meta.task!r} sample from {meta.source!r}: meta.{key}: {e}") from e

    return build


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
    return SampleMeta(
        task=task,
        text_language=text_language,
        target=target,
        duration=kw.pop("duration", 2.0),
        source=kw.pop("source", "example"),
        audio_language=audio_language,
        words=kw.pop("words", None),
        meta=kw,
    )


# ---------------------------------------------------------------------------------------------------------------
# Tag recipes used by several tasks
# ---------------------------------------------------------------------------------------------------------------
def _transcribe(meta: SampleMeta) -> Tags:
    """The release's ASR prompt. `<|itn|>` when the corpus writes its transcripts in written form (meta.itn true:
    digits, punctuation, casing), as the release's S2TT targets are; `<|wo_itn|>` (spoken form) otherwise."""
    instruction = "itn" if meta.meta.get("itn") else "wo_itn"
    return Tags("startoftranscript", _speech_language(meta), "transcribe", meta.text_language, False, instruction)


def _speaker_meta(meta: SampleMeta, timestamps: bool = False) -> Tags:
    # Our convention: `<|speaker_meta|>` for attributes of the speaker(s) (gender, age, dialect, same/different,
    # who speaks when); the audio language is the sample's own (unknown when unset).
    return _analysis(
        "speaker_meta", audio_language=meta.audio_language, text_language=meta.text_language, timestamps=timestamps
    )


def _song_meta(meta: SampleMeta) -> Tags:
    # Our convention: `<|song_meta|>` for facts about a recording (singer, title/artist); audio language = lyrics.
    return _analysis("song_meta", audio_language=meta.audio_language, text_language=meta.text_language)


def _slu(task: str) -> Callable[[SampleMeta], Tags]:
    # Our convention: spoken language understanding under `<|speech_understanding|>`; intent classification asks a
    # `<|keyword|>` (a label), slot filling `<|transcribe|>` (the transcript with its slots marked).
    def build(meta: SampleMeta) -> Tags:
        return _analysis(
            "speech_understanding", task=task, audio_language=_speech_language(meta), text_language=meta.text_language
        )

    return build


# ---------------------------------------------------------------------------------------------------------------
# The registry, in the order of facts section 5. Speech.
# ---------------------------------------------------------------------------------------------------------------
register_task(
    Task(
        name="asr",
        family="speech",
        metric="wer",
        description="speech recognition: transcript without inverse text normalisation",
        build_tags=_transcribe,
        from_release=True,
        convention="meta.itn=true switches <|wo_itn|> to <|itn|>",
        example_meta=_ex("asr", "hello world", "en"),
    )
)

register_task(
    Task(
        name="s2tt",
        family="speech",
        metric="bleu",
        description="speech-to-text translation from audio_language into text_language (CoVoST2 prompt)",
        build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "translate", m.text_language, False, "itn"),
        recipe_meta=("transcript",),
        from_release=True,
        example_meta=_ex("s2tt", "Hallo Welt", "en", "de", transcript="hello world"),
    )
)

# Overlapped speech recognition and dialect ASR: our convention is the ASR prompt itself (a transcript is asked
# for either way; the target of a mixture is every speaker's words in order of start time).
register_task(
    Task(
        name="osr",
        family="speech",
        metric="wer",
        description="overlapped speech recognition: every speaker's words, in order of start time",
        build_tags=_transcribe,
        recipe_meta=("n_speakers",),
        convention="the ASR prompt",
        example_meta=_ex("osr", "turn left here i think it is closed", "en", n_speakers=2),
    )
)

register_task(
    Task(
        name="dasr",
        family="speech",
        metric="wer",
        description="dialect speech recognition: transcript of dialectal speech",
        build_tags=_transcribe,
        recipe_meta=("dialect",),
        convention="the ASR prompt",
        example_meta=_ex("dasr", "今天天气很好", "zh", "zh", dialect="sichuanese"),
    )
)

register_task(
    Task(
        name="srwt",
        family="speech",
        metric="srwt",
        description="speech recognition with word-level timestamps (<|sil|> marks gaps)",
        build_tags=lambda m: Tags("startoftranscript", _speech_language(m), "transcribe", m.text_language, True, None),
        build_target=lambda m: format_srwt(_words(m)),
        eval_primer=time_token(0.0),  # the release's eval prompt ends with <|0.00|>
        from_release=True,
        example_meta=_ex("srwt", "hello world", "en", words=[Word("hello", 0.54, 0.86), Word("world", 0.86, 1.2)]),
    )
)

# Dialect identification, gender, age, verification: our convention, all `<|speaker_meta|>` with the attribute
# named at the start of the target ("dialect: X"); the eval prompt forces the key, so one instruction serves all.
register_task(
    Task(
        name="did",
        family="speech",
        metric="accuracy",
        description="dialect identification; target 'dialect: NAME'",
        build_tags=_speaker_meta,
        build_target=_keyed("dialect"),
        eval_primer="dialect:",
        recipe_meta=("dialect",),
        convention="<|speaker_meta|> + key 'dialect:'",
        example_meta=_ex("did", "cantonese", "zh", dialect="cantonese"),
    )
)

# Language identification. The release has no LID output instruction, so this is our convention: the keyword
# task of the analysis family with the audio language hidden (<|unknown|>), answered by the English name.
register_task(
    Task(
        name="lid",
        family="speech",
        metric="accuracy",
        description="spoken language identification; target is the English language name",
        build_tags=lambda m: _analysis(None),
        build_target=_lid_target,
        recipe_meta=("language",),
        convention="<|keyword|> with <|unknown|> audio language, no instruction",
        example_meta=_ex("lid", "english", "en", language="en"),
    )
)

register_task(
    Task(
        name="sgc",
        family="speech",
        metric="accuracy",
        description="speaker gender classification; target 'gender: male|female'",
        build_tags=_speaker_meta,
        build_target=_keyed("gender", _choice("male", "female")),
        eval_primer="gender:",
        convention="<|speaker_meta|> + key 'gender:'",
        example_meta=_ex("sgc", "female", "en"),
    )
)

register_task(
    Task(
        name="er",
        family="speech",
        metric="accuracy",
        # Facts §5 names emotion recognition ER and keeps SER for speech entity recognition; the release's eval
        # table calls MELD "SER". Task names live in shard metadata, so we follow the task list: er.
        description="speech emotion recognition (MELD prompt)",
        # The release's prompt hard-codes <|en|> as audio language (MELD is English): default to it.
        build_tags=lambda m: _analysis(
            "emotion_recognition", audio_language=m.audio_language or "en", text_language=m.text_language
        ),
        from_release=True,
        convention="any audio language; <|en|> when unset, as the release's MELD prompt",
        example_meta=_ex("er", "neutral", "en"),
    )
)

register_task(
    Task(
        name="sv",
        family="speech",
        metric="accuracy",
        description="speaker verification on two utterances joined by 1 s of silence; target 'speakers: same|different'",
        build_tags=_speaker_meta,
        build_target=_keyed("speakers", _choice("same", "different")),
        eval_primer="speakers:",
        recipe_meta=("speakers",),
        convention="<|speaker_meta|> + key 'speakers:'",
        example_meta=_ex("sv", "different", "en", speakers=["1089", "2300"]),
    )
)

register_task(
    Task(
        name="sd",
        family="speech",
        metric="sd",
        description="speaker diarization: turns as <|start|>speaker N<|end|>, speakers numbered by first appearance",
        build_tags=lambda m: _speaker_meta(m, timestamps=True),
        build_target=lambda m: _spans_target(m, "segments", "speaker", relabel=True),
        required_meta=("segments",),
        convention="<|speaker_meta|> with <|timestamps|>; time-span target; speakers renamed 'speaker N'",
        example_meta=_ex(
            "sd",
            "hello there. hi.",
            "en",
            duration=4.0,
            segments=[
                {"speaker": "B", "start": 1.6, "end": 3.1},
                {"speaker": "A", "start": 0.2, "end": 1.8},
                {"speaker": "A", "start": 3.0, "end": 3.9},
            ],
        ),
    )
)

register_task(
    Task(
        name="ser",
        family="speech",
        metric="entity_f1",
        description="speech entity recognition: transcript with entities marked by the released entity tokens",
        # Our convention: `<|transcribe|>` (the output is a transcript) under `<|named_entity_recognition|>`.
        build_tags=lambda m: _analysis(
            "named_entity_recognition",
            task="transcribe",
            audio_language=_speech_language(m),
            text_language=m.text_language,
        ),
        build_target=_entities_target("entities"),
        required_meta=("entities",),
        convention="<|transcribe|> + <|named_entity_recognition|>; entities marked inline",
        example_meta=_ex(
            "ser",
            "call john smith in paris",
            "en",
            entities=[{"type": "person", "value": "john smith"}, {"type": "city", "value": "paris"}],
        ),
    )
)

# Keyword spotting: our convention is the bare keyword prompt with the audio language given. (LID asks the same
# with <|unknown|> audio language: naming the language versus naming the word spoken in it.)
register_task(
    Task(
        name="ks",
        family="speech",
        metric="accuracy",
        description="keyword spotting: the keyword spoken",
        build_tags=lambda m: _analysis(None, audio_language=_speech_language(m), text_language=m.text_language),
        convention="<|keyword|> with the audio language given, no instruction",
        example_meta=_ex("ks", "yes", "en"),
    )
)

register_task(
    Task(
        name="ic",
        family="speech",
        metric="accuracy",
        description="intent classification: the intent label",
        build_tags=_slu("keyword"),
        recipe_meta=("transcript",),
        convention="<|keyword|> + <|speech_understanding|>",
        example_meta=_ex("ic", "alarm_set", "en", transcript="wake me up at seven"),
    )
)

register_task(
    Task(
        name="sf",
        family="speech",
        metric="entity_f1",
        description="slot filling: transcript with slots marked by the released entity tokens",
        build_tags=_slu("transcribe"),
        build_target=_entities_target("slots"),
        required_meta=("slots",),
        convention="<|transcribe|> + <|speech_understanding|>; slots marked inline like SER entities",
        example_meta=_ex(
            "sf",
            "wake me up at seven tomorrow",
            "en",
            slots=[{"type": "time", "value": "seven"}, {"type": "date", "value": "tomorrow"}],
        ),
    )
)

register_task(
    Task(
        name="sap",
        family="speech",
        metric="accuracy",
        description="speaker age prediction; target 'age: GROUP'",
        build_tags=_speaker_meta,
        build_target=_keyed("age"),
        eval_primer="age:",
        convention="<|speaker_meta|> + key 'age:'",
        example_meta=_ex("sap", "thirties", "en"),
    )
)

register_task(
    Task(
        name="vsc",
        family="speech",
        metric="accuracy",
        description="vocal sound classification (VocalSound prompt)",
        # The release's prompt uses <|en|> as audio language for these non-verbal sounds: default to it.
        build_tags=lambda m: _analysis(
            "vocal_classification", audio_language=m.audio_language or "en", text_language=m.text_language
        ),
        from_release=True,
        convention="any audio language; <|en|> when unset, as the release's VocalSound prompt",
        example_meta=_ex("vsc", "laughter"),
    )
)


# ---------------------------------------------------------------------------------------------------------------
# Sound
# ---------------------------------------------------------------------------------------------------------------
CAPTION_STYLES = {"clotho": "caption_clotho", "audiocaps": "caption_audiocaps", "plain": "caption_plain"}


def _caption_instruction(meta: SampleMeta) -> str:
    """The release names the caption style of a corpus: AudioCaps and Clotho captions get their own instruction,
    meta.caption_style ("clotho" / "audiocaps" / "plain") overrides; the default is Clotho, the release's eval
    prompt. Choosing by corpus name is our convention."""
    style = str(meta.meta.get("caption_style") or ("audiocaps" if _corpus(meta) == "audiocaps" else "clotho"))
    if style not in CAPTION_STYLES:
        raise SampleError(
            f"task {meta.task!r} sample from {meta.source!r}: meta.caption_style {style!r} is not "
            f"one of {', '.join(CAPTION_STYLES)}"
        )
    return CAPTION_STYLES[style]


register_task(
    Task(
        name="aac",
        family="sound",
        metric="caption",
        description="audio captioning (Clotho prompt; AudioCaps style for audiocaps/* sources)",
        build_tags=lambda m: _analysis(_caption_instruction(m), task="caption", text_language=m.text_language),
        from_release=True,
        convention="<|caption_audiocaps|> for audiocaps/*, meta.caption_style=plain|audiocaps|clotho",
        example_meta=_ex("aac", "a dog barks while cars pass by"),
    )
)

register_task(
    Task(
        name="sec",
        family="sound",
        metric="accuracy",
        description="sound event classification; target the label(s) joined with ', '",
        # Our convention: `<|event|>`; AudioSet labels (audioset/* sources) say so with `<|audioset_ontology|>`.
        build_tags=lambda m: _analysis(
            "audioset_ontology" if _corpus(m) == "audioset" else "event", text_language=m.text_language
        ),
        recipe_meta=("labels",),
        convention="<|event|>; <|audioset_ontology|> for audioset/* sources",
        example_meta=_ex("sec", "dog bark", labels=["dog bark"]),
    )
)

register_task(
    Task(
        name="asc",
        family="sound",
        metric="accuracy",
        description="acoustic scene classification (CochlScene / TUT2017 prompt)",
        build_tags=lambda m: _analysis("scene", text_language=m.text_language),
        from_release=True,
        example_meta=_ex("asc", "street traffic"),
    )
)

register_task(
    Task(
        name="sed",
        family="sound",
        metric="sed",
        description="sound event detection: events as <|start|>label<|end|>, ordered by start",
        build_tags=lambda m: _analysis("event", text_language=m.text_language, timestamps=True),
        build_target=lambda m: _spans_target(m, "events", "label"),
        required_meta=("events",),
        convention="SEC's prompt with <|timestamps|>; time-span target",
        example_meta=_ex(
            "sed",
            "dog bark, car horn",
            duration=5.0,
            events=[{"label": "car horn", "start": 0.9, "end": 3.0}, {"label": "dog bark", "start": 0.5, "end": 1.2}],
        ),
    )
)

register_task(
    Task(
        name="aqa",
        family="sound",
        metric="aqa",
        description="audio question answering; meta.question holds the question, target the answer (ClothoAQA prompt)",
        # The release's prompt uses <|en|> as audio language (the question's language): default to it.
        build_tags=lambda m: Tags("startofanalysis", m.audio_language or "en", "question", question=_question(m)),
        required_meta=("question",),
        from_release=True,
        example_meta=_ex("aqa", "yes", question="Is there a dog barking?"),
    )
)


# ---------------------------------------------------------------------------------------------------------------
# Music and song
# ---------------------------------------------------------------------------------------------------------------
register_task(
    Task(
        name="sid",
        family="music",
        metric="accuracy",
        description="singer identification; target 'singer: NAME'",
        build_tags=_song_meta,
        build_target=_keyed("singer"),
        eval_primer="singer:",
        convention="<|song_meta|> + key 'singer:'",
        example_meta=_ex("sid", "Adele"),
    )
)

register_task(
    Task(
        name="smer",
        family="music",
        metric="accuracy",
        description="singing / music emotion recognition",
        # Our convention: ER's instruction with the audio language always <|unknown|>, which tells it apart from ER
        # (whose audio language is a spoken language).
        build_tags=lambda m: _analysis("emotion_recognition", text_language=m.text_language),
        convention="<|emotion_recognition|> with <|unknown|> audio language",
        example_meta=_ex("smer", "happy"),
    )
)

register_task(
    Task(
        name="mc",
        family="music",
        metric="caption",
        description="music captioning",
        build_tags=lambda m: _analysis("music_description", task="caption", text_language=m.text_language),
        convention="<|caption|> + <|music_description|>",
        example_meta=_ex("mc", "a calm piano melody with soft strings"),
    )
)

register_task(
    Task(
        name="mic",
        family="music",
        metric="accuracy",
        description="music instrument classification; target <|instrument|> + label(s) joined with ', '",
        # Our convention: a music `<|keyword|>` under `<|music_description|>`, the target opened by the released
        # `<|instrument|>` marker (as in note analysis), which the eval prompt forces.
        build_tags=lambda m: _analysis("music_description", text_language=m.text_language),
        build_target=lambda m: INSTRUMENT + _label(m),
        eval_primer=INSTRUMENT,
        recipe_meta=("labels",),
        convention="<|keyword|> + <|music_description|> + <|instrument|>",
        example_meta=_ex("mic", "piano, violin", labels=["piano", "violin"]),
    )
)

register_task(
    Task(
        name="mna",
        family="music",
        metric="mna",
        description="music note analysis: pitch, velocity, instrument, sonic qualities (NSynth prompt)",
        build_tags=lambda m: _analysis("note_analysis", text_language=m.text_language),
        build_target=_mna_target,
        required_meta=("pitch", "velocity", "instrument"),
        recipe_meta=("sonic",),
        from_release=True,
        example_meta=_ex(
            "mna", "", pitch=60, velocity=100, instrument="keyboard_acoustic", sonic=["bright", "percussive"]
        ),
    )
)

register_task(
    Task(
        name="mgr",
        family="music",
        metric="accuracy",
        description="music genre recognition; target 'genre: NAME'",
        build_tags=lambda m: _analysis("music_description", text_language=m.text_language),
        build_target=_keyed("genre"),
        eval_primer="genre:",
        convention="<|keyword|> + <|music_description|> + key 'genre:'",
        example_meta=_ex("mgr", "jazz"),
    )
)

register_task(
    Task(
        name="mr",
        family="music",
        metric="accuracy",
        description="music recognition; target 'song: TITLE - ARTIST'",
        build_tags=_song_meta,
        build_target=_keyed("song"),
        eval_primer="song:",
        convention="<|song_meta|> + key 'song:'",
        example_meta=_ex("mr", "Yesterday - The Beatles"),
    )
)

register_task(
    Task(
        name="mqa",
        family="music",
        metric="aqa",
        description="music question answering; meta.question holds the question, target the answer",
        # Our convention: the release's AQA prompt, audio language defaulting to <|en|> as there.
        build_tags=lambda m: Tags("startofanalysis", m.audio_language or "en", "question", question=_question(m)),
        required_meta=("question",),
        convention="the release's AQA prompt",
        example_meta=_ex("mqa", "piano", question="Which instrument plays the melody?"),
    )
)
