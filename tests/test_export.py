"""ONNX export: parity for every sequence model, the file alone reproduces training's predictions,
a failed parity check leaves no file, the tree baseline is skipped with a reason.

Exports take seconds each (torch's dynamo exporter), so the tests that export are marked ``slow``.
The trained run is tiny: a store of simulated tapping traces (``hawkeye.synthetic``'s aperture
model; channels aperture and velocity; subject ``s`` has typical score ``s % 5``), one fold of a
small TCN trained for two epochs and one of the tree baseline.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import tapping_store, tiny_model
from torch import nn

from hawkeye import export as export_module
from hawkeye.config import compose
from hawkeye.data import Normalization, apply_normalization, model_frames
from hawkeye.export import (
    ONNX_NAME,
    ExportError,
    ScoringModule,
    TrainedFold,
    export_after_training,
    export_fold,
    export_run,
    export_verified,
    read_metadata,
)
from hawkeye.models import build_model
from hawkeye.models.heads import build_head
from hawkeye.onnx_graph import GRAPH_PREFIX
from hawkeye.store import load_store
from hawkeye.timebase import TimeBase
from hawkeye.train import train

REPO = Path(__file__).resolve().parents[1]
# The head each exportable model is exported with (all three heads are covered between them).
EXPORT_HEAD = {"attention_lstm": "regression", "transformer": "classification",
               "conv_lstm": "ordinal", "tcn": "regression", "lstm_ae": "regression"}
N_FEATURES, N_LEVELS = 5, 5


def run_overrides(store: Path, run_dir: Path, model: str, *extra: str) -> list[str]:
    return [f"paths.store={store}", f"run_dir={run_dir}", *tiny_model(model),
            "cv.n_folds=3", "train.epochs=2", "train.batch_size=16", "train.num_threads=1",
            "export.onnx=false", *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A run with fold 0 of a tiny TCN (exported here) and fold 0 of the tree baseline."""
    root = tmp_path_factory.mktemp("export_run")
    store = tapping_store(root / "store.h5", n_subjects=36, n_frames=90)
    run_dir = root / "run"
    cfg = compose(run_overrides(store, run_dir, "tcn"))
    train(cfg)
    train(compose(run_overrides(store, run_dir, "gbm")))
    fold = run_dir / "tcn" / "fold_0"
    result = export_fold(fold, cfg)
    return {"store": store, "run_dir": run_dir, "cfg": cfg, "fold": fold, "result": result}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def scoring_module(model: str, seed: int = 0) -> tuple[ScoringModule, object]:
    """A freshly initialised tiny ``model`` behind the fold's normalisation and head."""
    cfg = compose([*tiny_model(model), f"head={EXPORT_HEAD[model]}"])
    torch.manual_seed(seed)
    family = str(cfg.model.family)
    norm = Normalization(mean=torch.linspace(-2, 3, N_FEATURES),
                         std=torch.linspace(0.5, 4, N_FEATURES))
    module = ScoringModule.build(cfg.model, cfg.head, family, N_FEATURES, N_LEVELS, norm).eval()
    if module.family.threshold(module.model) is not None:  # an untrained threshold: any value
        module.model.threshold.fill_(1.0)
    return module, cfg


# ----------------------------------------------------------------------------------------------
# every sequence model


@pytest.mark.slow
@pytest.mark.parametrize("model", ["attention_lstm", "transformer", "conv_lstm", "lstm_ae"])
def test_every_sequence_model_exports_with_parity_at_any_length(model, tmp_path) -> None:
    module, cfg = scoring_module(model)
    path = tmp_path / ONNX_NAME
    worst = export_verified(TrainedFold(module, {"input_names": [f"f{i}" for i in
                                                               range(N_FEATURES)]}),
                            path, cfg.export)
    assert 0 <= worst <= cfg.export.parity_tol
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "mask"]
    assert [o.name for o in session.get_outputs()] == list(module.output_names)
    assert session.get_inputs()[0].shape[:2] == ["batch", "time"]  # dynamic, named axes

    # Lengths and batch sizes outside the parity set, padding full of NaN: same as PyTorch, and a
    # padded video scores exactly as the same video alone.
    rng = np.random.default_rng(1)
    for batch, length in [(1, 1), (2, 64), (4, 511)]:
        x = rng.normal(size=(batch, length, N_FEATURES)).astype(np.float32)
        mask = np.ones((batch, length), dtype=bool)
        mask[-1, length // 2 + 1:] = False
        x[~mask] = np.nan
        got = session.run(None, {"x": x, "mask": mask})
        with torch.no_grad():
            want = module(torch.from_numpy(x), torch.from_numpy(mask))
        for have, expected in zip(got, want, strict=True):
            if have.dtype.kind == "f":
                np.testing.assert_allclose(have, expected.numpy(), atol=1e-4)
        kept = int(mask[-1].sum())
        alone = session.run(None, {"x": x[-1:, :kept], "mask": mask[-1:, :kept]})
        np.testing.assert_allclose(alone[0], got[0][-1:], atol=1e-5)


class EagerOnlyOffset(nn.Module):
    """Adds 1 to the network's output in eager PyTorch but not in the exported graph: a stand-in
    for an exporter bug, so the parity check has something to catch."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, features)
        out = self.inner(x, mask)  # (batch, out_dim)
        return out if torch.compiler.is_compiling() else out + 1.0


@pytest.mark.slow
def test_a_model_that_exports_differently_fails_and_leaves_no_file(tmp_path) -> None:
    module, cfg = scoring_module("tcn")
    module.model = EagerOnlyOffset(module.model)
    path = tmp_path / ONNX_NAME
    with pytest.raises(ExportError, match="differs from PyTorch by 1"):
        export_verified(TrainedFold(module, {"input_names": ["f"] * N_FEATURES}), path, cfg.export)
    assert list(tmp_path.iterdir()) == []  # neither model.onnx nor a temporary file


def kept_graphs(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{GRAPH_PREFIX}*.onnx"))


def no_export(*args, **kwargs):
    raise AssertionError("exported again although the kept graph fits")


@pytest.mark.slow
def test_a_second_fold_of_the_architecture_reuses_the_kept_graph(tmp_path, monkeypatch) -> None:
    first, cfg = scoring_module("conv_lstm", seed=0)
    second, _ = scoring_module("conv_lstm", seed=1)  # other weights, same architecture
    names = {"input_names": [f"f{i}" for i in range(N_FEATURES)]}
    export_verified(TrainedFold(first, names), tmp_path / "a.onnx", cfg.export, tmp_path)
    assert len(kept_graphs(tmp_path)) == 1

    monkeypatch.setattr(export_module, "export_graph", no_export)
    worst = export_verified(TrainedFold(second, names), tmp_path / "b.onnx", cfg.export, tmp_path)
    assert worst <= cfg.export.parity_tol
    x = torch.randn(2, 40, N_FEATURES) * second.std + second.mean
    mask = torch.ones(2, 40, dtype=torch.bool)
    session = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = second(x, mask)[0].numpy()
    np.testing.assert_allclose(session.run(["raw"], {"x": x.numpy(), "mask": mask.numpy()})[0],
                               want, atol=1e-4)
    assert not np.allclose(want, first(x, mask)[0].detach().numpy(), atol=1e-3)  # b's weights


def altered(graph: Path) -> None:
    """Turn the graph's first Add into a Sub: a kept graph that computes something else."""
    model = onnx.load(str(graph))
    next(node for node in model.graph.node if node.op_type == "Add").op_type = "Sub"
    onnx.save(model, str(graph))


@pytest.mark.slow
@pytest.mark.parametrize("damage", [lambda path: path.write_bytes(b"not onnx"), altered],
                         ids=["unreadable", "computes-otherwise"])
def test_a_kept_graph_that_does_not_hold_is_replaced_by_a_fresh_export(tmp_path, damage,
                                                                      monkeypatch) -> None:
    module, cfg = scoring_module("tcn")
    names = {"input_names": [f"f{i}" for i in range(N_FEATURES)]}
    export_verified(TrainedFold(module, names), tmp_path / "a.onnx", cfg.export, tmp_path)
    [graph] = kept_graphs(tmp_path)
    damage(graph)
    worst = export_verified(TrainedFold(module, names), tmp_path / "b.onnx", cfg.export, tmp_path)
    assert worst <= cfg.export.parity_tol
    assert kept_graphs(tmp_path) == [graph]  # written again from the fresh export ...
    monkeypatch.setattr(export_module, "export_graph", no_export)
    export_verified(TrainedFold(module, names), tmp_path / "c.onnx", cfg.export, tmp_path)  # ...
    assert read_metadata(tmp_path / "c.onnx")["input_names"] == names["input_names"]  # sound


# ----------------------------------------------------------------------------------------------
# a trained fold


@pytest.mark.slow
def test_export_fold_records_size_and_parity_in_metrics(run) -> None:
    fold, result = run["fold"], run["result"]
    path = fold / ONNX_NAME
    assert result["status"] == "ok" and path.exists()
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["onnx_mb"] == result["onnx_mb"] == round(path.stat().st_size / 1e6, 4) > 0
    assert 0 <= metrics["onnx_parity_max_abs"] <= 1e-4
    assert metrics["status"] == "ok" and "cv" in metrics  # training's entries kept


@pytest.mark.slow
def test_the_onnx_file_alone_reproduces_the_training_predictions(run) -> None:
    """Read model.onnx with ONNX Runtime only (no checkpoint, no config): its metadata says how
    to feed raw store sequences, and its scores equal training's predictions.csv (which went
    through PyTorch with normalisation outside the model)."""
    path = run["fold"] / ONNX_NAME
    meta = read_metadata(path)
    ckpt = torch.load(run["fold"] / "best.pt", weights_only=True)
    metrics = json.loads((run["fold"] / "metrics.json").read_text())
    assert meta["input_names"] == ["aperture", "velocity"]
    assert meta["model"] == "tcn" and meta["family"] == "sequence" and meta["head"] == "regression"
    assert meta["fold"] == 0 and meta["score_levels"] == [0, 1, 2, 3, 4]
    assert meta["config_hash"] == metrics["config_hash"] and meta["hawkeye_version"]
    assert meta["sample_rate_hz"] == run["cfg"].task.sample_rate_hz
    assert meta["max_seconds"] == run["cfg"].task.max_seconds
    assert meta["task"] == {"name": "pd4t_finger_tapping", "pd4t_task": "Finger tapping"}
    np.testing.assert_allclose(meta["normalization"]["mean"], ckpt["normalization"]["mean"])
    np.testing.assert_allclose(meta["normalization"]["std"], ckpt["normalization"]["std"])

    store = load_store(run["store"], splits="test")
    x, mask = model_frames(store, meta["input_features"], TimeBase.from_task(meta))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected, level = session.run(["expected", "level"], {"x": x, "mask": mask})
    rows = {r["id"]: r for r in read_csv(run["fold"] / "predictions.csv") if r["split"] == "test"}
    assert set(rows) == set(store.ids)
    for i, video in enumerate(store.ids):
        assert expected[i] == pytest.approx(float(rows[video]["raw"]), abs=1e-4)
        assert level[i] == int(rows[video]["pred"])

    # The same in PyTorch by hand: normalise outside, network, head.
    network = build_model(ckpt["model_cfg"], 2, 1)
    network.load_state_dict(ckpt["model"])
    head = build_head(ckpt["head_cfg"], ckpt["n_levels"])
    norm = Normalization(ckpt["normalization"]["mean"], ckpt["normalization"]["std"])
    with torch.no_grad():
        xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
        by_hand = head.expected(network.eval()(apply_normalization(xt, mt, norm), mt))
    np.testing.assert_allclose(expected, by_hand.numpy(), atol=1e-4)


@pytest.mark.slow
def test_failed_parity_keeps_the_previous_file_and_records_the_error(run, tmp_path) -> None:
    """export.parity_tol=-1 cannot be met: the export fails, the old model.onnx stays byte for
    byte, metrics.json says why, and the training hook does not raise. (That no file appears
    where there was none: test_a_model_that_exports_differently_fails_and_leaves_no_file.)"""
    import shutil

    fold = tmp_path / "tcn" / "fold_0"
    shutil.copytree(run["fold"], fold)
    before = (fold / ONNX_NAME).read_bytes()
    cfg = compose(run_overrides(run["store"], tmp_path, "tcn", "export.onnx=true",
                                "export.parity_tol=-1"))
    with pytest.raises(ExportError, match="parity_tol=-1"):
        export_fold(fold, cfg)
    metrics = export_after_training(fold, cfg)
    assert "ONNX Runtime differs from PyTorch" in metrics["onnx_error"]
    assert (fold / ONNX_NAME).read_bytes() == before
    assert not list(fold.glob(".*.tmp"))  # no temporary file left behind


@pytest.mark.slow
def test_export_run_skips_the_tree_baseline_and_exported_folds(run) -> None:
    results = {Path(r["fold_dir"]).parent.name: r for r in export_run(run["run_dir"], run["cfg"])}
    # trained with export.onnx=false, and a tree fold is exported only when it is fitted
    assert results["gbm"]["status"] == "skipped" and "scikit-learn" in results["gbm"]["reason"]
    assert results["tcn"]["status"] == "skipped" and "exists" in results["tcn"]["reason"]
    assert not (run["run_dir"] / "gbm" / "fold_0" / ONNX_NAME).exists()


@pytest.mark.slow
def test_command_line(run, tmp_path) -> None:
    ok = subprocess.run([sys.executable, "-m", "hawkeye.export", f"run_dir={run['run_dir']}"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "skipped" in ok.stdout and "gbm" in ok.stdout
    missing = subprocess.run([sys.executable, "-m", "hawkeye.export",
                              f"run_dir={tmp_path / 'nope'}"],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "is not a directory" in missing.stderr
