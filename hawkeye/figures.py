"""The collector's figures, one small function per PNG, each returning the Figure it wrote.

Built on :class:`matplotlib.figure.Figure` directly (the Agg renderer draws PNGs), so they work on
a compute node without a display and never leak open windows between calls; each file is written
atomically (:func:`hawkeye.io.save_png`, ``bbox_inches="tight"``: no clipped label). Axis names
and units come from the caller (:mod:`hawkeye.plotting`'s score scale); what to draw for which
row is decided in :mod:`hawkeye.report`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from hawkeye.io import save_png
from hawkeye.plotting import GENERIC_SCORE, corner_text, wrap_label

_DPI = 110
_JITTER = 0.15  # half-width of the uniform jitter on integer axes, in score units
_MARKERS = "os^Dv<>pPXh"  # one marker per fold besides its colour: folds read apart in grey print


def confusion_figure(confusion: Sequence[Sequence[int]], path: str | os.PathLike[str],
                     title: str, tick_labels: Sequence[str] | None = None,
                     axis_name: str = GENERIC_SCORE) -> Figure:
    """Confusion matrix: row = true level, column = predicted level; each cell shows its count
    and its share of the true row (the colour is that share, so a rare level reads as well as a
    common one)."""
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"confusion must be a square (L, L) matrix, got shape {matrix.shape}")
    labels = list(tick_labels) if tick_labels is not None else [str(i) for i in range(len(matrix))]
    totals = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    side = 1.6 + 0.85 * len(matrix)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true row")
    ax.set(xticks=range(len(matrix)), yticks=range(len(matrix)), xticklabels=labels,
           yticklabels=labels, xlabel=f"predicted {axis_name}", ylabel=f"true {axis_name}",
           title=title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black")
    save_png(fig, path, dpi=_DPI)
    return fig


def pred_vs_true_figure(y_true: np.ndarray, y_score: np.ndarray, folds: np.ndarray,
                        path: str | os.PathLike[str], title: str, xlabel: str, ylabel: str,
                        headline: str = "", seed: int = 0) -> Figure:
    """Scatter of prediction against truth, one colour and marker per fold (legend), y = x
    dashed, ``headline`` (the pooled metric with its CI) in the upper left corner.

    Jitter (±0.15 units, seeded) only spreads points that would sit on top of each other on an
    integer axis; it is never applied to a continuous axis.
    """
    t = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    k = np.asarray(folds)
    if t.shape != s.shape or t.shape != k.shape or t.ndim != 1:
        raise ValueError(f"y_true {t.shape}, y_score {s.shape} and folds {k.shape} must be "
                         "equal 1-D shapes")
    rng = np.random.default_rng(seed)
    x = t + _jitter(t, rng)
    y = s + _jitter(s, rng)
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.add_subplot()
    for n, fold in enumerate(np.unique(k)):
        chosen = k == fold
        ax.scatter(x[chosen], y[chosen], s=14, alpha=0.6, color=f"C{n % 10}",
                   marker=_MARKERS[n % len(_MARKERS)], linewidths=0,
                   label=f"fold {fold} (n={int(chosen.sum())})")
    if t.size:
        low, high = min(t.min(), s.min()), max(t.max(), s.max())
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1,
                label="perfect prediction")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)  # beside, not on, points
    if headline:
        corner_text(ax, headline)
    save_png(fig, path, dpi=_DPI)
    return fig


def roc_pr_figure(is_anomaly: np.ndarray, score: np.ndarray, path: str | os.PathLike[str],
                  title: str, headlines: Sequence[str] = ()) -> Figure:
    """ROC (left) and precision-recall (right) curves of an anomaly score, with the operating
    point of the folds' thresholds (``score > 0``: scores are centred on each fold's threshold)
    and the pooled ROC-AUC / PR-AUC with CI in the corners."""
    labels = np.asarray(is_anomaly, dtype=bool)
    if labels.all() or not labels.any():
        raise ValueError("ROC and precision-recall need both normal and anomalous rows")
    s = np.asarray(score, dtype=np.float64)
    flagged = s > 0
    tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
    fig = Figure(figsize=(9.5, 4.4))
    roc_ax, pr_ax = fig.subplots(1, 2)
    RocCurveDisplay.from_predictions(labels, s, ax=roc_ax, name="pooled CV",
                                     plot_chance_level=True)
    roc_ax.plot(fp / max(1, (~labels).sum()), tp / labels.sum(), "o", color="tab:red",
                label="fold thresholds")
    PrecisionRecallDisplay.from_predictions(labels, s, ax=pr_ax, name="pooled CV",
                                            plot_chance_level=True)
    pr_ax.plot(tp / labels.sum(), tp / max(1, tp + fp), "o", color="tab:red",
               label="fold thresholds")
    roc_ax.set(title="ROC", xlabel="False positive rate (share of normal rows flagged)",
               ylabel="True positive rate (share of anomalies flagged)")
    pr_ax.set(title="precision-recall", xlabel="Recall (share of anomalies flagged)",
              ylabel="Precision (share of flagged rows that are anomalies)")
    for ax, headline in zip((roc_ax, pr_ax), headlines, strict=False):
        ax.legend(loc="lower right", fontsize=7)
        corner_text(ax, headline, "upper left" if ax is pr_ax else "upper right")
    fig.suptitle(title)
    save_png(fig, path, dpi=_DPI)
    return fig


def learning_curves_figure(histories: Mapping[str, Mapping[str, np.ndarray]],
                           path: str | os.PathLike[str], title: str,
                           best_epochs: Mapping[str, int] | None = None,
                           metric_label: Callable[[str], str] = str) -> Figure:
    """Per-fold learning curves from ``history.csv`` columns, each fold's best epoch (the one
    early stopping kept, ``best_epochs``: metrics.json ``best_epoch``) starred.

    Left panel: ``train_loss`` (solid) and ``val_loss`` (dashed) against ``epoch``, one colour per
    fold. Right panel (only when a fold has one): the first validation metric column other than
    ``val_loss`` (``val_mae`` preferred), named by ``metric_label``. Other columns are ignored.
    """
    if not histories:
        raise ValueError("no history to plot")
    best_epochs = best_epochs or {}
    metric = _validation_metric(histories)
    fig = Figure(figsize=(10.0 if metric else 5.4, 4.0))
    axes = fig.subplots(1, 2 if metric else 1, squeeze=False)[0]
    starred = False
    for colour, (fold, history) in zip(_colours(len(histories)), histories.items(), strict=True):
        epoch = history.get("epoch", np.arange(1, len(next(iter(history.values()))) + 1))
        for column, style in (("train_loss", "-"), ("val_loss", "--")):
            if column in history:
                axes[0].plot(epoch, history[column], style, color=colour,
                             label=f"{fold} {column.split('_')[0]}")
        panels = [(axes[0], "val_loss" if "val_loss" in history else "train_loss")]
        if metric and metric in history:
            axes[1].plot(epoch, history[metric], color=colour, label=fold)
            panels.append((axes[1], metric))
        best = best_epochs.get(fold)
        if best is None or best not in epoch:
            continue
        at = int(np.flatnonzero(epoch == best)[0])
        for ax, column in panels:
            if column in history:
                ax.plot(best, history[column][at], "*", color=colour, markersize=11,
                        markeredgecolor="black", label=None if starred else "best epoch")
                starred = True
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    axes[0].set(xlabel="epoch", ylabel="loss (training objective)", title=f"{title}: loss")
    axes[0].legend(fontsize=6, ncol=2)
    if metric:
        axes[1].set(xlabel="epoch", ylabel=metric_label(metric),
                    title=f"{title}: {metric_label(metric).split(' (')[0]}")
        axes[1].legend(fontsize=6)
    save_png(fig, path, dpi=_DPI)
    return fig


Interval = tuple[Sequence[float], Sequence[float], Sequence[float]]  # (values, ci_low, ci_high)


def comparison_figure(labels: Sequence[str], panels: Mapping[str, Interval],
                      path: str | os.PathLike[str], title: str,
                      baseline: tuple[str, Mapping[str, tuple[float, float, float]]] | None = None,
                      axis_labels: Mapping[str, str] | None = None) -> Figure:
    """Horizontal bars comparing rows (models, sweep points) in the given order, first on top
    (pass them ranked as the summary is): one panel per metric, long labels wrapped.

    ``panels`` maps a metric's display name to ``(values, ci_low, ci_high)``, one entry per label;
    a whisker shows the interval. NaN values draw no bar, NaN bounds no whisker. ``baseline`` is
    ``(name, {panel: (value, ci_low, ci_high)})`` of the trivial predictor: a hatched grey bar
    below the models and a dashed line through every panel. ``axis_labels``: each panel's value
    axis (metric, unit, which way is better).
    """
    if not labels or not panels:
        raise ValueError("need at least one label and one metric to compare")
    names = [*labels, *([baseline[0]] if baseline else [])]
    wrapped = [wrap_label(name) for name in names]
    lines = sum(name.count("\n") + 1 for name in wrapped)
    width = 3.4 * len(panels) + 0.07 * max(len(line) for w in wrapped for line in w.split("\n"))
    fig = Figure(figsize=(width, 1.6 + 0.22 * lines + 0.12 * len(names)))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    positions = np.arange(len(names))
    colours = [*_colours(len(labels)), *(["0.8"] if baseline else [])]
    for ax, (name, (values, lows, highs)) in zip(axes, panels.items(), strict=True):
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(labels),):
            raise ValueError(f"panel {name!r}: {v.shape[0]} values for {len(labels)} labels")
        low, high = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
        if baseline:
            b_value, b_low, b_high = baseline[1].get(name, (math.nan,) * 3)
            v, low, high = np.append(v, b_value), np.append(low, b_low), np.append(high, b_high)
        bars = ax.barh(positions, np.nan_to_num(v), color=colours, height=0.7)
        if baseline:
            bars[-1].set(hatch="//", edgecolor="0.35", label=baseline[0])
            if math.isfinite(v[-1]):
                ax.axvline(v[-1], color="black", linestyle="--", linewidth=1)
        # interval whiskers drawn as lines: barh(xerr=...) trips over a single bar and NaN bounds
        shown = np.isfinite(low) & np.isfinite(high)
        ax.hlines(positions[shown], low[shown], high[shown], color="black", linewidth=1.2)
        ax.plot(low[shown], positions[shown], "|k", high[shown], positions[shown], "|k",
                markersize=8)
        for y, value in zip(positions, v, strict=True):  # the number itself: a 0 draws no bar
            ax.annotate("n/a" if math.isnan(value) else f"{value:.3g}", (0, y), fontsize=7,
                        xytext=(3, 0), textcoords="offset points", va="center", color="0.1",
                        bbox={"facecolor": "white", "alpha": 0.75, "pad": 1, "edgecolor": "none"})
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # panels side by side: no tick overlap
        ax.set_xlabel((axis_labels or {}).get(name, name), fontsize=8)
        ax.set_title(name)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, wrapped, fontsize=7)
    axes[0].invert_yaxis()  # the first row (rank 1) on top, as in the summary table
    fig.suptitle(title, fontsize=9)
    save_png(fig, path, dpi=_DPI)
    return fig


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
