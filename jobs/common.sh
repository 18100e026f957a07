# jobs/common.sh - sourced by every jobs/*.sbatch script: environment activation in one place.
# Edit this file (not the job scripts) for your site: modules, conda, another virtual environment.
#
#   HAWKEYE_ROOT    repository root the jobs run in (default: the directory sbatch was called from)
#   HAWKEYE_PYTHON  Python interpreter (default: $HAWKEYE_ROOT/.venv/bin/python, else python3)
set -euo pipefail

HAWKEYE_ROOT=${HAWKEYE_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
cd "$HAWKEYE_ROOT"

# Site setup goes here, e.g.:
#   module load cuda/12.1
#   source /path/to/conda/etc/profile.d/conda.sh && conda activate hawkeye

if [ -z "${HAWKEYE_PYTHON:-}" ]; then
  if [ -x "$HAWKEYE_ROOT/.venv/bin/python" ]; then
    HAWKEYE_PYTHON=$HAWKEYE_ROOT/.venv/bin/python
  else
    HAWKEYE_PYTHON=python3
  fi
fi
export HAWKEYE_ROOT HAWKEYE_PYTHON
export PYTHONUNBUFFERED=1   # log lines reach the Slurm log as they happen

# hawkeye_requeue_on_signal: run a command in the background so this shell can react to Slurm's
# warning signal (`#SBATCH --signal=B:USR2@<seconds>`): the task is requeued and, when it starts
# again, training resumes from its last.pt. Exits with the command's status.
hawkeye_requeue_on_signal() {
  local child
  "$@" &
  child=$!
  # shellcheck disable=SC2064  # expand $child now
  trap "echo 'hawkeye: USR2 received, requeueing ${SLURM_JOB_ID:-?}'; kill -TERM $child 2>/dev/null; scontrol requeue ${SLURM_JOB_ID:-0}; exit 0" USR2
  wait "$child"
}
