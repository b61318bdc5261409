"""Entry point of stage 1, multi-task pretraining: ``qwenaudio-pretrain [hydra overrides]``.

Launch with ``launch/train.sh`` (torchrun, fixes one run directory for all ranks), or directly:
``torchrun --nproc_per_node 2 -m qwenaudio_train.pretrain experiment=demo run_dir=runs/demo``.
"""

from __future__ import annotations

import os
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


def strip_local_rank(argv: list[str]) -> list[str]:
    """Remove the ``--local_rank=N`` / ``--local_rank N`` the ``deepspeed`` launcher adds (``@hydra.main`` rejects
    it); its value goes to ``LOCAL_RANK`` unless the launcher already set that."""
    kept: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(("--local_rank=", "--local-rank=")):
            os.environ.setdefault("LOCAL_RANK", arg.split("=", 1)[1])
        elif arg in ("--local_rank", "--local-rank") and i + 1 < len(argv):
            os.environ.setdefault("LOCAL_RANK", argv[i + 1])
            i += 1
        else:
            kept.append(arg)
        i += 1
    return kept


def main() -> None:
    sys.argv[1:] = strip_local_rank(sys.argv[1:])
    _main()


if __name__ == "__main__":
    main()
