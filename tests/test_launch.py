"""hawkeye.launch: grid expansion, run naming, skipping, executors, arrays, jobs/ scripts, and
real launches (in-process, local processes, and the local Slurm cluster)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import submitit
from conftest import tapping_store, tiny_model
from omegaconf import OmegaConf
from submitit.slurm.slurm import _make_sbatch_string

from hawkeye import cluster as C
from hawkeye import launch as L
from hawkeye.config import CONF_DIR, compose
from hawkeye.data import model_frames
from hawkeye.predict import load_ensemble, score_ensemble
from hawkeye.store import load_store

REPO = Path(__file__).resolve().parents[1]
LAUNCHERS = sorted(p.stem for p in (Path(CONF_DIR) / "launcher").glob("*.yaml"))
# Tiny training everywhere: the point is the fan-out, not the model.
TINY = ["cv.n_folds=3", "train.epochs=1", "model.hidden=8", "train.num_threads=1",
        "export.onnx=false", "collect.n_boot=50", "collect.figures=false"]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    # 3 videos per subject, so every score level has several subjects in every fold
    return tapping_store(tmp_path_factory.mktemp("store") / "tiny.h5", n_subjects=28,
                         videos_per_subject=3, n_frames=36, test_subjects=4)


# ----------------------------------------------------------------------------------------------
# Expanding the command line


def test_parse_grid_splits_models_folds_sweeps_and_shared_overrides() -> None:
    grid = L.parse_grid(["model=attention_lstm,transformer", "model.hidden=64,128",
                         "train.lr=1e-3,3e-4", "train.epochs=3", "fold=0,2", "+extra=range(1,3)"])
    assert grid.models == ("attention_lstm", "transformer")
    assert grid.folds == (0, 2)
    assert grid.common == ("train.epochs=3",)
    assert len(grid.points) == 2 * 2 * 2
    assert grid.points[0] == ("model.hidden=64", "train.lr=0.001", "+extra=1")
    assert grid.points[-1] == ("model.hidden=128", "train.lr=0.0003", "+extra=2")


def test_parse_grid_model_all_and_default() -> None:
    assert L.parse_grid(["model=all"], all_models=["a", "b"]).models == ("a", "b")
    assert L.parse_grid(["model=all"]).models == tuple(L.available_models())
    assert {"attention_lstm", "transformer", "conv_lstm"} <= set(L.available_models())
    no_model = L.parse_grid(["train.lr=1e-3"])
    assert no_model.models == () and no_model.points == ((),) and no_model.folds is None
    with pytest.raises(ValueError, match="twice"):
        L.parse_grid(["model=tcn,tcn"])


# ----------------------------------------------------------------------------------------------
# Naming the run directory from the config (dora-style)


def plan(*overrides: str, runs: Path) -> L.Plan:
    return L.plan_launch(L.parse_grid([*TINY, f"paths.runs={runs}", *overrides]))


def test_run_dir_is_named_from_the_config_and_stable(tmp_path) -> None:
    first = plan("model=attention_lstm,conv_lstm", runs=tmp_path)
    assert first.grid_dir.parent == tmp_path.resolve()
    assert re.fullmatch(r"pd4t_finger_tapping-[0-9a-f]{10}", first.grid_dir.name)
    assert not first.is_sweep and first.points[0].run_dir == first.grid_dir
    assert [t.label for t in first.tasks][:2] == ["attention_lstm/fold_0", "attention_lstm/fold_1"]
    assert len(first.tasks) == 2 * 3 and first.n_folds == 3

    # Where and how it runs, and which folds, are not part of the identity ...
    same = [plan("model=conv_lstm,attention_lstm", runs=tmp_path),
            plan("model=attention_lstm,conv_lstm", "launcher=slurm", "launch.wait=true",
                 "launch.force=true", "fold=1", "collect.n_boot=10", runs=tmp_path)]
    assert all(p.grid_dir == first.grid_dir for p in same)
    # ... what is trained is.
    other = [plan("model=attention_lstm,conv_lstm", "train.lr=3e-4", runs=tmp_path),
             plan("model=attention_lstm", runs=tmp_path),
             plan("model=attention_lstm,conv_lstm", "seed=1", runs=tmp_path)]
    assert len({p.grid_dir for p in other} | {first.grid_dir}) == 4
    named = plan("model=attention_lstm,conv_lstm", "launch.name=mine", runs=tmp_path)
    assert named.grid_dir.name == "mine-" + first.grid_dir.name.rsplit("-", 1)[1]


def test_task_configs_are_complete_and_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    p = plan("model=attention_lstm", "paths.store=data/x.h5", "fold=2", runs=Path("runs"))
    (task,) = p.tasks
    cfg = task.config()
    assert cfg["fold"] == 2 and cfg["model"]["name"] == "attention_lstm"
    assert cfg["run_dir"] == str(tmp_path / "runs" / p.grid_dir.name)
    assert cfg["paths"]["store"] == str(tmp_path / "data" / "x.h5")
    assert task.fold_dir == p.grid_dir / "attention_lstm" / "fold_2"


def test_sweep_points_live_in_their_own_directories(tmp_path) -> None:
    sweep = plan("model=attention_lstm,conv_lstm", "model.hidden=8,16", "train.lr=1e-3,3e-4",
                 runs=tmp_path)
    assert sweep.is_sweep and len(sweep.points) == 4 and len(sweep.tasks) == 4 * 2 * 3
    names = [p.name for p in sweep.points]
    assert names[0] == "model.hidden=8,train.lr=0.001"
    assert all(p.run_dir == sweep.grid_dir / p.name for p in sweep.points)
    assert len({p.config_hash for p in sweep.points}) == 4
    # The same grid typed in another order finds the same directories.
    again = plan("model=conv_lstm,attention_lstm", "train.lr=3e-4,1e-3", "model.hidden=16,8",
                 runs=tmp_path)
    assert again.grid_dir == sweep.grid_dir
    assert {p.run_dir for p in again.points} == {p.run_dir for p in sweep.points}
    # A sweep point's config carries its values.
    point = next(p for p in sweep.points if p.name == "model.hidden=16,train.lr=0.0003")
    assert point.configs["conv_lstm"].model.hidden == 16
    assert point.configs["conv_lstm"].train.lr == pytest.approx(3e-4)


def test_point_dir_name_is_path_safe_and_bounded() -> None:
    assert L.point_dir_name(["paths.store=a/b c.h5"], "abc") == "paths.store=a_b_c.h5"
    assert L.point_dir_name(["x=" + "9" * 200], "abc") == "point-abc"


def test_bad_overrides_fail_before_anything_is_submitted(tmp_path) -> None:
    with pytest.raises(ValueError, match="model=transformer"):
        plan("model=attention_lstm,transformer", "model.hidden=8,16", runs=tmp_path)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        plan("model=attention_lstm", "fold=3", runs=tmp_path)
    with pytest.raises(ValueError, match="cv.n_folds"):
        plan("model=attention_lstm", "cv.n_folds=2,3", runs=tmp_path)


def test_launch_models_from_config_when_no_model_override(tmp_path) -> None:
    p = plan("launch.models=[conv_lstm,attention_lstm]", runs=tmp_path)
    assert p.grid.models == ("conv_lstm", "attention_lstm")
    assert plan(runs=tmp_path).grid.models == (compose([]).model.name,)


# ----------------------------------------------------------------------------------------------
# Skipping finished folds


def write_metrics(fold_dir: Path, status: str) -> None:
    fold_dir.mkdir(parents=True, exist_ok=True)
    (fold_dir / "metrics.json").write_text(json.dumps({"status": status}))


def test_only_unfinished_folds_are_pending_and_failed_records_are_cleared(tmp_path) -> None:
    p = plan("model=attention_lstm", runs=tmp_path)
    done, failed, missing = p.tasks
    write_metrics(done.fold_dir, "ok")
    write_metrics(failed.fold_dir, "failed")
    (failed.fold_dir / "last.pt").write_bytes(b"state")
    (missing.fold_dir).mkdir(parents=True)
    (missing.fold_dir / "metrics.json").write_text("{not json")

    assert L.is_finished(done.fold_dir) and not L.is_finished(failed.fold_dir)
    assert L.pending_tasks(p.tasks, force=False) == [failed, missing]
    assert L.pending_tasks(p.tasks, force=True) == p.tasks

    L.clear_for_rerun(failed, force=False)  # the failed record goes, the checkpoint stays
    assert not (failed.fold_dir / "metrics.json").exists()
    assert (failed.fold_dir / "last.pt").exists()
    L.clear_for_rerun(done, force=False)    # a finished fold is never touched without force
    assert L.is_finished(done.fold_dir)
    L.clear_for_rerun(done, force=True)
    assert not done.fold_dir.exists()


def test_tasks_still_running_from_an_earlier_launch_are_found(tmp_path) -> None:
    p = plan("model=attention_lstm", runs=tmp_path)
    first, second, third = p.tasks
    recorded = {first: "10_0", second: "10_1", third: "9"}
    assert L.still_running(p.tasks, recorded, {"10_1", "11_0"}) == {second: "10_1"}
    assert L.still_running(p.tasks, {}, {"10_1"}) == {}
    assert L.recorded_jobs(p) == {}  # no run.json yet


# ----------------------------------------------------------------------------------------------
# Arrays


def test_split_array_and_deal() -> None:
    items = list(range(7))
    assert C.split_array(items, 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert C.split_array(items, None) == [items]
    assert C.split_array([], 3) == []
    assert C.deal(items, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert C.deal(items[:2], 5) == [[0], [1]]
    assert C.deal(items[:2], None) == [[0], [1]]
    with pytest.raises(ValueError):
        C.deal(items, 0)
    with pytest.raises(ValueError):
        C.split_array(items, 0)


def test_max_array_size_from_scontrol_and_limits() -> None:
    out = ("Configuration data as of ...\nMailProg                = /bin/true\n"
           "MaxArraySize            = 1001\n")
    assert C.parse_max_array_size(out) == 1001
    assert C.parse_max_array_size("MaxJobCount = 10000\n") is None
    assert C.array_limit(None, 1001) == 1001
    assert C.array_limit(4, 1001) == 4
    assert C.array_limit(None, None) is None
    with pytest.raises(ValueError):
        C.array_limit(0, None)


# ----------------------------------------------------------------------------------------------
# Launcher configs and executors


@pytest.mark.parametrize("name", LAUNCHERS)
def test_each_launcher_builds_its_configured_executor(name, tmp_path) -> None:
    launcher = compose([f"launcher={name}"]).launcher
    assert launcher.name == name
    executor = C.make_executor(launcher, tmp_path)
    expected = launcher.executor._target_.rsplit(".", 1)[1]
    assert type(executor).__name__ == expected
    collector = C.make_executor(launcher, tmp_path, launcher.collector)
    assert type(collector) is type(executor)
    if isinstance(executor, submitit.SlurmExecutor):
        assert "gres" not in collector.parameters  # the collector never asks for a GPU
        assert collector.parameters["job_name"] == "hawkeye-collect"


def test_launcher_defaults_are_safe() -> None:
    assert set(LAUNCHERS) == {"local", "debug", "slurm", "slurm_v100"}
    assert compose([]).launcher.name == "local"
    local = compose(["launcher=local"]).launcher
    assert local.parameters.timeout_min >= 60  # submitit's own local default is 2 minutes
    v100 = compose(["launcher=slurm_v100"]).launcher
    assert v100.parameters.gres == "gpu:v100:1"
    assert v100.executor._target_ == "submitit.SlurmExecutor"
    overridden = compose(["launcher=slurm_v100", "launcher.parameters.partition=gpu",
                          "launcher.parameters.account=p1", "launcher.parameters.qos=high"])
    params = C.executor_parameters(overridden.launcher)
    assert (params["partition"], params["account"], params["qos"]) == ("gpu", "p1", "high")
    assert "gres" in C.executor_parameters(v100)
    assert "gres" not in C.executor_parameters(v100, {"gres": None})  # null removes a key


# Key lines of the array script submitit writes for launcher=slurm_v100 (submitit's own tests
# compare against a recorded script the same way): 15 tasks = 3 models x 5 folds.
GOLDEN_V100 = """\
#SBATCH --account=proj1
#SBATCH --array=0-14%15
#SBATCH --cpus-per-task=8
#SBATCH --error=/runs/x/logs/%A_%a_0_log.err
#SBATCH --gres=gpu:v100:1
#SBATCH --job-name=hawkeye-train
#SBATCH --mem=32GB
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/runs/x/logs/%A_%a_0_log.out
#SBATCH --partition=gpu
#SBATCH --signal=USR2@120
#SBATCH --time=240
#SBATCH --wckey=submitit"""


def test_slurm_v100_array_script_matches_golden() -> None:
    cfg = compose(["launcher=slurm_v100", "launcher.parameters.partition=gpu",
                   "launcher.parameters.account=proj1"])
    executor = C.make_executor(cfg.launcher, "/runs/x/logs")
    script = _make_sbatch_string(command="python -u -m submitit.core._submit /runs/x/logs",
                                 folder=executor.folder, map_count=15, **executor.parameters)
    lines = [ln for ln in script.splitlines() if ln.startswith("#SBATCH")]
    assert lines == GOLDEN_V100.splitlines()
    assert "srun --unbuffered" in script


# ----------------------------------------------------------------------------------------------
# jobs/ scripts


@pytest.mark.parametrize("script", ["jobs/pipeline.sh", "jobs/train_array.sbatch",
                                    "jobs/collect.sbatch", "jobs/common.sh",
                                    "scripts/slurm-local.sh"])
def test_job_scripts_are_valid_bash(script) -> None:
    result = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_train_array_maps_task_id_to_model_and_fold(tmp_path) -> None:
    # Run the sbatch script as a plain bash script with a stand-in Python that prints its args.
    fake = tmp_path / "python"
    fake.write_text('#!/bin/bash\necho "ARGS $*"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "HAWKEYE_ROOT": str(REPO), "HAWKEYE_PYTHON": str(fake),
           "HAWKEYE_RUN_DIR": "/runs/r", "HAWKEYE_MODELS": "a b c", "HAWKEYE_FOLDS": "5",
           "HAWKEYE_OVERRIDES": "train.epochs=2 seed=1"}

    def run(task: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(REPO / "jobs/train_array.sbatch")], text=True,
                              capture_output=True, env={**env, "SLURM_ARRAY_TASK_ID": str(task)})

    out = run(7)
    assert out.returncode == 0, out.stderr
    assert ("ARGS -m hawkeye.train model=b fold=2 cv.n_folds=5 run_dir=/runs/r train.epochs=2 "
            "seed=1") in out.stdout
    assert "model=c fold=4" in run(14).stdout
    beyond = run(15)
    assert beyond.returncode == 2 and "beyond 3 models x 5 folds" in beyond.stderr


# ----------------------------------------------------------------------------------------------
# Real launches without a cluster


@pytest.mark.slow
def test_debug_launcher_sweep_runs_in_process_ranks_points_and_relaunch_skips(
        tiny_store, tmp_path, capsys) -> None:
    args = [*TINY, "cv.n_folds=2", "launcher=debug", "model=attention_lstm", "model.hidden=4,8",
            f"paths.store={tiny_store}", f"paths.runs={tmp_path}"]
    assert L.main(args) == 0
    out = capsys.readouterr().out
    grid_dir = Path(re.search(r"run dir: (\S+)", out).group(1))
    assert "4 submitted, 0 already finished" in out
    summary = json.loads((grid_dir / "summary.json").read_text())
    assert summary["complete"]
    assert sorted(r["label"] for r in summary["rows"]) == [
        "model.hidden=4/attention_lstm", "model.hidden=8/attention_lstm"]
    assert sorted(r["rank"] for r in summary["rows"]) == [1, 2]
    grid = json.loads((grid_dir / "grid.json").read_text())
    assert [p["name"] for p in grid["points"]] == ["model.hidden=4", "model.hidden=8"]
    for hidden in (4, 8):
        run_dir = grid_dir / f"model.hidden={hidden}"
        record = json.loads((run_dir / "run.json").read_text())
        assert record["models"] == ["attention_lstm"] and record["n_folds"] == 2
        assert record["overrides"] == [f"model.hidden={hidden}"]
        assert record["log_dir"] == "../logs"
        assert set(record["jobs"]) == {"attention_lstm/fold_0", "attention_lstm/fold_1"}
        assert OmegaConf.load(run_dir / "config.yaml").model.hidden == hidden
        assert (run_dir / "folds.json").is_file()  # the fold assignment of the run
        env = json.loads((run_dir / "environment.json").read_text())
        assert env["package_versions"]["submitit"] == submitit.__version__ and env["git_commit"]
        fold = json.loads((run_dir / "attention_lstm" / "fold_1" / "metrics.json").read_text())
        assert fold["status"] == "ok"

    assert L.main(args) == 0
    out = capsys.readouterr().out
    assert f"run dir: {grid_dir}" in out and "0 submitted, 4 already finished" in out
    record = json.loads((grid_dir / "model.hidden=4" / "run.json").read_text())
    assert len(record["launches"]) == 2


@pytest.mark.slow
def test_debug_launcher_runs_minirocket_through_training_collector_export_and_prediction(
        tiny_store, tmp_path, capsys) -> None:
    """model=minirocket takes the same launch, folds, training job, collector, ONNX export and
    fold ensemble as a network: each exported fold scores a test video as training did."""
    args = [*(o for o in TINY if not o.startswith("model.")), "cv.n_folds=2", "launcher=debug",
            *tiny_model("minirocket"), "export.onnx=true", f"paths.store={tiny_store}",
            f"paths.runs={tmp_path}"]
    assert L.main(args) == 0
    grid_dir = Path(re.search(r"run dir: (\S+)", capsys.readouterr().out).group(1))
    summary = json.loads((grid_dir / "summary.json").read_text())
    (row,) = (r for r in summary["rows"] if r["model"] == "minirocket")
    assert row["complete"] and row["folds_ok"] == 2 and row["onnx_mb"] > 0
    assert json.loads((grid_dir / "folds.json").read_text())["n_folds"] == 2
    predictions = {}
    for fold in (0, 1):
        fold_dir = grid_dir / "minirocket" / f"fold_{fold}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        assert metrics["family"] == "rocket" and metrics["epochs_run"] == 1
        assert metrics["n_fit"] == metrics["n_train"] + metrics["n_val"]  # no early stopping
        assert metrics["n_params"] > 0 and metrics["onnx_parity_max_abs"] <= 1e-4
        assert (fold_dir / "minirocket.npz").is_file() and not (fold_dir / "last.pt").exists()
        with open(fold_dir / "predictions.csv") as handle:
            rows = list(csv.DictReader(handle))
        predictions[fold] = {r["id"]: float(r["raw"]) for r in rows if r["split"] == "test"}

    ensemble = load_ensemble(grid_dir, "minirocket", threads=1)
    assert ensemble.family == "rocket" and [f.fold for f in ensemble.folds] == [0, 1]
    store = load_store(tiny_store, splits="test")
    x, mask = model_frames(store, "series", ensemble.time_base)
    for i in (0, len(store.ids) - 1):
        scored = score_ensemble(ensemble, x[i:i + 1], mask[i:i + 1])
        want = {fold: predictions[fold][store.ids[i]] for fold in (0, 1)}
        assert scored["fold_values"] == pytest.approx(want, abs=1e-4)
        assert scored["score"] == int(np.clip(np.round(scored["mean"]), 0, 4))


@pytest.mark.slow
def test_local_launcher_runs_processes_and_collects(tiny_store, tmp_path, capsys) -> None:
    # max_parallel=1: both folds run one after another in ONE background job (TaskSequence).
    args = [*TINY, "cv.n_folds=2", "launcher=local", "launcher.max_parallel=1",
            "model=attention_lstm", f"paths.store={tiny_store}", f"paths.runs={tmp_path}",
            "launch.wait=true"]
    assert L.main(args) == 0
    out = capsys.readouterr().out
    run_dir = Path(re.search(r"run dir: (\S+)", out).group(1))
    assert "All rows complete" in out  # summary.md printed at the end
    jobs = json.loads((run_dir / "run.json").read_text())["jobs"]
    assert len(set(jobs.values())) == 1
    assert list((run_dir / "logs").glob(f"{jobs['attention_lstm/fold_0']}_0_log.out"))


def test_collect_task_waits_for_processes_and_fails_on_incomplete(tmp_path) -> None:
    sleeper = subprocess.Popen(["sleep", "1.5"])
    started = time.monotonic()
    task = L.CollectTask(str(tmp_path), {"n_boot": 10, "alpha": 0.05, "seed": 0,
                                         "figures": False},
                         wait_for=[(sleeper.pid, C.process_start_time(sleeper.pid))], poll_s=0.1)
    # An empty folder: the collector exits 2 (nothing to collect), so the job must fail.
    with pytest.raises(L.IncompleteRunError, match="exited 2"):
        task()
    sleeper.wait()
    assert time.monotonic() - started >= 1.0  # it waited for the process to end first
    assert C.process_start_time(sleeper.pid) is None


# ----------------------------------------------------------------------------------------------
# Real launches on the local Slurm cluster
#
# One grid (2 models x 3 folds, arrays capped at 4 tasks so it is split into two arrays) is
# launched with one fold deliberately broken (a corrupt last.pt), then repaired and launched
# again; the module fixtures hold each stage so the tests read as separate claims.

SLURM = ["launcher=slurm", "launcher.parameters.cpus_per_task=1", "launcher.parameters.time=10",
         "launcher.collector.cpus_per_task=1", "launcher.parameters.signal_delay_s=5"]
GRID = [*TINY, *SLURM, "model=attention_lstm,conv_lstm", "launcher.max_array_size=4"]
BROKEN = "attention_lstm/fold_1"


def sbatch_lines(log_dir: Path, job_id: str) -> list[str]:
    return [ln for ln in (log_dir / f"{job_id}_submission.sh").read_text().splitlines()
            if ln.startswith("#SBATCH")]


@pytest.fixture(scope="module")
def failed_launch(slurm_cluster, tiny_store, tmp_path_factory):
    runs = tmp_path_factory.mktemp("slurm_runs")
    p = L.plan_launch(L.parse_grid([*GRID, f"paths.store={tiny_store}", f"paths.runs={runs}"]))
    broken = next(t for t in p.tasks if t.key == BROKEN)
    broken.fold_dir.mkdir(parents=True)
    (broken.fold_dir / "last.pt").write_bytes(b"not a checkpoint")  # training fails on resume
    from hawkeye.train import TrainTask

    sub = L.submit(p, TrainTask(), force=False)
    # Launched again at once: every task is still queued or running, nothing is submitted twice.
    again = L.submit(p, TrainTask(), force=False)
    code = L.wait(sub, poll_s=0.5)
    again.collector.wait()
    return p, sub, code, again


@pytest.mark.slurm
def test_grid_runs_as_split_arrays_with_afterany_collector(failed_launch) -> None:
    p, sub, _, _ = failed_launch
    assert len(sub.pending) == 6 and len(sub.jobs) == 6
    assert len(sub.arrays) == 2  # 6 tasks, at most 4 per array
    assert {j.job_id for j in sub.jobs} == (
        {f"{sub.arrays[0]}_{i}" for i in range(4)} | {f"{sub.arrays[1]}_{i}" for i in range(2)})
    assert any(ln.startswith("#SBATCH --array=0-3") for ln in sbatch_lines(p.log_dir,
                                                                           sub.arrays[0]))
    assert (f"#SBATCH --dependency=afterany:{sub.arrays[0]}:{sub.arrays[1]}"
            in sbatch_lines(p.log_dir, str(sub.collector.job_id)))


@pytest.mark.slurm
def test_relaunch_while_running_submits_nothing_twice(failed_launch) -> None:
    p, sub, _, again = failed_launch
    assert again.pending == [] and again.jobs == []
    assert again.running == {t: j.job_id for t, j in zip(sub.pending, sub.jobs, strict=True)}
    assert (f"#SBATCH --dependency=afterany:{sub.arrays[0]}:{sub.arrays[1]}"
            in sbatch_lines(p.log_dir, str(again.collector.job_id)))
    assert "still queued or running from an earlier launch" in L.describe(again)


@pytest.mark.slurm
def test_collector_names_the_failed_fold_and_fails(failed_launch) -> None:
    p, sub, code, _ = failed_launch
    assert code == 1
    assert isinstance(sub.collector.exception(), submitit.core.utils.FailedJobError)
    summary = json.loads((p.grid_dir / "summary.json").read_text())
    rows = {r["model"]: r for r in summary["rows"]}
    assert not summary["complete"]
    assert rows["conv_lstm"]["complete"] and rows["conv_lstm"]["folds_ok"] == 3
    broken = rows["attention_lstm"]
    assert not broken["complete"] and broken["folds_ok"] == 2
    (problem,) = broken["problems"]
    job_id = json.loads((p.grid_dir / "run.json").read_text())["jobs"][BROKEN]
    assert problem["fold"] == 1  # names the fold, why, and its Slurm log
    assert "last.pt" in problem["reason"]
    assert str(p.log_dir / f"{job_id}_0_log.err") in problem["logs"]
    assert "`attention_lstm` fold 1: " in (p.grid_dir / "summary.md").read_text()


@pytest.fixture(scope="module")
def relaunch(failed_launch):
    """Repair the broken fold and launch the same grid again through the command line's main()."""
    p, _, _, _ = failed_launch
    broken = next(t for t in p.tasks if t.key == BROKEN)
    (broken.fold_dir / "last.pt").unlink()
    args = [*GRID, f"paths.store={p.base.paths.store}", f"paths.runs={p.grid_dir.parent}",
            "--wait"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = L.main(args)
    return p, code, out.getvalue()


@pytest.mark.slurm
def test_relaunch_runs_only_the_unfinished_fold_and_completes(relaunch) -> None:
    p, code, out = relaunch
    assert code == 0, out
    assert f"run dir: {p.grid_dir}" in out  # the same grid found the same directory
    assert "1 submitted, 5 already finished" in out
    record = json.loads((p.grid_dir / "run.json").read_text())
    assert [len(launch["submitted"]) for launch in record["launches"]] == [6, 0, 1]
    assert len(record["launches"][1]["still_running"]) == 6
    summary = json.loads((p.grid_dir / "summary.json").read_text())
    assert summary["complete"]
    for row in summary["rows"]:  # the summary is the folds' own numbers, aggregated
        folds = [json.loads((p.grid_dir / row["model"] / f"fold_{k}" / "metrics.json").read_text())
                 for k in range(3)]
        assert row["folds_ok"] == 3
        assert row["cv"]["mae"]["folds"] == pytest.approx([f["cv"]["mae"] for f in folds])
        assert row["cv"]["mae"]["mean"] == pytest.approx(np.mean([f["cv"]["mae"] for f in folds]))


@pytest.mark.slurm
def test_preempted_task_requeues_and_resumes_to_identical_metrics(slurm_cluster, tiny_store,
                                                                   tmp_path) -> None:
    from hawkeye.train import TrainTask

    # Long enough (30 epochs, no early stop) that the interrupt lands mid-training.
    args = [*TINY, *SLURM, "model=attention_lstm", "fold=0", "train.epochs=30",
            "train.patience=100", f"paths.store={tiny_store}", f"paths.runs={tmp_path}"]
    subs = {name: L.submit(L.plan_launch(L.parse_grid([*args, f"launch.name={name}"])),
                           TrainTask(), force=False)
            for name in ("plain", "preempted")}
    job = subs["preempted"].jobs[0]
    last = subs["preempted"].pending[0].fold_dir / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists():
        assert time.monotonic() < deadline and not job.done(), "training never wrote last.pt"
        time.sleep(0.05)
    job._interrupt()  # Slurm sends USR2 as on preemption: checkpoint, requeue, resume

    metrics = {}
    for name, sub in subs.items():
        sub.jobs[0].result()
        metrics[name] = json.loads((sub.pending[0].fold_dir / "metrics.json").read_text())
    log = Path(job.paths.stdout).read_text() + Path(job.paths.stderr).read_text()
    assert "resuming from" in log, "the task was not interrupted mid-training"
    assert metrics["preempted"]["epochs_run"] == metrics["plain"]["epochs_run"] == 30
    assert metrics["preempted"]["cv"] == metrics["plain"]["cv"]
    assert metrics["preempted"]["test"] == metrics["plain"]["test"]
    # Only fold 0 of 3 was launched: each collector reports the run incomplete.
    for sub in subs.values():
        assert isinstance(sub.collector.exception(), submitit.core.utils.FailedJobError)


@pytest.mark.slurm
@pytest.mark.slow
def test_pipeline_sh_runs_the_sbatch_templates(slurm_cluster, tiny_store, tmp_path) -> None:
    run_dir = tmp_path / "pipe"
    result = subprocess.run(
        [str(REPO / "jobs" / "pipeline.sh"), "--no-prepare", "--run-dir", str(run_dir),
         "--models", "attention_lstm", "--folds", "2", "--sbatch", "--time=10",
         "--train-sbatch", "--gres=none --cpus-per-task=1 --mem=1G",  # no GPU here
         "cv.n_folds=2", "train.epochs=1", "model.hidden=8", "train.num_threads=1",
         "export.onnx=false", f"paths.store={tiny_store}", "collect.n_boot=20",
         "collect.figures=false"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    array = re.search(r"training array: (\d+)", result.stdout).group(1)
    collector = re.search(r"collector job: (\d+)", result.stdout).group(1)
    assert f"squeue -j {array},{collector}" in result.stdout

    deadline = time.monotonic() + 240
    while True:
        out = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j",
                              collector], capture_output=True, text=True).stdout
        state = out.splitlines()[1].split("|")[1] if len(out.splitlines()) > 1 else ""
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            break
        assert time.monotonic() < deadline, f"collector {collector} still {state or 'unknown'}"
        time.sleep(1)
    assert state == "COMPLETED", (run_dir / "logs" / f"collect-{collector}.out").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["rows"][0]["folds_ok"] == 2
    assert json.loads((run_dir / "run.json").read_text())["jobs"] == {
        "attention_lstm/fold_0": f"{array}_0", "attention_lstm/fold_1": f"{array}_1"}
    log = (run_dir / "logs" / f"{array}_1_log.out").read_text()
    assert "array task 1 -> model=attention_lstm fold=1" in log
