"""hawkeye.validate: every bad launch of issue 13 stops before anything is submitted or written;
the schema covers every key the code reads; the dry run prints the plan of a sweep."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import tapping_store
from omegaconf import OmegaConf

from hawkeye import launch as L
from hawkeye import validate as V
from hawkeye.config import CONF_DIR, compose
from hawkeye.store import load_store, write_store

TINY = ["cv.n_folds=3",
        "launcher=debug"]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """10 subjects: 8 in train (two videos each), 2 in test."""
    return tapping_store(tmp_path_factory.mktemp("store") / "small.h5", n_subjects=10,
                         videos_per_subject=2, n_frames=24, test_subjects=2)


class RecordingTask:
    """Stands in for training: records every config it is called with."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, cfg: dict) -> dict:
        self.calls.append(cfg)
        return {"status": "ok"}


def refused(runs: Path, store: Path, *overrides: str) -> list[str]:
    """Launch ``overrides``; assert nothing ran and no folder was made; the problems."""
    task = RecordingTask()
    with pytest.raises(V.ConfigProblems) as caught:
        L.launch([*TINY, f"paths.store={store}", f"paths.runs={runs}", *overrides], task=task)
    assert task.calls == [], "a task ran although the launch was refused"
    assert not runs.exists(), f"a run folder was left behind: {list(runs.rglob('*'))}"
    return caught.value.problems


@pytest.mark.parametrize(("overrides", "message"), [
    (["cv.n_folds=50"], r"cv.n_folds=50 but .* has only 8 subjects"),
    (["train.batch_size=0"], r"train.batch_size: must be >= 1, got 0"),
    (["train.lr=-1"], r"train.lr: must be > 0, got -1"),
    (["train.epochs=two"], r"train.epochs: expected int, got 'two' \(str\)"),
    (["+train.epochz=2"], r"train.epochz: no such key.*train has: amp, balance"),
    (["+epochz=2"], r"epochz: no such key.*the top level has"),
    (["train.device=cuda"], r"train.device=cuda but no CUDA device is visible"),
    (["train.device=cuda", "launcher=local"], r"gpus_per_node=0 hides every GPU"),
    (["train.device=cuda", "launcher=slurm"], r"launcher=slurm requests no GPU"),
    (["model=transformer", "model.num_heads=3"], r"num_heads=3 must divide model.d_model"),
    (["model.output_layer=coral"], r"output_layer=coral needs head=ordinal"),
    (["head=continuous"], r"task.target=score needs a score head"),
    (["task.input_features=landmarks"], r"has no landmarks"),
    (["task.train_splits=[valid]"], r"has none of task.train_splits=\['valid'\]"),
    (["fold=3"], r"fold=3 is outside 0..2"),
    (["task.features=leg_agility"], r"task.features=leg_agility reads pose landmarks, but "
                                    r"task.landmarks=hands: set task.landmarks=pose"),
    (["task=pd4t_gait", "task.landmarks=hands"], r"task.features=gait reads pose landmarks"),
    (["train.model_overrides={attention_lstm: {hiden: 4}}"], r"has no key 'hiden'"),
])
def test_each_bad_setting_stops_the_launch_before_anything_exists(
        overrides, message, small_store, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(V, "_cuda_available", lambda: False)  # the same on a GPU machine
    problems = refused(tmp_path / "runs", small_store, *overrides)
    assert len(problems) == 1 and re.search(message, problems[0]), problems


def test_every_problem_gets_its_own_message(small_store, tmp_path) -> None:
    problems = refused(tmp_path / "runs", small_store, "model=attention_lstm,tcn",
                       "train.batch_size=0", "train.lr=-1", "train.epochs=two", "+train.epochz=2")
    assert len(problems) == 2 * 4  # four problems, named for each model
    assert sum(p.startswith("[model=tcn]") for p in problems) == 4


@pytest.mark.parametrize("damage", ["missing", "truncated", "not_hdf5"])
def test_a_missing_or_broken_store_stops_the_launch(damage, small_store, tmp_path) -> None:
    store = tmp_path / "store.h5"
    if damage == "truncated":
        store.write_bytes(small_store.read_bytes()[:4096])
    elif damage == "not_hdf5":
        store.write_text("id,score\n")
    (problem,) = refused(tmp_path / "runs", store)
    assert problem.startswith("[model=attention_lstm] paths.store: ") and str(store) in problem


def test_a_store_prepared_for_another_task_stops_the_launch(small_store, tmp_path) -> None:
    store = tmp_path / "tapping.h5"
    shutil.copy(small_store, store)
    data = load_store(store)  # now as hawkeye.prepare records it (no "task": finger tapping)
    write_store(store, [], data.series_names, data.summary_names, {"prepare": {"workers": 1}})
    assert V.store_facts(store).features == "finger_tapping"
    (problem,) = refused(tmp_path / "runs", store, "task=pd4t_leg_agility")
    assert re.search(r"task.features=leg_agility but .*tapping.h5 was prepared with the "
                     r"finger_tapping features: prepare a store for task=pd4t_leg_agility", problem)
    assert V.store_facts(small_store).features is None  # written by store write: not checked


def test_an_unwritable_output_folder_stops_the_launch(small_store, tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (problem,) = refused(blocker / "runs", small_store)
    assert "paths.runs" in problem and "is a file, not a folder" in problem
    # /proc refuses new files even for root (permission bits do not)
    assert "cannot write in /proc" in V.check_writable("/proc/hawkeye-runs", "paths.runs")[0]
    assert "MiB free" in V.check_writable(tmp_path, "paths.runs", min_free=2**62)[0]


def test_main_prints_every_problem_and_exits_2(small_store, tmp_path, capsys) -> None:
    code = L.main([*TINY, f"paths.store={small_store}", f"paths.runs={tmp_path / 'runs'}",
                   "train.lr=-1", "cv.n_folds=50"])
    err = capsys.readouterr().err
    assert code == 2 and "2 problem(s) found; nothing was written or submitted" in err
    assert "train.lr" in err and "cv.n_folds=50" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_gpu_on_a_slurm_node_is_checked_there_with_a_note() -> None:
    cfg = OmegaConf.to_container(compose(["launcher=slurm_v100", "train.device=cuda"]),
                                 resolve=True)
    problems, notes = V.check_device(cfg, "slurm", cuda_here=lambda: False)
    assert problems == [] and "checked on the compute node" in notes[0]


# ----------------------------------------------------------------------------------------------
# The schema


def _options() -> list[list[str]]:
    """One override list per option of every config group a launch composes (the experiments
    included; not `synthetic`, the demo generator's own entry point)."""
    conf, launched = Path(CONF_DIR), set(compose()) | {"experiment"}
    return [[f"{'+' if group.name == 'experiment' else ''}{group.name}={option.stem}"]
            for group in sorted(p for p in conf.iterdir() if p.is_dir() and p.name in launched)
            for option in sorted(group.glob("*.yaml"))]


@pytest.mark.parametrize("overrides", _options(), ids=lambda o: o[0])
def test_every_shipped_option_passes_the_key_and_compatibility_checks(overrides) -> None:
    cfg = OmegaConf.to_container(compose(overrides), resolve=True)
    reference = OmegaConf.to_container(compose(V.group_overrides(overrides)), resolve=True)
    assert V.check_keys(cfg, reference, V.executor_keys(cfg["launcher"])) == []
    # a real-valued target and head=continuous go together (+experiment=telemetry sets both)
    alone = overrides in (["head=continuous"], ["task=telemetry"])
    assert len(V.check_compatibility(cfg)) == (1 if alone else 0)


def test_every_key_the_code_reads_has_a_rule_and_every_rule_a_key() -> None:
    keys: set[str] = set()
    for overrides in [[], *_options()]:
        keys |= {k for k, _ in V.leaves(OmegaConf.to_container(compose(overrides),
                                                                resolve=True))}
    ruled = {k for k in keys if k.rpartition(".")[0].split(".")[0] in V.RULED_SECTIONS
             or "." not in k}
    assert ruled - set(V.RULES) == set(), "declare these keys in hawkeye.validate.RULES"
    assert set(V.RULES) - keys == set(), "RULES names keys no config has"


def test_rules_check_type_null_range_and_choice() -> None:
    assert V.integer(low=1).problem("k", True) == "k: expected int, got True (bool)"
    assert V.number(above=0).problem("k", 2) is None  # an int is a valid float
    assert V.integer().problem("k", None) == "k: must be set, got null (int)"
    assert V.integer(nullable=True).problem("k", None) is None
    assert "not one of ['a', 'b']" in V.choice("a", "b").problem("k", "c")
    assert V.number(low=0, below=1).problem("k", 1.0) == "k: must be < 1, got 1.0"


def test_executor_parameters_may_be_added_when_the_executor_takes_them() -> None:
    cfg = OmegaConf.to_container(compose(["launcher=slurm", "+launcher.parameters.exclude=n7",
                                          "+prepare.jobs.shard.mem=8GB",
                                          "+launcher.parameters.exclud=n7"]), resolve=True)
    reference = OmegaConf.to_container(compose(["launcher=slurm"]), resolve=True)
    (problem,) = V.check_keys(cfg, reference, V.executor_keys(cfg["launcher"]))
    assert problem.startswith("launcher.parameters.exclud: no such key")


# ----------------------------------------------------------------------------------------------
# The dry run


def test_dry_run_prints_the_plan_of_a_sweep_and_submits_nothing(small_store, tmp_path,
                                                                capsys) -> None:
    runs = tmp_path / "runs"
    args = ["cv.n_folds=3", "launcher=slurm", f"paths.store={small_store}", f"paths.runs={runs}",
            "model=attention_lstm,tcn", "train.lr=1e-3,3e-4", "launch.dry_run=true"]
    task = RecordingTask()
    assert L.launch(args, task=task) == 0
    out = capsys.readouterr().out
    assert task.calls == [] and not runs.exists()
    plan = L.plan_launch(L.parse_grid(args))
    assert f"run dir: {plan.grid_dir}" in out and "points: 2" in out
    assert "train.lr=0.001" in out and "train.lr=0.0003" in out
    assert "models: attention_lstm, tcn" in out and "folds: 0, 1, 2 (cv.n_folds=3)" in out
    assert "12 = 2 point(s) x 2 model(s) x 3 fold(s); 0 finished" in out
    assert "arrays: 1, jobs per array [12]" in out
    assert "resources per training job: array_parallelism=64, cpus_per_task=4" in out
    assert "job_name=hawkeye-collect" in out

    finished = plan.tasks[0].fold_dir
    finished.mkdir(parents=True)
    (finished / "metrics.json").write_text(json.dumps({"status": "ok"}))
    assert L.launch([*args, "launcher.max_array_size=5"], task=task) == 0
    out = capsys.readouterr().out
    assert f"skipped (finished): {plan.tasks[0].label}" in out and "11 to submit" in out
    assert "arrays: 3, jobs per array [5, 5, 1]" in out
    assert task.calls == []
