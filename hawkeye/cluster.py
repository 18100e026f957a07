"""The Slurm / submitit toolkit both fan-outs share: :mod:`hawkeye.launch` (training arrays + the
collector) and :mod:`hawkeye.prepare.submit` (shard arrays + the merge job).

- **Executors from config.** :func:`make_executor` instantiates ``launcher.executor._target_``
  (never guessed) with ``launcher.parameters``, overlaid per job by a section such as
  ``launcher.collector`` or ``prepare.jobs.shard`` (:func:`executor_parameters`).
- **What an executor can do** is one small object per kind (:func:`backend_of`):
  :class:`SlurmBackend` (array ids, ``--dependency``, ``squeue``, ``MaxArraySize``),
  :class:`LocalBackend` (background processes: the collector waits for their pids) and
  :class:`DebugBackend` (jobs run in this process when their result is asked for). Code that
  submits asks the backend; it never tests the executor's type itself.
- **Arrays.** :func:`array_limit` (configured cap vs the cluster's ``MaxArraySize``),
  :func:`split_array`, :func:`deal` (``launcher.max_parallel``) and :class:`TaskSequence`.
- **Waiting.** :func:`follow` (one progress-bar loop for every wait), :func:`wait_for_processes`
  (local jobs) and :func:`failure_line` (the one line that says why a job failed).

What submitit already has and why it is not used here: ``helpers.FunctionSequence`` stops at the
first failing function, where :class:`TaskSequence` runs every fold and names all that failed;
``helpers.as_completed`` / ``monitor_jobs`` only count finished jobs, where launch's bar counts
finished *folds* while it waits on one collector job; ``SlurmJob.state`` asks ``sacct`` job by
job, where one ``squeue`` call (:meth:`SlurmBackend.active_jobs`) answers for every job id an
earlier launch recorded.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hydra.utils
import submitit
from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")

POLL_SECONDS = 2.0             # how often a waiting command looks at its jobs
ACTIVE_STATES = "PD,R,RQ,RS,RH,CF,CG,S"  # squeue states of a job that is not over yet
FORCED_CHECK_EVERY = 3         # polls between forced scheduler queries (sees cancelled jobs too)


# ----------------------------------------------------------------------------------------------
# Executors from config


def executor_parameters(launcher: DictConfig,
                        overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """submitit parameters of a job: ``launcher.parameters`` updated with ``overrides`` (e.g.
    ``launcher.collector``, ``prepare.jobs.shard``). Null values and empty lists/dicts are left
    out (the cluster's or submitit's default applies), so a null override removes a key."""
    params = OmegaConf.to_container(launcher.parameters, resolve=True) or {}
    if overrides:
        extra = (OmegaConf.to_container(overrides, resolve=True)
                 if isinstance(overrides, DictConfig) else dict(overrides))
        params.update(extra)
    return {k: v for k, v in params.items() if v is not None and v != [] and v != {}}


def make_executor(launcher: DictConfig, folder: str | os.PathLike[str],
                  overrides: Mapping[str, Any] | None = None) -> submitit.Executor:
    """The executor class named by ``launcher.executor._target_``, with the job's parameters."""
    executor = hydra.utils.instantiate(launcher.executor, folder=str(folder))
    if not isinstance(executor, submitit.Executor):
        raise ValueError(f"launcher.executor._target_={launcher.executor._target_} is not a "
                         "submitit Executor (e.g. submitit.SlurmExecutor)")
    params = executor_parameters(launcher, overrides)
    if params:
        executor.update_parameters(**params)
    return executor


# ----------------------------------------------------------------------------------------------
# What each kind of executor can do


class Backend:
    """What a submitit executor kind can do; the defaults are those of an executor without a
    scheduler. One instance per kind (:func:`backend_of`)."""

    name = "other"
    in_process = False         # jobs run in this process when their result is asked for
    holds_dependencies = False  # a job can be held back until others succeeded

    def max_array_size(self, configured: int | None) -> int | None:
        """Tasks per array: ``configured`` (``launcher.max_array_size``), capped by the cluster."""
        return array_limit(configured, None)

    def array_ids(self, jobs: Iterable[submitit.Job]) -> list[str]:
        """The scheduler's array ids of ``jobs`` (none without a scheduler)."""
        return []

    def run_after(self, executor: submitit.Executor, condition: str,
                  job_ids: Sequence[str]) -> None:
        """Make ``executor``'s next job wait for ``job_ids`` (``afterok``/``afterany``)."""

    def active_jobs(self) -> set[str]:
        """Ids of the scheduler's queued or running jobs (none without a scheduler)."""
        return set()

    def processes(self, jobs: Sequence[submitit.Job]) -> list[tuple[int, int | None]]:
        """``(pid, start time)`` of jobs that are processes on this machine, to wait for."""
        return []

    def watch_hint(self, job_ids: Sequence[str], log_dir: Path) -> str:
        """How to follow submitted jobs from a shell."""
        return f"ls {log_dir}  (logs of the local jobs)"


class SlurmBackend(Backend):
    """``submitit.SlurmExecutor``: job arrays, dependencies, ``squeue``."""

    name = "slurm"
    holds_dependencies = True

    def max_array_size(self, configured: int | None) -> int | None:
        return array_limit(configured, cluster_max_array_size())

    def array_ids(self, jobs: Iterable[submitit.Job]) -> list[str]:
        """The distinct base ids (``1234_5`` -> ``1234``), in submission order."""
        return list(dict.fromkeys(str(j.job_id).split("_")[0] for j in jobs))

    def run_after(self, executor: submitit.Executor, condition: str,
                  job_ids: Sequence[str]) -> None:
        if job_ids:
            executor.update_parameters(dependency=f"{condition}:" + ":".join(job_ids))

    def active_jobs(self) -> set[str]:
        """Array tasks one by one (``1234_5``); empty when ``squeue`` cannot be asked."""
        try:
            out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-t", ACTIVE_STATES],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return set()
        return set(out.split())

    def watch_hint(self, job_ids: Sequence[str], log_dir: Path) -> str:
        return f"squeue -j {','.join(job_ids)}"


class LocalBackend(Backend):
    """``submitit.LocalExecutor``: each job is a background process of this machine."""

    name = "local"

    def processes(self, jobs: Sequence[submitit.Job]) -> list[tuple[int, int | None]]:
        return [(int(j.job_id), process_start_time(int(j.job_id))) for j in jobs]


class DebugBackend(Backend):
    """``submitit.DebugExecutor``: a job runs in this process when its result is asked for, so
    jobs asked in order run in order (a merge asked last runs after its shards)."""

    name = "debug"
    in_process = True
    holds_dependencies = True


def backend_for(executor_class: type) -> Backend:
    """The :class:`Backend` of a submitit executor class."""
    if issubclass(executor_class, submitit.SlurmExecutor):
        return SlurmBackend()
    if issubclass(executor_class, submitit.DebugExecutor):
        return DebugBackend()
    if issubclass(executor_class, submitit.LocalExecutor):
        return LocalBackend()
    return Backend()


def backend_of(executor: submitit.Executor) -> Backend:
    """The :class:`Backend` of an executor instance."""
    return backend_for(type(executor))


def launcher_backend(launcher: DictConfig) -> Backend:
    """The :class:`Backend` a launcher config will get, known before anything is created."""
    return backend_for(hydra.utils.get_class(launcher.executor._target_))


# ----------------------------------------------------------------------------------------------
# Arrays


def parse_max_array_size(scontrol_config: str) -> int | None:
    """``MaxArraySize`` from ``scontrol show config`` output (``None`` when absent)."""
    match = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)", scontrol_config, re.MULTILINE)
    return int(match.group(1)) if match else None


def cluster_max_array_size() -> int | None:
    """The Slurm cluster's ``MaxArraySize`` (array indices must stay below it), or ``None``."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_max_array_size(out)


def array_limit(configured: int | None, cluster: int | None) -> int | None:
    """Tasks per array: the smaller of the configured cap and the cluster's limit (None = none)."""
    limits = [int(v) for v in (configured, cluster) if v is not None]
    if any(v < 1 for v in limits):
        raise ValueError(f"an array size limit must be >= 1, got {limits}")
    return min(limits) if limits else None


def split_array(items: Sequence[T], max_size: int | None) -> list[list[T]]:
    """Consecutive chunks of at most ``max_size`` items (one chunk when ``max_size`` is None)."""
    if not items:
        return []
    if max_size is None:
        return [list(items)]
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    return [list(items[i:i + max_size]) for i in range(0, len(items), max_size)]


def deal(items: Sequence[T], n_groups: int | None) -> list[list[T]]:
    """Deal ``items`` round-robin into at most ``n_groups`` non-empty groups (None: one each).

    Round-robin spreads the models over the groups, so long and short tasks mix.
    """
    if n_groups is None:
        return [[item] for item in items]
    if n_groups < 1:
        raise ValueError(f"launcher.max_parallel must be >= 1 or null, got {n_groups}")
    groups = [list(items[i::n_groups]) for i in range(min(n_groups, len(items)))]
    return [g for g in groups if g]


class TaskSequence(submitit.helpers.Checkpointable):
    """Several tasks run one after another in one job (``launcher.max_parallel``).

    A failing task does not stop the others; the job fails at the end naming every failed task.
    On preemption the whole sequence is requeued: finished folds return their stored
    ``metrics.json`` at once and the interrupted one resumes from its ``last.pt``.
    """

    def __init__(self, task: Callable[[dict[str, Any]], Any], configs: Sequence[dict[str, Any]],
                 labels: Sequence[str]) -> None:
        self.task, self.configs, self.labels = task, list(configs), list(labels)

    def __call__(self) -> list[Any]:
        results, failed = [], []
        for label, cfg in zip(self.labels, self.configs, strict=True):
            print(f"hawkeye.launch: starting {label}", flush=True)
            try:
                results.append(self.task(cfg))
            except Exception as error:  # noqa: BLE001 - keep going, report all at the end
                traceback.print_exc()
                failed.append(f"{label} ({type(error).__name__}: {error})")
                results.append(None)
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(self.labels)} tasks failed: "
                               + "; ".join(failed))
        return results


# ----------------------------------------------------------------------------------------------
# Waiting


def process_start_time(pid: int) -> int | None:
    """Start time of a live, non-zombie process (clock ticks since boot), else ``None``.

    Used with the pid to recognise a local job's process even if the pid is reused later.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in "ZX" else int(fields[19])


def wait_for_processes(processes: Sequence[tuple[int, int | None]], poll_s: float) -> None:
    """Block until none of ``(pid, start_time)`` is alive any more."""
    while any(process_start_time(pid) == start for pid, start in processes
              if start is not None):
        time.sleep(poll_s)


def follow(jobs: Sequence[submitit.Job], poll_s: float, unit: str, desc: str,
           progress: Callable[[], int] | None = None, total: int | None = None) -> None:
    """A progress bar until every job of ``jobs`` is over.

    The bar counts ``progress()`` out of ``total`` (default: the jobs done out of all of them);
    every :data:`FORCED_CHECK_EVERY` polls the scheduler is asked directly, which also sees a
    job cancelled by hand.
    """
    from tqdm import tqdm

    with tqdm(total=len(jobs) if total is None else total, unit=unit, desc=desc) as bar:
        polls = 0
        while True:
            done = sum(job.done(force_check=polls % FORCED_CHECK_EVERY == 0) for job in jobs)
            bar.update((done if progress is None else progress()) - bar.n)
            if done == len(jobs):
                return
            polls += 1
            time.sleep(poll_s)


def failure_line(error: BaseException) -> str:
    """The one line that says why a job failed (submitit wraps a job's traceback in its text)."""
    if isinstance(error, submitit.core.utils.FailedJobError):
        body = str(error).split("-" * 22)  # submitit puts the job's traceback between dashes
        trace = [ln.strip() for ln in (body[1] if len(body) > 2 else str(error)).splitlines()]
        trace = [ln for ln in trace if ln]
        return trace[-1] if trace else repr(error)
    if isinstance(error, submitit.core.utils.UncompletedJobError):
        # "Job <id> (task: k) with path ... / has not produced any output (state: FAILED)"
        return " ".join(str(error).strip().splitlines()[:2])
    return f"{type(error).__name__}: {error}"
