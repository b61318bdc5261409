"""The Qwen-Audio model: Whisper encoder + stride-2 pool + projector + a causal LM, as plain nn.Modules.

Four rooms, imported here so that `from qwenaudio_train.model import <name>` reaches every public name:

  config.py      ModelConfig (dims, sources, special ids, dtype), PRESETS, dims -> transformers configs
  encoder.py     AudioEncoder (length-following Whisper encoder + pool + ln_post + proj), Whisper building/loading
  qwen_audio.py  QwenAudioModel: span fusion, loss, greedy generation, save_pretrained / from_pretrained
  build.py       build_llm, build_audio_encoder, build_model (tiny from dims, or from checkpoints / init_from)

Must not: know about data loading, tokenizers, optimizers or distributed training (see each module).
"""

from qwenaudio_train.model.build import build_audio_encoder, build_llm, build_model
from qwenaudio_train.model.config import (
    PRESETS,
    RELEASE_AUDIO_END_ID,
    RELEASE_AUDIO_PAD_ID,
    RELEASE_AUDIO_START_ID,
    RELEASE_EOD_ID,
    ModelConfig,
    concrete_dtype,
    encoder_dtype,
    qwen2_config_from_dims,
    torch_dtype,
    whisper_config_from_dims,
)
from qwenaudio_train.model.encoder import (
    AudioEncoder,
    build_whisper_encoder,
    load_whisper_encoder,
    read_whisper_encoder_state_dict,
)
from qwenaudio_train.model.qwen_audio import (
    AUDIO_CONFIG,
    AUDIO_DIR,
    AUDIO_WEIGHTS,
    HOST_INPUTS,
    IGNORE_INDEX,
    LLM_DIR,
    MODEL_CONFIG,
    MODEL_INPUTS,
    QwenAudioModel,
    QwenAudioOutput,
    embedding_rows,
    embedding_weight,
)

__all__ = [
    "AUDIO_CONFIG",
    "AUDIO_DIR",
    "AUDIO_WEIGHTS",
    "HOST_INPUTS",
    "IGNORE_INDEX",
    "LLM_DIR",
    "MODEL_CONFIG",
    "MODEL_INPUTS",
    "PRESETS",
    "RELEASE_AUDIO_END_ID",
    "RELEASE_AUDIO_PAD_ID",
    "RELEASE_AUDIO_START_ID",
    "RELEASE_EOD_ID",
    "AudioEncoder",
    "ModelConfig",
    "QwenAudioModel",
    "QwenAudioOutput",
    "build_audio_encoder",
    "build_llm",
    "build_model",
    "build_whisper_encoder",
    "concrete_dtype",
    "embedding_rows",
    "embedding_weight",
    "encoder_dtype",
    "load_whisper_encoder",
    "qwen2_config_from_dims",
    "read_whisper_encoder_state_dict",
    "torch_dtype",
    "whisper_config_from_dims",
]
