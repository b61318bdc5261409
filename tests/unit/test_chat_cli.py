"""`qwenaudio-chat` driven through its real stdin/stdout, on a tiny saved model whose weights spell a reply."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenaudio_train.cli.chat import PROMPT, load_chat_model, repl
from qwenaudio_train.tokenizer import AudioTokenizer, train_bpe_tokenizer
from tests.unit.test_chat import CORPUS, scripted_chat_model, write_wav

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chat_model")
    tok: AudioTokenizer = train_bpe_tokenizer(CORPUS, out / "tokenizer", vocab_size=300)
    scripted_chat_model(tok, "hello there").save_pretrained(out)
    return out


def test_cli_protocol_through_stdin_stdout(saved_model: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "clip.wav", 0.5)
    missing = tmp_path / "nope.wav"
    script = (
        "\n".join(
            [
                "hi",
                f":audio {wav}",
                f":audio {missing}",
                "what is in the clip?",
                ":history",
                ":bogus",
                ":reset",
                ":history",
                ":quit",
                "never read",
            ]
        )
        + "\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "qwenaudio_train.cli.chat", "--model", str(saved_model), "--max-new-tokens", "20"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"qwenaudio-chat: {saved_model} loaded.")
    # Two answers, each stopped at <|im_end|> (20 new tokens were allowed).
    assert out.count(PROMPT + "assistant: hello there\n") == 2
    assert f"attached Audio 1: {wav} (0.50 s)" in out
    # History after two questions: 2 turns, the second carrying the audio; after :reset it is empty.
    assert "2 turn(s)\nuser: hi\nassistant: hello there\n" in out
    assert f"user: Audio 1:<audio>{wav}</audio>\nwhat is in the clip?\nassistant: hello there\n" in out
    assert "history cleared\n" in out and "0 turn(s)\n" in out
    assert out.count(PROMPT) == 9  # one prompt per line read up to :quit
    assert "never read" not in out
    err = proc.stderr
    assert f"error: audio file not found: {str(missing)!r}" in err
    assert "unknown command ':bogus'" in err


def test_cli_streams_token_by_token(saved_model: Path) -> None:
    model, tok = load_chat_model(saved_model)
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return super().write(s)

    stdout = Recorder()
    answered = repl(model, tok, io.StringIO("hi\n"), stdout, io.StringIO(), "You are a helpful assistant.", 20)
    assert answered == 1
    i = writes.index("assistant: ")
    reply_ids = tok.encode("hello there")
    assert writes[i + 1 : i + 1 + len(reply_ids)] == [tok.decode([t]) for t in reply_ids]


def test_cli_reports_a_missing_model(tmp_path: Path) -> None:
    from qwenaudio_train.cli.chat import main

    assert main(["--model", str(tmp_path / "nothing")]) == 2
