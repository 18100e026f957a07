#!/usr/bin/env bash
# jobs/pipeline.sh - submit the whole pipeline with plain sbatch: prepare -> train array -> collect.
#
#   jobs/pipeline.sh [options] [HYDRA_OVERRIDE ...]
#     --run-dir DIR     run directory (default runs/<task>-sbatch-<date>-<time>)
#     --models "A B"    models, space-separated (default "attention_lstm transformer conv_lstm")
#     --folds K         CV folds = cv.n_folds (default 5)
#     --no-prepare      skip jobs/prepare.sbatch (the store already exists)
#     --launcher NAME   conf/launcher/NAME.yaml sizes the jobs (default slurm: CPU only;
#                       slurm_v100: one V100, 8 CPUs, 32GB per training task)
#     --parallel N      array tasks running at once (default: launcher.parameters.array_parallelism)
#     --sbatch "ARGS"   extra sbatch options for every job, e.g. "--partition=gpu --account=p1"
#     --train-sbatch "ARGS"  extra sbatch options for the training array only
#     --wait            follow the jobs; print the summary, or which stage failed (exit 1)
#   HYDRA_OVERRIDEs go to every training task (train.epochs=50 paths.store=data/x.h5 ...) and, unless
#   they set model, head, train, cv or export (the prepare config has no such model keys), to
#   prepare; collect.* overrides go to the collector (collect.n_boot=200 collect.figures=false), and
#   launcher.* overrides size the jobs (launcher.parameters.partition=cpu).
#
# Dependencies: the array starts after prepare succeeded (afterok); the collector runs after every
# array task ended, failed ones included (afterany), so it can name a failed fold. A failed stage
# stops the rest: jobs whose dependency can no longer be met are cancelled (--kill-on-invalid-dep),
# and a rejected submission cancels the jobs already submitted. Run from the repository root.
# Prints the job ids and the squeue command to follow them.
set -euo pipefail

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
run_dir="" models="attention_lstm transformer conv_lstm" folds=5 prepare=1 parallel="" wait=0
launcher=slurm sbatch_args="" train_args=""
overrides=() prepare_overrides=() collect_overrides=() launcher_overrides=()
while [ $# -gt 0 ]; do
  case $1 in
    --run-dir) run_dir=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --folds) folds=$2; shift 2 ;;
    --no-prepare) prepare=0; shift ;;
    --parallel) parallel=$2; shift 2 ;;
    --launcher) launcher=$2; shift 2 ;;
    --wait) wait=1; shift ;;
    --sbatch) sbatch_args=$2; shift 2 ;;
    --train-sbatch) train_args=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "pipeline.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    collect.*) collect_overrides+=("$1"); shift ;;
    launcher.*) launcher_overrides+=("$1"); shift ;;
    model=*|model.*|head=*|head.*|train.*|cv.*|export.*) overrides+=("$1"); shift ;;  # training only
    *) overrides+=("$1"); prepare_overrides+=("$1"); shift ;;
  esac
done
[ -f jobs/train_array.sbatch ] || { echo "pipeline.sh: run it from the repository root" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "pipeline.sh: sbatch not found (no Slurm here?)" >&2; exit 2; }
[[ $folds =~ ^[1-9][0-9]*$ ]] || { echo "pipeline.sh: --folds must be a positive integer" >&2; exit 2; }
source jobs/common.sh  # HAWKEYE_ROOT, HAWKEYE_PYTHON

# Resources of the training array and the collector: the launcher config, as hawkeye.launch uses it
sizing=("launcher=$launcher" "${launcher_overrides[@]}")
train_opts=$("$HAWKEYE_PYTHON" -m hawkeye.sbatch options train "${sizing[@]}") || exit 2
collect_opts=$("$HAWKEYE_PYTHON" -m hawkeye.sbatch options collect "${sizing[@]}") || exit 2
parallel=${parallel:-$("$HAWKEYE_PYTHON" -m hawkeye.sbatch parallel "${sizing[@]}")} || exit 2
[[ $parallel =~ ^[1-9][0-9]*$ ]] || { echo "pipeline.sh: --parallel must be a positive integer" >&2; exit 2; }
IFS=$'\n' read -r -d '' -a train_opts <<< "$train_opts" || true   # one option per line -> array
IFS=$'\n' read -r -d '' -a collect_opts <<< "$collect_opts" || true

submitted=()  # job ids so far (submit runs in a $(...) subshell: the caller appends)
submit() {  # submit WHAT SBATCH_ARGS...: print the job id; a rejection cancels what was submitted
  local what=$1 out
  shift
  if ! out=$(sbatch --parsable "$@" 2>&1); then
    echo "pipeline.sh: sbatch rejected the $what job: $out" >&2
    if [ ${#submitted[@]} -gt 0 ]; then
      scancel "${submitted[@]}" 2>/dev/null || true
      echo "pipeline.sh: cancelled the jobs already submitted (${submitted[*]}); nothing runs" >&2
    fi
    exit 1
  fi
  echo "${out%%;*}"
}

read -r -a model_list <<< "$models"
n_tasks=$(( ${#model_list[@]} * folds ))
(( n_tasks > 0 )) || { echo "pipeline.sh: no models given" >&2; exit 2; }
run_dir=${run_dir:-runs/pd4t_finger_tapping-sbatch-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$run_dir/logs"
run_dir=$(cd "$run_dir" && pwd)
read -r -a extra <<< "$sbatch_args"
read -r -a train_extra <<< "$train_args"

export HAWKEYE_ROOT=$PWD HAWKEYE_RUN_DIR=$run_dir HAWKEYE_MODELS=$models HAWKEYE_FOLDS=$folds
export HAWKEYE_OVERRIDES="${overrides[*]}" HAWKEYE_COLLECT_OVERRIDES="${collect_overrides[*]}"

dependency=()
if [ $prepare = 1 ]; then
  [ -f jobs/prepare.sbatch ] || { echo "pipeline.sh: jobs/prepare.sbatch missing; use --no-prepare" >&2; exit 2; }
  # The driver job submits the shard array, waits for it and merges (see jobs/prepare.sbatch);
  # its exit code is the merge's, so afterok means "the store is complete".
  export HAWKEYE_PREPARE_LOGS=${HAWKEYE_PREPARE_LOGS:-$run_dir/logs}
  export HAWKEYE_PREPARE_SBATCH=${HAWKEYE_PREPARE_SBATCH:-$sbatch_args}
  prepare_id=$(export HAWKEYE_OVERRIDES="${prepare_overrides[*]}"  # what prepare's config takes
    submit prepare "${extra[@]}" --output="$run_dir/logs/prepare-driver-%j.out" jobs/prepare.sbatch)
  submitted+=("$prepare_id")
  echo "prepare job: $prepare_id"
  dependency=(--dependency="afterok:$prepare_id" --kill-on-invalid-dep=yes)
fi

train_id=$(submit "training array" "${train_opts[@]}" "${extra[@]}" "${train_extra[@]}" \
  "${dependency[@]}" --array="0-$((n_tasks - 1))%$parallel" --output="$run_dir/logs/%A_%a_log.out" \
  --error="$run_dir/logs/%A_%a_log.err" jobs/train_array.sbatch)
submitted+=("$train_id")
echo "training array: $train_id ($n_tasks tasks = ${#model_list[@]} models x $folds folds)"

# run.json: what the collector expects (docs/architecture.md, "Run directory"), with each fold's job
# id so a failed fold's log is named in the summary.
{
  printf '{\n  "models": ['
  sep=""; for m in "${model_list[@]}"; do printf '%s"%s"' "$sep" "$m"; sep=", "; done
  printf '],\n  "n_folds": %d,\n  "log_dir": "logs",\n  "launcher": "jobs/pipeline.sh",\n  "jobs": {' "$folds"
  sep=""
  for ((i = 0; i < n_tasks; i++)); do
    printf '%s\n    "%s/fold_%d": "%s_%d"' "$sep" "${model_list[i / folds]}" $((i % folds)) "$train_id" "$i"; sep=","
  done
  printf '\n  }\n}\n'
} > "$run_dir/.run.json.tmp" && mv "$run_dir/.run.json.tmp" "$run_dir/run.json"

collect_id=$(submit collector "${collect_opts[@]}" "${extra[@]}" --kill-on-invalid-dep=yes \
  --dependency="${prepare_id:+afterok:$prepare_id,}afterany:$train_id" \
  --output="$run_dir/logs/collect-%j.out" jobs/collect.sbatch)
echo "collector job: $collect_id"
echo "run dir: $run_dir"
echo "watch: squeue -j ${prepare_id:+$prepare_id,}$train_id,$collect_id"
echo "summary: $run_dir/summary.md when the collector ends"
[ $wait = 1 ] || exit 0

state() {  # state JOB_ID: Slurm's final state of a job (sacct), e.g. COMPLETED, FAILED, CANCELLED
  sacct -o JobID,State,NodeList --parsable2 -j "$1" 2>/dev/null |
    awk -F'|' -v id="$1" '$1 == id { split($2, s, " "); print s[1]; exit }'
}
while squeue -h -j "$collect_id" 2>/dev/null | grep -q .; do sleep 2; done
if [ -n "${prepare_id:-}" ] && [ "$(state "$prepare_id")" != COMPLETED ]; then
  echo "pipeline.sh: prepare job $prepare_id ended $(state "$prepare_id") (log:" \
       "$run_dir/logs/prepare-driver-$prepare_id.out); training and collection did not run" >&2
  exit 1
fi
if [ -f "$run_dir/summary.md" ]; then cat "$run_dir/summary.md"; fi
collected=$(state "$collect_id")
if [ "$collected" != COMPLETED ]; then
  echo "pipeline.sh: collector job $collect_id ended ${collected:-unknown} (log:" \
       "$run_dir/logs/collect-$collect_id.out): a fold is missing or failed, see the summary" >&2
  exit 1
fi
