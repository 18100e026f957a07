"""Model families: what kind of model a config's ``family`` key names, and everything that depends
on it. Train, export and predict ask the family; none of them tests a family or model name.

- ``sequence`` (:class:`SequenceNetwork`): a network with a score head (:func:`fit_sequence`);
  ONNX outputs ``raw, expected, level`` and, for a head with probabilities (classification,
  ordinal), ``probabilities``; the ensemble combines what the head predicts
  (:func:`ensemble_levels`): the folds' class probabilities averaged and decided by the head's
  rule (soft vote / CORAL thresholds), else the folds' mean expected value rounded; scores.csv
  ``score, expected_mean, expected_std, fold_<k>_expected, fold_<k>_level``.
- ``autoencoder`` (:class:`Autoencoder`): the LSTM autoencoder on normal videos plus a fitted
  threshold (:func:`fit_autoencoder`); ONNX outputs ``reconstruction_error, anomalous``; the
  ensemble reports the mean error and how many folds flag the video; scores.csv ``error_mean,
  error_std, folds_flagging, fold_<k>_error``.
- ``tabular`` (:class:`Tabular`): tree ensembles on the summary features (:func:`fit_tabular`);
  exported by the fit itself (:mod:`hawkeye.tree_export`), then ensembled and tabulated as
  ``sequence``; prediction scores the rows of a feature table.
- ``rocket`` (:class:`Rocket`): MiniRocket + ridge on the sequences, one closed-form fit
  (:func:`fit_rocket`); exported, ensembled and tabulated as ``sequence``, its network rebuilt
  from the fold's ``minirocket.npz``.

A new family is one :class:`Family` subclass registered in :data:`FAMILIES` (and a model config
whose ``family`` names it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from hawkeye.fitting import (
    ROCKET_WEIGHTS,
    EpochHook,
    FamilyResult,
    fit_autoencoder,
    fit_rocket,
    fit_sequence,
    fit_tabular,
)
from hawkeye.fold_data import FoldData
from hawkeye.models import build_model
from hawkeye.models.heads import Head, head_class
from hawkeye.models.minirocket import MiniRocketRidge

if TYPE_CHECKING:  # types only: the record predict fills
    from hawkeye.scoring import Prediction

def ensemble_levels(head: str, probabilities: np.ndarray | None,
                    expected: np.ndarray, n_levels: int) -> np.ndarray:
    """The ensemble's levels ``(n,)`` from the folds' mean per-level ``probabilities`` ``(n, K)``
    by the head's own rule (:meth:`~hawkeye.models.heads.Head.decide`: soft vote, CORAL
    thresholds), or, for a head without probabilities (regression), from the folds' mean
    ``expected`` value rounded half-to-even and clipped to ``0..n_levels-1``. One rule for the
    collector's pooled CV and test ensemble and for prediction."""
    if probabilities is None:
        return np.clip(np.rint(expected), 0, n_levels - 1).astype(np.int64)
    return head_class(head).decide(torch.from_numpy(np.asarray(probabilities))).numpy()


# ----------------------------------------------------------------------------------------------
# The families


class Family(ABC):
    """One kind of model: how it fits a fold, what its fold records, whether it is exported."""

    name: str                          # the model config's ``family`` value
    uses_head = True                   # a score head (``head`` config) turns outputs into scores
    learns_anomalies = False           # trains on anomalous videos too (target_windows ignored)
    needs_sequences = True             # reads per-frame series (refuses a summary-only store)
    exported = False                   # training's ONNX export and prediction apply
    exported_when_fitted = False       # the fit itself writes model.onnx (nothing else could)
    scores_tables = False              # prediction reads feature-table rows, not videos

    @abstractmethod
    def fit(self, cfg: DictConfig, data: FoldData, device: torch.device, out: Path,
            meta: dict[str, Any], on_epoch: EpochHook | None = None) -> FamilyResult:
        """Fit on ``data.train`` (stopping on ``data.val``), score ``cv`` and ``test``;
        ``on_epoch(history)`` once per epoch (families with an epoch loop)."""

    def export_skip_reason(self, model: str) -> str:
        """Why a fold of this family has no ``model.onnx`` (asked only when not ``exported``)."""
        return f"{model} (family {self.name}) is not exported to ONNX"


class ExportedFamily(Family):
    """A family whose fold becomes one ONNX graph: raw features in, its ``onnx_outputs`` out."""

    exported = True
    onnx_outputs: tuple[str, ...]      # the exported graph's outputs, in order

    def output_names(self, head: Head | None) -> tuple[str, ...]:
        """The graph's outputs for a fold with ``head``, in the order :meth:`graph_outputs`
        returns them."""
        return self.onnx_outputs

    @abstractmethod
    def network(self, model_cfg: Any, head: Head | None, n_features: int,
                n_levels: int) -> nn.Module:
        """A fresh network of ``model_cfg`` (weights as initialised) for ``n_features`` inputs."""

    @abstractmethod
    def graph_outputs(self, model: nn.Module, head: Head | None, z: torch.Tensor,
                      mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The graph's outputs from normalised inputs ``z (B, T, F)`` and ``mask (B, T)``."""

    checkpoint_keys: tuple[str, ...] = ("model",)  # best.pt keys trained_network reads

    def trained_network(self, fold_dir: Path, ckpt: dict[str, Any], head: Head | None,
                        n_features: int, n_levels: int) -> nn.Module:
        """The fold's trained network: a fresh :meth:`network` loaded with best.pt's weights."""
        model = self.network(ckpt["model_cfg"], head, n_features, n_levels)
        model.load_state_dict(ckpt["model"])
        return model

    def threshold(self, model: nn.Module) -> float | None:
        """The decision threshold the graph holds (metadata ``threshold``), if any."""
        return None

    @abstractmethod
    def score_folds(self, folds: Sequence[Any], feeds: dict[str, np.ndarray],
                    score_levels: Sequence[int]) -> dict[str, Any]:
        """Run every fold's ONNX session (``.fold``, ``.session``) on one padded video; the
        per-fold values and the ensemble's ``mean``/``std`` and family-specific entries."""

    @abstractmethod
    def csv_columns(self, folds: Sequence[int]) -> tuple[list[str], list[str]]:
        """scores.csv columns of this family: (summary columns, per-fold columns)."""

    @abstractmethod
    def csv_fields(self, p: Prediction) -> dict[str, Any]:
        """The family's cells of one scores.csv row."""

    @abstractmethod
    def describe(self, p: Prediction) -> str:
        """One console line for a scored input (after its path)."""


def _spread(values: dict[int, float]) -> dict[str, float]:
    stack = np.array(list(values.values()), dtype=np.float64)
    return {"mean": float(stack.mean()), "std": float(stack.std())}


def _fold_list(p: Prediction) -> str:
    return ", ".join(f"{v:.2f}" for v in p.fold_values.values())


def csv_number(value: float | None) -> str:
    """A number as a scores.csv cell: 6 significant digits, empty when missing or not finite."""
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


class SequenceNetwork(ExportedFamily):
    """A supervised sequence network behind a score head (``attention_lstm``, ``tcn``, ...)."""

    name = "sequence"
    onnx_outputs = ("raw", "expected", "level")

    def fit(self, cfg, data, device, out, meta, on_epoch=None):
        return fit_sequence(cfg, data, device, out, meta, on_epoch)

    def network(self, model_cfg, head, n_features, n_levels):
        return build_model(model_cfg, n_features, head.out_dim(n_levels))

    def output_names(self, head):
        # the per-level probabilities the fold ensemble averages, for heads that have them
        return self.onnx_outputs + (("probabilities",) if head.has_probabilities else ())

    def graph_outputs(self, model, head, z, mask):
        raw = model(z, mask)  # (batch, out_dim)
        outputs = (raw, head.expected(raw), head.predict(raw))
        return outputs + ((head.probabilities(raw),) if head.has_probabilities else ())

    def score_folds(self, folds, feeds, score_levels):
        values, levels, probabilities = {}, {}, []
        for fold in folds:
            with_p = "probabilities" in fold.meta.get("outputs", ())  # the export's metadata
            names = ["expected", "level", *(["probabilities"] if with_p else [])]
            expected, level, *p = fold.session.run(names, feeds)
            values[fold.fold], levels[fold.fold] = float(expected[0]), int(level[0])
            probabilities += [p[0][0]] if p else []
        if probabilities and len(probabilities) != len(folds):
            raise ValueError(f"{folds[0].path}: some folds' ONNX graphs have a probabilities "
                             "output and some do not; re-export the run")
        summary = _spread(values)
        mean_p = np.mean(probabilities, axis=0)[None] if probabilities else None
        level = ensemble_levels(str(folds[0].meta.get("head")), mean_p,
                                np.array([summary["mean"]]), len(score_levels))[0]
        return {**summary, "fold_values": values, "fold_levels": levels,
                "probabilities": [] if mean_p is None else mean_p[0].tolist(),
                "score": score_levels[int(level)]}

    def csv_columns(self, folds):
        per_fold = [c for k in folds for c in (f"fold_{k}_expected", f"fold_{k}_level")]
        return ["score", "expected_mean", "expected_std"], per_fold

    def csv_fields(self, p):
        row = {"score": "" if p.score is None else p.score, "expected_mean": csv_number(p.mean),
               "expected_std": csv_number(p.std)}
        for k, v in p.fold_values.items():
            row[f"fold_{k}_expected"], row[f"fold_{k}_level"] = csv_number(v), p.fold_levels[k]
        return row

    def describe(self, p):
        return (f"predicted score {p.score} (expected {p.mean:.2f} ± {p.std:.2f} "
                f"over {len(p.fold_values)} folds: {_fold_list(p)})")


class Autoencoder(ExportedFamily):
    """The LSTM autoencoder: reconstruction error as anomaly score, a fitted threshold."""

    name = "autoencoder"
    uses_head = False
    learns_anomalies = True
    onnx_outputs = ("reconstruction_error", "anomalous")

    def fit(self, cfg, data, device, out, meta, on_epoch=None):
        return fit_autoencoder(cfg, data, device, out, meta, on_epoch)

    def network(self, model_cfg, head, n_features, n_levels):
        return build_model(model_cfg, n_features, n_features)

    def graph_outputs(self, model, head, z, mask):
        error = model.reconstruction_error(z, mask)  # (batch,)
        return error, error > model.threshold

    def threshold(self, model):
        return float(model.threshold)

    def score_folds(self, folds, feeds, score_levels):
        values, flags = {}, 0
        for fold in folds:
            error, anomalous = fold.session.run(["reconstruction_error", "anomalous"], feeds)
            values[fold.fold] = float(error[0])
            flags += int(bool(anomalous[0]))
        return {**_spread(values), "fold_values": values, "fold_levels": {}, "flagged": flags}

    def csv_columns(self, folds):
        return ["error_mean", "error_std", "folds_flagging"], [f"fold_{k}_error" for k in folds]

    def csv_fields(self, p):
        row = {"error_mean": csv_number(p.mean), "error_std": csv_number(p.std),
               "folds_flagging": "" if p.flagged is None else p.flagged}
        row.update({f"fold_{k}_error": csv_number(v) for k, v in p.fold_values.items()})
        return row

    def describe(self, p):
        return (f"reconstruction error {p.mean:.4g} ± {p.std:.2g} over "
                f"{len(p.fold_values)} folds ({_fold_list(p)}); flagged by {p.flagged} fold(s)")


class Rocket(SequenceNetwork):
    """MiniRocket with a ridge head (``minirocket``): fitted in closed form (:func:`fit_rocket`),
    then exported, ensembled and tabulated exactly like a sequence network."""

    name = "rocket"
    checkpoint_keys = ("weights_file",)

    def fit(self, cfg, data, device, out, meta, on_epoch=None):  # one fit, no epochs
        return fit_rocket(cfg, data, device, out, meta)

    def network(self, model_cfg, head, n_features, n_levels):
        raise ValueError(f"{model_cfg['name']} has no untrained network: its kernels' dilations "
                         "and biases come from the training data (a trained fold's network is "
                         f"rebuilt from its {ROCKET_WEIGHTS})")

    def trained_network(self, fold_dir, ckpt, head, n_features, n_levels):
        return MiniRocketRidge.load(fold_dir / str(ckpt["weights_file"])).scoring_network()


class Tabular(SequenceNetwork):
    """Tree ensembles on the per-video summary features (``gbm``, ``gbm_tuned``, ``forest``).

    Exported when fitted: the estimator exists only inside the training job (never pickled), so
    :func:`fit_tabular` writes ``model.onnx`` (:mod:`hawkeye.tree_export`) with the sequence
    family's outputs; ensembled and tabulated exactly as ``sequence`` folds, one feature-table
    row per input."""

    name = "tabular"
    needs_sequences = False
    exported_when_fitted = True
    scores_tables = True

    def fit(self, cfg, data, device, out, meta, on_epoch=None):  # one fit, no epochs
        return fit_tabular(cfg, data, device, out, meta)

    def network(self, model_cfg, head, n_features, n_levels):
        raise ValueError(f"{model_cfg['name']} is a scikit-learn tree model, not a network: its "
                         "fold's model.onnx is written when it is fitted (hawkeye.tree_export)")


# The model config's `family` key picks one of these.
FAMILIES: dict[str, Family] = {f.name: f for f in (SequenceNetwork(), Autoencoder(), Tabular(),
                                                    Rocket())}


def family_of(name: str | None, model: str = "") -> Family:
    """The family a config's ``family`` value names; ValueError naming the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"model {model!r} has family {name!r}; expected one of "
                         f"{sorted(FAMILIES)} (see conf/model/*.yaml)")
    return FAMILIES[str(name)]
