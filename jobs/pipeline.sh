#!/usr/bin/env bash
# jobs/pipeline.sh - submit the whole pipeline with plain sbatch: prepare -> train array -> collect.
#
#   jobs/pipeline.sh [options] [HYDRA_OVERRIDE ...]
#     --run-dir DIR     run directory (default runs/<task>-sbatch-<date>-<time>)
#     --models "A B"    models, space-separated (default "attention_lstm transformer conv_lstm")
#     --folds K         CV folds = cv.n_folds (default 5)
#     --no-prepare      skip jobs/prepare.sbatch (the store already exists)
#     --parallel N      array tasks running at once (default 32)
#     --sbatch "ARGS"   extra sbatch options for every job, e.g. "--partition=gpu --account=p1"
#     --train-sbatch "ARGS"  extra sbatch options for the training array only, e.g. "--gres=none"
#   HYDRA_OVERRIDEs go to every training task (train.epochs=50 paths.store=data/x.h5 ...), except
#   collect.* overrides, which go to the collector (collect.n_boot=200 collect.figures=false).
#
# Dependencies: the array starts after prepare succeeded (afterok); the collector runs after every
# array task ended, failed ones included (afterany), so it can name a failed fold. Run from the
# repository root. Prints the job ids and the squeue command to follow them.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
run_dir="" models="attention_lstm transformer conv_lstm" folds=5 prepare=1 parallel=32
sbatch_args="" train_args=""
overrides=() collect_overrides=()
while [ $# -gt 0 ]; do
  case $1 in
    --run-dir) run_dir=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --folds) folds=$2; shift 2 ;;
    --no-prepare) prepare=0; shift ;;
    --parallel) parallel=$2; shift 2 ;;
    --sbatch) sbatch_args=$2; shift 2 ;;
    --train-sbatch) train_args=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "pipeline.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    collect.*) collect_overrides+=("$1"); shift ;;
    *) overrides+=("$1"); shift ;;
  esac
done
[ -f jobs/train_array.sbatch ] || { echo "pipeline.sh: run it from the repository root" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "pipeline.sh: sbatch not found (no Slurm here?)" >&2; exit 2; }
[[ $folds =~ ^[1-9][0-9]*$ ]] || { echo "pipeline.sh: --folds must be a positive integer" >&2; exit 2; }

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
  prepare_id=$(sbatch --parsable "${extra[@]}" --output="$run_dir/logs/prepare-driver-%j.out" \
    jobs/prepare.sbatch)
  prepare_id=${prepare_id%%;*}
  echo "prepare job: $prepare_id"
  dependency=(--dependency="afterok:$prepare_id")
fi

train_id=$(sbatch --parsable "${extra[@]}" "${train_extra[@]}" "${dependency[@]}" \
  --array="0-$((n_tasks - 1))%$parallel" --output="$run_dir/logs/%A_%a_log.out" \
  --error="$run_dir/logs/%A_%a_log.err" jobs/train_array.sbatch)
train_id=${train_id%%;*}
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

collect_id=$(sbatch --parsable "${extra[@]}" --dependency="afterany:$train_id" \
  --output="$run_dir/logs/collect-%j.out" jobs/collect.sbatch)
collect_id=${collect_id%%;*}
echo "collector job: $collect_id"
echo "run dir: $run_dir"
echo "watch: squeue -j ${prepare_id:+$prepare_id,}$train_id,$collect_id"
echo "summary: $run_dir/summary.md when the collector ends"
