"""Shared pytest fixtures. Each section belongs to the module that needs it; keep edits additive."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig

from hawkeye.config import compose
from hawkeye.metrics import anomaly_metrics, score_metrics
from hawkeye.store import write_sequences
from hawkeye.synthetic import aperture_trace, draw_style, generate_dataset, tapping_params
from hawkeye.synthetic_config import load_synthetic_config

REPO = Path(__file__).resolve().parents[1]
# The demo generator's easy variant (learnable in a few epochs), each trial exactly at its score.
TAPPING = load_synthetic_config(["synthetic=easy", "kinematics.severity_sd=0"])

# ----------------------------------------------------------------------------------------------
# Tiny models: the real conf/model/*.yaml composed with these overrides (seconds per training run
# on 2 CPU cores). The one table every test that builds, trains or exports a model uses.

TINY_MODELS: dict[str, list[str]] = {
    "attention_lstm": ["model.hidden=16", "model.attention_dim=16", "model.num_layers=1"],
    "conv_lstm": ["model.hidden=16", "model.conv_channels=[16]", "model.num_layers=1"],
    "transformer": [
        "model.d_model=16",
        "model.num_heads=2",
        "model.num_layers=1",
        "model.dim_feedforward=32",
    ],
    "tcn": ["model.channels=[16,16]"],
    "lstm_ae": ["model.hidden=16", "model.latent_dim=4", "model.num_layers=1"],
    "gbm": ["model.max_iter=20", "model.min_samples_leaf=3"],
    "minirocket": ["model.n_kernels=168", "model.max_dilations_per_kernel=4"],
}


@pytest.fixture(scope="session")
def small_pd4t(tmp_path_factory) -> Path:
    """A tiny PD4T root: 4 subjects, one visit, both hands = 8 trials of 40-60 frames with
    precomputed landmark files (no videos). Shared by the session: copy it before changing it."""
    root = tmp_path_factory.mktemp("demo") / "PD4T"
    generate_dataset(root, load_synthetic_config(["n_subjects=4", "visits_min=1", "visits_max=1",
                                                  "min_frames=40", "max_frames=60"]))
    return root


def tiny_model(model: str) -> list[str]:
    """``model=<model>`` and the overrides that make it tiny."""
    return [f"model={model}", *TINY_MODELS[model]]


@pytest.fixture
def tiny_config() -> Callable[..., DictConfig]:
    """``tiny_config(model, *overrides)``: the real composed config with a tiny ``model``."""
    def make(model: str = "attention_lstm", *overrides: str) -> DictConfig:
        return compose([*tiny_model(model), *overrides])
    return make


# ----------------------------------------------------------------------------------------------
# The store builder: PD4T-like tapping sequences written through the real store writer

def tapping_store(
    path: Path,
    n_subjects: int = 30,
    videos_per_subject: int = 2,
    n_frames: int = 120,
    test_subjects: int = 6,
    seed: int = 0,
    scale_ids: set[str] | None = None,
) -> Path:
    """Subject ``s`` has typical severity ``s % 5`` (each video +-1 with probability 0.2); the
    first ``test_subjects`` subjects form the test split. Channels: aperture (0 = tips touch,
    1 = widest) and its velocity per second; summary: max and mean aperture, mean speed.
    ``scale_ids``: videos whose series are multiplied by 100 (to check where statistics come from).
    """
    rng = np.random.default_rng(seed)
    ids, sequences, scores, subjects, splits, summary = [], [], [], [], [], []
    for s in range(n_subjects):
        style = draw_style(rng, TAPPING.subjects)
        for v in range(videos_per_subject):
            score = int(np.clip(s % 5 + rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1]), 0, 4))
            params = tapping_params(score, style, rng, TAPPING.kinematics)
            aperture = aperture_trace(params, n_frames, 30.0, rng, TAPPING.kinematics)
            velocity = np.gradient(aperture) * 30.0
            series = np.stack([aperture, velocity], axis=1) + rng.normal(0, 0.02, (n_frames, 2))
            video_id = f"{v}_{s:03d}"
            if scale_ids and video_id in scale_ids:
                series = series * 100.0
            ids.append(video_id)
            sequences.append(series)
            scores.append(score)
            subjects.append(f"{s:03d}")
            splits.append("test" if s < test_subjects else "train")
            summary.append([aperture.max(), aperture.mean(), np.abs(velocity).mean()])
    write_sequences(
        path,
        ids,
        sequences,
        np.array(scores),
        subjects,
        splits=splits,
        fps=30.0,  # the traces are drawn at 30 fps: resampled to the task's rate like real videos
        channel_names=["aperture", "velocity"],
        summary=np.array(summary),
        summary_names=["aperture_max", "aperture_mean", "speed"],
    )
    return path


def class_store(path: Path, n_subjects: int = 30, test_subjects: int = 6, seed: int = 0) -> Path:
    """Three nominal classes a model separates: subject ``s`` has class ``s % 3`` (both of its
    two sequences); class ``c`` is a sine of ``1 + c`` cycles per second around ``c - 1`` on
    channel 0 (channel 1 its noisy copy), unequal lengths of 30-60 samples at 10 Hz. The first
    ``test_subjects`` subjects form the test split. The answer: every model gets every class."""
    rng = np.random.default_rng(seed)
    ids, sequences, labels, subjects, splits = [], [], [], [], []
    for s in range(n_subjects):
        for v in range(2):
            label, n = s % 3, int(rng.integers(30, 61))
            t = np.arange(n) / 10.0
            wave = (label - 1.0) + np.sin(2 * np.pi * (1 + label) * t + rng.uniform(0, 6.3))
            sequences.append(np.stack([wave, wave + rng.normal(0, 0.1, n)], axis=1))
            ids.append(f"{s:03d}_{v}")
            labels.append(label)
            subjects.append(f"{s:03d}")
            splits.append("test" if s < test_subjects else "train")
    write_sequences(path, ids, sequences, np.array(labels), subjects, splits=splits, fps=10.0,
                    channel_names=["wave", "noisy_wave"])
    return path


# ----------------------------------------------------------------------------------------------
# Local Slurm cluster (scripts/slurm-local.sh; used by tests marked `slurm`)
#
# `make test` runs `scripts/slurm-local.sh up` first; the script writes the environment needed to
# use the cluster to a fixed place, $HAWKEYE_SLURM_DIR/slurm.env (default /tmp/hawkeye-slurm), and,
# when it cannot start, the reason to up.error beside it. The fixture reads both: a test marked
# `slurm` runs on the real cluster or is skipped with that reason (deselect: -m "not slurm").

SLURM_DIR = Path(os.environ.get("HAWKEYE_SLURM_DIR", "/tmp/hawkeye-slurm"))
SLURM_ENV_FILE = SLURM_DIR / "slurm.env"
_SLURM_VARS = ("SLURM_CONF", "HAWKEYE_SLURM_BIN", "PATH")


@dataclass(frozen=True)
class SlurmCluster:
    """The running local cluster: the variables that select it and the env file they come from."""

    env: dict[str, str]      # SLURM_CONF, HAWKEYE_SLURM_BIN and PATH (sacct stand-in first)
    env_file: Path


def _read_slurm_env(env_file: Path) -> dict[str, str]:
    """The variables ``source env_file`` sets, read by bash itself (the file is shell)."""
    out = subprocess.run(["bash", "-c", 'set -a; source "$1"; env -0', "_", str(env_file)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    pairs = (item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k in _SLURM_VARS}


def _slurm_unavailable(env_file: Path) -> str | None:
    """Why the local cluster cannot be used, or None when its node answers."""
    if not env_file.is_file():
        error = SLURM_DIR / "up.error"
        why = error.read_text().strip() if error.is_file() else "it was not started"
        return (f"local Slurm cluster is not up ({why}); start it with `scripts/slurm-local.sh up` "
                "(make test does)")
    try:
        env = {**os.environ, **_read_slurm_env(env_file)}
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                               env=env, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"local Slurm cluster does not answer ({error}); run scripts/slurm-local.sh up"
    states = state.stdout.split()
    if state.returncode != 0 or not any(s in ("idle", "mixed", "allocated", "completing")
                                        for s in states):
        said = state.stdout.strip() or state.stderr.strip()
        return f"local Slurm node is not usable (sinfo: {said}); run scripts/slurm-local.sh up"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The local Slurm cluster, its variables set in ``os.environ`` for the session (submitit and
    the Slurm commands read them); skips with the reason when the cluster is not up."""
    reason = _slurm_unavailable(SLURM_ENV_FILE)
    if reason:
        pytest.skip(reason)
    env = _read_slurm_env(SLURM_ENV_FILE)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    yield SlurmCluster(env=env, env_file=SLURM_ENV_FILE)
    patch.undo()


# ----------------------------------------------------------------------------------------------
# PD4T layouts with real videos for any task (tests/test_pose.py): ``videos`` maps an annotation
# id to (split, RGB frames); every video is written as mp4 at ``fps`` and annotated with score 1.


def write_pd4t_videos(root: Path, task_dir: str, videos: dict[str, tuple[str, list[np.ndarray]]],
                      fps: float = 25.0) -> None:
    """``Videos/<task_dir>/<subject>/<visit>_<side>.mp4`` and ``Annotations_split/<task_dir>``."""
    from hawkeye.prepare.video import write_video

    rows: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for video_id, (split, frames) in videos.items():
        visit, side, subject = video_id.rsplit("_", 2)
        path = root / "Videos" / task_dir / subject / f"{visit}_{side}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, frames, fps=fps)
        rows[split].append(f"{video_id},{len(frames)},1\n")
    folder = root / "Annotations_split" / task_dir
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (folder / f"{split}.csv").write_text("".join(lines))

# ----------------------------------------------------------------------------------------------
# Collector run builders: run directories as hawkeye.train leaves them, with known numbers
# (tests/test_collect.py works them out by hand; tests/test_figures.py draws them).
#
# The generated run (``make_run``) has 12 CV subjects in 3 folds of 3, 4 and 5 subjects
# (6, 8 and 10 videos: 2 per subject) and a test split of 3 other subjects (6 videos):
#
# - ``alpha`` predicts the truth except for 1 video in fold 0 and 2 in fold 1, each off by one:
#   fold MAEs 1/6, 2/8, 0 (mean 0.1389), pooled MAE 3/24 = 0.125. On the test split its folds'
#   continuous outputs are truth +0.6, +0.6, -0.9: each fold alone is off by one everywhere, the
#   fold ensemble (mean truth +0.1, rounded) is exact.
# - ``beta`` is off by exactly one level on every video: MAE 1, exact 0, within-±1 1.

FOLD_SUBJECTS = (3, 4, 5)
N_LEVELS = 5
TEST_OFFSETS = {"alpha": (0.6, 0.6, -0.9), "beta": (1.2, 1.2, 1.2)}


def fold_cv_rows(model: str, fold: int) -> list[dict]:
    first = sum(FOLD_SUBJECTS[:fold])
    rows = []
    for s in range(first, first + FOLD_SUBJECTS[fold]):
        for video in range(2):
            true = (2 * s + video) % N_LEVELS
            position = len(rows)
            if model == "alpha":
                wrong = (fold == 0 and position == 0) or (fold == 1 and position < 2)
            else:
                wrong = True
            pred = (true + 1 if true < N_LEVELS - 1 else true - 1) if wrong else true
            rows.append(
                {
                    "split": "cv",
                    "id": f"S{s:02d}_v{video}",
                    "subject": f"S{s:02d}",
                    "true": true,
                    "pred": pred,
                    "raw": pred + 0.1 * (video - 0.5),
                }
            )
    return rows


def fold_test_rows(model: str, fold: int) -> list[dict]:
    rows = []
    for s in range(3):
        for video in range(2):
            true = 1 + (s + video) % 3  # 1..3: no clipping at the ends
            raw = true + TEST_OFFSETS[model][fold]
            rows.append(
                {
                    "split": "test",
                    "id": f"T{s}_v{video}",
                    "subject": f"T{s}",
                    "true": true,
                    "pred": int(np.clip(np.rint(raw), 0, N_LEVELS - 1)),
                    "raw": raw,
                }
            )
    return rows


def write_csv_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def score_of_rows(rows: list[dict]) -> dict:
    column = {k: np.array([r[k] for r in rows]) for k in ("true", "pred", "raw")}
    return score_metrics(column["true"], column["pred"], column["raw"], N_LEVELS)


def write_fold(run: Path, model: str, fold: int, cv_rows=None, test_rows=None) -> Path:
    """One finished fold as hawkeye.train writes it (docs/architecture.md, Fold outputs)."""
    out = run / model / f"fold_{fold}"
    out.mkdir(parents=True, exist_ok=True)
    cv_rows = cv_rows if cv_rows is not None else fold_cv_rows(model, fold)
    test_rows = test_rows if test_rows is not None else fold_test_rows(model, fold)
    write_csv_rows(out / "predictions.csv", cv_rows + test_rows)
    epochs = np.arange(1, 5)
    write_csv_rows(
        out / "history.csv",
        [
            {
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": 1.2 / e,
                "val_mae": 0.9 / e,
                "lr": 1e-3,
                "seconds": 0.5,
            }
            for e in epochs
        ],
    )
    metrics = {
        "model": model,
        "fold": fold,
        "status": "ok",
        "cv": score_of_rows(cv_rows),
        "test": score_of_rows(test_rows),
        "epochs_run": 4,
        "best_epoch": 3,
        "train_seconds": 10.0 + fold,
        "device": "cpu",
        "n_params": 1234,
        "n_levels": 5,
        "onnx_mb": 0.5,
    }
    (out / "metrics.json").write_text(json.dumps(metrics))
    return out


def make_run(run: Path, models=("alpha", "beta"), **run_json) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps({"models": list(models), "n_folds": 3, **run_json}))
    for model in models:
        for fold in range(3):
            write_fold(run, model, fold)
    return run


def write_anomaly_model(run: Path, model: str = "ae") -> None:
    """Two folds of an autoencoder-style model (numbers in the test below), anomaly = true >= 2."""
    folds = {0: ([0, 1, 2, 3], [0.5, 1.2, 1.5, 0.8], 1.0), 1: ([0, 3, 4, 1], [5, 15, 12, 11], 10.0)}
    for fold, (true, error, threshold) in folds.items():
        out = run / model / f"fold_{fold}"
        out.mkdir(parents=True)
        rows = [{"split": "cv", "id": f"f{fold}v{i}", "subject": f"f{fold}s{i}", "true": t,
                 "pred": int(e > threshold), "raw": e}
                for i, (t, e) in enumerate(zip(true, error, strict=True))]
        write_csv_rows(out / "predictions.csv", rows)
        write_csv_rows(out / "history.csv", [{"epoch": 1, "train_loss": 0.3, "val_loss": 0.4,
                                          "val_mae": ""}])
        cv = anomaly_metrics(np.array(true) >= 2, np.array(error, dtype=float), threshold)
        (out / "metrics.json").write_text(json.dumps({
            "model": model, "fold": fold, "status": "ok", "cv": cv, "test": {},
            "anomaly_min_score": 2, "threshold": threshold, "n_params": 99,
            "train_seconds": 1.0}))
