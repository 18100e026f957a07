"""A fitted tree model of the ``tabular`` family as one ONNX graph, without pickle.

A fold's :class:`~hawkeye.models.trees.TreeEnsemble` exists only inside its training job (the
project never pickles an estimator), so the fold is exported right there, at the end of
:func:`hawkeye.fitting.fit_tabular`: skl2onnx converts each scikit-learn estimator to an
``ai.onnx.ml`` ``TreeEnsemble*`` node, and :func:`tree_model` joins them with a few standard ONNX
operators into the same contract as a sequence fold (:mod:`hawkeye.export`), one ``model.onnx``:

| name | shape, type | meaning |
|---|---|---|
| ``x`` | (batch, features) float32 | the store's summary features, raw (NaN = missing) |
| ``raw`` | (batch, out_dim) float32 | :meth:`TreeEnsemble.predict`: the head's output space |
| ``expected`` | (batch,) float32 | ``head.expected(raw)`` |
| ``level`` | (batch,) int64 | ``head.predict(raw)`` |
| ``probabilities`` | (batch, K) float32 | ``head.probabilities(raw)`` (classification, ordinal) |

``raw`` is built as the model builds it: the regressor's value; the classifier's probabilities
placed in the K columns (``1e-7`` for a level the training side lacks) and logged; for the ordinal
head one column per threshold "score > k", the logit of that classifier's probability, or the
constant logit of a threshold the training side never splits.

Missing values: skl2onnx carries HistGradientBoosting's learned NaN side, but writes every
random-forest split as "NaN goes right"; :func:`_forest_missing_sides` copies each node's
``missing_go_to_left`` in, so a forest sends NaN where scikit-learn does.

Precision: ONNX Runtime's tree operators compare float32 inputs with float32 thresholds and sum
leaves in float32, so outputs differ from scikit-learn's float64 sums by float32 rounding. For a
forest skl2onnx moves each float64 threshold to the float32 value that splits float32 inputs the
same way; HistGradientBoosting's are rounded to float32, so only an input exactly equal to a
rounded threshold (a midpoint between two training values) can take the other branch. Measured
(pinned versions, 200 training rows + 2000 random rows with 20% NaN, every model and head): no
level differed, ``expected``/``probabilities`` within 1.4e-6, ``raw`` within 2.6e-4. The
logit of a saturated probability (a forest whose trees all agree: p = 1 clipped at 1 - 1e-7) is
ill-conditioned: a 1e-7 change of p moves it by ~0.2, so for heads with probabilities the parity
check compares what scoring uses, ``probabilities`` and ``expected`` (``raw`` for regression).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from hawkeye import __version__
from hawkeye.io import atomic_path
from hawkeye.models.heads import Head
from hawkeye.models.trees import EPS, TreeEnsemble
from hawkeye.onnx_files import ONNX_NAME, ort_session, write_metadata

OPSET = {"": 18, "ai.onnx.ml": 3}   # ai.onnx.ml 3: TreeEnsembleRegressor/Classifier of ORT
INPUT = "x"


class TreeExportError(ValueError):
    """A tree fold that cannot be written as ONNX (conversion or parity failed)."""


def output_names(head: Head) -> tuple[str, ...]:
    """The graph's outputs for a fold with ``head`` (the sequence family's contract)."""
    return ("raw", "expected", "level") + (("probabilities",) if head.has_probabilities else ())


def tree_model(model: TreeEnsemble, head: Head) -> onnx.ModelProto:
    """One ONNX graph: summary features ``x`` in, :func:`output_names` out (module docstring)."""
    from skl2onnx import to_onnx  # import cost only where a tree fold is exported
    from skl2onnx.common.data_types import FloatTensorType

    graph = _Graph()
    columns = []
    for k, estimator in enumerate(model.estimators):
        if estimator is None:  # an ordinal threshold the training side never splits
            columns.append(graph.constant_column(model.constant_logits[k]))
            continue
        is_classifier = hasattr(estimator, "classes_")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skl2onnx's notes on versions it was not tested with
            converted = to_onnx(estimator, initial_types=[(INPUT, FloatTensorType(
                [None, model.input_dim]))], target_opset=OPSET,
                options={id(estimator): {"zipmap": False}} if is_classifier else None)
        _forest_missing_sides(converted, estimator)
        outputs = graph.include(converted, f"tree{k}_")
        if model.objective == "regression":
            columns.append(outputs["variable"])
        elif model.objective == "classification":
            columns.append(graph.placed_log(outputs["probabilities"],
                                            [int(c) for c in estimator.classes_],
                                            model.output_dim))
        else:
            columns.append(graph.logit(graph.slice_column(outputs["probabilities"], 1)))
    graph.node("Concat", columns, ["raw"], axis=1)
    graph.head_outputs(head)
    return graph.model(model.input_dim, output_names(head))


def _forest_missing_sides(converted: onnx.ModelProto, estimator: Any) -> None:
    """Copy a forest's per-node ``missing_go_to_left`` into the converted tree node (skl2onnx
    writes 0 for every node of a random forest; HistGradientBoosting's are already right)."""
    trees = [getattr(e, "tree_", None) for e in getattr(estimator, "estimators_", [])]
    if not trees or any(t is None for t in trees):
        return
    sides = np.concatenate([t.missing_go_to_left for t in trees]).astype(np.int64).tolist()
    for node in converted.graph.node:
        for attribute in node.attribute:
            if attribute.name == "nodes_missing_value_tracks_true":
                if len(attribute.ints) != len(sides):
                    raise TreeExportError(f"skl2onnx wrote {len(attribute.ints)} nodes for a "
                                          f"forest of {len(sides)}: unknown converter layout")
                del attribute.ints[:]
                attribute.ints.extend(sides)


class _Graph:
    """The nodes, initialisers and names of the graph being built."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
             **attributes: Any) -> str:
        outputs = list(outputs) if outputs else [self.name(op.lower())]
        self.nodes.append(helper.make_node(op, list(inputs), outputs, name=self.name(op),
                                           **attributes))
        return outputs[0]

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        name = self.name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def include(self, converted: onnx.ModelProto, prefix: str) -> dict[str, str]:
        """Add a converted estimator's nodes, every name but the input prefixed; its outputs."""
        def renamed(name: str) -> str:
            return name if name in ("", INPUT) else prefix + name

        for node in converted.graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + node.name
            copy.input[:] = [renamed(n) for n in node.input]
            copy.output[:] = [renamed(n) for n in node.output]
            self.nodes.append(copy)
        for tensor in converted.graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            copy.name = renamed(tensor.name)
            self.initializers.append(copy)
        return {o.name: renamed(o.name) for o in converted.graph.output}

    def rows_by(self, width: int) -> str:
        """The shape ``(batch, width)`` of the input's batch."""
        batch = self.node("Slice", [self.node("Shape", [INPUT]), self.const([0], np.int64),
                                    self.const([1], np.int64)])
        return self.node("Concat", [batch, self.const([width], np.int64)], axis=0)

    def constant_column(self, value: float) -> str:
        return self.node("ConstantOfShape", [self.rows_by(1)],
                         value=numpy_helper.from_array(np.array([value], np.float32)))

    def slice_column(self, matrix: str, column: int) -> str:
        return self.node("Slice", [matrix, self.const([column], np.int64),
                                   self.const([column + 1], np.int64),
                                   self.const([1], np.int64)])

    def placed_log(self, probabilities: str, classes: list[int], n_levels: int) -> str:
        """``log(clip(p, eps, 1))`` of the classes' probabilities placed in ``n_levels``
        columns, ``eps`` where a level was never seen (TreeEnsemble's classification raw)."""
        placement = np.zeros((len(classes), n_levels), np.float32)
        placement[np.arange(len(classes)), classes] = 1.0
        unseen = np.where(placement.any(axis=0), 0.0, EPS).astype(np.float32)
        placed = self.node("Add", [self.node("MatMul", [probabilities, self.const(placement)]),
                                   self.const(unseen)])
        clipped = self.node("Clip", [placed, self.const(EPS), self.const(1.0)])
        return self.node("Log", [clipped])

    def logit(self, p: str) -> str:
        """``log(p / (1 - p))`` of ``p`` clipped to ``[eps, 1 - eps]``, in float64 as numpy."""
        p = self.node("Cast", [p], to=TensorProto.DOUBLE)
        p = self.node("Clip", [p, self.const(EPS, np.float64), self.const(1 - EPS, np.float64)])
        odds = self.node("Div", [p, self.node("Sub", [self.const(1.0, np.float64), p])])
        return self.node("Cast", [self.node("Log", [odds])], to=TensorProto.FLOAT)

    def head_outputs(self, head: Head) -> None:
        """``expected``, ``level`` (and ``probabilities``) from ``raw`` by the head's rule
        (:mod:`hawkeye.models.heads`; the parity check holds this to the torch head)."""
        k = head.n_levels
        if head.name == "regression":
            value = self.node("Squeeze", ["raw", self.const([1], np.int64)])
            self.node("Clip", [value, self.const(0.0), self.const(float(k - 1))], ["expected"])
            self.node("Cast", [self.node("Round", ["expected"])], ["level"], to=TensorProto.INT64)
        elif head.name == "classification":
            self.node("Softmax", ["raw"], ["probabilities"], axis=1)
            self.node("MatMul", ["probabilities", self.const(np.arange(k))], ["expected"])
            self.node("ArgMax", ["raw"], ["level"], axis=1, keepdims=0)
        elif head.name == "ordinal":
            above = self.node("Sigmoid", ["raw"])  # (batch, K-1): P(score > k)
            axis = self.const([1], np.int64)
            self.node("ReduceSum", [above, axis], ["expected"], keepdims=0)
            passed = self.node("Cast", [self.node("Greater", ["raw", self.const(0.0)])],
                               to=TensorProto.INT64)
            self.node("ReduceSum", [passed, axis], ["level"], keepdims=0)
            ones = self.node("ConstantOfShape", [self.rows_by(1)],
                             value=numpy_helper.from_array(np.array([1.0], np.float32)))
            zeros = self.node("Sub", [ones, ones])
            self.node("Sub", [self.node("Concat", [ones, above], axis=1),
                              self.node("Concat", [above, zeros], axis=1)], ["probabilities"])
        else:
            raise TreeExportError(f"tree models export the regression, classification and "
                                  f"ordinal heads, got {head.name!r}")

    def model(self, n_features: int, outputs: Sequence[str]) -> onnx.ModelProto:
        types = {"raw": TensorProto.FLOAT, "expected": TensorProto.FLOAT,
                 "level": TensorProto.INT64, "probabilities": TensorProto.FLOAT}
        shapes = {"raw": ["batch", None], "expected": ["batch"], "level": ["batch"],
                  "probabilities": ["batch", None]}
        graph = helper.make_graph(
            self.nodes, "hawkeye_trees",
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_features])],
            [helper.make_tensor_value_info(n, types[n], shapes[n]) for n in outputs],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                        for d, v in OPSET.items()])
        model.ir_version = 9  # what ONNX Runtime 1.18+ reads
        onnx.checker.check_model(model)
        return model


# ----------------------------------------------------------------------------------------------
# Parity and publication


def parity_rows(features: np.ndarray, seed: int, n_random: int = 256,
                missing_share: float = 0.2) -> np.ndarray:
    """The rows a tree export is checked on: the fold's own rows (the values the thresholds were
    cut between), and random rows around their per-feature mean and spread with a share of
    cells set to NaN (so every learned missing side is exercised)."""
    features = np.asarray(features, np.float32)
    rng = np.random.default_rng(seed)
    mean = np.nan_to_num(np.nanmean(features, axis=0)) if len(features) else 0.0
    std = np.nan_to_num(np.nanstd(features, axis=0)) if len(features) else 1.0
    random = (rng.standard_normal((n_random, features.shape[1])) * std + mean).astype(np.float32)
    random[rng.random(random.shape) < missing_share] = np.nan
    return np.concatenate([features, random])


def parity_max_abs(session: Any, model: TreeEnsemble, head: Head, rows: np.ndarray) -> float:
    """Largest ``|ONNX Runtime - in-memory model|`` over the outputs scoring uses (module doc)."""
    raw = torch.from_numpy(model.predict(rows))
    want = {"raw": raw, "expected": head.expected(raw), "probabilities": head.probabilities(raw)}
    compared = ["expected", "probabilities"] if head.has_probabilities else ["raw", "expected"]
    got = session.run(compared, {INPUT: rows})
    worst = 0.0
    for name, have in zip(compared, got, strict=True):
        expected = want[name].numpy().astype(np.float64)
        if expected.shape != have.shape:
            raise TreeExportError(f"output {name!r}: ONNX Runtime shape {have.shape} != "
                                  f"{expected.shape}")
        worst = max(worst, float(np.abs(expected - have.astype(np.float64)).max()))
    return worst


def export_trees(model: TreeEnsemble, head: Head, rows: np.ndarray, path: Path,
                 meta: dict[str, Any], tolerance: float, threads: int = 1) -> float:
    """Write ``path`` (atomic) with ``meta`` as ``hawkeye.*`` metadata once ONNX Runtime matches
    the in-memory model within ``tolerance`` on :func:`parity_rows`; the parity's max abs."""
    try:
        graph = tree_model(model, head)
    except (RuntimeError, ValueError, TypeError, NameError, onnx.checker.ValidationError) as err:
        raise TreeExportError(f"{path}: skl2onnx could not convert the "
                              f"{type(model).__name__} ({type(err).__name__}: {err})") from err
    with atomic_path(path) as tmp:
        onnx.save(graph, str(tmp))
        write_metadata(tmp, meta)
        worst = parity_max_abs(ort_session(tmp, threads), model, head, rows)
        if not worst <= tolerance:
            raise TreeExportError(f"{path}: ONNX Runtime differs from the fitted "
                                  f"{type(model).__name__} by {worst:.3g} > export.parity_tol="
                                  f"{tolerance}; model.onnx not (re)written")
    return worst


def export_fitted_fold(model: TreeEnsemble, head: Head, rows: np.ndarray, out: Path,
                       meta: dict[str, Any], export_cfg: Any) -> dict[str, Any]:
    """The training job's export of a tree fold to ``<out>/model.onnx``: metrics.json's
    ``onnx_mb`` and ``onnx_parity_max_abs``, or ``onnx_error`` (never raises: a failed export
    does not fail a finished fit; the fold is retrained to retry)."""
    path = out / ONNX_NAME
    try:
        worst = export_trees(model, head, parity_rows(rows, int(export_cfg.parity_seed)), path,
                             meta, float(export_cfg.parity_tol), int(export_cfg.ort_threads))
    except TreeExportError as error:
        return {"onnx_error": str(error)}
    return {"onnx_mb": round(path.stat().st_size / 1e6, 4), "onnx_parity_max_abs": worst}


def tree_metadata(meta: dict[str, Any], head: Head, summary_names: Sequence[str], fold: int,
                  git_commit: str) -> dict[str, Any]:
    """The ``hawkeye.*`` metadata of a tree fold (:mod:`hawkeye.export`'s keys): its inputs are
    the store's summary features (``input_features: summary``), one row per video: no time base
    (``sample_rate_hz``/``max_seconds`` null)."""
    return {
        "model": meta["model_name"], "family": meta["family"], "head": head.name, "fold": fold,
        "input_names": list(summary_names), "input_features": "summary",
        "sample_rate_hz": None, "max_seconds": None, "normalization": None,
        "n_levels": head.n_levels,
        "score_levels": list(range(head.n_levels)), "outputs": list(output_names(head)),
        "threshold": None, "prepare": None, "config_hash": meta["config_hash"],
        "git_commit": git_commit, "hawkeye_version": __version__,
    }
