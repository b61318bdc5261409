"""Checkpoint interop: the released Qwen-Audio layout <-> our model, and our model <-> transformers' Qwen2-Audio.

Rooms, imported here so that `from qwenaudio_train.interop import <name>` reaches every public name (and
`qwenaudio_train.interop:main` is the `qwenaudio-interop` entry point):

  release.py      QWenLMHeadModel of QwenLM/Qwen-Audio and Qwen-7B (v1) <-> ours: name table, configs, import/export
  qwen2_audio.py  ours <-> transformers' Qwen2AudioForConditionalGeneration
  common.py       name templates, reading/writing checkpoint directories, native LLM from converted weights
  cli.py          `python -m qwenaudio_train.interop COMMAND SRC OUT`

Must not: touch the training loop, tokenizers or data; need network or trust_remote_code.
"""

from qwenaudio_train.interop.cli import main
from qwenaudio_train.interop.common import StateDict, load_release_checkpoint
from qwenaudio_train.interop.qwen2_audio import (
    EXPORT_SIDECAR,
    QWEN2_AUDIO_BOS_ID,
    QWEN2_AUDIO_EOS_ID,
    QWEN2_AUDIO_TOKEN_ID,
    QWEN2_EOD_ID,
    export_qwen2_audio,
    import_qwen2_audio,
    qwen2_audio_config,
    qwen2_audio_state_dict,
)
from qwenaudio_train.interop.release import (
    convert_release_state_dict,
    export_release_checkpoint,
    export_release_state_dict,
    import_release_checkpoint,
    import_release_llm,
    model_to_release_config,
    release_to_model_config,
    release_to_qwen2_config,
)

__all__ = [
    "EXPORT_SIDECAR",
    "QWEN2_AUDIO_BOS_ID",
    "QWEN2_AUDIO_EOS_ID",
    "QWEN2_AUDIO_TOKEN_ID",
    "QWEN2_EOD_ID",
    "StateDict",
    "convert_release_state_dict",
    "export_qwen2_audio",
    "export_release_checkpoint",
    "export_release_state_dict",
    "import_qwen2_audio",
    "import_release_checkpoint",
    "import_release_llm",
    "load_release_checkpoint",
    "main",
    "model_to_release_config",
    "qwen2_audio_config",
    "qwen2_audio_state_dict",
    "release_to_model_config",
    "release_to_qwen2_config",
]
