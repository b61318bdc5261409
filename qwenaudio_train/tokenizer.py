"""Text <-> ids with the Qwen-Audio special tokens, behind one small interface.

Owns: `AudioTokenizer` (encode/decode/ids of the key tokens) over two back-ends, `load_tokenizer` that picks one,
the `<audio>PATH</audio>` span expansion of the release, and `train_bpe_tokenizer`, the tiny deterministic BPE
the demo and the tests use.

Which special-token strings in text become ids (`allowed_special`): "all" (the release tokenizer's default; tags
written in task prompts) or "audio", only the audio tags of `tags.AUDIO_SPECIAL_TOKENS` (the release's `AUDIO_ST`:
task, language and time tokens, `<audio>`, `</audio>`, the pad), as the release's chat (`make_context`) encodes
system, user and assistant text: `<|im_end|>`, `<|endoftext|>` or `<|extra_3|>` typed by a user stay ordinary text.

Back-ends:
  (a) tiktoken over a Qwen-v1 ranks file (`*.tiktoken`, or a directory holding `qwen.tiktoken`, like the released
      checkpoints): the released ids exactly (`<audio>` = 155163) without `trust_remote_code`;
  (b) any transformers tokenizer (a directory, or a hub name already in the local cache), with the 208 + 3314
      special tokens registered as special tokens in released order (only those it lacks get new ids).
      One holding Qwen2-Audio's three audio tokens loads as-is, its ids kept (model family qwen2_audio).

Times past 30 s (docs/long_audio.md): `long_time_tokens=True` appends `tags.LONG_TIME_TOKENS` (audio tags) right after
the last released id; the saved sidecar records it. Without it, nothing is appended (released and demo ids as before).

Must not: know about tags grammar beyond the token lists of `tags.py`, load audio, or import torch.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qwenaudio_train.tags import (
    AUDIO_END,
    AUDIO_PAD,
    AUDIO_SPECIAL_TOKENS,
    AUDIO_START,
    ENDOFTEXT,
    IM_END,
    IM_START,
    LONG_TIME_TOKENS,
    QWEN2_AUDIO_TOKENS,
    SPECIAL_TOKENS,
)

if TYPE_CHECKING:  # model.family is imported only for a Qwen2-Audio tokenizer: the default path stays torch-free
    from qwenaudio_train.model.family import ModelFamily

AllowedSpecial = Literal["all", "audio"]
ALLOWED_SPECIAL: tuple[str, ...] = ("all", "audio")
# The release's AUDIO_ST: the only special tokens its chat lets text spell.
AUDIO_TAGS = frozenset(AUDIO_SPECIAL_TOKENS)

# The pre-tokenizer regex of Qwen (v1 tiktoken, and Qwen2's tokenizer.json).
QWEN_PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN_TIKTOKEN_FILE = "qwen.tiktoken"
SIDECAR_FILE = "qwenaudio_tokenizer.json"

# The release's pattern for audio references in text (tokenization_qwen.extract_audio_urls), non-greedy.
AUDIO_SPAN_RE = re.compile(re.escape(AUDIO_START) + r"(.*?)" + re.escape(AUDIO_END))
# What `train_bpe_tokenizer` removes from its corpus so no merge is learnt across a special token.
_SPECIALS_IN_TEXT_RE = re.compile("|".join([r"<\|[^|<>]+\|>", *map(re.escape, (AUDIO_START, AUDIO_END, AUDIO_PAD))]))
# Every audio tag matches this; a match is a tag only if it is in AUDIO_TAGS (`<|extra_3|>` matches and stays text).
# No tag can start inside a match (that needs `<` or `[`), so scanning here finds the tags tiktoken finds.
_TAG_CANDIDATE_RE = re.compile("|".join([r"<\|[^|<>\[]+\|>", *map(re.escape, (AUDIO_START, AUDIO_END, AUDIO_PAD))]))


def _check_allowed(allowed_special: str) -> None:
    if allowed_special not in ALLOWED_SPECIAL:
        raise ValueError(f"allowed_special={allowed_special!r}: choose one of {ALLOWED_SPECIAL}")


def split_audio_tags(text: str, tags: frozenset[str] = AUDIO_TAGS) -> list[tuple[str, bool]]:
    """`text` as (piece, is_audio_tag) pairs in order, text pieces never empty; joined, the pieces are `text`."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in _TAG_CANDIDATE_RE.finditer(text):
        if m.group(0) in tags:
            if m.start() > pos:
                out.append((text[pos : m.start()], False))
            out.append((m.group(0), True))
            pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Audio spans (pure text; the same for every back-end)
# ---------------------------------------------------------------------------------------------------------------
def extract_audio_paths(text: str) -> list[str]:
    """The PATHs of every `<audio>PATH</audio>` in `text`, in order."""
    return AUDIO_SPAN_RE.findall(text)


def expand_audio(text: str, audio_positions: Sequence[int]) -> str:
    """Replace the i-th `<audio>PATH</audio>` by `<audio>` + AUDIO_PAD * audio_positions[i] + `</audio>`.

    `audio_positions[i]` is N of `audio.audio_positions()` (the pad count; the release's `audio_span_tokens` is N + 2).
    """
    n_spans = len(AUDIO_SPAN_RE.findall(text))
    if n_spans != len(audio_positions):
        raise ValueError(
            f"text has {n_spans} <audio>...</audio> span(s) but {len(audio_positions)} audio length(s) were given"
        )
    it = iter(audio_positions)
    return AUDIO_SPAN_RE.sub(lambda _m: AUDIO_START + AUDIO_PAD * int(next(it)) + AUDIO_END, text)


# ---------------------------------------------------------------------------------------------------------------
# Back-ends
# ---------------------------------------------------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table: the token spelling byte-level BPE tokenizers use in vocab files."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_BYTE_TO_CHAR = _bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def load_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """Read a tiktoken ranks file: one `base64-token rank` pair a line."""
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f.read().splitlines(), 1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not a 'base64-token rank' line ({e})") from e
    return ranks


class _TiktokenBackend:
    name = "tiktoken"

    def __init__(self, ranks: dict[bytes, int], source: str = "", long_time: bool = False) -> None:
        import tiktoken

        self.ranks, self.source, self.long_time = ranks, source, long_time
        self.audio_tags = AUDIO_TAGS | frozenset(LONG_TIME_TOKENS) if long_time else AUDIO_TAGS
        # Special ids follow the ranks, as in the release: with qwen.tiktoken this gives <|endoftext|> = 151643.
        specials = SPECIAL_TOKENS + LONG_TIME_TOKENS if long_time else SPECIAL_TOKENS
        self.special = {tok: i for i, tok in enumerate(specials, start=len(ranks))}
        self.enc = tiktoken.Encoding("Qwen", pat_str=QWEN_PAT_STR, mergeable_ranks=ranks, special_tokens=self.special)
        self.decoder: dict[int, bytes] = {v: k for k, v in ranks.items()}
        self.special_decoder = {v: k for k, v in self.special.items()}

    def __getstate__(self) -> dict[str, Any]:
        return {"ranks": self.ranks, "source": self.source, "long_time": self.long_time}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["ranks"], state["source"], state.get("long_time", False))  # type: ignore[misc]

    def encode(self, text: str, allowed_special: AllowedSpecial = "all") -> list[int]:
        # The release NFC-normalises before encoding; tokens not allowed are text (its `disallowed_special=()`).
        text = unicodedata.normalize("NFC", text)
        if allowed_special == "audio":
            return self.enc.encode(text, allowed_special=self.audio_tags, disallowed_special=())
        return self.enc.encode(text, allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self.enc.decode(ids, errors="replace")

    def token_to_id(self, token: str | bytes) -> int:
        if isinstance(token, str):
            if token in self.special:
                return self.special[token]
            try:  # byte-level spelling (as in HF vocab files) first, then plain UTF-8
                raw = bytes(_CHAR_TO_BYTE[c] for c in token)
            except KeyError:
                raw = token.encode("utf-8")
            if raw not in self.ranks:
                raw = token.encode("utf-8")
        else:
            raw = token
        if raw not in self.ranks:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return self.ranks[raw]

    def id_to_token(self, idx: int) -> str:
        if idx in self.special_decoder:
            return self.special_decoder[idx]
        if idx not in self.decoder:
            raise KeyError(f"id {idx} is outside the vocabulary (size {self.enc.n_vocab})")
        return "".join(_BYTE_TO_CHAR[b] for b in self.decoder[idx])

    @property
    def vocab_size(self) -> int:
        return self.enc.n_vocab

    def special_ids(self) -> set[int]:
        return set(self.special.values())

    def save(self, out: Path) -> None:
        with open(out / QWEN_TIKTOKEN_FILE, "w", encoding="utf-8") as f:
            for tok, rank in sorted(self.ranks.items(), key=lambda kv: kv[1]):
                f.write(f"{base64.b64encode(tok).decode('ascii')} {rank}\n")


def add_audio_special_tokens(hf_tokenizer: Any, long_time: bool = False) -> int:
    """Register the 208 + 3314 released special tokens on a transformers tokenizer, in released order (then the
    window markers `tags.LONG_TIME_TOKENS` when `long_time`).

    Tokens it already knows as added tokens keep their ids; a token present only in its model vocabulary keeps
    that id and becomes special; the others are appended, so their ids ascend in released order. `<|endoftext|>`
    becomes bos/eos/pad only where the tokenizer has none. Returns the number of new ids.
    """
    added = hf_tokenizer.get_added_vocab()
    todo = [tok for tok in SPECIAL_TOKENS + (LONG_TIME_TOKENS if long_time else ()) if tok not in added]
    before = len(hf_tokenizer)
    if todo:
        hf_tokenizer.add_special_tokens({"extra_special_tokens": todo}, replace_extra_special_tokens=False)
    for attr in ("bos_token", "eos_token", "pad_token"):
        if getattr(hf_tokenizer, attr, None) is None:
            setattr(hf_tokenizer, attr, ENDOFTEXT)
    return len(hf_tokenizer) - before


class _HFBackend:
    name = "transformers"

    def __init__(self, hf_tokenizer: Any, long_time: bool = False) -> None:
        self.family: ModelFamily | None = None  # None: Qwen-Audio's (the release's tokens are registered)
        if all(t in hf_tokenizer.get_added_vocab() for t in QWEN2_AUDIO_TOKENS):  # Qwen2-Audio's: as-is, its ids
            from qwenaudio_train.model.family import QWEN2_AUDIO

            self.tok, self.family, self.long_time = hf_tokenizer, QWEN2_AUDIO, False
            self.source, self.audio_tags = str(getattr(hf_tokenizer, "name_or_path", "")), frozenset(QWEN2_AUDIO_TOKENS)
            self._special_ids = set(hf_tokenizer.all_special_ids)  # its audio and ChatML tokens are special tokens
            return
        # A saved long-time tokenizer holds its markers already: it stays one.
        self.long_time = long_time or LONG_TIME_TOKENS[0] in hf_tokenizer.get_added_vocab()
        add_audio_special_tokens(hf_tokenizer, self.long_time)
        self.tok = hf_tokenizer
        self.source = str(getattr(hf_tokenizer, "name_or_path", ""))
        self.audio_tags = AUDIO_TAGS | frozenset(LONG_TIME_TOKENS) if self.long_time else AUDIO_TAGS
        ids = hf_tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS + (LONG_TIME_TOKENS if self.long_time else ())))
        self._special_ids = set(ids) | set(hf_tokenizer.all_special_ids)

    def encode(self, text: str, allowed_special: AllowedSpecial = "all") -> list[int]:
        if allowed_special == "all":
            return list(self.tok.encode(text, add_special_tokens=False))
        # Audio tags become ids; every other piece is encoded with its special tokens split into ordinary text.
        ids: list[int] = []
        for piece, is_tag in split_audio_tags(text, self.audio_tags):
            if is_tag:
                ids.append(self.token_to_id(piece))
            else:
                ids += self.tok.encode(piece, add_special_tokens=False, split_special_tokens=True)
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def token_to_id(self, token: str | bytes) -> int:
        if isinstance(token, bytes):
            token = "".join(_BYTE_TO_CHAR[b] for b in token)
        idx = self.tok.convert_tokens_to_ids(token)
        if idx is None or (idx == self.tok.unk_token_id and token != self.tok.unk_token):
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return int(idx)

    def id_to_token(self, idx: int) -> str:
        tok = self.tok.convert_ids_to_tokens(int(idx))
        if tok is None:
            raise KeyError(f"id {idx} is outside the vocabulary (size {len(self.tok)})")
        return str(tok)

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def special_ids(self) -> set[int]:
        return set(self._special_ids)

    def save(self, out: Path) -> None:
        self.tok.save_pretrained(str(out))


# ---------------------------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------------------------
class AudioTokenizer:
    """Encode/decode with the Qwen-Audio special tokens recognised as single ids, whatever the back-end.

    Build it with `load_tokenizer` or `train_bpe_tokenizer`. Picklable (data-loader workers).
    """

    def __init__(self, backend: _TiktokenBackend | _HFBackend) -> None:
        self.backend = backend
        self._family: ModelFamily | None = getattr(backend, "family", None)  # tiktoken: always Qwen-Audio's
        start, pad, end = self._family.audio_tokens if self._family else (AUDIO_START, AUDIO_PAD, AUDIO_END)
        self._special_ids = frozenset(backend.special_ids())
        self.eod_id = backend.token_to_id(ENDOFTEXT)
        self.audio_start_id = backend.token_to_id(start)
        self.audio_end_id = backend.token_to_id(end)
        self.audio_pad_id = backend.token_to_id(pad)
        self.im_start_id = backend.token_to_id(IM_START)
        self.im_end_id = backend.token_to_id(IM_END)

    # -- identity -------------------------------------------------------------------------------------------------
    @property
    def backend_name(self) -> str:
        """ "tiktoken" or "transformers"."""
        return self.backend.name

    @property
    def long_time_tokens(self) -> bool:
        """Whether the window markers of times past 30 s (`tags.LONG_TIME_TOKENS`) are tokens of this tokenizer."""
        return bool(getattr(self.backend, "long_time", False))

    @property
    def family(self) -> ModelFamily:  # whose audio tokens and chat format this tokenizer carries (model/family.py)
        from qwenaudio_train.model.family import QWEN_AUDIO  # lazily: the default path stays torch-free

        return self._family or QWEN_AUDIO

    @property
    def hf_tokenizer(self) -> Any:
        """The underlying transformers tokenizer (back-end b), else None."""
        return getattr(self.backend, "tok", None)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the model's embedding needs at least this many rows)."""
        return self.backend.vocab_size

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"AudioTokenizer(backend={self.backend_name!r}, vocab_size={self.vocab_size}, "
            f"source={self.backend.source!r})"
        )

    # -- ids of the key tokens -------------------------------------------------------------------------------------
    @property
    def bos_id(self) -> int:
        return self.eod_id

    @property
    def pad_id(self) -> int:
        return self.eod_id

    @property
    def special_ids(self) -> set[int]:
        return set(self._special_ids)

    # -- text <-> ids -----------------------------------------------------------------------------------------------
    def encode(self, text: str, allowed_special: AllowedSpecial = "all") -> list[int]:
        """Ids of `text`, no bos/eos. "all": every special token written in the text (`<|en|>`, `<audio>`,
        `<|im_end|>`...) becomes its single id; "audio": only the audio tags do, the rest is ordinary text (the
        release's chat encoding of message text; see the module docstring)."""
        _check_allowed(allowed_special)
        return self.backend.encode(text, allowed_special)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        if skip_special_tokens:
            ids = [i for i in ids if i not in self._special_ids]
        return self.backend.decode(ids)

    def token_to_id(self, token: str | bytes) -> int:
        """Id of one token: a special token, or a BPE token in byte-level spelling ("Ġthe") or as bytes.

        KeyError if unknown."""
        return self.backend.token_to_id(token)

    def id_to_token(self, idx: int) -> str:
        """Token spelling of an id: the special token, or the BPE token in byte-level spelling. KeyError if unknown."""
        return self.backend.id_to_token(int(idx))

    # -- audio ----------------------------------------------------------------------------------------------------
    def audio_span_ids(self, n: int) -> list[int]:
        """[audio_start] + [audio_pad] * n + [audio_end]: the ids one clip with n audio positions occupies."""
        if n < 0:
            raise ValueError(f"audio position count must be >= 0, got {n}")
        return [self.audio_start_id] + [self.audio_pad_id] * n + [self.audio_end_id]

    def encode_with_audio(
        self, text: str, audio_positions: Sequence[int], allowed_special: AllowedSpecial = "all"
    ) -> list[int]:
        """Same ids as `encode(expand_audio(text, audio_positions), allowed_special)`, without building the long
        pad string."""
        _check_allowed(allowed_special)
        pieces = AUDIO_SPAN_RE.split(text)  # [text, path, text, path, ..., text]
        n_spans = (len(pieces) - 1) // 2
        if n_spans != len(audio_positions):
            raise ValueError(
                f"text has {n_spans} <audio>...</audio> span(s) but {len(audio_positions)} audio length(s) were given"
            )
        ids: list[int] = []
        for i, n in enumerate(audio_positions):
            ids += self.encode(pieces[2 * i], allowed_special) if pieces[2 * i] else []
            ids += self.audio_span_ids(int(n))
        if pieces[-1]:
            ids += self.encode(pieces[-1], allowed_special)
        return ids

    # -- persistence ------------------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the tokenizer so `load_tokenizer(out_dir)` rebuilds it (same back-end, same ids)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.backend.save(out)
        sidecar = {
            "backend": self.backend_name,
            "vocab_size": self.vocab_size,
            "eod_id": self.eod_id,
            "audio_start_id": self.audio_start_id,
            "audio_end_id": self.audio_end_id,
            "audio_pad_id": self.audio_pad_id,
            "n_special_tokens": len(SPECIAL_TOKENS),
        }
        if self.long_time_tokens:  # written only when set: a default tokenizer's sidecar stays as it was
            sidecar["long_time_tokens"] = True
        (out / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        return out


# ---------------------------------------------------------------------------------------------------------------
# Loading and training
# ---------------------------------------------------------------------------------------------------------------
def _is_plain_fast_tokenizer_dir(p: Path) -> bool:
    """A directory whose tokenizer is a generic fast tokenizer (what `train_bpe_tokenizer` writes)."""
    cfg = p / "tokenizer_config.json"
    if not (p.is_dir() and (p / "tokenizer.json").is_file() and cfg.is_file()):
        return False
    try:
        cls = json.loads(cfg.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, json.JSONDecodeError):
        return False
    return cls in ("TokenizersBackend", "PreTrainedTokenizerFast")


def load_tokenizer(path_or_name: str | Path, long_time_tokens: bool = False) -> AudioTokenizer:
    """Build an AudioTokenizer from a `*.tiktoken` ranks file, a directory holding `qwen.tiktoken` (back-end a),
    or a transformers tokenizer directory / cached hub name (back-end b). Never runs remote code.
    `long_time_tokens`: append the window markers (module docstring); a directory saved with them keeps them."""
    p = Path(path_or_name)
    sidecar = p / SIDECAR_FILE
    long_time = long_time_tokens or (sidecar.is_file() and '"long_time_tokens": true' in sidecar.read_text("utf-8"))
    if p.is_file() and p.name.endswith(".tiktoken"):
        return AudioTokenizer(_TiktokenBackend(load_tiktoken_ranks(p), str(p), long_time))
    if p.is_dir() and (p / QWEN_TIKTOKEN_FILE).is_file():
        return AudioTokenizer(_TiktokenBackend(load_tiktoken_ranks(p / QWEN_TIKTOKEN_FILE), str(p), long_time))
    from transformers import PreTrainedTokenizerFast

    hf: Any
    try:
        if p.is_file() and p.suffix == ".json":  # a bare tokenizers `tokenizer.json`
            hf = PreTrainedTokenizerFast(tokenizer_file=str(p))
        elif _is_plain_fast_tokenizer_dir(p):
            # What AutoTokenizer would build, without importing torch through it (~2 s in every data worker).
            hf = PreTrainedTokenizerFast.from_pretrained(str(p))
        else:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(str(path_or_name))
    except (OSError, ValueError) as e:
        raise OSError(
            f"cannot load tokenizer {str(path_or_name)!r}: expected a *.tiktoken ranks file, a directory with "
            f"{QWEN_TIKTOKEN_FILE}, or a transformers tokenizer (directory or hub name in the local cache; hub "
            f"downloads need network). Cause: {e}"
        ) from e
    return AudioTokenizer(_HFBackend(hf, long_time))


def train_bpe_tokenizer(
    texts: Iterable[str], out_dir: str | Path, vocab_size: int = 1000, long_time_tokens: bool = False
) -> AudioTokenizer:
    """Train a small byte-level BPE on `texts`, save it in transformers format in `out_dir`, load it back (back-end b).

    `vocab_size` counts the BPE vocabulary (256 byte symbols + merges; fewer if the corpus runs out of pairs); the
    3522 special tokens come after it, in released order (then the window markers with `long_time_tokens`).
    Deterministic for a given corpus; pre-tokenisation uses
    Qwen's regex, normalisation NFC (as the release). Special tokens written in `texts` are dropped before training.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256:
        raise ValueError(f"vocab_size must be >= 256 (the byte alphabet), got {vocab_size}")
    corpus = [_SPECIALS_IN_TEXT_RE.sub(" ", t) for t in texts]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PAT_STR), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer, length=len(corpus))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False)
    out = AudioTokenizer(_HFBackend(hf, long_time_tokens)).save_pretrained(out_dir)
    return load_tokenizer(out)
