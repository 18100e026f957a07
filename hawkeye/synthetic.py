"""A PD4T-shaped demo dataset: simulated finger-tapping hands in the real PD4T directory layout.

``python -m hawkeye.synthetic out=DIR [n_subjects=64 seed=0 ...]`` (``hawkeye-synthetic``, a
Hydra app on ``conf/synthetic.yaml``: ``--help``, ``--cfg job``, ``--info``; settings:
``conf/synthetic/``, any key of ``conf/synthetic/default.yaml`` is an override, nested ones dotted)
writes::

    DIR/Annotations/Finger tapping/{train,test}.csv              official split, by subject
    DIR/Annotations_split/Finger tapping/{train,valid,test}.csv  train/valid/test split, by subject
    DIR/Videos/Finger tapping/<subject>/<visit>_<l|r>.landmarks.npz   what a hand tracker would see
    DIR/Videos/Finger tapping/<subject>/<visit>_<l|r>.mp4        only with render_videos=true
    DIR/synthetic.json                                           the config and each trial's truth

Annotation rows have no header: ``<visit>_<l|r>_<subject>,<frame_count>,<score>`` (subject: three
digits, visit like ``15-001153``). A landmark file holds ``landmarks (T, 21, 3) float32`` in
MediaPipe's normalised image coordinates (x / width, y / height, z relative depth in the units of x,
wrist at 0), NaN where the hand is lost, plus ``fps``, ``width`` and ``height``
(see docs/architecture.md, "Precomputed landmark files").

The kinematic model (:func:`simulate_tapping`) follows the criteria of MDS-UPDRS item 3.4 (finger
tapping): speed, amplitude, hesitations and halts, decrementing amplitude. Its per-score tables
(``kinematics`` in ``conf/synthetic/default.yaml``) are fitted so that Hawkeye's features of the
generated trials match, score by score, what PARK's 489 real home-webcam videos show
(``docs/synthetic.md``, ``scripts/calibrate_synthetic.py``): the amplitude shrinks steadily with the
score (the wrist angle at the widest opening, from about 37 to 11 degrees), taps become less
uniform (amplitude variation, rhythm) and more often interrupted, while the tapping rate hardly
changes (3.3-3.6 taps/s at every score). Scores overlap as much as in the real data: each subject
has their own speed, amplitude and rhythm, each trial its own variation, and patients differ most
at scores 2-3.

Labels are noisy the way real ratings are: a trial is simulated at a continuous severity (its
score plus a normal spread), three simulated raters each read that severity with their own bias and
error (``raters``; fitted so that one rater disagrees with the consensus as often as PARK's experts
do, MAE 0.28, two raters with each other MAE 0.56), and the annotated score is their median, as
PARK's ground truth is the median of its three experts. ``synthetic.json`` keeps each rater's
score and the true severity.

A 21-point hand (MediaPipe landmark order) with plausible bone lengths opens and closes the thumb
and index finger in the image plane (a lateral view, as in clinical recordings); the other fingers
stay curled. Each trial is then placed in a frame of its own size (1920x1080, 640x480) with a
random hand scale, rotation and position, camera jitter and landmark noise; the left hand is the
mirror image of the right. Frames where the tracker loses the hand (short and occasional long gaps)
are NaN. Scores are imbalanced as in PARK and PD4T (most 1, then 2 and 0, few 3 and 4) and
correlated within a subject.

Everything is drawn from ``numpy.random.default_rng`` seeded by ``seed`` (each trial from its own
stream), and ``.npz`` files are written with fixed zip timestamps, so the same seed gives
byte-identical annotation and landmark files (and therefore identical content hashes, which keeps
preparation's resume working after a regeneration). Files are written atomically; rerunning into
an existing directory overwrites the files it names (files of an earlier, larger run stay behind,
unreferenced by the annotations).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from hawkeye.cli import SYNTHETIC_HELP, hydra_app, info_flags, run_app
from hawkeye.faults import os_error_message
from hawkeye.io import atomic_path, write_json_atomic, write_npz_deterministic, write_text_atomic
from hawkeye.synthetic_config import (
    Camera,
    Kinematics,
    Raters,
    SubjectVariation,
    SyntheticConfig,
    Tracking,
    load_synthetic_config,
    parse_resolution,
    synthetic_config_from,
)

N_LANDMARKS = 21
SCORES = (0, 1, 2, 3, 4)
# Bones of the MediaPipe hand (pairs of landmark indices), for drawing.
HAND_CONNECTIONS = (
    (0, 1), (1, 2), (2, 3), (3, 4),          # thumb
    (0, 5), (5, 6), (6, 7), (7, 8),          # index
    (5, 9), (9, 10), (10, 11), (11, 12),     # middle
    (9, 13), (13, 14), (14, 15), (15, 16),   # ring
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),  # pinky and palm
)


# ---------------------------------------------------------------------------------------------
# kinematics: MDS-UPDRS 3.4 severity -> tapping parameters -> aperture trace -> 21-point hand

@dataclass(frozen=True)
class HandStyle:
    """What makes one subject's tapping and hand their own (drawn by :func:`draw_style`)."""

    speed: float                 # multiplies the tapping frequency
    amplitude: float             # multiplies the opening amplitude
    rhythm: float                # multiplies the cycle-to-cycle irregularity of duration
    bone_scale: tuple[float, ...]  # per-bone length factors (20 bones), about 1


@dataclass(frozen=True)
class TappingParams:
    """The true parameters of one simulated trial (also written to synthetic.json)."""

    score: int              # the score the trial was drawn for (raters then read its severity)
    severity: float         # the continuous impairment simulated (score + N(0, severity_sd))
    frequency_hz: float
    amplitude: float
    closed_dwell: float
    opening_share: float
    rhythm_cv: float
    amplitude_cv: float
    decrement: float
    decrement_onset: float
    hesitation_per_tap: float
    freeze_per_tap: float


def draw_style(rng: np.random.Generator, subjects: SubjectVariation) -> HandStyle:
    """A random subject: speed, amplitude and rhythm factors and slightly different bones."""
    return HandStyle(speed=float(rng.lognormal(0.0, subjects.speed_sd)),
                     amplitude=float(np.clip(rng.lognormal(0.0, subjects.amplitude_sd),
                                             *subjects.amplitude_range)),
                     rhythm=float(rng.lognormal(0.0, subjects.rhythm_sd)),
                     bone_scale=tuple(float(v) for v in np.clip(
                         rng.normal(1.0, subjects.bone_sd, 20), *subjects.bone_range)))


def tapping_params(score: int, style: HandStyle, rng: np.random.Generator,
                   kinematics: Kinematics) -> TappingParams:
    """The MDS-UPDRS 3.4 severity table for ``score``, scaled by the subject and a trial's noise.

    With ``kinematics.severity_sd > 0`` the trial's true severity is ``score + N(0, severity_sd)``
    (clipped to 0..4) and the tables are interpolated there; the raters (:func:`rate`) then read
    that severity, so neighbouring scores overlap as they do in real data. Frequency and amplitude
    are the table's times the subject's factor times the trial's own lognormal factor; rhythm and
    amplitude variation, the pause chances and the decrement vary per trial as well.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score}")
    k = kinematics
    severity = float(score)
    if k.severity_sd > 0:
        severity = float(np.clip(score + rng.normal(0.0, k.severity_sd), SCORES[0], SCORES[-1]))

    def table(values: Sequence[float]) -> float:
        return float(np.interp(severity, SCORES, values))

    frequency = table(k.frequency_hz) * style.speed * float(rng.lognormal(0.0, k.trial_speed_sd))
    amplitude = (table(k.amplitude) * style.amplitude
                 * float(rng.lognormal(0.0, table(k.amplitude_sd))))
    rhythm = table(k.rhythm_cv) * style.rhythm * float(rng.lognormal(0.0, k.trial_rhythm_sd))
    amplitude_cv = table(k.amplitude_cv) * float(rng.lognormal(0.0, k.trial_amplitude_cv_sd))
    pauses = float(rng.lognormal(0.0, k.trial_pause_sd))  # some trials pause more than others
    # A negative decrement is an amplitude that grows over the trial (warming up), as seen in
    # real recordings; it stays within what the amplitude clip allows.
    decrement = float(np.clip(table(k.decrement) + rng.normal(0.0, k.trial_decrement_sd),
                              -0.5, 0.95))
    return TappingParams(
        score=score, severity=severity, frequency_hz=frequency, amplitude=min(1.0, amplitude),
        closed_dwell=table(k.closed_dwell), opening_share=table(k.opening_share),
        rhythm_cv=rhythm, amplitude_cv=amplitude_cv,
        decrement=decrement, decrement_onset=table(k.decrement_onset),
        hesitation_per_tap=min(1.0, table(k.hesitation_per_tap) * pauses),
        freeze_per_tap=min(1.0, table(k.freeze_per_tap) * pauses))


def aperture_trace(params: TappingParams, n_frames: int, fps: float, rng: np.random.Generator,
                   kinematics: Kinematics) -> np.ndarray:
    """Thumb-index opening per frame, ``(n_frames,)`` in [0, 1] (0 = tips touch, 1 = widest).

    A tapping phase advances one unit per cycle; cycles have jittered durations (rhythm), their own
    amplitude (variation, and the decrement after its onset), and a pause may hold the phase
    mid-cycle (hesitation, or a freeze). Each cycle starts with the fingers resting closed for a
    share ``d`` of it (``closed_dwell``), then opens during a share ``p`` (``opening_share``) of
    the rest and closes, faster when ``p > 0.5``: with ``v = max(0, u - d) / (1 - d)`` at phase
    ``u`` within the cycle, the opening is ``A_k (1 - cos(pi v / p)) / 2`` while ``v < p`` and
    ``A_k (1 + cos(pi (v - p) / (1 - p))) / 2`` after.
    """
    k = kinematics
    duration = n_frames / fps
    t = float(rng.uniform(*k.start_delay_s))  # the tapping starts shortly after the recording
    knot_t, knot_phase, amplitudes = [0.0, t], [0.0, 0.0], []
    cycle = 0
    while t < duration:
        progress = t / duration
        ramp = np.clip((progress - params.decrement_onset) / max(1e-6, 1 - params.decrement_onset),
                       0.0, 1.0)
        amplitude = params.amplitude * (1.0 - params.decrement * ramp)
        amplitudes.append(float(np.clip(amplitude * rng.lognormal(0.0, params.amplitude_cv),
                                        0.02, 1.0)))
        # The sequence effect: cycles also slow down as the amplitude decrements.
        period = (1.0 / params.frequency_hz) * (1.0 + k.sequence_slowing * params.decrement * ramp)
        period *= float(rng.lognormal(0.0, params.rhythm_cv))
        pause = 0.0
        if rng.random() < params.freeze_per_tap:
            pause = float(rng.uniform(*k.freeze_s))
        elif rng.random() < params.hesitation_per_tap:
            pause = float(rng.uniform(*k.hesitation_s))
        if pause:
            at = float(rng.uniform(*k.pause_position))  # the hold comes part way through a cycle
            knot_t += [t + at * period, t + at * period + pause]
            knot_phase += [cycle + at, cycle + at]
            t += pause
        t += period
        cycle += 1
        knot_t.append(t)
        knot_phase.append(float(cycle))
    if not amplitudes:  # a recording too short for the tapping to start
        return np.zeros(n_frames)
    frame_t = np.arange(n_frames) / fps
    phase = np.interp(frame_t, knot_t, knot_phase)
    index = np.minimum(phase.astype(np.int64), len(amplitudes) - 1)
    amplitude = np.asarray(amplitudes)[np.maximum(index, 0)]
    moving = np.clip((phase - np.floor(phase) - params.closed_dwell)
                     / (1.0 - params.closed_dwell), 0.0, 1.0)
    p = params.opening_share
    shape = np.where(moving < p, 1.0 - np.cos(np.pi * moving / p),
                     1.0 + np.cos(np.pi * (moving - p) / (1.0 - p)))
    return amplitude * 0.5 * shape


# Right hand, lateral view, in palm lengths (wrist -> middle MCP = 1); x towards the thumb, y up,
# z away from the camera. Each finger is a chain of three bones from its base joint.
_THUMB_BASE, _THUMB_BONES = (0.22, 0.22), (0.40, 0.32, 0.27)
_FINGER_BASES = ((0.28, 0.95), (0.06, 1.00), (-0.14, 0.93), (-0.32, 0.80))  # index..pinky MCP
_FINGER_BONES = ((0.45, 0.27, 0.22), (0.50, 0.30, 0.23), (0.46, 0.28, 0.22), (0.36, 0.22, 0.20))
_FINGER_DIRECTION_DEG = (95.0, 92.0, 97.0, 102.0)
_FINGER_DEPTH = (0.0, 0.06, 0.12, 0.18)
# Joint angles (degrees) of the thumb and index at full opening and when the tips touch; the closed
# pose was solved so that the two tips meet (distance < 0.01 palm lengths with unit bones).
# The thumb: direction of its first bone, then three flexions; the index: three flexions.
# At full opening the thumb-index angle at the wrist is 64.5 degrees (PARK's widest taps reach
# about 60), the index slightly extended.
_THUMB_OPEN, _THUMB_CLOSED = (16.3, 0.0, 3.75, 3.75), (34.78, 0.0, 10.0, 10.0)
_INDEX_OPEN, _INDEX_CLOSED = (7.77, 6.82, 4.96), (-56.06, -67.27, -44.85)
_CURLED = (-75.0, -85.0, -50.0)  # middle, ring, little finger: curled towards the palm


def _chain(base: np.ndarray, direction: np.ndarray, bones: Sequence[float],
           flexion: np.ndarray) -> np.ndarray:
    """Joint positions ``(T, 3, 2)`` of a three-bone chain (forward kinematics in the plane).

    ``base`` ``(2,)``, ``direction`` ``(T,)`` radians of the first bone before flexion, ``flexion``
    ``(T, 3)`` radians, each relative to the previous bone.
    """
    angles = direction[:, None] + np.cumsum(flexion, axis=1)                  # (T, 3)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=-1) * np.asarray(bones)[None, :, None]
    return base[None, None, :] + np.cumsum(steps, axis=1)                     # (T, 3, 2)


def hand_pose(aperture: np.ndarray, style: HandStyle | None = None) -> np.ndarray:
    """Right-hand landmarks ``(T, 21, 3)`` in palm lengths for an opening ``(T,)`` in [0, 1]."""
    a = np.clip(np.asarray(aperture, dtype=np.float64), 0.0, 1.0)[:, None]   # (T, 1)
    scale = np.ones(20) if style is None else np.asarray(style.bone_scale)
    n = len(a)
    xy = np.zeros((n, N_LANDMARKS, 2))
    z = np.zeros((n, N_LANDMARKS))

    def lerp(closed: Sequence[float], opened: Sequence[float]) -> np.ndarray:
        # joint angles (T, k) in radians, from the closed pose (a = 0) to the open one (a = 1)
        return np.deg2rad(np.asarray(closed) + a * (np.asarray(opened) - np.asarray(closed)))

    thumb = lerp(_THUMB_CLOSED, _THUMB_OPEN)                                   # (T, 4)
    thumb_base = np.asarray(_THUMB_BASE) * scale[0]
    xy[:, 1] = thumb_base
    xy[:, 2:5] = _chain(thumb_base, thumb[:, 0], np.asarray(_THUMB_BONES) * scale[1:4],
                        thumb[:, 1:])
    z[:, 1:5] = -0.02 * np.arange(1, 5)  # the thumb is nearest the camera
    for f in range(4):
        first = 5 + 4 * f
        base = np.asarray(_FINGER_BASES[f]) * scale[4 + 4 * f]
        bones = np.asarray(_FINGER_BONES[f]) * scale[5 + 4 * f:8 + 4 * f]
        if f == 0:
            flexion = lerp(_INDEX_CLOSED, _INDEX_OPEN)
        else:  # a small sympathetic movement of the curled fingers
            flexion = np.deg2rad(np.asarray(_CURLED) + 6.0 * a)
        direction = np.full(n, np.deg2rad(_FINGER_DIRECTION_DEG[f]))
        xy[:, first] = base
        xy[:, first + 1:first + 4] = _chain(base, direction, bones, flexion)
        # The flexing index comes towards the camera so that its tip meets the thumb's.
        z[:, first:first + 4] = _FINGER_DEPTH[f] + (-0.08 * (1.0 - a) * np.array([0, 0.3, 0.6, 1.0])
                                                    if f == 0 else 0.0)
    return np.concatenate([xy, z[..., None]], axis=-1)


def simulate_tapping(score: int, n_frames: int, fps: float, rng: np.random.Generator,
                     cfg: SyntheticConfig, style: HandStyle | None = None) -> np.ndarray:
    """One finger-tapping trial of MDS-UPDRS 3.4 severity ``score`` as hand landmarks.

    Returns ``(n_frames, 21, 3)`` float64 in hand coordinates (palm lengths, right hand, wrist at
    the origin, y up, z away from the camera), before any camera placement, noise or dropout; a new
    subject is drawn from ``rng`` (with ``cfg.subjects``) unless ``style`` is given; the kinematics
    are ``cfg.kinematics``. Pure: depends only on its arguments.
    """
    if n_frames < 1 or fps <= 0:
        raise ValueError(f"need n_frames >= 1 and fps > 0, got {n_frames}, {fps}")
    style = draw_style(rng, cfg.subjects) if style is None else style
    params = tapping_params(score, style, rng, cfg.kinematics)
    return hand_pose(aperture_trace(params, n_frames, fps, rng, cfg.kinematics), style)


def rate(severity: float, rng: np.random.Generator, raters: Raters) -> tuple[int, ...]:
    """Each rater's score 0..4 of a trial of continuous ``severity``: their reading (severity +
    bias + N(0, sd)) rounded and clipped to the scale. The annotated score is their median."""
    readings = severity + np.asarray(raters.bias) + rng.normal(0.0, raters.sd, len(raters.bias))
    return tuple(int(v) for v in np.clip(np.round(readings), SCORES[0], SCORES[-1]))


# ---------------------------------------------------------------------------------------------
# camera: placement in the frame, jitter, noise, dropouts


def place_in_frame(hand: np.ndarray, width: int, height: int, mirror: bool,
                   rng: np.random.Generator, camera: Camera) -> np.ndarray:
    """Hand coordinates ``(T, 21, 3)`` -> MediaPipe-normalised image coordinates ``(T, 21, 3)``.

    Draws a hand scale (palm length a share ``camera.palm_height_share`` of the frame height), a
    rotation (+-``camera.rotation_deg``, drifting slowly), a position that keeps the hand in the
    frame, slow drift plus per-frame camera jitter and landmark noise. ``mirror`` flips x (a left
    hand). x and y are divided by width and height separately (non-square frames); z is in the
    units of x, relative to the wrist.
    """
    c = camera
    n = len(hand)
    pts = hand.copy()
    if mirror:
        pts[..., 0] *= -1.0
    scale = float(rng.uniform(*c.palm_height_share)) * height              # pixels per palm length
    # The size wobbles slowly: 0.3 to 1 sine cycles over the trial, from a random phase.
    scale_t = scale * (1.0 + c.scale_wobble * np.sin(
        2 * np.pi * np.arange(n) / max(n, 1) * rng.uniform(0.3, 1.0) + rng.uniform(0, 2 * np.pi)))
    angle = np.deg2rad(rng.uniform(-c.rotation_deg, c.rotation_deg)
                       + np.cumsum(rng.normal(0, c.rotation_drift_deg, n)))
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = (pts[..., 0] * cos - pts[..., 1] * sin) * scale_t[:, None]
    y = -(pts[..., 0] * sin + pts[..., 1] * cos) * scale_t[:, None]          # image y points down
    x += rng.normal(0, c.landmark_noise, x.shape) * scale
    y += rng.normal(0, c.landmark_noise, y.shape) * scale
    # Slow drift (bounded AR(1)) plus frame-to-frame camera shake, in pixels.
    px = height / 480.0
    drift = np.zeros((n, 2))
    for i in range(1, n):
        drift[i] = c.drift_memory * drift[i - 1] + rng.normal(0, c.drift_px * px, 2)
    shake = rng.normal(0, c.shake_px * px, (n, 2))
    x_lo, x_hi, y_lo, y_hi = x.min(), x.max(), y.min(), y.max()
    margin = c.margin
    cx = rng.uniform(margin * width - x_lo, (1 - margin) * width - x_hi) if (
        x_hi - x_lo < (1 - 2 * margin) * width) else width / 2 - (x_lo + x_hi) / 2
    cy = rng.uniform(margin * height - y_lo, (1 - margin) * height - y_hi) if (
        y_hi - y_lo < (1 - 2 * margin) * height) else height / 2 - (y_lo + y_hi) / 2
    x += cx + (drift[:, 0] + shake[:, 0])[:, None]
    y += cy + (drift[:, 1] + shake[:, 1])[:, None]
    z = pts[..., 2] * scale_t[:, None]
    return np.stack([x / width, y / height, (z - z[:, :1]) / width], axis=-1)


def drop_frames(landmarks: np.ndarray, rng: np.random.Generator, tracking: Tracking,
                fps: float) -> np.ndarray:
    """NaN for frames where the tracker 'loses the hand': short gaps and an occasional long one."""
    t = tracking
    out = landmarks.copy()
    n = len(out)
    lost = np.zeros(n, dtype=bool)
    shortest, longest = t.short_gap_frames
    for _ in range(int(rng.poisson(t.short_gaps_per_100_frames * n / 100.0))):
        start = int(rng.integers(0, n))
        lost[start:start + int(rng.integers(shortest, longest + 1))] = True
    if rng.random() < t.long_gap_probability:
        length = min(int(rng.uniform(*t.long_gap_s) * fps), int(n * t.long_gap_max_share))
        start = int(rng.integers(0, max(1, n - length)))
        lost[start:start + length] = True
    if lost.all():  # a trial always keeps at least one tracked frame
        lost[0] = False
    out[lost] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# the dataset


@dataclass(frozen=True)
class SyntheticVideo:
    """One generated trial: annotation fields, file locations and its true tapping parameters."""

    id: str                 # annotation id <visit>_<l|r>_<subject>
    subject: str
    visit: str
    hand: str               # l or r
    score: int              # the annotated score: the median of the raters' ratings
    ratings: tuple[int, ...]  # each simulated rater's score of this trial
    n_frames: int
    fps: float
    width: int
    height: int
    official_split: str     # train | test (Annotations/)
    split: str              # train | valid | test (Annotations_split/)
    landmarks_path: Path
    video_path: Path | None
    params: TappingParams


def _subject_splits(subjects: list[str], cfg: SyntheticConfig, rng: np.random.Generator
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """Subject -> official split (train/test) and -> train/valid/test; no subject in two splits."""
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    n_test = max(1, round(cfg.test_fraction * len(order))) if len(order) > 1 else 0
    n_valid = round(cfg.valid_fraction * len(order)) if len(order) > 2 else 0
    official = {s: ("test" if k < n_test else "train") for k, s in enumerate(order)}
    split = {s: ("test" if k < n_test else "valid" if k < n_test + n_valid else "train")
             for k, s in enumerate(order)}
    return official, split


def _plan(cfg: SyntheticConfig) -> list[dict[str, Any]]:
    """Who was recorded when: subjects, visits, hands, scores, lengths and frame sizes."""
    rng = np.random.default_rng(cfg.seed)
    subjects = [f"{k:03d}" for k in range(1, cfg.n_subjects + 1)]
    official, split = _subject_splits(subjects, cfg, rng)
    plan, serial = [], 1000
    for subject in subjects:
        severity = int(rng.choice(len(SCORES), p=np.asarray(cfg.score_probs)))
        for _ in range(int(rng.integers(cfg.visits_min, cfg.visits_max + 1))):
            serial += int(rng.integers(1, 400))
            visit = f"{int(rng.integers(15, 24)):02d}-{serial:06d}"
            for hand in ("l", "r"):
                # Hands and visits differ a little from the subject's typical severity.
                score = int(np.clip(severity + rng.choice(
                    [-1, 0, 1], p=np.asarray(cfg.subjects.hand_score_change)), 0, 4))
                width, height = parse_resolution(cfg.resolutions[int(rng.integers(
                    len(cfg.resolutions)))])
                plan.append(dict(subject=subject, visit=visit, hand=hand, score=score,
                                 n_frames=int(rng.integers(cfg.min_frames, cfg.max_frames + 1)),
                                 width=width, height=height,
                                 official_split=official[subject], split=split[subject]))
    return plan


def render_video(path: str | os.PathLike[str], landmarks: np.ndarray, fps: float, width: int,
                 height: int) -> None:
    """Write an ``.mp4`` (mp4v) drawing the hand skeleton of ``landmarks`` frame by frame.

    Frames where the hand is NaN show the empty background. The file is written atomically.
    """
    import cv2  # imported here: generating landmark files alone does not need OpenCV

    path = Path(path)
    with atomic_path(path) as tmp:
        # OpenCV picks the container from the extension, so write to a .mp4 name, then move it.
        video_tmp = tmp.with_name(tmp.name + ".mp4")
        try:
            writer = cv2.VideoWriter(str(video_tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                     (int(width), int(height)))
            if not writer.isOpened():
                raise RuntimeError(f"{path}: OpenCV could not open an mp4v video writer "
                                   f"(is this OpenCV build missing FFmpeg?)")
            try:
                for frame_landmarks in landmarks:
                    writer.write(_draw_hand(frame_landmarks, width, height))
            finally:
                writer.release()
            os.replace(video_tmp, tmp)
        finally:
            video_tmp.unlink(missing_ok=True)


def _draw_hand(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """One BGR frame ``(height, width, 3)``: the skeleton of ``landmarks (21, 3)``, plain wall."""
    import cv2

    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = (214, 222, 226)
    if np.isnan(landmarks[0, 0]):  # the tracker lost the hand: show the empty background
        return frame
    thickness = max(2, round(height / 180))
    pixels = np.round(landmarks[:, :2] * (width, height)).astype(np.int32)
    for a, b in HAND_CONNECTIONS:
        cv2.line(frame, tuple(pixels[a].tolist()), tuple(pixels[b].tolist()), (94, 135, 196),
                 thickness, cv2.LINE_AA)
    for point in pixels:
        cv2.circle(frame, tuple(point.tolist()), thickness + 1, (40, 60, 150), -1, cv2.LINE_AA)
    return frame


def generate_dataset(out_dir: str | os.PathLike[str], cfg: SyntheticConfig
                     ) -> list[SyntheticVideo]:
    """Write the demo dataset of ``cfg`` under ``out_dir`` (the PD4T root); return its trials."""
    root = Path(out_dir)
    video_dir = root / "Videos" / cfg.task
    style_rng = np.random.default_rng([cfg.seed, 1])
    plan = _plan(cfg)
    styles = {s: draw_style(style_rng, cfg.subjects) for s in sorted({p["subject"] for p in plan})}
    videos = []
    for k, item in enumerate(plan):
        rng = np.random.default_rng([cfg.seed, 2, k])  # one stream per trial
        params = tapping_params(item["score"], styles[item["subject"]], rng, cfg.kinematics)
        ratings = rate(params.severity, np.random.default_rng([cfg.seed, 3, k]), cfg.raters)
        hand = hand_pose(aperture_trace(params, item["n_frames"], cfg.fps, rng, cfg.kinematics),
                         styles[item["subject"]])
        landmarks = place_in_frame(hand, item["width"], item["height"], item["hand"] == "l", rng,
                                   cfg.camera)
        landmarks = drop_frames(landmarks, rng, cfg.tracking, cfg.fps).astype(np.float32)
        stem = f"{item['visit']}_{item['hand']}"
        folder = video_dir / item["subject"]
        landmarks_path = folder / f"{stem}.landmarks.npz"
        write_npz_deterministic(landmarks_path, {
            "landmarks": landmarks, "fps": np.float64(cfg.fps),
            "width": np.int64(item["width"]), "height": np.int64(item["height"])})
        video_path = None
        if cfg.render_videos:
            video_path = folder / f"{stem}.mp4"
            render_video(video_path, landmarks, cfg.fps, item["width"], item["height"])
        videos.append(SyntheticVideo(
            id=f"{stem}_{item['subject']}", subject=item["subject"], visit=item["visit"],
            hand=item["hand"], score=int(np.median(ratings)), ratings=ratings,
            n_frames=item["n_frames"], fps=cfg.fps,
            width=item["width"], height=item["height"], official_split=item["official_split"],
            split=item["split"], landmarks_path=landmarks_path, video_path=video_path,
            params=params))
    _write_annotations(root, cfg, videos)
    return videos


def _annotation_rows(videos: list[SyntheticVideo]) -> str:
    return "".join(f"{v.id},{v.n_frames},{v.score}\n" for v in videos)


def _write_annotations(root: Path, cfg: SyntheticConfig, videos: list[SyntheticVideo]) -> None:
    for split in ("train", "test"):
        write_text_atomic(root / "Annotations" / cfg.task / f"{split}.csv",
                          _annotation_rows([v for v in videos if v.official_split == split]))
    if cfg.write_split:
        for split in ("train", "valid", "test"):
            write_text_atomic(root / "Annotations_split" / cfg.task / f"{split}.csv",
                              _annotation_rows([v for v in videos if v.split == split]))
    write_json_atomic(root / "synthetic.json", {
        "generator": "hawkeye.synthetic",
        "config": dataclasses.asdict(cfg),
        "videos": [{"id": v.id, "subject": v.subject, "hand": v.hand, "score": v.score,
                    "ratings": list(v.ratings),
                    "n_frames": v.n_frames, "width": v.width, "height": v.height,
                    "official_split": v.official_split, "split": v.split,
                    "params": dataclasses.asdict(v.params)} for v in videos]})


# ---------------------------------------------------------------------------------------------
# command line: python -m hawkeye.synthetic out=DIR key=value ... (Hydra, conf/synthetic.yaml)


@hydra_app(SYNTHETIC_HELP)
def _synthetic_app(cfg: DictConfig) -> None:
    if not cfg.out:
        print("error: pass out=DIR (the PD4T root to write); see hawkeye-synthetic --help",
              file=sys.stderr)
        sys.exit(2)
    settings = synthetic_config_from(cfg)  # main has checked the overrides
    try:
        videos = generate_dataset(cfg.out, settings)
    except OSError as err:  # full disk, read-only or forbidden folder
        print(f"error: {os_error_message(err, f'demo dataset {cfg.out}')}", file=sys.stderr)
        sys.exit(2)
    counts = np.bincount([v.score for v in videos], minlength=len(SCORES))
    print(f"wrote {len(videos)} trials of {settings.n_subjects} subjects to {cfg.out} "
          f"(scores 0..4: {counts.tolist()}; videos: {'yes' if settings.render_videos else 'no'})")


def main(argv: Sequence[str] | None = None) -> int:
    """``hawkeye-synthetic out=DIR [key=value ...]`` (``python -m hawkeye.synthetic``); returns
    the exit code: 0 written, 2 for a bad setting (named) or a folder that cannot be written."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not info_flags(args):
        try:  # checked here first: a bad key is exit 2 with its name, not Hydra's exit 1
            load_synthetic_config([a for a in args if not a.startswith("-")])
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run_app(_synthetic_app, args)


if __name__ == "__main__":
    sys.exit(main())
