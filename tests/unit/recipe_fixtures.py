"""Tiny raw corpora in their real layouts, for the recipe tests (file names and index formats as the corpora ship
them; audio is short tones/noise in the corpus's own format and rate). Each builder writes under `root` and
returns what the recipe should produce, so tests compare against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


def tone(seconds: float, sr: int = 16000, freq: float = 440.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A quiet sine plus a little noise (never silent, never clipping)."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_audio(
    path: Path,
    seconds: float = 0.4,
    sr: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sr, freq, channels), sr, format=fmt, subtype=subtype)
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------------------------------------------
def build_librispeech(root: Path, long_utt: bool = True) -> dict[str, dict[str, str]]:
    """LibriSpeech/{dev-clean,test-other}/<spk>/<chapter>/ with .trans.txt and .flac; one 31-s utterance."""
    base = root / "LibriSpeech"
    expected: dict[str, dict[str, str]] = {"dev-clean": {}, "test-other": {}}
    layout = {
        "dev-clean": {
            ("1272", "128104"): [
                "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES",
                "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING",
            ],
            ("84", "121123"): ["GO DO YOU HEAR"],
        },
        "test-other": {("1688", "142285"): ["THERE'S IRON THEY SAY IN ALL OUR BLOOD"]},
    }
    for subset, chapters in layout.items():
        for (spk, chapter), lines in chapters.items():
            d = base / subset / spk / chapter
            trans = []
            for i, text in enumerate(lines):
                utt = f"{spk}-{chapter}-{i:04d}"
                write_audio(d / f"{utt}.flac", 0.3 + 0.1 * i, freq=300 + 50 * i)
                trans.append(f"{utt} {text}")
                expected[subset][f"librispeech-{utt}"] = text
            if long_utt and subset == "dev-clean" and spk == "84":
                utt = f"{spk}-{chapter}-0001"
                write_audio(d / f"{utt}.flac", 31.0)
                trans.append(f"{utt} A VERY LONG UTTERANCE")
            write_text(d / f"{spk}-{chapter}.trans.txt", "\n".join(trans) + "\n")
    return expected


def build_aishell1(root: Path) -> dict[str, dict[str, str]]:
    base = root / "data_aishell"
    rows = {
        "train": [
            ("S0002", "BAC009S0002W0122", "而 对 楼市 成交 抑制 作用 最 大 的 限 购"),
            ("S0002", "BAC009S0002W0123", "也 成为 地方 政府 的 眼中 钉"),
        ],
        "dev": [("S0724", "BAC009S0724W0121", "甚至 出现 交易 几乎 停滞 的 情况")],
        "test": [("S0764", "BAC009S0764W0121", "甚至 出现 交易 几乎 停滞 的 情况")],
    }
    lines = []
    expected: dict[str, dict[str, str]] = {}
    for split, utts in rows.items():
        expected[split] = {}
        for spk, utt, text in utts:
            write_audio(base / "wav" / split / spk / f"{utt}.wav", 0.35, subtype="PCM_16")
            lines.append(f"{utt} {text}")
            expected[split][f"aishell1-{utt}"] = text.replace(" ", "")
    # A wav the transcript does not list (the release has a few): skipped.
    write_audio(base / "wav" / "train" / "S0002" / "BAC009S0002W0999.wav", 0.2)
    write_text(base / "transcript" / "aishell_transcript_v0.8.txt", "\n".join(lines) + "\n")
    return expected


def build_aishell2(root: Path) -> dict[str, dict[str, str]]:
    sets = {
        "train": (
            root / "AISHELL-2" / "iOS" / "data",
            [
                ("C0001", "IC0001W0001", "厨房用具"),
                ("C0001", "IC0001W0002", "电蒸锅"),
                ("C0002", "IC0002W0001", "打开IPAD"),
            ],
        ),
        "test-ios": (root / "AISHELL-DEV-TEST-SET" / "iOS" / "test", [("T0001", "IT0001W0001", "今天天气很好")]),
    }
    expected: dict[str, dict[str, str]] = {}
    for subset, (d, utts) in sets.items():
        scp, trans = [], []
        expected[subset] = {}
        for spk, utt, text in utts:
            write_audio(d / "wav" / spk / f"{utt}.wav", 0.3)
            scp.append(f"{utt}\twav/{spk}/{utt}.wav")
            trans.append(f"{utt}\t{text}")
            key = f"aishell2-{utt}" if subset == "train" else f"aishell2-ios-{utt}"
            expected[subset][key] = text
        write_text(d / "wav.scp", "\n".join(scp) + "\n")
        write_text(d / "trans.txt", "\n".join(trans) + "\n")
    return expected


CV_HEADER = [
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
]


def _cv_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    lines = ["\t".join(CV_HEADER)] + ["\t".join(r.get(c, "") for c in CV_HEADER) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def build_commonvoice(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """cv-corpus layout for en and zh-CN: {train,dev,test,validated}.tsv + clips/*.mp3 (48 kHz MP3)."""
    data = {
        "en": {
            "train": [("common_voice_en_100", 'He said "hello" to me.'), ("common_voice_en_101", "Good morning.")],
            "dev": [("common_voice_en_102", "It's raining again!")],
            "test": [("common_voice_en_103", "The end.")],
        },
        "zh-CN": {
            "train": [("common_voice_zh-CN_200", "今天天气很好。")],
            "dev": [("common_voice_zh-CN_201", "你好。")],
            "test": [("common_voice_zh-CN_202", "谢谢你。")],
        },
    }
    expected: dict[str, dict[str, tuple[str, str]]] = {}
    for locale, splits in data.items():
        validated = []
        for split, clips in splits.items():
            rows = []
            for i, (stem, sentence) in enumerate(clips):
                write_audio(root / locale / "clips" / f"{stem}.mp3", 0.5, sr=48000, fmt="MP3", freq=500 + 40 * i)
                rows.append(
                    {
                        "client_id": f"c{i}",
                        "path": f"{stem}.mp3",
                        "sentence": sentence,
                        "up_votes": "2",
                        "down_votes": "0",
                        "locale": locale,
                    }
                )
                expected.setdefault(f"{locale}/{split}", {})[f"commonvoice-{stem}"] = (sentence, f"c{i}")
            _cv_tsv(root / locale / f"{split}.tsv", rows)
            validated += rows
        _cv_tsv(root / locale / "validated.tsv", validated)
    return expected


def build_covost2(root: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """fairseq layout: <src>/clips + split TSVs for fr->en; the released TSV + validated.tsv for en->de."""
    expected: dict[str, dict[str, tuple[str, str]]] = {}
    # fr -> en, split TSVs from get_covost_splits.py (pandas QUOTE_NONE with backslash escapes).
    fr = {
        "train": [("common_voice_fr_1", 'Il a dit "bonjour".', 'He said "hello".')],
        "dev": [("common_voice_fr_2", "Merci beaucoup.", "Thank you very much.")],
        "test": [("common_voice_fr_3", "Au revoir.", "Goodbye.")],
    }
    for split, rows in fr.items():
        lines = ["path\tsentence\ttranslation\tclient_id"]
        for stem, sentence, translation in rows:
            write_audio(root / "fr" / "clips" / f"{stem}.mp3", 0.5, sr=48000, fmt="MP3")
            esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731 (pandas' escaping)
            lines.append(f"{stem}.mp3\t{esc(sentence)}\t{esc(translation)}\tspk1")
            expected.setdefault(f"fr_en/{split}", {})[f"covost2-fr_en-{stem}"] = (translation, sentence)
        write_text(root / "fr" / f"covost_v2.fr_en.{split}.tsv", "\n".join(lines) + "\n")
    # en -> de from the released TSV joined with Common Voice's validated.tsv (train includes train_covost).
    en = [
        ("common_voice_en_7", "Hello world.", "Hallo Welt.", "train"),
        ("common_voice_en_8", "Good night.", "Gute Nacht.", "train_covost"),
        ("common_voice_en_9", "See you.", "Bis bald.", "test"),
        ("common_voice_en_10", "Not in CoVoST.", "", ""),
    ]
    covost_lines = ["path\ttranslation\tsplit"]
    validated_rows = []
    for stem, sentence, translation, split in en:
        write_audio(root / "en" / "clips" / f"{stem}.mp3", 0.5, sr=48000, fmt="MP3")
        validated_rows.append({"client_id": "spk2", "path": f"{stem}.mp3", "sentence": sentence})
        if split:
            covost_lines.append(f"{stem}.mp3\t{translation}\t{split}")
            subset = "en_de/" + ("train" if split.startswith("train") else split)
            expected.setdefault(subset, {})[f"covost2-en_de-{stem}"] = (translation, sentence)
    write_text(root / "en" / "covost_v2.en_de.tsv", "\n".join(covost_lines) + "\n")
    _cv_tsv(root / "en" / "validated.tsv", validated_rows)
    return expected


def build_voxceleb1(root: Path) -> dict[str, Any]:
    utts = {  # speaker -> [(video, nnnnn)]
        "id10001": [("1zcIwhmdeo4", "00001"), ("7w0IBEWc9Qw", "00002")],
        "id10002": [("0_laIeN-Q44", "00001")],
        "id10270": [("x6uYqmx31kE", "00001"), ("8jEAjG6SegY", "00008")],
        "id10300": [("ZK3F2j8Gn0c", "00003")],
    }
    for i, (spk, vids) in enumerate(utts.items()):
        for video, n in vids:
            write_audio(root / "wav" / spk / video / f"{n}.wav", 0.4, freq=200 + 60 * i)
    write_text(
        root / "vox1_meta.csv",
        "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
        "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
        "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
        "id10270\tEartha_Kitt\tf\tUSA\ttest\n"
        "id10300\tElizabeth_Hurley\tf\tUK\ttest\n",
    )
    write_text(
        root / "iden_split.txt",
        "1 id10001/1zcIwhmdeo4/00001.wav\n"
        "3 id10001/7w0IBEWc9Qw/00002.wav\n"
        "1 id10002/0_laIeN-Q44/00001.wav\n"
        "2 id10270/x6uYqmx31kE/00001.wav\n"
        "1 id10300/ZK3F2j8Gn0c/00003.wav\n",
    )
    write_text(
        root / "veri_test.txt",
        "1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav\n"
        "0 id10270/x6uYqmx31kE/00001.wav id10300/ZK3F2j8Gn0c/00003.wav\n",
    )
    return {
        "train": {
            "voxceleb1-id10001-1zcIwhmdeo4-00001": "male",
            "voxceleb1-id10002-0_laIeN-Q44-00001": "male",
            "voxceleb1-id10300-ZK3F2j8Gn0c-00003": "female",
        },
        "dev": {"voxceleb1-id10270-x6uYqmx31kE-00001": "female"},
        "test": {"voxceleb1-id10001-7w0IBEWc9Qw-00002": "male"},
        "veri_test": {
            "voxceleb1-veri_test-000001": ("same", ["id10270", "id10270"]),
            "voxceleb1-veri_test-000002": ("different", ["id10270", "id10300"]),
        },
    }


def build_speech_commands(root: Path) -> dict[str, dict[str, str]]:
    files = [
        ("yes", "0a7c2a8d_nohash_0"),
        ("yes", "0a7c2a8d_nohash_1"),
        ("no", "0b09edd3_nohash_0"),
        ("right", "bb05582b_nohash_3"),
        ("marvin", "c1d39ce8_nohash_0"),
    ]
    for i, (word, stem) in enumerate(files):
        write_audio(root / word / f"{stem}.wav", 1.0, freq=300 + 80 * i, subtype="PCM_16")
    write_audio(root / "_background_noise_" / "white_noise.wav", 2.0)
    write_text(root / "validation_list.txt", "no/0b09edd3_nohash_0.wav\n")
    write_text(root / "testing_list.txt", "right/bb05582b_nohash_3.wav\n")
    return {
        "train": {
            "speechcommands-yes-0a7c2a8d_nohash_0": "yes",
            "speechcommands-yes-0a7c2a8d_nohash_1": "yes",
            "speechcommands-marvin-c1d39ce8_nohash_0": "marvin",
        },
        "validation": {"speechcommands-no-0b09edd3_nohash_0": "no"},
        "test": {"speechcommands-right-bb05582b_nohash_3": "right"},
    }


def _slurp_record(
    slurp_id: int, sentence: str, annotation: str, scenario: str, action: str, files: list[str]
) -> dict[str, Any]:
    tokens = [{"surface": w, "id": i, "lemma": w, "pos": "NN"} for i, w in enumerate(sentence.split())]
    return {
        "slurp_id": slurp_id,
        "sentence": sentence,
        "sentence_annotation": annotation,
        "intent": f"{scenario}_{action}",
        "action": action,
        "tokens": tokens,
        "scenario": scenario,
        "recordings": [{"file": f, "wer": 0.0, "ent_wer": 0.0, "status": "correct"} for f in files],
        "entities": [],
    }


def build_slurp(root: Path) -> dict[str, Any]:
    recs = {
        "train": [
            _slurp_record(
                13804,
                "wake me up at five am this week",
                "wake me up at [time : five am] [date : this week]",
                "alarm",
                "set",
                ["audio-1434542201-headset.flac", "audio-1434542201.flac"],
            )
        ],
        "devel": [
            _slurp_record(
                4130,
                "is my reminder alarm set for dance class",
                "is my reminder alarm set for [event_name : dance class]",
                "alarm",
                "query",
                ["audio-1504192882-headset.flac"],
            )
        ],
        "test": [
            _slurp_record(
                10, "what is the weather", "what is the weather", "weather", "query", ["audio-1490000000.wav"]
            )
        ],  # named .wav, shipped as .flac
    }
    for subset, rows in recs.items():
        write_text(root / "dataset" / "slurp" / f"{subset}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        for r in rows:
            for rec in r["recordings"]:
                write_audio(root / "audio" / "slurp_real" / (Path(rec["file"]).stem + ".flac"), 0.4)
    return {
        "train": {
            "ids": {"slurp-13804-audio-1434542201-headset", "slurp-13804-audio-1434542201"},
            "intent": "alarm_set",
            "sentence": "wake me up at five am this week",
            "slots": [{"type": "time", "value": "five am"}, {"type": "date", "value": "this week"}],
        },
        "devel": {
            "ids": {"slurp-4130-audio-1504192882-headset"},
            "intent": "alarm_query",
            "sentence": "is my reminder alarm set for dance class",
            "slots": [{"type": "event_name", "value": "dance class"}],
        },
        "test": {
            "ids": {"slurp-10-audio-1490000000"},
            "intent": "weather_query",
            "sentence": "what is the weather",
            "slots": [],
        },
    }


MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"


def build_meld(root: Path) -> dict[str, dict[str, str]]:
    """MELD.Raw: CSVs + <split dir>/dia{D}_utt{U}.mp4 with pre-extracted .wav (48 kHz stereo) beside them."""
    rows = {
        "train": [
            (1, "also I was the point person on my company's transition", "Chandler", "neutral", "neutral", 0, 0),
            (2, '"Oh my God!"', "Monica", "surprise", "positive", 0, 1),
        ],
        "dev": [
            (1, "Oh, God, I hate this.", "Rachel", "anger", "negative", 0, 0),
            (2, "It's gone.", "Ross", "sadness", "negative", 110, 7),
        ],  # a known gap: no video, no audio
        "test": [(1, "Why do all you're coffee mugs have numbers on the bottom?", "Mark", "joy", "positive", 3, 2)],
    }
    dirs = {"train": "train/train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
    expected: dict[str, dict[str, str]] = {}
    for split, rs in rows.items():
        lines = [MELD_HEADER]
        expected[split] = {}
        for sr_no, utt, spk, emo, sent, d, u in rs:
            quoted = '"' + utt.replace('"', '""') + '"'
            lines.append(f'{sr_no},{quoted},{spk},{emo},{sent},{d},{u},3,19,"00:14:38,127","00:14:40,378"')
            if (split, d, u) == ("dev", 110, 7):
                continue
            clip = root / dirs[split] / f"dia{d}_utt{u}"
            write_text(clip.with_suffix(".mp4"), "not a real video")
            write_audio(clip.with_suffix(".wav"), 0.5, sr=48000, channels=2)
            expected[split][f"meld-{split}-dia{d}-utt{u}"] = emo
        write_text(root / f"{split}_sent_emo.csv", "\n".join(lines) + "\n")
    return expected


def build_vocalsound(root: Path) -> dict[str, dict[str, str]]:
    split_files = {
        "train": ["f0003_0_cough", "f0003_0_throatclearing", "m0010_1_laughter"],
        "valid": ["f0004_0_sigh"],
        "test": ["m0083_0_sneeze", "m0083_0_sniff"],
    }
    expected: dict[str, dict[str, str]] = {}
    names = {"tr": "train", "val": "valid", "te": "test"}
    for short, subset in names.items():
        data = []
        expected[subset] = {}
        for stem in split_files[subset]:
            write_audio(root / "audio_16k" / f"{stem}.wav", 0.6)
            data.append({"wav": f"/data/sls/scratch/vocalsound/audio_16k/{stem}.wav", "labels": "/m/01b_21"})
            label = stem.split("_")[2]
            expected[subset][f"vocalsound-{stem}"] = "throat clearing" if label == "throatclearing" else label
        write_text(root / "datafiles" / f"{short}.json", json.dumps({"data": data}, indent=1))
    return expected
