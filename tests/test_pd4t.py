"""PD4T layout and annotation validation (hawkeye/prepare/pd4t.py) on annotation files in
tmp_path."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hawkeye.prepare import pd4t
from hawkeye.prepare.pd4t import (
    Pd4tConfig,
    SubjectOverlapError,
    frame_count_problem,
    load_annotations,
    parse_video_id,
)

TASK_YAML = Path(__file__).resolve().parents[1] / "conf" / "task" / "pd4t_finger_tapping.yaml"


def yaml_config() -> Pd4tConfig:
    """The task section's PD4T keys exactly as the YAML gives them."""
    return Pd4tConfig.from_config(OmegaConf.load(TASK_YAML))


@pytest.fixture
def config() -> Pd4tConfig:
    """The YAML's keys on the official layout, warning on overlap; tests replace what they check."""
    return dataclasses.replace(yaml_config(), split_layout="official", on_subject_overlap="warn")


def write(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(row + "\n" for row in rows))
    return path


def official(root: Path, train: list[str], test: list[str], task: str = "Finger tapping") -> None:
    write(root / "Annotations" / task / "train.csv", train)
    write(root / "Annotations" / task / "test.csv", test)


def kinds(annotations) -> list[str]:
    return [p.kind for p in annotations.problems]


# --------------------------------------------------------------------------- config and ids


def test_config_comes_from_the_task_yaml_and_is_validated(config):
    defaults = yaml_config()
    assert defaults.pd4t_task == "Finger tapping"
    assert (defaults.score_min, defaults.score_max) == (0, 4)
    # the safe defaults: the subject-disjoint split, and stop if subjects overlap anyway
    assert defaults.split_layout == "annotations_split"
    assert defaults.splits == ("train", "valid", "test")
    assert defaults.on_subject_overlap == "error"
    assert config.splits == ("train", "test")
    task = OmegaConf.to_container(OmegaConf.load(TASK_YAML))
    with pytest.raises(ValueError, match="split_layout"):
        Pd4tConfig.from_config({**task, "split_layout": "random"})
    with pytest.raises(ValueError, match="on_subject_overlap"):
        Pd4tConfig.from_config({**task, "on_subject_overlap": "ignore"})
    with pytest.raises(ValueError, match="lacks \\['score_max'\\]"):
        Pd4tConfig.from_config({k: v for k, v in task.items() if k != "score_max"})
    with pytest.raises(ValueError, match="score_min"):
        Pd4tConfig.from_config({**task, "score_min": "zero"})
    # keys other colleagues add to the task section are ignored
    assert Pd4tConfig.from_config({**task, "max_seconds": 30.0}) == defaults


@pytest.mark.parametrize(("video_id", "parts"), [
    ("15-001760_l_043", ("15-001760", "l", "043")),
    ("visit_2_r_101", ("visit_2", "r", "101")),
    ("a_l_b_r_007", ("a_l_b", "r", "007")),
])
def test_video_ids_split_into_visit_hand_and_final_subject_token(video_id, parts):
    assert parse_video_id(video_id) == parts


@pytest.mark.parametrize("video_id", ["15-001760_x_043", "15-001760_l_43", "15-001760_l_0431",
                                      "l_043", "15 001760_l_043", "15-001760_L_043", ""])
def test_malformed_ids_are_rejected(video_id):
    with pytest.raises(ValueError, match="three-digit subject"):
        parse_video_id(video_id)


# --------------------------------------------------------------------------- layouts


def test_official_layout_gives_items_with_paths(tmp_path, config):
    official(tmp_path, ["12-104704_l_036,366,1", "12-104704_r_036,402,2"],
             ["13-000001_l_051,300,0"])
    result = load_annotations(tmp_path, config)
    assert result.problems == [] and result.overlap == {}
    assert [i.id for i in result.items] == ["12-104704_l_036", "12-104704_r_036", "13-000001_l_051"]
    first = result.items[0]
    assert (first.visit, first.hand, first.subject, first.frame_count, first.score, first.split) \
        == ("12-104704", "l", "036", 366, 1, "train")
    folder = tmp_path / "Videos" / "Finger tapping" / "036"
    assert first.video_path == folder / "12-104704_l.mp4"
    assert first.landmarks_path == folder / "12-104704_l.landmarks.npz"
    assert [i.id for i in result.split("test")] == ["13-000001_l_051"]
    assert result.files == {"train": tmp_path / "Annotations/Finger tapping/train.csv",
                            "test": tmp_path / "Annotations/Finger tapping/test.csv"}


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_annotations_split_layout_reads_three_splits_in_csv_or_txt(tmp_path, config, suffix):
    folder = tmp_path / "Annotations_split" / "Finger tapping"
    write(folder / f"train{suffix}", ["v1_l_001,100,1", "v1_r_001,100,2"])
    write(folder / f"valid{suffix}", ["v1_l_002,100,0"])
    write(folder / f"test{suffix}", ["v1_l_003,100,3"])
    layout = dataclasses.replace(config, split_layout="annotations_split")
    result = load_annotations(tmp_path, layout)
    assert [(i.id, i.split) for i in result.items] == [
        ("v1_l_001", "train"), ("v1_r_001", "train"), ("v1_l_002", "valid"), ("v1_l_003", "test")]
    assert result.files["valid"].suffix == suffix
    assert result.problems == []


def test_the_task_folder_is_a_config_value(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_002,100,2"], task="Hand movement")
    result = load_annotations(tmp_path, dataclasses.replace(config, pd4t_task="Hand movement"))
    assert result.items[0].video_path == tmp_path / "Videos/Hand movement/001/v1_l.mp4"
    with pytest.raises(FileNotFoundError, match="Hand movement"):  # lists the folders present
        load_annotations(tmp_path, config)


# --------------------------------------------------------------------------- bad rows


def test_each_bad_row_is_skipped_with_a_named_problem(tmp_path, config):
    train = [
        "v1_l_001,100,1",          # good
        "v1_x_002,100,1",          # bad side
        "v1_l_03,100,1",           # subject not three digits
        "v1_l_004,100,7",          # score above 4
        "v1_l_005,100,-1",         # score below 0
        "v1_l_006,abc,1",          # frame count not an integer
        "v1_l_007,100,1.5",        # score not an integer
        "v1_l_008,0,1",            # no frames
        "v1_l_009,100",            # missing field
        "v1_l_010,100,1,extra",    # extra field
        "",                        # blank line: ignored, no problem
        "v1_l_001,120,2",          # duplicate id within the split
        " v1_r_001 , 100 , 2 ",    # good, with spaces around the fields
    ]
    official(tmp_path, train, ["v2_l_011,100,0"])
    result = load_annotations(tmp_path, config)
    assert [i.id for i in result.items] == ["v1_l_001", "v1_r_001", "v2_l_011"]
    assert kinds(result) == [pd4t.BAD_ID, pd4t.BAD_ID, pd4t.SCORE_OUT_OF_RANGE,
                             pd4t.SCORE_OUT_OF_RANGE, pd4t.NON_INTEGER, pd4t.NON_INTEGER,
                             pd4t.BAD_FRAME_COUNT, pd4t.BAD_FIELD_COUNT, pd4t.BAD_FIELD_COUNT,
                             pd4t.DUPLICATE_ID]
    lines = [p.line for p in result.problems]
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    train_csv = str(tmp_path / "Annotations/Finger tapping/train.csv")
    for found in result.problems:
        assert found.split == "train"
        assert found.message.startswith(f"{train_csv}:{found.line}: ")
    assert result.problems[2].id == "v1_l_004" and "outside [0, 4]" in result.problems[2].message
    assert "already on line 1" in result.problems[-1].message


def test_score_range_is_configurable(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,5"], ["v1_l_002,100,0"])
    assert kinds(load_annotations(tmp_path, config)) == [pd4t.SCORE_OUT_OF_RANGE]
    wider = dataclasses.replace(config, score_max=5)
    assert load_annotations(tmp_path, wider).problems == []


def test_an_empty_file_is_a_problem_not_a_crash(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1"], [])
    (tmp_path / "Annotations/Finger tapping/test.csv").write_text("\n\n")
    result = load_annotations(tmp_path, config)
    assert [i.id for i in result.items] == ["v1_l_001"]
    assert kinds(result) == [pd4t.EMPTY_FILE]
    assert result.problems[0].split == "test" and result.problems[0].line is None


def test_an_id_in_two_splits_is_kept_in_the_first(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_001,100,1", "v1_l_002,90,2"])
    result = load_annotations(tmp_path, config)
    assert [(i.id, i.split) for i in result.items] == [("v1_l_001", "train"), ("v1_l_002", "test")]
    (dup,) = result.problems
    assert dup.kind == pd4t.DUPLICATE_ID and dup.split == "test" and dup.id == "v1_l_001"
    assert "also in split 'train'" in dup.message


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path, config):
    official(tmp_path, [], ["v1_l_002,100,0"])
    (tmp_path / "Annotations/Finger tapping/train.csv").write_bytes(
        "\ufeffv1_l_001,100,1\n".encode())
    assert [i.id for i in load_annotations(tmp_path, config).items] == ["v1_l_001", "v1_l_002"]


# --------------------------------------------------------------------------- subject overlap


def test_subject_overlap_warns_loudly_and_continues(tmp_path, config, caplog):
    official(tmp_path, ["v1_l_001,100,1", "v1_l_002,100,1"], ["v2_r_001,100,2", "v2_l_003,100,0"])
    with caplog.at_level(logging.WARNING, logger="hawkeye.prepare.pd4t"):
        result = load_annotations(tmp_path, config)
    assert result.overlap == {"001": ("train", "test")}
    assert len(result.items) == 4
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "SUBJECT OVERLAP" in warning and "001 (train/test)" in warning


def test_subject_overlap_raises_when_configured(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1", "v1_l_002,100,1"], ["v2_r_001,100,2", "v2_l_002,100,0"])
    strict = dataclasses.replace(config, on_subject_overlap="error")
    with pytest.raises(SubjectOverlapError, match=r"001 \(train/test\), 002 \(train/test\)"):
        load_annotations(tmp_path, strict)


def test_disjoint_splits_have_no_overlap(tmp_path, config, caplog):
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_002,100,1"])
    strict = dataclasses.replace(config, on_subject_overlap="error")
    with caplog.at_level(logging.WARNING, logger="hawkeye.prepare.pd4t"):
        assert load_annotations(tmp_path, strict).overlap == {}
    assert not caplog.records


# --------------------------------------------------------------------------- missing files


def test_missing_annotation_file_names_the_path(tmp_path, config):
    write(tmp_path / "Annotations/Finger tapping/train.csv", ["v1_l_001,100,1"])
    expected = str(tmp_path / "Annotations/Finger tapping/test.csv")
    with pytest.raises(FileNotFoundError, match=expected):
        load_annotations(tmp_path, config)


def test_missing_root_and_layout_folder_are_named(tmp_path, config):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_annotations(tmp_path / "nowhere", config)
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_002,100,1"])
    split_layout = dataclasses.replace(config, split_layout="annotations_split")
    with pytest.raises(FileNotFoundError, match="Annotations_split"):
        load_annotations(tmp_path, split_layout)


def test_csv_and_txt_of_the_same_split_is_ambiguous(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_002,100,1"])
    write(tmp_path / "Annotations/Finger tapping/test.txt", ["v1_l_002,100,1"])
    with pytest.raises(FileNotFoundError, match="remove one"):
        load_annotations(tmp_path, config)


# --------------------------------------------------------------------------- frame counts


def test_frame_count_problem_respects_the_tolerance(tmp_path, config):
    official(tmp_path, ["v1_l_001,100,1"], ["v1_l_002,100,1"])
    item = load_annotations(tmp_path, config).items[0]
    assert frame_count_problem(item, 102, tolerance=2) is None
    found = frame_count_problem(item, 90, tolerance=2)
    assert found.kind == pd4t.FRAME_COUNT_MISMATCH and found.id == "v1_l_001"
    assert "90 frames read" in found.message and "says 100" in found.message
    assert found.path == item.video_path
