"""What fanning training out costs: hawkeye.launch's submission path with trivial tasks.

1. Fan-out overhead per task: N trivial tasks (each records when it ran and returns at once) go
   through :func:`hawkeye.launch.submit_training` exactly as a launch sends training tasks: on the
   local Slurm cluster as one job array (``launcher=slurm``, one CPU per task), and through
   submitit's LocalExecutor as ``launcher=local`` does it (tasks dealt to ``max_parallel`` jobs).
   overhead = (wall time from submission until every result is back - the tasks' own time at the
   parallelism they had) / N. The local executor is the baseline (ratio = Slurm / local).
2. Round trip of a single trivial Slurm task (submit -> result seen), and the time from a
   preemption signal (submitit's ``job._interrupt()``) until a Checkpointable task runs again.
3. ``scripts/slurm-local.sh up`` for a second, fresh cluster (own state dir and ports: the
   daemons start, packages already installed) and ``up`` of the running cluster (idempotent).

Slurm rows need the local cluster; the script brings it up with ``scripts/slurm-local.sh up``
(idempotent) and prints the reason when it cannot.

    python benchmarks/bench_launch.py [--quick] [--tasks N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import submitit

from hawkeye import launch as L
from hawkeye.cluster import backend_of, make_executor
from hawkeye.config import compose

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm-local.sh"
GOAL_S = 1.0  # fan-out overhead per task; a training fold runs for minutes, so ~1 s is noise


def trivial_task(cfg: dict) -> tuple[float, float]:
    """A task with no work: (start, end) wall-clock times inside the job."""
    start = time.time()
    return start, time.time()


class WaitsForPreemption(submitit.helpers.Checkpointable):
    """Runs until interrupted once; after the requeue returns when it started again."""

    def __call__(self, marker: str) -> float:
        path = Path(marker)
        if path.exists():  # second start, after the requeue
            return time.time()
        path.write_text(str(time.time()))
        time.sleep(300)
        return -1.0


def wait_results(jobs: list[submitit.Job], timeout_s: float = 600) -> float:
    """Poll the result files (finer than submitit's 1 s wait loop); return when all exist."""
    deadline = time.monotonic() + timeout_s
    pending = list(jobs)
    while pending:
        pending = [j for j in pending if not j.paths.result_pickle.exists()]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} jobs still running after {timeout_s} s")
        time.sleep(0.02)
    return time.time()


def fan_out(launcher: str, n_tasks: int, workdir: Path, extra: list[str]) -> dict[str, float]:
    """Submit ``n_tasks`` trivial tasks through the launcher's path; time the whole round trip."""
    overrides = [f"launcher={launcher}", "model=attention_lstm", f"cv.n_folds={n_tasks}",
                 f"paths.runs={workdir}", "paths.store=unused.h5", f"launch.name={launcher}",
                 *extra]
    plan = L.plan_launch(L.parse_grid(overrides))
    cfg = plan.base.launcher
    executor = make_executor(cfg, plan.log_dir)
    limit = backend_of(executor).max_array_size(cfg.max_array_size)
    t0 = time.time()
    jobs, _ = L.submit_training(executor, trivial_task, plan.tasks, cfg.max_parallel, limit)
    submitted = time.time()
    done = wait_results(jobs)
    spans = []
    for job in jobs:
        result = job.result()
        spans += result if isinstance(result, list) else [result]
    own = sum(end - start for start, end in spans)
    parallel = len(jobs) if not isinstance(executor, submitit.SlurmExecutor) else min(
        len(jobs), _slurm_cpus())
    wall = done - t0
    return {"wall": wall, "submit": submitted - t0, "first_start": min(s for s, _ in spans) - t0,
            "own": own, "jobs": len(jobs),
            "per_task": (wall - own / max(parallel, 1)) / n_tasks}


def _slurm_cpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout
    return int(out.split()[0].rstrip("+")) if out.strip() else 1


def slurm_round_trip(workdir: Path) -> float:
    executor = submitit.SlurmExecutor(folder=workdir / "rt")
    executor.update_parameters(time=5, cpus_per_task=1)
    t0 = time.time()
    job = executor.submit(trivial_task, {})
    wait_results([job])
    return time.time() - t0


def requeue_time(workdir: Path) -> float:
    executor = submitit.SlurmExecutor(folder=workdir / "rq", max_num_timeout=1)
    executor.update_parameters(time=10, cpus_per_task=1, signal_delay_s=5)
    marker = workdir / "rq_started"
    job = executor.submit(WaitsForPreemption(), str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the preemption test job never started")
        time.sleep(0.05)
    interrupted = time.time()
    job._interrupt()
    restarted = job.result()
    return restarted - interrupted


def cluster_start_times() -> tuple[float, float]:
    """(fresh `up` of a second cluster, `up` of the running one); the second is stopped again."""
    state = Path(f"/tmp/hawkeye-slurm-bench-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "HAWKEYE_SLURM_DIR": str(state), "HAWKEYE_SLURM_PORT": "6957",
           "HAWKEYE_SLURM_CPUS": "2"}
    try:
        t0 = time.perf_counter()
        subprocess.run([str(SCRIPT), "up"], env=env, check=True, capture_output=True, timeout=300)
        fresh = time.perf_counter() - t0
    finally:
        subprocess.run([str(SCRIPT), "down"], env={**env, "HAWKEYE_SLURM_PURGE": "1"},
                       capture_output=True, timeout=120)
    t0 = time.perf_counter()
    subprocess.run([str(SCRIPT), "up"], check=True, capture_output=True, timeout=300)
    return fresh, time.perf_counter() - t0


def use_local_cluster() -> str | None:
    """Bring the local cluster up (idempotent) and take its env; the reason when impossible."""
    up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        return up.stderr.strip().splitlines()[-1] if up.stderr.strip() else "up failed"
    env_file = up.stdout.strip().splitlines()[-1]
    out = subprocess.run(["bash", "-c", 'set -a; source "$1"; env -0', "_", env_file],
                         capture_output=True, text=True, check=True).stdout
    for item in out.split("\0"):
        key, _, value = item.partition("=")
        if key in ("SLURM_CONF", "HAWKEYE_SLURM_BIN", "PATH"):
            os.environ[key] = value
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 tasks instead of 16")
    parser.add_argument("--tasks", type=int, default=None, help="trivial tasks per launch")
    args = parser.parse_args(argv)
    n = args.tasks or (8 if args.quick else 16)
    workdir = Path(tempfile.mkdtemp(prefix="bench_launch_"))
    try:
        local = fan_out("local", n, workdir, [])
        print(f"local executor: {n} tasks in {local['jobs']} jobs (launcher.max_parallel="
              f"{compose(['launcher=local']).launcher.max_parallel}): wall {local['wall']:.2f} s, "
              f"submission {local['submit']:.2f} s, first task started after "
              f"{local['first_start']:.2f} s, tasks' own time {local['own'] * 1000:.1f} ms")
        reason = use_local_cluster()
        if reason:
            print(f"local Slurm unavailable ({reason}): Slurm rows skipped")
            print(f"BENCH | fan-out overhead per task, local executor (N={n}) | "
                  f"{local['per_task']:.2f} s | | | <= {GOAL_S:.0f} s")
            return 0
        slurm = fan_out("slurm", n, workdir, ["launcher.parameters.cpus_per_task=1",
                                              "launcher.parameters.time=5"])
        print(f"slurm array: {n} tasks, {slurm['jobs']} array tasks: wall {slurm['wall']:.2f} s, "
              f"submission {slurm['submit']:.2f} s, first task started after "
              f"{slurm['first_start']:.2f} s, tasks' own time {slurm['own'] * 1000:.1f} ms")
        round_trip = slurm_round_trip(workdir)
        requeue = requeue_time(workdir)
        fresh, again = cluster_start_times()
        ratio = slurm["per_task"] / local["per_task"]
        print(f"BENCH | fan-out overhead per task, slurm array (N={n}) | {slurm['per_task']:.2f} s "
              f"| {local['per_task']:.2f} s (local executor) | {ratio:.2f} | <= {GOAL_S:.0f} s")
        print(f"BENCH | fan-out overhead per task, local executor (N={n}) | "
              f"{local['per_task']:.2f} s | | | <= {GOAL_S:.0f} s")
        print(f"BENCH | slurm round trip, 1 trivial task | {round_trip:.2f} s | | | <= 5 s")
        print(f"BENCH | slurm requeue after preemption signal, until running again | "
              f"{requeue:.2f} s | | | <= 30 s")
        print(f"BENCH | slurm-local.sh up, fresh daemons | {fresh:.2f} s | {again:.2f} s (already "
              f"up) | {fresh / max(again, 1e-9):.1f} | <= 10 s")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
