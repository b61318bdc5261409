# Sourced by train.sh and multinode.sh (not run on its own): run torchrun so that a preemption signal ends in a save
# and in an exit code a requeue script can test.
#
#   torchrun_signal_flags          the flags that make torchrun forward SIGTERM and SIGUSR1 to the ranks (as the SLURM
#                                  templates pass them) and wait SHUTDOWN_TIMEOUT seconds (default 100) for their save
#   run_forwarding_signals DIR CMD...   run CMD in the background, pass USR1/TERM/INT/HUP/QUIT on to it, and exit 3
#                                  when the ranks saved on a signal (rank 0 wrote DIR/stopped_by_signal.json), else
#                                  with CMD's code. torchrun itself exits 1 after any signal, hence the record.
torchrun_signal_flags=(--signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1
                       --shutdown-timeout "${SHUTDOWN_TIMEOUT:-100}")

run_forwarding_signals() {
  local stop_record="$1/stopped_by_signal.json" sig status pid
  shift
  rm -f "$stop_record"  # it describes the last stop of this run only
  "$@" &
  pid=$!
  for sig in USR1 TERM INT HUP QUIT; do
    trap "kill -$sig $pid 2>/dev/null || true" "$sig"
  done
  # `wait` returns early (> 128) when a trapped signal arrives: wait again while the command runs.
  while :; do
    if wait "$pid"; then status=0; else status=$?; fi
    if (( status <= 128 )) || ! kill -0 "$pid" 2>/dev/null; then break; fi
  done
  if [[ -f "$stop_record" ]]; then
    echo "$(basename "$0"): the ranks saved on a signal: $(cat "$stop_record")"
    exit 3
  fi
  exit "$status"
}
