"""MediaPipe Pose on real pixels (hawkeye/prepare/pose.py) and the pose tasks through prepare.

The photo ``tests/assets/standing_person.jpg`` (a person standing, facing the camera, whole body
in view; source and licence in tests/assets/README.md) is made into a clip by drifting it on a
small circle (:func:`hawkeye.prepare.video.moving_image_frames`), written as mp4 and decoded back.
A still photo cannot lift a heel or take a step: the cycle measurements are tested on analytic
signals in tests/test_task_features.py; here the real detector, the side choice, the geometry
and the store.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_pd4t_videos

from hawkeye.config import compose
from hawkeye.prepare import pose
from hawkeye.prepare.pipeline import prepare_from_config
from hawkeye.prepare.qc import OK, SKIPPED, qc_paths, read_qc_csv
from hawkeye.prepare.video import moving_image_frames
from hawkeye.store import load_store

PHOTO = Path(__file__).parent / "assets" / "standing_person.jpg"
FRAMES = 20

pytestmark = pytest.mark.mediapipe


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    image = cv2.imread(str(PHOTO))
    assert image is not None, f"{PHOTO} missing: see tests/assets/README.md"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def still_pose(photo) -> np.ndarray:
    """(33, 3) landmarks of the photo, static image mode."""
    detector = pose.PoseDetector(0.5, 0.5, static_image_mode=True)
    try:
        found = detector.detect(photo)
    finally:
        detector.close()
    assert found is not None, f"MediaPipe Pose finds nobody in {PHOTO}"
    return found


def test_full_pose_model_ships_in_the_wheel_and_finds_the_body(still_pose):
    """Nothing is downloaded: the one model complexity used reads a file inside the wheel."""
    import mediapipe

    assert (Path(mediapipe.__file__).parent.parent / pose.MODEL_FILE).is_file()
    y = {name: still_pose[pose.point(name, "l"), 1] for name in ("shoulder", "hip", "knee",
                                                                 "ankle")}
    assert y["shoulder"] < y["hip"] < y["knee"] < y["ankle"]  # image y grows downwards
    # facing the camera, unmirrored: the person's left is on the image's right
    for name in ("shoulder", "hip", "knee"):
        assert still_pose[pose.point(name, "l"), 0] > still_pose[pose.point(name, "r"), 0]


def clip(photo: np.ndarray) -> list[np.ndarray]:
    return list(moving_image_frames(photo, FRAMES, shift=0.04, angle_deg=3.0))


def run_prepare(root: Path, store: Path, task: str):
    cfg = compose([f"task={task}", f"data_root={root}", f"paths.store={store}",
                   "prepare.workers=1", "prepare.qc.overview=false", "prepare.qc.plots=true"])
    report = prepare_from_config(cfg)
    return report, {row.id: row for row in read_qc_csv(report.qc_csv)}


def test_leg_agility_on_a_real_clip_stores_the_annotated_leg(tmp_path, photo):
    """Both feet stay on the ground: the annotated leg is kept (nothing for the motion check to
    prefer) and its heel hangs about one leg length (hip -> knee -> ankle) below the hip."""
    root, store = tmp_path / "PD4T", tmp_path / "legs.h5"
    write_pd4t_videos(root, "Leg agility", {
        "15-000001_r_001": ("train", clip(photo)),
        "15-000002_l_002": ("test", [np.full_like(photo, 110)] * 10),  # nobody in view
    })
    report, qc = run_prepare(root, store, "pd4t_leg_agility")
    row = qc["15-000001_r_001"]
    assert row.status == OK, row.reason
    assert row.detection_rate >= 0.9 and row.hand_choice == "annotated_side"
    assert "annotated leg 'r'" in row.hand_detail
    assert (qc_paths(store)["dir"] / "15-000001_r_001.png").exists()  # the cycle trace
    blank = qc["15-000002_l_002"]
    assert blank.status == SKIPPED and "no person detected in any of 10 frames" in blank.reason
    data = load_store(store)
    assert data.attrs["landmarks"] == "pose" and data.attrs["features"] == "leg_agility"
    assert data.attrs["landmark_model_file"] == pose.MODEL_FILE
    assert data.attrs["prepare"]["task"] == {"landmarks": "pose", "features": "leg_agility"}
    assert data.landmarks.shape == (FRAMES, 33, 3)
    heel = data.series[:, data.series_names.index("heel_height")]
    assert -1.25 < float(np.median(heel)) < -0.85


def test_gait_on_a_real_clip_stores_the_whole_body(tmp_path, photo):
    root, store = tmp_path / "PD4T", tmp_path / "gait.h5"
    write_pd4t_videos(root, "Gait", {"15-000003_l_003": ("train", clip(photo))})
    report, qc = run_prepare(root, store, "pd4t_gait")
    row = qc["15-000003_l_003"]
    assert row.status == OK and row.hand_choice == "whole_body", row.reason
    assert row.detection_rate >= 0.9
    data = load_store(store)
    assert data.attrs["features"] == "gait" and data.landmarks.shape == (FRAMES, 33, 3)
    assert list(data.series_names)[:3] == ["ankle_separation", "ankle_separation_velocity",
                                           "shoulder_width"]
    # facing the camera the whole time: a positive shoulder width, no turn
    width = data.series[:, data.series_names.index("shoulder_width")]
    assert (width > 0).all()
    assert data.summary[0, list(data.summary_names).index("n_turns")] == 0
