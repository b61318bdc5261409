"""Entry point of stage 1, multi-task pretraining: ``qwenaudio-pretrain [hydra overrides]``.

Launch with ``launch/train.sh`` (torchrun, fixes one run directory for all ranks), or directly:
``torchrun --nproc_per_node 2 -m qwenaudio_train.pretrain experiment=demo run_dir=runs/demo``.
Your own configs: ``qwenaudio-pretrain --config-dir my_configs data=my_mixture``.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from qwenaudio_train.config import CONFIG_DIR, ConfigError, check_train, validate, with_absolute_paths
from qwenaudio_train.entry import prevalidate, strip_local_rank


def run(cfg: DictConfig) -> dict[str, Any]:
    from qwenaudio_train.trainer import Trainer

    return Trainer(with_absolute_paths(validate(cfg))).train()


@hydra.main(config_path=str(CONFIG_DIR), config_name="pretrain", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    from qwenaudio_train.checkpoint import CheckpointError  # torch: imported once the config is valid
    from qwenaudio_train.faults import EXIT_SIGNAL_SAVED

    try:
        result = run(cfg)
    except (ConfigError, CheckpointError) as e:  # one line naming the file and the fix
        print(f"qwenaudio-pretrain: {e}", file=sys.stderr)
        sys.exit(2)
    if result["stopped_by"]:  # saved on SIGTERM/SIGUSR1: a code a requeue script can test
        sys.exit(EXIT_SIGNAL_SAVED)


def main() -> None:
    sys.argv[1:] = strip_local_rank(sys.argv[1:])
    prevalidate("qwenaudio-pretrain", "pretrain", sys.argv[1:], check_train)
    _main()


if __name__ == "__main__":
    main()
