"""SLURP (spoken language understanding) -> ``ic`` (intent), ``sf`` (slot filling) and ``ser`` (speech entity
recognition) shards.

    python -m data_recipes.slurp --root RAW_DIR --out OUT_DIR [--subsets train devel test train_synthetic]

Raw layout (a clone of the SLURP repository with its audio downloaded by ``scripts/download_audio.sh``)::

    dataset/slurp/{train,devel,test,train_synthetic}.jsonl   one JSON object per line:
        {"slurp_id": 13804, "sentence": "wake me up at five am this week",
         "sentence_annotation": "wake me up at [time : five am] [date : this week]",
         "intent": "alarm_set", "action": "set", "scenario": "alarm", "tokens": [...],
         "entities": [{"span": [4, 5], "type": "time"}, ...],
         "recordings": [{"file": "audio-1434542201-headset.flac", "wer": 0.0, "status": "correct"}, ...]}
    audio/slurp_real/<file>     real recordings, FLAC (``slurp_real/`` directly under the root works too)
    audio/slurp_synth/<file>    synthetic recordings, for train_synthetic

A recording named ``x.wav`` in the JSON but shipped as ``x.flac`` (or the reverse) is found either way.

Every recording of a sentence (headset and far-field) is one sample of each task:

* ``ic``:  target = the intent (``scenario_action``, e.g. ``alarm_set``); ``meta.transcript``, ``meta.scenario``,
  ``meta.action``;
* ``sf``:  target = the transcript; ``meta.slots`` = [{type, value}] from the bracketed ``sentence_annotation``;
* ``ser``: target = the transcript; ``meta.entities`` = the same [{type, value}] list (SLURP's entities are its
  slots: one annotation serves both tasks, under the names each task's convention uses).

Keys ``slurp-<slurp_id>-<recording stem>``; audio and text language ``en``; source ``slurp/<subset>``. Without
``--subsets``: train, devel and test.

Owns: reading the SLURP layout and parsing its bracket annotation. Must not: score SLU metrics.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_recipes.common import LayoutError, RawItem, Recipe, main, make_key

AUDIO_DIRS = {"real": "slurp_real", "synth": "slurp_synth"}
_SLOT = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")


def parse_annotation(annotation: str) -> list[dict[str, str]]:
    """``"wake me up at [time : five am]"`` -> ``[{"type": "time", "value": "five am"}]``, in order."""
    return [{"type": m.group(1), "value": m.group(2)} for m in _SLOT.finditer(annotation)]


class Slurp(Recipe):
    name = "slurp"
    layout = """\
<root>/dataset/slurp/{train,devel,test,train_synthetic}.jsonl
    {"slurp_id", "sentence", "sentence_annotation": "... [type : value] ...", "intent", "scenario", "action",
     "recordings": [{"file": "audio-1434542201-headset.flac", ...}], ...}
<root>/audio/slurp_real/*.flac   (or <root>/slurp_real/)
<root>/audio/slurp_synth/*.flac  (or <root>/slurp_synth/; for train_synthetic)"""
    subsets = ("train", "devel", "test", "train_synthetic")
    tasks = ("ic", "sf", "ser")

    def default_subsets(self, root: Path) -> tuple[str, ...]:
        return ("train", "devel", "test")

    @staticmethod
    def audio_dir(root: Path, subset: str) -> Path:
        name = AUDIO_DIRS["synth" if subset == "train_synthetic" else "real"]
        nested = root / "audio" / name
        return nested if nested.is_dir() or not (root / name).is_dir() else root / name

    def check(self, root: Path, subset: str) -> None:
        self.require(root / "dataset" / "slurp" / f"{subset}.jsonl", f"the {subset} annotation file")
        self.require(self.audio_dir(root, subset), "the audio directory")

    def _find(self, audio_dir: Path, name: str) -> Path:
        for candidate in (name, Path(name).with_suffix(".flac").name, Path(name).with_suffix(".wav").name):
            if (audio_dir / candidate).is_file():
                return audio_dir / candidate
        raise self.missing(audio_dir / name, "a recording named by the annotation file")

    @staticmethod
    def _intent(rec: dict[str, Any]) -> str:
        return rec.get("intent") or f"{rec['scenario']}_{rec['action']}"

    def items(self, root: Path, subset: str, task: str) -> Iterator[RawItem]:
        path = root / "dataset" / "slurp" / f"{subset}.jsonl"
        audio_dir = self.audio_dir(root, subset)
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    sentence = rec["sentence"].strip()
                    slots = parse_annotation(rec.get("sentence_annotation", ""))
                    intent = self._intent(rec)
                    recordings = rec["recordings"]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise LayoutError(f"slurp: {path} line {n} is not a SLURP record ({e!r})") from e
                if task == "ic":
                    target, meta = (
                        intent,
                        {"transcript": sentence, "scenario": rec.get("scenario"), "action": rec.get("action")},
                    )
                elif task == "sf":
                    target, meta = sentence, {"slots": slots}
                else:
                    target, meta = sentence, {"entities": slots}
                for recording in recordings:
                    audio = self._find(audio_dir, recording["file"])
                    yield RawItem(
                        key=make_key("slurp", rec["slurp_id"], audio.stem),
                        audio=audio,
                        task=task,
                        target=target,
                        text_language="en",
                        audio_language="en",
                        meta=dict(meta),
                        long_audio="keep",  # the target follows the whole utterance: kept whole
                    )


RECIPE = Slurp()

if __name__ == "__main__":
    sys.exit(main(RECIPE))
