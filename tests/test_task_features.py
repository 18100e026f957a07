"""Hand-movement, leg-agility and gait features against analytic signals, and the task registry
(hawkeye/prepare/hand_movement.py, leg_agility.py, gait.py, pose.py, tasks.py).

Frames are square (1000 x 1000 px, so a normalised unit is 1000 px), 30 fps, 10 s.

- Hand: wrist (0) at (500, 700); the four finger MCPs (5, 9, 13, 17) on the line y = 550 at
  x = 470, 490, 510, 530, so the palm size |p0 p9| = hypot(10, 150) px and the palm centre (mean
  of 0, 5, 9, 13, 17) is (500, 580). The five fingertips sit on a circle of radius r(t) around the
  palm centre: the hand aperture is exactly r(t) / palm size.
- Body: the person faces the camera, hips at y = 500 (left hip x = 540, right hip x = 460: the
  person's left is the image right), knees at y = 700, ankles and heels at y = 900, so a leg is
  400 px long and a resting heel is 1 leg length below its hip; shoulders at y = 200 (torso
  300 px).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from hawkeye.config import compose
from hawkeye.prepare import gait, hand_movement, leg_agility, pose, tasks
from hawkeye.prepare.features import FeatureConfig

PREPARE_YAML = Path(__file__).resolve().parents[1] / "conf" / "prepare" / "default.yaml"
SIZE, FPS, SECONDS = 1000.0, 30.0, 10.0
T = np.arange(int(FPS * SECONDS)) / FPS
PALM_PX = 150.33296378372907  # hypot(10, 150)


@pytest.fixture(scope="module")
def config() -> FeatureConfig:
    return FeatureConfig.from_config(OmegaConf.load(PREPARE_YAML).features)


@pytest.fixture(scope="module")
def pose_settings() -> pose.PoseSettings:
    return pose.PoseSettings.from_config(OmegaConf.load(PREPARE_YAML).pose)


def normalised(px: np.ndarray) -> np.ndarray:
    """(T, K, 2) pixels -> (T, K, 3) float32 landmarks (z = 0) of the square frame."""
    out = np.zeros(px.shape[:2] + (3,), dtype=np.float32)
    out[..., :2] = px / SIZE
    return out


def hand(radius_px: np.ndarray) -> np.ndarray:
    """The hand of the module docstring with fingertip radius ``radius_px`` per frame."""
    px = np.zeros((radius_px.size, 21, 2))
    px[:, :] = (500.0, 580.0)
    px[:, 0] = (500.0, 700.0)
    for x, joint in zip((470.0, 490.0, 510.0, 530.0), (5, 9, 13, 17), strict=True):
        px[:, joint] = (x, 550.0)
    for k, tip in enumerate(hand_movement.FINGERTIPS):
        angle = np.pi * (0.1 + 0.2 * k)  # spread over the upper half circle
        px[:, tip, 0] = 500.0 + radius_px * np.cos(angle)
        px[:, tip, 1] = 580.0 - radius_px * np.sin(angle)
    return normalised(px)


def body(lift_px: dict[str, np.ndarray] | None = None, n: int = T.size) -> np.ndarray:
    """The body of the module docstring, (n, 33, 2) pixels; ``lift_px[side]`` raises that heel."""
    px = np.zeros((n, 33, 2))
    for side, x in (("l", 540.0), ("r", 460.0)):
        px[:, pose.point("shoulder", side)] = (x + (20 if side == "l" else -20), 200.0)
        px[:, pose.point("wrist", side)] = (x + (40 if side == "l" else -40), 480.0)
        px[:, pose.point("hip", side)] = (x, 500.0)
        px[:, pose.point("knee", side)] = (x, 700.0)
        px[:, pose.point("ankle", side)] = (x, 900.0)
        px[:, pose.point("heel", side)] = (x, 900.0)
        if lift_px and side in lift_px:
            px[:, pose.point("heel", side), 1] -= lift_px[side]
    return px


# --------------------------------------------------------------------------- hand movement


def test_hand_aperture_is_fingertip_radius_over_palm_size(config):
    radius = np.full(T.size, 120.0)
    features = hand_movement.compute_features(hand(radius), None, FPS, SIZE, SIZE, config)
    assert features.hand_size_px == pytest.approx(PALM_PX)
    assert features.series[:, 0] == pytest.approx(120.0 / PALM_PX, rel=1e-5)
    assert features.series_names == hand_movement.SERIES_NAMES
    assert features.summary[0] == 0  # a still hand opens and closes no cycle


@pytest.mark.parametrize(("amplitude_px", "frequency_hz"), [(40.0, 1.5), (20.0, 2.5)])
def test_open_close_sine_gives_its_amplitude_and_rate(config, amplitude_px, frequency_hz):
    """r(t) = 100 - A cos(2 pi f t) (closed at the start and the end): cycles of peak-to-valley
    2A / palm at f per second."""
    radius = 100.0 - amplitude_px * np.cos(2 * np.pi * frequency_hz * T)
    features = hand_movement.compute_features(hand(radius), None, FPS, SIZE, SIZE, config)
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    assert summary["n_cycles"] == pytest.approx(frequency_hz * SECONDS, abs=1)
    assert summary["cycle_frequency_hz"] == pytest.approx(frequency_hz, rel=0.03)
    assert summary["amplitude_mean"] == pytest.approx(2 * amplitude_px / PALM_PX, rel=0.03)
    assert summary["interval_mean_s"] == pytest.approx(1 / frequency_hz, rel=0.02)
    assert summary["n_hesitations"] == 0 and summary["amplitude_ratio_last_first"] == (
        pytest.approx(1.0, rel=0.02))


def test_decrementing_hand_movement_has_a_negative_slope(config):
    """The opening amplitude halves over the video: slope and last/first-third ratio say so."""
    amplitude = 40.0 * (1 - 0.5 * T / SECONDS)
    radius = 100.0 - amplitude * np.cos(2 * np.pi * 1.5 * T)
    features = hand_movement.compute_features(hand(radius), None, FPS, SIZE, SIZE, config)
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    # d(2A/palm)/dt = 2 * (-40 * 0.5 / 10 s) / palm
    assert summary["amplitude_slope_per_s"] == pytest.approx(-4.0 / PALM_PX, rel=0.1)
    assert 0.5 < summary["amplitude_ratio_last_first"] < 0.75


# --------------------------------------------------------------------------- leg agility


def test_heel_lifts_give_amplitude_rate_and_the_other_heel_stays(config):
    """The left heel rises 100 px (a quarter leg length) 2 times a second: (1 - cos) / 2 lifts."""
    lift = 100.0 * (1 - np.cos(2 * np.pi * 2.0 * T)) / 2
    landmarks = normalised(body({"l": lift}))
    features = leg_agility.compute_features(landmarks, None, FPS, SIZE, SIZE, config, side="l")
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    assert features.hand_size_px == pytest.approx(400.0)  # hip -> knee -> ankle
    assert features.series[:, 3] == pytest.approx(-1.0, abs=1e-5)  # right heel at rest
    assert summary["n_cycles"] == pytest.approx(2.0 * SECONDS, abs=1)
    assert summary["cycle_frequency_hz"] == pytest.approx(2.0, rel=0.03)
    assert summary["amplitude_mean"] == pytest.approx(0.25, rel=0.03)


def test_leg_choice_follows_the_annotation_unless_only_the_other_leg_moves(pose_settings):
    lift = 100.0 * (1 - np.cos(2 * np.pi * 2.0 * T)) / 2
    both = normalised(body({"l": lift, "r": lift}))
    only_left = normalised(body({"l": lift}))
    choice = pose.choose_leg(both, "r", int(SIZE), int(SIZE), pose_settings)
    assert (choice.label, choice.reason) == ("r", "annotated_side")
    choice = pose.choose_leg(only_left, "r", int(SIZE), int(SIZE), pose_settings)
    assert (choice.label, choice.reason) == ("l", "motion_override")
    # p90 - p10 of 0.25 (1 - cos) / 2 is 0.25 sin(0.4 pi) leg lengths
    assert "does not lift" in choice.detail
    assert choice.amplitudes[0] == pytest.approx(0.25 * np.sin(0.4 * np.pi), rel=0.01)
    nobody = np.full_like(both, np.nan)
    assert pose.choose_leg(nobody, "l", 10, 10, pose_settings).reason == "no_person"
    with pytest.raises(ValueError, match="annotated side"):
        pose.choose_leg(both, "", 10, 10, pose_settings)


# --------------------------------------------------------------------------- gait


def walking(stride_hz: float, turn_at_s: float | None = None) -> np.ndarray:
    """Ankles swing apart along x with separation 150 |sin(2 pi f t)| px (two steps per stride),
    the left wrist swings 60 sin(2 pi f t) px along x, the right 30 px; with ``turn_at_s`` the
    person faces away from then on (shoulders' x swapped)."""
    px = body()
    phase = np.sin(2 * np.pi * stride_hz * T)
    px[:, pose.point("ankle", "l"), 0] = 500.0 + 75.0 * phase
    px[:, pose.point("ankle", "r"), 0] = 500.0 - 75.0 * phase
    px[:, pose.point("wrist", "l"), 0] += 60.0 * phase
    px[:, pose.point("wrist", "r"), 0] -= 30.0 * phase
    if turn_at_s is not None:
        later = T >= turn_at_s
        left, right = pose.point("shoulder", "l"), pose.point("shoulder", "r")
        px[later, left, 0], px[later, right, 0] = 440.0, 560.0
    return normalised(px)


def test_walking_gives_cadence_stride_time_and_arm_swing(config):
    features = gait.compute_features(walking(1.0), None, FPS, SIZE, SIZE, config)
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    assert features.hand_size_px == pytest.approx(300.0)  # mid-shoulder to mid-hip
    assert summary["cadence_steps_per_min"] == pytest.approx(120.0, rel=0.03)
    assert summary["step_time_mean_s"] == pytest.approx(0.5, rel=0.03)
    assert summary["stride_time_mean_s"] == pytest.approx(1.0, rel=0.02)
    assert summary["stride_time_cv"] < 0.02
    # 150 |sin| has cusps at 0 that the 7.5 Hz low-pass rounds off: valleys a little higher
    assert summary["step_amplitude_mean"] == pytest.approx(150.0 / 300.0, rel=0.1)
    # p90 - p10 of A sin is 2 A sin(0.4 pi); the wrists swing 60 and 30 px, torso 300 px
    swing = 2 * np.sin(0.4 * np.pi) / 300.0
    assert summary["arm_swing_left"] == pytest.approx(60.0 * swing, rel=0.03)
    assert summary["arm_swing_right"] == pytest.approx(30.0 * swing, rel=0.03)
    assert summary["arm_swing_asymmetry"] == pytest.approx(0.5, abs=0.03)
    assert summary["n_turns"] == 0 and summary["turning_share"] == 0


def test_turning_round_is_one_turn(config):
    features = gait.compute_features(walking(1.0, turn_at_s=5.0), None, FPS, SIZE, SIZE, config)
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    assert summary["n_turns"] == 1
    assert 0 < summary["turning_share"] < 0.1  # the filtered crossing is side-on for a moment
    assert gait.count_turns(np.array([1.0, 0.1, -0.1, 0.2, 1.0]), band=0.5) == 0  # jitter


def test_missing_frames_do_not_count_as_long_strides(config):
    landmarks = walking(1.0)
    landmarks[100:130] = np.nan  # one second without a person
    features = gait.compute_features(landmarks, None, FPS, SIZE, SIZE, config)
    summary = dict(zip(features.summary_names, features.summary, strict=True))
    assert summary["stride_time_mean_s"] == pytest.approx(1.0, rel=0.03)
    assert features.series[100:130, 5].sum() == 0  # pose_present


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(("task", "landmarks", "features", "points"), [
    ("pd4t_finger_tapping", "hands", "finger_tapping", 21),
    ("pd4t_hand_movement", "hands", "hand_movement", 21),
    ("pd4t_leg_agility", "pose", "leg_agility", 33),
    ("pd4t_gait", "pose", "gait", 33),
])
def test_every_pd4t_task_config_names_its_landmark_model_and_features(task, landmarks, features,
                                                                      points):
    spec = tasks.task_spec_from_config(compose([f"task={task}"]).task)
    assert (spec.landmarks.name, spec.features.name, spec.landmarks.n_points) == (
        landmarks, features, points)
    assert spec.record()["landmark_model_file"].endswith(".tflite")


def test_registry_refuses_unknown_names_and_pairs_that_do_not_fit():
    with pytest.raises(ValueError, match="task.landmarks must be one of"):
        tasks.task_spec("face", "gait")
    with pytest.raises(ValueError, match="task.features must be one of"):
        tasks.task_spec("pose", "toe_tapping")
    with pytest.raises(ValueError, match="reads pose landmarks.*task.landmarks=pose"):
        tasks.task_spec("hands", "gait")
    assert tasks.task_spec_from_config(None).features.name == "finger_tapping"


# --------------------------------------------------------------------------- store and inputs


def test_a_store_holds_pose_landmarks_of_one_model_only(tmp_path):
    """33-point landmarks round-trip and become 99 model channels; mixing 21 and 33 is refused."""
    from hawkeye.data import channel_names, frame_features
    from hawkeye.store import VideoEntry, load_store, write_store

    def entry(video_id: str, points: int) -> VideoEntry:
        landmarks = np.random.default_rng(0).random((7, points, 3)).astype(np.float32)
        return VideoEntry(id=video_id, subject=video_id[-3:], score=1, split="train",
                          series=np.zeros((7, 2), np.float32), summary=np.zeros(0), fps=30.0,
                          landmarks=landmarks)

    path = tmp_path / "pose.h5"
    write_store(path, [entry("v_l_001", 33)], ["a", "b"], [])
    data = load_store(path)
    assert data.landmarks.shape == (7, 33, 3)
    assert len(channel_names(data, "landmarks")) == 99
    assert frame_features(data, "both").shape == (7, 2 + 99)
    with pytest.raises(ValueError, match=r"landmarks of \[21, 33\] points"):
        write_store(path, [entry("v_r_002", 21)], ["a", "b"], [])
