"""From a loaded HDF5 store to in-memory tensors: feature choice, padding, normalisation, batches.

A whole split fits in memory (PD4T: 806 videos x <=256 steps x 73 channels is ~60 MB), so there is
no ``Dataset``/``DataLoader`` with a Python call per sample: sequences are resampled by time to the
task's rate (:mod:`hawkeye.timebase`: ``task.sample_rate_hz``, the first ``task.max_seconds``) and
padded once into one ``(videos, time, features)`` tensor with a boolean mask, and a batch is one
index tensor into it.

Per-frame inputs (``task.input_features``):
- ``series``: the engineered per-frame kinematic series of the store (``StoreData.series``);
- ``landmarks``: the K x 3 MediaPipe landmarks flattened to 3K channels (hand: 21 x 3 = 63, body
  pose: 33 x 3 = 99);
- ``both``: the two concatenated.

Missing values (a frame without a hand is NaN in the landmarks) are left out of the normalisation
statistics and set to 0 after normalising, i.e. to the training mean of that channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from hawkeye.timebase import TimeBase, known_times, resample

if TYPE_CHECKING:
    from hawkeye.store import StoreData

FEATURE_SETS = ("series", "landmarks", "both")


def channel_names(store: StoreData, feature_set: str) -> list[str]:
    """Names of the per-frame input channels of ``feature_set``, in column order."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"task.input_features must be one of {FEATURE_SETS}, got {feature_set!r}")
    names = []
    if feature_set in ("series", "both"):
        names += [str(n) for n in store.series_names]
    if feature_set in ("landmarks", "both"):
        names += [f"lm{j}_{axis}" for j in range(_landmark_count(store)) for axis in "xyz"]
    return names


def frame_features(store: StoreData, feature_set: str) -> np.ndarray:
    """The per-frame input matrix ``(sum T, F)`` float32, columns as :func:`channel_names`."""
    channel_names(store, feature_set)  # validates the choice
    parts = []
    if feature_set in ("series", "both"):
        parts.append(np.asarray(store.series, dtype=np.float32))
    if feature_set in ("landmarks", "both"):
        if store.landmarks is None:
            raise ValueError(f"task.input_features={feature_set!r} needs landmarks, but the "
                             "store has none: prepare it with landmarks kept, or use "
                             "task.input_features=series")
        points = _landmark_count(store)
        parts.append(np.asarray(store.landmarks, dtype=np.float32).reshape(-1, points * 3))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def _landmark_count(store: StoreData) -> int:
    """Points per frame of the store's landmarks: 21 (hand) when it has none to tell (the
    names are only reported then, frame_features refuses the missing landmarks)."""
    return 21 if store.landmarks is None else int(store.landmarks.shape[1])


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation, fitted on a training side only."""

    mean: torch.Tensor  # (F,)
    std: torch.Tensor   # (F,)


def fit_normalization(x: torch.Tensor, mask: torch.Tensor) -> Normalization:
    """Mean/std of each channel over real (masked-in), finite frames of ``x (N, T, F)``.

    Padded steps and NaN values do not count. A channel with no finite value gets mean 0, std 1;
    a constant channel gets std 1 (it then normalises to 0 rather than to inf).
    """
    if x.ndim != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f"x {tuple(x.shape)} must be (N, T, F) and mask {tuple(mask.shape)} "
                         "(N, T)")
    valid = mask.unsqueeze(-1) & torch.isfinite(x)                          # (N, T, F)
    count = valid.sum(dim=(0, 1)).to(torch.float64)                         # (F,)
    values = torch.where(valid, x, 0.0).to(torch.float64)
    mean = values.sum(dim=(0, 1)) / count.clamp(min=1)
    var = (torch.where(valid, values - mean, 0.0) ** 2).sum(dim=(0, 1)) / count.clamp(min=1)
    std = var.sqrt()
    std = torch.where((count > 0) & (std > 1e-8), std, torch.ones_like(std))
    return Normalization(mean=mean.float(), std=std.float())


def apply_normalization(x: torch.Tensor, mask: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """``(x - mean) / std`` with NaN (missing) and padded steps set to 0."""
    z = (x - norm.mean) / norm.std
    z = torch.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    return z * mask.unsqueeze(-1)


@dataclass(frozen=True)
class SequenceSet:
    """A set of videos as tensors: padded inputs, mask, scores, summary features and their keys."""

    x: torch.Tensor        # (N, L, F) float32
    mask: torch.Tensor     # (N, L) bool, True = real frame
    y: torch.Tensor        # (N,) int64 score (folds stratify by it; class weights count it)
    summary: torch.Tensor  # (N, S) float32 per-video clinical summary features
    ids: np.ndarray        # (N,) str
    subjects: np.ndarray   # (N,) str
    target: torch.Tensor   # (N,) float32 real-valued target (task.target; the score when "score")
    anomalous: torch.Tensor  # (N,) bool, True = labelled anomalous (see anomaly_flags)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray | torch.Tensor) -> SequenceSet:
        """The videos at ``index`` (integer positions or a boolean mask)."""
        index = torch.as_tensor(np.asarray(index))
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        where = index.numpy()
        return SequenceSet(self.x[index], self.mask[index], self.y[index], self.summary[index],
                           self.ids[where], self.subjects[where], self.target[index],
                           self.anomalous[index])

    def to(self, device: torch.device | str) -> SequenceSet:
        """The same set with its tensors on ``device`` (ids stay numpy)."""
        return replace(self, x=self.x.to(device), mask=self.mask.to(device), y=self.y.to(device),
                       summary=self.summary.to(device), target=self.target.to(device),
                       anomalous=self.anomalous.to(device))

    def normalized(self, norm: Normalization) -> SequenceSet:
        """The same set with ``x`` normalised by ``norm`` (see :func:`apply_normalization`)."""
        on_device = Normalization(norm.mean.to(self.x.device), norm.std.to(self.x.device))
        return replace(self, x=apply_normalization(self.x, self.mask, on_device))


def concat_sets(parts: Sequence[SequenceSet]) -> SequenceSet:
    """The videos of ``parts`` one after another (parts taken from one padded set, so their
    tensors have the same width)."""
    if not parts:
        raise ValueError("concat_sets needs at least one part")
    columns = {}
    for f in fields(SequenceSet):
        values = [getattr(part, f.name) for part in parts]
        columns[f.name] = (torch.cat(values) if isinstance(values[0], torch.Tensor)
                           else np.concatenate(values))
    return SequenceSet(**columns)


def model_frames(store: StoreData, feature_set: str,
                 base: TimeBase) -> tuple[np.ndarray, np.ndarray]:
    """``x (N, L, F)`` and ``mask (N, L)``: the per-frame inputs of ``store`` resampled by time.

    The one path from stored frames to model steps (training, export checks and prediction):
    every video at ``base.sample_rate_hz`` for its first ``base.max_seconds``, from the stored
    frame times; a video of unknown timing (NaN fps, no timestamps) is taken as sampled at the
    model rate already.
    """
    times = known_times(store.frame_times(), store.offsets, base.sample_rate_hz)
    return resample(frame_features(store, feature_set), store.offsets, times, base)


def sequence_set(store: StoreData, feature_set: str, base: TimeBase, target: str = "score",
                 anomalous: np.ndarray | None = None) -> SequenceSet:
    """All videos of ``store`` as one (unnormalised) :class:`SequenceSet` (:func:`model_frames`).

    ``target`` names what supervised models learn: ``score`` (the integer score) or one of the
    store's real-valued targets (``StoreData.targets``, e.g. telemetry's ``fuel_consumption``).
    ``anomalous`` flags the anomalous videos (:func:`anomaly_flags`; None = none labelled).
    """
    if target == "score":
        values = np.asarray(store.scores, dtype=np.float32)
    elif target in store.targets:
        values = np.asarray(store.targets[target], dtype=np.float32)
    else:
        raise ValueError(f"task.target={target!r} is not in {store.path} (its targets: "
                         f"{['score', *sorted(store.targets)]})")
    if anomalous is not None and np.shape(anomalous) != (len(store),):
        raise ValueError(f"anomalous must have shape ({len(store)},), one flag per video, got "
                         f"{np.shape(anomalous)}")
    x, mask = model_frames(store, feature_set, base)
    return SequenceSet(x=torch.from_numpy(x), mask=torch.from_numpy(mask),
                       y=torch.as_tensor(np.asarray(store.scores), dtype=torch.int64),
                       summary=torch.as_tensor(np.asarray(store.summary, dtype=np.float32)),
                       ids=np.asarray(store.ids).astype(str),
                       subjects=np.asarray(store.subjects).astype(str),
                       target=torch.from_numpy(values),
                       anomalous=torch.as_tensor(np.zeros(len(store), bool) if anomalous is None
                                                 else np.asarray(anomalous, dtype=bool)))


def anomaly_flags(store: StoreData, label: str | None, min_score: int) -> np.ndarray:
    """``(N,)`` bool, True = anomalous: the store target ``label`` (``targets/<label>``, 1 =
    anomaly, 0 = normal) when given, else ``score >= min_score`` (a severity read as an anomaly).
    """
    if label is None:
        return np.asarray(store.scores) >= int(min_score)
    if label not in store.targets:
        raise ValueError(f"task.anomaly_label={label!r} is not a target of {store.path} (its "
                         f"targets: {sorted(store.targets)}); use null to flag score >= "
                         "task.anomaly_min_score")
    values = np.asarray(store.targets[label])
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{store.path}: target {label!r} must hold 0 (normal) or 1 (anomaly), "
                         f"found {np.unique(values)[:5].tolist()}")
    return values == 1.0


def batch_at(x: torch.Tensor, mask: torch.Tensor, index: torch.Tensor,
             lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The videos at ``index`` of a padded set ``x (N, L, F)``, ``mask (N, L)``, without the
    trailing steps that are padding for every one of them.

    ``lengths`` (the set's real frames per video, on the host) gives the batch's longest video
    without reading the mask back from the device (a sync every step on CUDA), and only the kept
    steps are gathered. Masks are left-aligned (real frames first), so this changes no model output
    (models honour the mask) and saves the compute of steps no video in the batch has.
    """
    longest = int(lengths[index].max())
    on_device = index.to(x.device)
    # index_select then a view: the fastest gather here (a third of x[index, :longest]'s time at
    # 32 x 255 x 63), and the same layout as the whole rows the models have always been given
    return x.index_select(0, on_device)[:, :longest], mask.index_select(0, on_device)[:, :longest]


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None,
                  shuffle: bool = True,
                  sample_weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """One epoch of batches as index tensors into a set of ``n`` videos.

    With ``sample_weights`` (see :func:`balanced_sample_weights`) the epoch draws ``n`` indices with
    replacement in proportion to the weights (balanced sampling); otherwise it is a permutation
    (``shuffle``) or ``0..n-1`` in order. Uses only ``generator`` for randomness so a resumed run
    that restores the generator's state draws the same batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if sample_weights is not None:
        order = torch.multinomial(sample_weights, n, replacement=True, generator=generator)
    elif shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    return list(order.split(batch_size))


def class_counts(y: torch.Tensor | np.ndarray, n_levels: int) -> np.ndarray:
    """How many samples of each score level ``0 .. n_levels-1``."""
    y = np.asarray(y, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_levels):
        raise ValueError(f"scores must lie in 0..{n_levels - 1}, found {y.min()}..{y.max()}")
    return np.bincount(y, minlength=n_levels)


def class_weights(y: torch.Tensor | np.ndarray, n_levels: int) -> torch.Tensor:
    """"Balanced" loss weights ``n / (levels present * count)``; 0 for levels absent from ``y``."""
    counts = class_counts(y, n_levels).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_levels)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.as_tensor(weights, dtype=torch.float32)


def balanced_sample_weights(y: torch.Tensor | np.ndarray, n_levels: int) -> torch.Tensor:
    """Per-sample drawing weights ``1 / count(level)``: every level is drawn equally often."""
    counts = class_counts(y, n_levels)
    y = np.asarray(y, dtype=np.int64)
    return torch.as_tensor(1.0 / counts[y], dtype=torch.float64)


def n_score_levels(scores: Sequence[int] | np.ndarray) -> int:
    """The number of score levels the data holds: ``max score + 1`` (levels are 0-based)."""
    scores = np.asarray(scores)
    if scores.size == 0:
        raise ValueError("no scores: the store selection is empty")
    if scores.min() < 0:
        raise ValueError(f"scores must be >= 0, found {scores.min()}")
    return int(scores.max()) + 1
