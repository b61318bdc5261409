"""Export a training checkpoint (any ZeRO stage) to a plain model directory that transformers-style loaders read.

    qwenaudio-export runs/demo exported/            # the run's latest checkpoint
    qwenaudio-export runs/demo/checkpoints/step_00001500 exported/

Writes ``qwen_audio_config.json``, ``audio/`` (encoder, pool, projector, bos/eos as safetensors) and ``llm/`` (a
transformers causal-LM directory: ``AutoModelForCausalLM.from_pretrained(out/"llm")`` loads it), plus the
tokenizer. ZeRO-3 partitions are consolidated first. Load it back with ``QwenAudioModel.from_pretrained``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="qwenaudio-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", help="a run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("out", help="output directory")
    p.add_argument("--tokenizer", default=None, help="the run's tokenizer, for runs that do not carry their own")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped with the run's LLM (e.g. the v1 Qwen-7B); never taken from the checkpoint",
    )
    args = p.parse_args(argv)
    from qwenaudio_train.checkpoint import CheckpointError  # a damaged or crafted checkpoint, named
    from qwenaudio_train.runs import export

    try:
        out = export(args.checkpoint, args.out, args.tokenizer, args.trust_remote_code)
    except (FileNotFoundError, OSError, CheckpointError) as e:
        print(f"qwenaudio-export: {e}", file=sys.stderr)
        return 2
    print(f"exported {args.checkpoint} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
