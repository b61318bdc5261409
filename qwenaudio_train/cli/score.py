"""``qwenaudio-score``: score predictions made by anything (our runner, transformers, vLLM) as the release does.

qwenaudio-score PREDICTIONS.jsonl [...] [--mode release|normalized|both] [--out DIR] [--task T] [--language L]

Reads records (``eval.records``: the release's ``{gt, response, source}`` or ours), groups them by source as the
release's scripts do, scores each group with the scorer of its task, prints the table (with 95% bootstrap
intervals) and, with ``--out``, writes ``DIR/eval.json`` and ``DIR/eval.md`` as ``qwenaudio-eval`` does (the
same code: ``eval.report``). Exit status 0, 1 when a group could not be scored (its reason is in the table),
2 for unreadable input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="qwenaudio-score",
        description="Score prediction records (the release's {gt, response, source} form, or ours) per source, "
        "as the release's eval_audio scripts do; the release's figures stand beside its own definitions only.",
    )
    p.add_argument("predictions", nargs="+", help="JSONL files (one record a line) or JSON lists of records")
    p.add_argument(
        "--mode",
        choices=("release", "normalized", "both"),
        default="release",
        help="WER text handling: the release's cleaning, Qwen2-Audio's normalisers, or both side by side",
    )
    p.add_argument("--out", default=None, help="write eval.json, eval.md (and by_source/, eval.png) here")
    p.add_argument("--task", default=None, help="task of records whose source has no known prefix (e.g. asr)")
    p.add_argument("--language", default=None, help="language of records without one (e.g. en)")
    p.add_argument("--no-ci", action="store_true", help="skip the bootstrap confidence intervals")
    args = p.parse_args(argv)

    from qwenaudio_train.eval.records import RecordError, read_records
    from qwenaudio_train.eval.report import markdown_table, score_records, write_report

    t0 = time.perf_counter()
    try:
        records = read_records(args.predictions, args.task, args.language)
        results = score_records(records, mode=args.mode, by="source", ci=not args.no_ci)
    except (FileNotFoundError, RecordError, KeyError, ValueError) as e:
        print(f"qwenaudio-score: {e}", file=sys.stderr)
        return 2
    names = ", ".join(args.predictions)
    print(markdown_table(results, title=f"{names} ({args.mode})"))
    if args.out:
        meta = {
            "checkpoint": names,
            "split": names,
            "samples": len(records),
            "seconds": time.perf_counter() - t0,
            "mode": args.mode,
        }
        js, md = write_report(Path(args.out), records, results, None, meta)
        print(f"wrote {js} and {md}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
