"""The palm-detector gate (:func:`hawkeye.prepare.landmarks.palm_search_due`,
``prepare.landmarks.new_hand_search_every``): the pure rule, and the real MediaPipe detector on
real-pixel clips against the stock ``mp.solutions.hands.Hands`` with the same settings.

Tolerance: a hand that MediaPipe tracks gets the same landmarks (|difference| <= 1e-6 normalised
units, in practice bit-identical) and is present in exactly the same frames; a hand entering the
video for the first time is found at most ``every - 1`` frames after MediaPipe finds it."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from hawkeye.prepare.landmarks import HandDetector, palm_search_due
from hawkeye.prepare.video import moving_image_frames

ASSETS = Path(__file__).parent / "assets"
SETTINGS = dict(model_complexity=0, min_detection_confidence=0.5, min_tracking_confidence=0.5,
                max_num_hands=2)
TOLERANCE = 1e-6  # normalised image units


def test_search_rule_throttles_only_the_search_for_an_unseen_hand():
    assert all(palm_search_due(since, 0, 0, 1) for since in range(1, 5))  # every=1: MediaPipe's
    # one hand tracked, none lost: a further hand is looked for every 3rd frame
    assert [palm_search_due(since, 1, 1, 3) for since in (1, 2, 3)] == [False, False, True]
    assert [palm_search_due(since, 0, 0, 3) for since in (1, 2, 3)] == [False, False, True]
    # a hand seen before and lost now is searched for at once, in every frame
    assert palm_search_due(1, 0, 1, 3) and palm_search_due(1, 1, 2, 3)


def test_search_interval_must_be_a_positive_number_of_frames():
    with pytest.raises(ValueError, match="new_hand_search_every must be >= 1"):
        HandDetector(**SETTINGS, new_hand_search_every=0)


def _photo(name: str, size: tuple[int, int]) -> np.ndarray:
    image = cv2.imread(str(ASSETS / name))
    assert image is not None, f"{ASSETS / name} missing: see tests/assets/README.md"
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA)


def _stock(frames: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Landmarks per frame from MediaPipe's own Hands, tracking mode, the same settings."""
    import mediapipe as mp

    with mp.solutions.hands.Hands(static_image_mode=False, **SETTINGS) as hands:
        found = []
        for frame in frames:
            result = hands.process(frame)
            found.append([np.array([(p.x, p.y, p.z) for p in hand.landmark], dtype=np.float32)
                          for hand in result.multi_hand_landmarks or []])
        return found


def _gated(frames: list[np.ndarray], every: int) -> list[list[np.ndarray]]:
    with HandDetector(**SETTINGS, new_hand_search_every=every) as detector:
        return [[d.landmarks for d in detector.detect(frame)] for frame in frames]


def _nearest_match(points: np.ndarray, candidates: list[np.ndarray]) -> float:
    """Largest coordinate difference to the closest of ``candidates`` (inf when none)."""
    return min((float(np.abs(points - other).max()) for other in candidates), default=np.inf)


@pytest.mark.parametrize("every", [1, 3])
def test_one_hand_clip_same_landmarks_as_stock_mediapipe(every):
    """A real hand photo moving across 320 x 240 frames: every frame, the same hand, the same
    landmarks as ``mp.solutions.hands.Hands`` (which runs the palm detector in every frame)."""
    frames = list(moving_image_frames(_photo("handDst.jpg", (320, 240)), 24, shift=0.06,
                                      angle_deg=6.0))
    stock, gated = _stock(frames), _gated(frames, every)
    assert sum(len(hands) for hands in stock) >= 20  # the hand is tracked in (nearly) every frame
    assert [len(hands) for hands in gated] == [len(hands) for hands in stock]
    for ours, theirs in zip(gated, stock, strict=True):
        for points in ours:
            assert _nearest_match(points, theirs) <= TOLERANCE


def test_second_hand_entering_is_found_at_most_every_minus_one_frames_late():
    """Two real hand photos side by side; the right one appears at frame 7. The left hand's
    landmarks match stock MediaPipe in every frame; the new hand is found in the first searched
    frame, <= 2 frames late."""
    left = _photo("handDst.jpg", (320, 240))
    right = _photo("Back_Projection_Theory0.jpg", (240, 240))
    grey = np.full((240, 320, 3), 128, dtype=np.uint8)
    frames = []
    for t in range(18):
        half = grey.copy()
        if t >= 7:
            half[:, 40:280] = right
        frames.append(np.ascontiguousarray(np.concatenate([left, half], axis=1)))
    every = 3
    stock, gated = _stock(frames), _gated(frames, every)

    def first_two_hand_frame(per_frame: list[list[np.ndarray]]) -> int:
        return next(t for t, hands in enumerate(per_frame) if len(hands) == 2)

    stock_first = first_two_hand_frame(stock)
    assert stock_first >= 7  # nothing on the right before it appears
    # one hand tracked from frame 0: the search runs in frames 0, 3, 6, 9, ... only
    searched_first = next(t for t in range(stock_first, len(frames)) if t % every == 0)
    assert first_two_hand_frame(gated) == searched_first <= stock_first + every - 1
    for ours, theirs in zip(gated, stock, strict=True):
        left_ours = [p for p in ours if p[:, 0].mean() < 0.5]
        left_theirs = [p for p in theirs if p[:, 0].mean() < 0.5]
        assert len(left_ours) == len(left_theirs) == 1
        assert _nearest_match(left_ours[0], left_theirs) <= TOLERANCE


def test_prepare_config_sets_the_search_interval_and_old_sections_keep_mediapipes():
    """The default config searches every 3rd frame; a prepare section recorded before the key
    existed (a store's or a model's) gets MediaPipe's own every-frame search it was made with."""
    from hawkeye.config import compose
    from hawkeye.prepare.worker import PrepareSettings

    section = compose([]).prepare
    assert PrepareSettings.from_config(section, None).detector_settings()[
        "new_hand_search_every"] == 3
    old = PrepareSettings.from_config(section, None)
    del old.landmarks["new_hand_search_every"]
    assert old.detector_settings()["new_hand_search_every"] == 1
