# Sourced by launch/slurm/*.sbatch (not run on its own): what every SLURM job of this project does.
#
#   slurm_prepare "$@"              settings, the run directory, the signal traps; run it before anything slow
#   slurm_launch                    srun "${srun_opts[@]}" torchrun "${torchrun_opts[@]}" -m ENTRY "$@" ...,
#                                   in the background, waited for so that the traps can run
#
# The batch script keeps only its #SBATCH header and what differs: srun_opts (tasks per node) and torchrun_opts
# (standalone, or a c10d rendezvous across nodes).
#
# Run directory: run_dir=... if given, else RUN_DIR, else runs/<job name>-<job id>. It is fixed here, once, for all
# ranks of all nodes, and the job id stays the same when SLURM requeues the job: a requeued job finds its run
# directory again and resumes from the latest checkpoint (trainer.resume=auto, forced on requeued starts).
#
# Time limit and preemption: --signal=B:USR1@120 makes SLURM signal the batch shell 120 s before the time limit.
# The trap below forwards SIGUSR1 to srun (which forwards it to torchrun, which forwards it to the ranks); the
# trainer finishes its step, saves a checkpoint and exits; then the job requeues itself (scontrol requeue), at most
# MAX_REQUEUES times. On preemption SLURM sends SIGTERM: the trainer saves the same way and SLURM requeues the
# job itself (--requeue). Checkpoints are written to a temporary name and renamed, so a save cut short by the kill
# leaves the previous checkpoint as the latest.
#
# Exit code: 3 when the ranks saved on a signal (rank 0 wrote <run_dir>/stopped_by_signal.json), unless the job was
# requeued (0); otherwise srun's.
#
# Environment: NPROC ranks per node (default: the GPUs of the node), MAX_REQUEUES (default 10), SHUTDOWN_TIMEOUT
# seconds torchrun waits for the ranks to save after a signal (default 100, keep it below the --signal lead time),
# ENTRY (default qwenaudio_train.pretrain), PYTHON (default .venv/bin/python if present, else python).

slurm_prepare() {
  cd "${SLURM_SUBMIT_DIR:-$PWD}"
  PY="${PYTHON:-}"
  if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python; fi
  fi
  ENTRY="${ENTRY:-qwenaudio_train.pretrain}"
  NPROC="${NPROC:-${SLURM_GPUS_ON_NODE:-1}}"
  MAX_REQUEUES="${MAX_REQUEUES:-10}"
  SHUTDOWN_TIMEOUT="${SHUTDOWN_TIMEOUT:-100}"
  restarts="${SLURM_RESTART_COUNT:-0}"

  run_dir=""
  local arg
  for arg in "$@"; do
    case "$arg" in
      run_dir=*) run_dir="${arg#run_dir=}" ;;
    esac
  done
  extra=()
  if [[ -z "$run_dir" ]]; then
    run_dir="${RUN_DIR:-runs/${SLURM_JOB_NAME}-${SLURM_JOB_ID}}"
    extra+=("run_dir=$run_dir")
  fi
  if (( restarts > 0 )); then
    extra+=("trainer.resume=auto")  # a requeued job continues its own run, whatever the first start was told
  fi

  # Installed before anything slow: an untrapped SIGUSR1 would kill this shell.
  srun_pid=""
  trap _slurm_on_usr1 USR1
  trap _slurm_on_term TERM

  mkdir -p "$run_dir"
  stop_record="$run_dir/stopped_by_signal.json"  # written by rank 0 after a save on a signal
  rm -f "$stop_record"
}

# 3 when the ranks saved on a signal (qwenaudio_train.faults.EXIT_SIGNAL_SAVED), else the given code.
_slurm_exit() {
  if [[ -f "$stop_record" ]]; then
    echo "the ranks saved on a signal: $(cat "$stop_record")"
    exit 3
  fi
  exit "$1"
}

_slurm_on_usr1() {
  echo "SIGUSR1: the time limit is near; the trainer saves a checkpoint and exits"
  if [[ -n "$srun_pid" ]]; then
    kill -USR1 "$srun_pid" 2>/dev/null || true
    wait "$srun_pid" || true
  fi
  if (( restarts < MAX_REQUEUES )); then
    echo "requeueing job $SLURM_JOB_ID (restart $((restarts + 1)) of at most $MAX_REQUEUES); it resumes from $run_dir"
    scontrol requeue "$SLURM_JOB_ID"
  else
    echo "not requeueing job $SLURM_JOB_ID: MAX_REQUEUES=$MAX_REQUEUES restarts reached"
    _slurm_exit 0
  fi
  exit 0
}

_slurm_on_term() {
  echo "SIGTERM: the trainer saves a checkpoint and exits"
  if [[ -n "$srun_pid" ]]; then
    kill -TERM "$srun_pid" 2>/dev/null || true
    wait "$srun_pid" || true
  fi
  _slurm_exit 143
}

slurm_launch() {
  local cmd=(srun "${srun_opts[@]}" --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" --kill-on-bad-exit=1
             "$PY" -m torch.distributed.run "${torchrun_opts[@]}" --nproc_per_node "$NPROC"
             --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout "$SHUTDOWN_TIMEOUT"
             -m "$ENTRY" "$@" "${extra[@]}")
  echo "command: $(printf '%q ' "${cmd[@]}")"
  # srun runs in the background and the shell waits for it: bash runs a trap only between commands, and `wait`
  # is interrupted by a signal where a foreground srun would not be.
  "${cmd[@]}" &
  srun_pid=$!
  local status=0
  wait "$srun_pid" || status=$?
  _slurm_exit "$status"
}
