"""What every Hydra entry point (``qwenaudio-pretrain``, ``qwenaudio-sft``, ``qwenaudio-eval``) does before Hydra.

* ``strip_local_rank``: the ``deepspeed`` launcher appends ``--local_rank=N``, which ``@hydra.main`` rejects.
* ``prevalidate``: compose the config of this command line with Hydra's Compose API and validate it, so that a
  misspelt key, a wrong value or a missing required field stops with one line naming it (exit code 2) before
  Hydra, DeepSpeed or any process group starts. Sweeps (``--multirun``) and Hydra's own flags (``--help``,
  ``--cfg``...) are left to Hydra.

Must not: build anything or start any process group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_WITH_VALUE = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--package", "-p",
               "--experimental-rerun")  # fmt: skip


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


def split_hydra_args(argv: list[str]) -> tuple[list[str], list[str], bool]:
    """(overrides, user config dirs, whether Hydra alone must handle this command line)."""
    overrides: list[str] = []
    config_dirs: list[str] = []
    hydra_only = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _WITH_VALUE:
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            if name in ("--config-dir", "-cd"):
                config_dirs.append(value)
            elif name in ("--config-name", "-cn", "--config-path", "-cp", "--experimental-rerun"):
                hydra_only = True  # another primary config: Hydra composes it
        elif arg.startswith("-"):
            hydra_only = True  # --help, --cfg, --multirun... and any flag this module does not know
        else:
            overrides.append(arg)
        i += 1
    return overrides, config_dirs, hydra_only


def prevalidate(prog: str, config_name: str, argv: list[str], check: Callable[[Any], object] | None = None) -> None:
    """Exit with code 2 and one line on stderr when this command line's config is invalid."""
    from qwenaudio_train.config import ConfigError, compose_raw

    overrides, config_dirs, hydra_only = split_hydra_args(argv)
    if hydra_only:
        return
    for d in config_dirs:
        if not Path(d).is_dir():
            _fail(prog, f"--config-dir {d}: no such directory")
    try:
        cfg = compose_raw(config_name, overrides, config_dirs)
        if check is not None:
            check(cfg)
    except ConfigError as e:
        _fail(prog, str(e))
    except Exception as e:  # Hydra's own composition errors (unknown group option, key not in the schema...)
        from hydra.errors import HydraException

        if not isinstance(e, HydraException):
            raise
        _fail(prog, " ".join(str(e).split("Config search path")[0].split()))


def _fail(prog: str, message: str) -> None:
    for line in message.splitlines() or [""]:  # one line per problem, each naming the key and the fix
        print(f"{prog}: {line}", file=sys.stderr)
    sys.exit(2)
