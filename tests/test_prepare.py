"""The preparation pipeline end to end: demo data and real-photo clips into a real HDF5 store, QC,
bad input, resume after a kill, shards + merge, and the Hydra command line."""

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import hawkeye.prepare.worker as worker
from hawkeye.config import compose
from hawkeye.prepare import features
from hawkeye.prepare.features import FeatureConfig, compute_features
from hawkeye.prepare.landmarks import fill_gaps, load_precomputed
from hawkeye.prepare.pd4t import Pd4tConfig, load_annotations
from hawkeye.prepare.pipeline import prepare_from_config, shard_path
from hawkeye.prepare.qc import (
    CACHED,
    FLAGGED,
    OK,
    RELABELLED,
    SKIPPED,
    QcRow,
    qc_markdown,
    qc_paths,
    read_qc_csv,
    write_qc_csv,
)
from hawkeye.prepare.video import moving_image_frames, write_video
from hawkeye.store import load_store, stored_hashes
from hawkeye.synthetic import generate_dataset
from hawkeye.synthetic_config import load_synthetic_config

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).parent / "assets"
TASK_DIR = "Finger tapping"


def configure(root: Path, store: Path, *overrides: str):
    """The real composed config, pointed at ``root``/``store``, one worker, no overview figure."""
    return compose(
        [
            f"data_root={root}",
            f"paths.store={store}",
            "prepare.workers=1",
            "prepare.qc.overview=false",
            *overrides,
        ]
    )


def run(root: Path, store: Path, *overrides: str):
    return prepare_from_config(configure(root, store, *overrides))


def qc_by_id(report) -> dict[str, QcRow]:
    return {row.id: row for row in read_qc_csv(report.qc_csv)}


def annotated_ids(root: Path, layout: str = "Annotations_split") -> list[str]:
    folder = root / layout / TASK_DIR
    return sorted(
        line.split(",")[0]
        for path in folder.glob("*.csv")
        for line in path.read_text().splitlines()
        if line.strip()
    )


@pytest.fixture
def demo(small_pd4t, tmp_path) -> Path:
    """A private copy of the demo dataset, free to damage."""
    root = tmp_path / "PD4T"
    shutil.copytree(small_pd4t, root)
    return root


def _landmark_file(root: Path, video_id: str) -> Path:
    visit, hand, subject = video_id.rsplit("_", 2)
    return root / "Videos" / TASK_DIR / subject / f"{visit}_{hand}.landmarks.npz"


def _assert_same_store(a, b) -> None:
    for name in (
        "ids",
        "subjects",
        "hands",
        "splits",
        "scores",
        "fps",
        "lengths",
        "offsets",
        "source_hashes",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.series, b.series)
    np.testing.assert_array_equal(a.summary, b.summary)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)  # NaN == NaN for array_equal here
    np.testing.assert_array_equal(a.presence, b.presence)
    assert a.series_names == b.series_names and a.summary_names == b.summary_names


# ------------------------------------------------------------------------------- small pieces


def test_shard_and_qc_paths():
    assert shard_path("data/x.h5", 1, 4) == Path("data/x.shard-1-of-4.h5")
    paths = qc_paths("data/x.h5")
    assert paths["csv"] == Path("data/x_qc.csv") and paths["md"] == Path("data/x_qc.md")
    assert paths["png"] == Path("data/x_qc.png") and paths["dir"] == Path("data/x_qc")
    assert qc_paths(shard_path("data/x.h5", 0, 2))["csv"] == Path("data/x.shard-0-of-2_qc.csv")


def test_qc_csv_round_trip_and_markdown(tmp_path):
    rows = [
        QcRow(
            id="a", status=OK, frames=30, fps=29.97, detection_rate=0.5, taps=4, hand_choice="label"
        ),
        QcRow(id="b", status=SKIPPED, reason="x.mp4: file not found"),
    ]
    path = tmp_path / "qc.csv"
    write_qc_csv(path, rows)
    back = read_qc_csv(path)
    assert [r.id for r in back] == ["a", "b"]
    assert back[0].fps == pytest.approx(29.97) and back[0].taps == 4
    assert math.isnan(back[1].detection_rate) and back[1].reason == "x.mp4: file not found"
    text = qc_markdown(back, tmp_path / "s.h5")
    assert "2 rows: 1 ok, 0 flagged, 0 cached, 0 relabelled, 1 skipped" in text
    assert "| b | skipped | x.mp4: file not found |" in text


def test_checks_flag_mismatch_low_detection_and_motion_choice(demo):
    settings = worker.PrepareSettings.from_config(
        configure(demo, Path("s.h5"), "prepare.max_missing_share=0.25").prepare, None)
    item = next(i for i in load_annotations(demo, Pd4tConfig.from_config(
        configure(demo, Path("s.h5")).task)).items)
    raw = np.zeros((item.frame_count, 21, 3), np.float32)
    label = worker.lm.HandChoice(0, 2, "Left", "label", "hand labelled side 'l'")
    assert worker._checks(item, raw, label, settings) == ([], False)
    raw[: item.frame_count // 2] = np.nan
    notes, skip = worker._checks(item, raw[:-10], label, settings)
    assert "frames read but the annotation" in notes[0] and "hand missing in" in notes[1]
    assert not skip  # flagged, still stored by default
    motion = worker.lm.HandChoice(1, 2, "Right", "motion_override", "took the other")
    notes, _ = worker._checks(item, np.zeros_like(raw), motion, settings)
    assert len(notes) == 1 and "chosen by motion" in notes[0]
    nothing = np.full_like(raw, np.nan)  # no hand at all has its own reason, not a share
    assert worker._checks(item, nothing, label, settings) == ([], False)


# ------------------------------------------------------------------------------- demo data


def test_demo_dataset_precomputed_into_a_store_training_reads(demo, tmp_path):
    store = tmp_path / "demo.h5"
    report = run(
        demo,
        store,
        "prepare.landmark_source=precomputed",
        "prepare.qc.overview=true",
        "prepare.flush_every=3",
    )
    ids = annotated_ids(demo)
    assert report.exit_code == 0 and report.counts == {OK: len(ids)}
    data = load_store(store, require_landmarks=True)
    assert sorted(data.ids.tolist()) == ids
    assert set(data.splits.tolist()) == {"train", "valid", "test"}
    assert data.series_names == list(features.SERIES_NAMES)
    assert data.summary.shape == (len(ids), len(features.SUMMARY_NAMES))
    # every frame of every video is stored: lengths equal the landmark files' T
    for i, video_id in enumerate(data.ids):
        assert data.lengths[i] == len(load_precomputed(_landmark_file(demo, video_id)).landmarks)
    # the stored features are exactly landmarks -> fill_gaps -> compute_features of that file
    cfg = configure(demo, store)
    first = load_precomputed(_landmark_file(demo, data.ids[0]))
    expected = compute_features(
        fill_gaps(first.landmarks, cfg.prepare.landmarks.max_gap),
        ~np.isnan(first.landmarks[:, 0, 0]),
        first.fps,
        first.width,
        first.height,
        FeatureConfig.from_config(cfg.prepare.features),
    )
    np.testing.assert_array_equal(data.sequence(0), expected.series)
    np.testing.assert_array_equal(data.summary[0], expected.summary)
    # QC: one row per video with its numbers, summary and overview beside the store
    qc = qc_by_id(report)
    assert sorted(qc) == ids
    row = qc[str(data.ids[0])]
    assert row.frames == data.lengths[0] and row.hand_choice == "precomputed"
    assert 0 < row.detection_rate <= 1 and row.taps == expected.taps.n
    assert report.qc_md.read_text().startswith("# Preparation QC")
    assert qc_paths(store)["png"].stat().st_size > 0


def test_qc_plots_and_low_detection_flags(demo, tmp_path):
    store = tmp_path / "s.h5"
    report = run(
        demo,
        store,
        "prepare.landmark_source=precomputed",
        "prepare.qc.plots=true",
        "prepare.max_missing_share=0.01",
        "prepare.skip_low_detection=true",
    )
    qc = qc_by_id(report)
    stored = set(stored_hashes(store))
    for video_id, row in qc.items():
        if row.detection_rate < 0.99:
            assert row.status == SKIPPED and "hand missing in" in row.reason
            assert video_id not in stored
        else:
            assert row.status == OK and video_id in stored
            assert (qc_paths(store)["dir"] / f"{video_id}.png").stat().st_size > 0
    assert {row.status for row in qc.values()} == {OK, SKIPPED}  # the demo has gaps in some


def test_traces_are_drawn_on_demand_for_videos_already_stored(demo, tmp_path):
    """A rerun with plots on finds every video cached and still draws each one's trace."""
    store = tmp_path / "s.h5"
    run(demo, store, "prepare.landmark_source=precomputed")
    figures = qc_paths(store)["dir"]
    assert not figures.exists()
    again = run(demo, store, "prepare.landmark_source=precomputed", "prepare.qc.plots=true")
    assert set(again.counts) == {CACHED}
    drawn = sorted(p.stem for p in figures.glob("*.png"))
    assert drawn == annotated_ids(demo)
    assert all((figures / f"{i}.png").read_bytes()[:4] == b"\x89PNG" for i in drawn)


def test_an_implausible_landmark_file_fps_is_flagged_everywhere(demo, tmp_path, caplog):
    """fps 1e6 used to be stored as ok with 0 taps; now the row is flagged with its reason in the
    QC csv, the QC markdown and the console, and the fallback rate is used (and said)."""
    video_id = annotated_ids(demo)[0]
    path = _landmark_file(demo, video_id)
    original = load_precomputed(path)
    np.savez(path, landmarks=original.landmarks, fps=1e6, width=original.width,
             height=original.height)
    store = tmp_path / "s.h5"
    with caplog.at_level("WARNING", logger="hawkeye.prepare.pipeline"):
        report = run(demo, store, "prepare.landmark_source=precomputed")
    row = qc_by_id(report)[video_id]
    assert row.status == FLAGGED and "1e+06 fps is implausible" in row.reason
    assert row.fps == 30.0 and row.fps_reported == 1e6 and row.timing == "fallback"
    assert row.taps > 0  # at the fallback rate the taps are found again
    assert "1e+06 fps is implausible" in report.qc_md.read_text()
    assert any(video_id in r.message and "implausible" in r.message for r in caplog.records)
    others = [r for i, r in qc_by_id(report).items() if i != video_id]
    assert {r.timing for r in others} == {"file"} and {r.fps for r in others} == {30.0}
    assert "Frame rates: 30-30 fps" in report.qc_md.read_text()


def test_a_landmark_file_with_frame_timestamps_keeps_its_timing(demo, tmp_path):
    """Another tracker's file with per-frame times (a variable-rate phone video) is stored with
    those times; the QC row measures the rate from them."""
    video_id = annotated_ids(demo)[0]
    path = _landmark_file(demo, video_id)
    original = load_precomputed(path)
    n = len(original.landmarks)
    times = 5.0 + np.cumsum(np.r_[0.0, np.random.default_rng(2).uniform(1 / 40, 1 / 20, n - 1)])
    np.savez(path, landmarks=original.landmarks, fps=30.0, width=original.width,
             height=original.height, timestamps=times)
    store = tmp_path / "s.h5"
    report = run(demo, store, "prepare.landmark_source=precomputed")
    row = qc_by_id(report)[video_id]
    assert row.status == OK and row.timing == "timestamps" and row.fps_spread > 0.1
    assert 20 < row.fps < 40 and "variable frame rate" in row.fps_note
    data = load_store(store)
    k = int(np.flatnonzero(data.ids == video_id)[0])
    np.testing.assert_allclose(data.frame_times()[data.offsets[k]:data.offsets[k + 1]],
                               times - 5.0)


# ------------------------------------------------------------------------------- bad input


def test_bad_input_is_reported_and_nothing_stored_is_lost(demo, tmp_path):
    store = tmp_path / "s.h5"
    ids = annotated_ids(demo)
    first = run(demo, store, "prepare.landmark_source=precomputed")
    assert first.counts == {OK: len(ids)}
    before = load_store(store)

    missing, corrupt, no_hand, mismatch = ids[:4]
    _landmark_file(demo, missing).unlink()
    _landmark_file(demo, corrupt).write_bytes(b"this is not an npz file")
    path = _landmark_file(demo, no_hand)
    empty = load_precomputed(path)
    np.savez(
        path,
        landmarks=np.full_like(empty.landmarks, np.nan),
        fps=empty.fps,
        width=empty.width,
        height=empty.height,
    )
    train = demo / "Annotations_split" / TASK_DIR / "train.csv"
    lines = train.read_text().splitlines()
    lines = [
        (
            f"{mismatch},{int(line.split(',')[1]) + 50},{line.split(',')[2]}"
            if line.startswith(mismatch + ",")
            else line
        )
        for line in lines
    ]
    lines += ["not-an-id,50,1", "15-009999_l_009,50,7", "15-009998_l_009,abc,1", lines[0]]
    for split in ("valid", "test"):  # the mismatching video may be in another split
        other = demo / "Annotations_split" / TASK_DIR / f"{split}.csv"
        other.write_text(
            "".join(
                (
                    f"{mismatch},{int(line.split(',')[1]) + 50},{line.split(',')[2]}\n"
                    if line.startswith(mismatch + ",")
                    else line + "\n"
                )
                for line in other.read_text().splitlines()
            )
        )
    train.write_text("\n".join(lines) + "\n")

    report = run(demo, store, "prepare.landmark_source=precomputed")
    assert report.exit_code == 0  # not strict: reported, not fatal
    rows = read_qc_csv(report.qc_csv)
    by_reason = {row.reason.split(":")[0]: row for row in rows if row.status == SKIPPED}
    reasons = " || ".join(row.reason for row in rows)
    qc = {row.id: row for row in rows if row.source.endswith(".npz")}
    assert qc[missing].status == SKIPPED and "not found" in qc[missing].reason
    assert str(_landmark_file(demo, missing)) in qc[missing].reason
    assert qc[corrupt].status == SKIPPED and "not a readable .npz" in qc[corrupt].reason
    assert qc[no_hand].status == SKIPPED and "no hand detected" in qc[no_hand].reason
    # the edited frame count: the stored video is kept (same content) and the mismatch reported
    assert qc[mismatch].status == CACHED and "frames read but the annotation" in qc[mismatch].reason
    for kind in ("bad_id", "score_out_of_range", "non_integer", "duplicate_id"):
        assert kind in by_reason, f"{kind} missing from QC: {reasons}"
    assert "not-an-id" in by_reason["bad_id"].reason
    assert by_reason["score_out_of_range"].id == "15-009999_l_009"
    assert "train.csv:6" in by_reason["score_out_of_range"].reason  # file and line named
    # nothing stored is lost: the three broken videos keep their earlier entries
    after = load_store(store)
    assert sorted(after.ids.tolist()) == sorted(before.ids.tolist())
    for video_id in (missing, corrupt, no_hand):
        i, j = list(before.ids).index(video_id), list(after.ids).index(video_id)
        np.testing.assert_array_equal(before.sequence(i), after.sequence(j))
    # the others (the edited one included) were found already stored by content hash, not redone
    assert sum(row.status == CACHED for row in rows) == len(ids) - 3

    strict = run(demo, store, "prepare.landmark_source=precomputed", "prepare.strict=true")
    assert strict.exit_code == 1

    fresh = run(demo, tmp_path / "fresh.h5", "prepare.landmark_source=precomputed")
    row = qc_by_id(fresh)[mismatch]
    assert row.status == FLAGGED and "frames read but the annotation" in row.reason
    assert mismatch in stored_hashes(tmp_path / "fresh.h5")  # flagged videos are stored


def test_frame_count_mismatch_can_skip(demo, tmp_path):
    video_id = annotated_ids(demo)[0]
    for path in (demo / "Annotations_split" / TASK_DIR).glob("*.csv"):
        path.write_text(
            path.read_text()
            .replace(f"{video_id},", f"{video_id}9,")
            .replace(f"{video_id}9,", f"{video_id},1")
        )  # frame count 1xx -> off
    report = run(
        demo,
        tmp_path / "s.h5",
        "prepare.landmark_source=precomputed",
        "prepare.skip_frame_mismatch=true",
        "prepare.frame_count_tolerance=0",
    )
    row = qc_by_id(report)[video_id]
    assert row.status == SKIPPED and "tolerance 0" in row.reason
    assert video_id not in stored_hashes(tmp_path / "s.h5")


# ------------------------------------------------------------------------------- resume


def test_resume_after_a_killed_run_processes_only_missing_videos(demo, tmp_path, monkeypatch):
    store = tmp_path / "s.h5"
    ids = annotated_ids(demo)
    calls = []
    real = worker.process_video

    def dies_on_sixth(item, stored_hash, settings):
        calls.append(item.id)
        if len(calls) == 6:
            raise KeyboardInterrupt("simulated kill")
        return real(item, stored_hash, settings)

    monkeypatch.setattr(worker, "process_video", dies_on_sixth)
    with pytest.raises(KeyboardInterrupt):
        run(demo, store, "prepare.landmark_source=precomputed", "prepare.flush_every=2")
    partial = load_store(store)  # valid after the kill
    assert len(partial) == 5  # 4 flushed in pairs, the 5th saved by the final flush
    monkeypatch.setattr(worker, "process_video", real)

    report = run(demo, store, "prepare.landmark_source=precomputed", "prepare.flush_every=2")
    qc = qc_by_id(report)
    assert {i for i, r in qc.items() if r.status == CACHED} == set(partial.ids.tolist())
    assert {i for i, r in qc.items() if r.status == OK} == set(ids) - set(partial.ids.tolist())
    # the cached rows keep the numbers measured by the first run
    assert all(r.frames > 0 for r in qc.values())
    full = load_store(store)
    assert sorted(full.ids.tolist()) == ids
    fresh = tmp_path / "fresh.h5"
    run(demo, fresh, "prepare.landmark_source=precomputed")
    _assert_same_store(full, load_store(fresh))


def test_changed_score_relabels_without_recomputing(demo, tmp_path):
    store = tmp_path / "s.h5"
    run(demo, store, "prepare.landmark_source=precomputed")
    train = demo / "Annotations_split" / TASK_DIR / "train.csv"
    video_id, frames, score = train.read_text().splitlines()[0].split(",")
    new_score = (int(score) + 1) % 5
    train.write_text(
        train.read_text().replace(
            f"{video_id},{frames},{score}", f"{video_id},{frames},{new_score}"
        )
    )
    report = run(demo, store, "prepare.landmark_source=precomputed")
    qc = qc_by_id(report)
    assert qc[video_id].status == RELABELLED
    assert sum(r.status == CACHED for r in qc.values()) == len(qc) - 1
    data = load_store(store)
    assert data.scores[list(data.ids).index(video_id)] == new_score


# ------------------------------------------------------------------------------- shards


def test_shards_and_merge_equal_a_local_run(demo, tmp_path):
    local = tmp_path / "local.h5"
    run(demo, local, "prepare.landmark_source=precomputed")
    sharded = tmp_path / "sharded.h5"
    for k in range(3):
        report = run(
            demo,
            sharded,
            "prepare.landmark_source=precomputed",
            "prepare.num_shards=3",
            f"prepare.shard_index={k}",
        )
        assert report.store == shard_path(sharded, k, 3) and report.store.exists()
    assert not sharded.exists()
    merged = run(demo, sharded, "prepare.num_shards=3", "prepare.merge=true")
    assert merged.exit_code == 0
    _assert_same_store(load_store(local), load_store(sharded))
    assert sorted(r.id for r in read_qc_csv(merged.qc_csv)) == sorted(
        r.id for r in read_qc_csv(qc_paths(local)["csv"])
    )


def test_merge_names_a_missing_shard(demo, tmp_path):
    store = tmp_path / "s.h5"
    run(
        demo,
        store,
        "prepare.landmark_source=precomputed",
        "prepare.num_shards=2",
        "prepare.shard_index=0",
    )
    with pytest.raises(FileNotFoundError, match=r"s\.shard-1-of-2\.h5"):
        run(demo, store, "prepare.num_shards=2", "prepare.merge=true")


# ------------------------------------------------------------------------------- workers


def test_workers_fork_unless_a_mediapipe_graph_was_built(monkeypatch):
    settings = worker.PrepareSettings.from_config(configure(Path("x"), Path("s.h5")).prepare, None)
    monkeypatch.setattr(worker.lm, "_GRAPH_BUILT", False)
    assert worker.pool_context(settings).get_start_method() == "fork"
    monkeypatch.setattr(worker.lm, "_GRAPH_BUILT", True)
    assert worker.pool_context(settings).get_start_method() == "spawn"


# ------------------------------------------------------------------------------- video path


def _pd4t_with_videos(root: Path, videos: dict[str, tuple[str, object]],
                      fps: dict[str, float] | None = None) -> None:
    """Write a PD4T layout: ``videos`` maps id -> (split, content) where content is a list of RGB
    frames (written at ``fps[id]``, default 25), raw bytes, or None for a video that the
    annotation names but does not exist."""
    rows: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for video_id, (split, content) in videos.items():
        visit, hand, subject = video_id.rsplit("_", 2)
        path = root / "Videos" / TASK_DIR / subject / f"{visit}_{hand}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        frames = 20 if not isinstance(content, list) else len(content)
        if isinstance(content, list):
            write_video(path, content, fps=(fps or {}).get(video_id, 25.0))
        rows[split].append(f"{video_id},{frames},1")
    folder = root / "Annotations_split" / TASK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (folder / f"{split}.csv").write_text("".join(line + "\n" for line in lines))


def _photo_clip(name: str, size: tuple[int, int], n: int) -> list[np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(ASSETS / name)), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return list(moving_image_frames(image, n, shift=0.05, angle_deg=5.0))


@pytest.mark.mediapipe
def test_command_line_on_real_hand_clips_and_bad_videos_with_two_workers(tmp_path):
    """``python -m hawkeye.prepare`` (a fresh process, so its two workers fork) on clips of a real
    hand photo, a blank clip, an empty, a corrupt and a missing video and a bad annotation row."""
    root = tmp_path / "PD4T"
    _pd4t_with_videos(root, {
        "15-000001_l_001": ("train", _photo_clip("handDst.jpg", (320, 240), 20)),
        "15-000002_r_002": ("valid", _photo_clip("handDst.jpg", (240, 320), 20)),  # portrait
        "15-000003_l_003": ("train", [np.full((120, 160, 3), 90, np.uint8)] * 12),  # no hand
        "15-000004_l_004": ("train", b""),                                           # zero bytes
        "15-000005_r_005": ("valid", b"\x00\x01garbage" * 100),                   # corrupt
        "15-000006_l_006": ("test", None),                                           # missing
        "15-000008_r_008": ("test", _photo_clip("Back_Projection_Theory0.jpg", (200, 200), 16)),
    }, fps={"15-000008_r_008": 1000.0})  # a container rate that lies
    train = root / "Annotations_split" / TASK_DIR / "train.csv"
    train.write_text(train.read_text() + "15-000007_l_007,20,9\n")  # score out of range
    store = tmp_path / "s.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "hawkeye.prepare", f"data_root={root}", f"paths.store={store}",
         "prepare.workers=2", "prepare.landmarks.model_complexity=0", "prepare.strict=true"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]  # strict: something was skipped
    for video_id in ("15-000003_l_003", "15-000004_l_004", "15-000005_r_005", "15-000006_l_006",
                     "15-000007_l_007"):
        assert video_id in output  # every problem names its video
    qc = {row.id: row for row in read_qc_csv(qc_paths(store)["csv"])}
    for video_id, shape in (("15-000001_l_001", (320, 240)), ("15-000002_r_002", (240, 320))):
        row = qc[video_id]
        assert row.status == OK, row.reason
        assert row.detection_rate >= 0.9 and row.hand_choice == "only_hand"
        assert (row.width, row.height, row.frames, row.fps) == (*shape, 20, 25.0)
        assert row.detect_s > 0 and row.decode_s > 0
    lying = qc["15-000008_r_008"]
    # 1000 fps claimed and 1 ms timestamps: no plausible rate, so the fallback, flagged
    assert lying.status == FLAGGED and lying.fps == 30.0 and lying.timing == "fallback"
    assert "implausible" in lying.reason and "fps_fallback=30" in lying.reason
    assert "no hand detected in any of 12 frames" in qc["15-000003_l_003"].reason
    assert "file is empty (0 bytes)" in qc["15-000004_l_004"].reason
    assert "OpenCV cannot open it" in qc["15-000005_r_005"].reason
    assert "not found" in qc["15-000006_l_006"].reason
    for video_id in ("15-000003_l_003", "15-000004_l_004", "15-000005_r_005", "15-000006_l_006"):
        assert qc[video_id].status == SKIPPED
        assert f"{video_id.rsplit('_', 1)[0]}.mp4" in qc[video_id].reason  # names the file
    assert qc["15-000007_l_007"].status == SKIPPED and "score_out_of_range" in qc[
        "15-000007_l_007"].reason
    data = load_store(store, require_landmarks=True)
    assert sorted(data.ids.tolist()) == ["15-000001_l_001", "15-000002_r_002", "15-000008_r_008"]
    assert data.presence.mean() >= 0.9


@pytest.mark.mediapipe
def test_rendered_demo_videos_through_mediapipe(tmp_path):
    """The demo generator's stick-figure videos need not fool MediaPipe: the run completes, and
    every video is either stored or skipped with the no-hand reason, in QC and store alike."""
    root = tmp_path / "PD4T"
    generate_dataset(
        root,
        load_synthetic_config(["n_subjects=2", "visits_min=1", "visits_max=1", "min_frames=12",
                               "max_frames=16", "resolutions=[160x120]", "render_videos=true"]),
    )
    store = tmp_path / "s.h5"
    report = run(root, store, "task.split_layout=official", "prepare.landmarks.model_complexity=0")
    qc = qc_by_id(report)
    ids = annotated_ids(root, "Annotations")
    assert sorted(qc) == ids
    stored = set(stored_hashes(store))
    for video_id, row in qc.items():
        assert row.frames == row.frames_annotated  # every frame decoded
        if row.status == SKIPPED:
            assert row.hand_choice == "no_hand" and "no hand detected" in row.reason
            assert video_id not in stored
        else:
            assert row.status in (OK, FLAGGED) and video_id in stored
    skipped = sum(row.status == SKIPPED for row in qc.values())
    assert report.counts.get(SKIPPED, 0) == skipped
    assert f"{skipped} skipped" in report.qc_md.read_text()


# ------------------------------------------------------------------------------- Slurm

FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def _slurm_states(job_ids: list[str], env: dict[str, str], timeout: float = 240
                  ) -> dict[str, str]:
    """Wait until every job (array tasks included) is in a final state; ``{job: state}``."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
                             capture_output=True, text=True, env=env, check=True).stdout
        states = dict(line.split() for line in out.splitlines() if line.strip())
        if states and all(s in FINAL_STATES for s in states.values()) and all(
                any(k.split("_")[0] == j for k in states) for j in job_ids):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"Slurm jobs {job_ids} not finished after {timeout}s: {states}")
        time.sleep(1)


def _sbatch_env(slurm_cluster, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **slurm_cluster.env, "HAWKEYE_ROOT": str(REPO),
            "HAWKEYE_PYTHON": sys.executable, "HAWKEYE_PREPARE_SHARDS": "2",
            "HAWKEYE_PREPARE_CPUS": "1", "HAWKEYE_PREPARE_MEM": "1G",
            "HAWKEYE_PREPARE_LOGS": str(tmp_path / "logs")}


@pytest.mark.slurm
def test_prepare_sbatch_array_and_dependent_merge(slurm_cluster, demo, tmp_path):
    """`bash jobs/prepare.sbatch` on the local Slurm cluster: a 2-task shard array and a merge job
    (afterok) give the same store as a local run."""
    store = tmp_path / "slurm.h5"
    overrides = [f"data_root={demo}", f"paths.store={store}", "prepare.landmark_source=precomputed"]
    env = _sbatch_env(slurm_cluster, tmp_path)
    proc = subprocess.run(["bash", str(REPO / "jobs" / "prepare.sbatch"), *overrides], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    array_id, merge_id = lines[0].split()[2], lines[-1]
    states = _slurm_states([array_id, merge_id], env)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted((tmp_path / "logs").glob("*.out")))
    assert set(states.values()) == {"COMPLETED"}, f"{states}\n{logs}"
    assert {k for k in states if k.startswith(array_id)} == {f"{array_id}_0", f"{array_id}_1"}
    local = tmp_path / "local.h5"
    run(demo, local, "prepare.landmark_source=precomputed")
    _assert_same_store(load_store(local), load_store(store))
    assert qc_paths(store)["md"].exists()


@pytest.mark.slurm
@pytest.mark.slow
def test_prepare_sbatch_driver_job_waits_for_its_array(slurm_cluster, demo, tmp_path):
    """`sbatch jobs/prepare.sbatch` (what jobs/pipeline.sh submits): the driver job ends only after
    its shards and the merge, so `afterok:<driver>` sees a complete store. ~1 min: sbatch --wait
    polls the controller slowly."""
    store = tmp_path / "driver.h5"
    env = _sbatch_env(slurm_cluster, tmp_path)
    proc = subprocess.run(
        ["sbatch", "--parsable", f"--output={tmp_path}/driver-%j.out",
         str(REPO / "jobs" / "prepare.sbatch"), f"data_root={demo}", f"paths.store={store}",
         "prepare.landmark_source=precomputed"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    driver = proc.stdout.strip().split(";")[0]
    states = _slurm_states([driver], env, timeout=300)
    log = "".join(p.read_text() for p in tmp_path.glob("driver-*.out"))
    assert states[driver] == "COMPLETED", log
    assert "merged 2 shards" in log
    assert len(load_store(store)) == len(annotated_ids(demo))
