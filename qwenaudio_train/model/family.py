"""Model families: what differs between Qwen-Audio and Qwen2-Audio, asked by everything downstream.

Owns: `ModelFamily` and its two instances `QWEN_AUDIO` and `QWEN2_AUDIO` (`FAMILIES`, `get_family`). A family
fixes:

* the mel bins of its released encoder: 80 (Whisper-large-v2, Qwen-Audio) / 128 (Whisper-large-v3, Qwen2-Audio);
* its audio special tokens and how one clip's span is written: `<audio> [[[AUDIO:modality]]] x N </audio>` with the
  release's ids (Qwen-Audio) / `<|audio_bos|> <|AUDIO|> x N <|audio_eos|>` (Qwen2-Audio's tokenizer, ids 151647,
  151646, 151648). Both are start + pad x N + end, so one span finder serves both;
* how the span is fused: Qwen-Audio overwrites the whole span with [learned bos, audio_1..N, learned eos]
  (`audio.audio_bos_eos_token`); Qwen2-Audio keeps the token embeddings of `<|audio_bos|>` / `<|audio_eos|>` and
  overwrites only the N pad positions (transformers' `Qwen2AudioForConditionalGeneration` scatters the features
  into the `<|AUDIO|>` positions alone);
* the pretraining prompt after the audio: Qwen-Audio's hierarchical tags (`tasks/`), Qwen2-Audio's natural-language
  prompts (`tasks/natural.py`; the paper: "we have simplified the pre-training process by utilizing natural
  language prompts"). Sources of the Qwen2-Audio prompts: the Qwen2-Audio-7B README on the hub ("Generate the
  caption in English:"), the prompts of the release's eval data (`eval_audio/EVALUATION.md` ships them inside its
  jsonl files: "Detect the language and recognize the speech: <|en|>", "Recognize the emotion with keywords in
  English:", "Classify the human vocal sound to VocalSound in English:", as quoted by evaluation toolkits that run
  them); every other task's prompt is our convention, written in the same style;
* the chat template: Qwen-Audio-Chat's ChatML with `Audio k:<audio>PATH</audio>\\n`, k counting the audios of one
  user turn (its `tokenizer.from_list_format`) / Qwen2-Audio-Instruct's ChatML with
  `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\\n`, k counting the audios of the whole conversation (its
  `chat_template`, `QWEN2_AUDIO_CHAT_TEMPLATE` below, as transformers' `Qwen2AudioProcessor` carries it); both
  insert the system prompt "You are a helpful assistant." when a conversation has none.

Must not: import torch, transformers or a tokenizer at module level (`ModelConfig` validates `family` and must stay
cheap to import), or know about batches; the code that renders ids (tokenizer, chat/render.py, data/processing.py)
and fuses embeddings (`QwenAudioModel.embed`) asks a family instead of testing its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwenaudio_train.tags import AUDIO_END, AUDIO_PAD, AUDIO_START, QWEN2_AUDIO_TOKENS

if TYPE_CHECKING:
    from qwenaudio_train.data.schema import SampleMeta
    from qwenaudio_train.tasks.registry import Task

# Qwen2-Audio-Instruct's chat template (the hub's chat_template.json; transformers' Qwen2AudioProcessor default).
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)
DEFAULT_SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True)
class ModelFamily:
    """What one model family fixes (see the module docstring). Instances are singletons: compare by `name`."""

    name: str
    n_mels: int  # mel bins of the family's released encoder (a preset or checkpoint of it sets model.n_mels)
    audio_start: str  # the token strings of one clip's span: start + pad x N + end
    audio_pad: str
    audio_end: str
    learned_bos_eos: bool  # True: the span's start/end positions take `audio.audio_bos_eos_token`
    release_special_tokens: bool  # True: a transformers tokenizer gets the release's 3522 special tokens registered
    chat_audio_label: str  # "Audio {n}:" label before each clip in a chat turn
    audio_numbering: str  # "turn": k restarts in every user turn; "conversation": k counts the whole conversation
    default_system: str = DEFAULT_SYSTEM
    chat_template: str | None = None  # the jinja template a transformers tokenizer of this family carries

    # -- spans ------------------------------------------------------------------------------------------------
    @property
    def audio_tokens(self) -> tuple[str, str, str]:
        """(start, pad, end) token strings."""
        return (self.audio_start, self.audio_pad, self.audio_end)

    def span_text(self, n: int) -> str:
        """One clip's span as text: start + pad x n + end."""
        return self.audio_start + self.audio_pad * n + self.audio_end

    def overwritten(self, start: int, end: int) -> tuple[int, int]:
        """First and last column (inclusive) of a span at tokens start..end that the fusion overwrites."""
        return (start, end) if self.learned_bos_eos else (start + 1, end - 1)

    def span_pieces(self, bos: Any, feats: Any, eos: Any) -> list[Any]:
        """The rows [.., H] written over `overwritten(...)`: [bos, feats, eos] or the features alone."""
        return [bos[None], feats, eos[None]] if self.learned_bos_eos else [feats]

    # -- prompts after the audio (pretraining samples, evaluation) ---------------------------------------------
    def train_prefix(self, task: Task, meta: SampleMeta) -> str:
        """The text between a tagged sample's audio span and its target."""
        if self.name == QWEN_AUDIO.name:
            return task.prompt(meta)
        from qwenaudio_train.tasks.natural import natural_prompt

        return natural_prompt(task, meta)

    def eval_prefix(self, task: Task, meta: SampleMeta) -> str:
        """The evaluation prompt after the audio: the training prefix plus the task's primer (forced output)."""
        return self.train_prefix(task, meta) + task.eval_primer

    # -- chat -----------------------------------------------------------------------------------------------------
    def audio_label(self, n: int) -> str:
        return self.chat_audio_label.format(n=n)


QWEN_AUDIO = ModelFamily(
    name="qwen_audio",
    n_mels=80,
    audio_start=AUDIO_START,
    audio_pad=AUDIO_PAD,
    audio_end=AUDIO_END,
    learned_bos_eos=True,
    release_special_tokens=True,
    chat_audio_label="Audio {n}:",
    audio_numbering="turn",
)
QWEN2_AUDIO = ModelFamily(
    name="qwen2_audio",
    n_mels=128,
    audio_start=QWEN2_AUDIO_TOKENS[0],
    audio_pad=QWEN2_AUDIO_TOKENS[1],
    audio_end=QWEN2_AUDIO_TOKENS[2],
    learned_bos_eos=False,
    release_special_tokens=False,
    chat_audio_label="Audio {n}: ",
    audio_numbering="conversation",
    chat_template=QWEN2_AUDIO_CHAT_TEMPLATE,
)
FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (QWEN_AUDIO, QWEN2_AUDIO)}


def get_family(name: str | ModelFamily) -> ModelFamily:
    """The family named `name` (`model.family`); a ModelFamily passes through."""
    if isinstance(name, ModelFamily):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"model.family={name!r}: choose one of {', '.join(FAMILIES)}") from None
