"""How model outputs become an ordinal severity score 0 .. K-1: regression, classification, CORAL.

A head owns everything that depends on how the score is modelled — the width of the model's output,
the loss, the integer prediction used for exact accuracy and a continuous "expected" score used for
Pearson r and ensembling — so models and the training loop stay the same for all three. ``K``
(``n_levels``) comes from the data, never from a constant. Heads are built from
``conf/head/<name>.yaml`` with :func:`build_head`.

Class imbalance: every ``loss`` takes optional ``class_weights`` ``(K,)`` and weights each sample by
``class_weights[y]``, normalised by the sum of those weights — the convention of
``F.cross_entropy``, used for all three heads so a weighted run means the same thing whichever head
it uses.

The ordinal head is CORAL (Cao, Mirjalili & Raschka 2020, "Rank consistent ordinal regression for
neural networks"): K-1 binary tasks "score > k" with logits ``g(x) + b_k`` from ONE shared weight
vector and K-1 biases (:class:`CoralLayer`). Shared weights are what makes the K-1 probabilities
rank-consistent (non-increasing in k); they live in the model's last layer, so a head also names the
``output_layer`` the model must end with (model configs read it as
``${oc.select:head.output_layer,linear}``). With ``output_layer: linear`` the same loss trains K-1
independent thresholds (no consistency guarantee, the prediction still counts thresholds passed, so
it is always a valid level).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

OUTPUT_LAYERS = ("linear", "coral")


class CoralLayer(nn.Module):
    """CORAL's output layer: ``logit_k = w . h + b_k``, one shared ``w``, K-1 biases ``b_k``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1, bias=False)
        # Start from ordered thresholds (b_0 > b_1 > ...) as the authors' coral-pytorch does.
        self.bias = nn.Parameter(
            torch.arange(out_features, 0, -1, dtype=torch.float32) / out_features
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (batch, in_features)
        return self.linear(h) + self.bias  # (batch, 1) + (K-1,) -> (batch, K-1)


def output_layer(in_features: int, out_features: int, kind: str) -> nn.Module:
    """A model's final layer: ``linear`` (``nn.Linear``) or ``coral`` (:class:`CoralLayer`)."""
    if kind == "linear":
        return nn.Linear(in_features, out_features)
    if kind == "coral":
        return CoralLayer(in_features, out_features)
    raise ValueError(f"output_layer must be one of {OUTPUT_LAYERS}, got {kind!r}")


class Head(ABC):
    """What all heads share: ``n_levels`` (K) and the checks on outputs and targets."""

    name: ClassVar[str]
    output_layer: str = "linear"
    has_probabilities: ClassVar[bool] = False  # :meth:`probabilities` gives (batch, K), not None

    def __init__(self, n_levels: int) -> None:
        if int(n_levels) < 2:
            raise ValueError(
                f"a score needs n_levels >= 2, got {n_levels}: count the levels in the data"
            )
        self.n_levels = int(n_levels)

    @abstractmethod
    def out_dim(self, n_levels: int) -> int:
        """Width of the model output for ``n_levels`` score levels."""

    @abstractmethod
    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scalar loss of ``outputs`` ``(batch, out_dim)`` against levels ``y`` ``(batch,)``."""

    @abstractmethod
    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Integer level per sample, ``(batch,)`` int64 in ``0 .. K-1``."""

    @abstractmethod
    def expected(self, outputs: torch.Tensor) -> torch.Tensor:
        """Continuous score per sample in ``[0, K-1]``, ``(batch,)``."""

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor | None:
        """Per-level probabilities ``(batch, K)`` (what a fold ensemble averages), or ``None``
        for a head that predicts a value (the ensemble then averages :meth:`expected`)."""
        return None

    @staticmethod
    def decide(probabilities: torch.Tensor) -> torch.Tensor:
        """The level ``(batch,)`` int64 that (ensemble-averaged) :meth:`probabilities` give;
        the same rule as :meth:`predict` on one model's outputs."""
        raise TypeError("this head predicts a value, not probabilities: round the expected value")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_levels={self.n_levels})"

    def _check_outputs(self, outputs: torch.Tensor) -> None:
        width = self.out_dim(self.n_levels)
        if outputs.dim() != 2 or outputs.shape[1] != width:
            raise ValueError(
                f"{self.name} head with {self.n_levels} levels expects outputs (batch, {width}), "
                f"got shape {tuple(outputs.shape)}: build the model with "
                "output_dim=head.out_dim(n_levels)"
            )

    def _check_targets(
        self, outputs: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None
    ) -> None:
        self._check_outputs(outputs)
        if class_weights is not None and class_weights.shape != (self.n_levels,):
            raise ValueError(
                f"class_weights must be ({self.n_levels},), one per level, "
                f"got {tuple(class_weights.shape)}"
            )
        if y.shape != (outputs.shape[0],) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"targets must be (batch,) = ({outputs.shape[0]},) integer levels, "
                f"got shape {tuple(y.shape)} dtype {y.dtype}"
            )
        if bool(((y < 0) | (y >= self.n_levels)).any()):
            raise ValueError(
                f"targets must lie in 0..{self.n_levels - 1}, got {y.min()}..{y.max()}"
            )

    def _weighted_mean(
        self, per_sample: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean of ``per_sample`` ``(batch,)``, each sample weighted by ``class_weights[y]``."""
        if class_weights is None:
            return per_sample.mean()
        weights = class_weights.to(per_sample)[y]  # (batch,)
        return (weights * per_sample).sum() / weights.sum()


class RegressionHead(Head):
    """One output regressed on the score; prediction = output clipped to [0, K-1] and rounded."""

    name = "regression"

    def __init__(self, n_levels: int, criterion: str, huber_delta: float) -> None:
        super().__init__(n_levels)
        if criterion not in ("mse", "huber"):
            raise ValueError(f"regression criterion must be 'mse' or 'huber', got {criterion!r}")
        self.criterion = criterion
        self.huber_delta = float(huber_delta)

    def out_dim(self, n_levels: int) -> int:
        return 1

    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """MSE or Huber loss of the raw (unclipped) output against the score."""
        self._check_targets(outputs, y, class_weights)
        # (batch,) each, in float32 also under mixed precision
        raw, target = outputs[:, 0].float(), y.float()
        if self.criterion == "mse":
            per_sample = F.mse_loss(raw, target, reduction="none")
        else:
            per_sample = F.huber_loss(raw, target, reduction="none", delta=self.huber_delta)
        return self._weighted_mean(per_sample, y, class_weights)

    def expected(self, outputs: torch.Tensor) -> torch.Tensor:
        """The output clipped to the score range ``[0, K-1]``, ``(batch,)``."""
        self._check_outputs(outputs)
        return outputs[:, 0].clamp(0, self.n_levels - 1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Nearest level (``torch.round``: halves go to the even level), ``(batch,)`` int64."""
        return torch.round(self.expected(outputs)).long()


class ClassificationHead(Head):
    """K logits, cross-entropy; prediction = arg-max, expected = probability-weighted mean level."""

    name = "classification"
    has_probabilities = True

    def __init__(self, n_levels: int, label_smoothing: float) -> None:
        super().__init__(n_levels)
        self.label_smoothing = float(label_smoothing)

    def out_dim(self, n_levels: int) -> int:
        return int(n_levels)

    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Cross-entropy, optionally class-weighted (``F.cross_entropy``'s weighted mean)."""
        self._check_targets(outputs, y, class_weights)
        outputs = outputs.float()  # losses in float32, also under mixed precision
        weight = None if class_weights is None else class_weights.to(outputs)
        return F.cross_entropy(
            outputs, y.long(), weight=weight, label_smoothing=self.label_smoothing
        )

    def expected(self, outputs: torch.Tensor) -> torch.Tensor:
        """``sum_k k * p_k``, ``(batch,)``."""
        self._check_outputs(outputs)
        levels = torch.arange(self.n_levels, device=outputs.device, dtype=outputs.dtype)
        return torch.softmax(outputs, dim=1) @ levels

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Most probable level, ``(batch,)`` int64."""
        self._check_outputs(outputs)
        return outputs.argmax(dim=1)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Softmax of the logits, ``(batch, K)``."""
        self._check_outputs(outputs)
        return torch.softmax(outputs, dim=1)

    @staticmethod
    def decide(probabilities: torch.Tensor) -> torch.Tensor:
        """Soft vote: the most probable level of the (averaged) probabilities."""
        return probabilities.argmax(dim=1)


class OrdinalHead(Head):
    """CORAL: K-1 logits of ``P(score > k)``; predict = thresholds passed, expected = their sum."""

    name = "ordinal"
    has_probabilities = True

    def __init__(self, n_levels: int, output_layer: str) -> None:
        super().__init__(n_levels)
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"output_layer must be one of {OUTPUT_LAYERS}, got {output_layer!r}")
        self.output_layer = output_layer

    def out_dim(self, n_levels: int) -> int:
        return int(n_levels) - 1

    def loss(
        self, outputs: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """CORAL loss: binary cross-entropy of each logit against "score > k", summed over k."""
        self._check_targets(outputs, y, class_weights)
        outputs = outputs.float()  # losses in float32, also under mixed precision
        thresholds = torch.arange(self.n_levels - 1, device=y.device)  # (K-1,)
        levels = (y.unsqueeze(1) > thresholds).to(outputs.dtype)  # (batch, K-1), 1 for every k < y
        per_sample = F.binary_cross_entropy_with_logits(outputs, levels, reduction="none").sum(
            dim=1
        )
        return self._weighted_mean(per_sample, y, class_weights)

    def expected(self, outputs: torch.Tensor) -> torch.Tensor:
        """``sum_k P(score > k)`` = the expected level under the cumulative model, ``(batch,)``."""
        self._check_outputs(outputs)
        return torch.sigmoid(outputs).sum(dim=1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Number of thresholds passed (``sigmoid > 0.5``, i.e. logit > 0), ``(batch,)`` int64."""
        self._check_outputs(outputs)
        return (outputs > 0).sum(dim=1)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """``P(score = k) = P(score > k-1) - P(score > k)`` (with ``P(> -1) = 1``, ``P(> K-1) =
        0``), ``(batch, K)``. A linear map of the cumulative probabilities, so averaging these is
        averaging the cumulative ones; with ``output_layer: linear`` (no rank consistency) an
        entry can be slightly negative."""
        self._check_outputs(outputs)
        cumulative = torch.sigmoid(outputs)  # (batch, K-1): P(score > k)
        ones = torch.ones_like(cumulative[:, :1])
        return torch.cat([ones, cumulative], dim=1) - torch.cat([cumulative, 0 * ones], dim=1)

    @staticmethod
    def decide(probabilities: torch.Tensor) -> torch.Tensor:
        """Thresholds passed by the (averaged) cumulative probabilities ``P(score > k) > 0.5``,
        with ``P(score > k) = sum_{j > k} p_j``."""
        above = probabilities.flip(1).cumsum(dim=1).flip(1)[:, 1:]  # (batch, K-1)
        return (above > 0.5).sum(dim=1)


class ContinuousHead(Head):
    """One output regressed on a real-valued target (e.g. fuel consumption in L/h), not a score.

    The network learns the standardised target ``(y - target_mean) / target_std`` (statistics of
    the training part, which training writes into the head config it saves with the checkpoint),
    so its output starts on the right scale whatever the target's units; ``expected`` and
    ``predict`` give the target in its own units. A continuous target has no levels: ``predict``
    equals ``expected`` (float, not int64) and ``n_levels`` is accepted for the common interface
    only. Class weights do not apply.
    """

    name = "continuous"

    def __init__(self, n_levels: int, criterion: str, huber_delta: float, target_mean: float,
                 target_std: float) -> None:
        self.n_levels = int(n_levels)  # unused: no levels (the base class would require >= 2)
        if criterion not in ("mse", "huber"):
            raise ValueError(f"continuous criterion must be 'mse' or 'huber', got {criterion!r}")
        if not float(target_std) > 0:
            raise ValueError(f"target_std must be positive, got {target_std}")
        self.criterion = criterion
        self.huber_delta = float(huber_delta)
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)

    def out_dim(self, n_levels: int) -> int:
        return 1

    def loss(self, outputs: torch.Tensor, y: torch.Tensor,
             class_weights: torch.Tensor | None = None) -> torch.Tensor:
        """MSE or Huber loss of the output against the standardised target ``y`` ``(batch,)``."""
        self._check_outputs(outputs)
        if y.shape != (outputs.shape[0],) or not y.is_floating_point():
            raise ValueError(f"targets must be (batch,) = ({outputs.shape[0]},) real values, got "
                             f"shape {tuple(y.shape)} dtype {y.dtype}")
        if class_weights is not None:
            raise ValueError("class weights need score levels; a continuous target has none "
                             "(use train.balance=none)")
        standardised = (y.to(outputs.dtype) - self.target_mean) / self.target_std  # (batch,)
        if self.criterion == "mse":
            return F.mse_loss(outputs[:, 0], standardised)
        return F.huber_loss(outputs[:, 0], standardised, delta=self.huber_delta)

    def expected(self, outputs: torch.Tensor) -> torch.Tensor:
        """The prediction in the target's units, ``(batch,)``."""
        self._check_outputs(outputs)
        return outputs[:, 0] * self.target_std + self.target_mean

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`expected` (no levels to round to), ``(batch,)`` float."""
        return self.expected(outputs)


def head_class(name: str) -> type[Head]:
    """The class of the head called ``name`` (metrics.json's ``head``): its :meth:`Head.decide`."""
    classes = {c.name: c for c in (RegressionHead, ClassificationHead, OrdinalHead,
                                   ContinuousHead)}
    if name not in classes:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(classes)}")
    return classes[name]


def build_head(head_cfg: DictConfig | dict[str, Any], n_levels: int) -> Head:
    """Instantiate ``head_cfg._target_`` for ``n_levels`` score levels (``name`` is metadata)."""
    params = (
        OmegaConf.to_container(head_cfg, resolve=True)
        if isinstance(head_cfg, DictConfig)
        else dict(head_cfg)
    )
    params.pop("name", None)
    if "_target_" not in params:
        raise ValueError(
            f"head config has no _target_ (keys: {sorted(params)}): use conf/head/<name>.yaml"
        )
    target = params.pop("_target_")
    head_class = get_class(target)
    if not (isinstance(head_class, type) and issubclass(head_class, Head)):
        raise ValueError(f"head config _target_ {target} is not a hawkeye.models.heads.Head")
    return head_class(n_levels, **params)
