"""The file prediction runs (hawkeye/onnx_optimize.py): an int8 model that keeps every validation
row's level and score within the tolerance is written, recorded in model.onnx's metadata and run
by predict; one outside the tolerance is refused and the float model stays; the saved optimised
graph loads in a plain CPU session and matches model.onnx; a recorded file that went missing
stops predict naming it; exporting again without the options leaves model.onnx alone.

The run: fold 0 of a tiny attention LSTM (one LSTM layer, so int8 reaches its
``DynamicQuantizeLSTM``) and of a tiny TCN (convolutions, for int8_static), trained for two
epochs on simulated tapping traces (conftest's ``tapping_store``). Exports take seconds each
(dynamo exporter): marked ``slow``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import tapping_store, tiny_model
from onnx import TensorProto, helper

from hawkeye.config import compose
from hawkeye.ensemble import load_ensemble
from hawkeye.export import export_fold, read_metadata
from hawkeye.onnx_files import ONNX_NAME
from hawkeye.onnx_optimize import (
    OPTIMIZED_NAME,
    QUANTIZED_NAME,
    cpu_session,
    fold_inputs,
    fold_validation_inputs,
    score_parity,
)
from hawkeye.scoring import PredictError, score_ensemble
from hawkeye.train import train

MODEL = "attention_lstm"
TOL = 0.05  # the brief's score-level tolerance (conf/export/default.yaml quantize_tol)


def overrides(store: Path, run_dir: Path, *extra: str, model: str = MODEL) -> list[str]:
    return [f"paths.store={store}", f"run_dir={run_dir}", *tiny_model(model), "cv.n_folds=3",
            "train.epochs=2", "train.batch_size=16", "train.num_threads=1",
            "export.onnx=false", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Fold 0 of the tiny attention LSTM, trained, not exported."""
    root = tmp_path_factory.mktemp("optimize_run")
    store = tapping_store(root / "store.h5", n_subjects=36, n_frames=90)
    train(compose(overrides(store, root / "run")))
    train(compose(overrides(store, root / "run", model="tcn")))
    return {"store": store, "run_dir": root / "run"}


def exported(trained: dict, tmp_path: Path, *extra: str, model: str = MODEL
             ) -> tuple[Path, Path]:
    """A copy of the trained run, fold 0 of ``model`` exported with ``extra``: (run dir, fold
    dir)."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained["run_dir"], run_dir)
    fold = run_dir / model / "fold_0"
    export_fold(fold, compose(overrides(trained["store"], trained["run_dir"], *extra,
                                        model=model)))
    return run_dir, fold


def op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@pytest.mark.slow
def test_an_int8_model_within_tolerance_is_recorded_and_predict_runs_it(trained,
                                                                          tmp_path) -> None:
    run_dir, fold = exported(trained, tmp_path, "export.quantize=int8",
                             "export.graph_optimization=basic")
    runtime = read_metadata(fold / ONNX_NAME)["runtime"]
    assert runtime["file"] == QUANTIZED_NAME and runtime["quantize"] == "int8"
    parity = runtime["quantize_parity"]
    assert parity["rows"] > 0 and parity["level_changes"] == 0
    assert 0 < parity["max_delta"] <= TOL  # quantised (not a float copy), within the tolerance
    assert "DynamicQuantizeLSTM" in op_types(fold / QUANTIZED_NAME)
    assert read_metadata(fold / QUANTIZED_NAME)["input_names"] == ["aperture", "velocity"]

    ensemble = load_ensemble(run_dir, MODEL, threads=1)
    (scoring,) = ensemble.folds
    assert scoring.runs == fold / QUANTIZED_NAME and scoring.path == fold / ONNX_NAME
    float_model = cpu_session(fold / ONNX_NAME, 1)
    for x, mask in fold_validation_inputs(fold):
        for row in range(len(x)):
            got = score_ensemble(ensemble, x[row:row + 1], mask[row:row + 1])
            want = float_model.run(["expected", "level"], {"x": x[row:row + 1],
                                                          "mask": mask[row:row + 1]})
            assert got["fold_values"][0] == pytest.approx(float(want[0][0]), abs=TOL)
            assert got["fold_levels"][0] == int(want[1][0])

    # exported again without options: model.onnx runs, the int8 file no longer lies beside it
    export_fold(fold, compose(overrides(trained["store"], trained["run_dir"])))
    assert read_metadata(fold / ONNX_NAME)["runtime"] == {
        "file": ONNX_NAME, "graph_optimization": "none", "quantize": "none",
        "optimized_at_load": True}
    assert sorted(p.name for p in fold.glob("model*.onnx")) == [ONNX_NAME]
    (scoring,) = load_ensemble(run_dir, MODEL, threads=1).folds
    assert scoring.runs == fold / ONNX_NAME


@pytest.mark.slow
def test_a_re_export_checks_its_int8_file_before_it_replaces_the_served_one(
        trained, tmp_path, monkeypatch) -> None:
    run_dir, fold = exported(trained, tmp_path, "export.quantize=int8")
    served = (fold / QUANTIZED_NAME).read_bytes()
    import hawkeye.onnx_optimize as optimize

    seen_during_checks = []
    real_parity = optimize.score_parity

    def parity_watching_the_served_file(*args, **kwargs):
        seen_during_checks.append((fold / QUANTIZED_NAME).read_bytes())
        return real_parity(*args, **kwargs)

    monkeypatch.setattr(optimize, "score_parity", parity_watching_the_served_file)
    export_fold(fold, compose(overrides(trained["store"], trained["run_dir"],
                                        "export.quantize=int8", "export.force=true")))
    assert seen_during_checks and all(seen == served for seen in seen_during_checks)
    assert read_metadata(fold / ONNX_NAME)["runtime"]["file"] == QUANTIZED_NAME
    assert not list(fold.glob(".*.tmp"))  # the checked file was renamed, nothing left beside


@pytest.mark.slow
def test_an_int8_model_outside_the_tolerance_is_refused_and_the_float_model_stays(
        trained, tmp_path) -> None:
    run_dir, fold = exported(trained, tmp_path, "export.quantize=int8",
                             "export.quantize_tol=0", "export.graph_optimization=extended")
    assert not (fold / QUANTIZED_NAME).exists()
    runtime = read_metadata(fold / ONNX_NAME)["runtime"]
    assert runtime["file"] == OPTIMIZED_NAME  # the optimised float graph, still checked
    assert "int8 model refused" in runtime["quantize_refused"]
    assert "export.quantize_tol=0" in runtime["quantize_refused"]
    assert runtime["quantize_parity"]["max_delta"] > 0

    # the saved extended graph (fused CPU-provider operators, no layout ops) loads in a plain
    # session and agrees with model.onnx on the fold's validation data
    plain = ort.InferenceSession(str(fold / OPTIMIZED_NAME), providers=["CPUExecutionProvider"])
    parity = score_parity(cpu_session(fold / ONNX_NAME, 1), plain, fold_validation_inputs(fold))
    assert parity.level_changes == 0 and parity.max_abs <= 1e-4
    (scoring,) = load_ensemble(run_dir, MODEL, threads=1).folds
    assert scoring.runs == fold / OPTIMIZED_NAME

    (fold / OPTIMIZED_NAME).unlink()
    with pytest.raises(PredictError, match=f"{OPTIMIZED_NAME}: missing.*re-export"):
        load_ensemble(run_dir, MODEL, threads=1)


@pytest.mark.slow
def test_static_int8_quantises_convolutions_calibrated_on_training_rows(trained,
                                                                         tmp_path) -> None:
    _, fold = exported(trained, tmp_path, "export.quantize=int8_static", model="tcn")
    runtime = read_metadata(fold / ONNX_NAME)["runtime"]
    assert runtime["file"] == QUANTIZED_NAME and runtime["quantize"] == "int8_static"
    parity = runtime["quantize_parity"]
    assert parity["level_changes"] == 0 and parity["max_delta"] <= TOL
    assert parity["max_abs"] > 0  # the raw output moved: quantised, not a float copy
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types(fold / QUANTIZED_NAME)
    assert fold_inputs(fold).calibration  # training rows, not the rows it is checked on

    # the attention LSTM has no convolution: nothing to quantise statically, the float model runs
    _, fold = exported(trained, tmp_path / "lstm", "export.quantize=int8_static")
    runtime = read_metadata(fold / ONNX_NAME)["runtime"]
    assert runtime["file"] == ONNX_NAME and not (fold / QUANTIZED_NAME).exists()
    assert "found no Conv node to quantise" in runtime["quantize_refused"]


def graph_file(path: Path, nodes: list, outputs: dict[str, int], constant: tuple[str, float]
               ) -> Path:
    """A graph of ``nodes`` on the export's inputs (``x`` (batch, time, 2), ``mask``), with
    ``outputs`` {name: ONNX element type} of shape (batch,) and one scalar float ``constant``."""
    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 2]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "time"])],
        [helper.make_tensor_value_info(name, kind, ["batch"]) for name, kind in outputs.items()],
        [helper.make_tensor(constant[0], TensorProto.FLOAT, [], [constant[1]])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what this ONNX Runtime reads (onnx writes its newest)
    onnx.save(model, str(path))
    return path


def autoencoder_graph(path: Path, threshold: float) -> Path:
    """An autoencoder's outputs: ``reconstruction_error`` = mean of x^2 over time and features,
    ``anomalous`` = error > ``threshold`` (the mask is unused)."""
    nodes = [helper.make_node("Mul", ["x", "x"], ["squared"]),
             helper.make_node("ReduceMean", ["squared"], ["reconstruction_error"], axes=[1, 2],
                              keepdims=0),
             helper.make_node("Greater", ["reconstruction_error", "threshold"], ["anomalous"])]
    return graph_file(path, nodes, {"reconstruction_error": TensorProto.FLOAT,
                                    "anomalous": TensorProto.BOOL}, ("threshold", threshold))


def continuous_graph(path: Path, shift: float) -> Path:
    """A continuous head's outputs: ``expected`` = mean of x + ``shift``, ``level`` the same
    float (a real-valued target has no levels)."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2], keepdims=0),
             helper.make_node("Add", ["mean", "shift"], ["expected"]),
             helper.make_node("Identity", ["expected"], ["level"])]
    return graph_file(path, nodes, {"expected": TensorProto.FLOAT, "level": TensorProto.FLOAT},
                      ("shift", shift))


def test_the_autoencoder_parity_compares_its_error_and_its_decision(tmp_path) -> None:
    # rows of constant amplitude a have error a^2: 0.25, 1.0, 2.25 (threshold 1.5 flags the last)
    x = np.stack([np.full((10, 2), a, np.float32) for a in (0.5, 1.0, 1.5)])
    inputs = [(x, np.ones((3, 10), bool))]
    reference = cpu_session(autoencoder_graph(tmp_path / "a.onnx", 1.5), 1)
    same = score_parity(reference, cpu_session(autoencoder_graph(tmp_path / "b.onnx", 1.5), 1),
                        inputs)
    assert same.rows == 3 and same.level_changes == 0 and same.max_delta == 0
    assert same.accepted(0.0)
    moved = score_parity(reference, cpu_session(autoencoder_graph(tmp_path / "c.onnx", 0.5), 1),
                         inputs)  # the 1.0 row is now flagged too
    assert moved.level_changes == 1 and not moved.accepted(1.0)



def test_a_continuous_heads_float_level_is_compared_as_a_score(tmp_path) -> None:
    inputs = [(np.linspace(0, 5, 60, dtype=np.float32).reshape(3, 10, 2), np.ones((3, 10), bool))]
    parity = score_parity(cpu_session(continuous_graph(tmp_path / "a.onnx", 0.0), 1),
                          cpu_session(continuous_graph(tmp_path / "b.onnx", 0.01), 1), inputs)
    assert parity.level_changes == 0 and parity.max_delta == pytest.approx(0.01, abs=1e-5)
    assert parity.accepted(0.05) and not parity.accepted(0.005)
