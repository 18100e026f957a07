"""Submit ``hawkeye.prepare`` as a job array of shards plus a merge job that runs after them.

``python -m hawkeye.prepare launcher=slurm prepare.num_shards=8 data_root=... paths.store=...``
does what ``jobs/prepare.sbatch`` does, through submitit and the same ``conf/launcher/`` files as
``hawkeye.launch``:

1. **Shards.** ``prepare.num_shards`` tasks go out as ONE job array (``executor.batch()``, split
   at the cluster's ``MaxArraySize`` like launch's arrays). Task k is a :class:`ShardTask`: the
   existing sharded :func:`hawkeye.prepare.pipeline.prepare` with ``prepare.shard_index=k``,
   which writes ``<store stem>.shard-<k>-of-<n>.h5`` and its QC table atomically and resumes
   from them.
2. **Merge.** One :class:`MergeTask` job (:func:`hawkeye.prepare.pipeline.merge_shards`) with
   ``--dependency=afterok:<array>``: it starts only when every shard succeeded, so a failed shard
   never yields a merged store (Slurm cancels the merge with ``kill_invalid_depend``; without it
   the merge stays pending, reason ``DependencyNeverSatisfied``: ``scancel`` it). With
   ``num_shards=1`` the one job writes the store itself and there is no merge.
3. **Return** at once, printing the job ids, the log folder and the ``squeue`` command; with
   ``launch.wait=true`` (the same flag as ``hawkeye.launch``) follow the shards, name a failed
   shard with its error and log, cancel the merge, and exit 1.

When a run is submitted (:func:`should_submit`, key ``prepare.submit``): ``true`` / ``false``
always / never; ``null`` (default) when the launcher is not ``local``, unless ``prepare.merge=true``
(the merge step itself) or this process already is a Slurm job (``$SLURM_JOB_ID``: the steps of
``jobs/prepare.sbatch`` and interactive allocations run here, never submit more jobs). So
``make prepare`` and a plain ``python -m hawkeye.prepare`` keep running in this process.

Executors: ``launcher=slurm`` / ``slurm_v100`` (any ``submitit.SlurmExecutor``) as above, job
resources = ``launcher.parameters`` overlaid by ``prepare.jobs.shard`` / ``prepare.jobs.merge``
(no GPU by default); ``launcher=debug`` (``submitit.DebugExecutor``): the shards run one after
another in this process, then the merge if all succeeded (always waits, like launch's debug).
Other executors (``launcher=local`` with ``prepare.submit=true``) are refused: they cannot hold the
merge back until the shards succeeded, and ``launcher=local`` already uses every core here.

A failed or killed run is repaired by running the same command again: shards resume from their
files (stored videos are not processed again) and the merge runs once all of them succeed.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from omegaconf import DictConfig, OmegaConf

from hawkeye.cluster import (
    POLL_SECONDS,
    Backend,
    failure_line,
    follow,
    launcher_backend,
    make_executor,
    split_array,
)
from hawkeye.prepare.pipeline import PrepareReport, merge_shards, prepare, shard_path
from hawkeye.prepare.qc import SKIPPED
from hawkeye.prepare.worker import PrepareSettings

log = logging.getLogger(__name__)


class PrepareJobError(RuntimeError):
    """A shard or merge job finished with a non-zero exit code (``prepare.strict``)."""


# ----------------------------------------------------------------------------------------------
# When to submit


def should_submit(cfg: DictConfig | Mapping[str, Any]) -> bool:
    """Whether ``python -m hawkeye.prepare`` submits jobs instead of running here (see the
    module docstring for the rule)."""
    choice = cfg["prepare"]["submit"]
    if choice is not None:
        return bool(choice)
    launcher = str(cfg["launcher"]["name"])
    if launcher == "local" or bool(cfg["prepare"]["merge"]):
        return False
    if "SLURM_JOB_ID" in os.environ:
        log.info("launcher=%s, but this already is Slurm job %s: preparing here "
                 "(prepare.submit=true submits from inside a job)", launcher,
                 os.environ["SLURM_JOB_ID"])
        return False
    return True


# ----------------------------------------------------------------------------------------------
# The jobs


def _log_to_console() -> None:
    """A job has no Hydra: show prepare's per-video log lines in the job's log file."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


class ShardTask(submitit.helpers.Checkpointable):
    """One array task: :func:`hawkeye.prepare.pipeline.prepare` on shard ``shard_index`` of the run.

    Checkpointable: on preemption or time-out it is requeued, and the rerun resumes from the shard
    file (at most ``prepare.flush_every`` videos' work is redone). Raises
    :class:`PrepareJobError` when the shard's exit code is non-zero (``prepare.strict`` and a
    skipped video), so the job fails and the merge does not run, as with ``jobs/prepare.sbatch``.
    """

    def __init__(self, data_root: str, store: str, task_cfg: dict[str, Any],
                 prepare_cfg: dict[str, Any], shard_index: int) -> None:
        self.data_root, self.store = data_root, store
        self.task_cfg, self.prepare_cfg, self.shard_index = task_cfg, prepare_cfg, shard_index

    def __call__(self) -> PrepareReport:
        _log_to_console()
        cfg = {**self.prepare_cfg, "shard_index": self.shard_index, "merge": False}
        if cfg["workers"] is None and os.environ.get("SLURM_CPUS_PER_TASK"):
            # the job's allocation: the node's affinity mask can be wider than what was granted
            cfg["workers"] = int(os.environ["SLURM_CPUS_PER_TASK"])
        report = prepare(self.data_root, self.store, self.task_cfg, cfg)
        if report.exit_code:
            raise PrepareJobError(
                f"shard {self.shard_index}: prepare.strict=true and {report.counts.get(SKIPPED, 0)}"
                f" row(s) were skipped (see {report.qc_md}); the merge will not run")
        return report


class MergeTask:
    """The merge job: :func:`hawkeye.prepare.pipeline.merge_shards` of every shard into the
    store."""

    def __init__(self, store: str, num_shards: int, strict: bool, overview: bool) -> None:
        self.store, self.num_shards = store, num_shards
        self.strict, self.overview = strict, overview

    def __call__(self) -> PrepareReport:
        _log_to_console()
        report = merge_shards(Path(self.store), self.num_shards, self.strict, self.overview)
        log.info("merged store %s: %s (QC: %s)", report.store, report.counts, report.qc_md)
        if report.exit_code:
            raise PrepareJobError(f"merge: prepare.strict=true and {report.counts.get(SKIPPED, 0)}"
                                  f" row(s) were skipped (see {report.qc_md})")
        return report


# ----------------------------------------------------------------------------------------------
# Submitting


@dataclass
class PrepareSubmission:
    """What :func:`submit_prepare` submitted."""

    data_root: Path
    store: Path                        # the store the merge job (or the single job) writes
    num_shards: int
    log_dir: Path                      # submitit's folder: job scripts, pickles, logs
    shards: list[submitit.Job]         # shards[k] runs shard k
    merge: submitit.Job | None         # None with num_shards=1 (the one job writes the store)
    arrays: list[str]                  # Slurm array (base) job ids, [] for the debug executor
    backend: Backend                   # what the executor can do (debug: runs jobs in this process)


def log_dir_for(store: str | os.PathLike[str]) -> Path:
    """submitit's folder of a prepare run, beside the store: ``data/x.h5`` -> ``data/x_logs/``."""
    store = Path(store)
    return store.with_name(f"{store.stem}_logs")


def _check_request(cfg: DictConfig) -> None:
    """Refuse, before anything is submitted, what would make every job fail."""
    prep = cfg.prepare
    if bool(prep.merge):
        raise ValueError("prepare.merge=true is the merge step itself and runs here: drop "
                         "prepare.submit=true (a submitted run merges after its shards)")
    if int(prep.shard_index) != 0:
        raise ValueError(f"prepare.shard_index={prep.shard_index}: a submitted run sets the shard "
                         "of each array task itself; to redo failed shards run the same command "
                         "again (finished videos resume from the shard files)")
    if int(prep.num_shards) < 1:
        raise ValueError(f"prepare.num_shards must be >= 1, got {prep.num_shards}")
    PrepareSettings.from_config(prep, None, cfg.task)  # ValueError naming a wrong setting
    if not Path(cfg.data_root).is_dir():
        raise FileNotFoundError(f"data_root={cfg.data_root} is not a folder: point it at the "
                                "PD4T root (Annotations/ and Videos/)")


def submit_prepare(cfg: DictConfig) -> PrepareSubmission:
    """Submit the shard array and the dependent merge job of a composed config; nothing waits."""
    _check_request(cfg)
    data_root, store = Path(cfg.data_root).resolve(), Path(cfg.paths.store).resolve()
    num_shards = int(cfg.prepare.num_shards)
    prepare_cfg = OmegaConf.to_container(cfg.prepare, resolve=True)
    task_cfg = OmegaConf.to_container(cfg.task, resolve=True)
    backend = launcher_backend(cfg.launcher)
    if not backend.holds_dependencies:
        raise ValueError(
            f"launcher={cfg.launcher.name} ({cfg.launcher.executor._target_}) cannot hold the "
            "merge back until every shard succeeded: submit with a Slurm launcher "
            "(launcher=slurm) or launcher=debug, or run here with prepare.submit=false "
            "(launcher=local uses all cores)")
    folder = log_dir_for(store)
    jobs_cfg = prepare_cfg.get("jobs") or {}
    shard_exec = make_executor(cfg.launcher, folder, jobs_cfg.get("shard"))
    folder.mkdir(parents=True, exist_ok=True)

    tasks = [ShardTask(str(data_root), str(store), task_cfg, prepare_cfg, k)
             for k in range(num_shards)]
    shards: list[submitit.Job] = []
    # one array, unless larger than MaxArraySize
    for chunk in split_array(tasks, backend.max_array_size(cfg.launcher.max_array_size)):
        with shard_exec.batch():
            submitted = [shard_exec.submit(task) for task in chunk]
        shards.extend(submitted)
    arrays = backend.array_ids(shards)

    merge = None
    if num_shards > 1:
        merge_exec = make_executor(cfg.launcher, folder, jobs_cfg.get("merge"))
        backend.run_after(merge_exec, "afterok", arrays)
        merge = merge_exec.submit(MergeTask(str(store), num_shards, bool(cfg.prepare.strict),
                                            bool(cfg.prepare.qc.overview)))
    return PrepareSubmission(data_root=data_root, store=store, num_shards=num_shards,
                             log_dir=folder, shards=shards, merge=merge, arrays=arrays,
                             backend=backend)


# ----------------------------------------------------------------------------------------------
# Reporting and waiting


def describe(sub: PrepareSubmission) -> str:
    """What was submitted and how to follow it."""
    lines = [f"prepare: {sub.data_root} -> {sub.store} as {sub.num_shards} shard(s)"]
    if sub.backend.in_process:
        lines.append(f"launcher=debug: the jobs run in this process now (logs in {sub.log_dir})")
        return "\n".join(lines)
    if sub.merge is None:
        lines.append(f"job: {sub.shards[0].job_id} (writes the store itself)")
    else:
        n = sub.num_shards
        first, last = (shard_path(sub.store, k, n).name for k in (0, n - 1))
        lines.append(f"shard array: {', '.join(sub.arrays)} ({sub.num_shards} tasks: "
                     f"{', '.join(str(j.job_id) for j in sub.shards)}), writing {first} .. {last}")
        lines.append(f"merge job: {sub.merge.job_id} (afterok:{':'.join(sub.arrays)}: runs only "
                     "when every shard succeeded)")
    ids = [*sub.arrays, *([str(sub.merge.job_id)] if sub.merge is not None else [])]
    lines += [f"logs: {sub.log_dir}  (<job id>_<task>_log.out / .err)",
              f"watch: {sub.backend.watch_hint(ids, sub.log_dir)}",
              "a failed shard leaves no merged store: read its log, fix the cause and run the same "
              "command again (finished shards resume from their files)"]
    return "\n".join(lines)


def shard_failures(sub: PrepareSubmission) -> dict[int, str]:
    """``{shard index: why}`` for every shard job that did not succeed (waits for them)."""
    failures = {}
    for k, job in enumerate(sub.shards):
        error = job.exception()
        if error is None:
            continue
        if sub.backend.in_process:  # debug launcher: the whole traceback, here
            traceback.print_exception(error)
        where = "" if sub.backend.in_process else f" (job {job.job_id}, log {job.paths.stderr})"
        failures[k] = f"{failure_line(error)}{where}"
    return failures


def wait(sub: PrepareSubmission, poll_s: float = POLL_SECONDS) -> int:
    """Follow the shards and the merge; print the outcome. 0 = the store is complete, 1 = a shard
    or the merge failed (named, with its log; a pending merge is cancelled)."""
    if not sub.backend.in_process:
        follow(sub.shards, poll_s, unit="shard", desc="prepare shards")
    failures = shard_failures(sub)  # debug executor: runs the shards here, one after another
    if failures:
        # Slurm's kill_invalid_depend may have cancelled it already; otherwise it would stay
        # pending forever. (A debug job's done() would run it: just cancel that one.)
        if sub.merge is not None and (sub.backend.in_process
                                      or not sub.merge.done(force_check=True)):
            sub.merge.cancel(check=False)
        print(f"{len(failures)} of {sub.num_shards} shard(s) failed; no merged store written:")
        for k, why in failures.items():
            print(f"  shard {k}: {why}")
        print("fix the cause and run the same command again: finished shards resume")
        return 1
    final = sub.merge if sub.merge is not None else sub.shards[0]
    error = final.exception()
    if error is not None:
        where = "" if sub.backend.in_process else f" (job {final.job_id}, log {final.paths.stderr})"
        print(f"{'merge' if sub.merge is not None else 'prepare job'} failed: "
              f"{failure_line(error)}{where}")
        return 1
    report: PrepareReport = final.result()
    counts = ", ".join(f"{status} {n}" for status, n in sorted(report.counts.items()))
    print(f"store: {report.store} ({counts}); QC: {report.qc_md}")
    return 0


def submit_from_config(cfg: DictConfig) -> int:
    """``python -m hawkeye.prepare`` when :func:`should_submit`: submit, print, maybe wait.

    Returns 0 once submitted, or when waiting (``launch.wait=true``, always for the debug
    launcher) the exit code of :func:`wait`.
    """
    sub = submit_prepare(cfg)
    print(describe(sub), flush=True)
    if sub.backend.in_process or bool(OmegaConf.select(cfg, "launch.wait", default=False)):
        return wait(sub)
    return 0
