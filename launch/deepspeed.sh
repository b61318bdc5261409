#!/usr/bin/env bash
# Start training with DeepSpeed's own launcher. Run once, on the first node: with a hostfile it starts the ranks on
# every listed host (over pdsh/ssh, or DS_ARGS="--launcher openmpi" ...); without one, on this node only.
#
#   HOSTFILE=hostfile launch/deepspeed.sh experiment=demo                 # every host and slot of the hostfile
#   HOSTFILE=hostfile NUM_NODES=2 NUM_GPUS=4 launch/deepspeed.sh run_dir=runs/exp1 deepspeed=zero3
#   NUM_GPUS=2 launch/deepspeed.sh experiment=debug                       # this node only
#
# A hostfile has one line per host, `<hostname> slots=<GPUs on it>`. The hosts need passwordless ssh between them,
# the same paths (repository, Python, run directory on a shared filesystem) and pdsh on the first node.
# One host needs no ssh: with no hostfile (nor DeepSpeed's default /job/hostfile), a hostfile of one host, or
# NUM_NODES=1, the script passes --no_ssh --node_rank 0 (and --master_addr 127.0.0.1 unless MASTER_ADDR is set),
# so the launcher neither checks ssh to that host nor asks it for its address over ssh. DS_ARGS with --force_multi,
# --no_ssh or --node_rank turns this off.
#
# Environment:
#   HOSTFILE     the hostfile (optional; if given it must exist: DeepSpeed would silently fall back to this node)
#   NUM_NODES    use only the first N hosts of the hostfile; NUM_GPUS: ranks per host (default: all slots)
#   MASTER_ADDR  address of the first host as the others see it; MASTER_PORT (DeepSpeed's default: 29500)
#   RUN_DIR      the run directory (or pass run_dir=...); default runs/<name>-<timestamp>, chosen once here
#   OMP_NUM_THREADS  threads per rank (default 1): the deepspeed launcher sets none, and a CPU rank that starts
#                as many threads as there are cores is several times slower when several ranks share the node
#   DS_ARGS      extra launcher flags, word-split (e.g. "--launcher openmpi", "--ssh_port 2222")
#   ENTRY        module to run (default qwenaudio_train.pretrain); DEEPSPEED: the launcher executable
#   DRY_RUN=1    print the command instead of running it
#
# The launcher appends --local_rank=N to every rank's arguments; the entry point removes it before Hydra parses
# the overrides (LOCAL_RANK is also in the environment). Entry points without that handling need
# DS_ARGS=--no_local_rank.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENTRY="${ENTRY:-qwenaudio_train.pretrain}"
DS="${DEEPSPEED:-}"
if [[ -z "$DS" ]]; then
  if [[ -x "$here/.venv/bin/deepspeed" ]]; then DS="$here/.venv/bin/deepspeed"; else DS="deepspeed"; fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

fail() { echo "deepspeed.sh: $*" >&2; exit 2; }

launcher=()
if [[ -n "${HOSTFILE:-}" ]]; then
  [[ -f "$HOSTFILE" ]] || fail "HOSTFILE=$HOSTFILE does not exist (lines: '<hostname> slots=<GPUs>')"
  launcher+=(--hostfile "$HOSTFILE")
fi
if [[ -n "${NUM_NODES:-}" ]]; then launcher+=(--num_nodes "$NUM_NODES"); fi
if [[ -n "${NUM_GPUS:-}" ]]; then launcher+=(--num_gpus "$NUM_GPUS"); fi
if [[ -n "${MASTER_ADDR:-}" ]]; then launcher+=(--master_addr "$MASTER_ADDR"); fi
if [[ -n "${MASTER_PORT:-}" ]]; then launcher+=(--master_port "$MASTER_PORT"); fi
ds_args=()
if [[ -n "${DS_ARGS:-}" ]]; then read -r -a ds_args <<< "$DS_ARGS"; launcher+=("${ds_args[@]}"); fi

# One host: DeepSpeed 0.19 still ssh-es to a hostfile's only host (a reachability check, and `hostname -I` when no
# --master_addr is given) although it then starts the ranks locally. Without a hostfile it reads /job/hostfile.
hostfile="${HOSTFILE:-}"
if [[ -z "$hostfile" && -f /job/hostfile ]]; then hostfile=/job/hostfile; fi
hosts=1
if [[ -n "$hostfile" ]]; then hosts="$(grep -cE '^[[:space:]]*[^#[:space:]]+[[:space:]]+slots=' "$hostfile" || true)"; fi
if [[ "${NUM_NODES:-}" == 1 ]]; then hosts=1; fi
user_multi=0
for a in "${ds_args[@]}"; do
  case "$a" in --force_multi|--no_ssh|--node_rank|--node_rank=*) user_multi=1 ;; esac
done
if (( hosts <= 1 && user_multi == 0 )); then
  launcher+=(--no_ssh --node_rank 0)
  if [[ -z "${MASTER_ADDR:-}" ]]; then launcher+=(--master_addr 127.0.0.1); fi
fi

# One name for every rank on every host (the launcher passes these same arguments everywhere).
source "$here/launch/run_dir.sh"
choose_run_dir "$@"
extra=("${run_dir_args[@]}")

# The launcher forwards to remote hosts only a few variable families (PYTHON*, NCCL*, ...) plus the lines of the
# file named by DS_ENV_FILE: write OMP_NUM_THREADS there (after the user's own .deepspeed_env, if any).
env_file="$(cd "$run_dir" && pwd)/deepspeed_env"
user_env="${DS_ENV_FILE:-.deepspeed_env}"
if [[ "$user_env" == /* ]]; then user_files=("$user_env"); else user_files=("$HOME/$user_env" "./$user_env"); fi
: > "$env_file.tmp"
for f in "${user_files[@]}"; do
  if [[ -f "$f" ]]; then grep -v '^OMP_NUM_THREADS=' "$f" >> "$env_file.tmp" || true; fi
done
echo "OMP_NUM_THREADS=$OMP_NUM_THREADS" >> "$env_file.tmp"
mv "$env_file.tmp" "$env_file"
export DS_ENV_FILE="$env_file"
ssh_note=""
if (( hosts <= 1 && user_multi == 0 )); then ssh_note=", one host: no ssh"; fi
echo "run directory: $run_dir (OMP_NUM_THREADS=$OMP_NUM_THREADS, remote environment: $env_file$ssh_note)"

cmd=("$DS" "${launcher[@]}" --module "$ENTRY" "$@" "${extra[@]}")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
