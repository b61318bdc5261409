"""Offline speech synthesis: libespeak-ng (shipped by the ``espeakng-loader`` wheel) driven through ctypes.

Owns: loading the library, one voice per Qwen-Audio language and espeak's regional voices of them, speaker
descriptors (accent, voice variant, rate, pitch, pitch range), what espeak's variant files say about their voices
(gender, child, old), synthesis to 16 kHz float32 with word timings taken from espeak's word events.
Must not: know about shards, tasks or the corpus (``data_recipes/synthetic/`` does, and turns voices into labels).

Word timings: word i starts at its word event; it ends where word i+1 starts, so a word's end includes the
pause after it; the last word ends where the voiced audio ends. The first word starts no earlier than the
voiced onset. Word text is the stretch of input text from one word event to the next, stripped of spaces and
punctuation (so French "l'homme" stays one word even though espeak reports "l"). Chinese (``cmn``) gives one
event per character, or per dictionary word for a few (看见); Korean may merge words; Japanese must be
written in kana (kanji are read out as "Chinese letter") and gives one event per space-separated chunk.

Determinism: espeak keeps state across utterances (pitch-flutter phase, echo buffer, noise generators), so the
same text would come out slightly differently depending on what was said before. To make ``synth`` a pure
function of its arguments, the library is loaded and initialised fresh for every utterance and unloaded after
it (measured: load + initialise + unload ~2 ms, voice ~3 ms, synthesis ~3 ms for a 2.5-s sentence; ~15 ms per
sentence in all with resampling). At most one copy is loaded per process.

Threads and processes: espeak-ng is one global state per process. This wrapper is not built for threads: a
lock serialises calls (no parallelism, no corruption), and anything else in the process that uses
libespeak-ng (e.g. phonemizer) shares that state and would be disturbed (``espeak_Terminate`` after each of our
utterances) and would disturb ours. Parallelise with processes: each process loads its own copy, and nothing
stays loaded between calls, so forking is safe.
"""

from __future__ import annotations

import ctypes
import threading
import unicodedata
from dataclasses import dataclass

import numpy as np
import soxr

from qwenaudio_train.audio import SAMPLE_RATE
from qwenaudio_train.data.schema import Word

# The espeak voice used for each Qwen-Audio language (all ship with espeakng-loader 0.2.x / espeak-ng 1.52).
VOICES: dict[str, str] = {
    "en": "en-us",
    "zh": "cmn",  # Mandarin; reads Chinese characters, one word event per character
    "de": "de",
    "es": "es",
    "ko": "ko",
    "fr": "fr",
    "ja": "ja",  # feed kana
    "it": "it",
}
# Regional voices of the same languages (espeak's own accents), usable as `Speaker.accent`: espeak voice name ->
# Qwen-Audio language. Checked to sound different from each other on ordinary sentences (fr-BE and fr-CH are not
# listed: they only change how numbers are read; hak reads characters as their names).
ACCENT_VOICES: dict[str, str] = {
    "en-us": "en",  # American
    "en": "en",  # British (espeak's "English (Great Britain)")
    "en-GB-scotland": "en",
    "en-029": "en",  # Caribbean
    "es": "es",  # Castilian
    "es-419": "es",  # Latin American
    "cmn": "zh",  # Mandarin
    "yue": "zh",  # Cantonese; reads Chinese characters
}
# Voice variants (espeak-ng-data/voices/!v) that change the timbre without turning it into a robot or a whisper.
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
# The gender each variant's file declares ("gender male" / "gender female"); m1..m7 male, f1..f5 female.
VARIANT_GENDER: dict[str, str] = {v: "male" if v.startswith("m") else "female" for v in VARIANTS}
# Other variants with a strong, stable character: a child-like voice (formants x1.45, pitch 240-390 Hz) and two
# old voices (strong pitch flutter, weak upper formants; grandma's file declares age 90).
CHILD_VARIANTS: tuple[str, ...] = ("zac",)
OLD_VARIANTS: tuple[str, ...] = ("grandma", "grandpa")
RATE_RANGE = (140, 200)  # words per minute of the random speakers
PITCH_RANGE = (30, 70)  # espeak pitch 0..100 of the random speakers

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() on a bad data path
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1


class EspeakUnavailable(RuntimeError):
    """libespeak-ng cannot be loaded or initialised."""


class _Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at the library's rate
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: a language's voice (or one of its regional `accent` voices, ``ACCENT_VOICES``), an
    optional timbre variant, a speaking rate, a pitch and optionally a pitch range (espeak 0..100, intonation
    width; espeak's default 50 when None)."""

    language: str
    variant: str | None = None
    rate_wpm: int = 175
    pitch: int = 50
    accent: str | None = None
    pitch_range: int | None = None

    def __post_init__(self) -> None:
        if self.accent is not None and ACCENT_VOICES.get(self.accent) != self.language:
            ok = [v for v, lang in ACCENT_VOICES.items() if lang == self.language]
            raise ValueError(
                f"accent {self.accent!r} is not a voice of language {self.language!r}; "
                f"choose from {', '.join(ok) or 'none'}"
            )

    @property
    def voice(self) -> str:
        base = self.accent if self.accent is not None else voice_for(self.language)
        return base + (f"+{self.variant}" if self.variant else "")

    @property
    def name(self) -> str:
        """A stable descriptor, e.g. ``en-us+m3-r170-p45`` (stored in the sample metadata); ``-gN`` is appended
        when a pitch range is set."""
        name = f"{self.voice}-r{self.rate_wpm}-p{self.pitch}"
        return name if self.pitch_range is None else f"{name}-g{self.pitch_range}"


def voice_for(language: str) -> str:
    try:
        return VOICES[language]
    except KeyError:
        raise ValueError(f"no espeak voice for language {language!r}; supported: {', '.join(VOICES)}") from None


def random_speaker(language: str, rng: np.random.Generator) -> Speaker:
    """A speaker drawn uniformly from the variants, rates and pitches above."""
    voice_for(language)
    return Speaker(
        language,
        VARIANTS[int(rng.integers(len(VARIANTS)))],
        int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
        int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
    )


def _dlclose(lib: ctypes.CDLL) -> None:
    try:
        import _ctypes

        _ctypes.dlclose(lib._handle)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - non-POSIX: the state then persists
        pass


class _Library:
    """The process's libespeak-ng: load -> initialise -> one utterance -> unload (see module docstring)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise EspeakUnavailable(
                "speech synthesis needs the `espeakng-loader` package (pip install espeakng-loader)"
            ) from e
        self.lib_path = espeakng_loader.get_library_path()
        try:
            self.data_path = espeakng_loader.get_data_path()
        except RuntimeError as e:
            raise EspeakUnavailable(f"espeakng-loader has no espeak-ng-data: {e}") from e
        self.lock = threading.Lock()
        self._pcm: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, int]] = []
        self._callback = _Callback(self._on_audio)  # kept referenced: the library calls it
        self.sample_rate = 0
        lib = self._load()  # fail early, with a clear message, if the library is unusable
        self._unload(lib)

    def _on_audio(self, wav, n: int, events) -> int:
        if n > 0:
            self._pcm.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            self._events.append((e.type, e.text_position, e.length, e.audio_position, e.sample))
            i += 1
        return 0  # continue synthesis

    def _load(self) -> ctypes.CDLL:
        try:
            lib = ctypes.CDLL(self.lib_path)
        except OSError as e:
            raise EspeakUnavailable(f"cannot load libespeak-ng from {self.lib_path!r}: {e}") from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT)
        if sr <= 0:
            _dlclose(lib)
            raise EspeakUnavailable(f"espeak_Initialize failed ({sr}) with data path {self.data_path!r}")
        self.sample_rate = sr
        lib.espeak_SetSynthCallback(self._callback)
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
        return lib

    @staticmethod
    def _unload(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        _dlclose(lib)  # the next load starts from the library's initial state

    def run(
        self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int | None = None
    ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        with self.lock:
            lib = self._load()
            try:
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(
                        f"espeak has no voice {voice!r} (languages: {', '.join(VOICES.values())}; "
                        f"variants: {', '.join(VARIANTS)}, written 'en-us+m3')"
                    )
                lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
                lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
                if pitch_range is not None:
                    lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
                self._pcm, self._events = [], []
                buf = ctypes.create_string_buffer(text.encode("utf-8"))
                err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                if err != 0:
                    raise RuntimeError(f"espeak_Synth failed with error {err} for voice {voice!r}")
                pcm = np.concatenate(self._pcm) if self._pcm else np.zeros(0, np.int16)
                return pcm, self._events
            finally:
                self._pcm, self._events = [], []
                self._unload(lib)


_LIBRARY: _Library | None = None


def _library() -> _Library:
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _is_word_char(c: str) -> bool:
    return not (c.isspace() or unicodedata.category(c)[0] in "PSZ")


def _clean(segment: str) -> str:
    """A word as written: surrounding spaces and punctuation removed (inner apostrophes and hyphens kept)."""
    start, end = 0, len(segment)
    while start < end and not _is_word_char(segment[start]):
        start += 1
    while end > start and not _is_word_char(segment[end - 1]):
        end -= 1
    return segment[start:end]


def voiced_span(pcm: np.ndarray, sr: int) -> tuple[float, float]:
    """(onset, offset) in seconds of the audio louder than -40 dB of the loudest 5-ms frame."""
    hop = max(1, sr // 200)
    n = len(pcm) // hop
    if n == 0:
        return 0.0, len(pcm) / sr
    frames = pcm[: n * hop].astype(np.float32).reshape(n, hop)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() * 0.01)[0]
    if len(loud) == 0:
        return 0.0, len(pcm) / sr
    return float(loud[0] * hop / sr), float(min(len(pcm), (loud[-1] + 1) * hop) / sr)


def words_from_events(text: str, events: list[tuple[int, ...]], sr: int, onset: float, offset: float) -> list[Word]:
    """Word timings from espeak events ``(type, text_position, length, audio_position_ms, sample)``."""
    starts: list[tuple[int, float]] = []  # (0-based character position, seconds)
    for etype, pos, _length, ms, sample in events:
        if etype != _EVENT_WORD or pos < 1:
            continue
        t = sample / sr if sample > 0 or ms == 0 else ms / 1000
        if starts and pos - 1 <= starts[-1][0]:
            continue  # a repeated or backwards position (e.g. a number read as several words)
        starts.append((pos - 1, t))
    if not starts:
        return []
    # Text before the first event with no event of its own (seen with Korean): a word from the onset.
    if _clean(text[: starts[0][0]]) and starts[0][1] > onset:
        starts.insert(0, (0, onset))
    words: list[Word] = []
    for i, (pos, t) in enumerate(starts):
        nxt = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        word = _clean(text[pos:nxt])
        if not word:
            continue
        words.append(Word(word, t, 0.0))
    if not words:
        return []
    words[0].start = max(words[0].start, onset)  # espeak's first event is at 0 even after leading silence
    for i, w in enumerate(words):
        end = words[i + 1].start if i + 1 < len(words) else max(offset, w.start)
        w.end = end
        w.start = min(w.start, end)
    for w in words:
        w.start, w.end = round(float(w.start), 4), round(float(w.end), 4)
    return words


class EspeakSynth:
    """Text -> (16 kHz float32 waveform, word timings) with espeak-ng. See the module docstring for the rules.

    All instances share the process's library; calls are serialised. Not for parallel use from threads.
    """

    def __init__(self) -> None:
        self._lib = _library()

    @property
    def native_rate(self) -> int:
        return self._lib.sample_rate

    def synth(
        self, text: str, voice: str, rate_wpm: int = 175, pitch: int = 50, pitch_range: int | None = None
    ) -> tuple[np.ndarray, list[Word]]:
        """Synthesise `text` with espeak voice `voice` (e.g. ``"en-us"``, ``"cmn+f2"``, ``"en-029+m3"``).

        Returns the waveform (float32, mono, 16 kHz, in [-1, 1]) and its words with start/end in seconds.
        """
        if not text.strip():
            raise ValueError("cannot synthesise empty text")
        pcm, events = self._lib.run(text, voice, rate_wpm, pitch, pitch_range)
        sr = self._lib.sample_rate
        if pcm.size == 0:
            raise RuntimeError(f"espeak produced no audio for {text!r} with voice {voice!r}")
        onset, offset = voiced_span(pcm, sr)
        words = words_from_events(text, events, sr, onset, offset)
        wav = soxr.resample(pcm.astype(np.float32) / 32768.0, sr, SAMPLE_RATE, quality="HQ")
        wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
        duration = len(wav) / SAMPLE_RATE
        for w in words:
            w.start, w.end = min(w.start, duration), min(w.end, duration)
        return wav, words

    def synth_speaker(self, text: str, speaker: Speaker) -> tuple[np.ndarray, list[Word]]:
        return self.synth(text, speaker.voice, speaker.rate_wpm, speaker.pitch, speaker.pitch_range)
