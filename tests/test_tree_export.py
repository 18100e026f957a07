"""Tree models (family tabular) as ONNX (hawkeye.tree_export) and scored by hawkeye.predict.

Data: ``tree_data`` rows have six features; the score (0..3) follows feature 0, and a missing
feature 1 raises it (so the trees learn a side for NaN); 15% of the cells are NaN. The table of
the end-to-end tests (``table_rows``): 30 subjects with two videos each, a score 0..3 that
``speed`` and ``variability`` follow, a ``noise`` column, a few empty ``speed`` cells.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openpyxl
import pytest
import torch

from hawkeye.config import compose
from hawkeye.export import ExportError, export_fold, export_run, read_metadata
from hawkeye.models.forest import RandomForest
from hawkeye.models.gbm import GradientBoostedTrees
from hawkeye.models.heads import build_head
from hawkeye.predict import PredictError, run_predict
from hawkeye.tables import TableSpec, import_table
from hawkeye.train import train
from hawkeye.tree_export import parity_max_abs, parity_rows, tree_model

HEADS = {"regression": {"_target_": "hawkeye.models.heads.RegressionHead", "criterion": "mse",
                        "huber_delta": 1.0},
         "classification": {"_target_": "hawkeye.models.heads.ClassificationHead",
                            "label_smoothing": 0.0},
         "ordinal": {"_target_": "hawkeye.models.heads.OrdinalHead", "output_layer": "linear"}}
GBM = dict(learning_rate=0.1, max_iter=40, max_leaf_nodes=15, min_samples_leaf=5,
           l2_regularization=1.0, early_stopping=False, random_state=0)
FOREST = dict(n_estimators=40, min_samples_leaf=2, max_features=0.5, max_depth=None, n_jobs=1,
              random_state=0)
N_LEVELS = 5  # level 4 never occurs: classification places it, its ordinal threshold is constant


def tree_data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    score = np.nan_to_num(x[:, 0]) + 1.5 * np.isnan(x[:, 1]) + 1.5 + rng.normal(0, 0.4, n)
    return x, np.clip(np.round(score), 0, 3).astype(np.int64)


def session_of(model, head) -> ort.InferenceSession:
    return ort.InferenceSession(tree_model(model, head).SerializeToString(),
                                providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("estimator, params, head_name", [
    (GradientBoostedTrees, GBM, "regression"), (GradientBoostedTrees, GBM, "classification"),
    (GradientBoostedTrees, GBM, "ordinal"), (RandomForest, FOREST, "regression"),
    (RandomForest, FOREST, "classification"), (RandomForest, FOREST, "ordinal")])
def test_the_onnx_graph_scores_as_the_fitted_trees(estimator, params, head_name) -> None:
    x, y = tree_data()
    head = build_head(HEADS[head_name], N_LEVELS)
    model = estimator(6, head.out_dim(N_LEVELS), objective=head_name, **params).fit(x, y)
    session = session_of(model, head)
    rows = parity_rows(x, seed=1, n_random=2000)
    assert np.isnan(rows).any()
    assert parity_max_abs(session, model, head, rows) < 1e-5
    raw, level = session.run(["raw", "level"], {"x": rows})
    want = model.predict(rows)
    # raw: float32 sums and the logit of float32 probabilities (module docstring of tree_export)
    assert np.abs(raw - want).max() < 1e-2
    agree = level == head.predict(torch.from_numpy(want)).numpy()
    assert agree.mean() > 0.999  # a flip only where a float32 sum sits on a decision boundary


@pytest.mark.parametrize("estimator, params", [(GradientBoostedTrees, GBM),
                                               (RandomForest, FOREST)])
def test_missing_features_go_where_scikit_learn_sends_them(estimator, params) -> None:
    x, y = tree_data()
    head = build_head(HEADS["regression"], N_LEVELS)
    model = estimator(6, 1, objective="regression", **params).fit(x, y)
    rows = np.tile(x[:50], (2, 1))
    rows[50:, 1] = np.nan  # a missing feature 1 raises the score in the data
    got = session_of(model, head).run(["raw"], {"x": rows})[0][:, 0]
    np.testing.assert_allclose(got, model.predict(rows)[:, 0], atol=1e-5)
    assert got[50:].mean() > got[:50].mean()  # the learned side, not a fixed one


# ---------------------------------------------------------------------------------------------
# trained folds, export, predict on a feature table


def table_rows(n_subjects: int = 30, seed: int = 0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for s in range(n_subjects):
        for _hand in ("l", "r"):
            score = int(np.clip(s % 4 + rng.choice([-1, 0, 1], p=[0.1, 0.8, 0.1]), 0, 3))
            rows.append([f"v{len(rows):03d}", f"s{s:02d}", score,
                         round(4.0 - 0.7 * score + rng.normal(0, 0.2), 4),
                         round(0.1 + 0.05 * score + rng.normal(0, 0.01), 4),
                         round(rng.normal(), 4)])
    rows[3][3] = rows[10][3] = ""
    return rows


def write_table(path: Path, rows: list[list[object]],
                header: tuple[str, ...] = ("id", "subject", "score", "speed", "variability",
                                           "noise")) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, Path]:
    """The table as CSV and imported as a summary-only store (missing cells kept)."""
    folder = tmp_path_factory.mktemp("tree_table")
    csv_path = write_table(folder / "features.csv", table_rows())
    import_table(csv_path, folder / "features.h5",
                 TableSpec(score_column="score", subject_column="subject", id_column="id",
                           missing="nan"))
    return csv_path, folder / "features.h5"


RUNS = {"gbm-regression": ("model=gbm", "head=regression", "model.max_iter=30"),
        "gbm-classification": ("model=gbm", "head=classification", "model.max_iter=30"),
        "gbm-ordinal": ("model=gbm", "head=ordinal", "model.max_iter=30"),
        "forest-ordinal": ("model=forest", "head=ordinal", "model.n_estimators=30")}


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory) -> dict[str, Path]:
    """Every RUNS entry trained on both folds of the table store, exported when fitted."""
    runs = {}
    for name, overrides in RUNS.items():
        run_dir = tmp_path_factory.mktemp(name)
        for fold in (0, 1):
            metrics = train(compose([f"paths.store={table[1]}", f"run_dir={run_dir}",
                                     "cv.n_folds=2", "task.test_split=null",
                                     "train.num_threads=1", f"fold={fold}", *overrides]))
            assert metrics["status"] == "ok" and "onnx_error" not in metrics
            assert metrics["onnx_parity_max_abs"] <= 1e-4 and metrics["onnx_mb"] > 0
        runs[name] = run_dir
    return runs


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", list(RUNS))
def test_predict_on_the_table_gives_each_folds_held_out_predictions(name, table, trained,
                                                                    tmp_path) -> None:
    model = RUNS[name][0].split("=")[1]
    run = run_predict(table[0], trained[name], model, None, tmp_path)
    scores = {row["id"]: row for row in read_csv(run.csv)}
    assert len(scores) == 60 and all(row["status"] == "ok" for row in scores.values())
    assert scores["v003"]["reason"] == "missing cells scored as NaN: speed"
    for fold in (0, 1):
        fold_dir = trained[name] / model / f"fold_{fold}"
        meta = read_metadata(fold_dir / "model.onnx")
        assert meta["input_names"] == ["speed", "variability", "noise"]
        assert meta["family"] == "tabular" and meta["head"] == RUNS[name][1].split("=")[1]
        held_out = [r for r in read_csv(fold_dir / "predictions.csv") if r["split"] == "cv"]
        assert held_out
        for row in held_out:
            scored = scores[row["id"]]
            assert float(scored[f"fold_{fold}_expected"]) == pytest.approx(float(row["raw"]),
                                                                           abs=1e-4)
            assert int(scored[f"fold_{fold}_level"]) == int(row["pred"])
    # the summary-only store scores the same rows the same way
    store_run = run_predict(table[1], trained[name], model, None, tmp_path / "store")
    assert ({r["id"]: r["expected_mean"] for r in read_csv(store_run.csv)}
            == {i: r["expected_mean"] for i, r in scores.items()})


def test_a_table_without_a_feature_column_is_refused_naming_file_and_column(trained,
                                                                             tmp_path) -> None:
    rows = [[r[0], r[3], r[5]] for r in table_rows()]
    path = write_table(tmp_path / "short.csv", rows, ("id", "speed", "noise"))
    with pytest.raises(PredictError, match=rf"{path}: no column \['variability'\]"):
        run_predict(path, trained["gbm-regression"], "gbm", None, tmp_path / "out")
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_a_text_cell_fails_its_row_and_extra_columns_are_ignored(trained, tmp_path) -> None:
    rows = [[*r, "extra"] for r in table_rows()[:4]]
    rows[1][4] = "fast"
    path = write_table(tmp_path / "t.csv", rows, ("id", "subject", "score", "speed",
                                                  "variability", "noise", "comment"))
    run = run_predict(path, trained["gbm-regression"], "gbm", None, tmp_path / "out")
    status = {row["id"]: (row["status"], row["reason"]) for row in read_csv(run.csv)}
    assert status["v001"] == ("failed", f"{path}:3: column 'variability': not a number ('fast')")
    assert status["v000"][0] == status["v002"][0] == "ok"


def test_a_video_given_to_a_tree_model_is_refused(trained, tmp_path) -> None:
    video = tmp_path / "a_l.mp4"
    video.write_bytes(b"")
    with pytest.raises(PredictError, match="tree model on summary features: it scores feature"):
        run_predict(video, trained["gbm-regression"], "gbm", None, tmp_path / "out")


def test_the_export_command_checks_tree_folds_and_names_a_missing_file(trained, tmp_path) -> None:
    cfg = compose([f"run_dir={trained['gbm-ordinal']}", "export.force=true"])
    results = export_run(trained["gbm-ordinal"], cfg)
    assert [r["status"] for r in results] == ["ok", "ok"]
    fold = tmp_path / "forest" / "fold_1"  # a copy: the other tests keep theirs
    shutil.copytree(trained["forest-ordinal"] / "forest" / "fold_1", fold)
    (fold / "model.onnx").unlink()
    with pytest.raises(ExportError, match=r"model.onnx: missing \(deleted\); a forest fold "
                                          r"\(scikit-learn trees\) is exported when it is fitted"):
        export_fold(fold, cfg)


def test_an_xlsx_table_scores_like_the_csv_with_ids_from_a_named_column(table, trained,
                                                                        tmp_path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["video", "noise", "variability", "speed"])  # any column order
    rows = table_rows()[:5]
    for r in rows:
        sheet.append([f"clip-{r[0]}", r[5], r[4], None if r[3] == "" else r[3]])
    book.save(tmp_path / "t.xlsx")
    run = run_predict(tmp_path / "t.xlsx", trained["gbm-ordinal"], "gbm", None,
                      tmp_path / "x", id_column="video")
    from_csv = {r["id"]: r for r in read_csv(run_predict(table[0], trained["gbm-ordinal"], "gbm",
                                                         None, tmp_path / "c").csv)}
    for row in read_csv(run.csv):
        same = from_csv[row["id"].removeprefix("clip-")]
        assert (row["score"], row["expected_mean"]) == (same["score"], same["expected_mean"])
    assert len(read_csv(run.csv)) == 5
