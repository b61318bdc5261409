"""Mixture weights: explicit per source, or by hours with a temperature and optional caps.

With ``weighting=hours`` a source's weight is ``min(hours, max_hours) ** (1 / temperature)``: temperature 1
samples in proportion to hours, larger temperatures flatten the mixture towards uniform (the usual
multilingual/multi-task up-sampling of small sources). Hours come from the config or from the shard set's
``manifest.json`` (written by ``data/shards.write_shards``). Must not: read audio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qwenaudio_train.data.shards import expand_shards
from qwenaudio_train.data.stream import SourceSpec


def manifest_hours(shards: list[str]) -> float:
    """Hours of a shard set from the manifest.json beside its shards (summed over directories)."""
    total, seen = 0.0, set()
    for shard in shards:
        d = Path(shard).parent
        if d in seen:
            continue
        seen.add(d)
        m = d / "manifest.json"
        if not m.is_file():
            raise FileNotFoundError(
                f"{m} is missing: give the source's hours in the config (data.sources.<name>."
                "hours) or write the shards with qwenaudio_train.data.shards.write_shards"
            )
        total += float(json.loads(m.read_text())["totals"]["hours"])
    return total


def build_sources(sources: dict[str, Any], weighting: str = "explicit", temperature: float = 1.0) -> list[SourceSpec]:
    """SourceSpecs from the config's ``data.sources`` (objects with shards, weight, hours, max_hours)."""
    if temperature <= 0:
        raise ValueError(f"data.temperature={temperature}: must be > 0")
    out: list[SourceSpec] = []
    for name, src in sources.items():
        shards = expand_shards(src.shards)
        if weighting == "hours":
            hours = src.hours if src.hours is not None else manifest_hours(shards)
            if src.max_hours is not None:
                hours = min(hours, src.max_hours)
            weight = hours ** (1.0 / temperature)
        elif src.weight is None:
            raise ValueError(f"data.sources.{name}.weight is null: set a weight or use data.weighting=hours")
        else:
            weight = float(src.weight)
        if weight > 0:
            out.append(SourceSpec(name, shards, weight))
    return out
