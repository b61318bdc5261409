"""The task registry: for each task, its tag prefix, its target formatter, its eval prompt and its metric.

Owns: `Task`, `TASKS`, `get_task`, `register_task` (`registry.py`) and the 30 tasks of facts section 5, each with a
built-in example sample, registered in the order of facts section 5 by importing the family modules below
(`speech.py`, then `sound_music.py`); `rules.py` holds what their rules share (underscore names: private to this
package). `docs/tasks.md` is the readable table of it (`tasks_markdown()` generates its rows; a test keeps them in
sync). The target formats themselves (SRWT, time spans, entities, note analysis, labels) live in
`qwenaudio_train.formats`, which renders and parses them.

Prompts follow the released code (`eval_audio/evaluate_*.py`): the eval prefix of every family of facts section 4
comes out verbatim from `Task.eval_prefix`. Every other choice is ours, written in the released vocabulary only
(`tags.py`) and marked "our convention" in the family modules and in `Task.convention`. Two rules keep the prefixes
of different tasks apart, so the model is never asked two things with the same words:
* tasks sharing an output instruction differ in another tag (task tag, timestamps, audio language) or start their
  target with an attribute key ("gender: male", `<|instrument|>guitar`) that the eval prompt forces (`eval_primer`);
* classification uses `<|keyword|>`, free text `<|caption|>`, transcripts `<|transcribe|>`, time spans `<|timestamps|>`.

Must not: import torch or a tokenizer, read audio, or assemble ids / loss masks (the sample builder does: it appends
`<|endoftext|>` after the target and masks the prefix).
"""

from __future__ import annotations

# The family modules register their tasks on import, speech first: the registry keeps the order of facts section 5.
from qwenaudio_train.tasks import speech as speech

# isort: split
from qwenaudio_train.tasks import sound_music as sound_music

# isort: split
# re-exported for tests/unit/test_synthetic.py (the synthetic corpus's checks); home: qwenaudio_train.formats
from qwenaudio_train.formats import parse_entities, parse_spans
from qwenaudio_train.tasks.registry import (
    FAMILIES,
    METRICS,
    TASKS,
    Task,
    describe_tasks,
    get_task,
    register_task,
    tasks_markdown,
)

__all__ = [
    "FAMILIES",
    "METRICS",
    "TASKS",
    "Task",
    "describe_tasks",
    "get_task",
    "parse_entities",
    "parse_spans",
    "register_task",
    "tasks_markdown",
]
