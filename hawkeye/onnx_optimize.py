"""The file prediction runs: ``model.onnx`` as exported, or a graph ONNX Runtime optimised or
int8-quantised once at export time, saved beside it and checked against it.

``export.graph_optimization`` (``none | basic | extended``) runs ONNX Runtime's graph optimiser at
that level once and saves the result as ``model.opt.onnx``
(``SessionOptions.optimized_model_filepath``), so prediction opens it without optimising again.
``basic`` keeps to standard ONNX operators (constant folding, redundant nodes removed) and loads in
any ONNX Runtime; ``extended`` adds fused operators of the CPU provider (``com.microsoft``
domain). ``all`` is not offered: its layout transformations are specific to the CPU that saved the
file. The saved graph must reproduce ``model.onnx`` within ``export.parity_tol`` on the export's
parity inputs, else it is refused and ``model.onnx`` is what prediction runs.

``export.quantize: int8`` quantises the weights of the ``MatMul``, ``Gemm`` and ``LSTM`` nodes to
int8 (``onnxruntime.quantization.quantize_dynamic``; activations are quantised per call) after the
``basic`` optimisation (which folds the LSTM weights torch's exporter rearranges at run time into
constants the quantiser can find) and writes ``model.int8.onnx``. ``export.quantize: int8_static``
writes the same file quantised statically instead (QDQ: ``Conv`` nodes with int8 weights and
uint8 activations whose ranges are calibrated on the fold's first
``CALIBRATION_ROWS`` training rows): the choice for convolutional networks (the TCN), whose
convolutions dynamic quantisation leaves in float. Either file is accepted only if, on the
fold's own validation data (the early-stopping slice and the held-out fold, which training never
fitted), every row keeps its predicted level (``level``; the autoencoder: ``anomalous``) and its
continuous score (``expected``; the autoencoder: ``reconstruction_error``) moves by at most
``export.quantize_tol``. A refused file is deleted, the reason is logged and recorded, and the
float model stays.

What was chosen is recorded in ``model.onnx``'s metadata as ``hawkeye.runtime``
(:func:`runtime_record`): the file prediction opens (:func:`runtime_session`), the optimisation
and quantisation behind it, the parity measured and any refusal. ``model.onnx`` stays the
verified float export every other check reads.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import onnx
import onnxruntime as ort
import torch
from omegaconf import DictConfig, OmegaConf

from hawkeye.io import atomic_path
from hawkeye.onnx_files import ONNX_NAME, write_metadata

log = logging.getLogger("hawkeye.export")

OPTIMIZED_NAME = "model.opt.onnx"
QUANTIZED_NAME = "model.int8.onnx"
GRAPH_LEVELS = {"none": None, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}
QUANTIZE_CHOICES = ("none", "int8", "int8_static")
DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM")   # int8: weights quantised, activations per call
# int8_static: activation ranges calibrated once. Convolutions only: on the telemetry TCN the
# calibrated output layer (Gemm) moved the fuel estimate by 1.0 L/h, its convolutions by 0.12.
STATIC_OPS = ("Conv",)
CALIBRATION_ROWS = 256  # training rows int8_static calibrates its activation ranges on
# continuous output -> the decision taken from it, per family (hawkeye.families output names)
SCORE_OUTPUTS = {"expected": "level", "reconstruction_error": "anomalous"}
PARITY_BATCH = 64  # validation rows per ONNX Runtime call in the score-level check


@dataclass(frozen=True)
class RuntimeSettings:
    """The ``export`` keys that decide the file prediction runs (conf/export/default.yaml)."""

    graph_optimization: str   # none | basic | extended
    quantize: str             # none | int8 | int8_static
    quantize_tol: float       # max |delta continuous score| per validation row
    parity_tol: float         # max |delta| of any float output for the optimised graph
    threads: int              # ONNX Runtime intra-op threads of the checks

    @classmethod
    def from_config(cls, export_cfg: DictConfig) -> RuntimeSettings:
        """Read and check the keys; ValueError naming the key and its choices."""
        settings = cls(graph_optimization=str(export_cfg.graph_optimization),
                       quantize=str(export_cfg.quantize),
                       quantize_tol=float(export_cfg.quantize_tol),
                       parity_tol=float(export_cfg.parity_tol),
                       threads=int(export_cfg.ort_threads))
        if settings.graph_optimization not in GRAPH_LEVELS:
            raise ValueError(f"export.graph_optimization must be one of {list(GRAPH_LEVELS)}, "
                             f"got {settings.graph_optimization!r}")
        if settings.quantize not in QUANTIZE_CHOICES:
            raise ValueError(f"export.quantize must be one of {list(QUANTIZE_CHOICES)}, got "
                             f"{settings.quantize!r}")
        return settings


# ----------------------------------------------------------------------------------------------
# Making the files


def save_optimized(source: Path, target: Path, level: str) -> None:
    """ONNX Runtime's graph optimiser at ``level`` (``basic | extended``) on ``source``, saved
    to ``target`` (atomically)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_LEVELS[level]
    options.log_severity_level = 3
    with atomic_path(target) as tmp:
        options.optimized_model_filepath = str(tmp)
        ort.InferenceSession(str(source), sess_options=options,
                             providers=["CPUExecutionProvider"])


def save_quantized(source: Path, target: Path,
                   calibration: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
    """``source`` quantised to int8, written to ``target`` (atomically).

    Without ``calibration``: dynamic, int8 weights of the MatMul, Gemm and LSTM nodes. With it:
    static (QDQ), the Conv nodes with activation ranges measured on the ``(x, mask)``
    batches, which is what makes convolutions fast (ONNX Runtime's dynamic ``ConvInteger`` is
    slower than float). ``source`` should be ``basic``-optimised (:func:`save_optimized`) so that
    the LSTM weights are constants.
    """
    from onnxruntime.quantization import (  # heavy: only when asked
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    model = onnx.load(str(source))
    # The exporter's recorded intermediate shapes disagree with the quantiser's own shape
    # inference once nodes are folded; it infers them afresh without them.
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory(prefix="hawkeye-quantize-") as scratch, \
            atomic_path(target) as tmp:
        plain = Path(scratch) / "float.onnx"
        onnx.save(model, str(plain))
        if calibration is None:
            quantize_dynamic(str(plain), str(tmp), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(DYNAMIC_OPS),
                             extra_options={"MatMulConstBOnly": True})  # weights only
        else:
            quantize_static(str(plain), str(tmp), _Batches(calibration),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(STATIC_OPS),
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def quantized_nodes(path: Path) -> int:
    """Nodes of ``path``'s graph the quantiser wrote (QDQ pairs, integer and dynamically
    quantised operators)."""
    return sum("Quant" in node.op_type or "Integer" in node.op_type
               for node in onnx.load(str(path)).graph.node)


class _Batches:
    """The calibration reader ``quantize_static`` asks for: feeds, one batch at a time."""

    def __init__(self, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self._feeds = iter([{"x": x, "mask": mask} for x, mask in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def cpu_session(path: Path, threads: int, optimize: bool = True) -> ort.InferenceSession:
    """A plain CPU session: ``threads`` intra-op threads, the runtime's full optimisation at load
    unless ``optimize`` is False (a file optimised at export time)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------------------------
# Checking them


@dataclass(frozen=True)
class ScoreParity:
    """How a candidate graph's outputs differ from the float model's on the same rows."""

    rows: int              # rows compared
    level_changes: int     # rows whose decision output (level / anomalous) differs; a
                           # continuous head's float "level" is its value: compared as a score
    max_delta: float       # largest |delta| of the continuous score output over the rows
    max_abs: float         # largest |delta| of any float output

    def accepted(self, tol: float) -> bool:
        """Same decision on every row and every continuous score within ``tol``."""
        return self.rows > 0 and self.level_changes == 0 and self.max_delta <= tol

    def as_record(self) -> dict[str, Any]:
        return {"rows": self.rows, "level_changes": self.level_changes,
                "max_delta": self.max_delta, "max_abs": self.max_abs}


def score_parity(reference: ort.InferenceSession, candidate: ort.InferenceSession,
                 inputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> ScoreParity:
    """Run both sessions on every ``(x, mask)`` batch and compare their outputs row by row."""
    names = [o.name for o in reference.get_outputs()]
    score = next((n for n in SCORE_OUTPUTS if n in names), None)
    if score is None:
        raise ValueError(f"the graph has none of the score outputs {list(SCORE_OUTPUTS)} "
                         f"(outputs {names})")
    rows = level_changes = 0
    max_delta = max_abs = 0.0
    for x, mask in inputs:
        feeds = {"x": x, "mask": mask}
        want = dict(zip(names, reference.run(names, feeds), strict=True))
        have = dict(zip(names, candidate.run(names, feeds), strict=True))
        rows += len(x)
        decision = want[SCORE_OUTPUTS[score]]
        if not np.issubdtype(decision.dtype, np.floating):  # a continuous head's level is its
            level_changes += int(np.sum(decision != have[SCORE_OUTPUTS[score]]))  # value
        max_delta = max(max_delta, _max_abs(want[score], have[score]))
        for name in names:
            if np.issubdtype(want[name].dtype, np.floating):
                max_abs = max(max_abs, _max_abs(want[name], have[name]))
    return ScoreParity(rows, level_changes, max_delta, max_abs)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if np.isnan(a).any() != np.isnan(b).any() or np.isnan(diff[~np.isnan(a)]).any():
        return float("inf")
    return float(np.nanmax(diff)) if diff.size else 0.0


Batches = list[tuple[np.ndarray, np.ndarray]]  # raw (x, mask) pairs as the graph takes them


@dataclass(frozen=True)
class FoldInputs:
    """What quantisation reads of a fold: rows it may calibrate on and rows it is checked on."""

    calibration: Batches  # the first CALIBRATION_ROWS rows of the training part
    validation: Batches   # the early-stopping slice and the held-out fold


def fold_validation_inputs(fold_dir: Path) -> Batches:
    """The raw ``(x, mask)`` batches of a fold's validation data (:func:`fold_inputs`)."""
    return fold_inputs(fold_dir).validation


def fold_inputs(fold_dir: Path, batch: int = PARITY_BATCH) -> FoldInputs:
    """The raw ``(x, mask)`` batches of a fold's training rows (calibration) and validation
    data (its early-stopping slice and its held-out fold), as training built them from the
    store its ``config.yaml`` names.

    :func:`hawkeye.fold_data.load_fold_data` returns normalised inputs; the graph normalises
    itself, so they are mapped back with the fold's statistics (a missing value, 0 after
    normalisation, comes back as the mean, which normalises to the same 0). Raises ValueError
    naming the file when the fold's configuration or store cannot be read.
    """
    from hawkeye.families import family_of  # import here: families imports training code
    from hawkeye.fold_data import load_fold_data

    config = Path(fold_dir) / "config.yaml"
    if not config.is_file():
        raise ValueError(f"{config}: missing; the fold's validation data cannot be found")
    cfg = OmegaConf.load(config)
    family = family_of(str(cfg.model.family), str(cfg.model.name))
    try:
        data = load_fold_data(cfg, keep_anomalous=family.learns_anomalies,
                              needs_sequences=family.needs_sequences)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{config}: the fold's validation data could not be loaded "
                         f"({type(error).__name__}: {str(error)[:200]})") from None
    mean, std = data.normalization.mean, data.normalization.std

    def raw_batches(x: torch.Tensor, masks: torch.Tensor) -> Batches:
        batches = []
        for start in range(0, len(x), batch):
            z, mask = x[start:start + batch], masks[start:start + batch]
            raw = torch.where(mask.unsqueeze(-1), z * std + mean, mean.expand_as(z))
            batches.append((raw.numpy().astype(np.float32), mask.numpy()))
        return batches

    validation = [pair for part in (data.val, data.cv) for pair in raw_batches(part.x, part.mask)]
    if not validation:
        raise ValueError(f"{config}: the fold has no validation or held-out rows to check with")
    return FoldInputs(calibration=raw_batches(data.train.x[:CALIBRATION_ROWS],
                                              data.train.mask[:CALIBRATION_ROWS]),
                      validation=validation)


# ----------------------------------------------------------------------------------------------
# The choice, recorded in model.onnx


def runtime_record(file: str, settings: RuntimeSettings, **extra: Any) -> dict[str, Any]:
    """The ``hawkeye.runtime`` metadata: the file prediction opens and how it was made."""
    return {"file": file, "graph_optimization": settings.graph_optimization,
            "quantize": settings.quantize, "optimized_at_load": file != OPTIMIZED_NAME, **extra}


def publish_runtime_file(float_path: Path, final_path: Path, meta: dict[str, Any],
                         export_cfg: DictConfig,
                         parity_inputs: Sequence[tuple[torch.Tensor, torch.Tensor]]
                         ) -> dict[str, Any]:
    """Make the file prediction runs beside ``final_path`` (from the verified float export at
    ``float_path``, not yet published) and record the choice in ``float_path``'s metadata.

    Quantisation reads the fold's calibration and validation batches (:func:`fold_inputs` of
    ``final_path``'s folder). Returns the ``hawkeye.runtime`` record. A
    derived file that fails its check is removed and the record says why; the float model is
    then used. Derived files the record does not name (an earlier export's) are removed.
    """
    settings = RuntimeSettings.from_config(export_cfg)
    folder = final_path.parent
    record = runtime_record(ONNX_NAME, settings)
    if settings.graph_optimization != "none":
        record = _checked(folder / OPTIMIZED_NAME, lambda pending: _optimized(
            float_path, pending, meta, settings, parity_inputs, record))
    if settings.quantize != "none":
        record = _checked(folder / QUANTIZED_NAME, lambda pending: _quantized(
            float_path, pending, meta, settings, record))
    for unused in {OPTIMIZED_NAME, QUANTIZED_NAME} - {record["file"]}:
        (folder / unused).unlink(missing_ok=True)  # an earlier export's: nothing runs it now
    write_metadata(float_path, {**meta, "runtime": record})
    return record


class _Refused(Exception):
    """A derived file failed its check; ``record`` is the runtime record to keep instead."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record.get("optimization_refused") or record.get("quantize_refused"))
        self.record = record


def _checked(target: Path, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Build and check a derived file at a temporary path beside ``target`` and publish it only
    when it passes: a prediction running meanwhile keeps reading the earlier, checked file."""
    try:
        with atomic_path(target) as pending:
            return make(pending)
    except _Refused as refused:
        return refused.record


def _refuse(record: dict[str, Any], key: str, reason: str, **extra: Any) -> NoReturn:
    log.warning("%s", reason)
    raise _Refused({**record, key: reason, **extra})


def _optimized(float_path: Path, pending: Path, meta: dict[str, Any], settings: RuntimeSettings,
               parity_inputs: Sequence[tuple[torch.Tensor, torch.Tensor]],
               record: dict[str, Any]) -> dict[str, Any]:
    final = pending.parent / OPTIMIZED_NAME
    save_optimized(float_path, pending, settings.graph_optimization)
    inputs = [(x.numpy(), mask.numpy()) for x, mask in parity_inputs]
    parity = score_parity(cpu_session(float_path, settings.threads),
                          cpu_session(pending, settings.threads, optimize=False), inputs)
    if not parity.max_abs <= settings.parity_tol:
        _refuse(record, "optimization_refused",
                f"{final}: the {settings.graph_optimization}-optimised graph differs from "
                f"{ONNX_NAME} by {parity.max_abs:.3g} > export.parity_tol="
                f"{settings.parity_tol}; refused, prediction runs {ONNX_NAME}")
    write_metadata(pending, meta)
    return runtime_record(OPTIMIZED_NAME, settings, optimization_parity=parity.as_record())


def _quantized(float_path: Path, pending: Path, meta: dict[str, Any], settings: RuntimeSettings,
               record: dict[str, Any]) -> dict[str, Any]:
    final = pending.parent / QUANTIZED_NAME
    fallback = f"prediction runs the float model {record['file']}"
    try:
        data = fold_inputs(final.parent)
    except ValueError as error:
        _refuse(record, "quantize_refused", f"{final}: refused, {error}; {fallback}")
    calibration = data.calibration if settings.quantize == "int8_static" else None
    try:
        with tempfile.TemporaryDirectory(prefix="hawkeye-quantize-") as scratch:
            folded = Path(scratch) / "basic.onnx"
            save_optimized(float_path, folded, "basic")
            save_quantized(folded, pending, calibration)
    except Exception as error:  # the quantiser raises many types; the float model still serves
        _refuse(record, "quantize_refused",
                f"{final}: {settings.quantize} quantisation failed ({type(error).__name__}: "
                f"{str(error)[:300]}); {fallback}")
    if not quantized_nodes(pending):
        ops = STATIC_OPS if calibration is not None else DYNAMIC_OPS
        _refuse(record, "quantize_refused",
                f"{final}: {settings.quantize} found no {'/'.join(ops)} node to quantise; "
                f"{fallback}")
    try:
        parity = score_parity(cpu_session(float_path, settings.threads),
                              cpu_session(pending, settings.threads), data.validation)
    except ValueError as error:
        _refuse(record, "quantize_refused", f"{final}: refused, {error}; {fallback}")
    if not parity.accepted(settings.quantize_tol):
        _refuse(record, "quantize_refused",
                f"{final}: {settings.quantize} model refused: on {parity.rows} validation rows "
                f"{parity.level_changes} change their predicted level and the score moves "
                f"by up to {parity.max_delta:.3g} (export.quantize_tol="
                f"{settings.quantize_tol}); {fallback}",
                quantize_parity=parity.as_record())
    write_metadata(pending, meta)
    log.info("%s: %s accepted on %d validation rows (max |delta score| %.3g)", final,
             settings.quantize, parity.rows, parity.max_delta)
    earlier = {k: v for k, v in record.items() if k.startswith("optimization_")}
    return runtime_record(QUANTIZED_NAME, settings, quantize_parity=parity.as_record(), **earlier)


def runtime_session(model_path: Path, meta: dict[str, Any], threads: int
                    ) -> tuple[Path, ort.InferenceSession | None]:
    """The file prediction runs for the fold exported at ``model_path`` (``meta``: its
    metadata) and a session on it; None when it is ``model_path`` itself (whose session the
    caller holds). Raises FileNotFoundError naming the file when the recorded one is missing."""
    record = meta.get("runtime") or {}
    name = str(record.get("file", ONNX_NAME))
    if name == ONNX_NAME:
        return model_path, None
    path = model_path.parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing, though {model_path} names it as the file to "
                                "run (hawkeye.runtime); re-export the fold")
    return path, cpu_session(path, threads, optimize=bool(record.get("optimized_at_load", True)))
