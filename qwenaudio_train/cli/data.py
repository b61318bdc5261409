"""``qwenaudio-data``: data tools.

qwenaudio-data tokenizer --text corpus.txt --out DIR [--vocab-size 1000]   train the demo's byte-level BPE
                         [--long-time-tokens]                              (+ the time markers past 30 s)
qwenaudio-data check SHARDS...                                              decode every sample, list problems
qwenaudio-data chat-shards --jsonl CONV.jsonl --out DIR [--audio-root ROOT]   your conversations -> chat shards
qwenaudio-data tasks                                                        the task registry with examples
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from qwenaudio_train.tokenizer import train_bpe_tokenizer

    text = Path(args.text)
    if not text.is_file():
        print(f"qwenaudio-data tokenizer: {text} does not exist (build the corpus first: `make data`)", file=sys.stderr)
        return 2
    lines = [ln for ln in text.read_text(encoding="utf-8").splitlines() if ln.strip()]
    tok = train_bpe_tokenizer(lines, args.out, vocab_size=args.vocab_size, long_time_tokens=args.long_time_tokens)
    print(f"tokenizer: {tok.vocab_size} tokens (BPE + {len(tok.special_ids)} special) -> {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from qwenaudio_train.data.shards import ShardError, check_shards, expand_shards

    try:
        paths = expand_shards(args.shards)
    except ShardError as e:
        print(f"qwenaudio-data check: {e}", file=sys.stderr)
        return 2
    report = check_shards(paths, long_audio=args.long_audio)
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    problems = report.get("problems", []) if isinstance(report, dict) else []
    return 1 if problems else 0


def cmd_chat_shards(args: argparse.Namespace) -> int:
    from qwenaudio_train.data.chat_shards import jsonl_to_chat_shards
    from qwenaudio_train.data.shards import ShardError

    try:
        manifest = jsonl_to_chat_shards(
            args.jsonl, args.out, args.audio_root, args.shard_samples, args.max_audio_seconds
        )
    except ShardError as e:
        print(f"qwenaudio-data chat-shards: {e}", file=sys.stderr)
        return 2
    shards = manifest["shards"]
    print(
        f"chat shards: {manifest['conversations']} conversations, {manifest['audio_files']} audio files, "
        f"{sum(s['seconds'] for s in shards) / 3600:.3f} h in {len(shards)} shards -> {args.out}"
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from qwenaudio_train.tasks import describe_tasks

    print(describe_tasks())
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="qwenaudio-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenizer", help="train a small byte-level BPE (with the audio special tokens) on text")
    t.add_argument("--text", required=True, help="a UTF-8 text file, one sample per line")
    t.add_argument("--out", required=True, help="output directory (transformers tokenizer format)")
    t.add_argument("--vocab-size", type=int, default=1000, help="BPE vocabulary size before special tokens")
    t.add_argument(
        "--long-time-tokens",
        action="store_true",
        help="append the window markers <|window_1|>..<|window_119|> of times past 30 s (docs/long_audio.md)",
    )
    t.set_defaults(fn=cmd_tokenizer)
    c = sub.add_parser("check", help="decode every sample of the shards and report problems")
    c.add_argument("shards", nargs="+", help="shard files, globs, brace patterns or directories")
    c.add_argument("--long-audio", choices=("window", "reject", "truncate"), default="window",
                   help="as data.long_audio: clips over 30 s are encoded in 30-s windows up to 600 s (window, the "
                   "default), problems (reject) or cut by training (truncate)")  # fmt: skip
    c.set_defaults(fn=cmd_check)
    j = sub.add_parser(
        "chat-shards",
        help="convert conversations (JSON lines, the chat schema) and their audio files to chat shards for SFT",
        description='Convert a JSON-lines file of conversations (one a line: {"messages": [...]}, audio as '
        '{"type": "audio", "audio": PATH} parts or "Audio 1: <audio>PATH</audio>" text) into chat shards '
        "(<key>.json + <key>.audioK.flac, 16-kHz mono FLAC) that `data.format=chat` training reads.",
    )
    j.add_argument("--jsonl", required=True, help="the conversations, one JSON object a line")
    j.add_argument("--out", required=True, help="output directory: chat-NNNNNN.tar + manifest.json")
    j.add_argument(
        "--audio-root", default=None, help="folder that relative audio paths start from (default: the JSONL's folder)"
    )
    j.add_argument("--shard-samples", type=int, default=1000, help="conversations per shard tar (default 1000)")
    j.add_argument(
        "--max-audio-seconds", type=float, default=600.0,
        help="longest audio file kept (default 600, as data.max_audio_seconds; over 30 s trains in 30-s windows)",
    )  # fmt: skip
    j.set_defaults(fn=cmd_chat_shards)
    k = sub.add_parser("tasks", help="print the task registry with one example prompt + target per task")
    k.set_defaults(fn=cmd_tasks)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
