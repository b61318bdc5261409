#!/usr/bin/env bash
# Start 1..N training ranks on this node with torchrun, all writing to ONE run directory.
#
#   NPROC=2 launch/train.sh experiment=demo                 # run_dir chosen here: runs/<name>-<timestamp>
#   NPROC=8 launch/train.sh run_dir=runs/exp1 data=...     # an explicit run_dir (resume=auto continues it)
#   ENTRY=qwenaudio_train.pretrain (default); SHUTDOWN_TIMEOUT=100 (seconds the ranks get to save on a signal)
#
# Exit code: 0 when training finished, 3 when the ranks saved and stopped on SIGTERM/SIGUSR1 (requeue and the same
# command resumes), else torchrun's (1 when a rank failed).
#
# The run directory is fixed here, once, and passed to every rank: Hydra's ${now:} would otherwise be
# resolved separately by each rank and split one job over several folders.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPROC="${NPROC:-1}"
ENTRY="${ENTRY:-qwenaudio_train.pretrain}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PY="$here/.venv/bin/python"; else PY="python"; fi
fi

# One name for every rank on every host (the launcher passes these same arguments everywhere).
source "$here/launch/run_dir.sh"
choose_run_dir "$@"
extra=("${run_dir_args[@]}")
echo "run directory: $run_dir (ranks: $NPROC)"

# Preemption, as under SLURM: torchrun forwards SIGTERM and SIGUSR1 to the ranks, which finish their step, save and
# exit; this script exits 3 after such a save (launch/signals.sh).
source "$here/launch/signals.sh"
cmd=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" "${torchrun_signal_flags[@]}"
     -m "$ENTRY" "$@" "${extra[@]}")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
run_forwarding_signals "$run_dir" "${cmd[@]}"
