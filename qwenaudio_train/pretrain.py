"""Entry point of stage 1, multi-task pretraining: ``qwenaudio-pretrain [hydra overrides]``.

Launch with ``launch/train.sh`` (torchrun, fixes one run directory for all ranks), or directly:
``torchrun --nproc_per_node 2 -m qwenaudio_train.pretrain experiment=demo run_dir=runs/demo``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from qwenaudio_train.config import CONFIG_DIR, ConfigError, validate


def run(cfg: DictConfig) -> dict:
    from qwenaudio_train.trainer import Trainer

    return Trainer(validate(cfg)).train()


@hydra.main(config_path=str(CONFIG_DIR), config_name="pretrain", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except ConfigError as e:
        print(f"qwenaudio-pretrain: {e}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
