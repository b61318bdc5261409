"""NSynth musical notes -> ``mna`` (note analysis) and optionally ``mic`` (instrument classification) shards.

Raw layout (the json/wav archives extracted into ROOT)::

    ROOT/nsynth-{train,valid,test}/examples.json    {note_str: {pitch, velocity, instrument_family_str,
                                                    instrument_source_str, instrument_str, qualities_str, ...}}
    ROOT/nsynth-{train,valid,test}/audio/<note_str>.wav    4-s notes, 16 kHz, 16-bit

    python -m data_recipes.nsynth --root ROOT --out OUT [--subsets train valid test] [--tasks mna mic]

``mna`` samples (the release's note analysis): ``target`` the instrument family (``keyboard``, ``synth_lead``, as
NSynth writes it), ``meta.pitch`` (MIDI), ``meta.velocity``, ``meta.instrument`` (family), ``meta.sonic``
(``qualities_str``, e.g. ``["bright", "percussive"]``), plus ``meta.instrument_source``, ``meta.instrument_str``
and ``meta.note_str``. The task formatter builds the tagged target
``<|pitch|><|midi_pitch_N|><|velocity|><|midi_velocity_N|><|instrument|>family<|sonic|>a, b``.
``mic`` samples (``--tasks mna mic``; off by default: it stores the audio a second time): ``target`` the family
with underscores read as spaces (``synth lead``), ``meta.labels`` ``[target]``, same extra meta.
Keys are the ``note_str`` (``bass_synthetic_033-022-050``).

Owns: the NSynth layout. Must not: download anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from data_recipes.clotho import readable
from data_recipes.common import RawItem, Recipe, main_with_options, make_key, present_subsets

TASKS = ("mna", "mic")


class NSynth(Recipe):
    name = "nsynth"
    layout = """\
ROOT/nsynth-{train,valid,test}/examples.json          note_str -> {pitch, velocity, instrument_family_str,
                                                      qualities_str, ...}
ROOT/nsynth-{train,valid,test}/audio/<note_str>.wav"""
    subsets = ("train", "valid", "test")
    tasks = TASKS

    def __init__(self, tasks: tuple[str, ...] = ("mna",)) -> None:
        bad = [t for t in tasks if t not in TASKS]
        if bad or not tasks:
            raise ValueError(f"--tasks must be among {TASKS}, got {list(tasks)}")
        self.chosen = tuple(tasks)

    def tasks_of(self, subset: str) -> tuple[str, ...]:
        return self.chosen

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return present_subsets(self, root)

    def check(self, root: Path, subset: str) -> None:
        self.require(root / f"nsynth-{subset}" / "examples.json", f"the {subset} examples.json")

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        folder = root / f"nsynth-{subset}"
        with open(folder / "examples.json", encoding="utf-8") as f:
            examples: dict[str, dict[str, Any]] = json.load(f)
        for note_str in sorted(examples):
            ex = examples[note_str]
            try:
                pitch, velocity = int(ex["pitch"]), int(ex["velocity"])
                family = str(ex["instrument_family_str"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(
                    f"{folder / 'examples.json'}: entry {note_str!r} lacks pitch, velocity or "
                    f"instrument_family_str ({e})"
                ) from e
            audio = folder / "audio" / f"{note_str}.wav"
            if not audio.is_file():
                raise self.missing(audio, f"audio of note {note_str!r}")
            meta: dict[str, Any] = {
                "pitch": pitch,
                "velocity": velocity,
                "instrument": family,
                "sonic": list(ex.get("qualities_str") or []),
                "instrument_source": ex.get("instrument_source_str"),
                "instrument_str": ex.get("instrument_str"),
                "note_str": note_str,
            }
            if task == "mna":
                yield RawItem(
                    key=make_key(note_str), audio=str(audio), task="mna", target=family, text_language="en", meta=meta
                )
            else:
                label = readable(family)
                yield RawItem(
                    key=make_key(note_str),
                    audio=str(audio),
                    task="mic",
                    target=label,
                    text_language="en",
                    meta=dict(meta, labels=[label]),
                    long_audio="windows",
                )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=["mna"],
        help="tasks to write (default mna; mic stores the audio a second time)",
    )


RECIPE = NSynth()


def cli(argv: Sequence[str] | None = None) -> int:
    """The uniform recipe CLI plus this recipe's options (see the module docstring)."""
    return main_with_options(lambda o, root: NSynth(tuple(o.tasks)), add_options, argv)


if __name__ == "__main__":
    sys.exit(cli())
