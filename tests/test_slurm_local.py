"""scripts/slurm-local.sh: the one-node Slurm cluster the Slurm tests and the demo run on.

Tests marked ``slurm`` use the running cluster (``slurm_cluster`` fixture, tests/conftest.py);
one starts a second, independent cluster beside it (own state dir, ports, munge) to check that
`down` stops exactly the daemons its `up` started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from submitit.slurm.slurm import SlurmInfoWatcher

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def run_script(*args: str, env: dict[str, str] | None = None,
               user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT), *args]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def pids(state_dir: Path) -> dict[str, str]:
    """The daemons' pid files of a cluster's state directory."""
    return {p.stem: p.read_text().strip() for p in sorted((state_dir / "run").glob("*.pid"))}


def alive(pid: str) -> bool:
    """A live, non-zombie process (the container's init reaps exited daemons lazily)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def sacct(*job_ids: str) -> dict[str, str]:
    """States through the sacct stand-in, parsed by submitit's own parser."""
    args = [a for j in job_ids for a in ("-j", j)]
    out = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", *args],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return {k: v["State"] for k, v in SlurmInfoWatcher().read_info(out).items()}


def wait_final(job_ids: list[str], timeout_s: float = 60) -> dict[str, str]:
    """Poll until every listed job (array tasks expanded) is in a final state."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = sacct(*job_ids)
        done = {k: v for k, v in states.items() if v.split()[0] in FINAL_STATES}
        if states and len(done) == len(states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs {job_ids} not finished after {timeout_s} s: {states}")
        time.sleep(0.5)


def sbatch(*args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.strip().split(";")[0]


def test_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_unknown_command_prints_usage() -> None:
    result = run_script("sideways")
    assert result.returncode == 2
    assert "usage:" in result.stderr and "up|down|status" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                    reason="needs root and runuser to run the script as an unprivileged user")
def test_up_without_root_fails_with_a_reason() -> None:
    state = Path(f"/tmp/hawkeye-slurm-nobody-{uuid.uuid4().hex[:8]}")
    try:
        result = run_script("up", env={"HAWKEYE_SLURM_DIR": str(state)}, user="nobody")
        assert result.returncode != 0
        assert "must run as root" in result.stderr
        assert "must run as root" in (state / "up.error").read_text()
        assert not (state / "slurm.env").exists()
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.slurm
def test_up_again_is_idempotent(slurm_cluster) -> None:
    state = slurm_cluster.env_file.parent
    before = pids(state)
    result = run_script("up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(slurm_cluster.env_file)
    assert "already running" in result.stderr
    assert pids(state) == before  # nothing restarted
    status = run_script("status")
    assert status.returncode == 0 and "slurmctld: running" in status.stdout


@pytest.mark.slurm
def test_env_file_selects_own_config_and_sacct_standin(slurm_cluster) -> None:
    env = slurm_cluster.env
    assert Path(env["SLURM_CONF"]).is_file()
    assert not env["SLURM_CONF"].startswith("/etc/")
    assert shutil.which("sacct") == str(Path(env["HAWKEYE_SLURM_BIN"]) / "sacct")
    conf = Path(env["SLURM_CONF"]).read_text()
    for setting in ("cred_expire=5", "bf_interval=1", "sched_interval=2", "batch_sched_delay=0",
                    "kill_invalid_depend", "MinJobAge=600", "KillWait=5", "socket="):
        assert setting in conf, setting


@pytest.mark.slurm
def test_sacct_standin_reports_finished_failed_and_array_jobs(slurm_cluster, tmp_path) -> None:
    out = str(tmp_path / "%A_%a.out")
    ok = sbatch("--array=0-2", f"--output={out}", "--wrap", "true")
    bad = sbatch(f"--output={tmp_path / '%j.out'}", "--wrap", "exit 3")
    states = wait_final([ok, bad])
    assert states == {f"{ok}_0": "COMPLETED", f"{ok}_1": "COMPLETED", f"{ok}_2": "COMPLETED",
                      bad: "FAILED"}
    assert sacct("999999") == {}  # an unknown id: no row, no error (as sacct)


@pytest.mark.slurm
def test_array_tasks_run_side_by_side(slurm_cluster, tmp_path) -> None:
    # Each task records when it started and ended; with the advertised CPUs (more than the real
    # cores) the four one-CPU tasks are running at the same time: every start precedes every end.
    script = ('date +%s.%N > "$D/start_$SLURM_ARRAY_TASK_ID"; sleep 3; '
              'date +%s.%N > "$D/end_$SLURM_ARRAY_TASK_ID"')
    job = sbatch("--array=0-3", "--cpus-per-task=1", f"--output={tmp_path / '%A_%a.out'}",
                 f"--export=ALL,D={tmp_path}", "--wrap", script)
    states = wait_final([job])
    assert set(states.values()) == {"COMPLETED"}
    starts = [float((tmp_path / f"start_{i}").read_text()) for i in range(4)]
    ends = [float((tmp_path / f"end_{i}").read_text()) for i in range(4)]
    assert max(starts) < min(ends)


@pytest.mark.slurm
@pytest.mark.slow
def test_second_cluster_runs_beside_and_down_stops_only_its_daemons(slurm_cluster,
                                                                     tmp_path) -> None:
    # Own state dir (under /tmp: munged, running as `munge`, must reach its socket directory),
    # own ports; the session's cluster must be untouched.
    state = Path(f"/tmp/hawkeye-slurm-second-{uuid.uuid4().hex[:8]}")
    env = {"HAWKEYE_SLURM_DIR": str(state), "HAWKEYE_SLURM_PORT": "6947",
           "HAWKEYE_SLURM_CPUS": "2"}
    main_pids = pids(slurm_cluster.env_file.parent)
    try:
        up = run_script("up", env=env)
        assert up.returncode == 0, up.stderr
        second = pids(state)
        assert set(second) == {"munged", "slurmctld", "slurmd"}
        assert not set(second.values()) & set(main_pids.values())
        conf = state / "etc" / "slurm.conf"
        job_env = {**os.environ, "SLURM_CONF": str(conf)}
        job = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path / 'o.out'}", "--wrap",
                              "echo second-cluster"], capture_output=True, text=True, check=True,
                             env=job_env, timeout=30).stdout.strip()
        deadline = time.monotonic() + 60
        while not (tmp_path / "o.out").exists() or "second-cluster" not in (
                tmp_path / "o.out").read_text():
            assert time.monotonic() < deadline, f"job {job} on the second cluster did not run"
            time.sleep(0.3)

        down = run_script("down", env={**env, "HAWKEYE_SLURM_PURGE": "1"})
        assert down.returncode == 0, down.stderr
        assert not any(alive(pid) for pid in second.values())
        assert not state.exists()
        assert all(alive(pid) for pid in main_pids.values())  # the session's cluster still runs
        assert run_script("status").returncode == 0
    finally:
        if state.exists():
            run_script("down", env={**env, "HAWKEYE_SLURM_PURGE": "1"})
