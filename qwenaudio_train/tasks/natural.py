"""Qwen2-Audio's natural-language prompts: the text after the audio span of a tagged sample, per task.

Owns: `NATURAL_PROMPTS` (task -> template) and `natural_prompt`, which `model.family.QWEN2_AUDIO` uses where
Qwen-Audio writes its hierarchical tags. Qwen2-Audio's paper replaced the tags by natural-language prompts; the
release ships its evaluation prompts inside its eval jsonl files (`eval_audio/EVALUATION.md`) and its README:
  asr  "Detect the language and recognize the speech: <|en|>"    (LibriSpeech / Common Voice / FLEURS eval data)
  er   "Recognize the emotion with keywords in English:"        (MELD eval data)
  vsc  "Classify the human vocal sound to VocalSound in English:" (VocalSound eval data)
  aac  "Generate the caption in English:"                       (Qwen2-Audio-7B README)
Every other template is our convention in the same style (`RELEASE_PROMPTS` lists the four above). `<|en|>` is not
a special token of Qwen2-Audio's tokenizer: it is written as text, as the release's prompts write it.

Must not: import torch or a tokenizer, or change a task's target (the target format is the task's own).
"""

from __future__ import annotations

from qwenaudio_train.data.schema import SampleMeta
from qwenaudio_train.tags import LANGUAGES
from qwenaudio_train.tasks.registry import Task

RELEASE_PROMPTS = frozenset({"asr", "er", "vsc", "aac"})

# {audio_lang}: the spoken language code; {text_lang}: the output language's English name; {question}: meta.question.
NATURAL_PROMPTS: dict[str, str] = {
    "asr": "Detect the language and recognize the speech: <|{audio_lang}|>",
    "s2tt": "Detect the language and translate the speech into {text_lang}: <|{audio_lang}|>",
    "osr": "Recognize the speech of every speaker in order: <|{audio_lang}|>",
    "dasr": "Recognize the dialect speech: <|{audio_lang}|>",
    "srwt": "Recognize the speech with word-level timestamps: <|{audio_lang}|>",
    "did": "Identify the dialect in {text_lang}:",
    "lid": "Detect the spoken language in {text_lang}:",
    "sgc": "Classify the speaker's gender in {text_lang}:",
    "er": "Recognize the emotion with keywords in {text_lang}:",
    "sv": "Are the two utterances spoken by the same speaker? Answer in {text_lang}:",
    "sd": "Diarize the speakers with timestamps in {text_lang}:",
    "ser": "Recognize the speech and mark its named entities: <|{audio_lang}|>",
    "ks": "Spot the keyword spoken in {text_lang}:",
    "ic": "Classify the intent of the speech in {text_lang}:",
    "sf": "Recognize the speech and mark its slots: <|{audio_lang}|>",
    "sap": "Predict the speaker's age group in {text_lang}:",
    "vsc": "Classify the human vocal sound to VocalSound in {text_lang}:",
    "aac": "Generate the caption in {text_lang}:",
    "sec": "Classify the sound events in {text_lang}:",
    "asc": "Classify the acoustic scene in {text_lang}:",
    "sed": "Detect the sound events with timestamps in {text_lang}:",
    "aqa": "{question}",
    "sid": "Identify the singer in {text_lang}:",
    "smer": "Recognize the emotion of the music with keywords in {text_lang}:",
    "mc": "Describe the music in {text_lang}:",
    "mic": "Classify the music instruments in {text_lang}:",
    "mna": "Analyze the musical note in {text_lang}:",
    "mgr": "Recognize the music genre in {text_lang}:",
    "mr": "Recognize the song in {text_lang}:",
    "mqa": "{question}",
}


def natural_prompt(task: Task, meta: SampleMeta) -> str:
    """Qwen2-Audio's prompt for `task` on `meta` (no space or newline after: the target follows directly, as the
    release's eval prompts end)."""
    template = NATURAL_PROMPTS.get(task.name)
    if template is None:
        raise ValueError(f"task {task.name!r} has no Qwen2-Audio prompt: add one to tasks/natural.py NATURAL_PROMPTS")
    text_lang = meta.text_language or "en"
    return template.format(
        audio_lang=meta.audio_language or text_lang,
        text_lang=LANGUAGES.get(text_lang, text_lang).capitalize(),
        question=meta.meta.get("question", ""),
    )
