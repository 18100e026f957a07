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
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from hawkeye.cli import run_app
from hawkeye.config import compose
from hawkeye.export import ONNX_NAME, export_run, read_metadata, write_metadata
from hawkeye.io import write_npz_deterministic
from hawkeye.predict import (
    SCORES_NAME,
    PredictError,
    VideoInput,
    extract,
    load_ensemble,
    main,
    model_inputs,
    prepare_settings,
    run_predict,
)
from hawkeye.prepare.landmarks import close_process_detector
from hawkeye.prepare.pd4t import VideoItem
from hawkeye.prepare.pipeline import prepare
from hawkeye.prepare.video import moving_image_frames, write_video
from hawkeye.prepare.worker import PrepareSettings, process_video
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


# ----------------------------------------------------------------------------------------------
# the time base, frame timing and the task (issue 11)


def hand_clip_frames(n: int) -> list[np.ndarray]:
    """``n`` frames of the real hand photograph drifting and rocking (one cycle over the clip)."""
    image = cv2.cvtColor(cv2.imread(str(ASSETS / "handDst.jpg")), cv2.COLOR_BGR2RGB)
    return list(moving_image_frames(image, n, shift=0.04, angle_deg=5.0))


@pytest.mark.slow
@pytest.mark.mediapipe
def test_the_same_clip_at_60_and_30_fps_gives_the_same_inputs_and_score(run, tmp_path) -> None:
    """A clip written at 60 fps and the same frames decimated to 30 fps: after resampling by time
    the model inputs agree within interpolation error (the features are computed at each native
    rate) and the fold ensemble scores them within 0.1. The hand leaves the picture after 2 s, so
    the steps must also line up in time (by frame count, the 60 fps clip's would come twice as
    late)."""
    hand = hand_clip_frames(120)                        # 2 s at 60 fps, then 1 s of a bare wall
    frames = hand + [np.full_like(hand[0], 128)] * 60
    fast, slow = tmp_path / "fast_l.mp4", tmp_path / "slow_l.mp4"
    write_video(fast, frames, 60.0)
    write_video(slow, frames[::2], 30.0)
    mediapipe = compose([]).prepare
    ensemble = load_ensemble(run["run_dir"], "tcn", threads=1)
    settings = prepare_settings(mediapipe, ensemble, "mediapipe")
    try:
        inputs = {}
        for clip in (fast, slow):
            entry = extract(VideoInput(clip, "l"), settings).entry
            inputs[clip.stem] = model_inputs(entry, ensemble, clip)
    finally:
        close_process_detector()
    (x60, m60), (x30, m30) = inputs["fast_l"], inputs["slow_l"]
    assert m60.sum() == m30.sum() == 45   # 3 s at the model's 15 Hz: steps 0 .. 2.93 s
    present = ensemble.input_names.index("hand_present")
    seen60, seen30 = x60[0, :45, present] > 0.5, x30[0, :45, present] > 0.5
    assert 28 <= seen30.sum() <= 31 and (seen60 != seen30).sum() <= 1  # hand gone at ~2 s
    both = seen60 & seen30
    distance = ensemble.input_names.index("thumb_index_distance")
    d60, d30 = x60[0, :45, distance][both], x30[0, :45, distance][both]
    assert np.abs(d60 - d30).max() <= 0.02 * np.abs(d30).mean()  # MediaPipe jitter, ~1 %
    scored = {clip.stem: run_predict(clip, run["run_dir"], "tcn", mediapipe,
                                     tmp_path / clip.stem).predictions[0]
              for clip in (fast, slow)}
    assert scored["fast_l"].status in ("ok", "flagged")
    assert abs(scored["fast_l"].mean - scored["slow_l"].mean) <= 0.1
    for fold in ensemble.folds:  # the networks' outputs before the head clips them to 0..4
        raw = [fold.session.run(["raw"], {"x": x, "mask": m})[0] for x, m in inputs.values()]
        assert np.abs(raw[0] - raw[1]).max() <= 0.1
    (row,) = read_csv(tmp_path / "fast_l" / SCORES_NAME)
    assert float(row["fps"]) == pytest.approx(60.0) and float(row["model_rate_hz"]) == 15.0
    assert "resampled from 60 fps to the model's 15 Hz" in row["rate_note"]
    assert row["hand"] == "l" and row["hand_choice"] == "only_hand"
    assert float(row["detection_rate"]) == pytest.approx(2 / 3, abs=0.02)


@pytest.mark.mediapipe
def test_a_variable_frame_rate_clip_gets_its_true_timing(tmp_path) -> None:
    """Frames muxed by PyAV (FFmpeg) with irregular presentation times, two frames dropped: the
    decoded timestamps are the written ones, QC records the measured rate, spread and drops."""
    av = pytest.importorskip("av", reason="PyAV (pip install av) writes the variable-rate clip")
    rng = np.random.default_rng(0)
    intervals = rng.uniform(1 / 45, 1 / 24, 59)
    intervals[[20, 40]] = 3 / 30                          # two ~dropped frames
    times = np.concatenate([[0.0], np.cumsum(intervals)])
    clip = tmp_path / "vfr_l.mkv"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for frame, t in zip(hand_clip_frames(len(times)), times, strict=True):
            picture = av.VideoFrame.from_ndarray(cv2.resize(frame, (320, 240)), format="rgb24")
            picture.pts, picture.time_base = int(round(t * 1000)), Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    settings = PrepareSettings.from_config(compose([]).prepare, None)
    item = VideoItem(id="vfr_l", visit="vfr", hand="l", subject="", frame_count=0, score=0,
                     split="predict", video_path=clip, landmarks_path=clip)
    try:
        result = process_video(item, None, settings)
    finally:
        close_process_detector()
    assert result.entry is not None, result.qc.reason
    np.testing.assert_allclose(result.entry.timestamps, times, atol=1.5e-3)  # ms pts
    qc = result.qc
    assert qc.timing == "timestamps" and qc.fps_spread > 0.1 and qc.dropped_frames >= 2
    assert 24 < qc.fps < 45 and "variable frame rate" in qc.fps_note


@pytest.mark.slow
def test_predict_refuses_a_video_of_another_task_unless_allowed(run, tmp_path) -> None:
    npz = held_out_landmarks(run)[0]
    with pytest.raises(PredictError, match=r"given as task 'Leg agility' but the model rates "
                                           r"'Finger tapping'.*allow_task_mismatch"):
        run_predict(npz, run["run_dir"], "tcn", run["cfg"].prepare, tmp_path / "out",
                    task="Leg agility")
    assert not (tmp_path / "out").exists()
    other = tmp_path / "PD4T" / "Videos" / "Hand movement" / "001" / npz.name
    other.parent.mkdir(parents=True)
    shutil.copy(npz, other)                                # the PD4T folder says the task
    with pytest.raises(PredictError, match="given as task 'Hand movement'"):
        run_predict(other, run["run_dir"], "tcn", run["cfg"].prepare, tmp_path / "out")
    allowed = run_predict(other, run["run_dir"], "tcn", run["cfg"].prepare, tmp_path / "out",
                          allow_task_mismatch=True)
    (row,) = read_csv(allowed.csv)
    assert row["status"] == "ok" and "scored anyway" in row["reason"]
    assert row["task"] == "Hand movement"
    same = run_predict(npz, run["run_dir"], "tcn", run["cfg"].prepare, tmp_path / "same",
                       task="finger_tapping")
    assert same.predictions[0].status == "ok" and same.predictions[0].reason == ""
    assert read_metadata(run["run_dir"] / "tcn" / "fold_0" / ONNX_NAME)["task"] == {
        "name": "pd4t_finger_tapping", "pd4t_task": "Finger tapping"}


@pytest.mark.slow
def test_a_model_exported_before_the_time_base_is_refused_with_the_reason(run, tmp_path) -> None:
    old = tmp_path / "old_run"
    shutil.copytree(run["run_dir"] / "tcn", old / "tcn")
    for path in old.glob(f"tcn/fold_*/{ONNX_NAME}"):
        meta = {k: v for k, v in read_metadata(path).items()
                if k not in ("sample_rate_hz", "max_seconds")}
        write_metadata(path, meta)  # what an export before the time base lacks
    with pytest.raises(PredictError, match="older Hawkeye.*retrain"):
        run_predict(held_out_landmarks(run)[0], old, "tcn", run["cfg"].prepare, tmp_path / "out")


@pytest.mark.slow
def test_scores_csv_says_why_a_row_is_flagged(run, tmp_path) -> None:
    """A landmark file claiming 1e6 fps is scored at the fallback rate, and its row says so:
    status flagged, the QC reason, the rates, the hand and how it was taken."""
    npz = held_out_landmarks(run)[0]
    with np.load(npz) as source:
        arrays = {k: source[k] for k in source.files}
    fine = tmp_path / "fine_l.landmarks.npz"
    write_npz_deterministic(fine, arrays)
    write_npz_deterministic(tmp_path / "fast_l.landmarks.npz", {**arrays, "fps": np.float64(1e6)})
    rows = {r["id"]: r for r in read_csv(predict(run, tmp_path, tmp_path / "out").csv)}
    flagged, ok = rows["fast_l"], rows["fine_l"]
    assert flagged["status"] == "flagged" and flagged["qc_status"] == "flagged"
    assert "1e+06 fps is implausible" in flagged["reason"] and flagged["score"] != ""
    assert float(flagged["fps"]) == 30.0 and flagged["timing"] == "fallback"
    assert ok["status"] == "ok" and ok["qc_status"] == "ok" and ok["qc_reason"] == ""
    assert ok["hand"] == "l" and ok["hand_choice"] == "precomputed"
    assert float(ok["detection_rate"]) > 0 and int(ok["taps"]) >= 0
    assert float(ok["model_rate_hz"]) == 15.0 and ok["timing"] == "file"
