"""The words of the corpus: one tiny sentence grammar per language, the keywords, the voice-command and
named-entity templates with their fillers, and the number words that answers use.

Owns: what is said (and drawn with ``rng``, in a fixed order: the grammars' draws are part of the seed streams).
Must not: synthesise audio, know splits or jobs (``plan.py`` decides who says what in which split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# Sentences: one tiny grammar per language. Templates are space-separated tokens; "$slot" draws from a word list.
# Word choices keep agreement trivial (German feminine nouns, Spanish/Italian masculine, French masculine nouns
# starting with a consonant so no elision) and avoid digits and apostrophes.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    language: str
    slots: dict[str, tuple[str, ...]]
    templates: tuple[str, ...]  # ASR / SRWT sentences
    short_templates: tuple[str, ...]  # LID sentences
    joiner: str = " "  # "" for Chinese: the transcript has no spaces
    full_stop: str = "."

    def sentence(self, rng: np.random.Generator, short: bool = False) -> str:
        templates = self.short_templates if short else self.templates
        template = templates[int(rng.integers(len(templates)))]
        tokens = []
        for tok in template.split():
            if tok.startswith("$"):
                choices = self.slots[tok[1:]]
                tok = choices[int(rng.integers(len(choices)))]
            tokens.append(tok)
        return self.joiner.join(tokens)


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split(","))


GRAMMARS: dict[str, Grammar] = {
    "en": Grammar(
        "en",
        {
            "noun": _words("cat,dog,bird,horse,fish,child,teacher,farmer,doctor,girl,boy,king"),
            "adj": _words("red,big,small,old,young,happy,green,little,brown,quiet"),
            "verb": _words("sees,likes,finds,helps,follows,calls,watches,knows"),
            "prep": _words("in,near,behind,under"),
            "place": _words("garden,river,school,house,road,park"),
            "time": _words("today,now,again"),
        },
        (
            "the $adj $noun $verb the $noun",
            "the $noun $verb the $adj $noun $time",
            "the $adj $noun $verb the $noun $prep the $place",
            "the $noun $verb the $noun $prep the $place $time",
            "$time the $adj $noun $verb the $adj $noun",
        ),
        ("the $adj $noun $verb the $noun", "the $noun $verb the $noun $time"),
    ),
    "de": Grammar(
        "de",
        {
            "noun": _words("katze,frau,lehrerin,maus,kuh,ente,blume,ärztin,königin,schwester,tante,eule"),
            "adj": _words("kleine,große,alte,junge,rote,grüne,braune,stille"),
            "verb": _words("sieht,findet,sucht,ruft,kennt,hört,liebt,malt"),
            "prep": _words("in,neben,hinter,vor"),
            "place": _words("schule,stadt,küche,straße,kirche,scheune"),
            "time": _words("heute,jetzt,morgen,wieder"),
        },
        (
            "die $adj $noun $verb die $noun",
            "die $noun $verb die $adj $noun $time",
            "die $adj $noun $verb die $noun $prep der $place",
            "$time $verb die $noun die $adj $noun",
        ),
        ("die $adj $noun $verb die $noun", "die $noun $verb die $noun $time"),
    ),
    "es": Grammar(
        "es",
        {
            "noun": _words("gato,perro,niño,maestro,caballo,pájaro,hombre,médico,abuelo,lobo,toro,pescador"),
            "adj": _words("grande,pequeño,viejo,nuevo,blanco,negro,rojo,bonito"),
            "verb": _words("ve,busca,mira,tiene,quiere,encuentra,sigue,llama"),
            "prep": _words("en el,cerca del,detrás del,junto al"),
            "place": _words("parque,jardín,mercado,camino,pueblo,río"),
            "time": _words("hoy,ahora,mañana,siempre"),
        },
        (
            "el $noun $adj $verb el $noun",
            "el $noun $verb el $noun $adj $time",
            "el $noun $adj $verb el $noun $prep $place",
            "$time el $noun $verb el $noun $adj",
        ),
        ("el $noun $adj $verb el $noun", "el $noun $verb el $noun $time"),
    ),
    "zh": Grammar(
        "zh",
        {
            "noun": _words("小猫,小狗,老师,学生,妈妈,爸爸,朋友,医生,孩子,哥哥"),
            "verb": _words("喜欢,看见,帮助,认识,等待,找到"),
            "place": _words("学校,公园,家里,商店,医院"),
            "time": _words("今天,明天,现在,昨天"),
        },
        (
            "$time $noun 在 $place $verb $noun",
            "$noun $verb $noun",
            "$noun $time 在 $place",
            "$noun 在 $place $verb $noun",
            "$time $noun $verb $noun",
        ),
        ("$noun $verb $noun", "$time $noun $verb $noun"),
        joiner="",
        full_stop="。",
    ),
    "fr": Grammar(
        "fr",
        {
            "noun": _words("chat,chien,garçon,cheval,professeur,médecin,roi,poisson,voisin,boulanger,fermier,lapin"),
            "adj": _words("petit,grand,gros,jeune,beau,vieux,joli,bon"),
            "verb": _words("voit,aime,cherche,suit,appelle,regarde,trouve,attend"),
            "prep": _words("dans le,près du,devant le,derrière le"),
            "place": _words("jardin,parc,village,marché,bois,champ"),
            "time": _words("demain,maintenant,ce matin,ce soir"),
        },
        (
            "le $adj $noun $verb le $noun",
            "le $noun $verb le $adj $noun $time",
            "le $adj $noun $verb le $noun $prep $place",
            "$time le $noun $verb le $adj $noun",
        ),
        ("le $adj $noun $verb le $noun", "le $noun $verb le $noun $time"),
    ),
    "it": Grammar(
        "it",
        {
            "noun": _words("gatto,cane,ragazzo,cavallo,libro,maestro,fratello,dottore,nonno,pesce"),
            "adj": _words("piccolo,grande,vecchio,nuovo,rosso,nero,bianco,bello"),
            "verb": _words("vede,cerca,guarda,trova,chiama,segue,aspetta,ama"),
            "time": _words("oggi,adesso,domani,sempre"),
        },
        ("il $noun $adj $verb il $noun", "il $noun $verb il $noun $time"),
        ("il $noun $adj $verb il $noun", "il $noun $verb il $noun $time"),
    ),
    # Japanese in kana (espeak reads kanji as "Chinese letter"); particles attached to their nouns.
    "ja": Grammar(
        "ja",
        {
            "subj": _words("わたしは,ねこは,いぬは,せんせいは,ともだちは,こどもは"),
            "obj": _words("みずを,ほんを,さかなを,りんごを,おちゃを,ごはんを"),
            "verb": _words("たべます,みます,のみます,よみます,かいます,さがします"),
            "time": _words("きょう,あした,いま,まいにち"),
        },
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        full_stop="。",
    ),
    # Korean nouns ending in a vowel, so the particles are always 는 / 를.
    "ko": Grammar(
        "ko",
        {
            "subj": _words("나는,친구는,누나는,아버지는,어머니는,의사는"),
            "obj": _words("사과를,커피를,우유를,바나나를,고기를,피자를"),
            "verb": _words("먹어요,마셔요,사요,좋아해요,봐요,찾아요"),
            "time": _words("오늘,내일,지금,매일"),
        },
        ("$subj $obj $verb", "$time $subj $obj $verb"),
        ("$subj $obj $verb", "$time $subj $obj $verb"),
    ),
}

# KS: the 10 core words of Speech Commands in English, the digits zero..nine in the other languages (Japanese
# in kana, Korean Sino-Korean numerals).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "en": _words("yes,no,up,down,left,right,on,off,stop,go"),
    "de": _words("null,eins,zwei,drei,vier,fünf,sechs,sieben,acht,neun"),
    "es": _words("cero,uno,dos,tres,cuatro,cinco,seis,siete,ocho,nueve"),
    "fr": _words("zéro,un,deux,trois,quatre,cinq,six,sept,huit,neuf"),
    "it": _words("zero,uno,due,tre,quattro,cinque,sei,sette,otto,nove"),
    "zh": _words("零,一,二,三,四,五,六,七,八,九"),
    "ja": _words("ぜろ,いち,に,さん,よん,ご,ろく,なな,はち,きゅう"),
    "ko": _words("영,일,이,삼,사,오,육,칠,팔,구"),
}

# IC / SF: templated English voice commands (SLURP-like intent names and slot types). A slot filler is
# (spoken words, slot value); the value is what the slot holds ("on monday" -> date: monday).
_HOURS = _words("one,two,three,four,five,six,seven,eight,nine,ten,eleven,twelve")
SLOT_FILLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "time": tuple((x, x) for h in _HOURS for x in (f"{h} am", f"{h} pm", f"{h} thirty", f"half past {h}"))
    + (("noon", "noon"), ("midnight", "midnight")),
    "date": (("today", "today"), ("tomorrow", "tomorrow"))
    + tuple((f"on {d}", d) for d in _words("monday,tuesday,wednesday,thursday,friday,saturday,sunday")),
    "place_name": tuple(
        (c, c)
        for c in _words(
            "london,paris,berlin,madrid,rome,tokyo,seoul,beijing,boston,"
            "chicago,sydney,toronto,vienna,lisbon,dublin,oslo"
        )
    ),
    "person": tuple(
        (p, p)
        for p in _words("john,mary,peter,anna,david,sarah,james,emma,robert,linda,michael,susan,paul,karen,mark,laura")
    ),
    "house_place": tuple((h, h) for h in _words("kitchen,bedroom,living room,bathroom,hallway,garage,office")),
    "music_genre": tuple((g, g) for g in _words("jazz,rock,classical,pop,blues,country,folk")),
    "food_type": tuple((f, f) for f in _words("pizza,sushi,noodles,curry,salad,tacos,soup")),
}
COMMANDS: tuple[tuple[str, str], ...] = (  # (intent, template)
    ("alarm_set", "set an alarm for {time}"),
    ("alarm_set", "wake me up at {time} {date}"),
    ("alarm_remove", "cancel the alarm for {time}"),
    ("weather_query", "what is the weather in {place_name} {date}"),
    ("weather_query", "will it rain in {place_name} {date}"),
    ("play_music", "play some {music_genre} music"),
    ("play_music", "play {music_genre} in the {house_place}"),
    ("iot_hue_lighton", "turn on the lights in the {house_place}"),
    ("iot_hue_lightoff", "turn off the lights in the {house_place}"),
    ("calendar_set", "remind me to call {person} at {time} {date}"),
    ("email_sendemail", "send an email to {person}"),
    ("transport_taxi", "book a taxi to {place_name} at {time}"),
    ("takeaway_order", "order {food_type} for {time}"),
    ("datetime_query", "what time is it in {place_name}"),
    ("audio_volume_up", "turn the volume up in the {house_place}"),
    ("audio_volume_up", "make the music louder in the {house_place}"),
    ("audio_volume_down", "turn the volume down in the {house_place}"),
    ("audio_volume_down", "make the music quieter in the {house_place}"),
)  # every template has a slot: a command is owned by one split, so a slotless one would be missing from the others
# SER: sentences with named entities (person: first and last name, city, date: a weekday).
_FIRST = _words("john,mary,peter,anna,david,sarah,james,emma,robert,linda")
_LAST = _words("smith,jones,brown,miller,wilson,taylor,clark,walker,hall,white")
ENTITY_FILLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": tuple((f"{a} {b}", f"{a} {b}") for a in _FIRST for b in _LAST),
    "city": SLOT_FILLERS["place_name"],
    "date": tuple((d, d) for d in _words("monday,tuesday,wednesday,thursday,friday,saturday,sunday")),
}
ENTITY_TEMPLATES: tuple[str, ...] = (
    "{person} flew to {city} on {date}",
    "{person} met {person} in {city}",
    "{person} lives in {city}",
    "call {person} in {city}",
    "{person} will visit {city} on {date}",
    "the meeting with {person} in {city} is on {date}",
    "{person} and {person} arrive in {city} on {date}",
)


def fill_template(
    template: str, fillers: dict[str, tuple[tuple[str, str], ...]], rng: np.random.Generator
) -> tuple[str, list[dict[str, str]]] | None:
    """(transcript, [{type, value}] in order of appearance) of a template with each {slot} drawn from `fillers`;
    None when a value would not be found where it stands by the entity formatter's left-to-right search (e.g. a
    person drawn twice, or a value inside an earlier word)."""
    out, slots, pos = [], [], 0
    for i, piece in enumerate(template.replace("}", "{").split("{")):
        if i % 2 == 0:
            out.append(piece)
            continue
        spoken, value = fillers[piece][int(rng.integers(len(fillers[piece])))]
        start = len("".join(out)) + spoken.index(value)
        slots.append((piece, value, start))
        out.append(spoken)
    text = "".join(out)
    for _slot_type, value, start in slots:
        found = text.lower().find(value.lower(), pos)
        if found != start:
            return None
        pos = start + len(value)
    return text, [{"type": t, "value": v} for t, v, _ in slots]


NUMBER_WORDS: tuple[str, ...] = _words("zero,one,two,three,four,five,six,seven,eight,nine,ten")
