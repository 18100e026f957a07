"""The PD4T-shaped demo generator: layout, determinism, splits, kinematics per score, rendering.

Kinematic checks measure the simulated hand the way the clinical features do: the thumb-tip to
index-tip distance (landmarks 4 and 8) divided by the index-finger length (5->6->7->8); its range is
the tapping amplitude and its peaks are the taps.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.signal import find_peaks

from hawkeye.synthetic import (
    SCORES,
    _plan,
    aperture_trace,
    draw_style,
    drop_frames,
    generate_dataset,
    hand_pose,
    main,
    rate,
    simulate_tapping,
    tapping_params,
)
from hawkeye.synthetic_config import (
    WHERE,
    Raters,
    SyntheticConfig,
    build_section,
    load_synthetic_config,
)

TASK = "Finger tapping"
ROW = re.compile(r"^(\d{2}-\d{6})_([lr])_(\d{3}),(\d+),([0-4])$")
DEFAULT = load_synthetic_config()
EXACT = load_synthetic_config(["kinematics.severity_sd=0"])  # every trial exactly at its score
SMALL = load_synthetic_config(["n_subjects=8", "visits_min=1", "visits_max=2", "min_frames=60",
                               "max_frames=90", "tracking.short_gaps_per_100_frames=3.0",
                               "tracking.long_gap_probability=0.5", "seed=3"])


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("pd4t")
    return root, generate_dataset(root, SMALL)


def _rows(path: Path) -> list[re.Match]:
    lines = path.read_text().splitlines()
    matches = [ROW.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches, strict=True) if not m]
    return matches


def _normalised_distance(landmarks: np.ndarray) -> np.ndarray:
    tips = np.linalg.norm(landmarks[:, 4] - landmarks[:, 8], axis=-1)
    index_length = np.linalg.norm(np.diff(landmarks[:, 5:9], axis=1), axis=-1).sum(axis=1)
    return tips / index_length


def test_layout_annotations_and_landmark_files(small_dataset) -> None:
    root, videos = small_dataset
    ids = set()
    for split in ("train", "test"):
        for match in _rows(root / "Annotations" / TASK / f"{split}.csv"):
            visit, hand, subject, frames, score = match.groups()
            ids.add(match.group(0).split(",")[0])
            archive = np.load(root / "Videos" / TASK / subject / f"{visit}_{hand}.landmarks.npz",
                              allow_pickle=False)
            assert sorted(archive.files) == ["fps", "height", "landmarks", "width"]
            landmarks = archive["landmarks"]
            assert landmarks.dtype == np.float32 and landmarks.shape == (int(frames), 21, 3)
            assert float(archive["fps"]) == 30.0
            assert (int(archive["width"]), int(archive["height"])) in ((1920, 1080), (640, 480))
            lost = np.isnan(landmarks[:, 0, 0])
            # A lost hand is lost entirely; a tracked one lies in the frame.
            assert np.isnan(landmarks[lost]).all() and np.isfinite(landmarks[~lost]).all()
            assert landmarks[~lost, :, :2].min() > -0.05 and landmarks[~lost, :, :2].max() < 1.05
            np.testing.assert_array_equal(landmarks[~lost, 0, 2], 0.0)  # z relative to the wrist
    assert ids == {v.id for v in videos}
    assert any(np.isnan(np.load(v.landmarks_path)["landmarks"][:, 0, 0]).any() for v in videos)
    # Every visit records both hands.
    hands = {}
    for v in videos:
        hands.setdefault((v.subject, v.visit), set()).add(v.hand)
    assert all(h == {"l", "r"} for h in hands.values())


def test_splits_are_subject_disjoint(small_dataset) -> None:
    root, _ = small_dataset
    def subjects(folder: str, split: str) -> set[str]:
        return {m.group(3) for m in _rows(root / folder / TASK / f"{split}.csv")}

    train, test = subjects("Annotations", "train"), subjects("Annotations", "test")
    assert train and test and not train & test
    parts = [subjects("Annotations_split", s) for s in ("train", "valid", "test")]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == train | test and parts[2] == test


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    tiny = ["n_subjects=3", "visits_max=1", "min_frames=40", "max_frames=50"]
    cfg = load_synthetic_config([*tiny, "seed=11"])
    generate_dataset(tmp_path / "a", cfg)
    generate_dataset(tmp_path / "b", cfg)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                     if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                     if p.is_file())
    assert files_a == files_b and len(files_a) == 2 + 3 + 1 + 6  # csvs, split csvs, json, npz
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    other = load_synthetic_config([*tiny, "seed=12"])
    generate_dataset(tmp_path / "c", other)
    assert (tmp_path / "a" / "synthetic.json").read_bytes() != (
        tmp_path / "c" / "synthetic.json").read_bytes()


def test_default_size_and_imbalanced_scores() -> None:
    plan = _plan(DEFAULT)
    assert 430 <= len(plan) <= 520  # about PARK's 489 videos
    assert len({p["subject"] for p in plan}) == DEFAULT.n_subjects
    counts = np.bincount([p["score"] for p in plan], minlength=5)
    # Like PARK and PD4T: most 1, then 0 and 2, few 3 and 4.
    assert counts[1] == counts.max()
    assert min(counts[0], counts[2]) > counts[3] >= counts[4] > 0
    assert {p["n_frames"] for p in plan} <= set(range(100, 241))
    assert {(p["width"], p["height"]) for p in plan} == {(1920, 1080), (640, 480)}


def test_closed_hand_touches_and_open_hand_is_wide() -> None:
    distance = _normalised_distance(hand_pose(np.linspace(0.0, 1.0, 21)))
    assert distance[0] < 0.02 and distance[-1] > 1.2
    assert np.all(np.diff(distance) > 0)  # opening more separates the tips more


def _trial_measures(score: int, trial: int) -> tuple[float, float]:
    rng = np.random.default_rng([2024, score, trial])
    distance = _normalised_distance(simulate_tapping(score, 300, 30.0, rng, EXACT))
    amplitude = np.percentile(distance, 95) - np.percentile(distance, 5)
    taps, _ = find_peaks(distance, prominence=0.05)
    return amplitude, len(taps) / 10.0  # 300 frames at 30 fps = 10 s


def test_amplitude_falls_with_score_and_the_rate_stays() -> None:
    """As in PARK: the opening shrinks with every step of the score, the tapping rate does not."""
    measures = np.array([[_trial_measures(s, k) for k in range(16)] for s in SCORES])
    amplitude, rate = measures[..., 0].mean(axis=1), measures[..., 1].mean(axis=1)
    assert np.all(np.diff(amplitude) < 0), amplitude
    assert amplitude[0] > 1.2 and amplitude[4] < 0.6  # 4: small taps
    assert np.all((rate > 2.5) & (rate < 4.5)), rate


def _holds_per_tap(aperture: np.ndarray, min_frames: int = 6) -> float:
    """Pauses mid-movement (the opening frozen above zero for >= 0.2 s) per detected tap."""
    frozen = np.concatenate([[False], (np.abs(np.diff(aperture)) < 1e-12) & (aperture[1:] > 1e-6)])
    starts = np.flatnonzero(np.diff(frozen.astype(int)) == 1) + 1
    ends = np.flatnonzero(np.diff(np.concatenate([frozen, [False]]).astype(int)) == -1) + 1
    holds = int(np.sum((ends - starts) >= min_frames)) if len(starts) else 0
    taps, _ = find_peaks(aperture, prominence=0.02)
    return holds / max(1, len(taps))


def test_rhythm_amplitude_variation_and_interruptions_worsen_with_score() -> None:
    interruptions, variation, irregularity = np.zeros((5, 40)), np.zeros((5, 40)), []
    for score in SCORES:
        cvs = []
        for k in range(40):
            rng = np.random.default_rng([7, score, k])
            params = tapping_params(score, draw_style(rng, EXACT.subjects), rng, EXACT.kinematics)
            aperture = aperture_trace(params, 450, 30.0, rng, EXACT.kinematics)
            interruptions[score, k] = _holds_per_tap(aperture)
            peaks, _ = find_peaks(aperture, prominence=0.02)
            variation[score, k] = aperture[peaks].std() / aperture[peaks].mean()
            cvs.append(np.diff(peaks).std() / np.diff(peaks).mean())
        irregularity.append(np.median(cvs))
    assert np.all(np.diff(interruptions.mean(axis=1)) > 0), interruptions.mean(axis=1)
    assert np.all(np.diff(variation.mean(axis=1)) > 0), variation.mean(axis=1)
    assert irregularity[0] < min(irregularity[1:]), irregularity


def test_cycle_shape_rests_closed_then_opens_slower_than_it_closes() -> None:
    """A noise-free trace: every cycle rests closed for ``closed_dwell`` of it, then spends
    ``opening_share`` of the movement opening; peaks reach the amplitude exactly."""
    steady = dataclasses.replace(EXACT.kinematics, start_delay_s=(0.0, 0.0))
    params = dataclasses.replace(
        tapping_params(0, draw_style(np.random.default_rng(0), EXACT.subjects),
                       np.random.default_rng(1), steady),
        frequency_hz=2.0, amplitude=0.8, rhythm_cv=0.0, amplitude_cv=0.0, decrement=0.0,
        hesitation_per_tap=0.0, freeze_per_tap=0.0, closed_dwell=0.25, opening_share=0.75)
    fps = 600.0  # 300 samples per 0.5 s cycle: shares are exact to a few samples
    aperture = aperture_trace(params, 3000, fps, np.random.default_rng(2), steady)
    cycle = aperture[600:900]  # the third cycle
    assert np.mean(cycle == 0.0) == pytest.approx(0.25, abs=0.01)
    top = int(np.argmax(cycle))
    assert cycle[top] == pytest.approx(0.8, abs=1e-3)
    assert top / 300 == pytest.approx(0.25 + 0.75 * 0.75, abs=0.01)  # opening ends at 81 %


def test_simulate_tapping_is_pure_and_checks_score() -> None:
    first = simulate_tapping(2, 120, 30.0, np.random.default_rng(5), DEFAULT)
    again = simulate_tapping(2, 120, 30.0, np.random.default_rng(5), DEFAULT)
    assert first.shape == (120, 21, 3)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="score must be one of"):
        simulate_tapping(5, 120, 30.0, np.random.default_rng(5), DEFAULT)


def test_pixel_geometry_and_mirrored_left_hand(small_dataset) -> None:
    """In pixels (x * width, y * height) the hand keeps its shape on 16:9 and 4:3 frames alike,
    and a left hand has the opposite chirality of a right hand."""
    _, videos = small_dataset
    model = hand_pose(np.zeros(1))[0]
    def angle(a, b):
        return np.degrees(np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
                                     (a * b).sum(-1)))

    expected = angle(model[5, :2] - model[0, :2], model[17, :2] - model[0, :2])
    seen = set()
    for v in videos:
        landmarks = np.load(v.landmarks_path)["landmarks"].astype(np.float64)
        landmarks = landmarks[~np.isnan(landmarks[:, 0, 0])]
        pixels = landmarks[..., :2] * (v.width, v.height)
        # Image y points down, so a right hand's signed angle flips sign relative to the model.
        signed = angle(pixels[:, 5] - pixels[:, 0], pixels[:, 17] - pixels[:, 0])
        sign = 1.0 if v.hand == "l" else -1.0
        assert abs(np.median(signed) - sign * expected) < 4.0, (v.id, np.median(signed), expected)
        seen.add((v.width, v.hand))
    assert {w for w, _ in seen} == {1920, 640} and {h for _, h in seen} == {"l", "r"}


def test_drop_frames_blanks_whole_frames_and_keeps_one() -> None:
    hand = np.ones((100, 21, 3))
    tracking = dataclasses.replace(DEFAULT.tracking, short_gaps_per_100_frames=5.0,
                                   long_gap_probability=1.0)
    out = drop_frames(hand, np.random.default_rng(0), tracking, fps=30.0)
    lost = np.isnan(out[:, 0, 0])
    assert 15 <= lost.sum() < 100 and np.isnan(out[lost]).all() and (out[~lost] == 1).all()
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(int), [0]]))))[::2]
    assert runs.max() >= 15  # one long gap (0.5-2 s, at most a quarter of the trial)


def test_rendered_videos_read_back(tmp_path: Path) -> None:
    cfg = load_synthetic_config(["n_subjects=1", "visits_max=1", "min_frames=24", "max_frames=30",
                                 "resolutions=[320x240,400x224]", "render_videos=true",
                                 "tracking.long_gap_probability=1.0", "seed=5"])
    videos = generate_dataset(tmp_path, cfg)
    assert len(videos) == 2
    for v in videos:
        assert v.video_path == v.landmarks_path.parent / f"{v.visit}_{v.hand}.mp4"
        capture = cv2.VideoCapture(str(v.video_path))
        assert capture.isOpened()
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        assert len(frames) == v.n_frames and frames[0].shape == (v.height, v.width, 3)
        landmarks = np.load(v.landmarks_path)["landmarks"]
        lost = np.isnan(landmarks[:, 0, 0])
        assert lost.any() and not lost.all()
        blank, drawn = int(np.flatnonzero(lost)[0]), int(np.flatnonzero(~lost)[0])
        assert frames[blank].reshape(-1, 3).std(axis=0).max() < 3.0  # plain background: no hand
        x, y = np.round(landmarks[drawn, 0, :2] * (v.width, v.height)).astype(int)
        patch = frames[drawn][max(0, y - 2):y + 3, max(0, x - 2):x + 3].astype(int)
        assert patch.mean() < 170  # the dark joint marker at the wrist (background ~ 220)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_cli_takes_bare_keys_and_writes(tmp_path: Path, capsys) -> None:
    cfg = load_synthetic_config(["n_subjects=2", "render_videos=false", "resolutions=[640x480]",
                                 "fps=25", "score_probs=[0.2,0.2,0.2,0.2,0.2]",
                                 "kinematics.severity_sd=0", f"out={tmp_path}"])
    assert cfg.n_subjects == 2 and cfg.fps == 25.0
    assert cfg.resolutions == ("640x480",) and cfg.score_probs == (0.2,) * 5
    assert cfg.kinematics.severity_sd == 0.0
    assert main([f"out={tmp_path / 'demo'}", "n_subjects=2", "visits_max=1", "min_frames=30",
                 "max_frames=40"]) == 0
    assert "wrote 4 trials of 2 subjects" in capsys.readouterr().out
    assert (tmp_path / "demo" / "Annotations" / TASK / "test.csv").exists()
    for bad, message in (("nope=1", "override 'nope'"), ("n_subjects=many", "expected int"),
                         ("render_videos=maybe", "expected bool"), ("n_subjects=1000", "1..999"),
                         ("kinematics.frequency_hz=[3,2]", "5 values"),
                         ("resolutions=[big]", "1920x1080")):
        with pytest.raises(ValueError, match=message):
            load_synthetic_config([bad])
        assert main([f"out={tmp_path / 'bad'}", bad]) == 2
        assert message.split("'")[0] in capsys.readouterr().err
    assert main(["n_subjects=2"]) == 2
    assert "pass out=DIR" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_cli_names_a_folder_it_cannot_write(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main([f"out={blocker / 'PD4T'}", "n_subjects=1", "visits_max=1", "min_frames=20",
                 "max_frames=24"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "file" in err and "Traceback" not in err


def test_config_group_is_the_one_source_of_defaults() -> None:
    """Every field comes from conf/synthetic/default.yaml: a section missing a key or carrying an
    unknown one is refused naming it, and the dataclasses have no defaults of their own."""
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(SyntheticConfig))
    plain = dataclasses.asdict(DEFAULT)
    del plain["kinematics"]["freeze_s"]
    with pytest.raises(ValueError, match=r"kinematics: missing keys \['freeze_s'\]"):
        build_section(SyntheticConfig, plain, WHERE)
    plain = dataclasses.asdict(DEFAULT)
    plain["camera"]["zoom"] = 2.0
    with pytest.raises(ValueError, match=r"camera: missing keys \[\], unknown keys \['zoom'\]"):
        build_section(SyntheticConfig, plain, WHERE)
    assert build_section(SyntheticConfig, dataclasses.asdict(DEFAULT), WHERE) == DEFAULT


def test_raters_read_the_severity_and_their_median_is_the_label(small_dataset) -> None:
    """Without error a rater rounds severity + bias; the annotation is the raters' median, so it
    follows the simulated severity, not the score the trial was drawn for."""
    exact = Raters(bias=(0.0, 0.4, -0.4), sd=0.0)
    assert rate(1.3, np.random.default_rng(0), exact) == (1, 2, 1)
    assert rate(3.8, np.random.default_rng(0), exact) == (4, 4, 3)
    assert rate(0.1, np.random.default_rng(0), Raters(bias=(-2.0,), sd=0.0)) == (0,)  # clipped
    root, videos = small_dataset
    truth = {v["id"]: v for v in json.loads((root / "synthetic.json").read_text())["videos"]}
    for v in videos:
        assert v.score == int(np.median(v.ratings)) and len(v.ratings) == len(SMALL.raters.bias)
        assert truth[v.id]["ratings"] == list(v.ratings) and truth[v.id]["score"] == v.score
    # Label noise: some annotations differ from the score the trial was drawn for, most do not.
    agree = np.array([v.score == v.params.score for v in videos])
    assert 0.4 < agree.mean() < 1.0, agree.mean()
    with pytest.raises(ValueError, match="odd number of raters"):
        Raters(bias=(0.0, 0.0), sd=0.5)


def test_every_option_of_the_group_builds_a_checked_config() -> None:
    folder = Path(__file__).resolve().parents[1] / "conf" / "synthetic"
    options = sorted(p.stem for p in folder.glob("*.yaml"))
    assert options == ["default", "easy"]
    for option in options:
        assert isinstance(load_synthetic_config([f"synthetic={option}"]), SyntheticConfig)


def test_easy_variant_has_exact_raters_and_slowing_taps(tmp_path: Path) -> None:
    easy = load_synthetic_config(["synthetic=easy", "n_subjects=6", "visits_max=1",
                                  "min_frames=40", "max_frames=50"])
    assert easy.raters.sd == 0 and easy.kinematics.frequency_hz[0] > easy.kinematics.frequency_hz[4]
    for v in generate_dataset(tmp_path, easy):
        assert v.score == round(v.params.severity) and len(set(v.ratings)) == 1
