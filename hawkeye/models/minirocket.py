"""MiniRocket with a ridge head: the strong non-neural sequence baseline (family ``rocket``).

MiniRocket (Dempster, Schmidt & Webb 2021, "MINIROCKET: A very fast (almost) deterministic
transform for time series classification", KDD) convolves each sequence with 84 fixed kernels of
length 9 (weights -1 and 2) at a set of dilations and pools each output with PPV, the proportion of
steps above a bias. Here:

- **fit**: aeon's maintained ``MiniRocket`` transformer (pinned in ``constraints.txt``) chooses
  the dilations, the channel combinations and the biases (quantiles of the convolution outputs of
  training sequences, seeded by ``random_state``). aeon is imported only by :meth:`fit`.
- **transform**: :class:`MiniRocketFeatures` recomputes aeon's transform from those fitted
  parameters with plain torch tensor operations (shifts, adds, comparisons), in aeon's order of
  additions, so one implementation serves training features, prediction, a reloaded model and
  ONNX export. Every operation is elementwise or an integer count, so a sequence's features do not
  depend on the batch it is in. (For one channel the features equal aeon's; for several, aeon sums
  the channels after convolving, this module before, which differs by float rounding.)
- **head**: features scaled by their training standard deviation (aeon's ``MiniRocketClassifier``
  pipeline: ``StandardScaler(with_mean=False)``), then ridge regression with the penalty chosen
  by leave-one-out error (scikit-learn's efficient LOO), predicting into the head's output space so
  the training loop scores it with the same ``head.predict`` / ``head.expected`` as the networks:

  - ``regression``: ``RidgeCV`` on the score; output ``(N, 1)``, clipped and rounded by the head.
  - ``classification``: ridge on one-vs-rest targets coded +1/-1, i.e. ``RidgeClassifierCV``'s own
    model (same targets, same LOO choice of the penalty, same decision values), run through
    ``RidgeCV`` because only that exposes the leave-one-out decision values. Output ``(N, K)``
    log-probabilities: softmax of the decision values times a temperature fitted on the
    leave-one-out decision values (temperature scaling, Guo et al. 2017), so the probabilities that
    fold ensembles average mean something; a level absent from the training data gets
    ``log(1e-7)`` (as ``gbm``).
  - ``ordinal``: ``RidgeCV`` on the score ``r``; output ``(N, K-1)`` cumulative logits
    ``s * (r - k - 1/2)``: CORAL's form with the thresholds at the half levels, so the ordinal
    head's level (thresholds passed) is ``r`` rounded and clipped, and its expected score the sum
    of the sigmoids; the slope ``s`` is fitted on the leave-one-out predictions.

Inputs are padded sequences ``x (N, L, F)`` with a mask ``(N, L)`` (real steps first, as
:func:`hawkeye.data.model_frames` writes them). Features are standardised with the training side's
per-channel mean and standard deviation (:func:`hawkeye.data.fit_normalization`). aeon 1.6's
MiniRocket takes equal lengths only, so every sequence is brought to the training side's longest
length ``length``: shorter ones are padded with zeros after standardising (the training mean,
Hawkeye's padding everywhere), longer ones keep their first ``length`` steps (as ``model_frames``
does). On PickupGestureWiimoteZ (lengths 29-361) zero padding scored 0.86-0.88 test accuracy
over seeds 0-4 with aeon's own pipeline, as the archive's equal-length files do, and padding with
each sequence's last value 0.64 (a likely cause: a flat stretch convolves to about 0 with
these kernels, whose weights sum to 0, so its PPV hangs on rounding around biases near 0).
A sequence needs at least 9 real steps (the kernels' span) and finite values at every real step;
anything else raises ``ValueError`` naming the rows.

Saved without pickle: :meth:`MiniRocketRidge.save` writes one ``.npz`` of arrays and a JSON
header, :meth:`MiniRocketRidge.load` reads it with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import metadata
from itertools import combinations
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from sklearn.linear_model import RidgeCV
from torch import nn

from hawkeye.data import Normalization, apply_normalization, fit_normalization
from hawkeye.io import atomic_path
from hawkeye.models.layers import check_sequence_inputs

OBJECTIVES = ("regression", "classification", "ordinal")
KERNEL_LENGTH = 9   # MiniRocket's kernels span 9 steps: the shortest sequence it can take
N_KERNELS = 84      # the C(9, 3) kernels: weight 2 at three positions, -1 at the other six
_LOG_EPS = math.log(1e-7)  # log-probability of a class the training data lacks (gbm's epsilon)
# Calibration scales (temperature, ordinal slope) are searched in [1e-2, 1e2] times the ridge
# output's units: wide enough for any real fold, and bounded when leave-one-out separates perfectly.
_CALIBRATION_BOUNDS = (math.log(1e-2), math.log(1e2))
_BIAS_GROUP = 4  # biases compared at once (memory: batch x 84 x 4 x length booleans)
FORMAT = "hawkeye.minirocket"
FORMAT_VERSION = 1
PARAMETER_NAMES = ("n_channels_per_combination", "channel_indices", "dilations",
                   "n_features_per_dilation", "biases")  # aeon's MiniRocket.parameters, in order


@dataclass(frozen=True)
class MiniRocketParameters:
    """aeon's fitted ``MiniRocket.parameters``: which channels each (dilation, kernel) pair sums,
    the dilations, how many biases (features) each dilation has, and the biases."""

    n_channels_per_combination: np.ndarray  # (n_dilations * 84,) int32
    channel_indices: np.ndarray             # (sum of the above,) int32, combination by combination
    dilations: np.ndarray                   # (n_dilations,) int32
    n_features_per_dilation: np.ndarray     # (n_dilations,) int32, features per kernel
    biases: np.ndarray                      # (84 * sum(n_features_per_dilation),) float32

    @classmethod
    def from_aeon(cls, parameters: tuple[np.ndarray, ...]) -> MiniRocketParameters:
        return cls(*(np.asarray(p) for p in parameters))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in PARAMETER_NAMES}


class MiniRocketFeatures(nn.Module):
    """aeon's MiniRocket transform from its fitted parameters: normalised ``(batch, time, F)`` and
    a mask -> PPV features ``(batch, n_features)`` float32 (module doc: how it matches aeon)."""

    def __init__(self, parameters: MiniRocketParameters, n_channels: int, length: int) -> None:
        super().__init__()
        if length < KERNEL_LENGTH:
            raise ValueError(f"MiniRocket needs a length of at least {KERNEL_LENGTH} steps, "
                             f"got {length}")
        self.parameters_ = parameters
        self.n_channels, self.length = int(n_channels), int(length)
        self.n_features = int(N_KERNELS * parameters.n_features_per_dilation.sum())
        if parameters.biases.shape != (self.n_features,):
            raise ValueError(f"biases must be ({self.n_features},), got {parameters.biases.shape}")
        self.dilations = [int(d) for d in parameters.dilations]
        self._register_dilation_buffers(parameters)

    def _register_dilation_buffers(self, parameters: MiniRocketParameters) -> None:
        """Per dilation: the channels each kernel sums (padded with the index of an all-zero
        channel; one row when every kernel sums the same channels, as with one input channel),
        where each kernel's three weight-2 taps sit among the summed series' taps, the kernels'
        biases ``(84, n)`` and which steps each kernel's PPV counts."""
        combos = np.split(parameters.channel_indices,
                          np.cumsum(parameters.n_channels_per_combination)[:-1])
        biases = np.split(parameters.biases,
                          np.cumsum(N_KERNELS * parameters.n_features_per_dilation)[:-1])
        # (84, 3): each kernel's weight-2 taps, ascending, in aeon's (combinations) order
        positions = np.array(list(combinations(range(KERNEL_LENGTH), 3)))
        self.register_buffer("gamma_taps", torch.from_numpy(positions.T.copy()))  # (3, 84)
        steps = np.arange(self.length)
        for j, dilation in enumerate(self.dilations):
            these = combos[j * N_KERNELS:(j + 1) * N_KERNELS]
            index = np.full((N_KERNELS, max(len(c) for c in these)), self.n_channels, np.int64)
            for k, channels in enumerate(these):
                index[k, :len(channels)] = channels
            shared = bool((index == index[0]).all())
            rows = np.zeros(N_KERNELS, np.int64) if shared else np.arange(N_KERNELS)
            # aeon: kernel k at dilation j counts every step when (j + k) is even, else only the
            # steps whose window lies inside the sequence (padding 4 * dilation on each side)
            trimmed = (j + np.arange(N_KERNELS)) % 2 == 1
            pad = (KERNEL_LENGTH - 1) * dilation // 2
            inside = (steps >= pad) & (steps < self.length - pad)
            counted = np.where(trimmed[:, None], inside[None, :], True)  # (84, length)
            self.register_buffer(f"channels_{j}", torch.from_numpy(index[:1] if shared else index))
            self.register_buffer(f"rows_{j}", torch.from_numpy(rows))  # (84,)
            self.register_buffer(f"biases_{j}", torch.from_numpy(
                biases[j].reshape(N_KERNELS, -1, 1).astype(np.float32)))  # (84, n, 1)
            self.register_buffer(f"counted_{j}", torch.from_numpy(counted))
            self.register_buffer(f"n_counted_{j}", torch.from_numpy(
                counted.sum(axis=1).astype(np.float64)[:, None]))  # (84, 1)

    @staticmethod
    def _sum_channels(series: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``(batch, R, length)``: per row of ``index``, the sum of its channels in aeon's order."""
        total = series[:, index[:, 0]]
        for slot in range(1, index.shape[1]):
            total = total + series[:, index[:, slot]]
        return total

    def _convolve(self, summed: torch.Tensor, dilation: int, rows: torch.Tensor) -> torch.Tensor:
        """Each kernel's convolution ``(batch, 84, length)``, zero outside the sequence, with
        aeon's float additions in aeon's order: ``-x`` at the centre tap plus ``-x`` at taps 0-3
        and 5-8 (summed, then negated: rounding is symmetric, so the same value), then ``3x`` at
        the kernel's three weight-2 taps in ascending order (-1 * 6 + 2 * 3 = 0)."""
        pad = (KERNEL_LENGTH - 1) * dilation // 2
        # (batch, R, 9, length): tap i of step t reads x[t + (i - 4) * dilation], zero outside
        taps = F.pad(summed, (pad, pad)).unfold(2, self.length, dilation)
        alpha = taps[:, :, 4]
        for i in (0, 1, 2, 3, 5, 6, 7, 8):
            alpha = alpha + taps[:, :, i]
        out = (-alpha)[:, rows]  # (batch, 84, length)
        for p in range(3):
            out = out + 3 * taps[:, rows, self.gamma_taps[p]]
        return out

    @staticmethod
    def _count_above(conv: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
        """Steps of ``conv (batch, 84, length)`` above each bias ``(84, n, 1)``: ``(batch, 84,
        n)``, a few biases at a time to bound the ``(batch, 84, n, length)`` comparison."""
        groups = [(conv.unsqueeze(2) > biases[:, i:i + _BIAS_GROUP]).float().sum(dim=-1)
                  for i in range(0, biases.shape[1], _BIAS_GROUP)]
        return torch.cat(groups, dim=2)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # z: (batch, time, F) normalised, mask: (batch, time) -> (batch, n_features)
        check_sequence_inputs(z, mask, self.n_channels)
        z = torch.where(mask.unsqueeze(-1), z, torch.zeros_like(z)).float()
        # (batch, time, F) -> fixed (batch, length, F): pad with zeros, keep the first steps
        z = F.pad(z, (0, 0, 0, self.length))[:, :self.length]
        series = F.pad(z.transpose(1, 2), (0, 0, 0, 1))  # (batch, F + 1, length); last row zero
        parts = []
        for j, dilation in enumerate(self.dilations):
            summed = self._sum_channels(series, getattr(self, f"channels_{j}"))  # (b, R, len)
            conv = self._convolve(summed, dilation, getattr(self, f"rows_{j}"))  # (b, 84, len)
            # steps a kernel does not count can never be above a bias
            conv = torch.where(getattr(self, f"counted_{j}"), conv, -torch.inf)
            counts = self._count_above(conv, getattr(self, f"biases_{j}"))       # (b, 84, n)
            ppv = (counts.double() / getattr(self, f"n_counted_{j}")).float()   # aeon: mean
            parts.append(ppv.flatten(1))                                        # (b, 84 * n)
        return torch.cat(parts, dim=1)


class RidgeOutputs(nn.Module):
    """The fitted ridge head: PPV features ``(batch, n_features)`` -> raw outputs in the Hawkeye
    head's space (module doc). Runs in float64: a sum of ~10,000 weighted features then carries
    no float32 error into the outputs."""

    def __init__(self, feature_scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 objective: str, output_dim: int, calibration: float,
                 class_index: np.ndarray) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective, self.output_dim = objective, int(output_dim)
        self.calibration = float(calibration)  # temperature (classes) or slope (ordinal)
        self.register_buffer("feature_scale", torch.as_tensor(feature_scale, dtype=torch.float64))
        self.register_buffer("coef", torch.as_tensor(coef, dtype=torch.float64))  # (out, features)
        self.register_buffer("intercept", torch.as_tensor(intercept, dtype=torch.float64))
        # classification: each level's column among [levels seen in training..., absent constant]
        self.register_buffer("class_index", torch.as_tensor(class_index, dtype=torch.int64))
        # ordinal: the cumulative thresholds k + 1/2, k = 0 .. K-2
        self.register_buffer("thresholds", torch.arange(self.output_dim, dtype=torch.float64) + 0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: (batch, n_features) -> (batch, out_dim)
        decision = (features.double() / self.feature_scale) @ self.coef.T + self.intercept
        if self.objective == "regression":
            return decision.float()                                           # (batch, 1)
        if self.objective == "ordinal":
            return (self.calibration * (decision - self.thresholds)).float()  # (batch, K-1)
        log_p = torch.log_softmax(self.calibration * decision, dim=1).clamp(min=_LOG_EPS)
        absent = torch.full_like(log_p[:, :1], _LOG_EPS)
        return torch.cat([log_p, absent], dim=1)[:, self.class_index].float()  # (batch, K)


class MiniRocketNetwork(nn.Module):
    """Fitted features and ridge head as one network: normalised ``(batch, time, F)`` and a mask ->
    raw outputs. It takes what every Hawkeye network takes, so ``hawkeye.export.ScoringModule``
    can put it behind the fold's normalisation and head for ONNX export."""

    def __init__(self, features: MiniRocketFeatures, head: RidgeOutputs) -> None:
        super().__init__()
        self.features, self.head = features, head

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # z: (batch, time, F) normalised, mask: (batch, time) -> (batch, out_dim)
        return self.head(self.features(z, mask))


class StandardisedNetwork(nn.Module):
    """A fitted :class:`MiniRocketNetwork` behind the model's own standardisation: raw ``(batch,
    time, F)`` inputs (as :meth:`MiniRocketRidge.predict` takes them) and a mask -> raw outputs,
    the same numbers as ``predict``. What a trained fold exports: Hawkeye's fold normalisation
    goes first, this model's standardisation of those inputs second (buffers, so ONNX export
    makes both constants)."""

    def __init__(self, network: MiniRocketNetwork, normalization: Normalization) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.as_tensor(normalization.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(normalization.std, dtype=torch.float32))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (batch, time, F), mask: (batch, time) -> (batch, out_dim)
        z = apply_normalization(x, mask, Normalization(self.mean, self.std))
        return self.network(z, mask)


class MiniRocketRidge:
    """MiniRocket + ridge as a Hawkeye model: ``fit(x, mask, y)``, then ``predict(x, mask)`` ->
    raw outputs in the head's space, ``save(path)`` / ``MiniRocketRidge.load(path)``."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        *,
        objective: str,
        n_kernels: int,
        max_dilations_per_kernel: int,
        alpha_min: float,
        alpha_max: float,
        n_alphas: int,
        random_state: int | None,
        batch_size: int,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"minirocket objective must be one of {OBJECTIVES} (it follows the "
                             f"head), got {objective!r}")
        smallest = {"regression": 1, "classification": 2, "ordinal": 1}[objective]
        if (objective == "regression" and output_dim != 1) or output_dim < smallest:
            raise ValueError(f"minirocket {objective} cannot predict output_dim={output_dim}: "
                             "build it with output_dim=head.out_dim(n_levels)")
        if not 0 < alpha_min <= alpha_max or n_alphas < 1 or batch_size < 1:
            raise ValueError(f"need 0 < alpha_min <= alpha_max, n_alphas >= 1, batch_size >= 1; "
                             f"got {alpha_min}, {alpha_max}, {n_alphas}, {batch_size}")
        self.input_dim, self.output_dim, self.objective = int(input_dim), int(output_dim), objective
        self.hyperparameters: dict[str, Any] = dict(
            n_kernels=int(n_kernels), max_dilations_per_kernel=int(max_dilations_per_kernel),
            alpha_min=float(alpha_min), alpha_max=float(alpha_max), n_alphas=int(n_alphas),
            random_state=random_state, batch_size=int(batch_size))
        self.normalization: Normalization | None = None
        self.network: MiniRocketNetwork | None = None
        self.alpha: float | None = None  # the ridge penalty leave-one-out chose

    @property
    def n_levels(self) -> int | None:
        """Score levels K of the head (None for regression, whose output has no width in K)."""
        return {"regression": None, "classification": self.output_dim,
                "ordinal": self.output_dim + 1}[self.objective]

    @property
    def n_parameters(self) -> int:
        """Fitted ridge weights and intercepts (0 before ``fit``); the transform learns none."""
        if self.network is None:
            return 0
        return int(self.network.head.coef.numel() + self.network.head.intercept.numel())

    def fit(self, x: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
            y: np.ndarray | torch.Tensor, sample_weight: np.ndarray | None = None) -> Self:
        """Fit on raw padded sequences ``x (N, L, F)``, ``mask (N, L)`` and targets ``y (N,)``:
        integer levels ``0..K-1`` (classification, ordinal) or scores (regression)."""
        x_t, mask_t = checked_sequences(x, mask, self.input_dim)
        if len(x_t) < 2:
            raise ValueError(f"minirocket needs at least 2 training sequences (its penalty is "
                             f"chosen by leave-one-out), got {len(x_t)}")
        y = self._checked_targets(y, len(x_t))
        weights = _checked_weights(sample_weight, len(x_t))
        normalization = fit_normalization(x_t, mask_t)
        z = apply_normalization(x_t, mask_t, normalization)  # (N, L, F), 0 at padding
        length = int(mask_t.sum(dim=1).max())
        transform = MiniRocketFeatures(self._fit_parameters(z[:, :length].numpy()),
                                       self.input_dim, length)
        features = self._batched(transform, z, mask_t).numpy()  # (N, n_features)
        self.network = MiniRocketNetwork(transform, self._fit_head(features, y, weights))
        self.normalization = normalization
        return self

    def predict(self, x: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> np.ndarray:
        """Raw outputs in the head's output space, ``(N, output_dim)`` float32 (module doc)."""
        if self.network is None or self.normalization is None:
            raise ValueError("minirocket is not fitted: call fit(x, mask, y) or load(path) first")
        x_t, mask_t = checked_sequences(x, mask, self.input_dim)
        z = apply_normalization(x_t, mask_t, self.normalization)
        return self._batched(self.network, z, mask_t).numpy()

    def scoring_network(self) -> StandardisedNetwork:
        """The fitted model as one exportable ``nn.Module`` on raw inputs (= ``predict``)."""
        if self.network is None or self.normalization is None:
            raise ValueError("minirocket is not fitted: call fit(x, mask, y) or load(path) first")
        return StandardisedNetwork(self.network, self.normalization).eval()

    def _batched(self, module: nn.Module, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``module`` over ``batch_size`` sequences at a time (bounds memory; every operation is
        per sequence, so the result does not depend on the batch size)."""
        size = self.hyperparameters["batch_size"]
        with torch.no_grad():
            return torch.cat([module(z[i:i + size], mask[i:i + size])
                              for i in range(0, len(z), size)])

    def _fit_parameters(self, z: np.ndarray) -> MiniRocketParameters:
        """aeon's MiniRocket fitted on equal-length ``z (N, length, F)``; the global NumPy random
        state, which aeon reseeds, is restored afterwards."""
        from aeon.transformations.collection.convolution_based import MiniRocket  # fit only

        hyper = self.hyperparameters
        state = np.random.get_state()
        try:
            rocket = MiniRocket(n_kernels=hyper["n_kernels"],
                                max_dilations_per_kernel=hyper["max_dilations_per_kernel"],
                                n_jobs=1, random_state=hyper["random_state"])
            rocket.fit(np.ascontiguousarray(z.transpose(0, 2, 1), dtype=np.float32))
        finally:
            np.random.set_state(state)
        return MiniRocketParameters.from_aeon(rocket.parameters)

    def _fit_head(self, features: np.ndarray, y: np.ndarray,
                  weights: np.ndarray | None) -> RidgeOutputs:
        """Scale the features, fit ridge with leave-one-out penalty choice, calibrate on the
        leave-one-out outputs (module doc)."""
        from sklearn.preprocessing import StandardScaler

        scale = StandardScaler(with_mean=False).fit(features).scale_
        design = features.astype(np.float64) / scale
        hyper = self.hyperparameters
        alphas = np.geomspace(hyper["alpha_min"], hyper["alpha_max"], hyper["n_alphas"])
        if self.objective == "classification":
            present = np.unique(y)
            if len(present) < 2:
                raise ValueError(f"minirocket classification needs at least 2 levels in the "
                                 f"training targets, got only {present.tolist()}")
            labels = np.searchsorted(present, y)
            targets = np.where(labels[:, None] == np.arange(len(present)), 1.0, -1.0)
        else:
            targets = y.astype(np.float64)
        # The default scoring (mean squared leave-one-out error) under its scorer's name: the same
        # penalty is chosen, and cv_results_ then holds the leave-one-out predictions themselves.
        ridge = RidgeCV(alphas=alphas, scoring="neg_mean_squared_error", store_cv_results=True)
        ridge.fit(design, targets, sample_weight=weights)
        self.alpha = float(ridge.alpha_)
        loo = ridge.cv_results_[..., int(np.argmin(np.abs(alphas - ridge.alpha_)))]
        coef = np.atleast_2d(ridge.coef_)
        intercept = np.atleast_1d(ridge.intercept_).astype(np.float64)
        class_index = np.zeros(0, np.int64)
        calibration = 1.0
        if self.objective == "classification":
            calibration = fit_temperature(loo, labels, weights)
            where = {int(level): i for i, level in enumerate(present)}
            class_index = np.array([where.get(k, len(present)) for k in range(self.output_dim)])
        elif self.objective == "ordinal":
            calibration = fit_ordinal_slope(loo, y, self.output_dim + 1, weights)
        return RidgeOutputs(scale, coef, intercept, self.objective, self.output_dim, calibration,
                            class_index)

    def _checked_targets(self, y: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"targets must be ({n},), one per sequence, got shape {y.shape}")
        if self.objective == "regression":
            if not (np.issubdtype(y.dtype, np.number) and np.isfinite(y).all()):
                raise ValueError(f"regression targets must be finite numbers, got dtype "
                                 f"{y.dtype} with {np.count_nonzero(~np.isfinite(y))} non-finite")
            return y.astype(np.float64)
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{self.objective} targets must be integer levels, got dtype "
                             f"{y.dtype}")
        if y.min() < 0 or y.max() >= self.n_levels:
            raise ValueError(f"targets must lie in 0..{self.n_levels - 1}, got "
                             f"{y.min()}..{y.max()}")
        return y.astype(np.int64)

    # -- persistence: arrays and a JSON header in one .npz, read back without pickle ----------

    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` (``.npz``, atomically)."""
        if self.network is None or self.normalization is None or self.alpha is None:
            raise ValueError(f"cannot save {path}: minirocket is not fitted")
        features, head = self.network.features, self.network.head
        header = {"format": FORMAT, "version": FORMAT_VERSION, "input_dim": self.input_dim,
                  "output_dim": self.output_dim, "objective": self.objective,
                  "hyperparameters": self.hyperparameters, "length": features.length,
                  "alpha": self.alpha, "calibration": head.calibration,
                  "aeon_version": _aeon_version()}
        arrays = {**features.parameters_.arrays(),
                  "normalization_mean": self.normalization.mean.numpy(),
                  "normalization_std": self.normalization.std.numpy(),
                  **{name: getattr(head, name).numpy()
                     for name in ("feature_scale", "coef", "intercept", "class_index")}}
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MiniRocketRidge:
        """A model written by :meth:`save` (``ValueError`` naming ``path`` if it is not one)."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            header = json.loads(str(arrays.pop("header")))
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path}: not a saved minirocket model ({error})") from error
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format {header.get('format')!r} version "
                             f"{header.get('version')!r}, expected {FORMAT!r} {FORMAT_VERSION}")
        needed = (*PARAMETER_NAMES, "normalization_mean", "normalization_std", "feature_scale",
                  "coef", "intercept", "class_index")
        missing = [name for name in needed if name not in arrays]
        if missing:
            raise ValueError(f"{path}: saved minirocket model lacks arrays {missing}")
        model = cls(header["input_dim"], header["output_dim"], objective=header["objective"],
                    **header["hyperparameters"])
        parameters = MiniRocketParameters(*(arrays[name] for name in PARAMETER_NAMES))
        head = RidgeOutputs(arrays["feature_scale"], arrays["coef"], arrays["intercept"],
                            model.objective, model.output_dim, header["calibration"],
                            arrays["class_index"])
        model.network = MiniRocketNetwork(
            MiniRocketFeatures(parameters, model.input_dim, header["length"]), head)
        model.normalization = Normalization(torch.from_numpy(arrays["normalization_mean"]),
                                            torch.from_numpy(arrays["normalization_std"]))
        model.alpha = float(header["alpha"])
        return model


def checked_sequences(x: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
                      input_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (N, L, F)`` float32 and ``mask (N, L)`` bool as tensors, or ``ValueError`` naming the
    problem: a shape, a mask that is not real-steps-first, a sequence shorter than MiniRocket's 9
    steps, a NaN/inf at a real step (MiniRocket has no notion of a missing value)."""
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    mask_t = torch.as_tensor(np.asarray(mask))
    if len(x_t) == 0:
        raise ValueError(f"no sequences: x has shape {tuple(x_t.shape)}")
    check_sequence_inputs(x_t, mask_t, input_dim)
    lengths = mask_t.sum(dim=1)
    short = torch.nonzero(lengths < KERNEL_LENGTH).flatten().tolist()
    if short:
        raise ValueError(
            f"MiniRocket needs at least {KERNEL_LENGTH} real steps per sequence (its kernels span "
            f"{KERNEL_LENGTH}): {len(short)} of {len(x_t)} sequences are shorter (rows "
            f"{short[:10]}, lengths {lengths[short[:10]].tolist()}); drop them or use longer "
            f"windows")
    bad = ~torch.isfinite(x_t) & mask_t.unsqueeze(-1)  # (N, L, F), padding does not count
    if bool(bad.any()):
        row, step, channel = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(
            f"x {tuple(x_t.shape)} has NaN/inf at real steps of {int(bad.any(dim=(1, 2)).sum())} "
            f"sequences (first: row {row}, step {step}, channel {channel}): MiniRocket takes no "
            "missing values; fill the gaps or choose NaN-free inputs (task.input_features=series)")
    return x_t, mask_t


def _checked_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n,) or not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"sample_weight must be ({n},) finite and >= 0, got shape "
                         f"{weights.shape}")
    return weights


def fit_temperature(decision: np.ndarray, labels: np.ndarray,
                    weights: np.ndarray | None = None) -> float:
    """Temperature ``T`` minimising the (weighted) cross-entropy of ``softmax(T * decision)``
    ``(N, C)`` against class indices ``labels (N,)``, searched in log space within bounds."""
    rows = np.arange(len(labels))

    def loss(log_t: float) -> float:
        logits = math.exp(log_t) * decision
        log_p = logits - logsumexp(logits, axis=1, keepdims=True)
        return -float(np.average(log_p[rows, labels], weights=weights))

    best = minimize_scalar(loss, bounds=_CALIBRATION_BOUNDS, method="bounded")
    return math.exp(float(best.x))


def fit_ordinal_slope(scores: np.ndarray, levels: np.ndarray, n_levels: int,
                      weights: np.ndarray | None = None) -> float:
    """Slope ``s`` minimising the (weighted) CORAL loss of the cumulative logits
    ``s * (score - k - 1/2)`` ``(N, K-1)`` against integer ``levels (N,)``."""
    thresholds = np.arange(n_levels - 1) + 0.5
    above = levels[:, None] > np.arange(n_levels - 1)  # (N, K-1): "level > k"

    def loss(log_s: float) -> float:
        logits = math.exp(log_s) * (scores[:, None] - thresholds)
        bce = np.logaddexp(0.0, logits) - above * logits  # binary cross-entropy with logits
        return float(np.average(bce.sum(axis=1), weights=weights))

    best = minimize_scalar(loss, bounds=_CALIBRATION_BOUNDS, method="bounded")
    return math.exp(float(best.x))


def _aeon_version() -> str | None:
    try:
        return metadata.version("aeon")
    except metadata.PackageNotFoundError:
        return None
