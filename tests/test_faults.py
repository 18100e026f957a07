"""Issue 12's fault corpus: the bad inputs and faults that once lost data, crashed or left orphans.

Each test reproduces one case on tiny generated data and asserts the clear message or the intact
data. Read-only, no-permission and full-disk cases need root (a tiny tmpfs, a process with another
uid); without root they are skipped with the reason. The plain-sbatch pipeline runs end to end on
the local Slurm cluster (marked ``slurm``; tests/conftest.py's ``slurm_cluster`` fixture).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import submitit
import torch
from conftest import REPO, tapping_store, tiny_model
from omegaconf import OmegaConf

from hawkeye.collect import collect
from hawkeye.config import compose
from hawkeye.export import ONNX_NAME, export_run
from hawkeye.export import main as export_main
from hawkeye.io import write_json_atomic, write_npz_deterministic
from hawkeye.predict import PredictError, load_ensemble, run_predict
from hawkeye.prepare.__main__ import main as prepare_main
from hawkeye.prepare.pipeline import prepare
from hawkeye.prepare.qc import OK, qc_paths, read_qc_csv
from hawkeye.sbatch import job_parameters, sbatch_options
from hawkeye.store import StoreError, load_store, write_sequences
from hawkeye.store_cli import main as store_main
from hawkeye.synthetic import generate_dataset
from hawkeye.synthetic_config import load_synthetic_config
from hawkeye.telemetry.__main__ import main as telemetry_main
from hawkeye.train import TrainTask, train

PYTHON = sys.executable
TASK_DIR = "Finger tapping"
SMALL = ["prepare.landmark_source=precomputed", "prepare.workers=1", "prepare.qc.overview=false"]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mounts a tiny tmpfs or "
                               "runs a process as another user (run the suite as root to cover it)")


# ----------------------------------------------------------------------------------------------
# shared pieces


@pytest.fixture(scope="module")
def pd4t_run(tmp_path_factory) -> dict:
    """Synthetic PD4T (36 subjects) -> store -> 2 tiny TCN folds, each exported by training."""
    root = tmp_path_factory.mktemp("pd4t_run")
    data = root / "PD4T"
    generate_dataset(data, load_synthetic_config(["n_subjects=36", "visits_min=1", "visits_max=1",
        "min_frames=70", "max_frames=90"]))
    training = [f"data_root={data}", f"paths.store={root / 'store.h5'}", *SMALL, "cv.n_folds=2",
                "train.epochs=2", "train.num_threads=1", "model=tcn", "model.channels=[8,8]"]
    cfg = compose([*training, f"run_dir={root / 'run'}"])
    assert prepare(cfg.data_root, cfg.paths.store, cfg.task, cfg.prepare).exit_code == 0
    for fold in (0, 1):
        train(compose([*training, f"run_dir={root / 'run'}", f"fold={fold}"]))
    write_json_atomic(root / "run" / "run.json", {"models": ["tcn"], "n_folds": 2})
    return {"root": root, "data": data, "run_dir": root / "run", "cfg": cfg,
            "training": training}


def copy_run(pd4t_run: dict, tmp_path: Path) -> Path:
    """A copy of the trained run that a test may damage."""
    return Path(shutil.copytree(pd4t_run["run_dir"], tmp_path / "run"))


def landmark_files(root: Path) -> list[Path]:
    return sorted((root / "Videos" / TASK_DIR).glob("*/*.landmarks.npz"))


def run_cli(main: Callable[[], None], argv: list[str], monkeypatch) -> int:
    """Run a Hydra ``main`` in this process with ``argv``; return its exit code."""
    monkeypatch.setattr(sys, "argv", ["hawkeye", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return code if isinstance(code, int) else 1


def said(capsys, caplog) -> str:
    """Everything a command printed or logged (Hydra's logging writes to stdout)."""
    captured = capsys.readouterr()
    return captured.out + captured.err + caplog.text


def prepare_argv(data: Path, store: Path, *extra: str) -> list[str]:
    return [f"data_root={data}", f"paths.store={store}", *SMALL, *extra]


def small_npz(path: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, ids=np.array([f"v{i}" for i in range(n)]), scores=np.arange(n) % 2,
             subjects=np.array([f"s{i}" for i in range(n)]),
             **{f"seq_{i}": rng.normal(size=(20, 2)).astype(np.float32) for i in range(n)})
    return path


def alive(pid: int) -> bool:
    """A live, non-zombie process (the container's init may reap orphans late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(size_kb, read_only=False)``: a tiny tmpfs mounted below ``tmp_path`` (root only)."""
    mounted = []

    def mount(size_kb: int, read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


# ----------------------------------------------------------------------------------------------
# silent: wrong or lost data with exit 0


def _write_many(store: str, prefix: str, rounds: int) -> None:
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    for k in range(rounds):
        write_sequences(store, [f"{prefix}{k}"], [rng.normal(size=(10, 2))], np.array([k % 3]),
                        [f"{prefix}s{k}"])


def test_concurrent_writers_of_one_store_lose_nothing(tmp_path) -> None:
    store = str(tmp_path / "shared.h5")
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(store, prefix, 8)) for prefix in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    assert sorted(load_store(store).ids.tolist()) == sorted(f"{p}{k}" for p in "ab"
                                                            for k in range(8))


def test_a_second_prepare_into_a_busy_store_refuses_and_loses_nothing(small_pd4t, tmp_path,
                                                                        monkeypatch,
                                                                     capsys, caplog) -> None:
    store = tmp_path / "store.h5"
    assert run_cli(prepare_main, prepare_argv(small_pd4t, store), monkeypatch) == 0
    before = sorted(load_store(store).ids.tolist())
    holder = subprocess.Popen(  # the first preparation, still running
        [PYTHON, "-c", "import sys, time\nfrom hawkeye.faults import store_lock\n"
         "with store_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n",
         str(store)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        other = tmp_path / "other"
        generate_dataset(other, load_synthetic_config(["n_subjects=3", "visits_min=1",
            "visits_max=1", "seed=5", "min_frames=40", "max_frames=50"]))
        assert run_cli(prepare_main, prepare_argv(other, store), monkeypatch) == 2
    finally:
        holder.kill()
        holder.wait()
    text = said(capsys, caplog)
    assert f"pid {holder.pid}" in text and "another writer holds this store" in text
    assert sorted(load_store(store).ids.tolist()) == before


def test_a_kill_during_the_onnx_export_leaves_the_fold_unfinished(pd4t_run, tmp_path) -> None:
    run_dir = tmp_path / "run"
    fold = run_dir / "tcn" / "fold_0"
    overrides = [*pd4t_run["training"], f"run_dir={run_dir}", "fold=0"]
    job = subprocess.Popen([PYTHON, "-m", "hawkeye.train", *overrides], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        wait_until(lambda: (fold / "metrics.json").exists() or job.poll() is not None, 120,
                   "the trained fold's metrics.json")
        job.send_signal(signal.SIGKILL)  # in the middle of the export
        job.wait()
    finally:
        job.kill()
    assert not (fold / ONNX_NAME).exists()
    assert json.loads((fold / "metrics.json").read_text())["status"] == "exporting"
    write_json_atomic(run_dir / "run.json", {"models": ["tcn"], "n_folds": 1})
    assert collect(run_dir) == 1  # not published as complete
    problem = json.loads((run_dir / "summary.json").read_text())["rows"][0]["problems"][0]
    assert "status 'exporting'" in problem["reason"]
    by_hand = Path(shutil.copytree(run_dir, tmp_path / "by_hand"))
    export_run(by_hand, compose(overrides))  # python -m hawkeye.export finishes it too
    assert json.loads((by_hand / "tcn" / "fold_0" / "metrics.json").read_text())["status"] == "ok"
    metrics = train(compose(overrides))  # the relaunch finishes the export
    assert metrics["status"] == "ok" and (fold / ONNX_NAME).exists() and "onnx_mb" in metrics


def test_predict_names_a_fold_without_its_model_and_scores_the_rest_only_if_asked(
        pd4t_run, tmp_path) -> None:
    run_dir = copy_run(pd4t_run, tmp_path)
    (run_dir / "tcn" / "fold_1" / ONNX_NAME).unlink()
    with pytest.raises(PredictError, match=r"fold_1/model.onnx: missing.*allow_missing_folds"):
        load_ensemble(run_dir, "tcn", 1)
    ensemble = load_ensemble(run_dir, "tcn", 1, allow_missing_folds=True)
    assert [f.fold for f in ensemble.folds] == [0] and "fold_1" in ensemble.left_out[0]
    shutil.rmtree(run_dir / "tcn" / "fold_1")  # a fold run.json expects that never ran
    with pytest.raises(PredictError, match=r"fold_1: missing \(run.json expects 2 folds\)"):
        load_ensemble(run_dir, "tcn", 1)


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_predict_reports_a_damaged_model_onnx(pd4t_run, tmp_path, damage) -> None:
    run_dir = copy_run(pd4t_run, tmp_path)
    path = run_dir / "tcn" / "fold_0" / ONNX_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncated"
                     else np.random.default_rng(0).bytes(4096))
    with pytest.raises(PredictError, match=r"fold_0/model.onnx: not a readable ONNX model"):
        load_ensemble(run_dir, "tcn", 1)
    ensemble = load_ensemble(run_dir, "tcn", 1, allow_missing_folds=True)
    assert [f.fold for f in ensemble.folds] == [1]


def test_a_broken_symlink_in_a_folder_of_inputs_gets_a_failed_row(pd4t_run, tmp_path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    good = landmark_files(pd4t_run["data"])[0]
    shutil.copy(good, inputs / good.name)
    (inputs / "gone_l.landmarks.npz").symlink_to(tmp_path / "nowhere.landmarks.npz")
    cfg = pd4t_run["cfg"]
    result = run_predict(inputs, pd4t_run["run_dir"], "tcn", cfg.prepare, tmp_path / "out")
    rows = {p.input.path.name: p for p in result.predictions}
    assert rows[good.name].status == "ok"
    assert rows["gone_l.landmarks.npz"].status == "failed"
    assert "broken symbolic link" in rows["gone_l.landmarks.npz"].reason


def test_an_implausible_frame_rate_is_flagged_in_the_qc(small_pd4t, tmp_path, caplog) -> None:
    data = Path(shutil.copytree(small_pd4t, tmp_path / "PD4T"))
    bad = landmark_files(data)[0]
    with np.load(bad) as arrays:
        write_npz_deterministic(bad, {**{k: arrays[k] for k in arrays.files}, "fps": 1e6})
    cfg = compose(prepare_argv(data, tmp_path / "store.h5"))
    report = prepare(cfg.data_root, cfg.paths.store, cfg.task, cfg.prepare)
    video_id = f"{bad.name.split('.')[0]}_{bad.parent.name}"
    row = next(r for r in read_qc_csv(report.qc_csv) if r.id == video_id)
    problem = f"{bad}: the landmark file's 1e+06 fps is implausible"
    assert row.status != OK and problem in row.reason
    assert problem in qc_paths(report.store)["md"].read_text()
    assert problem in caplog.text  # on the console too


# ----------------------------------------------------------------------------------------------
# crashes -> messages


@ROOT_ONLY
def test_prepare_and_store_write_into_a_read_only_folder(small_pd4t, tmp_path, tmpfs, monkeypatch,
                                                         caplog, capsys) -> None:
    folder = tmpfs(64, read_only=True)
    assert run_cli(prepare_main, prepare_argv(small_pd4t, folder / "s.h5"), monkeypatch) == 2
    text = said(capsys, caplog)
    assert "file system is read-only" in text and str(folder) in text
    assert store_main(["write", str(small_npz(tmp_path / "x.npz")), str(folder / "s.h5")]) == 2
    assert "file system is read-only" in capsys.readouterr().err


@ROOT_ONLY
@pytest.mark.parametrize("command", ["prepare", "store"])
def test_writing_into_a_folder_without_permission(small_pd4t, command) -> None:
    shared = Path(tempfile.mkdtemp(prefix="hawkeye-noperm-"))  # pytest's tmp root is 0700
    try:
        shared.chmod(0o755)
        data = Path(shutil.copytree(small_pd4t, shared / "PD4T"))
        folder = shared / "locked"
        folder.mkdir(mode=0o755)  # root's folder: the user `nobody` may read it, not write
        npz = small_npz(shared / "x.npz")
        argv = (["-m", "hawkeye.prepare", *prepare_argv(data, folder / "s.h5")]
                if command == "prepare" else ["-m", "hawkeye.store", "write", str(npz),
                                              str(folder / "s.h5")])
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               PYTHON, *argv], capture_output=True, text=True, cwd=REPO,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(REPO),
                                                "HOME": str(shared), "MPLCONFIGDIR": str(shared)})
    finally:
        shutil.rmtree(shared)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "no permission" in said and "Traceback" not in said


@ROOT_ONLY
def test_a_full_disk_is_a_message_and_the_previous_store_survives(small_pd4t, tmp_path, tmpfs,
                                                                  monkeypatch, caplog,
                                                                  capsys) -> None:
    folder = tmpfs(256)
    store = folder / "s.h5"
    write_sequences(store, ["a"], [np.zeros((5, 2))], np.array([0]), ["s"])
    (folder / "filler").write_bytes(b"\0" * (shutil.disk_usage(folder).free - 8192))
    assert store_main(["write", str(small_npz(tmp_path / "x.npz", n=40)), str(store)]) == 2
    assert "disk is full" in capsys.readouterr().err
    assert load_store(store).ids.tolist() == ["a"]
    # prepare checks the free space before decoding anything (hawkeye/prepare/checks.py)
    assert run_cli(prepare_main, prepare_argv(small_pd4t, folder / "p.h5"), monkeypatch) == 2
    assert "nothing was decoded" in (text := said(capsys, caplog)) and "MiB free" in text
    assert not (folder / "p.h5").exists()


class _Payload:
    """What a tampered checkpoint hides: unpickling it would run a command."""

    def __reduce__(self):
        return (os.system, ("echo tampered",))


def test_export_force_refuses_a_tampered_checkpoint_with_a_message(pd4t_run, tmp_path,
                                                                  monkeypatch, capsys) -> None:
    run_dir = copy_run(pd4t_run, tmp_path)
    best = run_dir / "tcn" / "fold_0" / "best.pt"
    torch.save({**torch.load(best, weights_only=True), "model": _Payload()}, best)
    code = run_cli(export_main, [f"run_dir={run_dir}", "export.force=true"], monkeypatch)
    out = capsys.readouterr().out
    assert code == 1 and "failed" in out and "best.pt: refused to load" in out


# ----------------------------------------------------------------------------------------------
# unclear messages


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_an_annotation_file_not_in_utf8_is_named(small_pd4t, tmp_path, monkeypatch, capsys, caplog,
                                                 encoding) -> None:
    data = Path(shutil.copytree(small_pd4t, tmp_path / "PD4T"))
    annotation = next((data / "Annotations_split" / TASK_DIR).glob("*.csv"))
    annotation.write_bytes((annotation.read_text() + "Ré_l_001,50,1\n").encode(encoding))
    assert run_cli(prepare_main, prepare_argv(data, tmp_path / "s.h5"), monkeypatch) == 2
    text = said(capsys, caplog)
    assert str(annotation) in text and "save it as UTF-8" in text


def test_random_bytes_as_telemetry_csv_name_the_file(tmp_path, capsys) -> None:
    csv = tmp_path / "drives.csv"
    csv.write_bytes(np.random.default_rng(1).bytes(2048))
    assert telemetry_main(["import", "task=telemetry", f"task.csv={csv}",
                           f"paths.store={tmp_path / 't.h5'}"]) == 2
    err = capsys.readouterr().err
    assert str(csv) in err and "UTF-8" in err


def test_a_schema_version_that_is_not_a_number_is_named(tmp_path) -> None:
    import h5py

    store = tapping_store(tmp_path / "s.h5", n_subjects=2, videos_per_subject=1, test_subjects=0)
    with h5py.File(store, "a") as handle:
        handle.attrs["schema_version"] = "one"
    with pytest.raises(StoreError, match=r"s.h5: 'schema_version' attribute is 'one'"):
        load_store(store)


def test_store_write_of_zero_sequences_says_so(tmp_path, capsys) -> None:
    npz = tmp_path / "empty.npz"
    np.savez(npz, ids=np.array([], dtype=str), scores=np.array([], dtype=int),
             subjects=np.array([], dtype=str), sequences=np.zeros((0, 2), np.float32),
             lengths=np.array([], dtype=int))
    assert store_main(["write", str(npz), str(tmp_path / "s.h5")]) == 2
    assert "holds no sequences" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


# ----------------------------------------------------------------------------------------------
# orphans and leftovers


POOL_SCRIPT = """
import concurrent.futures, multiprocessing, sys, time
from hawkeye.config import compose
from hawkeye.prepare.worker import PrepareSettings, init_worker
cfg = compose(sys.argv[1:])
settings = PrepareSettings.from_config(cfg.prepare, None)
pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"),
                                              initializer=init_worker, initargs=(settings,))
futures = [pool.submit(time.sleep, 120) for _ in range(2)]
time.sleep(1)
print("working", flush=True)
time.sleep(120)
"""


def test_prepare_workers_die_with_a_killed_prepare() -> None:
    workers: list[int] = []
    parent = subprocess.Popen([PYTHON, "-c", POOL_SCRIPT, *SMALL], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert parent.stdout.readline().strip() == "working"
        workers = children(parent.pid)
        assert len(workers) == 2 and all(alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_until(lambda: not any(alive(p) for p in workers), 20, "the workers to die")
    finally:
        parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_trainer_dies_with_the_local_job_id_launch_prints(tmp_path) -> None:
    store = tapping_store(tmp_path / "s.h5", n_subjects=10)
    cfg = compose([*tiny_model("attention_lstm"), f"paths.store={store}",
                   f"run_dir={tmp_path / 'run'}", "fold=0", "cv.n_folds=2", "train.epochs=100000",
                   "train.patience=100000", "train.num_threads=1", "export.onnx=false"])
    executor = submitit.LocalExecutor(folder=tmp_path / "logs")
    executor.update_parameters(timeout_min=10)
    job = executor.submit(TrainTask(), OmegaConf.to_container(cfg, resolve=True))
    controller = int(job.job_id)  # what launch prints for launcher=local
    trainer = None
    try:
        wait_until(lambda: (tmp_path / "run" / "attention_lstm" / "fold_0" / "last.pt").exists(),
                   120, "the trainer's first checkpoint")
        trainer = children(controller)[0]
        os.kill(controller, signal.SIGKILL)
        wait_until(lambda: not alive(trainer), 20, "the trainer to die with its job")
    finally:
        for pid in (controller, trainer):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_leftover_temporary_files_of_killed_writers_are_removed(tmp_path) -> None:
    host = socket.gethostname().split(".")[0]
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = ended.pid  # a writer that is gone
    killed = tmp_path / f".metrics.json.{host}.{dead}.abc123.tmp"
    living = tmp_path / f".metrics.json.{host}.{os.getppid()}.def456.tmp"  # a live writer's
    other_host = tmp_path / ".metrics.json.elsewhere.1.ghi789.tmp"
    for path in (killed, living, other_host):
        path.write_text("half")
    write_json_atomic(tmp_path / "metrics.json", {"status": "ok"})
    assert not killed.exists() and living.exists() and other_host.exists()
    # a store's writer holds its lock: every earlier temporary file of that store is a dead one's
    store_tmp = tmp_path / ".s.h5.elsewhere.1.x.tmp"
    store_tmp.write_text("half")
    write_sequences(tmp_path / "s.h5", ["a"], [np.zeros((4, 2))], np.array([0]), ["s"])
    assert not store_tmp.exists()


# ----------------------------------------------------------------------------------------------
# the plain-sbatch path


def test_sbatch_resources_come_from_the_launcher_config() -> None:
    cpu = compose(["launcher=slurm"]).launcher
    v100 = compose(["launcher=slurm_v100"]).launcher
    cpu_options = sbatch_options(job_parameters(cpu, "train"))
    assert not [o for o in cpu_options if o.startswith(("--gres", "--mem"))]
    assert f"--cpus-per-task={cpu.parameters.cpus_per_task}" in cpu_options
    v100_options = sbatch_options(job_parameters(v100, "train"))
    assert {"--gres=gpu:v100:1", "--mem=32GB", "--cpus-per-task=8"} <= set(v100_options)
    collector = sbatch_options(job_parameters(v100, "collect"), signal=False)
    assert "--gres=gpu:v100:1" not in collector and not any("USR2" in o for o in collector)


def fake_slurm(bin_dir: Path, log: Path, reject: str = "") -> dict[str, str]:
    """``sbatch``/``scancel`` stand-ins that record their arguments; sbatch refuses a script
    whose name contains ``reject``."""
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\n"
        f'echo "sbatch HAWKEYE_OVERRIDES=[$HAWKEYE_OVERRIDES] $*" >> {log}\n'
        f'if [ -n "{reject}" ] && [[ "$*" == *{reject or "-"}* ]]; then\n'
        '  echo "sbatch: error: Invalid generic resource (gres) specification" >&2; exit 1\nfi\n'
        "echo $((RANDOM + 100))\n")
    (bin_dir / "scancel").write_text(f'#!/bin/bash\necho "scancel $*" >> {log}\n')
    for tool in ("sbatch", "scancel"):
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_prepare_sbatch_gives_the_shards_the_overrides_once(tmp_path) -> None:
    log = tmp_path / "calls.log"
    env = {**fake_slurm(tmp_path / "bin", log), "HAWKEYE_OVERRIDES": "+experiment=demo",
           "HAWKEYE_PREPARE_SHARDS": "2", "HAWKEYE_PREPARE_LOGS": str(tmp_path)}
    env.pop("SLURM_JOB_ID", None)
    subprocess.run(["bash", "jobs/prepare.sbatch", "prepare.workers=1"], cwd=REPO, env=env,
                   check=True, capture_output=True, timeout=60)
    shard_call = log.read_text().splitlines()[0]
    assert shard_call.count("+experiment=demo") == 1  # the environment's copy, never an argument
    shard = subprocess.run(  # the shard task itself: HAWKEYE_PYTHON=echo prints its command
        ["bash", "jobs/prepare.sbatch", "prepare.workers=1"], cwd=REPO, capture_output=True,
        text=True, check=True, timeout=60,
        env={**env, "HAWKEYE_PREPARE_STEP": "shard", "SLURM_ARRAY_TASK_ID": "0",
             "HAWKEYE_PYTHON": "echo"})
    assert shard.stdout.count("+experiment=demo") == 1


def test_pipeline_cancels_what_it_submitted_when_a_stage_is_rejected(tmp_path) -> None:
    log = tmp_path / "calls.log"
    env = fake_slurm(tmp_path / "bin", log, reject="train_array")
    done = subprocess.run(["bash", "jobs/pipeline.sh", "--run-dir", str(tmp_path / "run"),
                           "--launcher", "slurm_v100", "--models", "tcn", "--folds", "2",
                           "paths.store=data/x.h5", "model.channels=[8,8]"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "sbatch rejected the training array job" in done.stderr
    prepare_id = done.stdout.split("prepare job: ")[1].split()[0]
    assert f"scancel {prepare_id}" in log.read_text()
    prepare_call, train_call = log.read_text().splitlines()[:2]
    assert "--gres=gpu:v100:1" in train_call  # sized by conf/launcher/slurm_v100.yaml
    assert "[paths.store=data/x.h5 model.channels=[8,8]]" in train_call
    assert "[paths.store=data/x.h5]" in prepare_call  # a model key is no prepare override


def test_the_collector_names_a_cancelled_pending_array_task(pd4t_run, tmp_path,
                                                            monkeypatch) -> None:
    run_dir = copy_run(pd4t_run, tmp_path)
    shutil.rmtree(run_dir / "tcn" / "fold_1")  # the array task was cancelled while pending
    write_json_atomic(run_dir / "run.json", {"models": ["tcn"], "n_folds": 2,
                                             "launcher": "jobs/pipeline.sh", "log_dir": "logs",
                                             "jobs": {"tcn/fold_0": "77_0", "tcn/fold_1": "77_1"}})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sacct").write_text("#!/bin/bash\necho 'JobID|State|NodeList'\n"
                                   "echo '77_0|COMPLETED|n1'\necho '77_1|CANCELLED by 0|None'\n")
    (bin_dir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert collect(run_dir) == 1
    reason = json.loads((run_dir / "summary.json").read_text())["rows"][0]["problems"][0]["reason"]
    assert "Slurm job 77_1: CANCELLED, no log (the task never started)" in reason


@pytest.mark.slurm
def test_pipeline_runs_end_to_end_on_the_local_cluster(slurm_cluster, tmp_path) -> None:
    """prepare (2 shards) -> 1 model x 2 folds -> collect, on the CPU partition, with --wait;
    then a prepare that fails stops the rest with a message."""
    data = tmp_path / "PD4T"
    generate_dataset(data, load_synthetic_config(["n_subjects=36", "visits_min=1", "visits_max=1",
        "min_frames=60", "max_frames=80"]))
    store = tmp_path / "store.h5"
    env = {**os.environ, "HAWKEYE_PREPARE_SHARDS": "2", "HAWKEYE_PREPARE_CPUS": "1",
           "HAWKEYE_PREPARE_MEM": "1G", "HAWKEYE_PREPARE_TIME": "00:10:00",
           "HAWKEYE_PYTHON": PYTHON, "PYTHONPATH": str(REPO)}
    common = ["--launcher", "slurm", "--models", "tcn", "--folds", "2", "--sbatch", "--mem=1G",
              "--wait", "launcher.parameters.cpus_per_task=1", "launcher.parameters.time=10",
              f"paths.store={store}", *SMALL, "train.epochs=2", "train.num_threads=1",
              "model.channels=[8,8]", "cv.n_folds=2",
              "export.onnx=false", "collect.figures=false", "collect.n_boot=50"]
    done = subprocess.run(["bash", "jobs/pipeline.sh", "--run-dir", str(tmp_path / "run"),
                           *common, f"data_root={data}"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tcn" in done.stdout and load_store(store).ids.size == 72
    failed = subprocess.run(["bash", "jobs/pipeline.sh", "--run-dir", str(tmp_path / "bad"),
                             *common, f"data_root={tmp_path / 'no_such_root'}"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=400)
    assert failed.returncode == 1
    assert "prepare job" in failed.stderr and "training and collection did not run" in failed.stderr
