"""Offline speech synthesis (data_recipes/tts.py) and the synthetic corpus (data_recipes/synthetic.py)."""

from __future__ import annotations

import collections
import glob
import hashlib
import io
import itertools
import os
import re

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("espeakng_loader")

from data_recipes import synthetic as S  # noqa: E402
from data_recipes.tts import VARIANT_GENDER, VOICES, EspeakSynth, Speaker  # noqa: E402
from qwenaudio_train.audio import SAMPLE_RATE  # noqa: E402
from qwenaudio_train.data.schema import SampleMeta  # noqa: E402
from qwenaudio_train.data.shards import check_shards, format_report, iter_shard, read_manifest  # noqa: E402
from qwenaudio_train.tags import LANGUAGES  # noqa: E402
from qwenaudio_train.tasks import TASKS as TASK_REGISTRY  # noqa: E402
from qwenaudio_train.tasks import get_task, parse_entities, parse_spans  # noqa: E402


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
        _ = Speaker("pt").voice


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
    files_a = sorted(
        os.path.relpath(p, a) for p in glob.glob(os.path.join(a, "**", "*"), recursive=True) if os.path.isfile(p)
    )
    files_b = sorted(
        os.path.relpath(p, b) for p in glob.glob(os.path.join(b, "**", "*"), recursive=True) if os.path.isfile(p)
    )
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
        sentences[split] = {
            (m.audio_language, m.meta.get("text", m.target)) for m in metas if m.task in ("asr", "srwt", "lid")
        }
    for x, y in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not audio[x] & audio[y]
        assert not sentences[x] & sentences[y]


def test_cli_sizes(tmp_path):
    assert (
        S.main(
            [
                "--out",
                str(tmp_path),
                "--train",
                "1",
                "--valid",
                "0",
                "--test",
                "1",
                "--workers",
                "1",
                "--asr-languages",
                "en",
            ]
        )
        == 0
    )
    top = read_manifest(tmp_path)
    assert top["sizes"] == {"train": 1, "valid": 0, "test": 1}
    assert set(top["splits"]["train"]) == set(S.TASKS)
    assert top["splits"]["train"]["asr"] == {
        "en": {"samples": 1, "hours": pytest.approx(top["splits"]["train"]["asr"]["en"]["hours"])}
    }
    with pytest.raises(SystemExit):
        S.main(["--out", str(tmp_path), "--asr-languages", "xx"])


# ---------------------------------------------------------------------------------------------------------------
# The tiny preset is pinned: integration tests pin training losses on it, the demo is tuned on `demo`.
# ---------------------------------------------------------------------------------------------------------------
TINY_SHA256 = {  # seed 0; computed before the full preset was added
    "test/shard-000000.tar": "33297cb85b49b0aa2cf403af83e11dc97ffd95cf3c686d59a7d8b7773cbfa8fa",
    "test/shard-000001.tar": "da7632c328d3e79f69c69e09f7cb18e157285f51df09764651347807e6a7b675",
    "train/asr/shard-000000.tar": "26822cf902565e6eaecf23fa1bbe519e7ce9b3ea2c0eca6fa594486aa25fa2c4",
    "train/asr/shard-000001.tar": "767e71e7f13f161d5aae268952c238b9e35559d484002ca84216de067e8968af",
    "train/asr/shard-000002.tar": "37245379d4503ed12307cee5db561404f04051e27b3e4f64b2b4c69719ded011",
    "train/asr/shard-000003.tar": "f4a2963f97315cbdd6fca46052b2a1abf4c6160659cacbceb5eb7c6586743cff",
    "train/lid/shard-000000.tar": "118b0cecf2f98d9d96757e1592f4cc1375ee3400398ee643419d6319bad513e6",
    "train/lid/shard-000001.tar": "ce9021be2d4cdc68c7a60249049b36799fea99f23ece9166f0cecd1a83fe1869",
    "train/lid/shard-000002.tar": "991a111c58691dfe89082479c186b7fd369291c2cfc2653889909af882ef1d32",
    "train/lid/shard-000003.tar": "24b89e3be3476368391aab12b3d31a58e7467e4f05f0858bb34f1ee3efdb7ab1",
    "train/mna/shard-000000.tar": "e820cf65938d1750935886fa26014c846787c82be1942a86858f2e903f24fb5e",
    "train/mna/shard-000001.tar": "fbb6474f80bae9676e48c08e733ab915dbeabd2fd1c8bc9002742bd5e6c8ec5f",
    "train/mna/shard-000002.tar": "684b2bf4b46c849244dfbbde38b4a835395cbce34c0f59f6a224e581e9647509",
    "train/mna/shard-000003.tar": "3c022b63a1dc9f272946db604f5b06fa17cf99e55f12727fdacc72bb9d908814",
    "train/sec/shard-000000.tar": "d70e42f965f07871c4b55a76b942b673dedaa72573a43f85a68f98649c64aaf9",
    "train/sec/shard-000001.tar": "89f5ad32a7e2102ccc2e701743cfdc4b4e7a4b52e785849e54c82e651e23ec7e",
    "train/sec/shard-000002.tar": "f86dd86c84c2fc5a9091d7567c84d429c62e05a98c6b2e5b85c50aac85b681a1",
    "train/sec/shard-000003.tar": "483104d11aaea2a9324f1fdf84ce9f62912c645b649a144fbb080e971508e00d",
    "train/srwt/shard-000000.tar": "aea1e4fe465dab7172ec6b869468bcadaadb8142d9657d39cfa255db5b50b67b",
    "train/srwt/shard-000001.tar": "d5808332457c78870c1a3fca43259268441910e5f69409710d4adf24f2f423f6",
    "train/srwt/shard-000002.tar": "f72bedd5ff2988633ced5874693c10fe84ab85e38e8dfe38607ae7b6fdfadbb3",
    "train/srwt/shard-000003.tar": "5a3134a55b7228c94ef8bd1a4fed957b501fd2c2bfc9da9525f5eb7c6748e5b6",
    "valid/shard-000000.tar": "356ff608ee8e7914b2c98a0810914b6802217f6a15b0301ca08c47ba7f90c2c9",
    "valid/shard-000001.tar": "a32defadbf0ffaa8e8ad5c0ad94c4469ae733665f1711d3793ac29d4e943edde",
    "text.txt": "d8b3698eaef098d0e9e98666c3ddef258c34557a41a6b0d00a55d11e4654cdee",
}


def test_tiny_shards_are_pinned(tiny):
    root = tiny[0]
    tars = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**", "*.tar"), recursive=True))
    assert tars == sorted(k for k in TINY_SHA256 if k.endswith(".tar"))
    for rel, digest in TINY_SHA256.items():
        with open(os.path.join(root, rel), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, f"{rel} changed: the tiny preset must not"
    assert S.PRESETS["tiny"].tasks == S.PRESETS["demo"].tasks == S.TASKS == ("asr", "srwt", "lid", "sec", "mna")


# ---------------------------------------------------------------------------------------------------------------
# Speakers for the full preset (tts.py)
# ---------------------------------------------------------------------------------------------------------------
def test_dialect_voices_sound_different(synth):
    text = {
        "en": "the young teacher calls the happy dog near the river today.",
        "es": "el gato pequeño busca el perro cerca del río.",
        "zh": "今天小猫在公园看见老师。",
    }
    waves = {
        d: synth.synth_speaker(text[lang], Speaker(lang, None, 170, 50, accent=voice))[0]
        for d, (lang, voice) in S.DIALECTS.items()
    }
    for a, b in itertools.combinations(waves, 2):
        if S.DIALECTS[a][0] == S.DIALECTS[b][0]:
            assert len(waves[a]) != len(waves[b]) or not np.array_equal(waves[a], waves[b]), (a, b)


def test_speaker_accent_and_pitch_range(synth):
    assert Speaker("en", "m3", 170, 45, accent="en-029").name == "en-029+m3-r170-p45"
    assert Speaker("en", "m3", 170, 45, pitch_range=90).name == "en-us+m3-r170-p45-g90"
    assert Speaker("en", "m3", 170, 45).name == "en-us+m3-r170-p45"  # unchanged for the first five tasks
    with pytest.raises(ValueError, match="not a voice of language 'de'"):
        Speaker("de", accent="en-029")
    flat, _ = synth.synth_speaker("the cat sees the dog.", Speaker("en", "m3", 170, 45, pitch_range=0))
    wide, _ = synth.synth_speaker("the cat sees the dog.", Speaker("en", "m3", 170, 45, pitch_range=100))
    assert not (len(flat) == len(wide) and np.array_equal(flat, wide))


def test_fill_template_rejects_values_found_elsewhere():
    rng = np.random.default_rng(0)
    assert S.fill_template("call {person}", {"person": (("al", "al"),)}, rng) is None  # "al" is inside "call"
    text, slots = S.fill_template("wake me up at {time} {date}", S.SLOT_FILLERS, rng)
    assert text.startswith("wake me up at ") and [s["type"] for s in slots] == ["time", "date"]
    assert get_task("sf").format_target(SampleMeta("sf", "en", text, 1.0, "x", "en", meta={"slots": slots}))


# ---------------------------------------------------------------------------------------------------------------
# The full preset
# ---------------------------------------------------------------------------------------------------------------
_SPEAKER_RE = re.compile(r"^(?P<voice>[^+]+)\+(?P<variant>[^-]+)-r(?P<rate>\d+)-p(?P<pitch>\d+)(?:-g(?P<range>\d+))?$")


def _speaker(name: str) -> dict:
    m = _SPEAKER_RE.match(name)
    assert m, name
    return {
        "voice": m["voice"],
        "variant": m["variant"],
        "rate": int(m["rate"]),
        "pitch": int(m["pitch"]),
        "range": None if m["range"] is None else int(m["range"]),
    }


@pytest.fixture(scope="module")
def full_tiny(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("full_tiny"))
    S.build_corpus(root, S.PRESETS["full_tiny"], seed=0, workers=2, log=lambda _: None)
    return root


def _samples(root: str) -> dict[str, list[tuple[SampleMeta, bytes]]]:
    return {
        split: [(SampleMeta.from_json(r["json"], r["__key__"]), r["flac"]) for r in raws]
        for split, raws in _all_samples(root).items()
    }


def _rms_inside_outside(flac: bytes, spans: list[tuple[float, float]]) -> tuple[float, float]:
    x, sr = sf.read(io.BytesIO(flac), dtype="float64")
    inside = np.zeros(len(x), bool)
    for s, e in spans:
        inside[int(s * sr) : int(e * sr)] = True
    return float(np.sqrt(np.mean(x[inside] ** 2))), float(np.sqrt(np.mean(x[~inside] ** 2)))


def _aqa_answer(question: str, events: list[dict]) -> str:
    """The answer of an AQA question, re-derived from the scene's events."""
    labels = [e["label"] for e in events]
    if question.startswith("is there "):
        name = question[len("is there ") : -1]
        return "yes" if {v: k for k, v in S.SOUND_NAMES.items()}[name] in labels else "no"
    if m := re.fullmatch(r"how many (\w+)s are there\?", question):
        return S.NUMBER_WORDS[labels.count(m[1])]
    if m := re.fullmatch(r"which sound comes (first|last)\?", question):
        return labels[0 if m[1] == "first" else -1]
    if m := re.fullmatch(r"does the (.+) come before the (.+)\?", question):
        return "yes" if labels.index(m[1]) < labels.index(m[2]) else "no"
    assert question == "how many different sounds are there?"
    return S.NUMBER_WORDS[len(set(labels))]


def _aac_caption(events: list[dict]) -> str:
    """The AAC caption, re-derived from the scene's events."""
    a, b = events[0], events[1]
    if b["end"] <= a["end"]:  # b inside a
        assert len(events) == 2 and a["label"] in S.CONTINUOUS_SOUNDS
        return f"{S.CAPTION_PHRASES[b['label']]} while {S.CAPTION_PHRASES[a['label']]}"
    assert all(x["end"] <= y["start"] for x, y in zip(events, events[1:]))
    return ", then ".join(S.CAPTION_PHRASES[e["label"]] for e in events)


def test_full_tiny_every_sample_formats_and_its_label_follows_from_the_content(full_tiny):
    samples = _samples(full_tiny)
    sizes = S.PRESETS["full_tiny"]
    assert len(S.FULL_TASKS) >= 20 + 5 and set(S.FULL_TASKS) <= set(TASK_REGISTRY)
    meanings = {
        lang: {
            S.parallel_sentence(m, lang): m
            for m in itertools.product(
                *(
                    range(len(x))
                    for x in (S.PARALLEL_SUBJECTS, S.PARALLEL_VERBS, S.PARALLEL_OBJECTS, S.PARALLEL_ADVERBS)
                )
            )
        }
        for lang in S.ALL_LANGUAGES
    }
    templates = [(intent, re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t)) + "$")) for intent, t in S.COMMANDS]
    for split, items in samples.items():
        by_task = collections.Counter(m.task for m, _ in items)
        assert by_task == {t: sizes.of(split) for t in S.FULL_TASKS}, split
        for m, flac in items:
            task = get_task(m.task)
            target, prefix = task.format_target(m), task.tags(m).render()
            assert prefix and target and task.eval_target(m) is not None
            assert 0.9 < m.duration < 30.0
            p = m.meta
            if m.task in S.NEW_TASKS and m.source == S.SPEECH_SOURCE:
                assert m.audio_language in S.ALL_LANGUAGES and ("speaker" in p or "speakers" in p)
            if m.task == "s2tt":
                meaning = meanings[m.audio_language][p["transcript"]]
                assert m.target == S.parallel_sentence(meaning, m.text_language) != p["transcript"]
                assert "en" in (m.audio_language, m.text_language) and m.audio_language != m.text_language
            elif m.task in ("did", "dasr"):
                lang, voice = S.DIALECTS[p["dialect"]]
                assert m.audio_language == lang and _speaker(p["speaker"])["voice"] == voice
                if m.task == "did":
                    assert m.target == p["dialect"] and target == f"dialect: {p['dialect']}"
                else:
                    assert m.text_language == lang and target == m.target and m.words
            elif m.task == "sgc":
                assert m.target == p["gender"] == VARIANT_GENDER[_speaker(p["speaker"])["variant"]]
            elif m.task == "sap":
                assert _speaker(p["speaker"])["variant"] in S.AGE_GROUPS[m.target]["variants"]
            elif m.task == "er":
                spk, e = _speaker(p["speaker"]), S.EMOTIONS[m.target]
                assert e["rate"][0] <= spk["rate"] <= e["rate"][1] and e["pitch"][0] <= spk["pitch"] <= e["pitch"][1]
                assert e["range"][0] <= spk["range"] <= e["range"][1]
            elif m.task == "sv":
                assert m.target == ("same" if p["speakers"][0] == p["speakers"][1] else "different")
                if m.target == "different":
                    assert _speaker(p["speakers"][0])["variant"] != _speaker(p["speakers"][1])["variant"]
            elif m.task in ("sd", "osr"):
                segs = p["segments"]
                assert [s["start"] for s in segs] == sorted(s["start"] for s in segs)
                assert p["n_speakers"] == len(set(s["speaker"] for s in segs)) >= 2
                assert all(0 <= s["start"] < s["end"] <= m.duration for s in segs)
                assert m.target == S.GRAMMARS[m.audio_language].joiner.join(p["texts"])
                inside, outside = _rms_inside_outside(flac, [(s["start"], s["end"]) for s in segs])
                assert inside > 2 * outside, (m.task, inside, outside)
                if m.task == "osr":
                    assert segs[0]["start"] + 0.3 <= segs[1]["start"] < segs[0]["end"]  # overlapped, in start order
                else:
                    spans = parse_spans(target)
                    assert [x[0] for x in spans][0] == "speaker 1" and len(spans) == len(segs)
            elif m.task == "ks":
                assert m.target in S.KEYWORDS[m.audio_language] and m.duration >= 1.0
            elif m.task == "ic":
                assert {i for i, rx in templates if rx.match(p["transcript"])} == {m.target}
            elif m.task in ("sf", "ser"):
                key, fillers = ("slots", S.SLOT_FILLERS) if m.task == "sf" else ("entities", S.ENTITY_FILLERS)
                transcript, found = parse_entities(target)
                assert transcript == m.target and found == [(e["type"], e["value"]) for e in p[key]]
                assert all(e["value"] in {v for _, v in fillers[e["type"]]} for e in p[key])
            elif m.task in ("sed", "aac", "aqa"):
                events = p["events"]
                assert all(0 <= e["start"] < e["end"] <= m.duration for e in events)
                inside, outside = _rms_inside_outside(flac, [(e["start"], e["end"]) for e in events])
                assert inside > 10 * outside, (m.task, inside, outside)
                if m.task == "sed":
                    assert [(x[0]) for x in parse_spans(target)] == [e["label"] for e in events]
                    assert len(set(p["labels"])) == len(p["labels"]) >= 2
                elif m.task == "aac":
                    assert m.target == _aac_caption(events)
                else:
                    assert m.target == _aqa_answer(p["question"], events)
            elif m.task in ("mic", "mgr", "mc", "mqa", "smer"):
                r = p["recipe"]
                if m.task == "mic":
                    assert p["labels"] == S.music_labels(r) and target == "<|instrument|>" + ", ".join(p["labels"])
                elif m.task == "mgr":
                    assert m.target == r["genre"] and target == f"genre: {r['genre']}"
                    g = S.GENRES[r["genre"]]
                    assert g["bpm"][0] <= r["bpm"] <= g["bpm"][1]
                elif m.task == "mc":
                    assert m.target == S.music_caption(r)
                elif m.task == "mqa":
                    kind = {q: k for k, q in S.MQA_QUESTIONS.items()}[p["question"]]
                    assert m.target == S.music_answer(r, kind)
                else:
                    e = S.MUSIC_EMOTIONS[m.target]
                    assert r["mode"] == e["mode"] and e["bpm"][0] <= r["bpm"] <= e["bpm"][1]
    train = [m for m, _ in samples["train"]]
    for task, labels in (
        ("did", set(S.DIALECTS)),
        ("sgc", {"male", "female"}),
        ("sap", set(S.AGE_GROUPS)),
        ("er", set(S.EMOTIONS)),
        ("sv", {"same", "different"}),
        ("smer", set(S.MUSIC_EMOTIONS)),
    ):
        assert {m.target for m in train if m.task == task} == labels, task
    for task in ("sgc", "ks", "sv", "sd", "osr", "er", "sap", "asr"):
        assert {m.audio_language for m in train if m.task == task} == set(S.ALL_LANGUAGES), task

    with open(os.path.join(full_tiny, "text.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == sum(len(v) for v in samples.values()) and not any("<|" in ln for ln in lines)
    assert "speaker 1" in " ".join(lines) and "gender: " in " ".join(lines)


def _content(task: str, p: dict) -> list[tuple]:
    """What a planned sample is made of, for the held-out checks."""
    out: list[tuple] = []
    for key in ("speaker", "speakers"):
        for s in ([p[key]] if key == "speaker" else p.get(key, [])) if key in p else []:
            out.append(("speaker", s.variant, s.rate_wpm, s.pitch))
    for key in ("text", "texts"):
        for t in ([p[key]] if key == "text" else p.get(key, [])) if key in p else []:
            out.append(("sentence", p["language"], t))
    if task == "s2tt":
        out.append(("meaning", *p["meaning"]))
    if task == "sed":
        out.append(("sed", tuple(sorted(e["label"] for e in p["events"]))))
    if task == "aac":
        out.append(("aac", p["caption"]))
    if task == "aqa":
        out.append(("aqa", p["question"], p["answer"], tuple(e["label"] for e in p["events"])))
    if "recipe" in p:
        out.append(("recipe", repr(S._recipe_id(p["recipe"]))))
    return out


def test_full_splits_hold_out_sentences_speakers_scenes_and_pieces():
    taken: set = set()
    legacy: dict = {}
    n = 60
    for split in S.SPLITS:
        before = set(taken)
        S.plan_split(split, n, 0, taken, S.ALL_LANGUAGES, S.TASKS)
        legacy.update((s, split) for s in taken - before)
    plans = {split: S.plan_full_split(split, n, 0, legacy, S.NEW_TASKS) for split in S.SPLITS}
    again = S.plan_full_split("test", n, 0, legacy, S.NEW_TASKS)
    assert [(j.key, repr(j.params)) for j in again] == [(j.key, repr(j.params)) for j in plans["test"]]
    content = {split: collections.defaultdict(set) for split in S.SPLITS}
    for split, jobs in plans.items():
        for j in jobs:
            for c in _content(j.task, j.params):
                content[split][c[0]].add(c)
    for kind in ("speaker", "sentence", "meaning", "sed", "aac", "aqa", "recipe"):
        assert content["test"][kind] and content["train"][kind], kind
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            assert not content[a][kind] & content[b][kind], (kind, a, b)
    # sentences of the first five tasks are never used by a new task in another split
    for split in S.SPLITS:
        used = {c[1:] for c in content[split]["sentence"]}
        assert all(legacy.get(s, split) == split for s in used)


def test_full_render_is_deterministic():
    jobs = S.plan_full_split("valid", 1, 3, {}, S.NEW_TASKS)
    for job in jobs:
        assert S.render(job)[1] == S.render(job)[1], job.task


def test_cli_full_tasks_subset(tmp_path):
    assert (
        S.main(
            [
                "--out",
                str(tmp_path),
                "--preset",
                "full_tiny",
                "--tasks",
                "sgc,mgr,asr",
                "--train",
                "2",
                "--valid",
                "1",
                "--test",
                "1",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    top = read_manifest(tmp_path)
    assert set(top["splits"]["train"]) == {"sgc", "mgr", "asr"} and top["asr_languages"] == list(S.ALL_LANGUAGES)
    with pytest.raises(SystemExit):
        S.main(["--out", str(tmp_path), "--tasks", "nope"])


def test_full_data_config_has_one_source_per_task():
    from qwenaudio_train.config import compose

    cfg = compose("pretrain", ["data=synthetic_full"])
    assert cfg.data.root == "artifacts/synthetic_full"
    assert list(cfg.data.sources) == list(S.PRESETS["full"].tasks)
    assert all(src.shards == f"artifacts/synthetic_full/train/{t}" for t, src in cfg.data.sources.items())
    assert cfg.data.valid == "artifacts/synthetic_full/valid" and cfg.data.test == "artifacts/synthetic_full/test"


# ---------------------------------------------------------------------------------------------------------------
# Long-form speech (issue 13): long_asr / long_srwt in the demo and full presets, in shard sets of their own
# ---------------------------------------------------------------------------------------------------------------
def test_long_tasks_only_in_demo_and_full(tmp_path):
    assert S.PRESETS["tiny"].long == S.PRESETS["full_tiny"].long == (0, 0, 0)
    demo, full = S.PRESETS["demo"], S.PRESETS["full"]
    assert min(demo.long) > 0 and min(full.long) > 0 and demo.long[0] <= 32
    assert 60.0 <= demo.long_seconds[0] and full.long_seconds == (60.0, 300.0)
    for bad in ("1,2", "1,-1,1", "a,b,c"):
        with pytest.raises(SystemExit):
            S.main(["--out", str(tmp_path), "--long", bad])


def test_long_form_corpus(tmp_path):
    from qwenaudio_train.formats import parse_srwt

    root = str(tmp_path)
    sizes = S.Sizes(train=1, valid=1, test=1, tasks=("asr",), long=(2, 1, 1), long_seconds=(35.0, 45.0))
    top = S.build_corpus(root, sizes, seed=0, workers=1, log=lambda _: None)
    assert set(top["shard_sets"]) == {"train/asr", "valid", "test", "train/long_asr", "train/long_srwt"} | {
        "valid_long",
        "test_long",
    }
    sets = {
        name: [(r["__key__"], SampleMeta.from_json(r["json"], r["__key__"])) for r in _shard_set(root, name)]
        for name in top["shard_sets"]
    }
    assert [len(sets[n]) for n in ("train/long_asr", "train/long_srwt", "valid_long", "test_long")] == [2, 2, 2, 2]
    sentences: dict[str, set[str]] = {}
    for name in ("train/long_asr", "train/long_srwt", "valid_long", "test_long"):
        for key, m in sets[name]:
            long_task = key.split("-")[0]
            assert m.task == {"long_asr": "asr", "long_srwt": "srwt"}[long_task] == m.meta["long_form"].split("_")[1]
            assert 35.0 <= m.duration < 45.0 + 6.0 and m.words and m.words[-1].end > 30.0
            if m.audio_language == "en":  # the whole transcript is the target
                assert m.target.split() == " ".join(w.word for w in m.words).split()  # espeak may join "in the"
            target = get_task(m.task).format_target(m)
            if m.task == "srwt":  # times past 30 s carry their window marker and read back exactly
                assert "<|window_1|>" in target
                parsed = parse_srwt(target)
                assert [p[0] for p in parsed] == [w.word for w in m.words]
                times = [t for w in m.words for t in (w.start, w.end)]
                assert [t for p in parsed for t in p[1:]] == pytest.approx(times, abs=0.0051)
            split = name.split("/")[0].replace("_long", "")
            sentences.setdefault(split, set()).add(m.target)
    assert not sentences["train"] & sentences["valid"] and not sentences["train"] & sentences["test"]
    with open(os.path.join(root, "text.txt"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3  # the long targets stay out of the tokenizer's text
    job = S.plan_long_split("valid", 1, 0, {}, (31.0, 32.0))[0]
    assert S.render(job)[1] == S.render(job)[1]


def _shard_set(root: str, name: str) -> list[dict]:
    return [s for t in sorted(glob.glob(os.path.join(root, name, "*.tar"))) for s in iter_shard(t)]
