"""A model trained on a pose task scores new inputs with that task's landmarks and features
(hawkeye/predict.py reads them from the training store's recorded ``prepare.task``): a demo
leg-agility landmark file, and a real clip through MediaPipe Pose."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from hawkeye import synthetic_tasks
from hawkeye.config import compose
from hawkeye.export import export_run
from hawkeye.predict import PredictError, VideoInput, run_predict, side_question, video_item
from hawkeye.prepare.pipeline import prepare_from_config
from hawkeye.prepare.tasks import task_spec_from_config
from hawkeye.prepare.video import moving_image_frames, write_video
from hawkeye.store import load_store
from hawkeye.train import train

PHOTO = Path(__file__).parent / "assets" / "standing_person.jpg"


@pytest.fixture(scope="module")
def leg_run(tmp_path_factory) -> dict:
    """Demo leg agility (12 subjects, 90-120 frames) -> store -> one tiny TCN fold -> ONNX."""
    root = tmp_path_factory.mktemp("leg_run")
    data = root / "PD4T"
    assert synthetic_tasks.main(["pd4t_leg_agility", f"out={data}", "n_subjects=12",
                                 "visits_max=1", "min_frames=90", "max_frames=120"]) == 0
    cfg = compose(["task=pd4t_leg_agility", f"data_root={data}",
                   f"paths.store={root / 'store.h5'}", f"run_dir={root / 'run'}",
                   "prepare.landmark_source=precomputed", "prepare.workers=1", "cv.n_folds=2",
                   "train.epochs=2", "train.num_threads=1", "model=tcn", "model.channels=[8,8]",
                   "fold=0"])
    assert prepare_from_config(cfg).exit_code == 0
    train(cfg)
    export_run(Path(cfg.run_dir), cfg)
    return {"data": data, "cfg": cfg}


@pytest.mark.slow
def test_a_leg_agility_landmark_file_is_scored_with_leg_features(leg_run, tmp_path):
    landmarks = next((leg_run["data"] / "Videos" / "Leg agility").rglob("*.landmarks.npz"))
    cfg = leg_run["cfg"]
    (p,) = run_predict(landmarks, cfg.run_dir, "tcn", cfg.prepare, tmp_path / "out").predictions
    assert p.status == "ok", p.reason
    assert p.score in range(5) and len(p.fold_values) == 1


@pytest.mark.slow
@pytest.mark.mediapipe
def test_a_real_clip_goes_through_mediapipe_pose(leg_run, tmp_path):
    image = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    clip = tmp_path / "standing_r.mp4"  # the annotated side is the name's _r
    write_video(clip, moving_image_frames(image, 30, shift=0.04, angle_deg=3.0), 30.0)
    mediapipe = compose(["task=pd4t_leg_agility"]).prepare  # landmark_source=mediapipe
    (p,) = run_predict(clip, leg_run["cfg"].run_dir, "tcn", mediapipe,
                       tmp_path / "out").predictions
    assert p.status == "ok" and p.frames == 30, p.reason
    assert (tmp_path / "out" / "standing_r.trace.png").exists()


@pytest.mark.slow
def test_the_leg_agility_store_keeps_frame_times_and_predict_refuses_another_task(leg_run,
                                                                                  tmp_path):
    cfg = leg_run["cfg"]
    store = load_store(cfg.paths.store)
    assert store.timestamps is not None and len(store.timestamps) == store.offsets[-1]
    landmarks = next((leg_run["data"] / "Videos" / "Leg agility").rglob("*.landmarks.npz"))
    with pytest.raises(PredictError, match="model rates 'Leg agility'.*allow_task_mismatch"):
        run_predict(landmarks, cfg.run_dir, "tcn", cfg.prepare, tmp_path / "out",
                    task="Finger tapping")
    (p,) = run_predict(landmarks, cfg.run_dir, "tcn", cfg.prepare, tmp_path / "out2",
                       task="Finger tapping", allow_task_mismatch=True).predictions
    assert p.status == "ok" and "scored anyway" in p.reason
    assert p.hand_choice == "annotated_side" and "leg" in p.hand_detail and p.timing == "file"


def test_a_video_names_its_side_unless_the_task_measures_both():
    ask = {name: side_question(task_spec_from_config(compose([f"task={name}"]).task))
           for name in ("pd4t_finger_tapping", "pd4t_leg_agility", "pd4t_gait")}
    assert ask == {"pd4t_finger_tapping": "which hand taps",
                   "pd4t_leg_agility": "which leg is rated", "pd4t_gait": None}
    walk = VideoInput(Path("walk.mp4"), hand="")
    assert video_item(walk, "mediapipe", None).video_path == Path("walk.mp4")
    with pytest.raises(PredictError, match="which leg is rated"):
        video_item(walk, "mediapipe", ask["pd4t_leg_agility"])
