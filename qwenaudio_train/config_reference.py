"""The config reference (``docs/configs.md``), generated from the typed schemas so that it never drifts.

Every field of ``TrainConfig`` (pretraining and SFT) and ``EvalJobConfig`` (evaluation) with its type, its one
default and the comment written beside it in the dataclass, plus the options of every config group shipped in
``qwenaudio_train/configs/`` with the first line of their header comment.

    python -m qwenaudio_train.config_reference > docs/configs.md   # tests/unit/test_config.py checks it is current

Must not: hold any default of its own (it only reads the schemas and the YAML files).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import typing
from pathlib import Path
from typing import Any

from qwenaudio_train.config import CONFIG_DIR, EvalJobConfig, TrainConfig

_FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*?#\s*(.+)$")

HEADER = """# Config reference

Generated from the schemas by `python -m qwenaudio_train.config_reference` (do not edit by hand; a test checks it
is current). Each default is written once, in the schema; the YAML files of `qwenaudio_train/configs/` (the
repository's `configs/` points there; the files ship inside the package) set only what differs.

`qwenaudio-pretrain` and `qwenaudio-sft` compose `pretrain.yaml` / `sft.yaml`: defaults lists over the groups
below, on top of the `TrainConfig` schema. Every field is overridable on the command line (`section.key=value`); a
misspelt key, a wrong type or a value outside a choice stops the run before anything starts, naming the key.
Print the composed config without running: `qwenaudio-pretrain experiment=demo --cfg job`.

Your own configs (mixtures, experiments, model variants) live in a directory of yours with the same group folders,
added in front of the shipped ones with Hydra's `--config-dir`:

```bash
qwenaudio-pretrain --config-dir my_configs data=my_mixture experiment=my_run   # my_configs/data/my_mixture.yaml
```
"""


def _comments(cls: type) -> dict[str, str]:
    """``name -> comment`` from the ``name: type = default  # comment`` lines of a dataclass's source."""
    out: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        m = _FIELD_COMMENT.match(line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " \\| ".join(str(m.value) for m in tp)
    text = str(tp) if not isinstance(tp, type) else tp.__name__
    return re.sub(r"\b(typing|qwenaudio_train)\.[\w.]*?(\w+)\b", r"\2", text).replace("NoneType", "None")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if isinstance(value, enum.Enum):
        value = value.value
    if value == "???":
        return "(required)"
    if dataclasses.is_dataclass(value):
        return "(section)"
    return f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def _rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str, type | None]]:
    """(key, type, default, comment, nested dataclass or None) for every field, depth first."""
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    rows = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        nested = tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None
        rows.append((prefix + f.name, _type_name(tp), _default(f), comments.get(f.name, ""), nested))
    return rows


def _table(cls: type, prefix: str = "") -> list[str]:
    lines = ["| key | type | default | what it is |", "|---|---|---|---|"]
    sections = []
    for key, tp, default, comment, nested in _rows(cls, prefix):
        if nested is not None:
            sections.append((key, nested))
            continue
        lines.append(
            f"| `{key}` | {tp.replace('|', chr(92) + '|')} | {default} | {comment.replace('|', chr(92) + '|')} |"
        )
    out = lines
    for key, nested in sections:
        doc = (inspect.getdoc(nested) or "").split("\n\n")[0].replace("\n", " ")
        out += ["", f"### `{key}`", ""] + ([doc, ""] if doc and not doc.startswith(nested.__name__ + "(") else [])
        out += _table(nested, key + ".")
    return out


def _summary(yaml_file: Path) -> str:
    """The first sentence of a YAML file's header comment."""
    text = []
    for line in yaml_file.read_text().splitlines():
        if not line.startswith("#"):
            break
        if "@package" not in line:
            text.append(line.lstrip("#").strip())
    joined = " ".join(text)
    m = re.match(r"(.+?\.)(\s|$)", joined)
    return (m.group(1) if m else joined).rstrip(":")


def _group_options(config_dir: Path) -> list[str]:
    lines = ["| group | option | what it is |", "|---|---|---|"]
    for group in sorted(p for p in config_dir.iterdir() if p.is_dir() and p.name != "hydra"):
        for f in sorted(group.glob("*.yaml")):
            lines.append(f"| `{group.name}` | `{f.stem}` | {_summary(f).replace('|', chr(92) + '|')} |")
    return lines


def reference_markdown(config_dir: Path = CONFIG_DIR) -> str:
    parts = [HEADER, "## Config groups", "", *_group_options(config_dir), ""]
    parts += ["## Training and SFT (`TrainConfig`)", "", *_table(TrainConfig), ""]
    parts += ["## Evaluation (`EvalJobConfig`, `qwenaudio-eval`)", "", *_table(EvalJobConfig), ""]
    return "\n".join(parts)


def main() -> None:
    print(reference_markdown(), end="")


if __name__ == "__main__":
    main()
