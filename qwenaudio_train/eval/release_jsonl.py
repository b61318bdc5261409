"""The Qwen-Audio release's evaluation jsonl files (``eval_audio/*.jsonl``): lines -> sample metadata -> samples.

The release describes each eval set as JSON lines (``librispeech_eval.jsonl``, ``covost2_eval.jsonl``,
``clotho_eval.jsonl``, ``cochlscene_eval.jsonl``, ``clothoaqa_eval.jsonl``, ``nsynth_eval.jsonl`` ...)::

    {"audio": "<path>", "gt": "<reference>", "source": "<name>", ...task keys ("question", "lang", "prompt")}

``audio`` paths are relative to a root folder (default: the jsonl's own folder) and must lie under it: a path
that escapes the root (``../``, or an absolute path elsewhere) is refused naming the line, since a jsonl from
someone else must not make the evaluation read any file on disk. The subsets are the ``source`` names found (the release groups its scores by them); a sample's ``source``
is ``<corpus>/<source name>`` (``librispeech/librispeech_test_clean``), ``meta.release_source`` the name as
written. Tasks come from an explicit ``task``, else a ``gt`` that starts with a time token (``srwt``), else the
source name's prefix:

================  ======  ==============================================================================
prefix            task    fields
================  ======  ==============================================================================
librispeech       asr     language en (``lang``/``language`` key or an explicit ``language`` override it)
aishell           asr     language zh
covost2           s2tt    languages from the name ``..._<src>_<tgt>_<split>`` as the release parses them
clotho            aac     ``gt`` a caption or a list of them: target the first, ``meta.captions`` all
clothoaqa         aqa     ``meta.question`` from the ``question`` key (required)
cochlscene        asc
tut2017           asc
meld              er      audio language en
vocalsound        vsc
nsynth            mna     ``gt`` in the release's tagged form, parsed into pitch/velocity/instrument/sonic
================  ======  ==============================================================================

SRWT lines (``gt`` like ``<|0.00|><|sil|><|0.54|>面<|0.86|>...``) become ``words`` and a plain transcript (words
joined by spaces, or directly for zh/ja); their language comes from the prefix or ``language``. A line's
``prompt`` key is kept in ``meta.prompt``. Keys are ``<source>-<line number>-<audio stem>``. Clips over 30 s are
skipped and counted (their targets cannot be re-based onto windows).

Owns: the source-prefix -> task mapping (``PREFIXES``), one line -> sample fields (``line_fields``), the lines of
a set of files grouped by source (``ReleaseEvalSet``) and its samples read straight from the audio files
(``ReleaseEvalSet.samples``: ``{"__key__", "__url__", "flac", "json"}``, the form ``stream.iter_split`` yields
from shards), so ``qwenaudio-eval split=<file>.jsonl`` needs no conversion; ``data_recipes.release_eval_jsonl``
writes the same samples as shards. Must not: write shards, download anything, tokenise or batch.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenaudio_train.audio import CHUNK_LENGTH, SAMPLE_RATE, AudioError, encode_flac, load_audio
from qwenaudio_train.data.schema import SampleMeta, Word
from qwenaudio_train.formats import parse_mna, parse_srwt
from qwenaudio_train.tags import TAG_LANGUAGES, TIME_TOKEN_RE

# (prefix, task, default language of the audio/text); longest prefixes first ("clothoaqa" before "clotho").
PREFIXES: tuple[tuple[str, str, str | None], ...] = (
    ("clothoaqa", "aqa", None),
    ("clotho", "aac", None),
    ("librispeech", "asr", "en"),
    ("aishell", "asr", "zh"),
    ("covost2", "s2tt", None),
    ("cochlscene", "asc", None),
    ("tut2017", "asc", None),
    ("meld", "er", "en"),
    ("vocalsound", "vsc", None),
    ("nsynth", "mna", None),
)
NO_SPACE_LANGUAGES = ("zh", "ja", "zh_tr")
LONG_AUDIO_S = float(CHUNK_LENGTH)  # 30 s: longer clips are skipped (and counted)

_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]")


def sample_key(*parts: object) -> str:
    """A shard key from parts: joined with '-', every character outside [A-Za-z0-9_-] replaced by '_' (the rule
    of ``data_recipes.common.make_key``: webdataset keys hold no dots or slashes)."""
    key = "-".join(_KEY_BAD.sub("_", str(p)) for p in parts if str(p) != "")
    if not key:
        raise ValueError(f"cannot build a key from {parts!r}")
    return key


def source_prefix(source: str) -> tuple[str, str, str | None] | None:
    """The ``PREFIXES`` entry ``(prefix, task, language)`` a source name starts with (any case), or None."""
    low = source.lower()
    return next((p for p in PREFIXES if low.startswith(p[0])), None)


def _language(value: Any, where: str) -> str:
    lang = str(value).strip().lower()
    if lang not in TAG_LANGUAGES:
        raise ValueError(f"{where}: language {value!r} is not one of {', '.join(TAG_LANGUAGES)}")
    return lang


def line_fields(
    line: dict[str, Any], where: str, task: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """RawItem fields (task, target, text_language, audio_language, words, meta) of one jsonl line."""
    for k in ("audio", "gt", "source"):
        if k not in line:
            raise ValueError(f"{where}: line lacks {k!r} (the release's lines have audio, gt and source)")
    source, gt = str(line["source"]), line["gt"]
    known = source_prefix(source)
    if task is None:
        if isinstance(gt, str) and TIME_TOKEN_RE.match(gt):
            task = "srwt"
        elif known is not None:
            task = known[1]
        else:
            raise ValueError(
                f"{where}: source {source!r} has no known prefix ({', '.join(p for p, _, _ in PREFIXES)}); pass --task"
            )
    lang_value = line.get("lang") or line.get("language") or language or (known[2] if known else None)
    meta: dict[str, Any] = {"release_source": source}
    if "prompt" in line:
        meta["prompt"] = line["prompt"]
    out: dict[str, Any] = {"task": task, "text_language": "en", "audio_language": None, "words": None, "meta": meta}

    if task in ("asr", "srwt"):
        if lang_value is None:
            raise ValueError(f"{where}: no language for {task} source {source!r}; pass --language")
        lang = _language(lang_value, where)
        out.update(text_language=lang, audio_language=lang)
        if task == "srwt":
            words = parse_srwt(str(gt))
            if not words:
                raise ValueError(f"{where}: srwt gt has no timed words: {gt!r}")
            out["words"] = [Word(w, s, e) for w, s, e in words]
            meta["release_gt"] = str(gt)  # the tagged form, trailing <|sil|> included (words cannot carry it)
            out["target"] = ("" if lang in NO_SPACE_LANGUAGES else " ").join(w for w, _, _ in words)
        else:
            out["target"] = str(gt).strip()
    elif task == "s2tt":
        parts = source.split("_")
        if len(parts) < 3:
            raise ValueError(f"{where}: s2tt source {source!r} is not '<name>_<src>_<tgt>_<split>'")
        out.update(
            audio_language=_language(parts[-3], where),
            text_language=_language(parts[-2], where),
            target=str(gt).strip(),
        )
    elif task == "aac":
        captions = [str(c).strip() for c in (gt if isinstance(gt, list) else [gt]) if str(c).strip()]
        if not captions:
            raise ValueError(f"{where}: empty caption gt")
        meta["captions"] = captions
        if known is not None and known[0] == "clotho":
            meta["caption_style"] = "clotho"
        out["target"] = captions[0]
    elif task in ("aqa", "mqa"):
        if not str(line.get("question") or "").strip():
            raise ValueError(f"{where}: {task} line lacks a 'question'")
        meta["question"] = str(line["question"]).strip()
        out["target"] = str(gt).strip()
    elif task == "mna":
        note = parse_mna(str(gt))
        if note.pitch is None or note.velocity is None or not note.instrument:
            raise ValueError(f"{where}: mna gt is not '<|pitch|><|midi_pitch_N|><|velocity|>...': {gt!r}")
        meta.update(
            pitch=note.pitch, velocity=note.velocity, instrument=note.instrument, sonic=note.sonic, release_gt=str(gt)
        )
        out["target"] = note.instrument
    else:
        labels = [str(g).strip() for g in gt] if isinstance(gt, list) else None
        out["target"] = ", ".join(labels) if labels else str(gt).strip()
        if task in ("sec", "mic"):
            meta["labels"] = labels or [out["target"]]
        if task == "er" and lang_value:
            out["audio_language"] = _language(lang_value, where)
    if not out["target"]:
        raise ValueError(f"{where}: empty gt")
    return out


@dataclass
class EvalLine:
    """One jsonl line, read: where it is, its audio file (resolved against the root) and its sample fields."""

    subset: str  # the source name as a key (the shard set's folder in the recipe's output)
    index: int  # position among every line read (the key's number)
    file: Path
    lineno: int
    audio: Path
    fields: dict[str, Any]  # RawItem fields except key/audio: task, target, languages, words, meta

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.lineno}"

    @property
    def key(self) -> str:
        return sample_key(self.subset, f"{self.index:07d}", os.path.splitext(self.audio.name)[0][:40])


def release_jsonl_files(split: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path] | None:
    """The files of a split spec that names only ``.jsonl`` files (release eval sets), else None (shards)."""
    specs = [split] if isinstance(split, (str, os.PathLike)) else list(split)
    paths = [Path(os.path.expanduser(os.fspath(s))) for s in specs]
    return paths if paths and all(p.suffix == ".jsonl" for p in paths) else None


def _under_root(audio: str, root: Path, where: str) -> Path:
    """``audio`` resolved against ``root`` (lexically: a symlink the user made under the root may point anywhere);
    ValueError naming the line when it escapes the root."""
    base = Path(os.path.abspath(os.path.expanduser(root)))
    path = Path(os.path.normpath(base / audio))  # an absolute ``audio`` replaces base: it is checked the same way
    if path != base and base not in path.parents:
        raise ValueError(
            f"{where}: audio {audio!r} lies outside the audio root {os.fspath(base)!r}; audio paths of an eval jsonl "
            "must be under its folder, or under the root given (ReleaseEvalSet(root=...), the recipe's --root)"
        )
    return path


class ReleaseEvalSet:
    """The lines of release eval jsonl files, grouped by subset (source name); no audio is read until
    ``samples``. ``root`` is the folder relative ``audio`` paths start from (default: each file's folder); every
    audio path must lie under it. Raises FileNotFoundError for a missing jsonl, ValueError naming
    ``<file>:<line>`` for a bad line or an audio path outside the root."""

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]],
        root: str | os.PathLike[str] | None = None,
        task: str | None = None,
        language: str | None = None,
    ) -> None:
        self.lines: dict[str, list[EvalLine]] = {}
        self.corpus: dict[str, str] = {}
        self.skipped = {"long": 0, "bad": 0}
        n = 0
        for file in map(Path, files):
            if not file.is_file():
                raise FileNotFoundError(f"eval jsonl {os.fspath(file)!r} does not exist")
            base = Path(root) if root is not None else file.parent
            with open(file, encoding="utf-8") as f:
                for lineno, text in enumerate(f, 1):
                    if not text.strip():
                        continue
                    where = f"{file.name}:{lineno}"
                    try:
                        line = json.loads(text)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{where}: not valid JSON ({e})") from e
                    fields = line_fields(line, where, task, language)
                    source = str(line["source"])
                    subset = sample_key(source)
                    known = source_prefix(source)
                    self.corpus[subset] = known[0] if known else "release"
                    audio = _under_root(str(line["audio"]), base, where)
                    self.lines.setdefault(subset, []).append(EvalLine(subset, n, file, lineno, audio, fields))
                    n += 1

    @property
    def subsets(self) -> tuple[str, ...]:
        return tuple(self.lines)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ln.fields["task"] for lines in self.lines.values() for ln in lines))

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ln.fields["task"] for ln in self.lines[subset]))

    def source(self, subset: str) -> str:
        return f"{self.corpus[subset]}/{subset}"

    def ordered(self) -> list[EvalLine]:
        """Every line in sample order: the order ``qwenaudio-eval`` read the recipe's shards in
        (``OUT/<subset>/<task>/`` sorted by path), file order within one (subset, task)."""
        sets = sorted((f"{s}/{t}/", s, t) for s in self.lines for t in self.tasks_of(s))
        return [ln for _, s, t in sets for ln in self.lines[s] if ln.fields["task"] == t]

    def sample(self, line: EvalLine) -> dict[str, Any] | None:
        """The raw sample of one line (audio decoded to 16 kHz mono, FLAC-encoded as the shards hold it), or
        None for a clip over 30 s or one that does not decode (counted in ``skipped``; undecodable ones are
        reported on stderr). FileNotFoundError names a missing audio file and its line."""
        if not line.audio.is_file():
            raise FileNotFoundError(f"audio of {line.where} not found: expected {os.fspath(line.audio)!r}")
        try:
            wav = load_audio(line.audio, name=line.key)
        except AudioError as e:
            self.skipped["bad"] += 1
            print(f"release_eval: skipping undecodable clip {line.key}: {e}", file=sys.stderr)
            return None
        seconds = wav.shape[0] / SAMPLE_RATE
        if seconds > LONG_AUDIO_S:
            self.skipped["long"] += 1
            return None
        f = line.fields
        meta = SampleMeta(
            task=f["task"],
            text_language=f["text_language"],
            target=f["target"],
            duration=round(seconds, 4),
            source=self.source(line.subset),
            audio_language=f["audio_language"],
            words=f["words"],
            meta=dict(f["meta"]),
        )
        return {
            "__key__": line.key,
            "__url__": f"{os.fspath(line.file)}:{line.lineno}",
            "flac": encode_flac(wav),
            "json": meta.to_json(),
        }

    def samples(self, slot: int = 0, n_slots: int = 1) -> Iterator[dict[str, Any]]:
        """One slot's share of the samples, in ``ordered()`` order: line ``j`` goes to slot ``j % n_slots``, so
        a rank decodes only its own audio. Every audio path is checked first (FileNotFoundError naming the
        line), so all ranks fail alike; clips over 30 s are skipped and counted per (subset, task) on stderr."""
        lines = self.ordered()
        for ln in lines:
            if not ln.audio.is_file():
                raise FileNotFoundError(f"audio of {ln.where} not found: expected {os.fspath(ln.audio)!r}")
        long: dict[str, int] = {}
        for j, ln in enumerate(lines):
            if j % n_slots != slot:
                continue
            before = self.skipped["long"]
            sample = self.sample(ln)
            if sample is not None:
                yield sample
            elif self.skipped["long"] > before:
                name = f"{ln.subset}/{ln.fields['task']}"
                long[name] = long.get(name, 0) + 1
        share = f" (slot {slot} of {n_slots})" if n_slots > 1 else ""
        for name, count in long.items():
            print(
                f"release_eval/{name}: skipped {count} clips longer than {LONG_AUDIO_S:.0f} s "
                f"(target cannot be re-based){share}",
                file=sys.stderr,
            )
