"""Entry point of stage 2, chat SFT: ``qwenaudio-sft [hydra overrides]`` (``configs/sft.yaml``).

Same trainer as pretraining; the config selects the chat data format, the ``sft`` freeze policy and optional
LoRA (``lora.enabled=true``). Launch like pretraining: ``ENTRY=qwenaudio_train.sft launch/train.sh ...``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from qwenaudio_train.config import CONFIG_DIR, ConfigError, check_train, validate, with_absolute_paths
from qwenaudio_train.entry import prevalidate, strip_local_rank


@hydra.main(config_path=str(CONFIG_DIR), config_name="sft", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    from qwenaudio_train.trainer import Trainer

    try:
        Trainer(with_absolute_paths(validate(cfg))).train()
    except ConfigError as e:
        print(f"qwenaudio-sft: {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    sys.argv[1:] = strip_local_rank(sys.argv[1:])
    prevalidate("qwenaudio-sft", "sft", sys.argv[1:], check_train)
    _main()


if __name__ == "__main__":
    main()
