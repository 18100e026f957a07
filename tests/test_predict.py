"""Scoring new videos: hawkeye.prepare's per-video path, the ONNX fold ensemble, CSV and trace PNG.

The run is tiny and real: ``hawkeye.synthetic`` writes a PD4T-layout demo (landmark files only),
``hawkeye.prepare`` builds the store from them, ``hawkeye.train`` trains a small TCN on two folds
and each fold is exported. A landmark file scored by ``hawkeye.predict`` must then get, fold by
fold, exactly the score training wrote for the same video in predictions.csv.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hawkeye.cli import run_app
from hawkeye.config import compose
from hawkeye.export import ONNX_NAME, export_run, read_metadata, write_metadata
from hawkeye.io import write_npz_deterministic
from hawkeye.predict import SCORES_NAME, PredictError, main, run_predict
from hawkeye.prepare.pipeline import prepare
from hawkeye.prepare.video import moving_image_frames, write_video
from hawkeye.synthetic import generate_dataset
from hawkeye.synthetic_config import load_synthetic_config
from hawkeye.train import train

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"
N_FOLDS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """Synthetic PD4T (36 subjects, both hands, 90-120 frames) -> store -> 2 TCN folds and one
    LSTM-autoencoder fold -> ONNX."""
    root = tmp_path_factory.mktemp("predict_run")
    data = root / "PD4T"
    generate_dataset(data, load_synthetic_config(["n_subjects=36", "visits_min=1", "visits_max=1",
                                                  "min_frames=90", "max_frames=120"]))
    common = [f"data_root={data}", f"paths.store={root / 'store.h5'}",
              f"run_dir={root / 'run'}", "prepare.landmark_source=precomputed",
              "prepare.workers=1", f"cv.n_folds={N_FOLDS}", "train.epochs=2",
              "train.num_threads=1"]
    overrides = [*common, "model=tcn", "model.channels=[8,8]"]
    cfg = compose(overrides)
    report = prepare(cfg.data_root, cfg.paths.store, cfg.task, cfg.prepare)
    assert report.exit_code == 0
    for fold in range(N_FOLDS):
        train(compose([*overrides, f"fold={fold}"]))
    # The autoencoder, fold 0 only: an "ensemble" of one fold.
    train(compose([*common, "model=lstm_ae", "model.hidden=8", "model.num_layers=1",
                   "model.latent_dim=4", "fold=0"]))
    export_run(Path(cfg.run_dir), cfg)  # folds the training hook exported are skipped
    return {"root": root, "data": data, "run_dir": Path(cfg.run_dir), "cfg": cfg}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def held_out_landmarks(run) -> list[Path]:
    """Landmark files of the official test split (scored by every fold in predictions.csv)."""
    test_csv = run["data"] / "Annotations" / "Finger tapping" / "test.csv"
    files = []
    for line in test_csv.read_text().splitlines():
        video_id = line.split(",")[0]
        visit_hand, subject = video_id.rsplit("_", 1)
        files.append(run["data"] / "Videos" / "Finger tapping" / subject
                     / f"{visit_hand}.landmarks.npz")
    return files


def training_scores(run: dict, video_id: str) -> dict[int, float]:
    """{fold: expected score} that training wrote for ``video_id`` in the test split."""
    scores = {}
    for fold in range(N_FOLDS):
        rows = read_csv(run["run_dir"] / "tcn" / f"fold_{fold}" / "predictions.csv")
        scores[fold] = next(float(r["raw"]) for r in rows
                            if r["split"] == "test" and r["id"] == video_id)
    return scores


def predict(run: dict, video: Path, out: Path, run_dir: Path | None = None):
    return run_predict(video, run_dir or run["run_dir"], "tcn", run["cfg"].prepare, out)


# ----------------------------------------------------------------------------------------------
# scoring


@pytest.mark.slow
def test_a_landmark_file_gets_the_score_training_gave_it(run, tmp_path) -> None:
    npz = held_out_landmarks(run)[0]
    result = predict(run, npz, tmp_path / "out")
    (p,) = result.predictions
    assert p.status == "ok" and p.reason == ""
    video_id = f"{npz.name.removesuffix('.landmarks.npz')}_{npz.parent.name}"
    want = training_scores(run, video_id)
    assert p.fold_values == pytest.approx(want, abs=1e-4)
    assert p.mean == pytest.approx(np.mean(list(want.values())), abs=1e-4)
    assert p.std == pytest.approx(np.std(list(want.values())), abs=1e-4)
    assert p.score == int(np.clip(np.round(p.mean), 0, 4))

    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == sorted([
        SCORES_NAME, f"{npz.name.removesuffix('.landmarks.npz')}.trace.png"])
    (row,) = read_csv(result.csv)
    assert row["status"] == "ok" and int(row["score"]) == p.score and row["n_folds"] == "2"
    assert float(row["fold_1_expected"]) == pytest.approx(want[1], abs=1e-4)
    png = Path(row["trace_png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.std() > 0


@pytest.mark.slow
def test_the_autoencoder_reports_its_reconstruction_error(run, tmp_path) -> None:
    npz = held_out_landmarks(run)[0]
    result = run_predict(npz, run["run_dir"], "lstm_ae", run["cfg"].prepare, tmp_path / "out")
    (row,) = read_csv(result.csv)
    video_id = f"{npz.name.removesuffix('.landmarks.npz')}_{npz.parent.name}"
    trained = next(r for r in read_csv(run["run_dir"] / "lstm_ae" / "fold_0" / "predictions.csv")
                   if r["split"] == "test" and r["id"] == video_id)
    assert row["status"] == "ok" and row["n_folds"] == "1" and "score" not in row
    assert float(row["error_mean"]) == pytest.approx(float(trained["raw"]), rel=1e-4)
    assert float(row["fold_0_error"]) == pytest.approx(float(trained["raw"]), rel=1e-4)
    assert int(row["folds_flagging"]) == int(trained["pred"])  # 1 = above the fold's threshold


@pytest.mark.slow
def test_a_folder_and_a_csv_score_every_input_and_report_the_bad_one(run, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = held_out_landmarks(run)[:2]
    for npz in good:
        shutil.copy(npz, folder / npz.name)
    with np.load(good[0]) as source:
        blank = {k: source[k] for k in source.files}
    blank["landmarks"] = np.full_like(blank["landmarks"], np.nan)
    write_npz_deterministic(folder / "empty_l.landmarks.npz", blank)

    by_folder = predict(run, folder, tmp_path / "a")
    rows = read_csv(by_folder.csv)
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]  # sorted: 2x-... < empty_l
    assert "no hand detected" in rows[2]["reason"] and rows[2]["score"] == ""

    listing = tmp_path / "videos.csv"
    listing.write_text("video,hand\n" + "".join(f"in/{p.name},l\n" for p in good))
    by_csv = predict(run, listing, tmp_path / "b")
    assert [r["expected_mean"] for r in read_csv(by_csv.csv)] == [
        r["expected_mean"] for r in rows[:2]]


@pytest.mark.slow
def test_command_line(run, tmp_path) -> None:
    npz = held_out_landmarks(run)[0]
    done = subprocess.run(
        [sys.executable, "-m", "hawkeye.predict", f"video={npz}", f"run_dir={run['run_dir']}",
         "model=tcn", f"predict.out={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "predicted score" in done.stdout and "over 2 folds" in done.stdout
    assert (tmp_path / "out" / SCORES_NAME).exists()

    blank = tmp_path / "still_l.landmarks.npz"
    with np.load(npz) as source:
        arrays = {k: source[k] for k in source.files}
    arrays["landmarks"] = np.full_like(arrays["landmarks"], np.nan)
    write_npz_deterministic(blank, arrays)
    failed = subprocess.run(
        [sys.executable, "-m", "hawkeye.predict", f"video={blank}", f"run_dir={run['run_dir']}",
         "model=tcn", f"predict.out={tmp_path / 'bad'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert "no hand detected in any of" in failed.stderr and str(blank) in failed.stderr
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------------------------
# bad input: a message naming the problem, exit code 1, nothing written


def landmark_file(run: dict, path: Path, frames: int | None = None, nan: bool = False) -> Path:
    with np.load(held_out_landmarks(run)[0]) as source:
        arrays = {k: source[k] for k in source.files}
    if frames is not None:
        arrays["landmarks"] = arrays["landmarks"][:frames]
    if nan:
        arrays["landmarks"] = np.full_like(arrays["landmarks"], np.nan)
    write_npz_deterministic(path, arrays)
    return path


def other_features_run(run: dict, root: Path) -> Path:
    """A copy of the run whose models say they read two other features per frame (as a model
    trained on a store of the user's own sequences would)."""
    copy = root / "byo_run"
    shutil.copytree(run["run_dir"] / "tcn", copy / "tcn")
    for path in copy.glob(f"tcn/fold_*/{ONNX_NAME}"):
        meta = read_metadata(path)
        write_metadata(path, {**meta, "input_names": ["aperture", "velocity"]})
    return copy


def run_main(argv: list[str], monkeypatch) -> str:
    """Run ``python -m hawkeye.predict`` in this process; return what it exits with."""
    monkeypatch.setattr(sys, "argv", ["hawkeye.predict", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    return str(exited.value.code)


@pytest.mark.slow
@pytest.mark.parametrize("case, message", [
    ("no_hand", "no hand detected in any of"),
    ("too_short", "shorter than predict.min_seconds=2"),
    ("wrong_features", "reads 2 features per frame"),
    ("missing", "not found"),
    ("not_a_video", "not a video"),
    ("unknown_hand", "cannot tell which hand taps"),
])
def test_bad_input_stops_with_a_message_and_writes_nothing(run, tmp_path, monkeypatch, case,
                                                           message) -> None:
    run_dir = run["run_dir"]
    if case == "no_hand":
        video = landmark_file(run, tmp_path / "x_l.landmarks.npz", nan=True)
    elif case == "too_short":
        video = landmark_file(run, tmp_path / "x_l.landmarks.npz", frames=4)
    elif case == "wrong_features":
        video = landmark_file(run, tmp_path / "x_l.landmarks.npz")
        run_dir = other_features_run(run, tmp_path)
    elif case == "missing":
        video = tmp_path / "absent_l.mp4"
    elif case == "not_a_video":
        video = tmp_path / "notes.txt"
        video.write_text("not a video")
    else:
        video = tmp_path / "clip.mp4"  # no _l / _r in the name, no predict.hand
        write_video(video, (np.full((64, 64, 3), 200, np.uint8) for _ in range(3)), 30.0)
    out = tmp_path / "out"
    code = run_main([f"video={video}", f"run_dir={run_dir}", "model=tcn",
                     f"predict.out={out}"], monkeypatch)
    assert code.startswith("hawkeye.predict:") and message in code  # printed; exit status 1
    assert not out.exists()
    cli = compose([])  # what the command line composed: landmarks from MediaPipe
    with pytest.raises(PredictError, match=message):
        run_predict(video, run_dir, "tcn", cli.prepare, out, min_seconds=cli.predict.min_seconds)
    assert not out.exists()


@pytest.mark.slow
def test_a_run_without_the_model_names_the_ones_it_has(run, tmp_path) -> None:
    with pytest.raises(PredictError,
                       match=r"no folder for model 'transformer'.*\['lstm_ae', 'tcn'\]"):
        run_predict(held_out_landmarks(run)[0], run["run_dir"], "transformer",
                    run["cfg"].prepare, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# real videos through MediaPipe


@pytest.mark.slow
@pytest.mark.mediapipe
def test_a_real_video_goes_through_mediapipe(run, tmp_path) -> None:
    """A clip of a real hand photograph drifting and rocking (tests/assets, OpenCV docs) is
    detected and scored; a clip of a plain wall is rejected with 'no hand detected'."""
    image = cv2.cvtColor(cv2.imread(str(ASSETS / "handDst.jpg")), cv2.COLOR_BGR2RGB)
    clip = tmp_path / "clip_l.mp4"
    write_video(clip, moving_image_frames(image, 45), 30.0)
    mediapipe = compose([]).prepare  # prepare.landmark_source=mediapipe, the default
    (p,) = run_predict(clip, run["run_dir"], "tcn", mediapipe, tmp_path / "out").predictions
    assert p.status == "ok" and p.frames == 45 and len(p.fold_values) == N_FOLDS
    assert p.score in range(5) and (tmp_path / "out" / "clip_l.trace.png").exists()

    wall = tmp_path / "wall_r.mp4"
    write_video(wall, (np.full((240, 320, 3), 200, np.uint8) for _ in range(20)), 30.0)
    with pytest.raises(PredictError, match="no hand detected in any of 20 frames"):
        run_predict(wall, run["run_dir"], "tcn", mediapipe, tmp_path / "wall_out")
    assert not (tmp_path / "wall_out").exists()


@pytest.mark.slow
def test_fewer_folds_than_trained_stop_predict_or_are_named_in_a_warning(run, tmp_path,
                                                                          capsys) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run["run_dir"] / "tcn", copy / "tcn")
    (copy / "tcn" / "fold_1" / ONNX_NAME).unlink()
    out = tmp_path / "out"
    args = [f"video={held_out_landmarks(run)[0]}", f"run_dir={copy}", "model=tcn",
            f"predict.out={out}"]
    assert run_app(main, args) == 1  # refused: one fold cannot score
    assert re.search(r"fold_1/model.onnx: missing.*allow_missing_folds", capsys.readouterr().err)
    assert not out.exists()
    code = run_app(main, [*args, "predict.allow_missing_folds=true"])
    err = capsys.readouterr().err
    assert code == 0  # scored, with the warning
    assert "WARNING: fold left out" in err and "fold_1/model.onnx: missing" in err
    assert [r["n_folds"] for r in read_csv(out / SCORES_NAME)] == ["1"]
