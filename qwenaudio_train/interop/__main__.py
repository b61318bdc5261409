"""`python -m qwenaudio_train.interop ...`: the same command line as `qwenaudio-interop` (see cli.py)."""

from qwenaudio_train.interop.cli import main

raise SystemExit(main())
