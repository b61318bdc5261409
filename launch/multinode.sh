#!/usr/bin/env bash
# Start training on several nodes with torchrun and a c10d rendezvous. Run this same command on EVERY node.
#
#   NNODES=2 NPROC=8 MASTER_ADDR=node-a RUN_DIR=runs/exp1 launch/multinode.sh experiment=demo
#   NNODES=2 NPROC=8 MASTER_ADDR=node-a launch/multinode.sh run_dir=runs/exp1 deepspeed=zero3
#
# Environment:
#   NNODES       number of nodes (required; `MIN:MAX` for an elastic range)
#   MASTER_ADDR  host of the rendezvous (required): any one of the nodes, the same on all of them
#   MASTER_PORT  port of the rendezvous (default 29500)
#   NPROC        ranks per node, one per GPU (default 1)
#   RUN_DIR      the run directory (or pass run_dir=... as an override); required, see below
#   RUN_ID       rendezvous id, the same on all nodes (default: the run directory's name)
#   MAX_RESTARTS torchrun restarts of the whole worker group after a failure (default 0)
#   ENTRY        module to run (default qwenaudio_train.pretrain); PYTHON: the interpreter
#   SHUTDOWN_TIMEOUT seconds the ranks get to save after SIGTERM/SIGUSR1 (default 100)
#   DRY_RUN=1    print the command instead of running it
#
# Exit code: 0 when training finished, 3 when the ranks saved on SIGTERM/SIGUSR1 (launch/README.md), else torchrun's.
#
# The run directory must be given explicitly: each node runs this script on its own clock, so a timestamped name
# chosen here would differ between nodes and split one job over several folders. It must be on a shared
# filesystem. Resuming is automatic (trainer.resume=auto): relaunching with the same run directory continues it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPROC="${NPROC:-1}"
MASTER_PORT="${MASTER_PORT:-29500}"
MAX_RESTARTS="${MAX_RESTARTS:-0}"
ENTRY="${ENTRY:-qwenaudio_train.pretrain}"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PY="$here/.venv/bin/python"; else PY="python"; fi
fi

fail() { echo "multinode.sh: $*" >&2; exit 2; }
[[ -n "${NNODES:-}" ]] || fail "set NNODES (the number of nodes), e.g. NNODES=2"
[[ -n "${MASTER_ADDR:-}" ]] || fail "set MASTER_ADDR to the rendezvous host (one of the nodes, the same on every node)"

run_dir=""
for arg in "$@"; do
  case "$arg" in
    run_dir=*) run_dir="${arg#run_dir=}" ;;
  esac
done
extra=()
if [[ -n "$run_dir" && -n "${RUN_DIR:-}" && "$run_dir" != "$RUN_DIR" ]]; then
  fail "RUN_DIR=$RUN_DIR and run_dir=$run_dir disagree: give one of them"
fi
if [[ -z "$run_dir" ]]; then
  [[ -n "${RUN_DIR:-}" ]] || fail "give the run directory explicitly (RUN_DIR=runs/<name> or run_dir=runs/<name>):" \
    "nodes cannot agree on a timestamp, and all of them must write to one shared folder"
  run_dir="$RUN_DIR"
  extra+=("run_dir=$run_dir")
fi
RUN_ID="${RUN_ID:-$(basename "$run_dir")}"
mkdir -p "$run_dir"
echo "run directory: $run_dir (nodes: $NNODES, ranks per node: $NPROC, rendezvous: $MASTER_ADDR:$MASTER_PORT)"

source "$here/launch/signals.sh"  # SIGTERM/SIGUSR1 reach the ranks, which save; exit code 3 after such a save
cmd=("$PY" -m torch.distributed.run --nnodes "$NNODES" --nproc_per_node "$NPROC"
     --rdzv_backend c10d --rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv_id "$RUN_ID"
     --max_restarts "$MAX_RESTARTS" "${torchrun_signal_flags[@]}" -m "$ENTRY" "$@" "${extra[@]}")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
run_forwarding_signals "$run_dir" "${cmd[@]}"
