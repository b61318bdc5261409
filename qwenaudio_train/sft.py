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
    from qwenaudio_train.checkpoint import CheckpointError  # torch: imported once the config is valid
    from qwenaudio_train.faults import EXIT_SIGNAL_SAVED
    from qwenaudio_train.trainer import Trainer

    try:
        result = Trainer(with_absolute_paths(validate(cfg))).train()
    except (ConfigError, CheckpointError) as e:  # one line naming the file and the fix
        print(f"qwenaudio-sft: {e}", file=sys.stderr)
        sys.exit(2)
    if result["stopped_by"]:  # saved on SIGTERM/SIGUSR1: a code a requeue script can test
        sys.exit(EXIT_SIGNAL_SAVED)


def main() -> None:
    sys.argv[1:] = strip_local_rank(sys.argv[1:])
    prevalidate("qwenaudio-sft", "sft", sys.argv[1:], check_train)
    _main()


if __name__ == "__main__":
    main()
