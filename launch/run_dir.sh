# Sourced by the launch scripts (not run on its own): choose ONE run directory for every rank and host.
# choose_run_dir "$@" sets `run_dir` (from a run_dir=... override, else $RUN_DIR, else runs/<name>-<timestamp>)
# and `run_dir_args`, the override to append when the user gave none, and creates the directory.
choose_run_dir() {
  run_dir=""
  local name="pretrain" arg
  for arg in "$@"; do
    case "$arg" in
      run_dir=*) run_dir="${arg#run_dir=}" ;;
      name=*) name="${arg#name=}" ;;
      experiment=*) name="${arg#experiment=}" ;;
    esac
  done
  run_dir_args=()
  if [[ -z "$run_dir" ]]; then
    run_dir="${RUN_DIR:-runs/${name}-$(date +%Y%m%d-%H%M%S)}"
    run_dir_args+=("run_dir=$run_dir")
  fi
  mkdir -p "$run_dir"
}
