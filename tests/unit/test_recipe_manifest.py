"""The generic manifest recipe: a user's JSONL/CSV manifest over wav/flac clips at any rate -> task shards that pass
check_shards, split by column or by key hash; every manifest error names its row and column; and a mixture config
over the output yields training batches and eval prompts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from data_recipes.manifest import ManifestError, ManifestRecipe, cli, convert_manifest
from qwenaudio_train.config import DataConfig
from qwenaudio_train.data.loader import BatchingConfig, BatchStream
from qwenaudio_train.data.mixture import build_sources
from qwenaudio_train.data.processing import IGNORE_INDEX, SampleProcessor
from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.data.shards import check_shards, iter_shard, read_manifest
from qwenaudio_train.data.stream import expand_shards, iter_split
from qwenaudio_train.tasks import get_task
from qwenaudio_train.tokenizer import train_bpe_tokenizer
from tests.unit import recipe_fixtures as fx

WORDS = [{"word": "hello", "start": 0.1, "end": 0.4}, {"word": "world", "start": 0.45, "end": 0.9}]


def make_clips(root: Path) -> None:
    """Clips in the formats and rates users have: 8-kHz wav, 16-kHz flac, 44.1-kHz stereo wav."""
    fx.write_audio(root / "clips" / "a.wav", seconds=1.0, sr=8000, freq=300)
    fx.write_audio(root / "clips" / "b.flac", seconds=1.2, sr=16000, freq=500)
    fx.write_audio(root / "clips" / "c.wav", seconds=0.8, sr=44100, channels=2, freq=700)
    fx.write_audio(root / "clips" / "d.flac", seconds=0.6, sr=44100, freq=900)
    fx.write_audio(root / "clips" / "e.ogg", seconds=0.7, sr=22050, freq=600, fmt="OGG", subtype="VORBIS")


def rows() -> list[dict[str, Any]]:
    return [
        {"audio": "clips/a.wav", "task": "asr", "target": "hello world", "text_language": "en", "split": "train"},
        {"audio": "clips/b.flac", "task": "asr", "target": "good morning", "text_language": "en", "split": "train"},
        {"audio": "clips/a.wav", "task": "srwt", "words": WORDS, "text_language": "en", "split": "train"},
        {"audio": "clips/c.wav", "task": "sec", "target": ["dog bark", "car horn"], "text_language": "en"},
        {"audio": "clips/d.flac", "task": "aqa", "target": "yes", "text_language": "en", "question": "Is it loud?"},
        {"audio": "clips/e.ogg", "task": "asr", "target": "see you", "text_language": "en", "split": "dev"},
        {"audio": "clips/c.wav", "task": "asr", "target": "thank you", "text_language": "en", "split": "test"},
        {"audio": "clips/d.flac", "task": "lid", "audio_language": "de", "text_language": "en", "split": "test"},
        {"audio": "clips/a.wav", "task": "asr", "target": "good night", "text_language": "en", "key": "spk1/utt7"},
    ]


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def write_csv(path: Path, items: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(dict.fromkeys(k for r in items for k in r))
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in items:
            w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    return path


def read_set(set_dir: Path) -> dict[str, SampleMeta]:
    report = check_shards(set_dir)  # 16 kHz mono, duration matches, words inside the clip
    assert report["ok"], report["problems"]
    return {
        s["__key__"]: SampleMeta.from_json(s["json"], s["__key__"])
        for t in sorted(set_dir.glob("*.tar"))
        for s in iter_shard(t)
    }


# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_manifest_converts_to_task_shards(tmp_path: Path, fmt: str) -> None:
    make_clips(tmp_path)
    items = rows()
    # CSV: words (and meta) are JSON strings, a multi-label target is written as "a, b"
    if fmt == "csv":
        items[3]["target"] = "dog bark, car horn"
    manifest = (write_jsonl if fmt == "jsonl" else write_csv)(tmp_path / f"mine.{fmt}", items)
    summary = convert_manifest(manifest, tmp_path / "out", valid_fraction=0.0, test_fraction=0.0)

    assert summary["corpus"] == "mine"
    assert {s: set(t) for s, t in summary["subsets"].items()} == {
        "train": {"asr", "srwt", "sec", "aqa"},
        "valid": {"asr"},
        "test": {"asr", "lid"},
    }
    asr = read_set(tmp_path / "out/train/asr")
    assert {k: m.target for k, m in asr.items()} == {
        "mine-clips_a": "hello world",
        "mine-clips_b": "good morning",
        "mine-spk1_utt7": "good night",  # explicit key, made dot/slash-free
    }
    assert all(m.source == "mine/train" and m.audio_language == "en" for m in asr.values())
    assert abs(asr["mine-clips_a"].duration - 1.0) < 1e-3  # 8 kHz resampled, length kept
    srwt = read_set(tmp_path / "out/train/srwt")["mine-clips_a"]
    assert srwt.target == "hello world" and [w.word for w in srwt.words or []] == ["hello", "world"]
    assert get_task("srwt").format_target(srwt) == "<|0.00|><|sil|><|0.10|>hello<|0.40|><|sil|><|0.45|>world<|0.90|>"
    sec = read_set(tmp_path / "out/train/sec")["mine-clips_c"]  # the stereo 44.1-kHz clip
    assert sec.target == "dog bark, car horn" and sec.meta["labels"] == ["dog bark", "car horn"]
    assert abs(sec.duration - 0.8) < 1e-3 and sec.audio_language is None
    aqa = read_set(tmp_path / "out/train/aqa")["mine-clips_d"]
    assert aqa.meta == {"question": "Is it loud?"}  # an extra column is a task field
    assert "Is it loud?" in get_task("aqa").prompt(aqa)
    assert set(read_set(tmp_path / "out/valid/asr")) == {"mine-clips_e"}  # "dev" means valid
    lid = read_set(tmp_path / "out/test/lid")["mine-clips_d"]
    assert get_task("lid").format_target(lid) == "german" and lid.meta["language"] == "de"
    assert read_manifest(tmp_path / "out/train/asr")["skipped"] == {"long": 0, "bad": 0, "missing": 0}
    assert json.loads((tmp_path / "out/manifest.json").read_text())["totals"]["samples"] == len(items)


def test_hash_split_is_deterministic_and_keeps_a_clip_in_one_split(tmp_path: Path) -> None:
    fx.write_audio(tmp_path / "x.wav")
    items = []
    for i in range(300):
        items.append({"audio": "x.wav", "task": "asr", "target": "a b", "text_language": "en", "key": f"u{i}"})
        items.append({"audio": "x.wav", "task": "ks", "target": "yes", "text_language": "en", "key": f"u{i}"})

    def splits(recipe: ManifestRecipe) -> dict[tuple[str, str], str]:
        root = recipe.root
        return {
            (it.task, it.key): s
            for s in recipe.default_subsets(root)
            for t in recipe.tasks_of(s)
            for it in recipe.items(root, s, t)
        }

    a = splits(ManifestRecipe(write_jsonl(tmp_path / "m.jsonl", items), valid_fraction=0.1, test_fraction=0.2))
    b = splits(ManifestRecipe(write_jsonl(tmp_path / "m.jsonl", items[::-1]), valid_fraction=0.1, test_fraction=0.2))
    assert a == b  # a function of the key, not of the row order
    assert all(a[("asr", f"m-u{i}")] == a[("ks", f"m-u{i}")] for i in range(300))  # one clip, one split
    counts = {s: sum(1 for (task, _), v in a.items() if task == "asr" and v == s) for s in ("train", "valid", "test")}
    assert 10 <= counts["valid"] <= 55 and 35 <= counts["test"] <= 90 and counts["train"] > 150, counts


def test_a_clip_repeated_in_one_task_gets_numbered_keys(tmp_path: Path) -> None:
    fx.write_audio(tmp_path / "x.wav")
    caps = [{"audio": "x.wav", "task": "aac", "target": t, "text_language": "en", "split": "train"} for t in "ab"]
    summary = convert_manifest(write_jsonl(tmp_path / "m.jsonl", caps), tmp_path / "out")
    assert summary["totals"]["samples"] == 2
    assert set(read_set(tmp_path / "out/train/aac")) == {"m-x", "m-x-2"}
    dup = [dict(c, key="same") for c in caps]
    with pytest.raises(ManifestError, match=r"row 2 \(line 2\), column 'key'.*already used for task 'aac' by row 1"):
        ManifestRecipe(write_jsonl(tmp_path / "d.jsonl", dup))


# --------------------------------------------------------------------------------------------------------------
def test_row_errors_name_row_and_column(tmp_path: Path) -> None:
    make_clips(tmp_path)
    ok = {"audio": "clips/a.wav", "task": "asr", "target": "hi", "text_language": "en"}
    lines = [
        json.dumps({k: v for k, v in ok.items() if k != "task"}),
        json.dumps(dict(ok, task="asx")),
        "{not json",
        json.dumps(dict(ok, task="srwt", target="")),
        json.dumps(dict(ok, task="sgc", target="man")),
        json.dumps(dict(ok, text_language="xx")),
        json.dumps(dict(ok, task="srwt", words=[{"word": "late", "start": 0.5, "end": 0.2}])),
        json.dumps(dict(ok, meta=[1])),
        json.dumps(dict(ok, split="holdout")),
        json.dumps(dict(ok, target="")),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(ok), ""] + lines) + "\n", encoding="utf-8")  # a blank line is skipped
    with pytest.raises(ManifestError) as e:
        ManifestRecipe(path)
    msg = str(e.value)
    assert "10 row(s) cannot be converted" in msg
    for expected in (
        "row 2 (line 3), column 'task': missing or empty",
        "row 3 (line 4), column 'task': unknown task 'asx'; valid tasks: asr, s2tt",
        "row 4 (line 5): not valid JSON",
        "row 5 (line 6): task 'srwt' cannot use this row",
        "row 6 (line 7): task 'sgc' cannot use this row",
        "not one of male, female",
        "row 7 (line 8): task 'asr' cannot use this row: unknown language 'xx'",
        "row 8 (line 9), column 'words': word 0 'late' [0.5, 0.2]",
        "row 9 (line 10), column 'meta': must be a JSON object",
        "row 10 (line 11), column 'split': 'holdout' is not one of",
        "row 11 (line 12), column 'target': missing or empty (task 'asr' trains on it)",
    ):
        assert expected in msg, (expected, msg)


def test_csv_errors_name_row_and_column(tmp_path: Path) -> None:
    make_clips(tmp_path)
    with pytest.raises(ManifestError, match=r"header line lacks column\(s\) \['task'\]"):
        ManifestRecipe(write_csv(tmp_path / "h.csv", [{"audio": "clips/a.wav", "target": "x", "text_language": "en"}]))
    path = tmp_path / "m.csv"
    path.write_text(
        "audio,task,target,text_language,words,meta\n"
        'clips/a.wav,srwt,,en,"[{""word"": ""hi"", ""start"": 0.1",\n'
        "clips/a.wav,asr,hi,en,,{oops}\n"
        "clips/a.wav,asr,hi,en,,,surplus\n"
        'clips/a.wav,srwt,,en,"[{""word"": ""hi"", ""start"": 0.1, ""end"": 3.5}]",\n',
        encoding="utf-8",
    )
    with pytest.raises(ManifestError) as e:
        ManifestRecipe(path)
    msg = str(e.value)
    assert "m.csv row 1 (line 2), column 'words': not valid JSON" in msg
    assert "m.csv row 2 (line 3), column 'meta': not valid JSON" in msg
    assert "m.csv row 3 (line 4): 7 fields, the header has 6" in msg
    path.write_text(
        "audio,task,target,text_language,words\n"
        'clips/a.wav,srwt,,en,"[{""word"": ""hi"", ""start"": 0.1, ""end"": 3.5}]"\n',
        encoding="utf-8",
    )
    with pytest.raises(
        ManifestError, match=r"row 1 \(line 2\), column 'words': word 'hi' ends at 3.5 s, after the end"
    ):
        ManifestRecipe(path)
    with pytest.raises(ManifestError, match=r"\.jsonl or \.csv"):
        ManifestRecipe(tmp_path / "m.tsv")


def test_bad_audio_is_counted_listed_and_stops_the_run_past_the_threshold(tmp_path: Path) -> None:
    make_clips(tmp_path)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    good = [
        {
            "audio": "clips/b.flac",
            "task": "asr",
            "target": f"t {i}",
            "text_language": "en",
            "key": f"k{i}",
            "split": "train",
        }
        for i in range(28)
    ]
    bad = [
        {"audio": "clips/missing.wav", "task": "asr", "target": "x", "text_language": "en", "split": "train"},
        {"audio": "clips/broken.wav", "task": "asr", "target": "y", "text_language": "en", "split": "train"},
    ]
    # 2 of 30 rows: under 10 % -> converted, the two counted as bad and listed with row and column
    summary = convert_manifest(write_jsonl(tmp_path / "m.jsonl", good + bad), tmp_path / "out", max_bad_fraction=0.1)
    stats = summary["subsets"]["train"]["asr"]
    assert stats["samples"] == 28 and stats["skipped_bad"] == 2
    listed = {b["key"]: b["message"] for b in summary["bad"]}
    assert (
        "m.jsonl row 29 (line 29), column 'audio' (clips/missing.wav): audio file not found"
        in listed["m-clips_missing"]
    )
    assert "row 30 (line 30), column 'audio' (clips/broken.wav): not a readable audio file" in listed["m-clips_broken"]
    # the default 5 % is exceeded: nothing is written, both rows are named
    with pytest.raises(ManifestError, match=r"2 of 30 rows have missing or unreadable audio") as e:
        convert_manifest(tmp_path / "m.jsonl", tmp_path / "out2")
    assert "row 29 (line 29), column 'audio': audio file not found" in str(e.value)
    assert "row 30 (line 30), column 'audio': not a readable audio file" in str(e.value)
    assert not (tmp_path / "out2").exists()


def test_long_clips_follow_the_common_policy(tmp_path: Path) -> None:
    fx.write_audio(tmp_path / "long.flac", seconds=31.0, sr=16000)
    items = [
        {"audio": "long.flac", "task": "asr", "target": "a long talk", "text_language": "en", "split": "train"},
        {"audio": "long.flac", "task": "asc", "target": "park", "text_language": "en", "split": "train"},
    ]
    manifest = write_jsonl(tmp_path / "m.jsonl", items)
    skipped = convert_manifest(manifest, tmp_path / "skip")
    assert skipped["totals"]["samples"] == 0 and skipped["totals"]["skipped_long"] == 2
    windows = convert_manifest(manifest, tmp_path / "win", long_audio="windows")
    assert windows["subsets"]["train"]["asr"]["skipped_long"] == 1  # a transcript cannot follow a cut
    scenes = read_set(tmp_path / "win/train/asc")
    assert {k: m.target for k, m in scenes.items()} == {"m-long-w000": "park", "m-long-w001": "park"}


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_clips(tmp_path)
    (tmp_path / "lists").mkdir()
    manifest = write_jsonl(tmp_path / "lists" / "m.jsonl", rows())
    out = tmp_path / "out"
    argv = ["--manifest", str(manifest), "--out", str(out), "--audio-root", str(tmp_path)]
    assert cli(argv + ["--valid-fraction", "0", "--test-fraction", "0", "--name", "my_data"]) == 0
    printed = capsys.readouterr().out
    assert "my_data/train asr: 3 samples" in printed and "total: 9 samples" in printed
    assert cli(["--manifest", str(manifest), "--out", str(out)]) == 2  # clips are not beside the manifest
    assert "column 'audio': audio file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli(["--help"])
    assert e.value.code == 0 and "text_language" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------------------
def test_the_output_trains_through_a_mixture_config(tmp_path: Path) -> None:
    """A user's mixture file over the recipe's output: composed as Hydra places a data/ group file, validated by the
    data schema, streamed into training batches (loss on the targets only) and eval prompts on the test split."""
    make_clips(tmp_path)
    out = tmp_path / "out"
    convert_manifest(write_jsonl(tmp_path / "m.jsonl", rows()), out, valid_fraction=0.0, test_fraction=0.0)
    mixture = tmp_path / "conf" / "data" / "my_mixture.yaml"
    mixture.parent.mkdir(parents=True)
    mixture.write_text(
        f"root: {out}\n"
        "sources:\n"
        '  asr: {shards: "${data.root}/train/asr", weight: 2.0}\n'
        '  srwt: {shards: "${data.root}/train/srwt", weight: 1.0}\n'
        '  sec: {shards: "${data.root}/train/sec", weight: 1.0}\n'
        '  aqa: {shards: "${data.root}/train/aqa", weight: 1.0}\n'
        "valid: ${data.root}/valid/*/*.tar\n"
        "test: ${data.root}/test/*/*.tar\n"
        "batch_size: 4\n"
        "chunk_batches: 1\n",
        encoding="utf-8",
    )
    schema = OmegaConf.create({"data": OmegaConf.structured(DataConfig)})
    composed = OmegaConf.merge(schema, {"data": OmegaConf.load(mixture)})  # a typo'd key would fail here
    data = OmegaConf.to_object(composed.data)
    assert isinstance(data, DataConfig)
    sources = build_sources(data.sources, data.weighting, data.temperature)
    assert sorted(s.name for s in sources) == ["aqa", "asr", "sec", "srwt"]

    texts = [r.get("target") or "" for r in rows()] + ["hello world", "is it loud?"]
    tok = train_bpe_tokenizer([str(t) for t in texts] * 20, tmp_path / "tok", vocab_size=300)
    processor = SampleProcessor(tok, train=True, spec_augment=False)
    stream = BatchStream(
        sources, processor, tok.eod_id, BatchingConfig(batch_size=data.batch_size, chunk_batches=1), seed=0
    )
    seen: set[str] = set()
    for _ in range(4):
        batch = next(stream)
        assert batch["input_ids"].shape == batch["labels"].shape and batch["audio_features"].shape[0] == len(
            batch["keys"]
        )
        for row, task in zip(batch["labels"], batch["tasks"]):
            trained = [int(t) for t in row if t != IGNORE_INDEX]
            assert trained and trained[-1] == tok.eod_id, task
        seen.update(batch["tasks"])
    assert seen == {"asr", "srwt", "sec", "aqa"}
    assert sum(stream.counts["bad"].values()) == 0

    evaluator = SampleProcessor(tok, train=False)
    assert data.test is not None
    examples = [evaluator(raw) for raw in iter_split(expand_shards(data.test))]
    assert {(e.task, e.reference) for e in examples} == {("asr", "thank you"), ("lid", "german")}
