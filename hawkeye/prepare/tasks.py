"""Which landmark model and which features a PD4T task uses: objects built from config.

A task config names both (``conf/task/pd4t_*.yaml``)::

    landmarks: hands | pose          # LANDMARK_MODELS: MediaPipe Hands (21 points) or Pose (33)
    features: finger_tapping | hand_movement | leg_agility | gait   # FEATURE_SETS

:func:`task_spec` looks them up and checks that the feature set reads the landmarks the model
gives; :mod:`hawkeye.prepare.worker` then asks the :class:`TaskSpec` for the detector, the
side choice and the feature function instead of testing task names. A new task is a new entry
in these two tables (and its config), not a new branch in the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from hawkeye.plotting import GENERIC_SCORE, ScoreScale, score_scale
from hawkeye.prepare import features as ft
from hawkeye.prepare import gait, hand_movement, leg_agility, pose
from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.qc import TraceStyle

# compute(landmarks, presence, fps, width, height, config, side) -> VideoFeatures
Compute = Callable[..., ft.VideoFeatures]
# choose_side(landmarks (T, K, 3), annotated side, width, height, pose settings) -> HandChoice
ChooseSide = Callable[[np.ndarray, str, int, int, pose.PoseSettings], lm.HandChoice]


def _finger_tapping(landmarks: np.ndarray, presence: np.ndarray | None, fps: float,
                    width: float, height: float, config: ft.FeatureConfig,
                    side: str = "") -> ft.VideoFeatures:
    """Finger tapping's features (the hand was chosen before: ``side`` is not used)."""
    return ft.compute_features(landmarks, presence, fps, width, height, config)


@dataclass(frozen=True)
class FeatureSet:
    """The clinical features of one task and the landmarks they read."""

    name: str                       # task.features value
    landmarks: str                  # the LANDMARK_MODELS entry it needs
    series_names: tuple[str, ...]   # per-frame series, in column order
    summary_names: tuple[str, ...]  # per-video summary, in column order
    compute: Compute                # the pure feature function
    trace: TraceStyle               # how the per-video cycle-trace figure draws series 0
    choose_side: ChooseSide | None = None  # pose tasks with one side: which one (else both)


# The trace figures' fixed scales (same axes for every video of a task) cover the range of the
# demo data of each task (python -m hawkeye.synthetic_tasks; finger tapping: -0.18 to 1.94 hand
# sizes, speeds to 20 hand sizes/s); a real trace outside them is cut at the axis, not rescaled.
FEATURE_SETS: dict[str, FeatureSet] = {f.name: f for f in (
    FeatureSet("finger_tapping", "hands", ft.SERIES_NAMES, ft.SUMMARY_NAMES, _finger_tapping,
               trace=TraceStyle("thumb-index distance (hand sizes)", (-0.2, 2.0), 20.0, 10.0)),
    FeatureSet("hand_movement", "hands", hand_movement.SERIES_NAMES, hand_movement.SUMMARY_NAMES,
               hand_movement.compute_features,
               trace=TraceStyle("hand aperture (palm sizes)", (0.0, 2.0), 10.0, 15.0)),
    FeatureSet("leg_agility", "pose", leg_agility.SERIES_NAMES, leg_agility.SUMMARY_NAMES,
               leg_agility.compute_features, choose_side=pose.choose_leg,
               trace=TraceStyle("heel height (leg lengths)", (-1.6, -0.4), 6.0, 15.0)),
    FeatureSet("gait", "pose", gait.SERIES_NAMES, gait.SUMMARY_NAMES, gait.compute_features,
               trace=TraceStyle("ankle separation (torso lengths)", (0.0, 1.4), 5.0, 34.0)),
)}


class LandmarkModel(Protocol):
    """A MediaPipe landmark model: its detector and how one video's detections become landmarks."""

    name: str        # task.landmarks value
    subject: str     # what it detects, for messages: "hand" | "person"
    n_points: int    # landmarks per frame
    model_file: str  # the model file inside the mediapipe wheel (recorded in the store's attrs)

    def process_detector(self, settings: Any) -> Any:
        """This process's detector (``detect(frame) -> detections``, ``reset()``)."""

    def close_process_detector(self) -> None:
        """Free this process's detector."""

    def select(self, detections: Sequence[Any], side: str, width: int, height: int,
               settings: Any, features: FeatureSet) -> tuple[np.ndarray, lm.HandChoice]:
        """(T, n_points, 3) landmarks of the person or hand doing the task, and why."""

    def precomputed(self, landmarks: np.ndarray, side: str, width: int, height: int,
                    settings: Any, features: FeatureSet, file_name: str) -> lm.HandChoice:
        """The choice record for landmarks read from a file."""


class HandModel:
    """MediaPipe Hands: tracks of up to ``max_num_hands`` hands, the annotated one chosen."""

    name, subject, n_points = "hands", "hand", lm.N_LANDMARKS
    model_file = "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"

    def process_detector(self, settings: Any) -> lm.HandDetector:
        return lm.process_detector(**settings.detector_settings())

    def close_process_detector(self) -> None:
        lm.close_process_detector()

    def select(self, detections: Sequence[Any], side: str, width: int, height: int,
               settings: Any, features: FeatureSet) -> tuple[np.ndarray, lm.HandChoice]:
        cfg = settings.landmarks
        tracks = lm.track_hands(detections, cfg["max_num_hands"], cfg["new_track_distance"])
        choice = lm.choose_hand(tracks, side, width=width, height=height,
                                **settings.choice_settings())
        return lm.select_track(tracks, choice), choice

    def precomputed(self, landmarks: np.ndarray, side: str, width: int, height: int,
                    settings: Any, features: FeatureSet, file_name: str) -> lm.HandChoice:
        return lm.HandChoice(track=0, n_tracks=1, label="", reason="precomputed",
                             detail=f"landmarks of the task hand read from {file_name}")


class PoseModel:
    """MediaPipe Pose (full model): one person; the feature set chooses the side, if any."""

    name, subject, n_points, model_file = "pose", "person", pose.N_POINTS, pose.MODEL_FILE

    def process_detector(self, settings: Any) -> pose.PoseDetector:
        cfg = settings.pose
        return pose.process_detector(cfg.min_detection_confidence, cfg.min_tracking_confidence)

    def close_process_detector(self) -> None:
        pose.close_process_detector()

    def select(self, detections: Sequence[Any], side: str, width: int, height: int,
               settings: Any, features: FeatureSet) -> tuple[np.ndarray, lm.HandChoice]:
        landmarks = pose.stack(list(detections))
        return landmarks, self._choose(landmarks, side, width, height, settings, features)

    def precomputed(self, landmarks: np.ndarray, side: str, width: int, height: int,
                    settings: Any, features: FeatureSet, file_name: str) -> lm.HandChoice:
        return self._choose(landmarks, side, width, height, settings, features)

    @staticmethod
    def _choose(landmarks: np.ndarray, side: str, width: int, height: int, settings: Any,
                features: FeatureSet) -> lm.HandChoice:
        if features.choose_side is None:
            return pose.both_sides(landmarks)
        return features.choose_side(landmarks, side, width, height, settings.pose)


LANDMARK_MODELS: dict[str, LandmarkModel] = {m.name: m for m in (HandModel(), PoseModel())}


@dataclass(frozen=True)
class TaskSpec:
    """The landmark model and feature set of one task (``task.landmarks``, ``task.features``)."""

    landmarks: LandmarkModel
    features: FeatureSet
    score: ScoreScale = ScoreScale(GENERIC_SCORE)  # how figures name the score (task.score_label)

    def names(self) -> dict[str, str]:
        """The task config's two keys: ``{"landmarks": ..., "features": ...}``."""
        return {"landmarks": self.landmarks.name, "features": self.features.name}

    def record(self) -> dict[str, Any]:
        """What the store's attrs say about how its landmarks and features were made."""
        return {**self.names(), "landmark_model_file": self.landmarks.model_file,
                "landmark_points": self.landmarks.n_points}


def task_spec(landmarks: str, features: str) -> TaskSpec:
    """Look up both names; ValueError names a wrong one or a pair that does not fit."""
    if landmarks not in LANDMARK_MODELS:
        raise ValueError(f"task.landmarks must be one of {sorted(LANDMARK_MODELS)}, "
                         f"got {landmarks!r}")
    if features not in FEATURE_SETS:
        raise ValueError(f"task.features must be one of {sorted(FEATURE_SETS)}, got {features!r}")
    feature_set = FEATURE_SETS[features]
    if feature_set.landmarks != landmarks:
        raise ValueError(f"task.features={features} reads {feature_set.landmarks} landmarks, but "
                         f"task.landmarks={landmarks}: set task.landmarks={feature_set.landmarks}")
    return TaskSpec(LANDMARK_MODELS[landmarks], feature_set)


# Stores and models prepared before tasks named their landmarks and features were all finger
# tapping: a recorded prepare section without "task" means this.
FINGER_TAPPING = {"landmarks": "hands", "features": "finger_tapping"}


def task_spec_from_config(task_cfg: Mapping[str, Any] | None) -> TaskSpec:
    """:func:`task_spec` of a ``task`` section (or a recorded ``{"landmarks", "features"}``);
    None = :data:`FINGER_TAPPING`."""
    section = FINGER_TAPPING if task_cfg is None else task_cfg
    spec = task_spec(str(section["landmarks"]), str(section["features"]))
    return replace(spec, score=score_scale(section))
