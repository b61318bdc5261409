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
import cmd
import sys
from pathlib import Path
from typing import Any, TextIO

PROMPT = ">>> "
COMMANDS = ":audio PATH | :history | :reset | :quit"


def load_chat_model(
    model_path: str | Path,
    tokenizer: str | None = None,
    adapter: str | None = None,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """(model, tokenizer) from an exported directory, a checkpoint directory or a run directory (``runs.load``);
    the tokenizer is the one the model carries unless given. Python shipped with the model runs only with
    ``trust_remote_code`` (``--trust-remote-code``), never because the folder's config asks for it."""
    from qwenaudio_train.runs import load

    loaded = load(model_path, adapter, tokenizer, trust_remote_code=trust_remote_code)
    return loaded.model.to(device).eval(), loaded.tokenizer


class ChatShell(cmd.Cmd):
    """The REPL: Python's ``cmd`` loop over ``stdin``; ``:name args`` lines are commands, others are questions."""

    prompt = PROMPT

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        stdin: TextIO,
        stdout: TextIO,
        stderr: TextIO,
        system: str,
        max_new_tokens: int,
    ) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = False  # read stdin line by line: works under a pipe
        self.model, self.tokenizer, self.stderr = model, tokenizer, stderr
        self.system, self.max_new_tokens = system, max_new_tokens
        self.history: list[dict[str, str]] = []
        self.pending: list[str] = []
        self.n_audios = 0
        self.answered = 0

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def error(self, text: str) -> None:
        self.stderr.write(f"error: {text}\n")
        self.stderr.flush()

    def onecmd(self, line: str) -> bool:
        line = line.strip()
        if line == "EOF":  # end of input
            self.out("\n")
            return True
        if not line:
            return False
        if not line.startswith(":"):
            self.ask(line)
            return False
        name, _, arg = line[1:].partition(" ")
        handler = getattr(self, f"do_{name}", None)
        if handler is None:
            self.error(f"unknown command {line.split()[0]!r}; commands: {COMMANDS}")
            return False
        return bool(handler(arg.strip()))

    def do_quit(self, arg: str) -> bool:
        """:quit (or :q, :exit, end of input) leaves."""
        return True

    do_q = do_exit = do_quit

    def do_reset(self, arg: str) -> None:
        """:reset clears the conversation and the attached clips."""
        self.history, self.pending, self.n_audios = [], [], 0
        self.out("history cleared\n")

    def do_history(self, arg: str) -> None:
        """:history prints the conversation so far."""
        self.out(f"{len(self.history) // 2} turn(s)\n")
        for m in self.history:
            self.out(f"{m['role']}: {m['content']}\n")

    def do_audio(self, path: str) -> None:
        """:audio PATH attaches a clip to the next question (several may be attached)."""
        from qwenaudio_train.audio import SAMPLE_RATE, AudioError
        from qwenaudio_train.chat import load_mel

        if not path:
            self.error(":audio needs a file path")
            return
        try:
            _, samples = load_mel(path, self.model.audio.n_mels, release_compat=self.model.audio.release_compat)
        except AudioError as e:
            self.error(str(e))
            return
        self.pending.append(path)
        self.n_audios += 1
        # The label the model will see: chat() numbers each turn's clips from 1, as from_list_format does.
        self.out(f"attached Audio {len(self.pending)}: {path} ({samples / SAMPLE_RATE:.2f} s)\n")

    def ask(self, question: str) -> None:
        from qwenaudio_train.audio import AudioError
        from qwenaudio_train.chat import chat

        self.out("assistant: ")
        try:
            _, self.history = chat(
                self.model,
                self.tokenizer,
                question,
                history=self.history,
                audio=self.pending,
                system=self.system,
                max_new_tokens=self.max_new_tokens,
                stream=self.out,
            )
        except (AudioError, ValueError) as e:
            self.out("\n")
            self.error(str(e))
            return
        self.pending = []
        self.answered += 1
        self.out("\n")


def repl(
    model: Any, tokenizer: Any, stdin: TextIO, stdout: TextIO, stderr: TextIO, system: str, max_new_tokens: int
) -> int:
    """Run the chat loop until ``:quit`` or end of input. Returns the number of questions answered."""
    shell = ChatShell(model, tokenizer, stdin, stdout, stderr, system, max_new_tokens)
    shell.cmdloop()
    return shell.answered


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
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run Python code shipped in the model's llm/ folder (only for a model you trust; never taken from the "
        "folder's own config)",
    )
    p.add_argument(
        "--release-compat",
        action="store_true",
        help="the release's audio front-end and encoder edge (clips cut at 30 s): a released checkpoint answers "
        "as with the release's own code (docs/evaluation.md)",
    )
    args = p.parse_args(argv)
    from transformers.utils import logging as hf_logging

    from qwenaudio_train.chat import DEFAULT_SYSTEM

    hf_logging.disable_progress_bar()  # keep the terminal for the conversation
    try:
        model, tok = load_chat_model(args.model, args.tokenizer, args.adapter, args.device, args.trust_remote_code)
    except (FileNotFoundError, OSError, ValueError) as e:
        print(f"qwenaudio-chat: {e}", file=sys.stderr)
        return 2
    model.audio.release_compat = args.release_compat
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
