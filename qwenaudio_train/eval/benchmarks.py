"""Today's audio-LLM benchmarks in their released formats, read into multiple-choice items: MMAU (test-mini) and
AIR-Bench foundation. Any model answers ``choice_prompt(item)`` about ``item.audio``; the answers are scored by
``qwenaudio-score`` (metric ``choice``, ``choice.py``: deterministic parsing, no LLM judge).

* MMAU (Sakshi113/MMAU ``mmau-test-mini.json``): a JSON list of ``{"id", "audio_id", "question", "choices",
  "answer", "task" (sound/music/speech), "category", "sub-category", "difficulty", ...}``; ``audio_id`` is
  relative to the file's folder (``./test-mini-audios/<id>.wav``). Its submission form (the same objects plus
  ``model_prediction``) is scored directly.
* AIR-Bench foundation (``Foundation_meta.json``): a JSON list of ``{"uniq_id", "task_name", "dataset_name",
  "path", "question", "choice_a", "choice_b"[, "choice_c", "choice_d"], "answer_gt"}``; the audio is
  ``<root>/<task_name>_<dataset_name>/<path>`` as released (or ``<root>/<path>``).

Groups: ``mmau/<task>`` and ``airbench/<task_name>``. Must not: run models, download anything, import torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenaudio_train.eval.choice import LETTERS

BENCHMARK_TASKS = ("mmau", "airbench")  # record tasks scored with the "choice" metric


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice question about one clip."""

    benchmark: str
    id: str
    audio: Path
    question: str
    choices: tuple[str, ...]
    answer: str  # the text of the right option
    subset: str  # the group it is reported in: MMAU's task, AIR-Bench's task_name
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"{self.benchmark}/{self.subset}"

    def record(self, prediction: str) -> dict[str, Any]:
        """The scoring record of a model's answer to this item (``report.score_records``' form)."""
        return {
            "key": self.id,
            "task": self.benchmark,
            "metric": "choice",
            "source": self.source,
            "lang": None,
            "prediction": prediction,
            "reference": self.answer,
            "choices": list(self.choices),
        }


def choice_prompt(item: ChoiceItem) -> str:
    """``question``, then one ``A. option`` line per option, then the instruction: the same text for every model."""
    lines = [item.question.strip(), *(f"{LETTERS[k]}. {c}" for k, c in enumerate(item.choices))]
    return "\n".join(lines) + "\nAnswer with the option's letter."


def _load_list(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"benchmark file {os.fspath(file)!r} does not exist")
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{file.name}: expected a JSON list of questions, got {type(data).__name__}")
    return data


def _checked(benchmark: str, where: str, choices: list[str], answer: str) -> None:
    if len(choices) < 2:
        raise ValueError(f"{where}: {benchmark} item has {len(choices)} options; a question needs at least 2")
    if answer not in choices:
        raise ValueError(f"{where}: answer {answer!r} is not one of the options {choices}")


def read_mmau(path: str | os.PathLike[str], audio_root: str | os.PathLike[str] | None = None) -> list[ChoiceItem]:
    """MMAU items; ``audio_root`` defaults to the json's folder. ValueError names ``<file>[<i>]`` of a bad item."""
    root = Path(audio_root) if audio_root is not None else Path(path).parent
    items = []
    for i, q in enumerate(_load_list(path)):
        where = f"{Path(path).name}[{i}]"
        missing = [k for k in ("id", "audio_id", "question", "choices", "answer") if k not in q]
        if missing:
            raise ValueError(f"{where}: MMAU item lacks {', '.join(missing)}")
        choices = [str(c) for c in q["choices"]]
        _checked("MMAU", where, choices, str(q["answer"]))
        extra: dict[str, Any] = {k: q[k] for k in ("category", "sub-category", "difficulty", "dataset") if k in q}
        items.append(
            ChoiceItem(
                "mmau",
                str(q["id"]),
                root / str(q["audio_id"]),
                str(q["question"]),
                tuple(choices),
                str(q["answer"]),
                str(q.get("task") or "all"),
                extra,
            )  # fmt: skip
        )
    return items


def airbench_choices(q: dict[str, Any]) -> list[str]:
    """The options of an AIR-Bench foundation item: ``choice_a`` .. ``choice_d``, those present and non-empty."""
    return [str(q[k]) for k in ("choice_a", "choice_b", "choice_c", "choice_d") if str(q.get(k) or "").strip()]


def read_airbench_foundation(
    path: str | os.PathLike[str], audio_root: str | os.PathLike[str] | None = None
) -> list[ChoiceItem]:
    """AIR-Bench foundation items; ``audio_root`` defaults to the json's folder."""
    root = Path(audio_root) if audio_root is not None else Path(path).parent
    items = []
    for i, q in enumerate(_load_list(path)):
        where = f"{Path(path).name}[{i}]"
        missing = [k for k in ("path", "question", "answer_gt", "task_name") if k not in q]
        if missing:
            raise ValueError(f"{where}: AIR-Bench foundation item lacks {', '.join(missing)}")
        choices = airbench_choices(q)
        _checked("AIR-Bench", where, choices, str(q["answer_gt"]))
        released = root / f"{q['task_name']}_{q.get('dataset_name', '')}" / str(q["path"])
        audio = released if released.exists() else root / str(q["path"])
        items.append(
            ChoiceItem(
                "airbench",
                str(q.get("uniq_id", i)),
                audio,
                str(q["question"]),
                tuple(choices),
                str(q["answer_gt"]),
                str(q["task_name"]),
                {"dataset_name": q.get("dataset_name")},
            )  # fmt: skip
        )
    return items


def benchmark_record(line: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A scoring record from a benchmark's own answer form, or None when the line is not one: MMAU's
    submission (``choices``, ``answer``, ``model_prediction``) or an AIR-Bench foundation item with the model's
    answer in ``response`` / ``model_output`` / ``prediction``."""
    if {"choices", "answer", "model_prediction"} <= set(line):
        choices = [str(c) for c in line["choices"]]
        _checked("MMAU", where, choices, str(line["answer"]))
        item = ChoiceItem("mmau", str(line.get("id", where)), Path(str(line.get("audio_id", ""))), "",
                          tuple(choices), str(line["answer"]), str(line.get("task") or "all"))  # fmt: skip
        return item.record(str(line["model_prediction"] or ""))
    if "answer_gt" in line and "choice_a" in line:
        answer = next((line.get(k) for k in ("response", "model_output", "prediction") if k in line), None)
        if answer is None:
            raise ValueError(f"{where}: AIR-Bench item without the model's answer (response / model_output)")
        choices = airbench_choices(line)
        _checked("AIR-Bench", where, choices, str(line["answer_gt"]))
        item = ChoiceItem("airbench", str(line.get("uniq_id", where)), Path(str(line.get("path", ""))), "",
                          tuple(choices), str(line["answer_gt"]), str(line.get("task_name") or "all"))  # fmt: skip
        return item.record(str(answer or ""))
    return None
