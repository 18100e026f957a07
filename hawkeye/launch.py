"""Fan a grid of (sweep point x model x fold) training tasks out as job arrays, then collect.

``python -m hawkeye.launch model=attention_lstm,transformer,conv_lstm`` (or ``model=all``), with
Hydra sweeps over hyper-parameters (``model.hidden=64,128 train.lr=1e-3,3e-4``) and the launcher
chosen from config (``launcher=local|debug|slurm|slurm_v100``, ``conf/launcher/``):

1. **Expand.** Hydra's own override parser splits the command line into overrides shared by every
   task, sweep overrides (their cartesian product = the sweep points), the models and the folds.
   One config is composed per (point, model) with :func:`hawkeye.config.compose` (every fold
   differs only in ``fold``) and checked fully (:mod:`hawkeye.validate`): any problem stops the
   launch before anything is written; ``launch.dry_run=true`` prints the plan and stops.
2. **Name.** The run directory is ``<paths.runs>/<launch.name or task.name>-<hash>`` (dora-style),
   the hash covering every (point, model) config minus :data:`hawkeye.config.NOT_IDENTITY`, so
   the same grid launched again finds the same directory. One point: it holds
   ``<model>/fold_<k>/``. A sweep: it is the *grid* directory, with one run directory per point
   named from its overrides (``<grid>/model.hidden=64,train.lr=0.001/``; docs/architecture.md).
3. **Record.** Each run directory gets ``run.json`` (models, n_folds, overrides, job ids, launch
   history), ``config.yaml`` (resolved), ``environment.json`` (git commit, package versions);
   the fold assignment (``folds.json``) is written by the first training task.
4. **Skip.** A (point, model, fold) whose ``metrics.json`` says ``"status": "ok"`` is finished and
   not submitted again, unless ``launch.force=true`` (which deletes its folder first). On Slurm, a
   task whose job from an earlier launch is still queued or running is not submitted twice: the
   new collector waits for that job too.
5. **Submit.** The remaining tasks go out as ONE submitit job array (``executor.batch()``), split
   into several arrays when larger than the cluster's ``MaxArraySize``; the executor class comes
   from ``launcher.executor._target_``, never from guessing. Then the collector
   (:class:`CollectTask`) is submitted: on Slurm with ``--dependency=afterany:<arrays>`` (a failed
   fold is reported, not left pending); locally it waits for the training processes itself; the
   debug launcher runs everything in this process.
6. **Return** at once, printing job ids, run directory and the ``squeue`` command, or with
   ``launch.wait=true`` (``--wait``) follow the folds with a progress bar until the collector ends
   and print its ``summary.md``.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import re
import shutil
import socket
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import submitit
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from hawkeye import cli
from hawkeye.cluster import (
    POLL_SECONDS,
    Backend,
    TaskSequence,
    backend_of,
    deal,
    failure_line,
    follow,
    make_executor,
    split_array,
    wait_for_processes,
)
from hawkeye.config import CONF_DIR, LOG_DIR_NAME, compose, grid_hash, point_hash
from hawkeye.dry_run import describe_plan
from hawkeye.io import git_commit, package_versions, write_json_atomic, write_text_atomic
from hawkeye.validate import LaunchChecker

MAX_POINT_NAME = 100           # longer readable sweep-point names fall back to point-<hash>
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._,=+-]")


# ----------------------------------------------------------------------------------------------
# 1. Expanding the command line


@dataclass(frozen=True)
class Grid:
    """What the command line asks for, before any config is composed."""

    common: tuple[str, ...]                 # overrides applied to every task, as typed
    points: tuple[tuple[str, ...], ...]     # overrides of each sweep point (((),) = no sweep)
    models: tuple[str, ...]                 # model config names, in launch order (() = from config)
    folds: tuple[int, ...] | None           # folds to run (None = all 0 .. cv.n_folds-1)


def available_models(conf_dir: str | os.PathLike[str] = CONF_DIR) -> list[str]:
    """Every option of the ``model`` config group (``model=all``), sorted by name."""
    return sorted(p.stem for p in (Path(conf_dir) / "model").glob("*.yaml"))


def parse_grid(overrides: Sequence[str], all_models: Sequence[str] | None = None) -> Grid:
    """Split Hydra command-line overrides into shared overrides, sweep points, models and folds.

    Uses Hydra's own override grammar, so ``a=1,2``, ``a=range(1,4)``, ``a=choice(x,y)`` and
    quoting behave as in ``--multirun``; the sweep points are the cartesian product of every
    sweep override other than ``model`` and ``fold``, in the order given. ``model=all`` means
    every file in ``conf/model/``; without a ``model`` override ``models`` is empty and
    :func:`plan_launch` takes ``launch.models`` or the composed default model.
    """
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    common: list[str] = []
    axes: list[list[str]] = []
    models: list[str] = []
    folds: list[int] | None = None
    for override in parsed:
        key = override.key_or_group
        values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                  else None)
        if key == "model" and not override.is_delete():
            models = values if values is not None else [str(override.value())]
            if models == ["all"]:
                models = list(all_models if all_models is not None else available_models())
        elif key == "fold" and not override.is_delete():
            folds = [int(v) for v in (values if values is not None else [override.value()])]
        elif values is not None:
            prefix = override.get_key_element()  # keeps "+" / "++" of add overrides
            axes.append([f"{prefix}={v}" for v in values])
        else:
            common.append(override.input_line)
    if len(set(models)) != len(models):
        raise ValueError(f"model={','.join(models)} names a model twice")
    points = tuple(tuple(point) for point in itertools.product(*axes))
    return Grid(tuple(common), points, tuple(models), tuple(folds) if folds is not None else None)


# ----------------------------------------------------------------------------------------------
# 2. Composing and naming


@dataclass(eq=False)  # identity semantics: a Task (hashable) refers to its Point
class Point:
    """One sweep point: its run directory and one composed config per model."""

    name: str                          # "" for a launch without sweep, else the folder name
    overrides: tuple[str, ...]         # this point's sweep overrides
    configs: dict[str, DictConfig]     # model name -> composed config (run_dir set, fold not)
    config_hash: str                   # identity of this point (all its models)
    run_dir: Path = Path()


@dataclass(frozen=True)
class Task:
    """One (sweep point, model, fold): one array task."""

    point: Point
    model: str
    fold: int

    @property
    def key(self) -> str:
        """``<model>/fold_<k>``: the key of run.json's ``jobs``."""
        return f"{self.model}/fold_{self.fold}"

    @property
    def label(self) -> str:
        return f"{self.point.name}/{self.key}" if self.point.name else self.key

    @property
    def fold_dir(self) -> Path:
        return self.point.run_dir / self.model / f"fold_{self.fold}"

    def config(self) -> dict[str, Any]:
        """The task's resolved config as plain containers (pickles anywhere, no Hydra needed)."""
        cfg = self.point.configs[self.model].copy()
        cfg.fold = self.fold
        return OmegaConf.to_container(cfg, resolve=True)


@dataclass
class Plan:
    """Everything a launch will write and submit."""

    grid_dir: Path                     # the run directory, or the sweep's parent directory
    points: list[Point]
    tasks: list[Task]                  # every (point, model, fold) of the grid
    n_folds: int
    base: DictConfig                   # the first composed config (launcher, launch, collect)
    grid: Grid

    @property
    def is_sweep(self) -> bool:
        return len(self.points) > 1 or bool(self.points[0].name)

    @property
    def log_dir(self) -> Path:
        return self.grid_dir / LOG_DIR_NAME


def point_dir_name(overrides: Sequence[str], digest: str) -> str:
    """A readable folder name for a sweep point: its overrides sorted by key, path-safe.

    ``["train.lr=0.001", "model.hidden=64"]`` -> ``model.hidden=64,train.lr=0.001``. Names longer
    than :data:`MAX_POINT_NAME` characters become ``point-<digest>``.
    """
    name = _SAFE_NAME.sub("_", ",".join(sorted(o.lstrip("+~") for o in overrides)))
    return name if 0 < len(name) <= MAX_POINT_NAME else f"point-{digest}"


def compose_point(grid: Grid, point: Sequence[str],
                  composer: Callable[[Sequence[str]], DictConfig] = compose) -> Point:
    """Compose the config of every model of one sweep point; errors name the override at fault."""
    configs = {}
    for model in grid.models:
        overrides = [*grid.common, *point, f"model={model}"]
        try:
            configs[model] = composer(overrides)
        except Exception as error:  # Hydra raises several types; all mean "bad override"
            raise ValueError(f"cannot compose model={model} with overrides {list(overrides)}: "
                             f"{error}. An override such as model.hidden=... must exist in every "
                             "launched model's config (launch those models separately)") from error
    return Point(name="", overrides=tuple(point), configs=configs,
                 config_hash=point_hash(configs))


def plan_launch(grid: Grid, composer: Callable[[Sequence[str]], DictConfig] = compose,
                check: Callable[[Grid, Sequence[Point]], None] | None = None) -> Plan:
    """Compose every (point, model) config, name the directories, list every (point, model, fold).

    Nothing is written. The run directories are absolute (array tasks may start elsewhere), and a
    relative ``paths.store`` is made absolute in the tasks' configs for the same reason.
    """
    if not grid.models:  # no model= override: launch.models, else the config's default model
        defaults = composer(list(grid.common))
        chosen = defaults.launch.get("models") or [defaults.model.name]
        grid = Grid(grid.common, grid.points, tuple(str(m) for m in chosen), grid.folds)
    points = [compose_point(grid, p, composer) for p in grid.points]
    if check is not None:  # before any value is used (hawkeye.validate)
        check(grid, points)
    base = points[0].configs[grid.models[0]]
    n_folds = {int(c.cv.n_folds) for p in points for c in p.configs.values()}
    if len(n_folds) != 1:
        raise ValueError(f"the sweep changes cv.n_folds ({sorted(n_folds)}): launch each fold "
                         "count separately, its folds are not comparable")
    k = n_folds.pop()
    folds = list(grid.folds) if grid.folds is not None else list(range(k))
    bad = [f for f in folds if not 0 <= f < k]
    if bad:
        raise ValueError(f"fold={bad} is outside 0..{k - 1} (cv.n_folds={k})")

    sweep = len(points) > 1
    digest = grid_hash(p.config_hash for p in points) if sweep else points[0].config_hash
    prefix = base.launch.name or base.task.name
    grid_dir = (Path(base.run_dir) if base.run_dir is not None
                else Path(base.paths.runs) / f"{prefix}-{digest}").resolve()
    for point in points:
        point.name = point_dir_name(point.overrides, point.config_hash) if sweep else ""
        point.run_dir = grid_dir / point.name if point.name else grid_dir
        for cfg in point.configs.values():
            cfg.run_dir = str(point.run_dir)
            store = Path(cfg.paths.store)
            cfg.paths.store = str(store if store.is_absolute() else store.resolve())
    names = [p.name for p in points]
    if len(set(names)) != len(names):  # two points sanitised to one name: fall back to hashes
        for point in points:
            point.name = f"point-{point.config_hash}"
            point.run_dir = grid_dir / point.name
            for cfg in point.configs.values():
                cfg.run_dir = str(point.run_dir)
    tasks = [Task(p, m, f) for p in points for m in grid.models for f in folds]
    return Plan(grid_dir=grid_dir, points=points, tasks=tasks, n_folds=k, base=base, grid=grid)


# ----------------------------------------------------------------------------------------------
# 3-4. Records and skipping


def is_finished(fold_dir: Path) -> bool:
    """A fold is finished when its ``metrics.json`` is readable and says ``"status": "ok"``."""
    try:
        return json.loads((fold_dir / "metrics.json").read_text()).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


def pending_tasks(tasks: Sequence[Task], force: bool) -> list[Task]:
    """The tasks to submit: all with ``force``, else those not :func:`is_finished`."""
    return list(tasks) if force else [t for t in tasks if not is_finished(t.fold_dir)]


def clear_for_rerun(task: Task, force: bool) -> None:
    """Make a task's folder ready to run again.

    ``force``: delete the whole fold folder (a fresh start). Otherwise delete only a
    ``metrics.json`` that does not say ``ok`` (a failed attempt's record, which training would
    otherwise return as the result); ``last.pt`` is kept so the task resumes.
    """
    if force:
        shutil.rmtree(task.fold_dir, ignore_errors=True)
    elif (task.fold_dir / "metrics.json").exists() and not is_finished(task.fold_dir):
        (task.fold_dir / "metrics.json").unlink()


def still_running(tasks: Sequence[Task], recorded: Mapping[Task, str],
                  active: set[str]) -> dict[Task, str]:
    """The tasks whose job from an earlier launch (``recorded``) is still ``active``."""
    return {t: recorded[t] for t in tasks if recorded.get(t) in active}


def recorded_jobs(plan: Plan) -> dict[Task, str]:
    """Each task's job id from earlier launches (run.json ``jobs``)."""
    jobs = {p: read_json(p.run_dir / "run.json").get("jobs", {}) for p in plan.points}
    return {t: str(jobs[t.point][t.key]) for t in plan.tasks if t.key in jobs[t.point]}


def environment_record() -> dict[str, Any]:
    """Where and with what code a launch happened (environment.json)."""
    return {"git_commit": git_commit(), "package_versions": package_versions(),
            "python": sys.version.split()[0], "executable": sys.executable,
            "platform": platform.platform(), "hostname": socket.gethostname(),
            "cwd": os.getcwd(), "argv": sys.argv}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when missing or unreadable (records are rebuilt)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_run_records(plan: Plan, point: Point, jobs: Mapping[str, str],
                      launch_record: Mapping[str, Any], environment: Mapping[str, Any]) -> None:
    """Write (or update) ``run.json``, ``config.yaml``, ``<model>/config.yaml`` and
    ``environment.json`` of one run directory (contract in docs/architecture.md).

    ``run.json`` keeps the job ids and launch history of earlier launches of the same run.
    """
    run_json = point.run_dir / "run.json"
    previous = read_json(run_json)
    record = {
        "models": list(plan.grid.models),
        "n_folds": plan.n_folds,
        "folds": sorted({*previous.get("folds", []), *(t.fold for t in plan.tasks)}),
        "overrides": list(point.overrides),
        "common_overrides": list(plan.grid.common),
        "config_hash": point.config_hash,
        "log_dir": os.path.relpath(plan.log_dir, point.run_dir),
        "launcher": str(plan.base.launcher.name),
        "git_commit": environment["git_commit"],
        "created": previous.get("created", launch_record["time"]),
        "jobs": {**previous.get("jobs", {}), **jobs},
        "launches": [*previous.get("launches", []), dict(launch_record)],
    }
    first = point.configs[plan.grid.models[0]]
    write_text_atomic(point.run_dir / "config.yaml", OmegaConf.to_yaml(first, resolve=True))
    for model, cfg in point.configs.items():
        write_text_atomic(point.run_dir / model / "config.yaml",
                          OmegaConf.to_yaml(cfg, resolve=True))
    write_json_atomic(point.run_dir / "environment.json", environment)
    write_json_atomic(run_json, record)


def write_grid_record(plan: Plan, launch_record: Mapping[str, Any]) -> None:
    """``grid.json`` in a sweep's grid directory: its points and launch history."""
    path = plan.grid_dir / "grid.json"
    previous = read_json(path)
    write_json_atomic(path, {
        "models": list(plan.grid.models), "n_folds": plan.n_folds,
        "common_overrides": list(plan.grid.common),
        "points": [{"name": p.name, "overrides": list(p.overrides), "config_hash": p.config_hash}
                   for p in plan.points],
        "launches": [*previous.get("launches", []), dict(launch_record)],
    })


# ----------------------------------------------------------------------------------------------
# 5. Arrays and the collector (executors, arrays and waiting: hawkeye.cluster)


class IncompleteRunError(RuntimeError):
    """The collector found a missing or failed fold (details in summary.md)."""


class CollectTask:
    """The collector job: optionally wait for local training processes, then collect.

    Raises :class:`IncompleteRunError` when the collector exits non-zero, so the job itself is
    marked failed (Slurm state FAILED, ``job.result()`` raises) and the log names the summary.
    """

    def __init__(self, run_dir: str, options: dict[str, Any],
                 wait_for: Sequence[tuple[int, int | None]] = (), poll_s: float = 1.0) -> None:
        self.run_dir, self.options = run_dir, dict(options)
        self.wait_for, self.poll_s = list(wait_for), poll_s

    def __call__(self) -> int:
        from hawkeye.collect import CollectOptions, collect  # imported where the job runs

        wait_for_processes(self.wait_for, self.poll_s)
        code = collect(Path(self.run_dir), CollectOptions.from_config(self.options))
        if code != 0:
            raise IncompleteRunError(f"hawkeye.collect exited {code} for {self.run_dir}: a fold is "
                                     f"missing or failed, see {self.run_dir}/summary.md")
        return code


@dataclass
class Submission:
    """What a launch submitted."""

    plan: Plan
    pending: list[Task]                                        # submitted by this launch
    running: dict[Task, str] = field(default_factory=dict)    # earlier launch's, still active
    jobs: list[submitit.Job] = field(default_factory=list)    # one per training job
    job_of: dict[Task, str] = field(default_factory=dict)     # task -> its job id
    arrays: list[str] = field(default_factory=list)           # Slurm array (base) job ids
    collector: submitit.Job | None = None
    backend: Backend = field(default_factory=Backend)         # what the executor can do


def submit_training(executor: submitit.Executor, task: Callable[[dict[str, Any]], Any],
                    tasks: Sequence[Task], max_parallel: int | None,
                    max_array_size: int | None) -> tuple[list[submitit.Job], dict[Task, str]]:
    """Submit ``tasks`` as job arrays (one ``executor.batch()`` per chunk of ``max_array_size``)."""
    groups = deal(list(tasks), max_parallel)
    jobs: list[submitit.Job] = []
    job_of: dict[Task, str] = {}
    for chunk in split_array(groups, max_array_size):
        with executor.batch():
            chunk_jobs = [
                executor.submit(task, group[0].config()) if max_parallel is None else
                executor.submit(TaskSequence(task, [t.config() for t in group],
                                             [t.label for t in group]))
                for group in chunk]
        for group, job in zip(chunk, chunk_jobs, strict=True):
            jobs.append(job)
            job_of.update({t: str(job.job_id) for t in group})
    return jobs, job_of


def submit(plan: Plan, task: Callable[[dict[str, Any]], Any], force: bool) -> Submission:
    """Write the records, submit the pending tasks and the collector (steps 3-5)."""
    launcher = plan.base.launcher
    executor = make_executor(launcher, plan.log_dir)
    backend = backend_of(executor)
    pending = pending_tasks(plan.tasks, force)
    running = still_running(pending, recorded_jobs(plan), backend.active_jobs())
    if running and force:
        raise ValueError(f"launch.force=true, but jobs of this run are still queued or running "
                         f"({', '.join(sorted(set(running.values())))}): scancel them first")
    pending = [t for t in pending if t not in running]
    for t in pending:
        clear_for_rerun(t, force)
    plan.log_dir.mkdir(parents=True, exist_ok=True)
    sub = Submission(plan=plan, pending=pending, running=running, backend=backend)
    if pending:
        sub.jobs, sub.job_of = submit_training(executor, task, pending, launcher.max_parallel,
                                               backend.max_array_size(launcher.max_array_size))
    sub.arrays = backend.array_ids(sub.jobs)

    now = datetime.now(UTC).isoformat(timespec="seconds")
    environment = environment_record()
    record = {"time": now, "launcher": str(launcher.name), "force": bool(force),
              "submitted": [t.label for t in pending],
              "still_running": {t.label: j for t, j in running.items()},
              "skipped": len(plan.tasks) - len(pending) - len(running),
              "jobs": [str(j.job_id) for j in sub.jobs], "arrays": sub.arrays}
    for point in plan.points:
        jobs = {t.key: sub.job_of[t] for t in pending if t.point is point}
        write_run_records(plan, point, jobs, record, environment)
    if plan.is_sweep:
        write_grid_record(plan, record)

    options = OmegaConf.to_container(plan.base.collect, resolve=True)
    if backend.in_process:  # everything runs in this process when waited for
        return sub
    collector_exec = make_executor(launcher, plan.log_dir, launcher.collector)
    after = list(dict.fromkeys([*sub.arrays, *(j.split("_")[0] for j in running.values())]))
    backend.run_after(collector_exec, "afterany", after)
    waits = backend.processes(sub.jobs)  # no scheduler: the collector waits for the pids
    sub.collector = collector_exec.submit(CollectTask(str(plan.grid_dir), options, waits))
    return sub


# ----------------------------------------------------------------------------------------------
# 6. Reporting and waiting


def describe(sub: Submission) -> str:
    """What was submitted and how to follow it."""
    plan = sub.plan
    lines = [f"run dir: {plan.grid_dir}"]
    skipped = len(plan.tasks) - len(sub.pending) - len(sub.running)
    if sub.running:
        lines.append(f"still queued or running from an earlier launch (not resubmitted; the "
                     f"collector waits for them): {', '.join(sorted(set(sub.running.values())))}")
    lines.append(f"tasks: {len(sub.pending)} submitted, {skipped} already finished (skipped) "
                 f"of {len(plan.tasks)} = {len(plan.points)} point(s) x {len(plan.grid.models)} "
                 f"model(s) x {len({t.fold for t in plan.tasks})} fold(s)")
    if sub.arrays:
        lines.append(f"training arrays: {', '.join(sub.arrays)}")
    elif sub.jobs and not sub.backend.in_process:
        lines.append(f"training jobs: {', '.join(str(j.job_id) for j in sub.jobs)}")
    if sub.collector is not None:
        lines.append(f"collector job: {sub.collector.job_id}")
    if sub.collector is not None:
        ids = [*sub.arrays, str(sub.collector.job_id)]
        lines.append(f"watch: {sub.backend.watch_hint(ids, plan.log_dir)}")
    lines.append(f"summary: {plan.grid_dir / 'summary.md'} when the collector ends "
                 f"(or: python -m hawkeye.collect run_dir={plan.grid_dir})")
    return "\n".join(lines)


def wait(sub: Submission, poll_s: float = POLL_SECONDS) -> int:
    """Follow the folds with a progress bar until the collector ends; print the summary.

    Returns the collector's exit code: 0 complete, 1 a fold missing or failed (or the collector
    itself failed).
    """
    plan = sub.plan
    if sub.backend.in_process:
        return _run_in_process(sub)
    assert sub.collector is not None
    tracked = [*sub.pending, *sub.running]
    follow([sub.collector], poll_s, unit="fold", desc="training", total=len(tracked),
           progress=lambda: sum(is_finished(t.fold_dir) for t in tracked))
    error = sub.collector.exception()
    code = 0 if error is None else 1
    if error is not None:
        print(f"collector job {sub.collector.job_id} did not succeed: {failure_line(error)}")
    summary = plan.grid_dir / "summary.md"
    if summary.exists():
        print(summary.read_text())
    else:
        print(f"no {summary}: see the collector's log in {plan.log_dir}")
    return code


def _run_in_process(sub: Submission) -> int:
    """Debug launcher: run every job in this process, then the collector."""
    from tqdm import tqdm

    from hawkeye.collect import CollectOptions, collect

    for job in tqdm(sub.jobs, unit="job", desc="training (in-process)"):
        error = job.exception()  # runs the job here, in this process
        if error is not None:  # the collector names the fold; show the traceback now
            traceback.print_exception(error)
    options = OmegaConf.to_container(sub.plan.base.collect, resolve=True)
    return collect(sub.plan.grid_dir, CollectOptions.from_config(options))


def launch(overrides: Sequence[str], task: Callable[[dict[str, Any]], Any] | None = None,
           composer: Callable[[Sequence[str]], DictConfig] = compose) -> int:
    """Plan, record and submit a launch; wait if ``launch.wait`` (or the debug launcher).

    ``task`` is the callable run on each task's config (default :class:`hawkeye.train.TrainTask`).
    Every config is checked first (:mod:`hawkeye.validate`); ``launch.dry_run`` prints the plan.
    Returns an exit code: 0 when submitted (or, when waiting, when the collector found every fold).
    """
    grid = parse_grid(overrides)
    checker = LaunchChecker(composer)
    plan = plan_launch(grid, composer, check=checker.check_grid)
    if plan.base.launch.dry_run:  # nothing is written or submitted
        print(describe_plan(plan, is_finished, checker.notes))
        return 0
    print("".join(f"note: {note}\n" for note in checker.notes), end="")
    if task is None:
        from hawkeye.train import TrainTask  # imports torch: only when actually launching

        task = TrainTask()
    sub = submit(plan, task, bool(plan.base.launch.force))
    print(describe(sub), flush=True)
    if plan.base.launch.wait or sub.backend.in_process:
        return wait(sub)
    return 0


def first_config_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides of the grid's first (point, model, fold): what ``--cfg job`` shows."""
    grid = parse_grid(overrides)
    return [*grid.common, *grid.points[0], *[f"model={m}" for m in grid.models[:1]],
            *[f"fold={k}" for k in (grid.folds or ())[:1]]]


def main(argv: Sequence[str] | None = None) -> int:
    """``hawkeye-launch [overrides...] [--wait]``; ``--help``, ``--cfg``... answered by Hydra."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in cli.MULTIRUN_FLAGS]
    if "--wait" in args:  # alias of launch.wait=true
        args = [a for a in args if a != "--wait"] + ["launch.wait=true"]
    if cli.info_flags(args):
        return cli.answer_flags(cli.LAUNCH_HELP, args, first_config_overrides)
    try:
        cli.refuse_unknown_options(args)
        return launch(args)
    except (ValueError, HydraException) as error:  # bad overrides; what hawkeye.validate found
        print(f"hawkeye.launch: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
