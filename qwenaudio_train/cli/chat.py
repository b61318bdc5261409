"""`qwenaudio-chat`: a terminal chat with a trained or exported model, streaming its replies.

    qwenaudio-chat --model runs/chat                     # a run directory (its latest checkpoint)
    qwenaudio-chat --model runs/chat/checkpoints/step_00008000
    qwenaudio-chat --model exported/ [--tokenizer DIR]   # a qwenaudio-export / save_pretrained directory
    qwenaudio-chat --model exported/ --adapter lora/     # plus a LoRA adapter (merged at load)

At the `>>> ` prompt: `:audio PATH` attaches a clip to the next question (several may be attached), any other line
is a question, `:history` prints the conversation so far, `:reset` clears it, `:quit` (or end of input) leaves.
Replies stream token by token after `assistant: `; errors (a missing audio file, an unreadable one) print to
stderr and the session goes on. Reads stdin line by line, so it can be driven by a pipe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

PROMPT = ">>> "
COMMANDS = ":audio PATH | :history | :reset | :quit"


def load_chat_model(
    model_path: str | Path, tokenizer: str | None = None, adapter: str | None = None, device: str = "cpu"
) -> tuple[Any, Any]:
    """(model, tokenizer) from an exported directory (`qwen_audio_config.json`; tokenizer from `tokenizer/` inside it
    unless given), a checkpoint directory or a run directory (the run's tokenizer and config)."""
    from qwenaudio_train.model import MODEL_CONFIG, QwenAudioModel
    from qwenaudio_train.tokenizer import load_tokenizer

    path = Path(model_path)
    if (path / MODEL_CONFIG).is_file():
        model = QwenAudioModel.from_pretrained(path)
        tok_path = Path(tokenizer) if tokenizer else path / "tokenizer"
        if not tokenizer and not tok_path.exists():
            raise FileNotFoundError(f"{path} has no tokenizer/ directory: pass --tokenizer")
        tok = load_tokenizer(tok_path)
    else:
        from qwenaudio_train.evaluate import load_trained, resolve_checkpoint

        model, tok, _ = load_trained(resolve_checkpoint(path))
        if tokenizer:
            tok = load_tokenizer(tokenizer)
    if adapter:
        from qwenaudio_train.lora import load_adapter, merge_lora

        model = merge_lora(load_adapter(model, adapter))
    return model.to(device).eval(), tok


def repl(
    model: Any, tokenizer: Any, stdin: TextIO, stdout: TextIO, stderr: TextIO, system: str, max_new_tokens: int
) -> int:
    """Run the chat loop until `:quit` or end of input. Returns the number of questions answered."""
    from qwenaudio_train.audio import SAMPLE_RATE, AudioError
    from qwenaudio_train.chat import chat, load_mel

    history: list[dict[str, str]] = []
    pending: list[str] = []
    answered = 0

    def out(text: str) -> None:
        stdout.write(text)
        stdout.flush()

    n_mels = model.audio.n_mels
    n_audios = 0
    while True:
        out(PROMPT)
        line = stdin.readline()
        if not line:
            out("\n")
            break
        line = line.strip()
        if not line:
            continue
        if line in (":quit", ":q", ":exit"):
            break
        if line == ":reset":
            history, pending, n_audios = [], [], 0
            out("history cleared\n")
            continue
        if line == ":history":
            out(f"{len(history) // 2} turn(s)\n")
            for m in history:
                out(f"{m['role']}: {m['content']}\n")
            continue
        if line.startswith(":audio"):
            p = line[len(":audio") :].strip()
            if not p:
                stderr.write("error: :audio needs a file path\n")
                continue
            try:
                _, samples = load_mel(p, n_mels)
            except AudioError as e:
                stderr.write(f"error: {e}\n")
                stderr.flush()
                continue
            pending.append(p)
            n_audios += 1
            out(f"attached Audio {n_audios}: {p} ({samples / SAMPLE_RATE:.2f} s)\n")
            continue
        if line.startswith(":"):
            stderr.write(f"error: unknown command {line.split()[0]!r}; commands: {COMMANDS}\n")
            continue
        out("assistant: ")
        try:
            _, history = chat(
                model,
                tokenizer,
                line,
                history=history,
                audio=pending,
                system=system,
                max_new_tokens=max_new_tokens,
                stream=out,
            )
        except (AudioError, ValueError) as e:
            out("\n")
            stderr.write(f"error: {e}\n")
            stderr.flush()
            continue
        pending = []
        answered += 1
        out("\n")
    return answered


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="qwenaudio-chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, help="exported model dir, checkpoint dir, or run dir")
    p.add_argument("--tokenizer", default=None, help="tokenizer (default: the model's)")
    p.add_argument("--adapter", default=None, help="a LoRA adapter directory (save_adapter output) to merge")
    p.add_argument("--system", default=None, help="system prompt (default: 'You are a helpful assistant.')")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    args = p.parse_args(argv)
    from transformers.utils import logging as hf_logging

    from qwenaudio_train.chat import DEFAULT_SYSTEM

    hf_logging.disable_progress_bar()  # keep the terminal for the conversation
    try:
        model, tok = load_chat_model(args.model, args.tokenizer, args.adapter, args.device)
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"qwenaudio-chat: {e}", file=sys.stderr)
        return 2
    print(f"qwenaudio-chat: {args.model} loaded. Commands: {COMMANDS}", flush=True)
    repl(
        model,
        tok,
        sys.stdin,
        sys.stdout,
        sys.stderr,
        args.system if args.system is not None else DEFAULT_SYSTEM,
        args.max_new_tokens,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
