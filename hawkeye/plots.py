"""Summary figures of a run, as PNG files: no display, no pyplot state.

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg renderer draws PNGs), so
they work on a compute node without a display and never leak open windows between calls. Every
file is written through :func:`hawkeye.io.atomic_path`: a killed collector leaves no half PNG.

Each function takes plain arrays (what the collector already read) and a destination path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hawkeye.io import atomic_path

_DPI = 110
_JITTER = 0.15  # half-width of the uniform jitter on integer axes, in score units


def confusion_figure(confusion: Sequence[Sequence[int]], path: str | os.PathLike[str],
                     title: str, tick_labels: Sequence[str] | None = None) -> None:
    """Confusion matrix heat map: row = true level, column = predicted level, counts annotated."""
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"confusion must be a square (L, L) matrix, got shape {matrix.shape}")
    labels = list(tick_labels) if tick_labels is not None else [str(i) for i in range(len(matrix))]
    fig = Figure(figsize=(1.2 + 0.7 * len(matrix), 1.0 + 0.7 * len(matrix)))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(len(matrix)), yticks=range(len(matrix)), xticklabels=labels,
           yticklabels=labels, xlabel="predicted", ylabel="true", title=title)
    dark = matrix.max() / 2 if matrix.max() else 1
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > dark else "black", fontsize=8)
    _save(fig, path)


def pred_vs_true_figure(y_true: np.ndarray, y_score: np.ndarray, path: str | os.PathLike[str],
                        title: str, ylabel: str = "predicted (continuous output)",
                        diagonal: bool = True, hline: float | None = None, seed: int = 0) -> None:
    """Scatter of prediction against truth; integer-valued axes get a small uniform jitter.

    Jitter (±0.15 score units, seeded) only spreads points that would sit on top of each other on
    an integer axis; it is never applied to a continuous axis. ``diagonal`` draws y = x (a perfect
    prediction), ``hline`` a horizontal decision threshold.
    """
    t = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    if t.shape != s.shape or t.ndim != 1:
        raise ValueError(f"y_true {t.shape} and y_score {s.shape} must be equal 1-D shapes")
    rng = np.random.default_rng(seed)
    x = t + _jitter(t, rng)
    y = s + _jitter(s, rng)
    fig = Figure(figsize=(4.5, 4.0))
    ax = fig.add_subplot()
    ax.scatter(x, y, s=9, alpha=0.5, linewidths=0)
    if diagonal and t.size:
        low, high = min(t.min(), s.min()), max(t.max(), s.max())
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    if hline is not None:
        ax.axhline(hline, color="tab:red", linestyle=":", linewidth=1, label="threshold")
        ax.legend(loc="best", fontsize=8)
    ax.set(xlabel="true", ylabel=ylabel, title=title)
    _save(fig, path)


def learning_curves_figure(histories: Mapping[str, Mapping[str, np.ndarray]],
                           path: str | os.PathLike[str], title: str) -> None:
    """Per-fold learning curves from ``history.csv`` columns.

    Left panel: ``train_loss`` (solid) and ``val_loss`` (dashed) against ``epoch``, one colour per
    fold. Right panel (when any fold has one): the first validation metric column other than
    ``val_loss`` (``val_mae`` preferred). Other columns are ignored.
    """
    if not histories:
        raise ValueError("no history to plot")
    metric = _validation_metric(histories)
    fig = Figure(figsize=(9.0 if metric else 4.8, 3.6))
    axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]
    for colour, (fold, history) in zip(_colours(len(histories)), histories.items(), strict=True):
        epoch = history.get("epoch", np.arange(len(next(iter(history.values())))))
        for column, style in (("train_loss", "-"), ("val_loss", "--")):
            if column in history:
                axes[0].plot(epoch, history[column], style, color=colour,
                             label=f"{fold} {column.split('_')[0]}")
        if metric and metric in history:
            axes[1].plot(epoch, history[metric], color=colour, label=fold)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    axes[0].set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    axes[0].legend(fontsize=6, ncol=2)
    if metric:
        axes[1].set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
        axes[1].legend(fontsize=6)
    _save(fig, path)


Interval = tuple[Sequence[float], Sequence[float], Sequence[float]]  # (values, ci_low, ci_high)


def comparison_figure(labels: Sequence[str], panels: Mapping[str, Interval],
                      path: str | os.PathLike[str], title: str) -> None:
    """Bar chart comparing rows (models, sweep points): one panel per metric.

    ``panels`` maps a metric's display name to ``(values, ci_low, ci_high)``, one entry per label;
    a whisker shows the interval. NaN values draw no bar, NaN bounds no whisker.
    """
    if not labels or not panels:
        raise ValueError("need at least one label and one metric to compare")
    fig = Figure(figsize=(max(4.0, 1.2 + 0.55 * len(labels)) * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    positions = np.arange(len(labels))
    for ax, (name, (values, lows, highs)) in zip(axes, panels.items(), strict=True):
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(labels),):
            raise ValueError(f"panel {name!r}: {v.shape[0]} values for {len(labels)} labels")
        low, high = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
        ax.bar(positions, np.nan_to_num(v), color=_colours(len(labels)))
        # interval whiskers drawn as lines: bar(yerr=...) trips over a single bar and NaN bounds
        shown = np.isfinite(low) & np.isfinite(high)
        ax.vlines(positions[shown], low[shown], high[shown], color="black", linewidth=1.2)
        ax.plot(positions[shown], low[shown], "_k", positions[shown], high[shown], "_k",
                markersize=10)
        ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(name)
    fig.suptitle(title)
    _save(fig, path)


def _validation_metric(histories: Mapping[str, Mapping[str, np.ndarray]]) -> str | None:
    columns = [c for h in histories.values() for c in h]
    if "val_mae" in columns:
        return "val_mae"
    others = [c for c in columns if c.startswith("val_") and c != "val_loss"]
    return others[0] if others else None


def _jitter(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if values.size and np.all(values == np.round(values)):
        return rng.uniform(-_JITTER, _JITTER, values.shape)
    return np.zeros_like(values)


def _colours(n: int) -> list:
    return [f"C{i % 10}" for i in range(n)]


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:  # the temporary name ends in .tmp: say the format explicitly
        fig.savefig(tmp, format="png", dpi=_DPI)
