"""Tiny raw corpora in the documented layouts of the sound/music recipes, with real (synthesised) audio.

Each ``build_<corpus>(root)`` writes a miniature copy of the corpus's raw layout under ``root`` - the same file
names, CSV/JSON/TXT columns and audio formats (rate, channels, sample format) as the real release - and returns
what the recipe should produce: ``{subset: {key: expected fields}}``. Audio is short sines and noise so that the
whole test file stays fast; a few clips are made longer than 30 s on purpose where a recipe must window or skip.

Owns: the fixture layouts. Must not: import the recipes (the tests compare the two).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


def tone(
    seconds: float, sr: int, freq: float = 440.0, channels: int = 1, noise: float = 0.05, seed: int = 0
) -> np.ndarray:
    """A sine plus a little noise; shape (n,) or (n, channels)."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(n)
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_audio(
    path: Path,
    seconds: float,
    sr: int = 44100,
    freq: float = 440.0,
    channels: int = 1,
    subtype: str = "PCM_16",
    fmt: str | None = None,
    seed: int = 0,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sr, freq, channels, seed=seed), sr, subtype=subtype, format=fmt)
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[Any]], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------------------------
# Clotho v2.1 (audio captioning): clotho_captions_<split>.csv + <split>/<file_name>.wav, 44.1 kHz mono 16-bit
# ---------------------------------------------------------------------------------------------------------------
def build_clotho(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    clips = {
        "development": [("Santa Motor.wav", 1.0), ("Rain_on_roof 2.wav", 0.6)],
        "validation": [("birds chirping.wav", 0.5)],
        "evaluation": [("door-creak.wav", 0.7)],
    }
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for split, files in clips.items():
        rows, exp = [], {}
        for i, (name, secs) in enumerate(files):
            caps = [f"{split} clip {i} caption {j}, with a comma" for j in range(1, 6)]
            rows.append([name, *caps])
            write_audio(root / split / name, secs, 44100, 300 + 100 * i)
            exp[name] = {"captions": caps, "duration": secs}
        _write_csv(root / f"clotho_captions_{split}.csv", ["file_name"] + [f"caption_{j}" for j in range(1, 6)], rows)
        expected[split] = exp
    return expected


# ---------------------------------------------------------------------------------------------------------------
# Clotho-AQA: clotho_aqa_{train,val,test}.csv (file_name, QuestionText, answer, confidence) + audio_files/*.wav
# Every question is answered by three annotators: three rows.
# ---------------------------------------------------------------------------------------------------------------
def build_clotho_aqa(root: Path) -> dict[str, list[dict[str, Any]]]:
    write_audio(root / "audio_files" / "dog bark 1.wav", 0.6, 44100, 500)
    write_audio(root / "audio_files" / "city.wav", 0.4, 44100, 700)
    write_audio(root / "audio_files" / "sea.wav", 0.5, 44100, 900)
    header = ["file_name", "QuestionText", "answer", "confidence"]
    train = [
        ["dog bark 1.wav", "Is there a dog barking?", "yes", "yes"],
        ["dog bark 1.wav", "Is there a dog barking?", "yes", "maybe"],
        ["dog bark 1.wav", "Is there a dog barking?", "no", "no"],
        ["dog bark 1.wav", "How many times does it bark?", "three", "yes"],
        ["dog bark 1.wav", "How many times does it bark?", "two", "yes"],
        ["dog bark 1.wav", "How many times does it bark?", "three", "maybe"],
        ["city.wav", "Is it raining?", "no", "yes"],
        ["city.wav", "Is it raining?", "no", "yes"],
        ["city.wav", "Is it raining?", "no", "yes"],
    ]
    _write_csv(root / "clotho_aqa_train.csv", header, train)
    _write_csv(root / "clotho_aqa_val.csv", header, [["sea.wav", "Is this the sea?", "yes", "yes"]] * 3)
    _write_csv(root / "clotho_aqa_test.csv", header, [["city.wav", "Are there cars?", "yes", "yes"]] * 3)
    return {
        "train": [
            {
                "file": "dog bark 1.wav",
                "question": "Is there a dog barking?",
                "answer": "yes",
                "answers": ["yes", "yes", "no"],
            },
            {
                "file": "dog bark 1.wav",
                "question": "How many times does it bark?",
                "answer": "three",
                "answers": ["three", "two", "three"],
            },
            {"file": "city.wav", "question": "Is it raining?", "answer": "no", "answers": ["no", "no", "no"]},
        ],
        "val": [{"file": "sea.wav", "question": "Is this the sea?", "answer": "yes", "answers": ["yes"] * 3}],
        "test": [{"file": "city.wav", "question": "Are there cars?", "answer": "yes", "answers": ["yes"] * 3}],
    }


# ---------------------------------------------------------------------------------------------------------------
# AudioCaps: {train,val,test}.csv (audiocap_id, youtube_id, start_time, caption) + user-downloaded audio.
# test/val list five captions per clip (five rows); names below use the layouts the recipe documents.
# ---------------------------------------------------------------------------------------------------------------
def build_audiocaps(root: Path) -> dict[str, dict[tuple[str, int], list[str]]]:
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    _write_csv(
        root / "train.csv",
        header,
        [
            [91139, "r1nicOVtvkQ", 130, "A woman talks nearby as water pours"],
            [58146, "UDGBjjwyaqE", 20, "Multiple clanging and clanking sounds"],
        ],
    )
    _write_csv(root / "val.csv", header, [[100 + j, "-AheI8Epim4", 30, f"val caption {j}"] for j in range(5)])
    _write_csv(root / "test.csv", header, [[200 + j, "_8b1bSB8Pr4", 0, f"test caption {j}"] for j in range(5)])
    # audio/<split>/<youtube_id>_<start_time>.wav, or audio/<split>/<audiocap_id>.wav (another downloader's names)
    write_audio(root / "audio" / "train" / "r1nicOVtvkQ_130.wav", 0.5, 48000, 400, channels=2)
    write_audio(root / "audio" / "train" / "58146.flac", 0.4, 44100, 600, fmt="FLAC")
    write_audio(root / "audio" / "val" / "-AheI8Epim4_30.wav", 0.5, 44100, 800)
    write_audio(root / "audio" / "test" / "_8b1bSB8Pr4_0.wav", 0.5, 44100, 1000)
    return {
        "train": {
            ("r1nicOVtvkQ", 130): ["A woman talks nearby as water pours"],
            ("UDGBjjwyaqE", 20): ["Multiple clanging and clanking sounds"],
        },
        "val": {("-AheI8Epim4", 30): [f"val caption {j}" for j in range(5)]},
        "test": {("_8b1bSB8Pr4", 0): [f"test caption {j}" for j in range(5)]},
    }


# ---------------------------------------------------------------------------------------------------------------
# CochlScene: {Train,Val,Test}/<Scene>/<Scene>_<id>.wav, 44.1 kHz mono, 10 s (shortened here)
# ---------------------------------------------------------------------------------------------------------------
def build_cochlscene(root: Path) -> dict[str, dict[str, str]]:
    layout = {"Train": ["Bus", "CrowdedIndoor"], "Val": ["Bus"], "Test": ["SubwayStation"]}
    expected: dict[str, dict[str, str]] = {}
    for split, scenes in layout.items():
        expected[split] = {}
        for k, scene in enumerate(scenes):
            name = f"{scene}_{split.lower()}_000{k}.wav"
            write_audio(root / split / scene / name, 0.5, 44100, 300 + 150 * k)
            expected[split][name] = scene
    return expected


# ---------------------------------------------------------------------------------------------------------------
# TUT Acoustic Scenes 2017: TUT-acoustic-scenes-2017-development/{meta.txt, audio/*.wav,
# evaluation_setup/fold<N>_{train,evaluate,test}.txt}; evaluation set alike. 44.1 kHz binaural (stereo) 24-bit.
# ---------------------------------------------------------------------------------------------------------------
def build_tut2017(root: Path) -> dict[str, dict[str, str]]:
    dev = root / "TUT-acoustic-scenes-2017-development"
    items = [
        ("a001_0_10.wav", "residential_area", "a001"),
        ("b020_90_100.wav", "beach", "b020"),
        ("c034_10_20.wav", "cafe/restaurant", "c034"),
        ("d050_30_40.wav", "city_center", "d050"),
    ]
    for i, (name, _, _) in enumerate(items):
        write_audio(dev / "audio" / name, 0.5, 44100, 200 + 100 * i, channels=2, subtype="PCM_24")
    (dev / "meta.txt").write_text("".join(f"audio/{n}\t{lab}\t{ident}\n" for n, lab, ident in items))
    setup = dev / "evaluation_setup"
    setup.mkdir()
    (setup / "fold1_train.txt").write_text("".join(f"audio/{n}\t{lab}\n" for n, lab, _ in items[:3]))
    (setup / "fold1_evaluate.txt").write_text(f"audio/{items[3][0]}\t{items[3][1]}\n")
    (setup / "fold1_test.txt").write_text(f"audio/{items[3][0]}\n")
    ev = root / "TUT-acoustic-scenes-2017-evaluation"
    write_audio(ev / "audio" / "1.wav", 0.5, 44100, 1200, channels=2, subtype="PCM_24")
    (ev / "meta.txt").write_text("audio/1.wav\tlibrary\n")
    return {
        "fold1_train": {"a001_0_10": "residential area", "b020_90_100": "beach", "c034_10_20": "cafe/restaurant"},
        "fold1_evaluate": {"d050_30_40": "city center"},
        "evaluation": {"1": "library"},
    }


# ---------------------------------------------------------------------------------------------------------------
# NSynth: nsynth-{train,valid,test}/examples.json + audio/<note_str>.wav (16 kHz mono 16-bit, 4 s; shorter here)
# ---------------------------------------------------------------------------------------------------------------
def _nsynth_entry(
    note_str: str, family: str, source: str, pitch: int, velocity: int, qualities: list[str]
) -> dict[str, Any]:
    all_q = [
        "bright",
        "dark",
        "distortion",
        "fast_decay",
        "long_release",
        "multiphonic",
        "nonlinear_env",
        "percussive",
        "reverb",
        "tempo-synced",
    ]
    return {
        "note": abs(hash(note_str)) % 100000,
        "note_str": note_str,
        "instrument": 417,
        "instrument_str": note_str.rsplit("-", 2)[0],
        "instrument_family": 0,
        "instrument_family_str": family,
        "instrument_source": 1,
        "instrument_source_str": source,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": 16000,
        "qualities": [int(q in qualities) for q in all_q],
        "qualities_str": qualities,
    }


def build_nsynth(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    notes = {
        "train": [
            ("bass_synthetic_033-022-050", "bass", "synthetic", 22, 50, ["dark"]),
            ("keyboard_acoustic_004-060-127", "keyboard", "acoustic", 60, 127, ["bright", "percussive"]),
        ],
        "valid": [("guitar_electronic_021-070-075", "guitar", "electronic", 70, 75, [])],
        "test": [("synth_lead_000-084-025", "synth_lead", "synthetic", 84, 25, ["fast_decay", "reverb"])],
    }
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for split, entries in notes.items():
        d = root / f"nsynth-{split}"
        examples = {}
        expected[split] = {}
        for note_str, fam, src, pitch, vel, qual in entries:
            examples[note_str] = _nsynth_entry(note_str, fam, src, pitch, vel, qual)
            write_audio(d / "audio" / f"{note_str}.wav", 0.4, 16000, 440 * 2 ** ((pitch - 69) / 12))
            expected[split][note_str] = {
                "pitch": pitch,
                "velocity": vel,
                "instrument": fam,
                "sonic": qual,
                "source": src,
            }
        d.mkdir(parents=True, exist_ok=True)
        (d / "examples.json").write_text(json.dumps(examples, indent=2))
    return expected


# ---------------------------------------------------------------------------------------------------------------
# ESC-50: meta/esc50.csv (filename, fold, target, category, esc10, src_file, take) + audio/*.wav (44.1 kHz, 5 s)
# ---------------------------------------------------------------------------------------------------------------
def build_esc50(root: Path) -> dict[str, dict[str, str]]:
    rows = [
        ["1-100032-A-0.wav", 1, 0, "dog", True, 100032, "A"],
        ["1-115545-B-48.wav", 1, 48, "fireworks", False, 115545, "B"],
        ["2-102414-C-17.wav", 2, 17, "pouring_water", False, 102414, "C"],
        ["5-9032-A-0.wav", 5, 0, "dog", True, 9032, "A"],
    ]
    _write_csv(
        root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"], rows
    )
    for i, r in enumerate(rows):
        write_audio(root / "audio" / str(r[0]), 0.5, 44100, 250 + 120 * i)
    return {
        "fold1": {"1-100032-A-0": "dog", "1-115545-B-48": "fireworks"},
        "fold2": {"2-102414-C-17": "pouring water"},
        "fold5": {"5-9032-A-0": "dog"},
    }


# ---------------------------------------------------------------------------------------------------------------
# FSD50K: FSD50K.ground_truth/{dev,eval}.csv (fname, labels, mids[, split]) + FSD50K.{dev,eval}_audio/<fname>.wav
# ---------------------------------------------------------------------------------------------------------------
def build_fsd50k(root: Path) -> dict[str, dict[str, list[str]]]:
    gt = root / "FSD50K.ground_truth"
    _write_csv(
        gt / "dev.csv",
        ["fname", "labels", "mids", "split"],
        [
            [
                64760,
                "Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music",
                "/m/02sgy,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf",
                "train",
            ],
            [16399, "Male_speech_and_man_speaking,Speech,Human_voice", "/m/05zppz,/m/09x0r,/m/09l8g", "train"],
            [5000, "Walk_and_footsteps", "/m/07pbtc8", "val"],
        ],
    )
    _write_csv(
        gt / "eval.csv", ["fname", "labels", "mids"], [[37199, "Bark,Dog,Animal", "/m/05tny_,/m/0bt9lr,/m/0jbk"]]
    )
    for i, f in enumerate([64760, 16399, 5000]):
        write_audio(root / "FSD50K.dev_audio" / f"{f}.wav", 0.3 + 0.1 * i, 44100, 300 + 200 * i)
    write_audio(root / "FSD50K.eval_audio" / "37199.wav", 0.5, 44100, 900)
    return {
        "train": {
            "64760": ["Electric guitar", "Guitar", "Plucked string instrument", "Musical instrument", "Music"],
            "16399": ["Male speech and man speaking", "Speech", "Human voice"],
        },
        "val": {"5000": ["Walk and footsteps"]},
        "eval": {"37199": ["Bark", "Dog", "Animal"]},
    }


# ---------------------------------------------------------------------------------------------------------------
# GTZAN (Kaggle "Data/genres_original" copy): genres_original/<genre>/<genre>.000NN.wav, 22.05 kHz mono, 30 s.
# One clip is made 31 s long to exercise windowing.
# ---------------------------------------------------------------------------------------------------------------
def build_gtzan(root: Path) -> dict[str, dict[str, Any]]:
    g = root / "genres_original"
    write_audio(g / "blues" / "blues.00000.wav", 0.6, 22050, 200)
    write_audio(g / "hiphop" / "hiphop.00042.wav", 0.5, 22050, 300)
    write_audio(g / "jazz" / "jazz.00001.wav", 31.0, 22050, 400)
    return {"blues-00000": "blues", "hiphop-00042": "hiphop", "jazz-00001": "jazz"}


# ---------------------------------------------------------------------------------------------------------------
# MusicCaps: musiccaps-public.csv + user-downloaded clips <ytid>.wav (10 s cut at [start_s, end_s])
# ---------------------------------------------------------------------------------------------------------------
def build_musiccaps(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    header = [
        "ytid",
        "start_s",
        "end_s",
        "audioset_positive_labels",
        "aspect_list",
        "caption",
        "author_id",
        "is_balanced_subset",
        "is_audioset_eval",
    ]
    rows = [
        [
            "-0Gj8-vB1q4",
            30,
            40,
            "/m/0140xf,/m/02cjck,/m/04rlf",
            "['low quality', 'sustained strings melody']",
            "The low quality recording features a sustained strings melody.",
            4,
            False,
            True,
        ],
        [
            "-0SdAVK79lg",
            30,
            40,
            "/m/0155w,/m/01lyv",
            "['guitar song', 'piano backing']",
            "This song features an electric guitar as the main instrument.",
            0,
            False,
            False,
        ],
        [
            "-0vPFx-wRRI",
            30,
            40,
            "/m/025_jnm",
            "['amateur recording', 'finger snipping']",
            "a male voice is singing a melody with changing tempos.",
            6,
            True,
            False,
        ],
    ]
    _write_csv(root / "musiccaps-public.csv", header, rows)
    write_audio(root / "audio" / "-0Gj8-vB1q4.wav", 0.5, 48000, 300, channels=2)
    write_audio(root / "audio" / "-0SdAVK79lg.wav", 0.5, 44100, 500)
    write_audio(root / "audio" / "-0vPFx-wRRI.wav", 0.5, 44100, 700)
    return {
        "eval": {"-0Gj8-vB1q4": {"caption": rows[0][5], "aspects": ["low quality", "sustained strings melody"]}},
        "train": {
            "-0SdAVK79lg": {"caption": rows[1][5], "aspects": ["guitar song", "piano backing"]},
            "-0vPFx-wRRI": {"caption": rows[2][5], "aspects": ["amateur recording", "finger snipping"]},
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# The Qwen-Audio release's eval jsonl: {"audio", "gt", "source", ...} with paths relative to the data folder
# ---------------------------------------------------------------------------------------------------------------
def build_release_jsonl(root: Path) -> tuple[Path, list[dict[str, Any]]]:
    lines = [
        {"audio": "audio/ls.flac", "gt": "HE HOPED THERE WOULD BE STEW", "source": "librispeech_test_clean"},
        {"audio": "audio/ai.wav", "gt": "甚至出现交易几乎停滞的情况", "source": "aishell1_test"},
        {"audio": "audio/cv.wav", "gt": "Hallo Welt", "source": "covost2_en_de_test"},
        {"audio": "audio/cl.wav", "gt": ["a dog barks", "a dog is barking loudly"], "source": "clotho_eval"},
        {"audio": "audio/cs.wav", "gt": "Bus", "source": "cochlscene_test"},
        {"audio": "audio/tut.wav", "gt": "beach", "source": "tut2017_test"},
        {"audio": "audio/meld.wav", "gt": "neutral", "source": "meld_test"},
        {"audio": "audio/vs.wav", "gt": "Laughter", "source": "vocalsound_test"},
        {"audio": "audio/aqa.wav", "gt": "yes", "source": "clothoaqa_test", "question": "Is a dog barking?"},
        {
            "audio": "audio/ns.wav",
            "source": "nsynth_test",
            "gt": "<|pitch|><|midi_pitch_60|><|velocity|><|midi_velocity_100|><|instrument|>keyboard"
            "<|sonic|>bright, percussive",
        },
        {
            "audio": "audio/srwt.wav",
            "source": "aishell2",
            "gt": "<|0.00|><|sil|><|0.04|>面<|0.09|>条<|0.17|>机<|0.26|><|sil|><|0.30|>",
        },
    ]
    for i, line in enumerate(lines):
        name = line["audio"]
        fmt = "FLAC" if name.endswith(".flac") else None
        write_audio(root / name, 0.4, 16000, 200 + 60 * i, fmt=fmt)
    path = root / "eval.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path, lines
