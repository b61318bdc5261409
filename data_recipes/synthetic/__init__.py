"""The offline multi-task corpus: synthetic speech (espeak-ng), sound events, notes and music (numpy).

Deterministic from a seed: the same seed and sizes give byte-identical shards on any machine with the same
libraries, whatever the number of worker processes. Sizes are samples per task and split.

    python -m data_recipes.synthetic --out DIR --preset demo          # 5 tasks, 800 train + 40 valid + 40 test each
    python -m data_recipes.synthetic --out DIR --preset full          # 26 tasks, 600 + 40 + 40 each
    python -m data_recipes.synthetic --out DIR --seed 0 --train 100 --valid 10 --test 10 [--tasks sgc,sv]

Presets: ``tiny`` (tests) and ``demo`` build the first five tasks; their samples do not change when tasks are
added (a test pins the tiny shards' bytes). ``full`` and ``full_tiny`` (tests) build all 26 tasks, ASR in all 8
languages. Layout (what ``configs/data/synthetic.yaml`` and ``synthetic_full.yaml`` read)::

    DIR/train/<task>/shard-000000.tar ... + manifest.json    one shard set per task (a mixture source each)
    DIR/valid/shard-000000.tar ...       + manifest.json    all tasks interleaved
    DIR/test/...                                            likewise
    DIR/train/long_asr/, train/long_srwt/, valid_long/, test_long/   long-form speech (demo and full only)
    DIR/manifest.json                                       sizes, seed, per split/task/language totals
    DIR/text.txt                                            every sample's target text, one per line (BPE)

Tasks (``meta.task``), every clip 16 kHz mono FLAC, 1-10 s. The first five (all presets):

* ``asr``  - sentences from small per-language grammars (~40-50 words each) in en, de, es, zh, fr (full: all 8);
  target is the lower-case transcript without punctuation (spoken form); ``words`` from espeak's word events.
* ``srwt`` - English sentences of the same kind with word timings; target is the transcript.
* ``lid``  - short sentences in the 8 languages; target is the English language name; ``meta.language``.
* ``sec``  - 8 acoustically distinct synthetic sound events (``SEC_CLASSES``); target is the label.
* ``mna``  - single synthetic notes: ``meta`` pitch (MIDI), velocity, instrument, sonic qualities; target is the
  instrument (the task formatter builds the tagged target from ``meta``).

The full preset adds (every label is computed from what was generated, never drawn on its own):

* ``s2tt`` - one parallel lexicon in the 8 languages (``parallel_sentence``): speech of a sentence in one
  language, target the same sentence written in another (English into the 7 others and back); meta.transcript.
* ``osr``  - two voices of the same language overlapping (the second starts 30-70 % into the first); target the
  two transcripts in order of start; meta.n_speakers, meta.segments.
* ``dasr`` / ``did`` - espeak's regional voices (``DIALECTS``: american, british, scottish, caribbean English;
  castilian, latin american Spanish; mandarin, cantonese Chinese); target the transcript / the dialect.
* ``sgc``  - gender of the voice variant (m1-m7 male, f1-f5 female, as their espeak files declare).
* ``sap``  - age group of the variant, a synthetic convention (``AGE_GROUPS``): zac child, grandma/grandpa
  senior, the other plain variants adult.
* ``er``   - arousal from how the voice speaks, a synthetic convention (``EMOTIONS``): calm (slow, low, flat,
  quiet), neutral, excited (fast, high, wide pitch range, loud); ranges do not overlap.
* ``sv``   - two utterances with 1 s of silence between them; same speaker (same variant, rate and pitch) or a
  different variant; meta.speakers.
* ``sd``   - 3-5 turns of 2-3 speakers (distinct variants), gaps or short overlaps; meta.segments are the voiced
  spans of the turns.
* ``ks``   - an isolated keyword (``KEYWORDS``: Speech Commands words in English, digits in the others), >= 1 s.
* ``ic`` / ``sf`` - templated English commands (``COMMANDS``, "set an alarm for seven am"): target the intent /
  the transcript with meta.slots; ``ser`` - sentences with person, city and date entities (meta.entities).
* ``sed``  - 2-4 different sounds placed in a 6-10 s clip; meta.events are their audible spans (-40 dB).
* ``aac``  - scenes of sounds one after another or one during another; caption built from the scene.
* ``aqa``  - scenes and a question about them (is there..., how many beeps/knocks/chirps, which comes first /
  last, does A come before B, how many different sounds); answer read from the scene.
* ``mic`` / ``mgr`` / ``mc`` / ``mqa`` / ``smer`` - short pieces from recipes (``GENRES``: march, waltz, techno,
  ballad, chorale, reggae as "genre-like" classes of meter, tempo, accompaniment, bass and drum patterns; key,
  chords, instruments per role): the instruments heard, the pattern, a caption, answers about mode / melody
  instrument / drums / bass / meter / tempo / instrument count, and an emotion from mode and tempo
  (``MUSIC_EMOTIONS``, a synthetic convention: happy, tense, calm, sad).

Long-form speech (demo and full presets, ``Sizes.long``; ``tasks_long.py``): ``long_asr`` and ``long_srwt``, one
speaker reading grammar sentences with 0.3-1.5 s pauses for 1-5 min (demo: 1-2 min); the samples are the
registry's ``asr`` (the whole transcript) and ``srwt`` (word times past 30 s written ``<|window_k|><|t - 30 k|>``),
in shard sets of their own, and their targets are not in text.txt: every other shard and the BPE stay as they were.

Held-out splits. First five tasks: splits drawn from disjoint seed streams; a valid or test sentence never
occurs in an earlier split. Full preset: content is owned by one split (``split_of``: 80/10/10 by a hash of the
content): sentences (those of the first five tasks keep their split), parallel meanings, commands, speakers
(variant, rate, pitch), sound combinations, captions and music recipes; so valid and test samples are new
sentences said by new speakers, new scenes and new pieces. Speech gets random leading/trailing silence, level
and (half the time) light noise.

The package, one room per module (each module's docstring says what it owns and must not do)::

    presets.py        task lists, splits, languages, sizes (PRESETS)
    text.py           sentence grammars, keywords, command and entity templates: what is said
    parallel.py       the S2TT parallel lexicon
    sounds.py         sound-event synthesis, sound names, the signal helpers
    music.py          notes and pieces from recipes, a recipe's labels
    speech.py         espeak utterances, speech dressing, voice label conventions; renders asr, srwt, lid
    plan.py           seed streams, jobs, held-out splits, the first five tasks' plan, the task-family registry
    tasks_speech.py   one voice: s2tt dasr did sgc sap er ks ic sf ser    a planner per task, registered with
    tasks_voices.py   several voices: osr sv sd                            @planner(...), and a renderer per
    tasks_sound.py    sec, and sound scenes: sed aac aqa                   family, registered with @renderer(...)
    tasks_music.py    mna, and music pieces: mic mgr mc mqa smer
    tasks_long.py     long-form speech: long_asr long_srwt (their own planner, renderer and seed streams)
    build.py          render, build_corpus, the manifest and summary, the CLI (run by ``__main__.py``)

Owns: the grammars and lexicons, the sound, note and music recipes, the label conventions above, planning and
rendering samples, the corpus layout.
Must not: know about tokenizers, models or training (the task formatters are used only to write text.txt).
"""

from __future__ import annotations

# The family modules register their tasks' planners and renderers when imported: importing them here makes every
# entry point (``build_corpus``, ``render`` in a worker process) see the complete registry.
from data_recipes.synthetic import tasks_music, tasks_sound, tasks_speech, tasks_voices  # noqa: F401
from data_recipes.synthetic.build import build_corpus, main, render
from data_recipes.synthetic.music import (
    GENRES,
    INSTRUMENTS,
    MQA_QUESTIONS,
    MUSIC_EMOTIONS,
    SONIC_QUALITIES,
    VELOCITIES,
    music_answer,
    music_caption,
    music_labels,
)
from data_recipes.synthetic.parallel import (
    ALL_LANGUAGES,
    PARALLEL_ADVERBS,
    PARALLEL_OBJECTS,
    PARALLEL_SUBJECTS,
    PARALLEL_VERBS,
    parallel_sentence,
)
from data_recipes.synthetic.plan import Job, plan_full_split, plan_split
from data_recipes.synthetic.presets import (
    ASR_LANGUAGES,
    FULL_TASKS,
    LONG_TASKS,
    NEW_TASKS,
    NUMPY_SOURCE,
    PRESETS,
    SPEECH_SOURCE,
    SPLITS,
    TASKS,
    Sizes,
)
from data_recipes.synthetic.sounds import CAPTION_PHRASES, CONTINUOUS_SOUNDS, SEC_CLASSES, SOUND_NAMES
from data_recipes.synthetic.speech import AGE_GROUPS, DIALECTS, EMOTIONS
from data_recipes.synthetic.tasks_long import plan_long_split
from data_recipes.synthetic.tasks_music import _recipe_id
from data_recipes.synthetic.text import (
    COMMANDS,
    ENTITY_FILLERS,
    GRAMMARS,
    KEYWORDS,
    NUMBER_WORDS,
    SLOT_FILLERS,
    fill_template,
)

__all__ = [  # what the tests and conftests use, plus the types of build_corpus's and render's arguments
    "AGE_GROUPS",
    "ALL_LANGUAGES",
    "ASR_LANGUAGES",
    "CAPTION_PHRASES",
    "COMMANDS",
    "CONTINUOUS_SOUNDS",
    "DIALECTS",
    "EMOTIONS",
    "ENTITY_FILLERS",
    "FULL_TASKS",
    "GENRES",
    "GRAMMARS",
    "INSTRUMENTS",
    "KEYWORDS",
    "LONG_TASKS",
    "MQA_QUESTIONS",
    "MUSIC_EMOTIONS",
    "NEW_TASKS",
    "NUMBER_WORDS",
    "NUMPY_SOURCE",
    "PARALLEL_ADVERBS",
    "PARALLEL_OBJECTS",
    "PARALLEL_SUBJECTS",
    "PARALLEL_VERBS",
    "PRESETS",
    "SEC_CLASSES",
    "SLOT_FILLERS",
    "SONIC_QUALITIES",
    "SOUND_NAMES",
    "SPEECH_SOURCE",
    "SPLITS",
    "TASKS",
    "VELOCITIES",
    "Job",
    "Sizes",
    "_recipe_id",
    "build_corpus",
    "fill_template",
    "main",
    "music_answer",
    "music_caption",
    "music_labels",
    "parallel_sentence",
    "plan_full_split",
    "plan_long_split",
    "plan_split",
    "render",
]
