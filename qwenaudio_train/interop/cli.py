"""`qwenaudio-interop` / `python -m qwenaudio_train.interop COMMAND SRC OUT`: convert a checkpoint directory.

Owns: the command line only (argument parsing, one call per command).
Must not: hold conversion logic (release.py and qwen2_audio.py do).
"""

from __future__ import annotations

from pathlib import Path

from qwenaudio_train.interop.qwen2_audio import export_qwen2_audio, export_qwen2_audio_adapter, import_qwen2_audio
from qwenaudio_train.interop.release import export_release_checkpoint, import_release_checkpoint, import_release_llm
from qwenaudio_train.model import QwenAudioModel
from qwenaudio_train.runs import TOKENIZER_DIR
from qwenaudio_train.tokenizer import load_tokenizer


def main(argv: list[str] | None = None) -> int:
    """Convert a checkpoint directory (or hub name) and write the result to OUT."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m qwenaudio_train.interop", description=main.__doc__)
    p.add_argument(
        "command",
        choices=[
            "release-to-ours",
            "qwen-v1-llm",
            "ours-to-release",
            "ours-to-qwen2-audio",
            "qwen2-audio-to-ours",
            "adapter-to-qwen2-audio",
        ],
        help="release-to-ours: Qwen-Audio -> QwenAudioModel dir; qwen-v1-llm: Qwen-7B v1 -> Qwen2 dir; "
        "ours-to-release / ours-to-qwen2-audio: a QwenAudioModel dir -> that layout; qwen2-audio-to-ours; "
        "adapter-to-qwen2-audio: a LoRA adapter/ of a run -> one peft loads onto the ours-to-qwen2-audio export",
    )
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: the source's)")
    p.add_argument("--audio-pad-id", type=int, default=None, help="release-to-ours: if not the release's 151851")
    p.add_argument("--eod-id", type=int, default=None, help="release-to-ours: if not the release's 151643")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.command == "release-to-ours":
        ids = {k: v for k, v in (("audio_pad_id", args.audio_pad_id), ("eod_id", args.eod_id)) if v is not None}
        import_release_checkpoint(args.src, dtype=args.dtype, **ids).save_pretrained(out)
    elif args.command == "qwen-v1-llm":
        import_release_llm(args.src, dtype=args.dtype, save_dir=out)
    elif args.command == "adapter-to-qwen2-audio":
        export_qwen2_audio_adapter(args.src, out)
    elif args.command == "qwen2-audio-to-ours":
        import_qwen2_audio(args.src, dtype=args.dtype).save_pretrained(out)
        if (Path(args.src) / "tokenizer_config.json").is_file():  # the layout of an export: OUT/ + OUT/tokenizer/
            load_tokenizer(args.src).save_pretrained(out / TOKENIZER_DIR)
    else:
        model = QwenAudioModel.from_pretrained(args.src, dtype=args.dtype)
        if args.command == "ours-to-release":
            export_release_checkpoint(model, out)
        else:
            tok_dir = Path(args.src) / TOKENIZER_DIR  # an exported model's tokenizer: written with the processor
            tok = load_tokenizer(tok_dir) if tok_dir.is_dir() else None
            with_processor = tok is not None and tok.family.chat_template is not None  # Qwen2-Audio's family
            export_qwen2_audio(model, out, tokenizer=tok if with_processor else None)
    print(f"{args.command}: {args.src} -> {out}")
    return 0
