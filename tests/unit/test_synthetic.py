"""Offline speech synthesis (data_recipes/tts.py) and the synthetic corpus (data_recipes/synthetic.py)."""

from __future__ import annotations

import glob
import os
import re

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from data_recipes import synthetic as S  # noqa: E402
from data_recipes.tts import VOICES, EspeakSynth, Speaker  # noqa: E402
from qwenaudio_train.audio import SAMPLE_RATE  # noqa: E402
from qwenaudio_train.data.schema import SampleMeta  # noqa: E402
from qwenaudio_train.data.shards import check_shards, format_report, iter_shard, read_manifest  # noqa: E402
from qwenaudio_train.tags import LANGUAGES  # noqa: E402


@pytest.fixture(scope="module")
def synth() -> EspeakSynth:
    return EspeakSynth()


@pytest.mark.parametrize("lang", list(VOICES))
def test_every_language_speaks_with_ordered_word_timings(synth, lang):
    grammar = S.GRAMMARS[lang]
    text = grammar.sentence(np.random.default_rng(0))
    wav, words = synth.synth_speaker(text + grammar.full_stop, Speaker(lang, "f2", 160, 40))
    duration = len(wav) / SAMPLE_RATE
    assert wav.dtype == np.float32 and 0.5 < duration < 8 and np.abs(wav).max() > 0.05
    assert words, f"{lang}: no word events"
    prev = 0.0
    for w in words:
        assert prev <= w.start <= w.end <= duration, (lang, words)
        prev = w.start
    assert words[-1].end > words[0].start
    if lang == "zh":
        assert "".join(w.word for w in words) == text  # characters (a dictionary word may share one event)
    if lang == "en":
        assert [w.word for w in words] == text.split()


def test_synthesis_does_not_depend_on_history(synth):
    a, wa = synth.synth("the small red cat sees the dog.", "en-us+m3", 170, 45)
    synth.synth("die kleine katze sieht die frau.", "de+klatt", 120, 80)
    b, wb = synth.synth("the small red cat sees the dog.", "en-us+m3", 170, 45)
    assert np.array_equal(a, b) and wa == wb


def test_bad_voice_and_empty_text_are_clear_errors(synth):
    with pytest.raises(ValueError, match="no voice 'xx'"):
        synth.synth("hello", "xx")
    with pytest.raises(ValueError, match="empty"):
        synth.synth("  ", "en-us")
    with pytest.raises(ValueError, match="no espeak voice for language"):
        Speaker("pt").voice


def test_unloadable_library_is_a_clear_error(monkeypatch):
    import espeakng_loader

    from data_recipes import tts

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(tts.EspeakUnavailable, match="cannot load libespeak-ng from '/nonexistent"):
        tts._Library()


def _all_samples(root: str) -> dict[str, list[dict]]:
    out = {}
    for split in S.SPLITS:
        tars = sorted(glob.glob(os.path.join(root, split, "**", "*.tar"), recursive=True))
        out[split] = [s for t in tars for s in iter_shard(t)]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[str, str]:
    """The tiny preset built twice with the same seed, in one process and in two worker processes."""
    a = str(tmp_path_factory.mktemp("tiny_a"))
    b = str(tmp_path_factory.mktemp("tiny_b"))
    S.build_corpus(a, S.PRESETS["tiny"], seed=0, workers=1, log=lambda _: None)
    S.build_corpus(b, S.PRESETS["tiny"], seed=0, workers=2, log=lambda _: None)
    return a, b


def test_tiny_is_deterministic(tiny):
    a, b = tiny
    files_a = sorted(os.path.relpath(p, a) for p in glob.glob(os.path.join(a, "**", "*"), recursive=True)
                     if os.path.isfile(p))
    files_b = sorted(os.path.relpath(p, b) for p in glob.glob(os.path.join(b, "**", "*"), recursive=True)
                     if os.path.isfile(p))
    assert files_a == files_b
    assert "train/asr/shard-000000.tar" in files_a and "valid/shard-000000.tar" in files_a
    for rel in files_a:
        with open(os.path.join(a, rel), "rb") as fa, open(os.path.join(b, rel), "rb") as fb:
            assert fa.read() == fb.read(), rel


def test_tiny_covers_every_task_and_language(tiny):
    root = tiny[0]
    samples = _all_samples(root)
    for split, raws in samples.items():
        metas = [SampleMeta.from_json(r["json"], r["__key__"]) for r in raws]
        assert len(metas) == 5 * S.PRESETS["tiny"].of(split)
        assert {m.task for m in metas} == set(S.TASKS)
        assert {m.audio_language for m in metas if m.task == "lid"} == set(LANGUAGES)
        assert {m.audio_language for m in metas if m.task == "asr"} == set(S.ASR_LANGUAGES)
        for r, m in zip(raws, metas):
            key = r["__key__"]
            assert "." not in key and key.startswith(f"{m.task}-") and f"-{split}-" in key
            assert re.search(r"-\d{6}$", key)
            assert 0.9 < m.duration < 6.0
            if m.task == "lid":
                assert m.target == LANGUAGES[m.audio_language] and m.text_language == "en"
                assert m.meta["language"] == m.audio_language
            elif m.task in ("asr", "srwt"):
                assert m.text_language == m.audio_language and m.words
                joiner = S.GRAMMARS[m.audio_language].joiner
                assert joiner.join(w.word for w in m.words) == m.target
                assert m.target == m.target.lower() and not re.search(r"[.,!?;:]", m.target)
                assert all(0 <= w.start <= w.end <= m.duration for w in m.words)
            elif m.task == "sec":
                assert m.target in S.SEC_CLASSES and m.audio_language is None
            else:
                assert m.target == m.meta["instrument"] in S.INSTRUMENTS
                assert m.meta["velocity"] in S.VELOCITIES and 36 <= m.meta["pitch"] <= 84
                assert set(m.meta["sonic"]) <= set(S.SONIC_QUALITIES)
            assert m.source == (S.NUMPY_SOURCE if m.task in ("sec", "mna") else S.SPEECH_SOURCE)

    report = check_shards(sorted(glob.glob(os.path.join(root, "*", "**", "*.tar"), recursive=True)))
    assert report["ok"], format_report(report)
    assert report["good"] == 5 * sum(S.PRESETS["tiny"].of(s) for s in S.SPLITS)

    manifest = read_manifest(os.path.join(root, "train", "asr"))
    assert manifest["totals"]["samples"] == S.PRESETS["tiny"].train and len(manifest["shards"]) >= 4
    with open(os.path.join(root, "text.txt"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == report["good"]


def test_tiny_splits_are_disjoint(tiny):
    samples = _all_samples(tiny[0])
    audio = {split: {r["flac"] for r in raws} for split, raws in samples.items()}
    sentences = {}
    for split, raws in samples.items():
        metas = [SampleMeta.from_json(r["json"]) for r in raws]
        sentences[split] = {(m.audio_language, m.meta.get("text", m.target)) for m in metas
                            if m.task in ("asr", "srwt", "lid")}
    for x, y in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not audio[x] & audio[y]
        assert not sentences[x] & sentences[y]


def test_cli_sizes(tmp_path):
    assert S.main(["--out", str(tmp_path), "--train", "1", "--valid", "0", "--test", "1", "--workers", "1",
                   "--asr-languages", "en"]) == 0
    top = read_manifest(tmp_path)
    assert top["sizes"] == {"train": 1, "valid": 0, "test": 1}
    assert set(top["splits"]["train"]) == set(S.TASKS)
    assert top["splits"]["train"]["asr"] == {"en": {"samples": 1, "hours": pytest.approx(
        top["splits"]["train"]["asr"]["en"]["hours"])}}
    with pytest.raises(SystemExit):
        S.main(["--out", str(tmp_path), "--asr-languages", "xx"])
