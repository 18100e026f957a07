"""Hand landmarks: MediaPipe in tracking mode, choosing the hand that does the task, filling gaps.

Output contract (docs/architecture.md): ``landmarks`` float32 ``(T, 21, 3)`` in MediaPipe's
normalised image coordinates (x / width, y / height, z relative depth), NaN where no hand;
``presence = ~np.isnan(landmarks[:, 0, 0])``.

Which hand? Clinical finger-tapping videos often show both hands; the annotation says which side
(``l``/``r``) performs the task. Three pieces decide, each a pure function tested on its own:

1. :func:`track_hands` gives each detected hand a stable identity over the video by position
   (MediaPipe returns hands in no fixed order, and its handedness label can flip between frames).
2. :func:`side_from_label`: MediaPipe's handedness label assumes a *mirrored* (selfie) image; a
   clinical camera usually is not mirrored, so the person's right hand is labelled "Left". The
   mirror convention is a config value (``prepare.landmarks.mirrored``).
3. :func:`choose_hand` takes the track whose (mirror-corrected, score-weighted majority) label
   matches the annotated side, then checks it against the motion: the tapping hand's
   thumb–index distance oscillates (:func:`oscillation`). When both hands are present and the
   label-chosen one does not oscillate but the other does, the other is taken and the
   :class:`HandChoice` record says so (it goes into the QC report).

Gaps: :func:`fill_gaps` interpolates short runs of missing frames linearly and leaves long ones NaN.
Landmarks can also come from files beside the videos (:func:`load_precomputed`), written by
``hawkeye.synthetic`` or another pose estimator; everything after this module is the same code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hawkeye.prepare import features

N_LANDMARKS = 21
PRECOMPUTED_SUFFIX = ".landmarks.npz"
_LABEL_SIDE = {"Left": "l", "Right": "r"}


class LandmarkError(ValueError):
    """A landmark file that cannot be used; the message names the file and the problem."""


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class Detection:
    """One hand MediaPipe found in one frame."""

    landmarks: np.ndarray  # (21, 3) float32, normalised x, y and relative z
    label: str             # MediaPipe handedness label, "Left" or "Right" (selfie convention)
    score: float           # handedness classification score, 0..1


# MediaPipe's hand tracking graph as the wheel ships it (the legacy Hands solution runs this file).
_TRACKING_GRAPH = "modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"
_PALM_IMAGE = "palm_detection_image"          # the graph's stream into the palm detector
_PALM_IMAGE_GATED = "palm_detection_image_searched"
_PALM_ALLOWED = "palm_search_allowed"         # the stream this module adds: search this frame?


def hand_tracking_graph() -> Any:
    """MediaPipe's hand tracking graph with one more gate in front of the palm detector.

    The stock graph runs the palm detector on every frame in which fewer than ``max_num_hands``
    hands are tracked: with one hand in view and ``max_num_hands=2`` that is every frame, and the
    palm detector is half of MediaPipe's time per frame (measured: 12.6 against 6.3 ms/frame with
    ``max_num_hands=1``). The added gate (``GateCalculator`` fed by the boolean input stream
    ``palm_search_allowed``) lets :class:`HandDetector` decide per frame whether that search runs
    (:func:`palm_search_due`). Tracked hands never need it: the graph prefers a tracked hand's own
    rectangle over an overlapping palm detection, so their landmarks do not change.
    """
    import mediapipe as mp
    from mediapipe.framework import calculator_pb2

    path = Path(mp.__file__).parent / _TRACKING_GRAPH
    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString(path.read_bytes())
    rewired = 0
    for node in config.node:
        for i, stream in enumerate(node.input_stream):
            tag, _, name = stream.rpartition(":")  # "TAG:name" or "name"
            if name == _PALM_IMAGE:
                node.input_stream[i] = f"{tag}:{_PALM_IMAGE_GATED}" if tag else _PALM_IMAGE_GATED
                rewired += 1
    if not rewired:
        raise RuntimeError(f"{path}: no node reads {_PALM_IMAGE!r}; this MediaPipe version "
                           f"({mp.__version__}) has another hand graph than constraints.txt pins")
    config.input_stream.append(f"PALM_SEARCH_ALLOWED:{_PALM_ALLOWED}")
    gate = config.node.add(calculator="GateCalculator", output_stream=[_PALM_IMAGE_GATED])
    gate.input_stream.extend([_PALM_IMAGE, f"ALLOW:{_PALM_ALLOWED}"])
    return config


def palm_search_due(frames_since_search: int, hands_last_frame: int, hands_seen: int,
                    every: int) -> bool:
    """Whether the palm detector may look for hands in this frame.

    A hand seen earlier in the video and now lost (``hands_last_frame < hands_seen``) is searched
    for in every frame, as MediaPipe does; a hand not yet seen in the video only every ``every``
    frames, so it is found at most ``every - 1`` frames later than MediaPipe would find it.
    ``every=1`` is MediaPipe's own behaviour.
    """
    return every <= 1 or hands_last_frame < hands_seen or frames_since_search >= every


class HandDetector:
    """MediaPipe's legacy hand solution (models inside the wheel, nothing downloaded).

    ``static_image_mode=False`` is tracking (video) mode: the palm detector runs only when the
    tracker loses the hand, which is both faster and steadier. Call :meth:`reset` between videos
    so one video's tracking state never leaks into the next. The graph is MediaPipe's own with a
    gate before the palm detector (:func:`hand_tracking_graph`): ``new_hand_search_every`` frames
    apart it looks for a hand not yet seen in the video (1: every frame, exactly the stock
    ``mp.solutions.hands.Hands``).
    """

    def __init__(self, model_complexity: int, min_detection_confidence: float,
                 min_tracking_confidence: float, max_num_hands: int,
                 static_image_mode: bool = False, new_hand_search_every: int = 1) -> None:
        # here: reading precomputed files never needs MediaPipe
        from mediapipe.python.solution_base import SolutionBase

        if new_hand_search_every < 1:
            raise ValueError(f"new_hand_search_every must be >= 1 frame, "
                             f"got {new_hand_search_every}")
        self.settings = dict(model_complexity=model_complexity,
                             min_detection_confidence=min_detection_confidence,
                             min_tracking_confidence=min_tracking_confidence,
                             max_num_hands=max_num_hands, static_image_mode=static_image_mode,
                             new_hand_search_every=new_hand_search_every)
        # the side inputs and parameters mp.solutions.hands.Hands sets, by the same names
        self._hands = SolutionBase(
            graph_config=hand_tracking_graph(),
            side_inputs={"model_complexity": model_complexity, "num_hands": max_num_hands,
                         "use_prev_landmarks": not static_image_mode},
            calculator_params={
                "palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh":
                    min_detection_confidence,
                "handlandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence},
            outputs=["multi_hand_landmarks", "multi_handedness"])
        mark_graph_built()
        self._search_every = 1 if static_image_mode else new_hand_search_every
        self._start_video()

    def _start_video(self) -> None:
        self._frames_since_search = self._search_every  # the first frame always searches
        self._hands_last_frame = self._hands_seen = 0

    def detect(self, frame_rgb: np.ndarray) -> list[Detection]:
        """The hands in one RGB ``(H, W, 3) uint8`` frame (empty list when none)."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"HandDetector.detect expects an RGB (H, W, 3) uint8 frame, got "
                             f"{frame_rgb.shape} {frame_rgb.dtype}")
        search = palm_search_due(self._frames_since_search, self._hands_last_frame,
                                 self._hands_seen, self._search_every)
        self._frames_since_search = 1 if search else self._frames_since_search + 1
        result = self._hands.process({"image": frame_rgb, _PALM_ALLOWED: search})
        hands = result.multi_hand_landmarks or []
        self._hands_last_frame = len(hands)
        self._hands_seen = max(self._hands_seen, len(hands))
        found = []
        for hand, handedness in zip(hands, result.multi_handedness or [], strict=True):
            points = np.array([(p.x, p.y, p.z) for p in hand.landmark], dtype=np.float32)
            best = handedness.classification[0]
            found.append(Detection(landmarks=points, label=best.label, score=float(best.score)))
        return found

    def reset(self) -> None:
        """Forget the tracking state (call before each new video)."""
        self._hands.reset()
        self._start_video()

    def close(self) -> None:
        self._hands.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_GRAPH_BUILT = False  # a MediaPipe graph was built in this process (closed or not)


def graph_built_in_process() -> bool:
    """Whether any MediaPipe graph was built in this process, even if closed since.

    Such a process must not ``fork`` workers that run MediaPipe: measured here, a forked child
    dies as soon as it builds its own graph, even when the parent's graph was closed first.
    """
    return _GRAPH_BUILT


def mark_graph_built() -> None:
    """Record that a MediaPipe graph (hands or pose, :mod:`hawkeye.prepare.pose`) was built here."""
    global _GRAPH_BUILT
    _GRAPH_BUILT = True


class DetectorCache:
    """This process's one open detector, built on first use and rebuilt when its settings change:
    building a MediaPipe graph costs ~0.1-0.3 s, a video needs one (hands here, pose in
    :mod:`hawkeye.prepare.pose`)."""

    def __init__(self, build: Callable[..., Any]) -> None:
        self._build, self._detector = build, None

    def get(self, **settings: Any) -> Any:
        if self._detector is None or self._detector.settings != {**settings,
                                                                 "static_image_mode": False}:
            self.close()
            self._detector = self._build(**settings)
        return self._detector

    def close(self) -> None:
        """Close the detector (its graph threads stop); the next use builds a new one."""
        if self._detector is not None:
            self._detector.close()
            self._detector = None


_HANDS = DetectorCache(HandDetector)


def process_detector(model_complexity: int, min_detection_confidence: float,
                     min_tracking_confidence: float, max_num_hands: int,
                     new_hand_search_every: int = 1) -> HandDetector:
    """This process's one hand detector in tracking mode (:class:`DetectorCache`)."""
    return _HANDS.get(model_complexity=model_complexity,
                      min_detection_confidence=min_detection_confidence,
                      min_tracking_confidence=min_tracking_confidence, max_num_hands=max_num_hands,
                      new_hand_search_every=new_hand_search_every)


close_process_detector = _HANDS.close


# --------------------------------------------------------------------------- tracking


@dataclass
class HandTracks:
    """Detections of one video sorted into hands with a stable identity."""

    landmarks: np.ndarray    # (T, K, 21, 3) float32, NaN where track k is not seen in frame t
    label_votes: np.ndarray  # (K, 2) float64, summed handedness scores for ("Left", "Right")

    @property
    def n_tracks(self) -> int:
        return self.landmarks.shape[1]

    def frames_seen(self) -> np.ndarray:
        """(K,) number of frames each track was detected in."""
        return (~np.isnan(self.landmarks[:, :, 0, 0])).sum(axis=0)

    def label(self, k: int) -> str:
        """Track ``k``'s majority MediaPipe label ("Left"/"Right"), "" if never labelled."""
        votes = self.label_votes[k]
        if votes.sum() == 0:
            return ""
        return "Left" if votes[0] >= votes[1] else "Right"


def _centre(points: np.ndarray) -> np.ndarray:
    return points[:, :2].mean(axis=0)


def track_hands(frames: Iterable[Sequence[Detection]], max_tracks: int,
                new_track_distance: float) -> HandTracks:
    """Give each detected hand a stable track id across frames, by position.

    Each frame's detections are matched greedily (closest first) to the tracks' last seen centres
    (mean x, y of the 21 points, normalised units). A detection farther than ``new_track_distance``
    from every free track starts a new track while fewer than ``max_tracks`` exist; otherwise it
    joins the nearest free track (hands can move fast). Extra detections beyond the free tracks
    (MediaPipe can return a duplicate) are dropped, lowest score first.
    """
    per_frame: list[list[tuple[int, Detection]]] = []
    centres: list[np.ndarray] = []
    votes: list[np.ndarray] = []
    for detections in frames:
        detections = sorted(detections, key=lambda d: -d.score)
        pairs = sorted(
            ((float(np.linalg.norm(_centre(d.landmarks) - c)), i, k)
             for i, d in enumerate(detections) for k, c in enumerate(centres)),
        )
        assigned: dict[int, int] = {}  # detection index -> track id
        used: set[int] = set()
        for dist, i, k in pairs:
            if dist <= new_track_distance and i not in assigned and k not in used:
                assigned[i] = k
                used.add(k)
        for i, detection in enumerate(detections):
            if i in assigned:
                continue
            if len(centres) < max_tracks:
                centres.append(_centre(detection.landmarks))
                votes.append(np.zeros(2))
                k = len(centres) - 1
            else:
                free = [(float(np.linalg.norm(_centre(detection.landmarks) - centres[k])), k)
                        for k in range(len(centres)) if k not in used]
                if not free:
                    continue
                k = min(free)[1]
            assigned[i] = k
            used.add(k)
        frame_pairs = []
        for i, k in assigned.items():
            detection = detections[i]
            centres[k] = _centre(detection.landmarks)
            if detection.label in _LABEL_SIDE:
                votes[k][0 if detection.label == "Left" else 1] += detection.score
            frame_pairs.append((k, detection))
        per_frame.append(frame_pairs)

    landmarks = np.full((len(per_frame), len(centres), N_LANDMARKS, 3), np.nan, dtype=np.float32)
    for t, frame_pairs in enumerate(per_frame):
        for k, detection in frame_pairs:
            landmarks[t, k] = detection.landmarks
    label_votes = np.array(votes, dtype=np.float64).reshape(len(centres), 2)
    return HandTracks(landmarks=landmarks, label_votes=label_votes)


# --------------------------------------------------------------------------- hand choice


def side_from_label(label: str, mirrored: bool) -> str:
    """The person's side (``"l"``/``"r"``) for a MediaPipe handedness label.

    MediaPipe labels hands as they would be in a mirrored selfie image: in a mirrored video the
    label is the person's side, in an ordinary (unmirrored) camera recording it is the opposite.
    """
    if label not in _LABEL_SIDE:
        raise ValueError(f"unknown MediaPipe handedness label {label!r}; "
                         "expected 'Left' or 'Right'")
    side = _LABEL_SIDE[label]
    if mirrored:
        return side
    return "r" if side == "l" else "l"


def thumb_index_aperture(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T,) thumb-tip–index-tip distance in index-finger lengths (``features`` geometry).

    x and y are scaled by ``width`` and ``height`` separately (non-square frames) and the distance
    is divided by the median index-finger length (5→6→7→8), exactly as the features are; NaN where
    the hand is missing, all NaN when no frame has a usable hand.
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (N_LANDMARKS, 3):
        raise ValueError(f"thumb_index_aperture expects (T, 21, 3) landmarks, "
                         f"got {landmarks.shape}")
    pixels = features.to_pixels(landmarks.astype(np.float64), width, height)
    usable = np.isfinite(pixels).all(axis=(1, 2))
    if not usable.any():
        return np.full(len(landmarks), np.nan)
    try:
        size = features.hand_size(pixels, usable, "index_finger")
    except ValueError:  # degenerate landmarks (zero-length finger): no usable aperture
        return np.full(len(landmarks), np.nan)
    return features.thumb_index_distance(pixels) / size


@dataclass(frozen=True)
class Oscillation:
    """How strongly a hand's thumb–index aperture goes up and down."""

    amplitude: float  # p90 - p10 of the aperture, index-finger lengths; NaN: too few frames
    cycles: int       # openings: rises from below mid - amplitude/4 to above mid + amplitude/4


def oscillation(aperture: np.ndarray, min_frames: int = 5) -> Oscillation:
    """Robust amplitude and number of open/close cycles of an aperture series (NaN frames skipped).

    The hysteresis band (a quarter of the amplitude either side of the midpoint) keeps jitter
    around the midpoint from counting as cycles.
    """
    values = aperture[np.isfinite(aperture)]
    if values.size < min_frames:
        return Oscillation(amplitude=float("nan"), cycles=0)
    low, high = np.percentile(values, [10, 90])
    amplitude = float(high - low)
    mid, band = (low + high) / 2, amplitude / 4
    cycles, below = 0, values[0] < mid
    for value in values[1:]:
        if below and value > mid + band:
            cycles, below = cycles + 1, False
        elif not below and value < mid - band:
            below = True
    return Oscillation(amplitude=amplitude, cycles=cycles)


@dataclass(frozen=True)
class HandChoice:
    """Which hand was taken for a video, and why (one row of the QC report).

    ``reason``: ``label`` (mirror-corrected label matches the side), ``only_hand`` (one hand seen),
    ``motion_override`` (the labelled hand does not tap, the other does), ``motion_no_label`` (no
    label matches; the most oscillating hand), ``no_hand``, ``precomputed`` (landmark file).
    """

    track: int          # chosen track id, -1 when there is no hand at all
    n_tracks: int       # hands (tracks) seen in the video, spurious short ones included
    label: str          # chosen track's majority MediaPipe label ("Left"/"Right"/"")
    reason: str         # why this track (see above)
    detail: str         # one sentence for people reading the QC report
    amplitudes: tuple[float, ...] = ()  # oscillation amplitude per track (NaN: too few frames)


def _oscillates(osc: Oscillation, min_amplitude: float, min_cycles: int) -> bool:
    return bool(np.isfinite(osc.amplitude) and osc.amplitude >= min_amplitude
                and osc.cycles >= min_cycles)


def choose_hand(tracks: HandTracks, side: str, *, mirrored: bool, width: int, height: int,
                min_track_share: float, motion_check: bool, min_oscillation_amplitude: float,
                min_oscillation_cycles: int) -> HandChoice:
    """Pick the track of the hand that performs the task (annotated ``side``: ``"l"``/``"r"``).

    Tracks seen in fewer than ``min_track_share`` of the frames in which any hand was seen are
    treated as spurious. Among the rest: the track whose mirror-corrected label matches ``side``;
    with ``motion_check``, if that track does not oscillate (amplitude ≥
    ``min_oscillation_amplitude`` and ≥ ``min_oscillation_cycles`` cycles) but another one does,
    the other one is taken. If no label matches, the most strongly oscillating track is taken.
    """
    if side not in ("l", "r"):
        raise ValueError(f"choose_hand: side must be 'l' or 'r', got {side!r}")
    seen = tracks.frames_seen()
    osc = [oscillation(thumb_index_aperture(tracks.landmarks[:, k], width, height))
           for k in range(tracks.n_tracks)]
    amplitudes = tuple(o.amplitude for o in osc)
    convention = "mirrored" if mirrored else "unmirrored"

    def record(k: int, reason: str, detail: str) -> HandChoice:
        return HandChoice(track=k, n_tracks=tracks.n_tracks,
                          label=tracks.label(k) if k >= 0 else "", reason=reason, detail=detail,
                          amplitudes=amplitudes)

    frames_with_hand = int((~np.isnan(tracks.landmarks[:, :, 0, 0])).any(axis=1).sum())
    if frames_with_hand == 0:
        return record(-1, "no_hand", "no hand detected in any frame")
    real = [k for k in range(tracks.n_tracks) if seen[k] >= min_track_share * frames_with_hand]
    if len(real) == 1:
        k = real[0]
        label = tracks.label(k)
        agrees = label and side_from_label(label, mirrored) == side
        note = "label agrees" if agrees else f"label {label!r} ({convention}) says the other side"
        return record(k, "only_hand", f"only one hand seen; taken ({note})")

    def label_side(k: int) -> str:
        return side_from_label(tracks.label(k), mirrored) if tracks.label(k) else ""

    matching = [k for k in real if label_side(k) == side]
    moving = [k for k in real
              if _oscillates(osc[k], min_oscillation_amplitude, min_oscillation_cycles)]
    strongest = max(real, key=lambda k: np.nan_to_num(osc[k].amplitude, nan=-1.0))
    if not matching:
        return record(strongest, "motion_no_label",
                      f"no hand labelled side {side!r} ({convention}); took the hand with the "
                      f"largest thumb-index oscillation")
    chosen = max(matching, key=lambda k: tracks.label_votes[k].max())
    if motion_check and chosen not in moving and moving:
        other = max(moving, key=lambda k: osc[k].amplitude)
        return record(other, "motion_override",
                      f"hand labelled side {side!r} ({convention}) does not tap "
                      f"(amplitude {osc[chosen].amplitude:.2f}, {osc[chosen].cycles} cycles) but "
                      f"the other does (amplitude {osc[other].amplitude:.2f}, "
                      f"{osc[other].cycles} cycles); took the other")
    return record(chosen, "label", f"hand labelled side {side!r} ({convention} convention)")


def select_track(tracks: HandTracks, choice: HandChoice) -> np.ndarray:
    """(T, 21, 3) float32 landmarks of the chosen track; all NaN when no hand was chosen."""
    if choice.track < 0:
        return np.full((tracks.landmarks.shape[0], N_LANDMARKS, 3), np.nan, dtype=np.float32)
    return np.ascontiguousarray(tracks.landmarks[:, choice.track], dtype=np.float32)


# --------------------------------------------------------------------------- gaps


def gap_runs(presence: np.ndarray) -> np.ndarray:
    """(n, 2) int64 ``(start, length)`` of every run of missing frames in a (T,) bool mask."""
    missing = np.concatenate([[False], ~np.asarray(presence, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(missing.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return np.stack([starts, ends - starts], axis=1).astype(np.int64)


def longest_gap(presence: np.ndarray) -> int:
    """Length in frames of the longest run of missing frames (0 when none)."""
    runs = gap_runs(presence)
    return int(runs[:, 1].max()) if len(runs) else 0


def fill_gaps(landmarks: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate interior runs of ≤ ``max_gap`` missing frames; leave others NaN.

    A run is filled only when it has a detected frame on both sides (no extrapolation at the
    start or end of the video). Returns a new (T, K, 3) float32 array (K = 21 hand or 33 pose
    points); the input is not changed.
    """
    if landmarks.ndim != 3 or landmarks.shape[2] != 3:
        raise ValueError(f"fill_gaps expects (T, K, 3) landmarks, got {landmarks.shape}")
    if max_gap < 0:
        raise ValueError(f"fill_gaps: max_gap must be >= 0 frames, got {max_gap}")
    filled = np.array(landmarks, dtype=np.float32, copy=True)
    presence = ~np.isnan(filled[:, 0, 0])
    total = len(filled)
    for start, length in gap_runs(presence):
        end = start + length  # first present frame after the gap
        if length > max_gap or start == 0 or end == total:
            continue
        before, after = filled[start - 1], filled[end]
        weights = (np.arange(1, length + 1, dtype=np.float32) / (length + 1))[:, None, None]
        filled[start:end] = before + weights * (after - before)
    return filled


# --------------------------------------------------------------------------- precomputed files


@dataclass(frozen=True)
class PrecomputedLandmarks:
    """A ``.landmarks.npz`` file's content (contract in docs/architecture.md)."""

    landmarks: np.ndarray  # (T, K, 3) float32 (K = 21 hand, 33 pose points), NaN = not seen
    fps: float             # frames per second
    width: int             # frame width in pixels
    height: int            # frame height in pixels
    timestamps: np.ndarray | None = None  # (T,) seconds of each frame (optional: variable rates)


def precomputed_path(video_path: str | os.PathLike[str]) -> Path:
    """``<visit>_<side>.landmarks.npz`` beside ``<visit>_<side>.mp4``."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + PRECOMPUTED_SUFFIX)


def load_precomputed(path: str | os.PathLike[str],
                     n_points: int = N_LANDMARKS) -> PrecomputedLandmarks:
    """Read and validate a precomputed landmark file of ``n_points`` landmarks per frame (21 hand,
    33 body pose); :class:`LandmarkError` names what is wrong."""
    path = Path(path)
    if not path.exists():
        raise LandmarkError(f"{path}: landmark file not found (landmark_source=precomputed expects "
                            f"one beside each video)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"landmarks", "fps", "width", "height"} - set(data.files)
            if missing:
                raise LandmarkError(f"{path}: missing arrays {sorted(missing)}; expected "
                                    f"landmarks, fps, width, height")
            landmarks = np.asarray(data["landmarks"], dtype=np.float32)
            fps, width, height = float(data["fps"]), int(data["width"]), int(data["height"])
            timestamps = (np.asarray(data["timestamps"], dtype=np.float64)
                          if "timestamps" in data.files else None)
    except LandmarkError:
        raise
    except Exception as exc:  # zip/npy format errors come in many types
        raise LandmarkError(f"{path}: not a readable .npz file ({exc})") from exc
    if landmarks.ndim != 3 or landmarks.shape[1:] != (n_points, 3) or len(landmarks) == 0:
        raise LandmarkError(f"{path}: landmarks must be (T>0, {n_points}, 3) for this task's "
                            f"landmark model, got {landmarks.shape}")
    if not (np.isfinite(fps) and fps > 0) or width <= 0 or height <= 0:
        raise LandmarkError(f"{path}: fps, width, height must be positive, "
                            f"got {fps}, {width}, {height}")
    if timestamps is not None and timestamps.shape != (len(landmarks),):
        raise LandmarkError(f"{path}: timestamps must have shape ({len(landmarks)},), one per "
                            f"frame, got {timestamps.shape}")
    return PrecomputedLandmarks(landmarks=landmarks, fps=fps, width=width, height=height,
                                timestamps=timestamps)
