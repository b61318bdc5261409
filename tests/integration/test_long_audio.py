"""Audio longer than 30 s end to end (issue 13): a 2-rank run on a mixture with 60-180 s clips trains, resumes
exactly and counts no bad sample; the eval runner and `qwenaudio-chat` answer on a 3-minute recording.

The long clips are tiny-corpus ASR utterances joined with pauses, the target the whole transcript; they are written
with the shard writer every recipe uses (`write_shards`, on `ShardSetWriter`).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qwenaudio_train import audio as A
from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.data.shards import iter_shard, write_shards
from tests.integration.conftest import rollback, subprocess_env, train_overrides

REPO = Path(__file__).resolve().parents[2]
LONG_SECONDS = [60.0, 75.0, 90.0, 120.0]  # training; the eval and chat recording lasts 180 s


def _long_clips(corpus: Path, seconds: list[float], seed: int) -> list[tuple[np.ndarray, str]]:
    """(wav, transcript) pairs of about `seconds` each: tiny-corpus ASR utterances with 0.3-1.2 s pauses."""
    utterances = []
    for tar in sorted((corpus / "train" / "asr").rglob("*.tar")):
        for raw in iter_shard(str(tar)):
            utterances.append((A.load_audio(raw["flac"]), json.loads(raw["json"])["target"]))
    rng = np.random.default_rng(seed)
    out = []
    for total in seconds:
        parts, words, n = [], [], A.samples_for_duration(total)
        while sum(len(p) for p in parts) < n:
            wav, text = utterances[int(rng.integers(len(utterances)))]
            parts += [wav, np.zeros(int(rng.uniform(0.3, 1.2) * A.SAMPLE_RATE), np.float32)]
            words.append(text)
        out.append((np.concatenate(parts)[:n], " ".join(words)))
    return out


def _write(out: Path, clips: list[tuple[np.ndarray, str]], prefix: str) -> None:
    samples = []
    for i, (wav, text) in enumerate(clips):
        meta = SampleMeta(task="asr", text_language="en", target=text, duration=len(wav) / A.SAMPLE_RATE,
                          source="long", audio_language="en")  # fmt: skip
        samples.append((f"{prefix}-{i:03d}", A.encode_flac(wav), meta))
    write_shards(samples, out, max_count=2)


@pytest.fixture(scope="module")
def long_data(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("long")
    _write(root / "train", _long_clips(corpus, LONG_SECONDS, seed=0), "long")
    ((wav, text),) = _long_clips(corpus, [180.0], seed=1)
    _write(root / "test", [(wav, text)], "longtest")
    sf.write(root / "three_minutes.wav", wav, A.SAMPLE_RATE)
    return root


def _torchrun(corpus: Path, run: Path, long_data: Path) -> subprocess.CompletedProcess[str]:
    overrides = train_overrides(
        corpus,
        run,
        f"data.sources.asr.shards={long_data / 'train'}",  # the ASR source holds the long clips (sources are
        "data.sources.asr.weight=3.0",  # fixed by the data config); srwt, lid, sec and mna stay short
        "data.max_batch_seconds=200",  # a batch of long clips stays one clip: memory follows the audio budget
        "data.batch_size=2",
        "trainer.max_steps=2",
        "trainer.save_every=1",
        "trainer.keep_last=5",
    )
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "qwenaudio_train.pretrain", *overrides],
        capture_output=True, text=True, cwd=REPO, env=subprocess_env(OMP_NUM_THREADS="1"), timeout=300,
    )  # fmt: skip


def test_two_ranks_train_and_resume_exactly_on_long_clips(corpus: Path, long_data: Path, tmp_path: Path) -> None:
    from qwenaudio_train.metrics import read_metrics

    run = tmp_path / "run"
    r = _torchrun(corpus, run, long_data)
    assert r.returncode == 0, r.stderr[-3000:]
    records = read_metrics(run)
    assert [rec["step"] for rec in records] == [1, 2]
    assert all(rec.get("data_bad", 0) == 0 for rec in records), records[-1]
    assert any("loss/asr" in rec for rec in records)
    long_seen = 0
    for rank in (0, 1):  # the long clips were trained on, and no sample of any source was bad
        state = json.loads((run / "checkpoints" / "step_00000002" / f"data_state_rank{rank}.json").read_text())
        for slot in state["slots"].values():
            assert not slot["counts"]["bad"], slot["counts"]["bad"]
            long_seen += slot["counts"]["good"].get("asr", 0)
    assert long_seen > 0, state

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    rollback(resumed, 1)
    r = _torchrun(corpus, resumed, long_data)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [rec["loss"] for rec in read_metrics(resumed)] == [rec["loss"] for rec in records]  # bit-exact

    # The eval runner and qwenaudio-chat's loop answer on a 3-minute recording with the trained model.
    from qwenaudio_train.chat.inference import _prompt_example
    from qwenaudio_train.chat.render import Conversation, Message, canonicalize
    from qwenaudio_train.cli.chat import load_chat_model, repl
    from qwenaudio_train.data.processing import SampleProcessor
    from qwenaudio_train.eval.runner import EvalConfig, generate_predictions

    model, tok = load_chat_model(run)
    n = A.audio_positions(A.samples_for_duration(180.0))
    assert n == 6 * 750
    records = generate_predictions(model, tok, str(long_data / "test"), EvalConfig(batch_size=1, max_new_tokens=2),
                                   model.audio.n_mels)  # fmt: skip
    assert len(records) == 1 and isinstance(records[0]["prediction"], str)
    raw = next(iter(iter_shard(str(next((long_data / "test").glob("*.tar"))))))
    assert SampleProcessor(tok, train=False)(raw).input_ids.count(tok.audio_pad_id) == n

    wav = long_data / "three_minutes.wav"
    stdout, stderr = io.StringIO(), io.StringIO()
    answered = repl(model, tok, io.StringIO(f":audio {wav}\nwhat is said?\n:quit\n"), stdout, stderr, "You are a helpful assistant.", 2)  # fmt: skip
    assert answered == 1, stderr.getvalue()
    assert "attached Audio 1:" in stdout.getvalue() and "(180.00 s)" in stdout.getvalue()
    assert "assistant: " in stdout.getvalue() and not stderr.getvalue()
    msgs, refs = canonicalize(Conversation(messages=[Message("user", f"Audio 1:<audio>{wav}</audio>\nhi")]), None)
    prompt = _prompt_example(tok, msgs, refs, model.audio.n_mels)
    assert prompt.input_ids.count(tok.audio_pad_id) == n  # the prompt's span is the windowed length
    assert prompt.mels[0].shape[1] == 18000
