"""The task record and the registry: `Task`, `TASKS`, `register_task`, `get_task`, and the readable listings of
the registry (`describe_tasks` for `qwenaudio-data tasks`, `tasks_markdown` for the table of docs/tasks.md).

Must not: define tasks (the family modules `speech`, `sound_music` do), know a target format (`formats.py` does),
import torch or a tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from qwenaudio_train.data.schema import SampleError, SampleMeta
from qwenaudio_train.tags import ENDOFTEXT, Tags

FAMILIES = ("speech", "sound", "music")
# Metric names the eval runner maps to scorers (the registry `eval/scorers.py`, one module per metric family).
# `sd` (diarization error rate over parse_spans output), `sed` (event F1 over parse_spans output) and `entity_f1`
# (typed-span F1 over parse_entities output) are named here for the new tasks; their scorers belong to the eval side.
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
