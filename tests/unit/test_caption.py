"""Caption metrics: PTB tokens and CIDEr-D against pycocoevalcap's outputs, CIDEr-D by hand, SPICE discovery.

The pinned tokenisations are the output of the tokenizer pycocoevalcap 1.2 ships (stanford-corenlp-3.4.1.jar,
``edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase``), and the pinned CIDEr-D numbers come from
pycocoevalcap 1.2's ``PTBTokenizer`` + ``Cider`` run on the same captions; neither is needed to run these tests.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path

import pytest

from qwenaudio_train.eval import score
from qwenaudio_train.eval.caption import CORENLP_JARS, SPICE_JAR_ENV, cider_d, find_spice, ptb_tokenize, ptb_tokens
from qwenaudio_train.eval.scorers import caption_score

# (line, what the jar prints for it)
JAR_TOKENS = [
    ("A dog barks while cars pass by.", "a dog barks while cars pass by ."),
    ("The dog's bark, the cats' meows.", "the dog 's bark , the cats ' meows ."),
    ("Don't you think it can't be? I cannot say...", "do n't you think it ca n't be ? i can not say ..."),
    (
        "A man (in a hat) speaks -- loudly; birds chirp: tweet!",
        "a man -lrb- in a hat -rrb- speaks -- loudly ; birds chirp : tweet !",
    ),
    (
        "black-and-white TV at 3:30 p.m. costs $1,000.50 and/or more",
        "black-and-white tv at 3:30 p.m. costs $ 1,000.50 and/or more",
    ),
    (
        "Rock 'n' roll is gonna be great, isn't it? 'Tis so.",
        "rock 'n' roll is gon na be great , is n't it ? 't is so .",
    ),
    ('A man says "hello, how are you?" to a woman.', "a man says `` hello , how are you ? '' to a woman ."),
    ("“Quoted” ‘single’ text — em dash – en dash… café", "`` quoted '' ` single ' text -- em dash -- en dash ... café"),
    (
        "Mr. Smith and Dr. Jones, etc. at the U.S. border vs. them",
        "mr. smith and dr. jones , etc. at the u.s. border vs. them",
    ),
    ("no. 5 is approx. 10 min. later", "no. 5 is approx . 10 min . later"),
    ("wind blows!? yes?! no... ok.. fine.....", "wind blows !? yes ?! no ... ok . . fine ..."),
    ("kids' toys and o'clock, y'all, ma'am", "kids ' toys and o'clock , y' all , ma'am"),
    (
        "12.5% of people; #1 hit @home; 3.5mm jack; 1990s music; 7.1-channel",
        "12.5 % of people ; # 1 hit @home ; 3.5 mm jack ; 1990s music ; 7.1-channel",
    ),
    ("the end.)", "the end . -rrb-"),
]


@pytest.mark.parametrize(("line", "jar"), JAR_TOKENS)
def test_ptb_tokens_match_the_jar(line: str, jar: str) -> None:
    assert ptb_tokens(line) == jar.split()


def test_ptb_tokenize_drops_cocos_punctuation_but_not_brackets() -> None:
    assert ptb_tokenize('A man (in a hat) says: "Hi!" -- twice...') == "a man -lrb- in a hat -rrb- says hi twice"
    assert ptb_tokenize("It's a dog's life.\nReally!") == "it 's a dog 's life really"
    assert ptb_tokenize("") == ""
    assert ptb_tokens("A B", lowercase=False) == ["A", "B"]


# ---------------------------------------------------------------------------------------------- CIDEr-D


def test_cider_d_by_hand() -> None:
    # N = 2 samples, every n-gram in one sample's references: idf = log 2 for all. Sample A is identical; sample
    # B's "c" against "c d": unigram cosine 1/sqrt(2), and no bigram of its own.
    b_cosine = 1 / math.sqrt(2)
    score_, scores = cider_d(["a b", "c"], [["a b"], ["c d"]], n=2)
    penalty = math.exp(-((0 - 1) ** 2) / (2 * 6.0**2))  # lengths are bigram counts: 0 vs 1
    assert scores == pytest.approx([10.0, 10 * (b_cosine * penalty + 0.0) / 2])
    assert score_ == pytest.approx((scores[0] + scores[1]) / 2)
    # With n = 1 pycocoevalcap counts no bigram at all, so every length is 0 and there is no length penalty.
    assert cider_d(["a b", "c"], [["a b"], ["c d"]], n=1)[1] == pytest.approx([10.0, 10 * b_cosine])


def test_cider_d_averages_all_four_orders() -> None:
    # A two-word caption has no 3- or 4-grams: those orders contribute 0, so even a perfect match scores 5.
    _, scores = cider_d(["a b", "x y z w"], [["a b"], ["x y z w"]])
    assert scores == pytest.approx([5.0, 10.0])


def test_cider_d_clipping_and_reference_average() -> None:
    # "a a" against "a": unigram weights 2w vs w -> clipped numerator min(2w, w) * w = w^2, norms 2w and w -> 1/2
    # (n = 1: no length penalty, see above).
    _, scores = cider_d(["a a", "b"], [["a"], ["b"]], n=1)
    assert scores[0] == pytest.approx(10 * 0.5)
    # Two references: the similarities are averaged (the second one shares nothing).
    _, scores = cider_d(["a", "b"], [["a", "c"], ["b"]], n=1)
    assert scores[0] == pytest.approx(10 * (1 + 0) / 2)


def test_cider_d_properties() -> None:
    refs = [["a dog barks loudly"], ["rain falls on a roof"], ["a man speaks"]]
    perfect, _ = cider_d([r[0] for r in refs], refs)
    partial, _ = cider_d(["a dog barks", "rain falls", "a man"], refs)
    wrong, _ = cider_d(["a cat meows", "wind blows", "birds sing"], refs)
    assert perfect > partial > wrong >= 0.0
    assert cider_d(["", "rain falls on a roof", ""], refs)[1][0] == 0.0  # empty candidate
    assert cider_d(["a dog barks"], [["a dog barks"]]) == (0.0, [0.0])  # one sample: every idf is 0
    assert math.isnan(cider_d([], [])[0])
    # Document frequencies come from references only: candidates do not change the weights of other samples.
    first = cider_d(["a dog barks loudly", "x", "y"], refs)[1][0]
    assert first == cider_d(["a dog barks loudly", "z", "w"], refs)[1][0]
    with pytest.raises(ValueError, match="at least one reference"):
        cider_d(["a"], [[]])


CORPUS_REFS = [
    [
        "A dog barks while cars pass by.",
        "A dog is barking and vehicles drive past.",
        "Cars pass as a dog barks loudly.",
    ],
    ["Rain falls on a tin roof.", "Heavy rain is falling onto a metal roof.", "It's raining hard on the roof."],
    ["A man speaks while birds chirp.", "Birds are chirping and a man is talking."],
    ["Someone types on a keyboard.", "A person is typing on a computer keyboard."],
]
CORPUS_CANDS = [
    "a dog barks as cars pass by",
    "Rain is falling on a roof.",
    "a woman sings",
    "Someone is typing on a keyboard!<|endoftext|>",
]
# pycocoevalcap 1.2: PTBTokenizer (its jar) + Cider on CORPUS_CANDS (without <|endoftext|>) / CORPUS_REFS.
PYCOCOEVALCAP_CIDER = 2.1483312702204693
PYCOCOEVALCAP_PER_SAMPLE = [3.1823020784283536, 1.766969675912333, 0.0, 3.6440533265411905]


def test_caption_score_equals_pycocoevalcap() -> None:
    out = caption_score(CORPUS_CANDS, CORPUS_REFS, details=True)
    assert out["cider"] == pytest.approx(PYCOCOEVALCAP_CIDER, abs=1e-12)
    assert [d["cider"] for d in out["details"]] == pytest.approx(PYCOCOEVALCAP_PER_SAMPLE, abs=1e-12)
    assert out["details"][3]["pred"] == "someone is typing on a keyboard"
    assert out["details"][1]["refs"][2] == "it 's raining hard on the roof"
    assert out["refs_per_sample"] == 2.5 and out["n"] == 4.0


def test_caption_score_references_multi_and_missing_references() -> None:
    single = [refs[0] for refs in CORPUS_REFS]
    # The runner passes each sample's eval target in `references` and meta.captions in `references_multi`.
    multi = score("caption", CORPUS_CANDS, single, references_multi=CORPUS_REFS)
    assert multi["cider"] == pytest.approx(PYCOCOEVALCAP_CIDER, abs=1e-12)
    fallback = caption_score(CORPUS_CANDS, single, references_multi=[None, [], None, []])
    assert fallback["cider"] == pytest.approx(caption_score(CORPUS_CANDS, single)["cider"])
    assert fallback["refs_per_sample"] == 1.0
    # A sample with no reference at all is left out of the corpus (and counted).
    out = caption_score(CORPUS_CANDS + ["anything"], [*CORPUS_REFS, []], details=True)
    assert out["cider"] == pytest.approx(PYCOCOEVALCAP_CIDER, abs=1e-12)
    assert out["no_reference"] == 1.0 and math.isnan(out["details"][4]["cider"])
    empty = caption_score(["", "<|endoftext|>"], [["a b"], ["c d"]])
    assert empty["cider"] == 0.0 and empty["empty_predictions"] == 2.0
    with pytest.raises(ValueError, match="references_multi"):
        caption_score(["a"], ["a"], references_multi=[])


# ---------------------------------------------------------------------------------------------- SPICE


def _fake_java(bin_dir: Path, body: str) -> None:
    """A `java` executable on PATH standing in for the external SPICE jar (it reads and writes SPICE's files)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f"#!{sys.executable}\n{body}")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def _spice_dir(root: Path, with_corenlp: bool) -> Path:
    (root / "lib").mkdir(parents=True)
    jar = root / "spice-1.0.jar"
    jar.write_bytes(b"")
    if with_corenlp:
        for name in CORENLP_JARS:
            (root / "lib" / name).write_bytes(b"")
    return jar


def test_spice_without_installation_is_nan_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPICE_JAR_ENV, raising=False)
    out = caption_score(CORPUS_CANDS, CORPUS_REFS)
    assert math.isnan(out["spice"]) and math.isnan(out["spider"]) and not math.isnan(out["cider"])
    assert "stanford-corenlp-3.6.0-models.jar" in out["spice_note"]
    assert "SPICE not requested" in caption_score(CORPUS_CANDS, CORPUS_REFS, spice=False)["spice_note"]
    # A SPICE jar whose lib/ lacks CoreNLP (what `pip install pycocoevalcap` gives before its first download).
    jar = _spice_dir(tmp_path / "spice", with_corenlp=False)
    monkeypatch.setenv(SPICE_JAR_ENV, str(jar))
    found, why = find_spice()
    assert found is None and "lacks stanford-corenlp-3.6.0.jar, stanford-corenlp-3.6.0-models.jar" in why
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert find_spice(jar)[1].startswith("no `java` on PATH")


def test_spice_runner_file_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in scores each caption by the fraction of its words found in a reference, in SPICE's output
    # format, and records its arguments: the scorer must pass tokenised captions and read the scores back.
    _fake_java(
        tmp_path / "bin",
        (
            "import json, sys\n"
            "args = sys.argv[1:]\n"
            "items = json.load(open(args[3]))\n"
            "json.dump(args, open(args[3] + '.args', 'w'))\n"
            "out = [{'image_id': it['image_id'], 'scores': {'All': {'f': "
            "sum(w in ' '.join(it['refs']).split() for w in it['test'].split()) / max(1, len(it['test'].split()))}}}"
            " for it in items]\n"
            "json.dump(out, open(args[args.index('-out') + 1], 'w'))\n"
        ),
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    jar = _spice_dir(tmp_path / "spice", with_corenlp=True)
    assert find_spice(jar) == (jar, "")
    out = caption_score(["a dog barks.", "a cat"], [["A dog barks!"], ["rain"]], spice_jar=str(jar), details=True)
    assert out["spice"] == pytest.approx(0.5) and [d["spice"] for d in out["details"]] == [1.0, 0.0]
    assert out["spider"] == pytest.approx((out["cider"] + 0.5) / 2) and "spice_note" not in out
    # A failing run is a nan with the reason, never an exception.
    _fake_java(tmp_path / "bin", "import sys\nprint('Exception in thread main', file=sys.stderr)\nsys.exit(1)\n")
    failed = caption_score(["a dog"], [["a dog"]], spice_jar=str(jar))
    assert math.isnan(failed["spice"]) and "SPICE run failed" in failed["spice_note"]
    assert "Exception in thread main" in failed["spice_note"]


def test_spice_input_is_tokenised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_java(
        tmp_path / "bin",
        (
            "import json, shutil, sys\n"
            "args = sys.argv[1:]\n"
            f"shutil.copy(args[3], {str(tmp_path / 'seen.json')!r})\n"
            "items = json.load(open(args[3]))\n"
            "json.dump([{'image_id': it['image_id'], 'scores': {'All': {'f': 'NaN'}}} for it in items],"
            " open(args[args.index('-out') + 1], 'w'))\n"
        ),
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    jar = _spice_dir(tmp_path / "spice", with_corenlp=True)
    out = caption_score(["It's a Dog."], [["A dog, barking!"]], spice_jar=str(jar))
    assert json.loads((tmp_path / "seen.json").read_text()) == [
        {"image_id": 0, "test": "it 's a dog", "refs": ["a dog barking"]}
    ]
    assert math.isnan(out["spice"])  # SPICE's "NaN" scores become nan, as pycocoevalcap's float_convert
