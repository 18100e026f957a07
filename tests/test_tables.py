"""Feature tables -> summary-only stores (hawkeye.tables), and tabular training on them.

The tables are written here. ``feature_rows`` makes a PARK-like table: per participant two
recordings (left and right hand) whose file name carries the participant id the way PARK's do
(``<date>-<time>-<ms>Z<participant>-task2-<hand>.webm``, or ``NIH<id>-task2-...`` for NIH ones),
a consensus ``Rating`` 0-4 (the participant's typical severity, +-1 now and then), two features
that follow the rating (tapping speed falls, its variability rises with severity), a noise
feature, a rater's own score (``Rating1``, never a feature) and a free-text comment.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import h5py
import numpy as np
import openpyxl
import pytest

from hawkeye.collect import collect
from hawkeye.config import compose
from hawkeye.store import VideoEntry, describe, load_store, write_store
from hawkeye.store_cli import main
from hawkeye.tables import TableError, TableSpec, import_table, park_participant
from hawkeye.train import train

HEADER = ["", "speed", "variability", "noise", "hand", "filename", "Rating1", "Comment",
          "Rating"]
PARK = TableSpec(score_column="Rating", subject_column="filename", subject_rule="park",
                 id_column="filename", hand_column="hand", exclude=("Rating*",))


def park_name(participant: int, hand: str) -> str:
    if participant % 5 == 0:
        return f"NIHP{participant:04d}-task2-2019-12-02T14-13-50-404Z--{hand}.webm"
    return f"2019-05-03T17-09-{participant % 60:02d}-123Z{participant}-task2-{hand}.webm"


def feature_rows(n_participants: int = 40, seed: int = 0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for p in range(n_participants):
        for hand in ("left", "right"):
            rating = int(np.clip(p % 5 + rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1]), 0, 4))
            rows.append([len(rows), round(4.0 - 0.7 * rating + rng.normal(0, 0.2), 4),
                         round(0.1 + 0.05 * rating + rng.normal(0, 0.01), 4),
                         round(rng.normal(), 4), hand.capitalize(), park_name(p, hand),
                         rating, "ok" if p % 3 else "poor light", rating])
    return rows


def write_csv(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_park_like_csv_becomes_a_summary_only_store(tmp_path) -> None:
    table = write_csv(tmp_path / "park.csv", feature_rows())
    report = import_table(table, tmp_path / "park.h5", PARK, task="park")
    data = load_store(tmp_path / "park.h5")
    # every numeric column but the labels, the raters' columns and the unnamed row index
    assert data.summary_names == ["speed", "variability", "noise"] == report.features
    assert report.left_out["unnamed_1"] == "unnamed" and report.left_out["Rating1"] == "excluded"
    assert report.left_out["Comment"].startswith("not numeric: line 2 holds 'poor light'")
    assert data.summary_only and data.n_features == 0 and not data.lengths.any()
    assert len(data) == 80 and len(set(data.subjects.tolist())) == 40
    assert set(data.hands.tolist()) == {"l", "r"} and set(data.splits.tolist()) == {"train"}
    first = data.ids.tolist().index(park_name(1, "left"))
    assert data.subjects[first] == "123Z1" and data.scores[first] == feature_rows()[2][-1]
    assert data.subjects[data.ids.tolist().index(park_name(5, "right"))] == "NIHP0005"
    assert "summary only" in describe(data) and data.task == "park"
    rows = list(csv.DictReader(open(tmp_path / "park_import.csv")))
    assert len(rows) == 80 and {r["status"] for r in rows} == {"imported"}
    # importing the same table again changes nothing (the row hash is the resume key)
    again = import_table(table, tmp_path / "park.h5", PARK, task="park")
    assert not again.write.written and len(again.write.skipped) == 80


def test_park_subject_rule_follows_the_authors_definition() -> None:
    assert park_participant("2019-05-03T17-09-33-963Z100-task2-right.webm") == "963Z100"
    assert park_participant("NIHXU164EVFHK-task2-2019-12-02T14-13-50-404Z--right.webm") == \
        "NIHXU164EVFHK"
    with pytest.raises(ValueError, match="three"):
        park_participant("short-name")


def test_a_regex_rule_derives_the_subject_and_a_non_matching_cell_is_a_bad_label(tmp_path):
    rows = [[f"sub{s:02d}_visit{v}", 1.0 + s, s % 3] for s in range(6) for v in (1, 2)]
    rows.append(["nobody_visit1", 2.0, 1])
    table = write_csv(tmp_path / "t.csv", rows, ["video", "x", "score"])
    spec = TableSpec(score_column="score", subject_column="video", subject_rule="regex",
                     subject_regex=r"^(sub\d+)_", id_column="video", missing="skip")
    report = import_table(table, tmp_path / "t.h5", spec)
    assert sorted(set(load_store(tmp_path / "t.h5").subjects.tolist())) == [
        f"sub{s:02d}" for s in range(6)]
    (line, video, why), = report.skipped
    assert line == 14 and video == "nobody_visit1" and "does not match" in why
    with pytest.raises(TableError, match=r"t\.csv:14: column 'video'"):
        import_table(table, tmp_path / "u.h5", TableSpec(**{**spec.__dict__, "missing": "error"}))
    with pytest.raises(TableError, match="subject_regex goes with"):
        TableSpec(score_column="score", subject_column="video", subject_regex="x")


@pytest.mark.parametrize("bad_cell", ["", "NA", "fast"])
def test_each_missing_policy_on_a_bad_feature_cell(tmp_path, bad_cell) -> None:
    rows = feature_rows(10)
    rows[3][1] = bad_cell  # line 5 (header is line 1): speed
    table = write_csv(tmp_path / "bad.csv", rows)
    spec = TableSpec(**{**PARK.__dict__, "features": ("speed", "variability")})
    with pytest.raises(TableError, match=r"bad\.csv:5: column 'speed'") as error:
        import_table(table, tmp_path / "error.h5", spec)
    assert "--missing skip" in str(error.value) and not (tmp_path / "error.h5").exists()

    skipped = import_table(table, tmp_path / "skip.h5", TableSpec(**{**spec.__dict__,
                                                                     "missing": "skip"}))
    (line, video, why), = skipped.skipped
    assert (line, video) == (5, rows[3][5]) and "column 'speed'" in why
    assert len(load_store(tmp_path / "skip.h5")) == 19
    report_rows = list(csv.DictReader(open(tmp_path / "skip_import.csv")))
    assert [r for r in report_rows if r["status"] == "skipped"][0]["line"] == "5"

    kept = import_table(table, tmp_path / "nan.h5", TableSpec(**{**spec.__dict__,
                                                                 "missing": "nan"}))
    assert kept.nan_cells == {"speed": [5]} and not kept.skipped
    data = load_store(tmp_path / "nan.h5")
    assert data.summary_may_be_missing and len(data) == 20
    assert math.isnan(data.summary[data.ids.tolist().index(rows[3][5]), 0])
    assert np.isnan(data.summary).sum() == 1 and "missing summary values (NaN): 1" in \
        describe(data)


def test_a_bad_score_follows_the_policy_but_is_never_kept(tmp_path) -> None:
    rows = feature_rows(6)
    rows[0][-1] = "2.5"
    rows[1][-1] = ""
    table = write_csv(tmp_path / "s.csv", rows)
    with pytest.raises(TableError, match=r"s\.csv:2: column 'Rating': score '2\.5' is not an "):
        import_table(table, tmp_path / "a.h5", PARK)
    report = import_table(table, tmp_path / "b.h5", TableSpec(**{**PARK.__dict__,
                                                               "missing": "nan"}))
    assert [line for line, _, _ in report.skipped] == [2, 3]
    assert "score empty" in report.skipped[1][2]


def test_an_xlsx_table_imports_like_the_csv(tmp_path) -> None:
    rows = feature_rows(12)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "features"
    sheet.append([None, *HEADER[1:]])  # an unnamed first column, as pandas exports the index
    for row in rows:
        sheet.append(row)
    sheet.append([None] * len(HEADER))  # a formatted but empty row at the end
    book.save(tmp_path / "park.xlsx")
    from_xlsx = import_table(tmp_path / "park.xlsx", tmp_path / "x.h5",
                             TableSpec(**{**PARK.__dict__, "sheet": "features"}))
    import_table(write_csv(tmp_path / "park.csv", rows), tmp_path / "c.h5", PARK)
    x, c = load_store(tmp_path / "x.h5"), load_store(tmp_path / "c.h5")
    assert from_xlsx.blank_rows == 1 and x.summary_names == c.summary_names
    assert x.ids.tolist() == c.ids.tolist() and x.subjects.tolist() == c.subjects.tolist()
    np.testing.assert_allclose(x.summary, c.summary)
    with pytest.raises(TableError, match="no worksheet 'other'"):
        import_table(tmp_path / "park.xlsx", tmp_path / "y.h5",
                     TableSpec(**{**PARK.__dict__, "sheet": "other"}))


def test_structural_problems_name_the_file(tmp_path) -> None:
    table = write_csv(tmp_path / "t.csv", feature_rows(4))
    with pytest.raises(TableError, match=r"t\.csv: no column 'score'"):
        import_table(table, tmp_path / "a.h5", TableSpec(**{**PARK.__dict__,
                                                          "score_column": "score"}))
    with pytest.raises(TableError, match=r"exclude entry 'Ratng\*' matches no column"):
        import_table(table, tmp_path / "a.h5", TableSpec(**{**PARK.__dict__,
                                                          "exclude": ("Ratng*",)}))
    with pytest.raises(TableError, match="label column"):
        import_table(table, tmp_path / "a.h5", TableSpec(**{**PARK.__dict__,
                                                          "features": ("speed", "Rating")}))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match=r"empty\.csv: empty table"):
        import_table(tmp_path / "empty.csv", tmp_path / "a.h5", PARK)
    write_csv(tmp_path / "header.csv", [])
    with pytest.raises(TableError, match=r"header\.csv: the table has a header but no data"):
        import_table(tmp_path / "header.csv", tmp_path / "a.h5", PARK)
    (tmp_path / "ragged.csv").write_text("id,x,score\na,1,0\nb,2\n")
    with pytest.raises(TableError, match=r"ragged\.csv:3: row has 2 cells"):
        import_table(tmp_path / "ragged.csv", tmp_path / "a.h5",
                     TableSpec(score_column="score", subject_column="id", id_column="id"))
    (tmp_path / "dup.csv").write_text("id,x,score\na,1,0\na,2,1\n")
    with pytest.raises(TableError, match=r"dup\.csv:3: id 'a' already used on line 2"):
        import_table(tmp_path / "dup.csv", tmp_path / "a.h5",
                     TableSpec(score_column="score", subject_column="id", id_column="id"))
    every = feature_rows(3)
    for row in every:
        row[1] = ""
    empty_speed = write_csv(tmp_path / "none.csv", every)
    # picked automatically, a column without values is no feature; named, it empties every row
    assert import_table(empty_speed, tmp_path / "b.h5", PARK).left_out["speed"] == "no values"
    with pytest.raises(TableError, match="no row could be imported"):
        import_table(empty_speed, tmp_path / "a.h5",
                     TableSpec(**{**PARK.__dict__, "missing": "skip", "features": ("speed",)}))
    assert not (tmp_path / "a.h5").exists()


def test_the_store_command_line_imports_and_reports_errors_without_traceback(tmp_path,
                                                                             capsys) -> None:
    table = write_csv(tmp_path / "park.csv", feature_rows(5))
    args = ["import-table", str(table), str(tmp_path / "cli.h5"), "--id", "filename",
            "--subject", "filename", "--subject-rule", "park", "--score", "Rating", "--hand",
            "hand", "--exclude", "Rating*", "noise"]
    assert main(args) == 0
    assert "10 rows imported" in capsys.readouterr().out
    assert load_store(tmp_path / "cli.h5").summary_names == ["speed", "variability"]
    assert main([*args[:3], "--subject", "filename", "--score", "score"]) == 2
    assert "no column 'score'" in capsys.readouterr().err


def test_summary_only_stores_are_validated(tmp_path) -> None:
    def entry(i: int, frames: int, value: float = 1.0) -> VideoEntry:
        return VideoEntry(id=f"v{i}", subject=f"s{i}", score=i % 2, split="train",
                          series=np.zeros((frames, 0), np.float32),
                          summary=np.array([value], np.float32))

    with pytest.raises(ValueError, match="only a summary-only store"):
        write_store(tmp_path / "mixed.h5", [entry(0, 0), entry(1, 3)], [], ["x"])
    with pytest.raises(ValueError, match="summary_missing"):
        write_store(tmp_path / "nan.h5", [entry(0, 0, math.nan)], [], ["x"])
    with pytest.raises(ValueError, match="inf is not"):
        write_store(tmp_path / "inf.h5", [entry(0, 0, math.inf)], [], ["x"],
                    {"summary_missing": "nan"})
    write_store(tmp_path / "ok.h5", [entry(0, 0), entry(1, 0, math.nan)], [], ["x"],
                {"summary_missing": "nan"})
    assert load_store(tmp_path / "ok.h5").summary_only
    with h5py.File(tmp_path / "ok.h5", "r+") as handle:  # a reader must not accept NaN unasked
        handle.attrs["attrs"] = "{}"
    with pytest.raises(ValueError, match="'summary' has NaN"):
        load_store(tmp_path / "ok.h5")


# ---------------------------------------------------------------------------------------------
# training on an imported table


@pytest.fixture(scope="module")
def table_store(tmp_path_factory) -> Path:
    """The PARK-like table with two speed cells missing, imported with missing cells kept."""
    folder = tmp_path_factory.mktemp("table")
    rows = feature_rows(40)
    rows[4][1] = rows[11][1] = ""
    import_table(write_csv(folder / "park.csv", rows), folder / "park.h5",
                 TableSpec(**{**PARK.__dict__, "missing": "nan"}))
    return folder / "park.h5"


def fold_config(store: Path, run_dir: Path, *extra: str):
    return compose([f"paths.store={store}", f"run_dir={run_dir}", "cv.n_folds=3",
                    "task.test_split=null", "train.num_threads=1", "export.onnx=false",
                    "model.max_iter=30", *extra])


def test_gbm_trains_on_an_imported_table_with_missing_cells(table_store, tmp_path) -> None:
    metrics = train(fold_config(table_store, tmp_path, "model=gbm"))
    assert metrics["family"] == "tabular" and metrics["n_cv"] > 0
    # the trees never early-stop, so they are fitted on the validation slice too
    assert metrics["n_fit"] == metrics["n_train"] + metrics["n_val"]
    assert metrics["cv"]["mae"] < 0.6  # speed and variability carry the rating
    ordinal = train(fold_config(table_store, tmp_path / "ordinal", "model=gbm", "head=ordinal"))
    assert ordinal["head"] == "ordinal" and ordinal["cv"]["mae"] < 0.6


def test_a_tuned_gbm_and_a_forest_train_through_the_same_path(table_store, tmp_path) -> None:
    tuned = train(fold_config(table_store, tmp_path, "model=gbm_tuned", "model.tune_folds=2"))
    assert set(tuned["tuned_params"]) == {"learning_rate", "max_features"}
    assert len(tuned["tuning"]) == 4 and all(np.isfinite(t["inner_score"])
                                             for t in tuned["tuning"])
    forest = train(compose([f"paths.store={table_store}", f"run_dir={tmp_path}", "cv.n_folds=3",
                            "task.test_split=null", "export.onnx=false", "model=forest",
                            "model.n_estimators=50"]))
    assert forest["n_params"] == 50 and forest["cv"]["mae"] < 0.6


def test_the_collector_summarises_tabular_folds_of_an_imported_table(table_store,
                                                                   tmp_path) -> None:
    for fold in range(3):
        train(fold_config(table_store, tmp_path, "model=gbm", f"fold={fold}"))
    assert collect(tmp_path) == 0  # every fold complete
    (row,) = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert row["model"] == "gbm" and row["complete"] and row["n_cv"] == 80


def test_a_sequence_model_refuses_a_summary_only_store(table_store, tmp_path) -> None:
    cfg = compose([f"paths.store={table_store}", f"run_dir={tmp_path}", "model=tcn",
                   "task.test_split=null"])
    with pytest.raises(ValueError, match=rf"{table_store} is a summary-only store.*model=gbm"):
        train(cfg)
