"""``python -m hawkeye.prepare launcher=...``: the sharded preparation submitted as one job array
plus a merge job that runs only after every shard succeeded (hawkeye/prepare/submit.py).

The same tiny demo dataset (`small_pd4t`: 4 subjects x 2 hands, precomputed landmarks) goes through
submitit's debug executor (in this process) and through the real local Slurm cluster; either way
the merged store must equal a plain in-process run, and a failed shard must leave no merged store
and be named."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hawkeye.prepare.submit as ps
from hawkeye.cluster import executor_parameters
from hawkeye.config import compose
from hawkeye.prepare.pipeline import prepare_from_config, shard_path
from hawkeye.prepare.qc import qc_paths, read_qc_csv
from hawkeye.store import load_store

REPO = Path(__file__).resolve().parents[1]
TASK_DIR = "Finger tapping"
# Tiny jobs: one worker each, no overview figure; on Slurm one CPU and a short time limit.
SMALL = ["prepare.landmark_source=precomputed", "prepare.workers=1", "prepare.qc.overview=false"]
SLURM = ["launcher=slurm", "prepare.jobs.shard.cpus_per_task=1", "prepare.jobs.shard.time=10",
         "prepare.jobs.merge.time=10"]


def configure(root: Path, store: Path, *overrides: str):
    return compose([f"data_root={root}", f"paths.store={store}", *SMALL, *overrides])


@pytest.fixture(scope="module")
def local_store(small_pd4t, tmp_path_factory) -> Path:
    """The reference: the same data prepared in this process, no shards (launcher=local)."""
    store = tmp_path_factory.mktemp("local") / "local.h5"
    assert prepare_from_config(configure(small_pd4t, store)).exit_code == 0
    return store


def assert_same_store(a: Path, b: Path) -> None:
    x, y = load_store(a), load_store(b)
    for name in ("ids", "subjects", "hands", "splits", "scores", "fps", "lengths", "offsets",
                 "source_hashes", "series", "summary", "landmarks", "presence"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    assert (x.series_names, x.summary_names) == (y.series_names, y.summary_names)
    assert x.attrs == y.attrs  # how a store was made (shards, submit, jobs) is not recorded
    assert sorted(r.id for r in read_qc_csv(qc_paths(a)["csv"])) == sorted(
        r.id for r in read_qc_csv(qc_paths(b)["csv"]))


def landmark_file(root: Path, video_id: str) -> Path:
    visit, hand, subject = video_id.rsplit("_", 2)
    return root / "Videos" / TASK_DIR / subject / f"{visit}_{hand}.landmarks.npz"


# ------------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("overrides, env, expected", [
    ([], {}, False),                                              # make prepare: runs here
    (["launcher=slurm"], {}, True),
    (["launcher=slurm_v100"], {}, True),
    (["launcher=debug"], {}, True),
    (["launcher=slurm"], {"SLURM_JOB_ID": "7"}, False),           # a step of jobs/prepare.sbatch
    (["launcher=slurm", "prepare.merge=true"], {}, False),        # the merge step itself
    (["launcher=slurm", "prepare.submit=false"], {}, False),
    (["prepare.submit=true"], {}, True),
    (["launcher=slurm", "prepare.submit=true"], {"SLURM_JOB_ID": "7"}, True),
])
def test_when_a_run_is_submitted(monkeypatch, overrides, env, expected):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert ps.should_submit(compose(overrides)) is expected


def test_shard_and_merge_jobs_get_no_gpu_and_their_own_resources():
    cfg = compose(["launcher=slurm_v100", "launcher.parameters.partition=gpu",
                   "prepare.jobs.shard.cpus_per_task=6"])
    shard = executor_parameters(cfg.launcher, cfg.prepare.jobs.shard)
    merge = executor_parameters(cfg.launcher, cfg.prepare.jobs.merge)
    assert "gres" in executor_parameters(cfg.launcher)  # training asks for a V100 ...
    assert "gres" not in shard and "gres" not in merge  # ... preparation does not
    assert shard["partition"] == merge["partition"] == "gpu"  # the launcher's settings stay
    assert (shard["cpus_per_task"], shard["job_name"]) == (6, "hawkeye-prepare-shard")
    assert (merge["cpus_per_task"], merge["job_name"]) == (1, "hawkeye-prepare-merge")
    assert shard["time"] == cfg.prepare.jobs.shard.time


@pytest.mark.parametrize("overrides, error, match", [
    (["launcher=local", "prepare.submit=true"], ValueError, "cannot hold the merge back"),
    (["launcher=debug", "prepare.shard_index=1", "prepare.num_shards=2"], ValueError,
     "sets the shard of each array task"),
    (["launcher=debug", "prepare.submit=true", "prepare.merge=true"], ValueError,
     "merge step itself"),
    (["launcher=debug", "prepare.landmark_source=openpose"], ValueError, "landmark_source"),
])
def test_refused_before_anything_is_submitted(small_pd4t, tmp_path, overrides, error, match):
    store = tmp_path / "s.h5"
    with pytest.raises(error, match=match):
        ps.submit_prepare(configure(small_pd4t, store, *overrides))
    assert not ps.log_dir_for(store).exists()


def test_missing_data_root_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ps.submit_prepare(configure(tmp_path / "nowhere", tmp_path / "s.h5", "launcher=debug"))


# ------------------------------------------------------------------------------- debug executor


def test_command_line_with_debug_launcher_equals_a_local_run(small_pd4t, local_store, tmp_path):
    """The whole path through `python -m hawkeye.prepare`: 3 shards and the merge run in that
    process (submitit's DebugExecutor); the store equals the in-process run's."""
    store = tmp_path / "debug.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "hawkeye.prepare", "launcher=debug", "prepare.num_shards=3",
         f"data_root={small_pd4t}", f"paths.store={store}", *SMALL],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "as 3 shard(s)" in proc.stdout and f"store: {store}" in proc.stdout
    assert all(shard_path(store, k, 3).exists() for k in range(3))
    assert_same_store(local_store, store)


def test_one_shard_is_one_job_writing_the_store_itself(small_pd4t, local_store, tmp_path, capsys):
    store = tmp_path / "one.h5"
    sub = ps.submit_prepare(configure(small_pd4t, store, "launcher=debug"))
    assert len(sub.shards) == 1 and sub.merge is None
    assert ps.wait(sub) == 0
    assert f"store: {store}" in capsys.readouterr().out
    assert not shard_path(store, 0, 1).exists()
    assert_same_store(local_store, store)


def test_failed_shard_leaves_no_merged_store_and_is_named(small_pd4t, tmp_path, capsys):
    """prepare.strict=true and one missing landmark file: that video's shard fails, the other
    shard is stored, the merge does not run, the output names the shard and why."""
    root = tmp_path / "PD4T"
    shutil.copytree(small_pd4t, root)
    ids = sorted(f"{p.name.split('.')[0]}_{p.parent.name}" for p in root.rglob("*.landmarks.npz"))
    assert len(ids) == 8
    landmark_file(root, ids[3]).unlink()  # shards take every 2nd sorted id: id 3 is in shard 1
    store = tmp_path / "strict.h5"
    code = ps.submit_from_config(configure(root, store, "launcher=debug", "prepare.num_shards=2",
                                           "prepare.strict=true"))
    out = capsys.readouterr().out
    assert code == 1
    assert not store.exists() and not qc_paths(store)["csv"].exists()
    assert shard_path(store, 0, 2).exists()  # the good shard is kept: a rerun resumes from it
    assert "1 of 2 shard(s) failed; no merged store written" in out
    assert "shard 1: PrepareJobError: shard 1: prepare.strict=true and 1 row(s) were skipped" in out


# ------------------------------------------------------------------------------- real Slurm


def _sbatch_lines(log_dir: Path, job_id: str) -> list[str]:
    script = log_dir / f"{job_id}_submission.sh"
    return [ln for ln in script.read_text().splitlines() if ln.startswith("#SBATCH")]


def _final_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.strip()


@pytest.mark.slurm
def test_slurm_command_line_array_and_afterok_merge_equal_a_local_run(slurm_cluster, small_pd4t,
                                                                      local_store, tmp_path):
    """`python -m hawkeye.prepare launcher=slurm prepare.num_shards=3 launch.wait=true` on the
    local cluster: one 3-task array, a merge job with afterok on it, the local run's store."""
    store = tmp_path / "slurm.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "hawkeye.prepare", *SLURM, "prepare.num_shards=3",
         "launch.wait=true", f"data_root={small_pd4t}", f"paths.store={store}", *SMALL],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(ln.split(": ", 1) for ln in proc.stdout.splitlines() if ": " in ln)
    array_id = lines["shard array"].split()[0]
    merge_id = lines["merge job"].split()[0]
    assert lines["watch"] == f"squeue -j {array_id},{merge_id}"
    log_dir = ps.log_dir_for(store)
    assert lines["logs"].startswith(str(log_dir))
    shard_lines = _sbatch_lines(log_dir, array_id)
    assert "#SBATCH --array=0-2%3" in shard_lines  # one array of 3 tasks
    assert "#SBATCH --job-name=hawkeye-prepare-shard" in shard_lines
    assert f"#SBATCH --dependency=afterok:{array_id}" in _sbatch_lines(log_dir, merge_id)
    assert _final_state(merge_id) == "COMPLETED"
    assert_same_store(local_store, store)


@pytest.mark.slurm
def test_slurm_failed_shard_cancels_the_merge_and_is_named(slurm_cluster, small_pd4t, tmp_path,
                                                           capsys):
    """Shard 1's output file is corrupt (not HDF5), so that array task fails: Slurm never starts
    the afterok merge, no merged store appears, and waiting names the shard, error and log."""
    store = tmp_path / "broken.h5"
    shard_path(store, 1, 2).write_bytes(b"not an HDF5 file")
    sub = ps.submit_prepare(configure(small_pd4t, store, *SLURM, "prepare.num_shards=2"))
    assert sub.merge is not None and len(sub.arrays) == 1
    code = ps.wait(sub, poll_s=0.5)
    out = capsys.readouterr().out
    assert code == 1
    assert not store.exists() and not qc_paths(store)["csv"].exists()
    assert shard_path(store, 0, 2).exists()
    assert _final_state(str(sub.merge.job_id)) == "CANCELLED"
    failed = sub.shards[1]
    assert "shard 1: hawkeye.store.StoreError: " in out and "broken.shard-1-of-2.h5" in out
    assert f"(job {failed.job_id}, log {failed.paths.stderr})" in out
    assert failed.paths.stderr.exists() and "shard 0" not in out
