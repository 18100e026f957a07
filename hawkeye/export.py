"""ONNX export of trained folds: ``model.onnx`` beside ``best.pt``, checked against PyTorch.

One exported file is enough to score a video. The graph takes the *raw* per-frame features and
does everything training did after padding: :class:`ScoringModule` applies the fold's normalisation
(:func:`hawkeye.data.apply_normalization`, the training code itself), calls the network and turns
its outputs into scores with the fold's head. Its inputs and outputs:

| name | shape, type | meaning |
|---|---|---|
| ``x`` | (batch, time, features) float32 | raw per-frame features, right padded (NaN = missing) |
| ``mask`` | (batch, time) bool | True = real frame; real frames first in each row |
| ``raw`` | (batch, out_dim) float32 | the network's output (sequence models) |
| ``expected`` | (batch,) float32 | continuous score 0..K-1 (``head.expected``), ensembled |
| ``level`` | (batch,) int64 | integer score (``head.predict``) |
| ``reconstruction_error`` | (batch,) float32 | ``lstm_ae`` only: mean squared error |
| ``anomalous`` | (batch,) bool | ``lstm_ae`` only: error above the fold's fitted threshold |

Batch and time are dynamic axes (``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim``; the
legacy exporter hard-codes a length inside ``nn.TransformerEncoder``). What the graph cannot carry
is written as ``metadata_props`` (keys ``hawkeye.*``, values JSON, read back with
:func:`read_metadata`): input feature names, the time base the inputs are resampled to
(``sample_rate_hz``, ``max_seconds``: :func:`hawkeye.timebase.resample`), the task the model rates
(``task``: name and PD4T task), the normalisation statistics (also baked in), the score levels,
head, model, fold, package version and config hash.

Every export is verified before it is published: ONNX Runtime and PyTorch run the same random
inputs of several lengths and batch sizes (:func:`parity_inputs`); the largest absolute difference
of any float output must stay within ``export.parity_tol``, or the export fails and no
``model.onnx`` is left behind (the file is written under a temporary name and renamed only after
the check). The fold's ``metrics.json`` gets ``onnx_mb`` and ``onnx_parity_max_abs``.

A family that is not exported is skipped with the family's reason. The tree models (family
``tabular``) keep no estimator after their training job (no pickle), so that job writes their
``model.onnx`` (skl2onnx, :mod:`hawkeye.tree_export`, same outputs and parity rule); here such a
fold is only checked to hold a readable file.

Command line: ``python -m hawkeye.export run_dir=runs/<run>`` exports every finished fold of every
model in the run (``export.models=[tcn]`` to restrict, ``export.force=true`` to redo).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from pickle import UnpicklingError  # what torch.load(weights_only=True) raises for a tampered file
from typing import Any

import h5py
import numpy as np
import onnxruntime as ort
import torch
from omegaconf import DictConfig, OmegaConf
from onnxscript import ir
from torch import nn

from hawkeye import __version__
from hawkeye.cli import EXPORT_HELP, hydra_app
from hawkeye.data import Normalization, apply_normalization
from hawkeye.families import FAMILIES, ExportedFamily, Family, family_of
from hawkeye.io import atomic_path, write_json_atomic
from hawkeye.models.heads import Head, build_head
from hawkeye.onnx_files import META_PREFIX, ONNX_NAME, ort_session, write_metadata
from hawkeye.onnx_graph import (
    export_graph,
    graph_file,
    kept_graph,
    save_graph,
    with_weights,
)
from hawkeye.onnx_optimize import publish_runtime_file

log = logging.getLogger("hawkeye.export")

# metrics.json status of a trained fold whose export is due (hawkeye.train); "ok" once it is done
EXPORTING = "exporting"
class ExportError(Exception):
    """A fold that cannot be exported (missing checkpoint, failed parity). Names the fold."""


# ----------------------------------------------------------------------------------------------
# The exported graph


class ScoringModule(nn.Module):
    """Raw features -> normalisation -> network -> scores: the whole of one fold's inference.

    The family (:mod:`hawkeye.families`) decides the outputs: ``(raw, expected, level)`` through
    ``head`` for a sequence network, ``(reconstruction_error, anomalous)`` with the fitted
    ``threshold`` buffer for the autoencoder.
    """

    def __init__(self, model: nn.Module, normalization: Normalization, family: str,
                 head: Head | None = None) -> None:
        super().__init__()
        kind = family_of(family)
        if not isinstance(kind, ExportedFamily):
            exported = sorted(n for n, f in FAMILIES.items() if f.exported)
            raise ValueError(f"ScoringModule exports families {exported}, got {family!r}")
        if kind.uses_head and head is None:
            raise ValueError(f"a {family} model needs its head to turn outputs into scores")
        self.model = model
        self.family: ExportedFamily = kind
        self.head = head
        # Buffers, so the statistics become graph constants and travel with the module.
        self.register_buffer("mean", torch.as_tensor(normalization.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(normalization.std, dtype=torch.float32))

    @classmethod
    def build(cls, model_cfg: Any, head_cfg: Any, family: str, n_features: int, n_levels: int,
              normalization: Normalization) -> ScoringModule:
        """A fresh network of ``model_cfg`` (weights as initialised) behind its head and
        ``normalization``: what a fold's checkpoint is loaded into, and what benchmarks time."""
        kind = family_of(family)
        if not isinstance(kind, ExportedFamily):
            raise ValueError(f"family {family!r} is not exported to ONNX")
        head = build_head(head_cfg, n_levels) if kind.uses_head else None
        return cls(kind.network(model_cfg, head, n_features, n_levels), normalization, family,
                   head)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.family.output_names(self.head)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # x: (batch, time, features) raw, mask: (batch, time)
        if x.dim() != 3 or x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"x must be (batch, time, {self.mean.shape[0]}), "
                             f"got {tuple(x.shape)}")
        norm = Normalization(self.mean, self.std)
        z = apply_normalization(x, mask, norm)  # (batch, time, features), 0 at NaN and padding
        return self.family.graph_outputs(self.model, self.head, z, mask)


@dataclass(frozen=True)
class TrainedFold:
    """A fold rebuilt from its ``best.pt``: the scoring module and what the metadata records."""

    module: ScoringModule
    meta: dict[str, Any]   # becomes metadata_props (JSON values)


def load_fold_model(fold_dir: Path) -> TrainedFold:
    """Rebuild a fold's network, head and normalisation from ``best.pt`` (and its metrics.json).

    Raises :class:`ExportError` naming the file when the checkpoint is missing or lacks a key.
    """
    ckpt_path = fold_dir / "best.pt"
    if not ckpt_path.exists():
        raise ExportError(f"{ckpt_path}: no checkpoint; train this fold first "
                          "(python -m hawkeye.train ...)")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except (UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise ExportError(f"{ckpt_path}: refused to load ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200]}); the checkpoint is damaged or "
                          "was not written by hawkeye.train: retrain the fold") from None
    required = ("model_name", "family", "model_cfg", "input_names", "normalization",
                "n_levels", "sample_rate_hz", "max_seconds", "input_features")
    kind = family_of(ckpt.get("family"), str(ckpt.get("model_name", fold_dir.parent.name)))
    if not isinstance(kind, ExportedFamily):
        raise ExportError(f"{ckpt_path}: family {kind.name} is not exported to ONNX")
    missing = [key for key in (*required, *kind.checkpoint_keys) if key not in ckpt]
    if missing:
        raise ExportError(f"{ckpt_path}: checkpoint lacks {missing}; it was written by an older "
                          "hawkeye.train: retrain the fold")
    family = str(ckpt["family"])
    input_names = [str(n) for n in ckpt["input_names"]]
    n_levels = int(ckpt["n_levels"])
    norm = Normalization(mean=torch.as_tensor(ckpt["normalization"]["mean"]).float(),
                         std=torch.as_tensor(ckpt["normalization"]["std"]).float())
    head = build_head(ckpt["head_cfg"], n_levels) if kind.uses_head else None
    try:
        network = kind.trained_network(fold_dir, ckpt, head, len(input_names), n_levels)
    except (RuntimeError, TypeError, AttributeError, KeyError) as error:
        raise ExportError(f"{ckpt_path}: its weights do not fit the model it names "
                          f"({str(error).splitlines()[0][:200]}); retrain the fold") from None
    module = ScoringModule(network, norm, family, head).eval()
    metrics = _read_metrics(fold_dir)
    meta = {
        "model": str(ckpt["model_name"]), "family": family,
        "head": module.head.name if module.head is not None else None,
        "fold": metrics.get("fold", _fold_number(fold_dir)),
        "input_names": input_names, "input_features": str(ckpt["input_features"]),
        "sample_rate_hz": float(ckpt["sample_rate_hz"]),
        "max_seconds": float(ckpt["max_seconds"]), "task": ckpt.get("task"),
        "normalization": {"mean": norm.mean.tolist(), "std": norm.std.tolist(),
                          "applied": "in_graph"},
        "n_levels": n_levels, "score_levels": list(range(n_levels)),
        "outputs": list(module.output_names),
        "threshold": module.family.threshold(module.model),
        "prepare": recorded_prepare(ckpt, fold_dir),
        "config_hash": metrics.get("config_hash"), "git_commit": metrics.get("git_commit"),
        "hawkeye_version": __version__,
    }
    return TrainedFold(module=module, meta=meta)


def recorded_prepare(ckpt: dict[str, Any], fold_dir: Path) -> dict[str, Any] | None:
    """The ``prepare`` settings that built the training store, so prediction computes the same
    features: the checkpoint's ``prepare`` entry, else the store's ``attrs["prepare"]`` (written by
    ``hawkeye.prepare``) found through the fold's config.yaml; None when neither says (a store of
    the user's own sequences)."""
    if ckpt.get("prepare") is not None:
        return dict(ckpt["prepare"])
    config = fold_dir / "config.yaml"
    if not config.exists():
        return None
    store = Path(str(OmegaConf.load(config).get("paths", {}).get("store", "")))
    if not store.is_file():
        return None
    try:
        with h5py.File(store, "r") as handle:  # root attribute "attrs": JSON (store.py schema)
            attrs = json.loads(handle.attrs.get("attrs", "{}"))
    except (OSError, json.JSONDecodeError):
        return None
    prepare = attrs.get("prepare")
    return dict(prepare) if isinstance(prepare, dict) else None


# ----------------------------------------------------------------------------------------------
# Export, metadata, parity


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``hawkeye.*`` metadata of an exported file, JSON-decoded (ONNX Runtime alone)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return metadata_of(session, path)


def metadata_of(session: ort.InferenceSession, path: str | Path) -> dict[str, Any]:
    """The ``hawkeye.*`` metadata of an open ONNX Runtime session (``path`` names it in errors)."""
    props = session.get_modelmeta().custom_metadata_map
    meta = {k[len(META_PREFIX):]: json.loads(v) for k, v in props.items()
            if k.startswith(META_PREFIX)}
    if "input_names" not in meta:
        raise ValueError(f"{path}: not a Hawkeye export (no hawkeye.input_names metadata); "
                         "export it with python -m hawkeye.export run_dir=...")
    return meta


def parity_inputs(normalization: Normalization, lengths: Sequence[int], batches: Sequence[int],
                  seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random real-shaped ``(x, mask)`` pairs: every length at every batch size.

    Features are drawn around the fold's own statistics (``mean + std * N(0, 1)``) so the
    normalised values look like training data. Row 0 of each batch is full length, later rows
    are randomly shorter and right padded with garbage (padding must not matter).
    """
    generator = torch.Generator().manual_seed(int(seed))
    mean, std = normalization.mean.float(), normalization.std.float()
    pairs = []
    for length in lengths:
        for batch in batches:
            x = torch.randn(batch, length, mean.shape[0], generator=generator) * std + mean
            kept = torch.randint(1, length + 1, (batch,), generator=generator)
            kept[0] = length
            mask = torch.arange(length).unsqueeze(0) < kept.unsqueeze(1)  # (batch, time)
            x = torch.where(mask.unsqueeze(-1), x, torch.full_like(x, 1e3))
            pairs.append((x, mask))
    return pairs


def parity_max_abs(session: ort.InferenceSession, module: ScoringModule,
                   inputs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Largest ``|ONNX Runtime - PyTorch|`` over every float output and every input pair.

    Integer and boolean outputs (``level``, ``anomalous``) are thresholds of float outputs inside
    the same graph; they are compared through those float outputs, since an exact tie can flip
    them by one rounding step without any export error.
    """
    worst = 0.0
    names = list(module.output_names)
    for x, mask in inputs:
        with torch.no_grad():
            expected = [t.numpy() for t in module(x, mask)]
        got = session.run(names, {"x": x.numpy(), "mask": mask.numpy()})
        for name, want, have in zip(names, expected, got, strict=True):
            if want.shape != have.shape:
                raise ExportError(f"output {name!r}: ONNX Runtime shape {have.shape} != "
                                  f"PyTorch {want.shape} for input {tuple(x.shape)}")
            if np.issubdtype(want.dtype, np.floating):
                diff = np.abs(want.astype(np.float64) - have.astype(np.float64))
                worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
                if np.isnan(want).any() != np.isnan(have).any():
                    return float("inf")
    return worst


def export_verified(fold_model: TrainedFold, path: Path, export_cfg: DictConfig,
                    graph_dir: Path | None = None) -> float:
    """Export, write metadata, check parity; publish ``path`` only if parity holds.

    With ``graph_dir`` (the model's folder of a run, ``export.reuse_graph``), the unoptimised graph
    of this architecture is kept there after its first export that passed parity
    (:func:`graph_file`) and the next fold of the same architecture fills it with its own weights
    instead of exporting again; a kept graph that does not fit or fails the parity check is
    replaced by a fresh export. Returns the parity's max absolute difference. On failure raises
    :class:`ExportError` and leaves ``path`` as it was (absent, or the previous file).
    """
    module = fold_model.module
    tolerance = float(export_cfg.parity_tol)
    inputs = parity_inputs(Normalization(module.mean, module.std), export_cfg.parity_lengths,
                           export_cfg.parity_batches, export_cfg.parity_seed)
    n_features = len(fold_model.meta["input_names"])
    kept = (graph_dir / graph_file(module, n_features, export_cfg) if graph_dir is not None
            else None)
    with atomic_path(path) as tmp:
        worst = math.inf
        reused = kept_graph(kept, module)
        if reused is not None:
            worst = _write_checked(reused, tmp, fold_model, export_cfg, inputs)
            if not worst <= tolerance:
                log.warning("%s: the graph kept in %s differs from PyTorch by %.3g: exporting "
                            "afresh", path, kept, worst)
        if not worst <= tolerance:
            graph = _fresh_graph(fold_model, path, export_cfg)
            unoptimised = ir.serde.serialize_model(graph)  # a copy: with_weights changes graph
            worst = _write_checked(with_weights(graph, module), tmp, fold_model, export_cfg,
                                   inputs)
            if kept is not None and worst <= tolerance:
                with atomic_path(kept) as kept_tmp:
                    kept_tmp.write_bytes(unoptimised.SerializeToString())
        if not worst <= tolerance:
            raise ExportError(
                f"{path}: ONNX Runtime differs from PyTorch by {worst:.3g} > export.parity_tol="
                f"{export_cfg.parity_tol} on lengths {list(export_cfg.parity_lengths)}; "
                "model.onnx not (re)written (report the model and torch/onnxruntime versions)")
        # the file predict runs (optimised / int8, export.graph_optimization / quantize)
        publish_runtime_file(tmp, path, fold_model.meta, export_cfg, inputs)
    return worst


def _fresh_graph(fold_model: TrainedFold, path: Path, export_cfg: DictConfig) -> ir.Model:
    """:func:`export_graph` of the fold's module; an exporter failure names ``path``."""
    try:
        return export_graph(fold_model.module, len(fold_model.meta["input_names"]),
                            export_cfg.opset, export_cfg.max_batch, export_cfg.max_frames)
    except Exception as error:  # the exporter raises many types; the fold is what matters
        raise ExportError(f"{path}: torch.onnx.export failed ({type(error).__name__}: "
                          f"{str(error)[:500]}); model.onnx not (re)written") from error


def _write_checked(graph: ir.Model, tmp: Path, fold_model: TrainedFold, export_cfg: DictConfig,
                   inputs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Write ``graph`` and the fold's metadata to ``tmp``; return its parity's max difference."""
    save_graph(graph, tmp)
    write_metadata(tmp, fold_model.meta)
    return parity_max_abs(ort_session(tmp, export_cfg.ort_threads), fold_model.module, inputs)


# ----------------------------------------------------------------------------------------------
# Folds and runs


def export_fold(fold_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    """Export one trained fold to ``<fold_dir>/model.onnx`` and record it in its metrics.json.

    Returns ``{"fold_dir", "status": "ok" | "skipped", ...}`` with ``onnx_mb`` (file size in
    MB = 10^6 bytes), ``onnx_parity_max_abs`` and ``export_seconds`` when exported, ``reason``
    when skipped. Raises :class:`ExportError` when the export or its parity check fails.
    """
    fold_dir = Path(fold_dir)
    metrics = _read_metrics(fold_dir)
    family = _fold_family(fold_dir, metrics)
    if family is not None and not family.exported:
        reason = family.export_skip_reason(str(metrics.get("model", fold_dir.parent.name)))
        log.info("%s: skipped, %s", fold_dir, reason)
        return {"fold_dir": str(fold_dir), "status": "skipped", "reason": reason}
    if family is not None and family.exported_when_fitted:
        return _fitted_export(fold_dir, metrics)
    started = time.perf_counter()
    fold_model = load_fold_model(fold_dir)
    path = fold_dir / ONNX_NAME
    worst = export_verified(fold_model, path, cfg.export,
                            fold_dir.parent if cfg.export.reuse_graph else None)
    result = {"onnx_mb": round(path.stat().st_size / 1e6, 4), "onnx_parity_max_abs": worst,
              "export_seconds": round(time.perf_counter() - started, 2)}
    if metrics:  # exported now: an earlier failure no longer holds, a trained fold is finished
        kept = {k: v for k, v in metrics.items() if k != "onnx_error"}
        done = {"status": "ok"} if metrics.get("status") == EXPORTING else {}
        write_json_atomic(fold_dir / "metrics.json", {**kept, **result, **done})
    log.info("%s: %.3f MB, parity max |diff| %.2e (%.1f s)", path, result["onnx_mb"], worst,
             result["export_seconds"])
    return {"fold_dir": str(fold_dir), "status": "ok", **result}


def _fitted_export(fold_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """A fold whose training job wrote (and parity-checked) ``model.onnx`` when it fitted the
    model (the tree family, :mod:`hawkeye.tree_export`): nothing is left to export from."""
    path = fold_dir / ONNX_NAME
    model = metrics.get("model", fold_dir.parent.name)
    if not path.exists():
        how = (f"a {model} fold (scikit-learn trees) is exported when it is fitted (the estimator "
               "is not kept): retrain the fold (launch.force=true) to export it")
        if "onnx_error" in metrics or "onnx_mb" in metrics:  # its export failed, or was lost
            raise ExportError(f"{path}: missing ({metrics.get('onnx_error', 'deleted')}); {how}")
        return {"fold_dir": str(fold_dir), "status": "skipped",
                "reason": f"trained with export.onnx=false; {how}"}
    try:
        read_metadata(path)
    except Exception as error:  # ONNX Runtime's load errors share no base class
        raise ExportError(f"{path}: not a readable Hawkeye export ({error}); retrain the fold "
                          "(launch.force=true)") from None
    if metrics.get("status") == EXPORTING:
        write_json_atomic(fold_dir / "metrics.json", {**metrics, "status": "ok"})
    return {"fold_dir": str(fold_dir), "status": "ok", "onnx_mb": metrics.get("onnx_mb", 0.0),
            "onnx_parity_max_abs": metrics.get("onnx_parity_max_abs", float("nan"))}


def export_after_training(fold_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    """The training job's hook: export the fold, never fail a finished training because of it.

    Returns the fold's (updated) metrics. A failed export is logged and recorded in metrics.json
    as ``onnx_error``; ``python -m hawkeye.export`` can retry it later.
    """
    fold_dir = Path(fold_dir)
    if cfg.export.onnx:
        try:
            export_fold(fold_dir, cfg)
        except (ExportError, RuntimeError, ValueError, OSError) as error:  # torch.onnx: Runtime
            log.error("ONNX export failed: %s", error)
            metrics = _read_metrics(fold_dir)
            write_json_atomic(fold_dir / "metrics.json", {**metrics, "onnx_error": str(error)})
    metrics = _read_metrics(fold_dir)
    if metrics.get("status") == EXPORTING:  # model.onnx or its error is recorded: finished
        metrics["status"] = "ok"
        write_json_atomic(fold_dir / "metrics.json", metrics)
    return metrics


def fold_dirs(run_dir: Path, models: Sequence[str] | None = None) -> list[Path]:
    """Every ``<run_dir>/<model>/fold_<k>`` holding a metrics.json (a finished fold), in order."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(f"run_dir {run_dir} is not a directory: pass run_dir=<a run folder>")
    found = sorted(p.parent for p in run_dir.glob("*/fold_*/metrics.json"))
    if models is not None:
        found = [p for p in found if p.parent.name in set(models)]
    return found


def export_run(run_dir: Path, cfg: DictConfig) -> list[dict[str, Any]]:
    """Export every finished fold of ``run_dir``; return one result per fold (failures included).

    A fold that already has ``model.onnx`` and ``onnx_mb`` is skipped unless ``export.force``.
    """
    models = list(cfg.export.models) if cfg.export.models is not None else None
    folds = fold_dirs(run_dir, models)
    if not folds:
        raise ExportError(f"{run_dir}: no finished fold (<model>/fold_<k>/metrics.json) to export"
                          + (f" for models {models}" if models else ""))
    results = []
    for fold in folds:
        if (not cfg.export.force and (fold / ONNX_NAME).exists()
                and "onnx_mb" in _read_metrics(fold)):
            results.append({"fold_dir": str(fold), "status": "skipped",
                            "reason": "model.onnx exists (export.force=true redoes it)"})
            continue
        try:
            results.append(export_fold(fold, cfg))
        except ExportError as error:
            log.error("%s", error)
            results.append({"fold_dir": str(fold), "status": "failed", "reason": str(error)})
    return results


@hydra_app(EXPORT_HELP)
def main(cfg: DictConfig) -> None:
    """``python -m hawkeye.export run_dir=...``: export a run's folds; exit 1 if any failed."""
    if cfg.run_dir is None:
        sys.exit("hawkeye.export: pass run_dir=<run folder> (the folder holding <model>/fold_<k>/)")
    try:
        results = export_run(Path(cfg.run_dir), cfg)
    except ExportError as error:
        sys.exit(f"hawkeye.export: {error}")
    for r in results:
        detail = (f"{r['onnx_mb']:.3f} MB  parity {r['onnx_parity_max_abs']:.1e}"
                  if r["status"] == "ok" else r["reason"])
        print(f"{r['status']:8s} {r['fold_dir']}  {detail}")
    if any(r["status"] == "failed" for r in results):
        sys.exit(1)


# ----------------------------------------------------------------------------------------------
# Helpers


def _read_metrics(fold_dir: Path) -> dict[str, Any]:
    path = Path(fold_dir) / "metrics.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: not valid JSON ({error}); rerun the fold's training") from error


def _fold_family(fold_dir: Path, metrics: dict[str, Any]) -> Family | None:
    """The fold's family: metrics.json's ``family``, else ``model.family`` of its config.yaml
    (both written by training); None when neither says (the checkpoint then decides)."""
    name = metrics.get("family")
    config = fold_dir / "config.yaml"
    if name is None and config.exists():
        name = OmegaConf.select(OmegaConf.load(config), "model.family")
    return family_of(name, fold_dir.parent.name) if name is not None else None


def _fold_number(fold_dir: Path) -> int | None:
    name = Path(fold_dir).name
    return int(name.split("_", 1)[1]) if name.startswith("fold_") and name[5:].isdigit() else None



if __name__ == "__main__":
    main()
