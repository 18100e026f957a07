"""hawkeye.prepare's exit codes: settings, input and output checked before any video is decoded;
nothing usable written or a whole split empty is a failure naming the likely cause."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hawkeye import cli
from hawkeye.prepare.__main__ import main


@pytest.fixture
def demo(small_pd4t, tmp_path) -> Path:
    root = tmp_path / "PD4T"
    shutil.copytree(small_pd4t, root)
    return root


def prepare(root: Path, store: Path, capsys, *overrides: str) -> tuple[int, str]:
    code = cli.run_app(main, [f"data_root={root}", f"paths.store={store}", "prepare.workers=1",
                              "prepare.qc.overview=false", *overrides])
    out, err = capsys.readouterr()
    return code, out + err


def test_landmark_files_read_by_mediapipe_give_nothing_usable_and_say_precomputed(
        demo, tmp_path, capsys) -> None:
    code, out = prepare(demo, tmp_path / "s.h5", capsys)  # landmark_source=mediapipe: no videos
    assert code == 2
    assert "nothing usable was written" in out and "all 8 annotation row(s) were skipped" in out
    assert "prepare.landmark_source=precomputed" in out
    code, _ = prepare(demo, tmp_path / "s.h5", capsys, "prepare.landmark_source=precomputed")
    assert code == 0


def test_a_split_left_without_usable_videos_fails(demo, tmp_path, capsys) -> None:
    valid = (demo / "Annotations_split" / "Finger tapping" / "valid.csv").read_text().split()
    for row in valid:  # <visit>_<hand>_<subject>: its landmark file goes
        visit, hand, subject = row.split(",")[0].rsplit("_", 2)
        (demo / "Videos" / "Finger tapping" / subject / f"{visit}_{hand}.landmarks.npz").unlink()
    code, out = prepare(demo, tmp_path / "s.h5", capsys, "prepare.landmark_source=precomputed")
    assert code == 2 and "split 'valid' has no usable video" in out
    assert "most common reason" in out and "not found" in out


@pytest.mark.parametrize(("overrides", "message"), [
    (["+prepare.workerz=1"], "prepare.workerz: no such key"),
    (["prepare.flush_every=0"], "prepare.flush_every: must be >= 1, got 0"),
    (["prepare.landmark_source=openpose"], "'openpose' is not one of ['mediapipe', 'precomputed']"),
    (["data_root=/nonexistent/PD4T"], "data_root=/nonexistent/PD4T: no such folder"),
    (["task.landmarks=face"], "task.landmarks: 'face' is not one of ['hands', 'pose']"),
    (["task.features=gait"], "task.features=gait reads pose landmarks, but task.landmarks=hands"),
    (["prepare.pose.min_tracking_confidence=2"], "prepare.pose.min_tracking_confidence: must be "
                                                 "<= 1, got 2"),
])
def test_bad_settings_and_inputs_stop_before_any_decoding(overrides, message, demo, tmp_path,
                                                          capsys) -> None:
    code, out = prepare(demo, tmp_path / "out" / "s.h5", capsys, *overrides)
    assert code == 2 and "nothing was decoded" in out and message in out, out
    assert not (tmp_path / "out").exists()


def test_an_unwritable_store_folder_stops_before_any_decoding(demo, tmp_path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, out = prepare(demo, blocker / "s.h5", capsys)
    assert code == 2 and "is a file, not a folder" in out and "Traceback" not in out


def test_one_shard_of_several_is_not_judged_alone(demo, tmp_path, capsys) -> None:
    code, out = prepare(demo, tmp_path / "s.h5", capsys, "prepare.num_shards=20",
                        "prepare.shard_index=19", "prepare.landmark_source=precomputed")
    assert code == 0, out  # no video falls in shard 19 of 20: the merge is judged
