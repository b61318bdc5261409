"""End-to-end training on the tiny corpus: pinned losses, exact resume, 2 ranks under torchrun, eval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qwenaudio_train.config import compose
from qwenaudio_train.metrics import read_metrics
from tests.integration.conftest import rollback, train_overrides

REPO = Path(__file__).resolve().parents[2]

# Losses of the 6-step debug run on the tiny corpus (1 rank, ZeRO-2, fp32), measured on a 2-core CPU.
PINNED_LOSSES = [
    8.245650192786908,
    8.243884705660635,
    8.230995053150615,
    8.149540088794849,
    8.106827369103065,
    7.993603013966181,
]


def _train(overrides: list[str]) -> list[float]:
    from qwenaudio_train.trainer import Trainer

    cfg = compose("pretrain", overrides)
    Trainer(cfg).train()
    return [r["loss"] for r in read_metrics(Path(cfg.run_dir))]


@pytest.fixture(scope="module")
def trained_run(corpus, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "debug"
    _train(train_overrides(corpus, run, "trainer.keep_last=5"))
    return run


def test_tiny_run_loss_is_pinned_and_falls(trained_run):
    records = read_metrics(trained_run)
    losses = [r["loss"] for r in records]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert losses == pytest.approx(PINNED_LOSSES, rel=1e-4)
    assert losses[-1] < losses[0]
    tasks = {k.split("/", 1)[1] for r in records for k in r if k.startswith("loss/")}
    assert tasks == {"asr", "srwt", "lid", "sec", "mna"}  # per-task losses are logged
    ckpts = sorted(p.name for p in (trained_run / "checkpoints").iterdir() if p.is_dir())
    assert ckpts == ["step_00000003", "step_00000006"]
    assert (trained_run / "checkpoints" / "latest").read_text() == "step_00000006"
    state = json.loads((trained_run / "checkpoints" / "step_00000006" / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["config"]["trainer"]["max_steps"] == 6


def test_resume_from_mid_run_checkpoint_equals_uninterrupted(trained_run, tmp_path):
    full = [r["loss"] for r in read_metrics(trained_run)]
    run = tmp_path / "resumed"
    shutil.copytree(trained_run, run)
    rollback(run, 3)
    cfg_run = json.loads((run / "checkpoints" / "step_00000003" / "trainer_state.json").read_text())["config"]
    losses = _train(
        [f"data.root={cfg_run['data']['root']}", "experiment=debug", f"run_dir={run}", "trainer.keep_last=5"]
    )
    assert losses == full  # steps 1-3 kept from before the "crash", 4-6 recomputed after resume: bit-exact


def test_eval_on_trained_checkpoint(trained_run, tmp_path):
    from omegaconf import OmegaConf

    from qwenaudio_train.evaluate import run as run_eval

    cfg = OmegaConf.merge(
        OmegaConf.load(REPO / "configs" / "eval.yaml"),
        {"checkpoint": str(trained_run), "split": "test", "out_dir": str(tmp_path / "eval"), "max_new_tokens": 24},
    )
    cfg.pop("hydra")
    out = run_eval(cfg)
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    groups = set(report["results"])
    assert {"lid", "sec", "mna"} <= groups and any(g.startswith("asr/") for g in groups)
    assert any(g.startswith("srwt/") for g in groups)
    for r in report["results"].values():
        assert r["n"] > 0 and r["headline"] in r
    assert set(report["baseline"]) == groups
    assert len(report["predictions"]) == sum(r["n"] for r in report["results"].values())
    assert "| task |" in (tmp_path / "eval" / "eval.md").read_text()
    assert set(out["results"]) == groups


def test_periodic_eval_is_logged_with_the_training_metrics(corpus, tmp_path):
    run = tmp_path / "with_eval"
    _train(
        train_overrides(
            corpus,
            run,
            "trainer.max_steps=4",
            "trainer.eval_every=2",
            "trainer.eval_samples=10",
            "trainer.eval_max_new_tokens=8",
        )
    )
    evals = read_metrics(run, kind="eval")
    assert [r["step"] for r in evals] == [2, 4]
    keys = {k for r in evals for k in r if k.startswith("eval/")}
    assert keys and all(k.count("/") >= 2 for k in keys)
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3, 4]  # training records unaffected


def test_eval_of_an_exported_model_on_a_release_eval_jsonl(trained_run, tmp_path):
    """The release's eval format in, per-source results with the release's headline beside ours, and a plot."""
    import soundfile as sf
    from omegaconf import OmegaConf

    from qwenaudio_train.audio import load_audio
    from qwenaudio_train.data.processing import parse_meta
    from qwenaudio_train.data.stream import expand_shards, iter_split
    from qwenaudio_train.evaluate import run as run_eval
    from qwenaudio_train.runs import export

    exported = export(trained_run, tmp_path / "exported")
    data = tmp_path / "release"
    (data / "audio").mkdir(parents=True)
    lines = []
    test_split = json.loads((trained_run / "checkpoints" / "step_00000006" / "trainer_state.json").read_text())
    for raw in iter_split(expand_shards(test_split["config"]["data"]["test"])):
        meta = parse_meta(raw)
        if meta.task == "asr" and meta.text_language == "en":
            wav = data / "audio" / f"{raw['__key__']}.wav"
            sf.write(wav, load_audio(raw["flac"]), 16000)
            lines.append({"audio": f"audio/{wav.name}", "gt": meta.target, "source": "librispeech_test_clean"})
    assert lines
    jsonl = data / "librispeech_eval.jsonl"
    jsonl.write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    cfg = OmegaConf.merge(
        OmegaConf.load(REPO / "configs" / "eval.yaml"),
        {"checkpoint": str(exported), "split": str(jsonl), "out_dir": str(tmp_path / "eval"), "max_new_tokens": 16},
    )
    cfg.pop("hydra")
    run_eval(cfg)
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    group = next(g for g in report["results"] if "@" in g)
    assert group.startswith("asr@") and report["results"][group]["release"] == 0.020
    assert report["results"][group]["n"] == len(lines)
    assert (tmp_path / "eval" / "eval.png").stat().st_size > 1000
    assert list((tmp_path / "eval" / "by_source").glob("*.json"))
    assert "| release |" in (tmp_path / "eval" / "eval.md").read_text()


def test_a_new_run_starts_from_an_exported_model(trained_run, tmp_path):
    from qwenaudio_train.runs import export

    exported = export(trained_run, tmp_path / "exported")
    losses = _train(
        train_overrides(
            Path(
                json.loads((trained_run / "checkpoints" / "step_00000006" / "trainer_state.json").read_text())[
                    "config"
                ]["data"]["root"]
            ),
            tmp_path / "stage2",
            f"model.init_from={exported}",
            "trainer.max_steps=2",
        )
    )
    assert losses[0] < PINNED_LOSSES[0] - 0.1  # starts where the exported run ended, not from scratch


def test_eval_sharded_over_two_ranks_equals_one_rank(trained_run, tmp_path):
    import subprocess
    import sys

    from tests.integration.conftest import subprocess_env

    outs = {}
    for nproc in (1, 2):
        out = tmp_path / f"eval{nproc}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(nproc),
                "-m",
                "qwenaudio_train.evaluate",
                f"checkpoint={trained_run}",
                f"out_dir={out}",
                "max_new_tokens=8",
                "baseline=none",
            ],
            check=True,
            cwd=REPO,
            env=subprocess_env(),
            timeout=600,
        )
        report = json.loads((out / "eval.json").read_text())
        outs[nproc] = {p["key"]: p["prediction"] for p in report["predictions"]}
    assert outs[1] == outs[2] and len(outs[1]) > 0  # every sample once, same predictions
