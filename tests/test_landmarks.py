"""Hand landmarks: gap filling, hand tracking and choice (pure functions), precomputed files, and
the real MediaPipe detector on real hand photographs (``tests/assets``) in image and video mode."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from hawkeye.prepare.landmarks import (
    Detection,
    HandTracks,
    LandmarkError,
    choose_hand,
    fill_gaps,
    gap_runs,
    load_precomputed,
    longest_gap,
    oscillation,
    precomputed_path,
    select_track,
    side_from_label,
    thumb_index_aperture,
    track_hands,
)
from hawkeye.prepare.video import iter_frames, moving_image_frames, write_video

ASSETS = Path(__file__).parent / "assets"
PHOTOS = ["handDst.jpg", "Back_Projection_Theory0.jpg", "Back_Projection1_Source_Image.jpg"]
CHOICE = dict(
    min_track_share=0.1, motion_check=True, min_oscillation_amplitude=0.2, min_oscillation_cycles=3
)


def synthetic_hand(cx: float, cy: float, aperture: float) -> np.ndarray:
    """(21, 3) hand: index finger straight up from its MCP at (cx, cy), 3 segments of 0.03 each
    (index length 0.09); thumb tip ``aperture`` index lengths to the right of the index tip; wrist
    0.1 below; the other points at the MCP. On a square frame the aperture is ``aperture``."""
    hand = np.zeros((21, 3), dtype=np.float32)
    hand[:, :2] = (cx, cy)
    hand[0, :2] = (cx, cy + 0.1)
    for j, landmark in enumerate((5, 6, 7, 8)):
        hand[landmark, :2] = (cx, cy - 0.03 * j)
    hand[4, :2] = (cx + 0.09 * aperture, cy - 0.09)
    return hand


def tapping(n: int, cycles: float) -> np.ndarray:
    """(n,) aperture going between 0.1 and 1.1 index lengths, ``cycles`` full cycles."""
    return 0.6 - 0.5 * np.cos(2 * np.pi * cycles * np.arange(n) / n)


def two_hand_frames(
    n, left_aperture, right_aperture, left_label="Right", right_label="Left", swap_order=True
):
    """Frames with one hand at image x=0.3 ("left" arguments) and one at x=0.7 ("right"
    arguments), each with the given per-frame aperture and MediaPipe label (scores 0.9 / 0.8)."""
    frames = []
    for t in range(n):
        dets = [
            Detection(synthetic_hand(0.3, 0.5, left_aperture[t]), left_label, 0.9),
            Detection(synthetic_hand(0.7, 0.5, right_aperture[t]), right_label, 0.8),
        ]
        frames.append(dets[::-1] if swap_order and t % 2 else dets)  # MediaPipe order is arbitrary
    return frames


# ----------------------------------------------------------------------------- gaps


def test_gap_runs_and_longest_gap():
    presence = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    assert gap_runs(presence).tolist() == [[0, 1], [3, 2], [6, 3]]
    assert longest_gap(presence) == 3
    assert longest_gap(np.ones(4, dtype=bool)) == 0 and gap_runs(np.ones(4, bool)).shape == (0, 2)


def test_fill_gaps_interpolates_short_interior_gaps_only():
    landmarks = np.zeros((12, 21, 3), dtype=np.float32)
    landmarks[:, :, 0] = np.arange(12, dtype=np.float32)[:, None]  # x = frame index
    original = landmarks.copy()
    landmarks[0] = np.nan  # leading gap: no left anchor, stays NaN
    landmarks[3:5] = np.nan  # 2-frame gap: filled
    landmarks[6:10] = np.nan  # 4-frame gap: longer than max_gap=3, stays NaN
    landmarks[11] = np.nan  # trailing gap: stays NaN
    before = landmarks.copy()
    filled = fill_gaps(landmarks, max_gap=3)
    np.testing.assert_array_equal(landmarks, before)  # pure: input untouched
    np.testing.assert_allclose(filled[3:5], original[3:5])  # x was linear in time
    assert np.isnan(filled[[0, 6, 7, 8, 9, 11]]).all()
    assert not np.isnan(filled[[1, 2, 3, 4, 5, 10]]).any()
    assert filled.dtype == np.float32


def test_fill_gaps_interpolates_each_coordinate_linearly():
    landmarks = np.full((5, 21, 3), np.nan, dtype=np.float32)
    landmarks[0], landmarks[4] = 0.0, 1.0
    filled = fill_gaps(landmarks, max_gap=3)
    np.testing.assert_allclose(filled[:, 7, 2], [0, 0.25, 0.5, 0.75, 1.0])
    assert np.isnan(fill_gaps(landmarks, max_gap=2)[1:4]).all()


def test_fill_gaps_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(T, K, 3\).*\(5, 20\)"):
        fill_gaps(np.zeros((5, 20)), max_gap=2)
    with pytest.raises(ValueError, match="max_gap"):
        fill_gaps(np.zeros((5, 21, 3)), max_gap=-1)


# ----------------------------------------------------------------------------- geometry


def test_thumb_index_aperture_on_square_and_non_square_frames():
    hands = np.stack([synthetic_hand(0.5, 0.5, a) for a in (0.0, 0.5, 1.0)])
    np.testing.assert_allclose(thumb_index_aperture(hands, 100, 100), [0.0, 0.5, 1.0], atol=1e-6)
    # 200 x 100 frame: the thumb's x offset counts double in pixels, the vertical finger does not
    np.testing.assert_allclose(thumb_index_aperture(hands, 200, 100), [0.0, 1.0, 2.0], atol=1e-6)
    hands[1] = np.nan
    assert np.isnan(thumb_index_aperture(hands, 100, 100)[1])


def test_oscillation_of_a_tapping_and_a_still_hand():
    taps = oscillation(tapping(120, cycles=6))
    assert taps.cycles == 6
    # p90 - p10 of 0.5 * cos(uniform phase) is 2 * 0.5 * cos(pi / 10)
    assert taps.amplitude == pytest.approx(np.cos(np.pi / 10), abs=0.02)
    still = oscillation(np.full(120, 0.4) + np.random.default_rng(0).normal(0, 0.01, 120))
    assert still.amplitude < 0.05
    assert np.isnan(oscillation(np.array([0.1, np.nan])).amplitude)


def test_side_from_label_mirror_convention():
    assert side_from_label("Left", mirrored=True) == "l"
    assert side_from_label("Right", mirrored=True) == "r"
    assert side_from_label("Left", mirrored=False) == "r"
    assert side_from_label("Right", mirrored=False) == "l"
    with pytest.raises(ValueError, match="handedness label"):
        side_from_label("left", mirrored=False)


# ----------------------------------------------------------------------------- tracking


def test_track_hands_keeps_identity_when_order_swaps():
    frames = two_hand_frames(10, np.zeros(10), np.ones(10))
    tracks = track_hands(frames, max_tracks=2, new_track_distance=0.25)
    assert tracks.n_tracks == 2
    assert tracks.frames_seen().tolist() == [10, 10]
    xs = tracks.landmarks[:, :, 5, 0]  # index MCP x of each track over time
    np.testing.assert_allclose(xs[:, 0], 0.3)
    np.testing.assert_allclose(xs[:, 1], 0.7)
    assert (tracks.label(0), tracks.label(1)) == ("Right", "Left")


def test_track_hands_follows_a_moving_hand_through_a_missing_frame():
    frames = []
    for t in range(8):
        hand = Detection(synthetic_hand(0.2 + 0.05 * t, 0.5, 0.5), "Left", 0.9)
        frames.append([] if t == 4 else [hand])
    tracks = track_hands(frames, max_tracks=2, new_track_distance=0.25)
    assert tracks.n_tracks == 1 and tracks.frames_seen().tolist() == [7]
    assert np.isnan(tracks.landmarks[4]).all()


def test_track_hands_drops_extra_detections_beyond_max_tracks():
    dets = [
        Detection(synthetic_hand(x, 0.5, 0.5), "Left", s)
        for x, s in ((0.1, 0.9), (0.5, 0.8), (0.9, 0.2))
    ]
    tracks = track_hands([dets], max_tracks=2, new_track_distance=0.25)
    assert tracks.n_tracks == 2
    assert sorted(tracks.landmarks[0, :, 5, 0].tolist()) == pytest.approx([0.1, 0.5])


def test_track_hands_with_no_detections():
    tracks = track_hands([[], [], []], max_tracks=2, new_track_distance=0.25)
    assert tracks.landmarks.shape == (3, 0, 21, 3) and tracks.label_votes.shape == (0, 2)


# ----------------------------------------------------------------------------- hand choice


def _choose(tracks, side, mirrored=False, **overrides):
    return choose_hand(
        tracks, side, mirrored=mirrored, width=100, height=100, **{**CHOICE, **overrides}
    )


def test_choice_follows_label_with_mirror_convention():
    """Both hands tap; image-left hand labelled "Right", image-right hand labelled "Left"."""
    n = 90
    tracks = track_hands(two_hand_frames(n, tapping(n, 5), tapping(n, 4)), 2, 0.25)
    # unmirrored: label "Right" is the person's left hand -> track 0 (image left)
    choice = _choose(tracks, "l")
    assert (choice.track, choice.reason, choice.label) == (0, "label", "Right")
    assert _choose(tracks, "r").track == 1
    # mirrored (selfie) video: the label is the person's side
    assert _choose(tracks, "l", mirrored=True).track == 1
    assert _choose(tracks, "r", mirrored=True).track == 0
    assert "unmirrored" in choice.detail


def test_motion_check_overrides_a_still_labelled_hand():
    n = 90
    still = np.full(n, 0.5)
    tracks = track_hands(two_hand_frames(n, still, tapping(n, 5)), 2, 0.25)
    choice = _choose(tracks, "l")  # label points to track 0, which does not tap
    assert (choice.track, choice.reason) == (1, "motion_override")
    assert "took the other" in choice.detail
    assert choice.amplitudes[0] < 0.05 < 0.5 < choice.amplitudes[1]
    # without the motion check the label decides
    assert _choose(tracks, "l", motion_check=False).track == 0
    # the labelled hand taps and the other is still: the label is kept
    assert _choose(tracks, "r").reason == "label" and _choose(tracks, "r").track == 1


def test_no_matching_label_falls_back_to_the_tapping_hand():
    n = 90
    frames = two_hand_frames(
        n, tapping(n, 5), np.full(n, 0.5), left_label="Left", right_label="Left"
    )
    choice = _choose(track_hands(frames, 2, 0.25), "l")  # unmirrored: both labelled person's right
    assert (choice.track, choice.reason) == (0, "motion_no_label")


def test_single_hand_is_taken_and_label_disagreement_noted():
    frames = [[Detection(synthetic_hand(0.5, 0.5, a), "Left", 0.9)] for a in tapping(40, 3)]
    choice = _choose(track_hands(frames, 2, 0.25), "l")  # unmirrored "Left" = person's right
    assert (choice.track, choice.reason) == (0, "only_hand")
    assert "other side" in choice.detail


def test_spurious_short_track_is_ignored():
    frames = [[Detection(synthetic_hand(0.3, 0.5, a), "Right", 0.9)] for a in tapping(60, 4)]
    frames[10] = frames[10] + [Detection(synthetic_hand(0.8, 0.5, 0.5), "Left", 0.6)]
    tracks = track_hands(frames, 2, 0.25)
    choice = _choose(tracks, "r")  # the label would point to the one-frame track
    assert tracks.n_tracks == 2 and (choice.track, choice.reason) == (0, "only_hand")


def test_no_hand_gives_all_nan_landmarks():
    tracks = track_hands([[]] * 5, 2, 0.25)
    choice = _choose(tracks, "l")
    assert (choice.track, choice.reason) == (-1, "no_hand")
    selected = select_track(tracks, choice)
    assert selected.shape == (5, 21, 3) and np.isnan(selected).all()


def test_select_track_returns_the_chosen_hand():
    n = 30
    tracks = track_hands(two_hand_frames(n, tapping(n, 3), tapping(n, 3)), 2, 0.25)
    selected = select_track(tracks, _choose(tracks, "r"))
    assert selected.dtype == np.float32 and selected.shape == (n, 21, 3)
    np.testing.assert_allclose(selected[:, 5, 0], 0.7)


def test_choose_hand_rejects_bad_side():
    with pytest.raises(ValueError, match="side must be"):
        _choose(HandTracks(np.zeros((1, 0, 21, 3), np.float32), np.zeros((0, 2))), "left")


# ----------------------------------------------------------------------------- precomputed files


def test_precomputed_round_trip_and_path(tmp_path):
    video = tmp_path / "Videos" / "Finger tapping" / "001" / "15-001_l.mp4"
    path = precomputed_path(video)
    assert path == video.with_name("15-001_l.landmarks.npz")
    path.parent.mkdir(parents=True)
    landmarks = np.random.default_rng(0).random((7, 21, 3)).astype(np.float32)
    landmarks[2] = np.nan
    np.savez(
        path, landmarks=landmarks, fps=np.float64(30.0), width=np.int64(640), height=np.int64(480)
    )
    loaded = load_precomputed(path)
    np.testing.assert_array_equal(loaded.landmarks, landmarks)
    assert (loaded.fps, loaded.width, loaded.height) == (30.0, 640, 480)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "landmark file not found"),
        (b"not a zip file", "not a readable .npz"),
        (dict(landmarks=np.zeros((5, 20, 3)), fps=30.0, width=64, height=48), r"\(T>0, 21, 3\)"),
        (dict(landmarks=np.zeros((5, 21, 3)), fps=30.0), r"missing arrays \['height', 'width'\]"),
        (dict(landmarks=np.zeros((5, 21, 3)), fps=0.0, width=64, height=48), "must be positive"),
    ],
)
def test_bad_precomputed_files_are_named(tmp_path, content, message):
    path = tmp_path / "15-001_l.landmarks.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    with pytest.raises(LandmarkError, match=message) as err:
        load_precomputed(path)
    assert "15-001_l.landmarks.npz" in str(err.value)


# ----------------------------------------------------------------------------- real MediaPipe


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(ASSETS / name))
    assert image is not None, f"{ASSETS / name} missing: see tests/assets/README.md"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def image_detector():
    from hawkeye.prepare.landmarks import HandDetector

    with HandDetector(
        model_complexity=1,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
        max_num_hands=2,
        static_image_mode=True,
    ) as detector:
        yield detector


def _assert_anatomical(points: np.ndarray) -> None:
    """21 points inside the image, a hand-sized box, and each fingertip farther from the wrist
    than its knuckle (MCP): the landmarks sit on a hand, not scattered."""
    assert points.shape == (21, 3) and np.isfinite(points).all()
    assert (points[:, :2] >= -0.02).all() and (points[:, :2] <= 1.02).all()
    extent = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    assert extent.max() > 0.3  # the photos are close-ups: the hand fills a good part of the frame
    wrist = points[0, :2]
    for mcp, tip in ((5, 8), (9, 12), (13, 16), (17, 20)):
        assert np.linalg.norm(points[tip, :2] - wrist) > np.linalg.norm(points[mcp, :2] - wrist)


@pytest.mark.mediapipe
@pytest.mark.parametrize("name", PHOTOS)
def test_mediapipe_finds_21_landmarks_in_real_photos(image_detector, name):
    image = _photo(name)
    detections = image_detector.detect(image)
    assert len(detections) == 1
    assert detections[0].label in ("Left", "Right") and detections[0].score > 0.5
    _assert_anatomical(detections[0].landmarks)
    # the landmarks land where the hand is: the photo's own skin-coloured pixels (skin is redder
    # than the grey/white backgrounds), sampled at the 21 points, are mostly skin
    h, w = image.shape[:2]
    xy = np.clip((detections[0].landmarks[:, :2] * (w, h)).astype(int), 0, (w - 1, h - 1))
    rgb = image[xy[:, 1], xy[:, 0]].astype(int)
    assert ((rgb[:, 0] - rgb[:, 2]) > 15).mean() >= 0.8


@pytest.mark.mediapipe
def test_mediapipe_landmarks_move_with_the_image(image_detector):
    """Shifting the photo by (dx, dy) pixels shifts every landmark by (dx/W, dy/H)."""
    image = _photo("handDst.jpg")
    h, w = image.shape[:2]
    dx, dy = 40, -24
    shifted = cv2.warpAffine(
        image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
    base, moved = image_detector.detect(image)[0], image_detector.detect(shifted)[0]
    offset = np.median(moved.landmarks[:, :2] - base.landmarks[:, :2], axis=0)
    np.testing.assert_allclose(offset, [dx / w, dy / h], atol=0.015)


@pytest.mark.mediapipe
def test_mirroring_the_photo_flips_the_handedness_label(image_detector):
    image = _photo("Back_Projection_Theory0.jpg")
    label = image_detector.detect(image)[0].label
    mirrored = image_detector.detect(np.ascontiguousarray(image[:, ::-1]))[0].label
    assert {label, mirrored} == {"Left", "Right"}
    # so the two mirror conventions give opposite person sides for the same hand
    assert side_from_label(label, mirrored=True) != side_from_label(label, mirrored=False)


# the per-process detector of the lite model, as prepare's workers build it
LITE_DETECTOR = dict(model_complexity=0, min_detection_confidence=0.5,
                     min_tracking_confidence=0.5, max_num_hands=2)


def track_and_choose(detector, clip):
    """Track every hand of a 320x240 clip from a fresh detector state and pick the left one."""
    detector.reset()
    tracks = track_hands((detector.detect(f) for f in iter_frames(clip)), 2, 0.25)
    return tracks, choose_hand(tracks, "l", mirrored=False, width=320, height=240, **CHOICE)


@pytest.mark.mediapipe
def test_tracking_mode_on_a_real_clip_and_a_blank_clip(tmp_path):
    """A photo moving on a circle, written as mp4v and decoded back: the hand is found in nearly
    every frame and its landmarks follow the known motion; a blank clip has no hand at all."""
    from hawkeye.prepare.landmarks import (
        close_process_detector,
        graph_built_in_process,
        process_detector,
    )

    image = cv2.resize(_photo("handDst.jpg"), (320, 240), interpolation=cv2.INTER_AREA)
    n = 24
    clip = tmp_path / "hand.mp4"
    write_video(clip, moving_image_frames(image, n, shift=0.06, angle_deg=6.0), fps=25.0)
    detector = process_detector(**LITE_DETECTOR)
    tracks, choice = track_and_choose(detector, clip)
    landmarks = select_track(tracks, choice)
    presence = ~np.isnan(landmarks[:, 0, 0])
    assert landmarks.shape == (n, 21, 3)
    assert presence.mean() >= 0.9
    _assert_anatomical(landmarks[presence][0])
    # the hand's centre moves like the image: x follows cos, y follows sin of the phase
    phase = 2 * np.pi * np.arange(n) / n
    centre = np.nanmean(landmarks[:, :, :2], axis=1)
    assert np.corrcoef(centre[presence, 0], np.cos(phase[presence]))[0, 1] > 0.9
    assert np.corrcoef(centre[presence, 1], np.sin(phase[presence]))[0, 1] > 0.9
    assert process_detector(**LITE_DETECTOR) is detector
    assert graph_built_in_process()

    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((240, 320, 3), 128, dtype=np.uint8)] * 10, fps=25.0)
    tracks, choice = track_and_choose(detector, blank)
    assert (choice.reason, tracks.n_tracks) == ("no_hand", 0)
    assert np.isnan(select_track(tracks, choice)).all()
    close_process_detector()
    assert process_detector(**LITE_DETECTOR) is not detector
    close_process_detector()
