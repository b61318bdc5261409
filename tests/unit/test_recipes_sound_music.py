"""Sound and music corpus recipes, the generic `datasets` recipe and the release's eval jsonl: each converts a tiny
raw corpus in its documented layout (built by `recipe_fixtures_sm`), the shards pass `check_shards`, targets,
labels and splits are the corpus's, and a missing file is an error that names it."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from data_recipes import (
    audiocaps,
    clotho,
    clotho_aqa,
    cochlscene,
    esc50,
    fsd50k,
    gtzan,
    hf_datasets,
    musiccaps,
    nsynth,
    release_eval_jsonl,
    tut2017,
)
from data_recipes.common import LayoutError, convert
from qwenaudio_train.audio import SAMPLE_RATE
from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.data.shards import check_shards, format_report, iter_shard
from qwenaudio_train.tasks import TASKS, get_task
from tests.unit import recipe_fixtures_sm as fx


def read_set(out: Path, subset: str, task: str) -> dict[str, dict[str, Any]]:
    """Every sample of OUT/<subset>/<task>/, checked first: key -> metadata dict (+ "_seconds" of the audio)."""
    set_dir = out / subset / task
    report = check_shards(set_dir)
    assert report["ok"], format_report(report)
    samples: dict[str, dict[str, Any]] = {}
    for tar in sorted(set_dir.glob("*.tar")):
        for s in iter_shard(tar):
            meta = json.loads(s["json"])
            with sf.SoundFile(io.BytesIO(s["flac"])) as f:
                assert (f.samplerate, f.channels) == (SAMPLE_RATE, 1)
                meta["_seconds"] = f.frames / f.samplerate
            samples[s["__key__"]] = meta
    # Every registered task must accept the metadata (tags + target build); new tasks (mgr, mc, mic) may be absent.
    for key, meta in samples.items():
        if meta["task"] in TASKS:
            m = SampleMeta.from_dict({k: v for k, v in meta.items() if not k.startswith("_")}, key)
            assert get_task(m.task).example(m)
    return samples


def by(samples: dict[str, dict[str, Any]], field: str) -> dict[Any, dict[str, Any]]:
    return {s["meta"][field]: s for s in samples.values()}


# ---------------------------------------------------------------------------------------------------------------
# Clotho / Clotho-AQA / AudioCaps
# ---------------------------------------------------------------------------------------------------------------
def test_clotho_one_sample_per_clip_with_all_captions(tmp_path):
    expected = fx.build_clotho(tmp_path / "raw")
    summary = convert(clotho.Clotho(), tmp_path / "raw", tmp_path / "out")
    assert summary["totals"]["samples"] == 4 and summary["totals"]["skipped_long"] == 0
    for subset, clips in expected.items():
        got = by(read_set(tmp_path / "out", subset, "aac"), "file_name")
        assert set(got) == set(clips)
        for name, exp in clips.items():
            s = got[name]
            assert s["target"] == exp["captions"][0] and s["meta"]["captions"] == exp["captions"]
            assert s["source"] == f"clotho/{subset}" and s["audio_language"] is None and s["text_language"] == "en"
            assert s["meta"]["caption_style"] == "clotho"
            assert s["_seconds"] == pytest.approx(exp["duration"], abs=1e-3)
    keys = set(read_set(tmp_path / "out", "development", "aac"))
    assert keys == {"clotho-development-Santa_Motor", "clotho-development-Rain_on_roof_2"}


def test_clotho_each_caption_mode_via_cli(tmp_path, capsys):
    expected = fx.build_clotho(tmp_path / "raw")
    rc = clotho.cli(
        [
            "--root",
            str(tmp_path / "raw"),
            "--out",
            str(tmp_path / "out"),
            "--caption-mode",
            "each",
            "--subsets",
            "validation",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    got = read_set(tmp_path / "out", "validation", "aac")
    caps = expected["validation"]["birds chirping.wav"]["captions"]
    assert {k: s["target"] for k, s in got.items()} == {
        f"clotho-validation-birds_chirping-c{j}": caps[j - 1] for j in range(1, 6)
    }
    assert not (tmp_path / "out" / "development").exists()
    assert "--caption-mode" in _help(clotho.cli, capsys)


def _help(cli, capsys) -> str:
    with pytest.raises(SystemExit):
        cli(["--help"])
    return capsys.readouterr().out


def test_clotho_missing_clip_and_csv_are_named(tmp_path):
    fx.build_clotho(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "development" / "Santa Motor.wav")
    with pytest.raises(LayoutError, match="Santa Motor.wav"):
        convert(clotho.Clotho(), tmp_path / "raw", tmp_path / "out", subsets=["development"])
    os.remove(tmp_path / "raw" / "clotho_captions_evaluation.csv")
    with pytest.raises(LayoutError, match="clotho_captions_evaluation.csv"):
        convert(clotho.Clotho(), tmp_path / "raw", tmp_path / "out", subsets=["evaluation"])


def test_clotho_aqa_majority_and_each(tmp_path):
    expected = fx.build_clotho_aqa(tmp_path / "raw")
    convert(clotho_aqa.ClothoAQA(), tmp_path / "raw", tmp_path / "out")
    for subset, questions in expected.items():
        got = read_set(tmp_path / "out", subset, "aqa")
        assert sorted(
            (s["meta"]["file_name"], s["meta"]["question"], s["target"], tuple(s["meta"]["answers"]))
            for s in got.values()
        ) == sorted((q["file"], q["question"], q["answer"], tuple(q["answers"])) for q in questions)
        assert all(s["source"] == f"clotho_aqa/{subset}" for s in got.values())
    assert "clotho_aqa-train-dog_bark_1-q2" in read_set(tmp_path / "out", "train", "aqa")
    convert(clotho_aqa.ClothoAQA("each"), tmp_path / "raw", tmp_path / "each", subsets=["train"])
    got = read_set(tmp_path / "each", "train", "aqa")
    assert len(got) == 9 and got["clotho_aqa-train-dog_bark_1-q1-a3"]["target"] == "no"
    assert clotho_aqa.majority(["two", "three", "two", "three"]) == "two"


def test_clotho_aqa_missing_audio_is_named(tmp_path):
    fx.build_clotho_aqa(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "audio_files" / "sea.wav")
    with pytest.raises(LayoutError, match="sea.wav"):
        convert(clotho_aqa.ClothoAQA(), tmp_path / "raw", tmp_path / "out", subsets=["val"])


def test_audiocaps_groups_captions_and_finds_download_names(tmp_path):
    expected = fx.build_audiocaps(tmp_path / "raw")
    convert(audiocaps.AudioCaps(), tmp_path / "raw", tmp_path / "out")
    for subset, clips in expected.items():
        got = read_set(tmp_path / "out", subset, "aac")
        assert {
            (s["meta"]["youtube_id"], int(s["meta"]["start_time"])): s["meta"]["captions"] for s in got.values()
        } == clips
        assert all(
            s["target"] == s["meta"]["captions"][0] and s["meta"]["caption_style"] == "audiocaps" for s in got.values()
        )
    train = read_set(tmp_path / "out", "train", "aac")
    assert set(train) == {"audiocaps-train-r1nicOVtvkQ-130", "audiocaps-train-UDGBjjwyaqE-20"}
    assert train["audiocaps-train-r1nicOVtvkQ-130"]["_seconds"] == pytest.approx(0.5, abs=1e-3)  # 48 kHz stereo


def test_audiocaps_missing_clip_is_named_or_skipped(tmp_path):
    fx.build_audiocaps(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "audio" / "train" / "58146.flac")
    with pytest.raises(LayoutError, match="UDGBjjwyaqE_20"):
        convert(audiocaps.AudioCaps(), tmp_path / "raw", tmp_path / "out", subsets=["train"])
    summary = convert(audiocaps.AudioCaps(skip_missing=True), tmp_path / "raw", tmp_path / "out", subsets=["train"])
    assert summary["subsets"]["train"]["aac"]["samples"] == 1
    assert summary["subsets"]["train"]["aac"]["skipped_missing"] == 1


def test_load_region_cuts_only_full_recordings(tmp_path):
    full = fx.write_audio(tmp_path / "full.wav", 3.0, 16000)
    assert clotho.load_region(str(full), 1.0, 1.5).shape[0] == 8000  # 3 s > 0.5 s + 1 s: the region is cut
    assert clotho.load_region(str(full), 1.0, 3.0).shape[0] == 48000  # 3 s <= 2 s + 1 s: already the clip


# ---------------------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------------------
def test_cochlscene_scene_folders(tmp_path):
    expected = fx.build_cochlscene(tmp_path / "raw")
    summary = convert(cochlscene.CochlScene(), tmp_path / "raw", tmp_path / "out")
    assert list(summary["subsets"]) == ["train", "val", "test"]
    for subset, split in (("train", "Train"), ("val", "Val"), ("test", "Test")):
        got = read_set(tmp_path / "out", subset, "asc")
        assert {s["meta"]["file_name"]: s["target"] for s in got.values()} == expected[split]
        assert all(s["source"] == f"cochlscene/{subset}" for s in got.values())
    assert "cochlscene-train-CrowdedIndoor-CrowdedIndoor_train_0001" in read_set(tmp_path / "out", "train", "asc")


def test_cochlscene_default_subsets_and_missing_split(tmp_path):
    fx.build_cochlscene(tmp_path / "raw")
    shutil.rmtree(tmp_path / "raw" / "Val")
    summary = convert(cochlscene.CochlScene(), tmp_path / "raw", tmp_path / "out")  # default: the splits present
    assert list(summary["subsets"]) == ["train", "test"]
    with pytest.raises(LayoutError, match="Val"):
        convert(cochlscene.CochlScene(), tmp_path / "raw", tmp_path / "out", subsets=["val"])
    os.remove(tmp_path / "raw" / "Test" / "SubwayStation" / "SubwayStation_test_0000.wav")
    (tmp_path / "raw" / "Test" / "SubwayStation" / "notes.txt").write_text("not audio")
    assert (
        convert(cochlscene.CochlScene(), tmp_path / "raw", tmp_path / "out", subsets=["test"])["totals"]["samples"] == 0
    )


def test_tut2017_folds_and_evaluation(tmp_path):
    expected = fx.build_tut2017(tmp_path / "raw")
    summary = convert(tut2017.TUT2017(), tmp_path / "raw", tmp_path / "out")
    assert list(summary["subsets"]) == ["development", "evaluation"]  # the default when the evaluation set exists
    convert(tut2017.TUT2017(), tmp_path / "raw", tmp_path / "out", subsets=["fold1_train", "fold1_evaluate"])
    for subset, labels in expected.items():
        got = read_set(tmp_path / "out", subset, "asc")
        assert {k.removeprefix(f"tut2017-{subset}-"): s["target"] for k, s in got.items()} == labels
    dev = read_set(tmp_path / "out", "development", "asc")
    assert len(dev) == 4
    s = dev["tut2017-development-c034_10_20"]
    assert s["meta"] == {"scene": "cafe/restaurant", "file_name": "audio/c034_10_20.wav", "recording": "c034"}
    assert s["_seconds"] == pytest.approx(0.5, abs=1e-3)  # binaural 24-bit -> mono 16 kHz


def test_tut2017_missing_clip_is_named_with_its_list(tmp_path):
    fx.build_tut2017(tmp_path / "raw")
    os.remove(tmp_path / "raw" / tut2017.DEV / "audio" / "d050_30_40.wav")
    with pytest.raises(LayoutError, match=r"fold1_evaluate\.txt:1.*d050_30_40\.wav"):
        convert(tut2017.TUT2017(), tmp_path / "raw", tmp_path / "out", subsets=["fold1_evaluate"])


# ---------------------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------------------
def test_esc50_folds_and_labels(tmp_path):
    expected = fx.build_esc50(tmp_path / "raw")
    summary = convert(esc50.ESC50(), tmp_path / "raw", tmp_path / "out")
    assert summary["subsets"]["fold3"]["sec"]["samples"] == 0
    for subset, labels in expected.items():
        got = read_set(tmp_path / "out", subset, "sec")
        assert {k.removeprefix("esc50-"): s["target"] for k, s in got.items()} == labels
        assert all(s["meta"]["labels"] == [s["target"]] for s in got.values())
    s = read_set(tmp_path / "out", "fold2", "sec")["esc50-2-102414-C-17"]
    assert s["meta"]["class_id"] == 17 and s["meta"]["fold"] == 2 and s["meta"]["esc10"] is False


def test_esc50_missing_audio_is_named(tmp_path):
    fx.build_esc50(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "audio" / "5-9032-A-0.wav")
    with pytest.raises(LayoutError, match="5-9032-A-0.wav"):
        convert(esc50.ESC50(), tmp_path / "raw", tmp_path / "out", subsets=["fold5"])


def test_fsd50k_multilabel_and_splits(tmp_path):
    expected = fx.build_fsd50k(tmp_path / "raw")
    convert(fsd50k.FSD50K(), tmp_path / "raw", tmp_path / "out")
    for subset, clips in expected.items():
        got = read_set(tmp_path / "out", subset, "sec")
        assert {k.removeprefix(f"fsd50k-{subset}-"): s["meta"]["labels"] for k, s in got.items()} == clips
        assert all(s["target"] == ", ".join(s["meta"]["labels"]) for s in got.values())
    s = read_set(tmp_path / "out", "eval", "sec")["fsd50k-eval-37199"]
    assert s["target"] == "Bark, Dog, Animal" and s["meta"]["mids"] == ["/m/05tny_", "/m/0bt9lr", "/m/0jbk"]


def test_fsd50k_missing_audio_and_ground_truth_are_named(tmp_path):
    fx.build_fsd50k(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "FSD50K.dev_audio" / "5000.wav")
    with pytest.raises(LayoutError, match="5000.wav"):
        convert(fsd50k.FSD50K(), tmp_path / "raw", tmp_path / "out", subsets=["val"])
    os.remove(tmp_path / "raw" / "FSD50K.ground_truth" / "eval.csv")
    with pytest.raises(LayoutError, match="eval.csv"):
        convert(fsd50k.FSD50K(), tmp_path / "raw", tmp_path / "out", subsets=["eval"])


# ---------------------------------------------------------------------------------------------------------------
# Music
# ---------------------------------------------------------------------------------------------------------------
def test_nsynth_note_analysis_and_instrument_classification(tmp_path):
    expected = fx.build_nsynth(tmp_path / "raw")
    summary = convert(nsynth.NSynth(("mna", "mic")), tmp_path / "raw", tmp_path / "out")
    assert set(summary["tasks"]) == {"mna", "mic"}
    for subset, notes in expected.items():
        mna = read_set(tmp_path / "out", subset, "mna")
        mic = read_set(tmp_path / "out", subset, "mic")
        assert set(mna) == set(mic) == set(notes)
        for note, exp in notes.items():
            m = mna[note]["meta"]
            assert (m["pitch"], m["velocity"], m["instrument"], m["sonic"], m["instrument_source"]) == (
                exp["pitch"],
                exp["velocity"],
                exp["instrument"],
                exp["sonic"],
                exp["source"],
            )
            assert mna[note]["target"] == exp["instrument"]
            assert mic[note]["target"] == exp["instrument"].replace("_", " ")
            assert mic[note]["meta"]["labels"] == [mic[note]["target"]]
    # The release's note-analysis target comes out of the task formatter.
    s = read_set(tmp_path / "out", "train", "mna")["keyboard_acoustic_004-060-127"]
    meta = SampleMeta.from_dict({k: v for k, v in s.items() if not k.startswith("_")})
    assert get_task("mna").format_target(meta) == (
        "<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_127|><|instrument|>keyboard<|sonic|>bright, percussive"
    )
    convert(nsynth.NSynth(), tmp_path / "raw", tmp_path / "default")
    assert sorted(os.listdir(tmp_path / "default" / "train")) == ["mna"]


def test_nsynth_missing_note_is_named(tmp_path):
    fx.build_nsynth(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "nsynth-test" / "audio" / "synth_lead_000-084-025.wav")
    with pytest.raises(LayoutError, match="synth_lead_000-084-025.wav"):
        convert(nsynth.NSynth(), tmp_path / "raw", tmp_path / "out", subsets=["test"])


def test_gtzan_genres_and_long_clip_windows(tmp_path):
    expected = fx.build_gtzan(tmp_path / "raw")
    summary = convert(gtzan.GTZAN(), tmp_path / "raw", tmp_path / "out")
    got = read_set(tmp_path / "out", "all", "mgr")
    assert {k: s["target"] for k, s in got.items()} == {
        "gtzan-blues-00000": "blues",
        "gtzan-hiphop-00042": "hiphop",
        "gtzan-jazz-00001-w000": "jazz",
        "gtzan-jazz-00001-w001": "jazz",
    }
    assert got["gtzan-jazz-00001-w000"]["_seconds"] == pytest.approx(30.0)
    assert got["gtzan-jazz-00001-w001"]["_seconds"] == pytest.approx(1.0, abs=1e-3)
    assert summary["totals"]["skipped_long"] == 0 and set(expected.values()) == {"blues", "hiphop", "jazz"}


def test_gtzan_undecodable_clip_is_counted_and_missing_folder_named(tmp_path):
    fx.build_gtzan(tmp_path / "raw")
    (tmp_path / "raw" / "genres_original" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\0\0garbage")
    summary = convert(gtzan.GTZAN(), tmp_path / "raw", tmp_path / "out")
    assert summary["totals"]["skipped_bad"] == 1 and "jazz-00054" in summary["bad"][0]["key"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="genres_original"):
        convert(gtzan.GTZAN(), tmp_path / "empty", tmp_path / "out2")


def test_musiccaps_splits_captions_and_aspects(tmp_path):
    expected = fx.build_musiccaps(tmp_path / "raw")
    rc = musiccaps.cli(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])
    assert rc == 0
    for subset, clips in expected.items():
        got = read_set(tmp_path / "out", subset, "mc")
        assert {k.removeprefix("musiccaps-"): (s["target"], s["meta"]["aspects"]) for k, s in got.items()} == {
            y: (c["caption"], c["aspects"]) for y, c in clips.items()
        }
    assert musiccaps.parse_aspects("['a', \"b's\"]") == ["a", "b's"]


def test_musiccaps_missing_clip_is_named(tmp_path, capsys):
    fx.build_musiccaps(tmp_path / "raw")
    os.remove(tmp_path / "raw" / "audio" / "-0vPFx-wRRI.wav")
    rc = musiccaps.cli(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--subsets", "train"])
    assert rc == 2 and "-0vPFx-wRRI" in capsys.readouterr().err
    rc = musiccaps.cli(
        ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--subsets", "train", "--skip-missing"]
    )
    assert rc == 0 and len(read_set(tmp_path / "out", "train", "mc")) == 1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["totals"]["skipped_missing"] == 1


# ---------------------------------------------------------------------------------------------------------------
# Generic datasets recipe
# ---------------------------------------------------------------------------------------------------------------
def _wav_bytes(seconds: float, sr: int, freq: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, fx.tone(seconds, sr, freq), sr, format="WAV")
    return buf.getvalue()


def test_hf_dataset_bytes_column(tmp_path, capsys):
    import datasets

    texts = ["hello world", "good morning", "see you"]
    d = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {
                    "audio": [_wav_bytes(0.3 + 0.1 * i, 22050, 300 + 100 * i) for i in range(2)],
                    "text": texts[:2],
                    "id": ["u1", "u2"],
                }
            ),
            "test": datasets.Dataset.from_dict(
                {"audio": [_wav_bytes(0.4, 16000, 700)], "text": texts[2:], "id": ["u3"]}
            ),
        }
    )
    d.save_to_disk(str(tmp_path / "ds"))
    rc = hf_datasets.cli(
        [
            "--root",
            str(tmp_path / "ds"),
            "--out",
            str(tmp_path / "out"),
            "--task",
            "asr",
            "--target-column",
            "text",
            "--key-column",
            "id",
            "--name",
            "mycorpus",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    train = read_set(tmp_path / "out", "train", "asr")
    assert {k: s["target"] for k, s in train.items()} == {
        "mycorpus-train-u1": "hello world",
        "mycorpus-train-u2": "good morning",
    }
    assert all(s["audio_language"] == "en" and s["source"] == "mycorpus/train" for s in train.values())
    assert train["mycorpus-train-u2"]["_seconds"] == pytest.approx(0.4, abs=1e-3)
    assert set(read_set(tmp_path / "out", "test", "asr")) == {"mycorpus-test-u3"}
    assert "--target-column" in _help(hf_datasets.cli, capsys)
    assert hf_datasets.cli(["--root", str(tmp_path / "ds"), "--out", str(tmp_path / "o2"), "--task", "asr"]) == 2


def test_hf_dataset_audio_feature_paths_arrays_and_class_labels(tmp_path):
    import datasets

    clip = fx.write_audio(tmp_path / "ds_audio" / "a.wav", 0.5, 44100, 400)
    rows = {
        "sound": [{"bytes": _wav_bytes(0.3, 8000, 300), "path": "x.wav"}, {"bytes": None, "path": str(clip)}],
        "label": [1, 0],
        "question": ["q1", "q2"],
    }
    # Built as a plain struct then cast: encoding through the Audio feature would need torchcodec.
    ds = datasets.Dataset.from_dict(rows).cast_column("sound", datasets.Audio(decode=False))
    ds = ds.cast_column("label", datasets.ClassLabel(names=["dog bark", "siren"]))
    assert isinstance(ds.features["sound"], datasets.Audio)
    ds.save_to_disk(str(tmp_path / "ds"))
    recipe = hf_datasets.HFDataset(
        str(tmp_path / "ds"), task="sec", target_column="label", audio_column="sound", meta_columns=("question=note",)
    )
    convert(recipe, tmp_path / "ds", tmp_path / "out")
    got = read_set(tmp_path / "out", "train", "sec")
    assert [(s["target"], s["meta"]["labels"], s["meta"]["note"]) for _, s in sorted(got.items())] == [
        ("siren", ["siren"], "q1"),
        ("dog bark", ["dog bark"], "q2"),
    ]
    assert got["ds-train-00000001"]["_seconds"] == pytest.approx(0.5, abs=1e-3)

    # decoded arrays (what a dataset saved after decoding holds), resampled here
    datasets.Dataset.from_dict(
        {"audio": [{"array": fx.tone(0.25, 8000).tolist(), "sampling_rate": 8000}], "caption": ["a tone"]}
    ).save_to_disk(str(tmp_path / "ds2"))
    convert(
        hf_datasets.HFDataset(str(tmp_path / "ds2"), task="aac", target_column="caption"),
        tmp_path / "ds2",
        tmp_path / "out2",
    )
    s = read_set(tmp_path / "out2", "train", "aac")["ds2-train-00000000"]
    assert s["target"] == "a tone" and s["_seconds"] == pytest.approx(0.25, abs=1e-3)


def test_hf_dataset_missing_path_and_column_are_named(tmp_path):
    import datasets

    fx.write_audio(tmp_path / "audio_root" / "clips" / "here.wav", 0.3, 16000)
    datasets.Dataset.from_dict({"path": ["clips/here.wav"], "text": ["x"]}).save_to_disk(str(tmp_path / "ok"))
    convert(
        hf_datasets.HFDataset(
            str(tmp_path / "ok"),
            task="asr",
            target_column="text",
            audio_column="path",
            audio_root=str(tmp_path / "audio_root"),
        ),
        tmp_path / "ok",
        tmp_path / "out_ok",
    )
    assert set(read_set(tmp_path / "out_ok", "train", "asr")) == {"ok-train-00000000"}

    datasets.Dataset.from_dict({"path": ["clips/nowhere.wav"], "text": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(LayoutError, match="nowhere.wav"):
        convert(
            hf_datasets.HFDataset(str(tmp_path / "ds"), task="asr", target_column="text", audio_column="path"),
            tmp_path / "ds",
            tmp_path / "out",
        )
    with pytest.raises(ValueError, match="transcript"):
        convert(
            hf_datasets.HFDataset(str(tmp_path / "ds"), task="asr", target_column="transcript", audio_column="path"),
            tmp_path / "ds",
            tmp_path / "out",
        )
    with pytest.raises(LayoutError, match="no_such_dir"):
        hf_datasets.HFDataset(str(tmp_path / "no_such_dir"), task="asr", target_column="text")


# ---------------------------------------------------------------------------------------------------------------
# The release's eval jsonl
# ---------------------------------------------------------------------------------------------------------------
def test_release_eval_jsonl_maps_sources_to_tasks(tmp_path):
    jsonl, lines = fx.build_release_jsonl(tmp_path / "data")
    recipe = release_eval_jsonl.ReleaseEvalJsonl(tmp_path / "data", [jsonl.name])
    summary = convert(recipe, tmp_path / "data", tmp_path / "out")
    assert summary["totals"]["samples"] == len(lines)
    tasks = {sub: list(t) for sub, t in summary["subsets"].items()}
    assert tasks == {
        "librispeech_test_clean": ["asr"],
        "aishell1_test": ["asr"],
        "covost2_en_de_test": ["s2tt"],
        "clotho_eval": ["aac"],
        "cochlscene_test": ["asc"],
        "tut2017_test": ["asc"],
        "meld_test": ["er"],
        "vocalsound_test": ["vsc"],
        "clothoaqa_test": ["aqa"],
        "nsynth_test": ["mna"],
        "aishell2": ["srwt"],
    }

    def one(subset: str, task: str) -> dict[str, Any]:
        (s,) = read_set(tmp_path / "out", subset, task).values()
        return s

    s = one("librispeech_test_clean", "asr")
    assert (s["target"], s["audio_language"], s["source"]) == (
        "HE HOPED THERE WOULD BE STEW",
        "en",
        "librispeech/librispeech_test_clean",
    )
    assert one("aishell1_test", "asr")["text_language"] == "zh"
    s = one("covost2_en_de_test", "s2tt")
    assert (s["audio_language"], s["text_language"], s["target"]) == ("en", "de", "Hallo Welt")
    s = one("clotho_eval", "aac")
    assert s["target"] == "a dog barks" and s["meta"]["captions"] == lines[3]["gt"]
    assert one("clothoaqa_test", "aqa")["meta"]["question"] == "Is a dog barking?"
    s = one("nsynth_test", "mna")
    assert (s["meta"]["pitch"], s["meta"]["velocity"], s["meta"]["instrument"], s["meta"]["sonic"]) == (
        60,
        100,
        "keyboard",
        ["bright", "percussive"],
    )
    s = one("aishell2", "srwt")
    assert s["target"] == "面条机" and [w["word"] for w in s["words"]] == ["面", "条", "机"]
    assert s["words"][0] == {"word": "面", "start": 0.04, "end": 0.09}
    # the task formatter rebuilds the release's gt (up to its trailing silence, which words cannot carry)
    meta = SampleMeta.from_dict({k: v for k, v in s.items() if not k.startswith("_")})
    assert s["meta"]["release_gt"] == lines[-1]["gt"]
    assert lines[-1]["gt"].startswith(get_task("srwt").format_target(meta))
    assert one("meld_test", "er")["audio_language"] == "en"


def test_release_eval_jsonl_errors_name_the_line(tmp_path, capsys):
    jsonl, lines = fx.build_release_jsonl(tmp_path / "data")
    os.remove(tmp_path / "data" / "audio" / "tut.wav")
    rc = release_eval_jsonl.cli(
        ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--subsets", "tut2017_test"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "tut.wav" in err and "eval.jsonl:6" in err
    (tmp_path / "data" / "other.jsonl").write_text(json.dumps({"audio": "a.wav", "gt": "x", "source": "mystery"}))
    with pytest.raises(ValueError, match=r"other.jsonl:1.*'mystery'.*--task"):
        release_eval_jsonl.ReleaseEvalJsonl(tmp_path / "data", ["other.jsonl"])
    recipe = release_eval_jsonl.ReleaseEvalJsonl(tmp_path / "data", ["other.jsonl"], task="sec")
    assert recipe.subsets == ("mystery",) and recipe.tasks_of("mystery") == ("sec",)


def test_every_recipe_has_a_layout_and_subsets():
    for r in (
        clotho.RECIPE,
        clotho_aqa.RECIPE,
        audiocaps.RECIPE,
        cochlscene.RECIPE,
        tut2017.RECIPE,
        nsynth.RECIPE,
        esc50.RECIPE,
        fsd50k.RECIPE,
        gtzan.RECIPE,
        musiccaps.RECIPE,
    ):
        assert r.name and r.layout.strip() and r.subsets and r.tasks
        assert all(c.isalnum() or c in "_-" for s in r.subsets for c in s)  # subsets name output folders
