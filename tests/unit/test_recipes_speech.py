"""Speech corpus recipes: each converts a tiny fixture built in the corpus's real layout; the shards pass
check_shards; keys, targets, languages and sources are as expected; a missing layout file is named in the error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from data_recipes import (
    aishell1,
    aishell2,
    commonvoice,
    covost2,
    librispeech,
    meld,
    slurp,
    speech_commands,
    vocalsound,
    voxceleb1,
)
from data_recipes.common import LayoutError, RawItem, Recipe, convert, main, make_key, read_delimited
from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.data.shards import check_shards, iter_shard, read_manifest
from qwenaudio_train.tasks import get_task
from tests.unit import recipe_fixtures as fx


def read_set(set_dir: Path) -> dict[str, SampleMeta]:
    """key -> metadata of a shard set, after check_shards found no problem."""
    report = check_shards(set_dir)
    assert report["ok"], report["problems"]
    out = {}
    for tar in sorted(set_dir.glob("*.tar")):
        for s in iter_shard(tar):
            out[s["__key__"]] = SampleMeta.from_json(s["json"], s["__key__"])
    assert len(out) == report["good"]
    return out


def assert_common(
    metas: dict[str, SampleMeta], task: str, source: str, lang: str | None, text_lang: str | None = None
) -> None:
    for key, m in metas.items():
        assert m.task == task and m.source == source, key
        assert m.audio_language == lang and m.text_language == (text_lang or lang), key
        assert "." not in key
        get_task(task).prompt(m)  # the registry accepts the metadata (languages are tags, fields present)


# --------------------------------------------------------------------------------------------------------------
def test_librispeech(tmp_path: Path) -> None:
    expected = fx.build_librispeech(tmp_path / "raw")
    expected["dev-clean"]["librispeech-84-121123-0001"] = "A VERY LONG UTTERANCE"  # 31 s: kept whole (issue 13)
    summary = convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "out")
    assert set(summary["subsets"]) == {"dev-clean", "test-other"}  # the subsets present, in the corpus's order
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "asr")
        assert {k: m.target for k, m in metas.items()} == want
        assert_common(metas, "asr", f"librispeech/{subset}", "en")
    m = metas["librispeech-1688-142285-0000"]
    assert m.meta == {"speaker": "1688", "chapter": "142285"} and abs(m.duration - 0.3) < 1e-3
    # The 31-s utterance is kept whole (issue 13: its transcript follows the whole utterance), never cut ...
    dev = summary["subsets"]["dev-clean"]["asr"]
    assert dev["skipped_long"] == 0 and dev["samples"] == 4
    long_ones = [m for m in read_set(tmp_path / "out" / "dev-clean" / "asr").values() if m.duration > 30.0]
    assert len(long_ones) == 1 and abs(long_ones[0].duration - 31.0) < 1e-3
    # ... and --max-seconds caps what is kept: 30 skips it and counts it, as before long audio.
    capped = convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "capped", max_seconds=30.0)
    assert capped["subsets"]["dev-clean"]["asr"]["skipped_long"] == 1
    assert capped["subsets"]["dev-clean"]["asr"]["samples"] == 3
    assert read_manifest(tmp_path / "capped" / "dev-clean" / "asr")["skipped"]["long"] == 1
    assert json.loads((tmp_path / "capped" / "manifest.json").read_text())["totals"]["skipped_long"] == 1
    with pytest.raises(ValueError, match="max_seconds must be > 0"):
        convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "none", max_seconds=0)


def test_librispeech_missing_files_are_named(tmp_path: Path) -> None:
    fx.build_librispeech(tmp_path / "raw", long_utt=False)
    trans = tmp_path / "raw/LibriSpeech/test-other/1688/142285/1688-142285.trans.txt"
    trans.unlink()
    with pytest.raises(LayoutError, match="1688-142285.trans.txt"):
        convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "out", subsets=["test-other"])
    (tmp_path / "raw/LibriSpeech/dev-clean/84/121123/84-121123-0000.flac").unlink()
    with pytest.raises(LayoutError, match="84-121123-0000.flac"):
        convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "out", subsets=["dev-clean"])
    with pytest.raises(LayoutError, match="dev-other"):
        convert(librispeech.RECIPE, tmp_path / "raw", tmp_path / "out", subsets=["dev-other"])


def test_aishell1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = fx.build_aishell1(tmp_path)
    convert(aishell1.RECIPE, tmp_path, tmp_path / "out")
    for split, want in expected.items():
        metas = read_set(tmp_path / "out" / split / "asr")
        assert {k: m.target for k, m in metas.items()} == want
        assert_common(metas, "asr", f"aishell1/{split}", "zh")
    assert metas["aishell1-BAC009S0764W0121"].meta == {"speaker": "S0764"}
    assert "1 wav files have no transcript" in capsys.readouterr().err
    (tmp_path / "data_aishell/transcript/aishell_transcript_v0.8.txt").unlink()
    with pytest.raises(LayoutError, match="aishell_transcript_v0.8.txt"):
        convert(aishell1.RECIPE, tmp_path, tmp_path / "out")


def test_aishell1_unextracted_speaker_archives_are_explained(tmp_path: Path) -> None:
    fx.write_text(tmp_path / "data_aishell/transcript/aishell_transcript_v0.8.txt", "")
    fx.write_text(tmp_path / "data_aishell/wav/S0002.tar.gz", "")
    with pytest.raises(LayoutError, match=r"unextracted wav/\*\.tar\.gz.*data_aishell/wav/train"):
        convert(aishell1.RECIPE, tmp_path / "data_aishell", tmp_path / "out", subsets=["train"])


def test_aishell2(tmp_path: Path) -> None:
    expected = fx.build_aishell2(tmp_path)
    summary = convert(aishell2.RECIPE, tmp_path, tmp_path / "out")
    assert set(summary["subsets"]) == {"train", "test-ios"}
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "asr")
        assert {k: m.target for k, m in metas.items()} == want
        assert_common(metas, "asr", f"aishell2/{subset}", "zh")
    (tmp_path / "AISHELL-2/iOS/data/trans.txt").unlink()
    with pytest.raises(LayoutError, match=r"AISHELL-2/iOS/data/trans\.txt"):
        convert(aishell2.RECIPE, tmp_path, tmp_path / "out", subsets=["train"])


def test_commonvoice(tmp_path: Path) -> None:
    expected = fx.build_commonvoice(tmp_path)
    summary = convert(commonvoice.RECIPE, tmp_path, tmp_path / "out")
    # validated.tsv is the superset of the splits: only on request.
    assert sorted(summary["subsets"]) == ["en/dev", "en/test", "en/train", "zh-CN/dev", "zh-CN/test", "zh-CN/train"]
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "asr")
        assert {k: (m.target, m.meta["client_id"]) for k, m in metas.items()} == want
        lang = "zh" if subset.startswith("zh-CN") else "en"
        assert_common(metas, "asr", f"commonvoice/{subset}", lang)
        assert all(abs(m.duration - 0.5) < 0.06 for m in metas.values())  # MP3 48 kHz -> 16 kHz FLAC
    assert metas["commonvoice-common_voice_zh-CN_202"].meta["locale"] == "zh-CN"
    (tmp_path / "en/clips/common_voice_en_103.mp3").unlink()
    with pytest.raises(LayoutError, match="common_voice_en_103.mp3"):
        convert(commonvoice.RECIPE, tmp_path, tmp_path / "out", subsets=["en/test"])
    with pytest.raises(LayoutError, match=r"en/validated\.tsv|ko/train\.tsv"):
        convert(commonvoice.RECIPE, tmp_path, tmp_path / "out", subsets=["ko/train"])


def test_covost2(tmp_path: Path) -> None:
    expected = fx.build_covost2(tmp_path)
    summary = convert(covost2.RECIPE, tmp_path, tmp_path / "out")
    assert sorted(summary["subsets"]) == [
        "en_de/dev",
        "en_de/test",
        "en_de/train",
        "fr_en/dev",
        "fr_en/test",
        "fr_en/train",
    ]
    assert summary["subsets"]["en_de/dev"]["s2tt"]["samples"] == 0
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "s2tt")
        assert {k: (m.target, m.meta["transcript"]) for k, m in metas.items()} == want
        src, tgt = subset.split("/")[0].split("_")
        assert_common(metas, "s2tt", f"covost2/{subset}", src, tgt)
    # Backslash escapes of get_covost_splits.py are undone.
    assert read_set(tmp_path / "out/fr_en/train/s2tt")["covost2-fr_en-common_voice_fr_1"].target == 'He said "hello".'
    (tmp_path / "fr/covost_v2.fr_en.test.tsv").unlink()
    with pytest.raises(LayoutError, match=r"covost_v2\.fr_en\.test\.tsv"):
        convert(covost2.RECIPE, tmp_path, tmp_path / "out", subsets=["fr_en/test"])
    (tmp_path / "en/validated.tsv").unlink()
    with pytest.raises(LayoutError, match="validated.tsv"):
        convert(covost2.RECIPE, tmp_path, tmp_path / "out", subsets=["en_de/test"])


def test_voxceleb1(tmp_path: Path) -> None:
    expected = fx.build_voxceleb1(tmp_path)
    summary = convert(voxceleb1.RECIPE, tmp_path, tmp_path / "out")
    assert {s: list(t) for s, t in summary["subsets"].items()} == {
        "train": ["sgc"],
        "dev": ["sgc"],
        "test": ["sgc"],
        "veri_test": ["sv"],
    }
    for subset in ("train", "dev", "test"):
        metas = read_set(tmp_path / "out" / subset / "sgc")
        assert {k: m.target for k, m in metas.items()} == expected[subset]
        assert_common(metas, "sgc", f"voxceleb1/{subset}", "en")
    metas = read_set(tmp_path / "out/veri_test/sv")
    assert {k: (m.target, m.meta["speakers"]) for k, m in metas.items()} == expected["veri_test"]
    assert_common(metas, "sv", "voxceleb1/veri_test", "en")
    # Two 0.4-s utterances with 1 s of silence between them.
    assert all(abs(m.duration - 1.8) < 1e-3 for m in metas.values())
    (tmp_path / "wav/id10300/ZK3F2j8Gn0c/00003.wav").unlink()
    with pytest.raises(LayoutError, match=r"id10300/ZK3F2j8Gn0c/00003\.wav"):
        convert(voxceleb1.RECIPE, tmp_path, tmp_path / "out", subsets=["veri_test"])
    (tmp_path / "vox1_meta.csv").unlink()
    with pytest.raises(LayoutError, match="vox1_meta.csv"):
        convert(voxceleb1.RECIPE, tmp_path, tmp_path / "out", subsets=["dev"])


def test_voxceleb1_pair_audio_is_the_two_utterances_with_a_gap(tmp_path: Path) -> None:
    fx.build_voxceleb1(tmp_path)
    a, b = tmp_path / "wav/id10270/x6uYqmx31kE/00001.wav", tmp_path / "wav/id10300/ZK3F2j8Gn0c/00003.wav"
    wav = voxceleb1.concat_pair(str(a), str(b))
    n = int(0.4 * 16000)
    assert wav.shape == (2 * n + 16000,)
    assert not wav[n : n + 16000].any() and np.abs(wav[:n]).max() > 0.1 and np.abs(wav[-n:]).max() > 0.1


def test_speech_commands(tmp_path: Path) -> None:
    expected = fx.build_speech_commands(tmp_path)
    convert(speech_commands.RECIPE, tmp_path, tmp_path / "out")
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "ks")
        assert {k: m.target for k, m in metas.items()} == want  # train excludes the lists and _background_noise_
        assert_common(metas, "ks", f"speech_commands/{subset}", "en")
    assert metas["speechcommands-right-bb05582b_nohash_3"].meta == {"speaker": "bb05582b"}
    (tmp_path / "testing_list.txt").unlink()
    with pytest.raises(LayoutError, match="testing_list.txt"):
        convert(speech_commands.RECIPE, tmp_path, tmp_path / "out", subsets=["train"])


def test_slurp(tmp_path: Path) -> None:
    expected = fx.build_slurp(tmp_path)
    summary = convert(slurp.RECIPE, tmp_path, tmp_path / "out")
    assert {s: sorted(t) for s, t in summary["subsets"].items()} == {
        s: ["ic", "ser", "sf"] for s in ("train", "devel", "test")
    }
    for subset, want in expected.items():
        ic = read_set(tmp_path / "out" / subset / "ic")
        sf_ = read_set(tmp_path / "out" / subset / "sf")
        ser = read_set(tmp_path / "out" / subset / "ser")
        assert set(ic) == set(sf_) == set(ser) == want["ids"]
        for task, metas in (("ic", ic), ("sf", sf_), ("ser", ser)):
            assert_common(metas, task, f"slurp/{subset}", "en")
        for k in want["ids"]:
            assert ic[k].target == want["intent"] and ic[k].meta["transcript"] == want["sentence"]
            assert sf_[k].target == ser[k].target == want["sentence"]
            assert sf_[k].meta == {"slots": want["slots"]} and ser[k].meta == {"entities": want["slots"]}
    assert slurp.parse_annotation("set [time : seven am] for [date : monday]") == [
        {"type": "time", "value": "seven am"},
        {"type": "date", "value": "monday"},
    ]
    (tmp_path / "audio/slurp_real/audio-1504192882-headset.flac").unlink()
    with pytest.raises(LayoutError, match="audio-1504192882-headset.flac"):
        convert(slurp.RECIPE, tmp_path, tmp_path / "out", subsets=["devel"])
    with pytest.raises(LayoutError, match="slurp_synth"):
        convert(slurp.RECIPE, tmp_path, tmp_path / "out", subsets=["train_synthetic"])


def test_meld(tmp_path: Path) -> None:
    expected = fx.build_meld(tmp_path)
    summary = convert(meld.RECIPE, tmp_path, tmp_path / "out")
    for split, want in expected.items():
        metas = read_set(tmp_path / "out" / split / "er")
        assert {k: m.target for k, m in metas.items()} == want
        assert_common(metas, "er", f"meld/{split}", "en")
    # dev dia110_utt7 has neither video nor audio (as in the release): skipped and counted.
    assert summary["subsets"]["dev"]["er"]["skipped_missing"] == 1
    assert summary["totals"]["skipped_missing"] == 1
    m = read_set(tmp_path / "out/train/er")["meld-train-dia0-utt1"]
    assert m.meta == {"sentiment": "positive", "speaker": "Monica", "transcript": '"Oh my God!"'}
    # A video without its extracted audio: the error names the expected wav and says how to extract it.
    (tmp_path / "output_repeated_splits_test/dia3_utt2.wav").unlink()
    with pytest.raises(LayoutError, match=r"dia3_utt2\.wav.*ffmpeg"):
        convert(meld.RECIPE, tmp_path, tmp_path / "out", subsets=["test"])
    (tmp_path / "dev_sent_emo.csv").unlink()
    with pytest.raises(LayoutError, match="dev_sent_emo.csv"):
        convert(meld.RECIPE, tmp_path, tmp_path / "out", subsets=["dev"])


def test_vocalsound(tmp_path: Path) -> None:
    expected = fx.build_vocalsound(tmp_path)
    summary = convert(vocalsound.RECIPE, tmp_path, tmp_path / "out")
    assert list(summary["subsets"]) == ["train", "valid", "test"]
    for subset, want in expected.items():
        metas = read_set(tmp_path / "out" / subset / "vsc")
        assert {k: m.target for k, m in metas.items()} == want
        assert_common(metas, "vsc", f"vocalsound/{subset}", "en")
    assert metas["vocalsound-m0083_0_sniff"].meta == {"speaker": "m0083", "gender": "male"}
    assert convert(vocalsound.RECIPE, tmp_path, tmp_path / "all", subsets=["all"])["totals"]["samples"] == 6
    (tmp_path / "datafiles/te.json").unlink()
    with pytest.raises(LayoutError, match=r"datafiles/te\.json"):
        convert(vocalsound.RECIPE, tmp_path, tmp_path / "out", subsets=["test"])


# --------------------------------------------------------------------------------------------------------------
# common.py: policies and the CLI
# --------------------------------------------------------------------------------------------------------------
class _Toy(Recipe):
    name = "toy"
    layout = "<root>/anything"
    subsets = ("a", "b")
    tasks = ("vsc",)

    def __init__(self, items: list[RawItem]) -> None:
        self._items = items

    def items(self, root: Path, subset: str, task: str):  # type: ignore[override]
        yield from self._items


def _toy_item(key: str, seconds: float, long_audio: Any = "skip", audio: Any = "tone") -> RawItem:
    wav = fx.tone(seconds) if isinstance(audio, str) else audio
    return RawItem(
        key=key,
        audio=wav,
        task="vsc",
        target="cough",
        text_language="en",
        audio_language="en",
        meta={"n": 1},
        long_audio=long_audio,
    )


def test_long_audio_policies_bad_audio_and_max_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rebase(item: RawItem, i: int, start: float, end: float) -> RawItem | None:
        return None if i == 1 else RawItem(**{**item.__dict__, "meta": {"window": [start, end]}})

    items = [
        _toy_item("skipme", 31.0),
        _toy_item("win", 65.0, "windows"),
        _toy_item("reb", 70.0, rebase),
        _toy_item("bad", 0, audio=b"not audio"),
        _toy_item("gone", 0, audio=None),
        _toy_item("ok", 0.5),
        _toy_item("keep", 65.0, "keep"),
        _toy_item("toolong", 70.0, "keep"),
    ]
    summary = convert(_Toy(items), tmp_path, tmp_path / "out", subsets=["a"], max_seconds=66.0)
    metas = read_set(tmp_path / "out/a/vsc")
    # keep: whole up to max_seconds (the 70-s one is over it: skipped as long)
    assert round(metas["keep"].duration, 3) == 65.0 and metas["keep"].target == "cough"
    # 65 s -> 30 + 30 + 5; the rebase callable keeps windows 0 and 2 of 30 + 30 + 10 with their offsets.
    assert sorted(metas) == ["keep", "ok", "reb-w000", "reb-w002", "win-w000", "win-w001", "win-w002"]
    assert [round(metas[f"win-w00{i}"].duration, 3) for i in range(3)] == [30.0, 30.0, 5.0]
    assert metas["reb-w002"].meta == {"window": [60.0, 70.0]}
    assert metas["win-w001"].target == "cough" and metas["win-w001"].meta == {"n": 1}
    s = summary["subsets"]["a"]["vsc"]
    assert (s["samples"], s["skipped_long"], s["skipped_bad"], s["skipped_missing"]) == (7, 2, 1, 1)
    assert summary["bad"][0]["key"] == "bad"
    assert "skipping undecodable clip bad:" in capsys.readouterr().err
    capped = convert(_Toy(items), tmp_path, tmp_path / "capped", subsets=["a"], max_samples=2)
    assert capped["totals"]["samples"] == 2 and sorted(read_set(tmp_path / "capped/a/vsc")) == ["win-w000", "win-w001"]


def test_workers_give_the_same_shards(tmp_path: Path) -> None:
    fx.build_speech_commands(tmp_path / "raw")
    convert(speech_commands.RECIPE, tmp_path / "raw", tmp_path / "one", subsets=["train"])
    convert(speech_commands.RECIPE, tmp_path / "raw", tmp_path / "two", subsets=["train"], workers=2, max_count=2)
    one, two = read_set(tmp_path / "one/train/ks"), read_set(tmp_path / "two/train/ks")
    assert list(one) == list(two) and len(list((tmp_path / "two/train/ks").glob("*.tar"))) == 2


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fx.build_vocalsound(tmp_path / "raw")
    assert (
        main(
            vocalsound.RECIPE,
            [
                "--root",
                str(tmp_path / "raw"),
                "--out",
                str(tmp_path / "out"),
                "--subsets",
                "valid",
                "test",
                "--max-samples",
                "1",
            ],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "vocalsound/valid vsc: 1 samples" in out and "total: 2 samples" in out
    assert main(vocalsound.RECIPE, ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "audio_16k/<speaker>_<n>_<label>.wav" in err  # names the path and the layout
    assert (
        main(vocalsound.RECIPE, ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--subsets", "dev"])
        == 2
    )
    assert "unknown subset" in capsys.readouterr().err


def test_helpers(tmp_path: Path) -> None:
    assert make_key("covost2", "zh-CN_en", "a.b c/d") == "covost2-zh-CN_en-a_b_c_d"
    tsv = fx.write_text(tmp_path / "x.tsv", 'path\tsentence\na.mp3\tHe said "hi\n')
    assert read_delimited(tsv) == [{"path": "a.mp3", "sentence": 'He said "hi'}]
