"""Text as the scorers compare it: the release's cleaning (``remove_sp`` + fairseq's lower-casing tokenizer), the
Qwen2-Audio normalisers (Whisper's basic and English normalisers) and the items WER counts over.

What the release does (QwenLM/Qwen-Audio ``eval_audio/evaluate_*.py``): every ``<|...|>`` token becomes a space,
whitespace runs collapse to one space, the space before ``!,.?;:`` goes, leading space goes, lowercase; no
punctuation removal, no Whisper normaliser. Chinese is scored per character with all whitespace removed (``yue``
and ``ja`` too here: the release has no ASR set for them).

Must not: parse target formats (``qwenaudio_train.formats``), compute a metric, import torch.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path

from qwenaudio_train.formats import AUDIO_SPAN_RE, SPECIAL_TOKEN_RE

PUNCS = "!,.?;:"  # the release's PUNCS: the space before these is removed
_WHITESPACE_RE = re.compile(r"\s+")
_SPACE_BEFORE_PUNC_RE = re.compile(f" ?([{re.escape(PUNCS)}])")

# Languages written without spaces between words: scored per character, whitespace removed.
# The release does this for "zh" only (its only such ASR language); Qwen2-Audio adds "yue".
CHAR_LEVEL_LANGS = frozenset({"zh", "yue", "ja"})

WER_MODES = ("release", "normalized", "basic")


def strip_special_tokens(text: str) -> str:
    """Remove ``<audio>...</audio>`` spans and every ``<|...|>`` token (each becomes a space), collapse spaces."""
    text = AUDIO_SPAN_RE.sub(" ", text)
    text = SPECIAL_TOKEN_RE.sub(" ", text)
    return _WHITESPACE_RE.sub(" ", text).strip()


def clean_text(text: str, lang: str = "en", lowercase: bool = True) -> str:
    """The release's cleaning (``remove_sp`` then the lower-casing tokenizer), as one string.

    ``"<|en|>Hello , World !<|endoftext|>"`` -> ``"hello, world!"``; for char-level languages all whitespace
    is removed: ``"今天 天气"`` -> ``"今天天气"``.
    """
    text = AUDIO_SPAN_RE.sub(" ", text)
    text = SPECIAL_TOKEN_RE.sub(" ", text)
    text = _WHITESPACE_RE.sub(" ", text)
    text = _SPACE_BEFORE_PUNC_RE.sub(r"\1", text)
    text = text.strip()  # the release only lstrips; the trailing space never survives .split()
    if lang in CHAR_LEVEL_LANGS:
        text = _WHITESPACE_RE.sub("", text)
    return text.lower() if lowercase else text


def _remove_symbols(text: str) -> str:
    # Whisper's remove_symbols: NFKC, then every mark/symbol/punctuation character becomes a space.
    return "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", text))


def basic_normalize(text: str) -> str:
    """Whisper's ``BasicTextNormalizer`` (default arguments): lowercase, drop ``[...]``/``<...>`` and ``(...)``
    spans, every punctuation/symbol/mark character becomes a space, collapse whitespace."""
    text = text.lower()
    text = re.sub(r"[<\[][^>\]]*[>\]]", "", text)
    text = re.sub(r"\(([^)]+?)\)", "", text)
    text = _remove_symbols(text).lower()
    return _WHITESPACE_RE.sub(" ", text)


_english_normalizer: Callable[[str], str] | None = None
SPELLING_MAP_ENV = "QWENAUDIO_WHISPER_SPELLING"  # a path to Whisper's english.json / normalizer.json
SPELLING_MAP_NAMES = ("english.json", "normalizer.json")


def spelling_map_path() -> Path | None:
    """Where Whisper's British->American spelling map (``colour`` -> ``color``, ~1,700 entries) is on this
    machine, or None. It is data, shipped beside Whisper's code or tokenizer, never in transformers' code:
    ``$QWENAUDIO_WHISPER_SPELLING`` (a file), openai-whisper's ``whisper/normalizers/english.json``, or the
    ``normalizer.json`` of an ``openai/whisper-*`` tokenizer already in the Hugging Face cache (offline: nothing
    is downloaded)."""
    env = os.environ.get(SPELLING_MAP_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${SPELLING_MAP_ENV}={env!r} is not a file: point it at Whisper's english.json")
        return path
    try:
        import whisper.normalizers as whisper_normalizers

        candidate = Path(whisper_normalizers.__file__).parent / "english.json"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    found = sorted(cache.expanduser().glob("models--openai--whisper-*/snapshots/*/normalizer.json"))
    return found[0] if found else None


def load_spelling_map() -> dict[str, str]:
    """Whisper's spelling map from ``spelling_map_path``; ``{}`` with a warning when none is on this machine."""
    path = spelling_map_path()
    if path is None:
        warnings.warn(
            "Whisper's English spelling map (english.json) is not on this machine: the normalised English mode "
            f"runs without it (colour != color). Set ${SPELLING_MAP_ENV} to the file, or pip install "
            "openai-whisper",
            stacklevel=3,
        )
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def english_normalize(text: str) -> str:
    """Whisper's ``EnglishTextNormalizer`` (numbers, contractions, titles, British->American spellings), via
    the copy in transformers with Whisper's spelling map (``load_spelling_map``: read once, on first use).

    Falls back to ``basic_normalize`` (with a warning) when transformers is unavailable.
    """
    global _english_normalizer
    if _english_normalizer is None:
        try:
            from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
        except ImportError:  # pragma: no cover - transformers is a dependency of the project
            warnings.warn("transformers unavailable: English normaliser falls back to the basic one", stacklevel=2)
            _english_normalizer = basic_normalize
        else:
            _english_normalizer = EnglishTextNormalizer(load_spelling_map())
    return _english_normalizer(text)


def reset_english_normalizer() -> None:
    """Forget the loaded normaliser, so the next call reads the spelling map again (tests, a changed env)."""
    global _english_normalizer
    _english_normalizer = None


def _drop_punctuation_tokens(words: list[str]) -> list[str]:
    # fairseq EvaluationTokenizer(punctuation_removal=True): drop tokens made only of punctuation characters.
    return [w for w in words if not all(unicodedata.category(c)[0] == "P" for c in w)]


def tokenize_for_wer(text: str, lang: str = "en", mode: str = "release") -> list[str]:
    """The items edit distance runs over: words, or characters for ``CHAR_LEVEL_LANGS``.

    * ``release``: ``clean_text`` then split (Qwen-Audio).
    * ``normalized``: Qwen2-Audio's chain: clean, then for ``en`` the Whisper English normaliser followed by the
      basic one (their if/else applies both), for other languages the basic one (Qwen2-Audio uses cn_tn's
      TextNorm for ``zh`` and zhconv for ``yue``: not available here), then punctuation-only tokens dropped.
    * ``basic``: clean, then Whisper's basic normaliser for every language.
    """
    if mode not in WER_MODES:
        raise ValueError(f"unknown WER mode {mode!r}; known: {', '.join(WER_MODES)}")
    if mode == "release":
        words = clean_text(text, lang).split()
    else:
        text = clean_text(text, lang, lowercase=False)
        if mode == "normalized" and lang == "en":
            text = english_normalize(text)
        words = _drop_punctuation_tokens(basic_normalize(text).lower().split())
    if lang in CHAR_LEVEL_LANGS:
        return list("".join(words))
    return words


def norm_label(text: str) -> str:
    """A span label or entity field as compared: special tokens removed, whitespace collapsed, lower case."""
    return strip_special_tokens(text).lower()
