"""Caption metrics (AAC, MC): the COCO caption evaluation's tokenisation and CIDEr-D, and SPICE when installed.

Audio captioning is scored with the MS-COCO caption evaluation code (``pycocoevalcap``): captions are tokenised
with Stanford CoreNLP's ``PTBTokenizer`` (``-preserveLines -lowerCase``), tokens that are punctuation are dropped,
then CIDEr-D, SPICE and SPIDEr = (CIDEr-D + SPICE) / 2 are computed over the whole group. This module reproduces
the tokenisation and CIDEr-D in pure Python, and runs SPICE only when a complete SPICE installation is on disk.

* ``ptb_tokens`` / ``ptb_tokenize``: a re-implementation of PTBTokenizer 3.4.1 (the jar pycocoevalcap ships) for
  English, checked token for token against that jar (``tests/unit/test_caption.py`` pins its outputs). It agrees
  on ordinary English text: words, hyphenated words, clitics (``dog's`` -> ``dog 's``, ``don't`` -> ``do n't``,
  ``cannot`` -> ``can not``, ``gonna`` -> ``gon na``), numbers (``1,000.50``, ``3:30``), acronyms and the
  abbreviations it keeps (``p.m.``, ``u.s.``, ``mr.``, ``etc.``; ``no.`` only before a number), quotes, brackets
  (``-lrb-``: lower-cased, so pycocoevalcap does NOT remove them, whereas it does remove quotes), dashes,
  ellipses, ``!!`` / ``?!`` runs and the currency signs it maps (``€`` -> ``$``, ``£`` -> ``#``). Where it can
  differ: SGML/XML tags (``<b>``), URLs (``http://``), runs of curly double quotes, apostrophes inside words
  other than the forms above (``fo'c'sle``), ``@@``, rare characters the jar normalises (other currency signs,
  fractions), Java's lower-casing of a few non-English letters (``İ``), and the extra ``.`` the jar emits after
  some abbreviations (``etc.``, ``jan.``) when the next word, possibly on the NEXT caption of its input file,
  starts with a capital: a ``.`` that pycocoevalcap drops anyway, so the tokenised caption is the same.
* ``cider_d``: CIDEr-D exactly as pycocoevalcap's ``cider/cider_scorer.py`` computes it (n = 4, sigma = 6; see its
  docstring), which is what COCO, Clotho/DCASE and the Qwen-Audio paper report as "CIDEr".
* ``find_spice`` / ``spice``: SPICE needs Java and the SPICE 1.0 jar with Stanford CoreNLP 3.6.0 and its models
  (pycocoevalcap downloads those from the internet at first use). Nothing is ever downloaded here: without a
  complete installation ``find_spice`` says what is missing and the scorer reports SPICE as nan.

Owns: the tokenisation, the arithmetic and ``caption_score``, the metric-family entry point the registry
(``scorers.py``) names ``caption``. Must not: import torch, download anything, or know about tasks, shards or the
eval runner.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.eval.text import strip_special_tokens

# ---------------------------------------------------------------------------------------------------------------
# PTB tokenisation (Stanford CoreNLP 3.4.1 PTBTokenizer, options -preserveLines -lowerCase)
# ---------------------------------------------------------------------------------------------------------------

# pycocoevalcap's tokenizer/ptbtokenizer.py drops these tokens after tokenising. The bracket tokens are listed in
# upper case but the tokenizer lower-cases them, so "-lrb-" etc. survive: reproduced on purpose.
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])  # fmt: skip

_A = r"[^\W_]"  # a letter or digit (any script)
_L = r"[^\W\d_]"  # a letter
_END = r"(?![^\W_])"  # not followed by a letter or digit
_CLITIC = r"(?:s|m|d|re|ve|ll)"

# Abbreviations the jar keeps with their period (probed with lower, Capitalised and UPPER forms).
_ABBREV_ANY_CASE = (
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri "
    "ala ariz calif colo conn ct dak fla ga ind kan kans ky md mich minn mo mont neb nev okla penn tenn va vt "
    "wis wisc wyo inc co cos corp ltd plc bancorp dept bhd assn univ intl sys invt elec natl tel est ext sq "
    "jr sr bros blvd rd esq mr mrs ms drs dr prof profs sen sens rep reps atty attys lt col gen messrs gov govs "
    "adm rev maj sgt cpl pvt capt st ste ave pres lieut hon brig cmdr comdr pfc spc supt supts det mt ft etc al "
    "seq vs alex wm jos cie cf bldg"
).split()
_ABBREV_NOT_LOWER = "ark del ill la mass miss ore pa tex wash".split()  # "Ark." and "ARK." kept, "ark." split
_ABBREV_NOT_UPPER = "pty mfg mtg".split()  # "mfg." and "Mfg." kept, "MFG." split
_ABBREV_BEFORE_NUMBER = "ca fig figs prop no nos art pp op".split()  # "no. 5" kept, "said no." split


def _alternatives(words: Sequence[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def _abbrev_pattern() -> str:
    not_lower = _alternatives([w.capitalize() for w in _ABBREV_NOT_LOWER] + [w.upper() for w in _ABBREV_NOT_LOWER])
    not_upper = _alternatives(_ABBREV_NOT_UPPER + [w.capitalize() for w in _ABBREV_NOT_UPPER])
    return (
        rf"(?:(?i:{_alternatives(_ABBREV_ANY_CASE)})|{not_lower}|{not_upper})\.{_END}"
        rf"|(?i:{_alternatives(_ABBREV_BEFORE_NUMBER)})\.(?=\s+\d)"
    )


# A word: a number with . , : between digits (3:30, 1,000.50) or a run of letters/digits, then more runs joined by
# - _ / @ (black-and-white, 7.1-channel, a@b) or by . ! ? between letters (ab.cd, a!b). "3.5mm" is "3.5" + "mm".
_WORD = rf"(?:\d+(?:[.,:]\d+)+|{_A}+)(?:(?:[-_/@]|(?<={_L})[.!?](?={_L})){_A}+)*"

# (kind, pattern); at each position the longest match wins, ties go to the earlier rule (JFlex's rule).
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(p))
    for kind, p in [
        ("acronym", rf"{_L}(?:\.{_L})+\.?|{_L}\."),  # p.m.  u.s.a  x.
        ("abbrev", _abbrev_pattern()),  # mr.  etc.  no. (before a number)
        ("word", _WORD),
        ("apostrophe_word", rf"(?i:ne'er|ma'am|ol')|(?![yY]')(?i:{_L}'(?!{_CLITIC}{_END}){_L}+)"),  # o'clock, d'ya
        ("y_apostrophe", r"[yY]'(?=[^\W\d_])"),  # y'all -> y' all
        ("signed_number", r"[-+.,:]\d+(?:[.,:]\d+)*"),  # -12  +3  .5  (and ",12" ":12", as the jar does)
        ("apostrophe_number", r"['’]\d+s?(?![^\W_]|[.,:]\d)"),  # '90s
        ("nt", rf"[nN]['’][tT]{_END}"),
        ("clitic", rf"['’](?i:{_CLITIC}){_END}|’[sS]"),  # 's 'll ...; a curly ’s even before a letter
        ("leading_apostrophe", rf"['’][nN]'|['’](?i:cause|em|til|n){_END}"),  # 'cause 'em 'til 'n 'n'
        ("t_of_tis", rf"['’][tT](?=(?i:is|was){_END})"),  # 'tis -> 't is
        ("ampersand_word", r"[A-Z]+&[A-Z]+"),  # AT&T, Q&A (upper case only: "a&b" is split)
        ("hashtag", rf"[#@]{_L}\w*"),
        ("ellipsis", r"\.{3,5}|…"),
        ("bang", r"[!?]+"),
        ("long_dashes", r"-{5,}"),  # kept as they are
        ("dashes", r"-{2,4}|[—–]"),  # -> "--"
        ("double_quote", r"\"|“|”|``|''|‘‘|’’"),
        ("single_quote", r"['‘’`]"),
        ("bracket", r"[()\[\]{}]"),
        ("run", r"\*+|<+|>+|#+|_+"),
        ("other", r"\S"),
    ]
]
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_SPLIT_WORDS = {"cannot": 3, "gonna": 3, "gotta": 3, "wanna": 3, "lemme": 3, "gimme": 3}  # -> "can not", "gon na"
_NT_AHEAD = re.compile(rf"['’][tT]{_END}")
_SPACE = re.compile(r"\s+")
_PLAIN = re.compile(r"[^\W_]+(?!\S)")


def _normalise(kind: str, tok: str, text: str, end: int) -> str:
    if kind in ("nt", "clitic"):
        return tok.replace("’", "'")
    if kind == "dashes":
        return "--"
    if kind == "ellipsis":
        return "..."
    if kind == "bracket":
        return _BRACKETS[tok]
    if kind == "double_quote":  # opening before a letter or digit, closing otherwise (both dropped by COCO)
        return "``" if tok in ("“", "``", "‘‘") or (tok == '"' and re.match(_A, text[end : end + 1])) else "''"
    if kind == "single_quote":
        return "`" if tok in ("‘", "`") or (tok == "'" and re.match(_A, text[end : end + 1])) else "'"
    return {"€": "$", "£": "#"}.get(tok, tok)


def ptb_tokens(text: str, lowercase: bool = True) -> list[str]:
    """PTBTokenizer's tokens of one line, punctuation included (``-preserveLines``; ``-lowerCase`` by default).

    ``"A dog's barking, (loudly)."`` -> ``["a", "dog", "'s", "barking", ",", "-lrb-", "loudly", "-rrb-", "."]``.
    """
    out: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
            continue
        plain = _PLAIN.match(text, pos)
        if plain and (pos == 0 or text[pos - 1].isspace()):  # fast path: a bare word between spaces
            tok = plain.group(0)
            cut = _SPLIT_WORDS.get(tok.lower(), 0)
            out += [tok[:cut], tok[cut:]] if cut else [tok]
            pos = plain.end()
            continue
        best_kind, best_end = "other", pos
        for kind, rule in _RULES:
            m = rule.match(text, pos)
            if m and m.end() > best_end:
                best_kind, best_end = kind, m.end()
        tok = text[pos:best_end]
        if best_kind in ("word", "apostrophe_word"):
            low = tok.lower()
            if low in _SPLIT_WORDS and text[best_end : best_end + 1] not in ("'", "’"):  # cannot -> can not
                cut = _SPLIT_WORDS[low]
                out += [tok[:cut], tok[cut:]]
                pos = best_end
                continue
            if len(tok) > 1 and tok[-1] in "nN" and _NT_AHEAD.match(text, best_end):  # don't -> do n't
                best_end -= 1
                tok = tok[:-1]
        out.append(_normalise(best_kind, tok, text, best_end))
        pos = best_end
    return [t.lower() for t in out] if lowercase else out


def ptb_tokenize(text: str) -> str:
    """A caption as pycocoevalcap's ``PTBTokenizer.tokenize`` returns it: lower-cased tokens joined by single
    spaces, the tokens of ``PUNCTUATIONS`` dropped (newlines are spaces). ``"A dog barks."`` -> ``"a dog barks"``."""
    return " ".join(t for t in ptb_tokens(text.replace("\n", " ")) if t not in PUNCTUATIONS)


# ---------------------------------------------------------------------------------------------------------------
# CIDEr-D
# ---------------------------------------------------------------------------------------------------------------


def _ngrams(sentence: str, n: int) -> Counter[tuple[str, ...]]:
    words = sentence.split()
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def cider_d(
    candidates: Sequence[str], references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
) -> tuple[float, list[float]]:
    """(corpus CIDEr-D, per-sample scores) of tokenised captions, as pycocoevalcap's ``Cider().compute_score``.

    For every sample, each n-gram (1 <= k <= n) of a caption gets the weight ``tf * idf`` with ``tf`` its raw
    count in that caption and ``idf = log(N) - log(max(1, df))``, where ``N`` is the number of samples in the
    corpus and ``df`` the number of samples whose REFERENCES contain the n-gram (candidates never count). For
    each order k and each reference, with the vectors ``g`` (candidate) and ``r`` (reference) of that order:

        sim_k = sum_over_candidate_ngrams(min(g, r) * r) / (|g| * |r|)    (clipped cosine; not divided if a norm is 0)
                * exp(-(l_g - l_r)^2 / (2 sigma^2))                       (length penalty)

    and the sample's score is ``10 * mean_k(sum_over_references(sim_k) / n_references)``; the corpus score is the
    mean over samples. ``l`` is what pycocoevalcap counts as the length: the number of BIGRAMS of the caption
    (``max(words - 1, 0)``), which gives the same difference as word counts whenever both captions have a word.

    Consequences worth knowing: a corpus of ONE sample scores 0 (every idf is log 1 - log 1 = 0), an n-gram in the
    references of every sample weighs 0, an empty candidate scores 0, and the score is not bounded by 10.
    Inputs are already tokenised: words are split on whitespace. (``n`` other than 4 is ours: pycocoevalcap always
    counts 1- to 4-grams and fails for ``n < 4``; with ``n < 2`` no bigram is counted, so there is no length
    penalty.) A sample without references raises ValueError
    (pycocoevalcap asserts); ``caption_score`` leaves such samples out first.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every sample needs at least one reference caption")
    if not candidates:
        return math.nan, []
    cand_counts = [_ngrams(c, n) for c in candidates]
    ref_counts = [[_ngrams(r, n) for r in refs] for refs in references]
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for refs in ref_counts:
        doc_freq.update({g for counts in refs for g in counts})
    log_n = math.log(float(len(references)))

    def vector(counts: Counter[tuple[str, ...]]) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            weight = float(tf) * (log_n - math.log(max(1.0, float(doc_freq[gram]))))
            vec[k][gram] = weight
            norm[k] += weight * weight
            if k == 1:  # pycocoevalcap's "length": the bigram count
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for cand, refs in zip(cand_counts, ref_counts):
        vec, norm, length = vector(cand)
        total = [0.0] * n
        for ref in refs:
            vec_r, norm_r, length_r = vector(ref)
            penalty = math.exp(-((length - length_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(w, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, w in vec[k].items())
                if norm[k] != 0 and norm_r[k] != 0:
                    val /= norm[k] * norm_r[k]
                total[k] += val * penalty
        scores.append(10.0 * (sum(total) / n) / len(refs))
    return sum(scores) / len(scores), scores


# ---------------------------------------------------------------------------------------------------------------
# SPICE (external: Java + SPICE 1.0 + Stanford CoreNLP 3.6.0 models)
# ---------------------------------------------------------------------------------------------------------------

SPICE_JAR_ENV = "QWENAUDIO_SPICE_JAR"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")  # in lib/ beside the jar
SPICE_INSTALL_HINT = (
    "SPICE needs `java` on PATH (Java 8 or 11: SPICE 1.0 is known to fail on Java 17+ when its cache is on; we run "
    "it without the cache), and spice-1.0.jar with lib/ holding its jars and Stanford CoreNLP 3.6.0: "
    "`pip install pycocoevalcap` ships spice-1.0.jar and lib/ but NOT CoreNLP; get stanford-corenlp-full-2015-12-09 "
    "and copy stanford-corenlp-3.6.0.jar and stanford-corenlp-3.6.0-models.jar into pycocoevalcap/spice/lib/ "
    f"(or point {SPICE_JAR_ENV} at a spice-1.0.jar whose lib/ has them)."
)


def find_spice(spice_jar: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """(path of a runnable spice-1.0.jar, "") or (None, why not). Never downloads anything.

    Looks at ``spice_jar``, then ``$QWENAUDIO_SPICE_JAR``, then an installed ``pycocoevalcap`` package (without
    importing it: importing its SPICE module starts a download).
    """
    candidates = [Path(p) for p in (spice_jar, os.environ.get(SPICE_JAR_ENV)) if p]
    spec = find_spec("pycocoevalcap")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "spice" / "spice-1.0.jar" for loc in spec.submodule_search_locations]
    if not candidates:
        return None, "no SPICE installation (pycocoevalcap not installed, no spice_jar given). " + SPICE_INSTALL_HINT
    if shutil.which("java") is None:
        return None, "no `java` on PATH. " + SPICE_INSTALL_HINT
    problems = []
    for jar in candidates:
        missing = [name for name in CORENLP_JARS if not (jar.parent / "lib" / name).is_file()]
        if not jar.is_file():
            problems.append(f"{jar} does not exist")
        elif missing:
            problems.append(f"{jar.parent / 'lib'} lacks {', '.join(missing)}")
        else:
            return jar, ""
    return None, "; ".join(problems) + ". " + SPICE_INSTALL_HINT


def spice(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    jar: Path,
    memory: str = "8G",
    timeout: float | None = None,
) -> tuple[float, list[float]]:
    """(mean SPICE F-score, per-sample F-scores) from the SPICE jar, as pycocoevalcap's ``Spice.compute_score``
    (its input and output JSON; ``-subset -silent``), but without ``-cache``. Raises on a failed run
    (``subprocess.CalledProcessError`` / ``TimeoutExpired`` / ``OSError``); the scorer turns that into nan."""
    with tempfile.TemporaryDirectory(prefix="spice-") as tmp:
        in_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_file.write_text(
            json.dumps(
                [{"image_id": i, "test": c, "refs": list(r)} for i, (c, r) in enumerate(zip(candidates, references))]
            )
        )
        subprocess.run(
            ["java", "-jar", f"-Xmx{memory}", str(jar), str(in_file), "-out", str(out_file), "-subset", "-silent"],
            cwd=jar.parent,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in json.loads(out_file.read_text())}

    def _float(x: object) -> float:
        try:
            return float(x)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    scores = [_float(by_id.get(i)) for i in range(len(candidates))]
    return (sum(scores) / len(scores) if scores else math.nan), scores


# caption_score's `spice` flag (public keyword) shadows the function inside it.
_run_spice = spice


# --------------------------------------------------------------------------------------------------------------
# Captions (AAC, MC): CIDEr-D, SPICE, SPIDEr
# --------------------------------------------------------------------------------------------------------------


def _reference_list(ref: str | Sequence[str] | None) -> list[str]:
    if ref is None:
        return []
    return [ref] if isinstance(ref, str) else [str(r) for r in ref]


def caption_score(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    *,
    references_multi: Sequence[Sequence[str] | None] | None = None,
    n: int = 4,
    sigma: float = 6.0,
    spice: bool = True,
    spice_jar: str | None = None,
    details: bool = False,
) -> Scores:
    """CIDEr-D (headline ``cider``), SPICE and SPIDEr of a group of captions, as pycocoevalcap computes them.

    References: ``references[i]`` is one caption or the list of all captions of sample i (Clotho has 5, AudioCaps
    5 on its test set). ``references_multi[i]``, when given and non-empty, replaces ``references[i]``: the runner
    passes a sample's ``meta.captions`` there and its eval target in ``references``, so a corpus with several
    captions per clip is scored against all of them (as published AAC numbers are) and one with a single caption
    still scores. CIDEr-D's document frequencies come from the references of THIS group, so scores depend on the
    group (one sample alone always scores 0) and only the scores of the same test set compare.

    Every caption loses its special tokens (``<|endoftext|>``...) and is tokenised as pycocoevalcap does
    (``ptb_tokenize``: PTB tokens, lower case, punctuation dropped); then ``cider_d``. A
    prediction that is empty after that scores 0 (``empty_predictions`` counts them). A sample without any
    reference caption is left out of every score (``no_reference`` counts them).

    SPICE runs only when ``find_spice(spice_jar)`` finds a complete installation (Java, SPICE 1.0 and
    Stanford CoreNLP 3.6.0 with its models: nothing is downloaded); otherwise, or when its run fails, ``spice``
    and ``spider`` (= (CIDEr-D + SPICE) / 2) are nan and ``spice_note`` says why and what to install.
    ``spice=False`` skips it.
    """
    check_pairs(predictions, references)
    if references_multi is not None and len(references_multi) != len(references):
        raise ValueError(f"{len(references_multi)} references_multi entries but {len(references)} references")
    cands: list[str] = []
    refs: list[list[str]] = []
    kept: list[int] = []
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        multi = _reference_list(references_multi[i]) if references_multi is not None else []
        ref_list = [ptb_tokenize(strip_special_tokens(r)) for r in (multi or _reference_list(ref))]
        if not ref_list:
            continue
        kept.append(i)
        cands.append(ptb_tokenize(strip_special_tokens(pred)))
        refs.append(ref_list)
    cider, per_sample = cider_d(cands, refs, n=n, sigma=sigma) if cands else (math.nan, [])
    out: Scores = {"cider": cider, "spice": math.nan, "spider": math.nan}
    spice_scores: list[float] = []
    if not spice:
        out["spice_note"] = "SPICE not requested (spice=False)"
    elif not cands:
        out["spice_note"] = "no sample with a reference caption"
    else:
        jar, why = find_spice(spice_jar)
        if jar is None:
            out["spice_note"] = why
        else:
            try:
                out["spice"], spice_scores = _run_spice(cands, refs, jar)
                out["spider"] = (cider + out["spice"]) / 2
            except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                stderr = getattr(e, "stderr", b"") or b""
                tail = stderr.decode(errors="replace").strip().splitlines()[-3:] if isinstance(stderr, bytes) else []
                out["spice_note"] = f"SPICE run failed: {e!r} {' | '.join(tail)} " + SPICE_INSTALL_HINT
    out.update(
        {
            "refs_per_sample": ratio(sum(len(r) for r in refs), len(refs)),
            "empty_predictions": float(sum(not c for c in cands)),
            "no_reference": float(len(references) - len(kept)),
            "n": float(len(references)),
        }
    )
    if details:
        rows = [{"cider": math.nan, "pred": strip_special_tokens(p), "refs": []} for p in predictions]
        for k, i in enumerate(kept):
            rows[i].update(cider=per_sample[k], pred=cands[k], refs=refs[k])
            if spice_scores:
                rows[i]["spice"] = spice_scores[k]
        out["details"] = rows
    return out
