"""The S2TT parallel lexicon: one meaning (subject, verb, object, adverb) written in the 8 release languages,
and ``parallel_sentence``, which writes a meaning in a language (written form for targets, spoken form for
espeak).

Owns: the parallel lexicon, the word order per language, the translation directions.
Must not: draw anything (meanings are drawn by the S2TT planner) or synthesise audio.
"""

from __future__ import annotations

from collections.abc import Sequence

from data_recipes.synthetic.presets import LID_LANGUAGES
from data_recipes.synthetic.text import GRAMMARS

# S2TT: one parallel lexicon, the same meaning written in the 8 languages. A meaning is (subject, verb, object,
# adverb); each language orders the parts its own way. German nouns are capitalised and every sentence starts
# with a capital and ends with a full stop: S2TT targets are written form (the task's prompt says <|itn|>).
# Objects are inanimate (no Spanish personal "a"), articles are spelled out per noun, Japanese is kana
# (espeak reads kanji as "Chinese letter") and is written without spaces.
PARALLEL_SUBJECTS: tuple[dict[str, str], ...] = (
    {
        "en": "the cat",
        "de": "die Katze",
        "es": "el gato",
        "fr": "le chat",
        "it": "il gatto",
        "zh": "小猫",
        "ja": "ねこは",
        "ko": "고양이는",
    },
    {
        "en": "the dog",
        "de": "der Hund",
        "es": "el perro",
        "fr": "le chien",
        "it": "il cane",
        "zh": "小狗",
        "ja": "いぬは",
        "ko": "강아지는",
    },
    {
        "en": "the boy",
        "de": "der Junge",
        "es": "el niño",
        "fr": "le garçon",
        "it": "il ragazzo",
        "zh": "男孩",
        "ja": "おとこのこは",
        "ko": "소년은",
    },
    {
        "en": "the teacher",
        "de": "der Lehrer",
        "es": "el maestro",
        "fr": "le professeur",
        "it": "il maestro",
        "zh": "老师",
        "ja": "せんせいは",
        "ko": "선생님은",
    },
    {
        "en": "the doctor",
        "de": "der Arzt",
        "es": "el médico",
        "fr": "le médecin",
        "it": "il dottore",
        "zh": "医生",
        "ja": "いしゃは",
        "ko": "의사는",
    },
    {
        "en": "the farmer",
        "de": "der Bauer",
        "es": "el granjero",
        "fr": "le fermier",
        "it": "il contadino",
        "zh": "农民",
        "ja": "のうふは",
        "ko": "농부는",
    },
)
PARALLEL_VERBS: tuple[dict[str, str], ...] = (
    {"en": "sees", "de": "sieht", "es": "ve", "fr": "voit", "it": "vede", "zh": "看见", "ja": "みます", "ko": "봐요"},
    {
        "en": "finds",
        "de": "findet",
        "es": "encuentra",
        "fr": "trouve",
        "it": "trova",
        "zh": "找到",
        "ja": "みつけます",
        "ko": "찾아요",
    },
    {
        "en": "buys",
        "de": "kauft",
        "es": "compra",
        "fr": "achète",
        "it": "compra",
        "zh": "买",
        "ja": "かいます",
        "ko": "사요",
    },
    {
        "en": "draws",
        "de": "malt",
        "es": "dibuja",
        "fr": "dessine",
        "it": "disegna",
        "zh": "画",
        "ja": "かきます",
        "ko": "그려요",
    },
)
PARALLEL_OBJECTS: tuple[dict[str, str], ...] = (
    {
        "en": "the ball",
        "de": "den Ball",
        "es": "el balón",
        "fr": "le ballon",
        "it": "il pallone",
        "zh": "球",
        "ja": "ボールを",
        "ko": "공을",
    },
    {
        "en": "the book",
        "de": "das Buch",
        "es": "el libro",
        "fr": "le livre",
        "it": "il libro",
        "zh": "书",
        "ja": "ほんを",
        "ko": "책을",
    },
    {
        "en": "the bread",
        "de": "das Brot",
        "es": "el pan",
        "fr": "le pain",
        "it": "il pane",
        "zh": "面包",
        "ja": "パンを",
        "ko": "빵을",
    },
    {
        "en": "the hat",
        "de": "den Hut",
        "es": "el sombrero",
        "fr": "le chapeau",
        "it": "il cappello",
        "zh": "帽子",
        "ja": "ぼうしを",
        "ko": "모자를",
    },
    {
        "en": "the fish",
        "de": "den Fisch",
        "es": "el pescado",
        "fr": "le poisson",
        "it": "il pesce",
        "zh": "鱼",
        "ja": "さかなを",
        "ko": "생선을",
    },
    {
        "en": "the cake",
        "de": "den Kuchen",
        "es": "el pastel",
        "fr": "le gâteau",
        "it": "il dolce",
        "zh": "蛋糕",
        "ja": "ケーキを",
        "ko": "케이크를",
    },
    {
        "en": "the car",
        "de": "das Auto",
        "es": "el coche",
        "fr": "la voiture",
        "it": "la macchina",
        "zh": "汽车",
        "ja": "くるまを",
        "ko": "차를",
    },
    {
        "en": "the flower",
        "de": "die Blume",
        "es": "la flor",
        "fr": "la fleur",
        "it": "il fiore",
        "zh": "花",
        "ja": "はなを",
        "ko": "꽃을",
    },
)
PARALLEL_ADVERBS: tuple[dict[str, str] | None, ...] = (
    None,
    {
        "en": "every day",
        "de": "jeden Tag",
        "es": "cada día",
        "fr": "chaque jour",
        "it": "ogni giorno",
        "zh": "每天",
        "ja": "まいにち",
        "ko": "매일",
    },
    {
        "en": "again",
        "de": "wieder",
        "es": "otra vez",
        "fr": "encore",
        "it": "di nuovo",
        "zh": "又",
        "ja": "また",
        "ko": "또",
    },
)
# Word order per language: S subject, V verb, O object, T adverb.
_PARALLEL_ORDER = {
    "en": "SVOT",
    "de": "SVOT",
    "es": "SVOT",
    "fr": "SVOT",
    "it": "SVOT",
    "zh": "STVO",
    "ja": "STOV",
    "ko": "STOV",
}
ALL_LANGUAGES: tuple[str, ...] = LID_LANGUAGES  # the 8 release languages
# CoVoST2-like directions: English into each language and each language into English.
S2TT_DIRECTIONS: tuple[tuple[str, str], ...] = tuple(("en", x) for x in ALL_LANGUAGES if x != "en") + tuple(
    (x, "en") for x in ALL_LANGUAGES if x != "en"
)


def parallel_sentence(meaning: Sequence[int], language: str, spoken: bool = False) -> str:
    """The sentence of `meaning` (subject, verb, object, adverb indices) in `language`: written form (capital
    first letter, full stop; Japanese without spaces), or with `spoken` the form of the other grammars (lower
    case, no punctuation, Japanese chunks separated by spaces), which is also what espeak reads."""
    s, v, o, t = meaning
    parts = {
        "S": PARALLEL_SUBJECTS[s][language],
        "V": PARALLEL_VERBS[v][language],
        "O": PARALLEL_OBJECTS[o][language],
        "T": (PARALLEL_ADVERBS[t] or {}).get(language, ""),
    }
    words = [parts[k] for k in _PARALLEL_ORDER[language] if parts[k]]
    if spoken:
        return GRAMMARS[language].joiner.join(w.lower() for w in words)
    text = "".join(words) if language in ("zh", "ja") else " ".join(words)
    return text[:1].upper() + text[1:] + GRAMMARS[language].full_stop
