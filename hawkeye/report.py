"""The collector's presentation: a :class:`hawkeye.collect.Summary` -> ``summary.md``,
``summary.csv``, ``summary.json`` and the PNG figures under ``figures/``.

Statistics (reading folds, pooling, bootstrap, ranking) live in :mod:`hawkeye.collect`; this module
only decides how they read, so changing a table or a figure never touches a number. Column
headers follow the source package's table (Model, CV MAE, CV Exact, Pearson, ...).

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg renderer draws PNGs), so
they work on a compute node without a display and never leak open windows between calls. Every
file is written atomically (:func:`hawkeye.io.save_png`): a killed collector leaves no half PNG.
A figure that cannot be drawn becomes a note in the summary, never a lost summary.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix

from hawkeye.io import save_png, write_json_atomic, write_text_atomic
from hawkeye.metrics import as_float

if TYPE_CHECKING:  # types only: hawkeye.collect imports this module to write its summary
    from hawkeye.collect import Summary

log = logging.getLogger("hawkeye.collect")


@dataclass(frozen=True)
class Column:
    """One metric of the summary: its key in metrics.json and how a reader sees it."""

    key: str
    label: str          # header in the fold-mean table (the source table's wording)
    short: str          # header in the pooled and test tables
    percent: bool = False


# How each metric key of hawkeye.metrics reads in the tables; the order of the columns is the
# summary's (hawkeye.collect.METRIC_KEYS). A key missing here is shown under its own name.
COLUMNS = {c.key: c for c in (
    Column("mae", "CV MAE", "MAE"),
    Column("exact", "CV Exact", "Exact", percent=True),
    Column("pearson", "Pearson", "Pearson"),
    Column("within1", "Within ±1", "Within ±1", percent=True),
    Column("qwk", "QWK", "QWK"),
    Column("accuracy", "Accuracy", "Accuracy", percent=True),
    Column("balanced_accuracy", "Balanced accuracy", "Bal. accuracy", percent=True),
    Column("macro_f1", "Macro-F1", "Macro-F1"),
    Column("spearman", "Spearman", "Spearman"),
    Column("mae_raw", "MAE (raw)", "MAE (raw)"),
    Column("r2", "R²", "R²"),
    Column("rmse", "RMSE", "RMSE"),
    Column("precision", "Precision", "Precision"),
    Column("recall", "Recall", "Recall"),
    Column("f1", "F1", "F1"),
    Column("roc_auc", "ROC-AUC", "ROC-AUC"),
    Column("pr_auc", "PR-AUC", "PR-AUC"),
    Column("spearman_error_score", "Spearman (error, score)", "Spearman (error, score)"),
)}
# The title of each kind of target's tables (a summary with one kind has no titles).
KIND_TITLES = {"ordinal": "Severity score", "nominal": "Classes", "regression": "Regression",
               "anomaly": "Anomaly detection"}

def shown_columns(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[Column]:
    """The columns of the ``metrics`` (in their order) that any of ``rows`` has."""
    return [COLUMNS.get(key, Column(key, key, key)) for key in metrics
            if any(key in r["cv"] for r in rows)]


# ----------------------------------------------------------------------------------------------
# Tables


def render_markdown(summary: Summary) -> str:
    """summary.md: per kind of target, the fold-mean table in the source's layout (Model, CV MAE,
    CV Exact, Pearson, ...), the pooled table and the test-ensemble table; then problems."""
    rows, boot = summary.rows, summary.bootstrap
    level = f"{100 * (1 - boot['alpha']):g}%"
    lines = [f"# Hawkeye summary: `{summary.root}`", "",
             f"Collected {summary.created} · commit `{summary.git_commit}` · "
             f"CIs: {level} percentile, {boot['n_boot']} bootstrap resamples of subjects.", ""]
    incomplete = [r["label"] for r in rows if not r["complete"]]
    lines += [f"**INCOMPLETE**: {', '.join(incomplete)}; see Problems. Their numbers use only "
              "the folds that finished.", ""] if incomplete else ["All rows complete.", ""]
    groups = summary.groups
    for group in groups:
        kind = next((r["kind"] for r in group if r["kind"]), None)
        if len(groups) > 1:
            lines += [f"## {KIND_TITLES.get(kind, 'No results')}", ""]
        baselines = [b for b in summary.baselines if kind is not None and b["kind"] == kind]
        lines += _group_tables([*group, *baselines], shown_columns(group, summary.metrics), level)
    problems = [(r["label"], p) for r in rows for p in r["problems"]]
    problems += [("run", {"fold": None, "reason": p, "logs": []}) for p in summary.problems]
    if problems:
        lines += ["## Problems", ""]
        for label, p in problems:
            where = f" fold {p['fold']}" if p["fold"] is not None else ""
            logs = f" (log: {', '.join(f'`{x}`' for x in p['logs'])})" if p["logs"] else ""
            lines.append(f"- `{label}`{where}: {p['reason']}{logs}")
        lines.append("")
    notes = [(r["label"], n) for r in rows for n in r["notes"]] + \
        [("figures", n) for n in summary.notes]
    if notes:
        lines += ["## Notes", ""] + [f"- `{label}`: {n}" for label, n in notes] + [""]
    return "\n".join(lines)


def _group_tables(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
                  level: str) -> list[str]:
    def name(row: Mapping[str, Any]) -> str:
        if row.get("baseline_rule"):
            return f"{row['label']} ({row['baseline_rule']})"
        return row["label"] if row["complete"] else f"{row['label']} (INCOMPLETE)"

    def with_ci(stats: Mapping[str, Any] | None, value_key: str, column: Column) -> str:
        stats = stats or {}
        return _with_ci(stats.get(value_key), stats.get("ci_low"), stats.get("ci_high"),
                        column.percent)

    lines = ["### Cross-validation: mean ± std over folds", ""]
    head = ["Model", *(c.label for c in columns), "Params", "Train time (s, all folds)", "ONNX MB",
            "Folds"]
    lines += _table(head, [
        [name(r), *(_mean_std(r["cv"].get(c.key), c.percent) for c in columns),
         _count(r["n_params"]), _plain(r["train_seconds"], 1), _plain(r["onnx_mb"], 2),
         f"{r['folds_ok']}/{r['folds_expected'] if r['folds_expected'] is not None else '?'}"]
        for r in rows])
    compared = next((r["vs_baseline"] for r in rows if r.get("vs_baseline")), None)
    versus = []
    if compared:
        short = COLUMNS.get(compared["metric"], Column(compared["metric"], "", compared["metric"]))
        versus = [f"Δ {short.short} vs baseline, {level} CI", "Better than baseline"]
    lines += ["", f"### Cross-validation: all out-of-fold predictions pooled, {level} CI", ""]
    if compared:
        lines += [f"Baseline: the {compared['rule']} of each fold's training labels, scored on "
                  "the same folds; Δ = model - baseline with a paired subject bootstrap (the "
                  "same resampled subjects for both); better = the whole interval on the "
                  "better side of 0.", ""]
    head = ["Model", *(c.short for c in columns), "n", *versus]
    lines += _table(head, [[name(r), *(with_ci(r["cv"].get(c.key), "pooled", c) for c in columns),
                            str(r["n_cv"]), *_versus(r, "cv", versus)] for r in rows])
    tested = [r for r in rows if r["test"]]
    if tested:
        lines += ["", f"### Held-out test split: fold ensemble, {level} CI", "",
                  "Per video, the folds' class probabilities averaged and decided by the head's "
                  "rule (soft vote; CORAL thresholds); regression heads: mean output rounded "
                  "and clipped; anomaly: mean score centred on each fold's threshold.", ""]
        lines += _table(head, [[name(r), *(with_ci(r["test"].get(c.key), "value", c)
                                           for c in columns), str(r["n_test"]),
                                *_versus(r, "test", versus)] for r in tested])
    return lines + [""]


def _versus(row: Mapping[str, Any], split: str, versus: Sequence[str]) -> list[str]:
    """The Δ-vs-baseline cells of a row (empty list when the table has no such columns)."""
    if not versus:
        return []
    entry = (row.get("vs_baseline") or {}).get(split)
    if not entry:
        return ["–", "–"]
    verdict = {True: "yes", False: "no", None: "n/a"}[entry["better"]]
    return [_with_ci(entry["difference"], entry["ci_low"], entry["ci_high"], False), verdict]


def render_csv(summary: Summary) -> str:
    """summary.csv: one row per table row; leads with model and the source's three columns."""
    rows, columns = [*summary.rows, *summary.baselines], shown_columns(summary.rows,
                                                                      summary.metrics)
    lead = [f"cv_{k}_mean" for k in ("mae", "exact", "pearson") if k in _keys(columns)]
    fields = ["model", *lead]
    for c in columns:
        fields += [f for f in (f"cv_{c.key}_mean", f"cv_{c.key}_std", f"cv_{c.key}_pooled",
                               f"cv_{c.key}_ci_low", f"cv_{c.key}_ci_high", f"test_{c.key}",
                               f"test_{c.key}_ci_low", f"test_{c.key}_ci_high") if f not in fields]
    fields += [*_CSV_META, *_CSV_BASELINE, "problems"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        flat: dict[str, Any] = {"model": r["label"], **{k: r[k] for k in _CSV_META}}
        for c in columns:
            cv, test = r["cv"].get(c.key, {}), r["test"].get(c.key, {})
            for stat in ("mean", "std", "pooled", "ci_low", "ci_high"):
                flat[f"cv_{c.key}_{stat}"] = cv.get(stat)
            flat[f"test_{c.key}"] = test.get("value")
            flat[f"test_{c.key}_ci_low"] = test.get("ci_low")
            flat[f"test_{c.key}_ci_high"] = test.get("ci_high")
        flat.update(_baseline_cells(r))
        flat["problems"] = "; ".join(
            (f"fold {p['fold']}: " if p["fold"] is not None else "") + p["reason"]
            + (f" [log: {', '.join(p['logs'])}]" if p["logs"] else "") for p in r["problems"])
        writer.writerow({k: _csv_cell(v) for k, v in flat.items()})
    return out.getvalue()


_CSV_META = ("run", "rank", "status", "complete", "folds_ok", "folds_expected", "n_cv", "n_test",
             "n_params", "train_seconds", "onnx_mb")
_CSV_BASELINE = ("baseline_rule", "vs_baseline_metric",
                 *(f"{split}_vs_baseline_{stat}" for split in ("cv", "test")
                   for stat in ("difference", "ci_low", "ci_high", "better")))


def _baseline_cells(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's baseline columns: the rule (baseline rows), the comparison (model rows)."""
    cells: dict[str, Any] = {"baseline_rule": row.get("baseline_rule")}
    compared = row.get("vs_baseline") or {}
    cells["vs_baseline_metric"] = compared.get("metric")
    for split in ("cv", "test"):
        entry = compared.get(split) or {}
        for stat in ("difference", "ci_low", "ci_high"):
            cells[f"{split}_vs_baseline_{stat}"] = entry.get(stat)
        better = entry.get("better")
        cells[f"{split}_vs_baseline_better"] = None if better is None else (
            "yes" if better else "no")
    return cells


def _keys(columns: Iterable[Column]) -> set[str]:
    return {c.key for c in columns}


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(row) + " |" for row in body)]


def _num(value: Any, percent: bool, digits: int = 3) -> str | None:
    value = as_float(value)
    if math.isnan(value):
        return None
    return f"{100 * value:.1f}" if percent else f"{value:.{digits}f}"


def _mean_std(stats: Mapping[str, Any] | None, percent: bool) -> str:
    mean = _num((stats or {}).get("mean"), percent)
    if mean is None:
        return "n/a"
    std = _num(stats.get("std"), percent)
    text = f"{mean} ± {std}" if std is not None else mean
    return f"{text}%" if percent else text


def _with_ci(value: Any, low: Any, high: Any, percent: bool) -> str:
    point = _num(value, percent)
    if point is None:
        return "n/a"
    point = f"{point}%" if percent else point
    low, high = _num(low, percent), _num(high, percent)
    return f"{point} [{low}, {high}]" if low is not None and high is not None else point


def _plain(value: Any, digits: int) -> str:
    value = as_float(value)
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


# ----------------------------------------------------------------------------------------------
# Figures


def write_figures(summary: Summary, figures_dir: Path) -> list[str]:
    """Per row: confusion matrix, predicted vs true, learning curves; one comparison chart.

    Returns notes for figures that could not be drawn: a figure never stops the summary.
    """
    notes, results, alpha = [], summary.results, summary.bootstrap["alpha"]
    for result in results:
        row, stem = result.row, _file_stem(result.row["label"])
        drawings = []
        if result.pooled is not None:
            true, pred, score = result.pooled
            drawings += _pooled_drawings(row, true, pred, score, figures_dir, stem)
        if result.histories:
            drawings.append(("learning curves", lambda r=result, s=stem:
                             learning_curves_figure(r.histories,
                                                          figures_dir / f"{s}_learning_curves.png",
                                                          r.row["label"])))
        for what, draw in drawings:
            notes += _try_draw(f"{row['label']} {what}", draw)
    drawn = [r.row for r in results if r.pooled is not None]
    columns = shown_columns(drawn, summary.metrics)[:3]
    if drawn and columns:
        level = f"{100 * (1 - alpha):g}%"
        panels = {c.short: tuple([r["cv"].get(c.key, {}).get(s, math.nan) for r in drawn]
                                 for s in ("pooled", "ci_low", "ci_high")) for c in columns}
        baseline = _baseline_panels(summary.baselines, columns)
        notes += _try_draw("comparison", lambda: comparison_figure(
            [r["label"] for r in drawn], panels, figures_dir / "comparison.png",
            f"pooled out-of-fold metrics, {level} subject-bootstrap CI", baseline))
    return notes


def _baseline_panels(baselines: Sequence[Mapping[str, Any]],
                     columns: Sequence[Column]) -> dict[str, tuple[float, float, float, str]]:
    """Per panel, the first baseline row's pooled value, interval and name (none: no line)."""
    panels = {}
    for c in columns:
        row = next((b for b in baselines if c.key in b["cv"]), None)
        if row is not None:
            stats = row["cv"][c.key]
            panels[c.short] = (stats.get("pooled", math.nan), stats.get("ci_low", math.nan),
                               stats.get("ci_high", math.nan), f"baseline ({row['baseline_rule']})")
    return panels


def _pooled_drawings(row, true, pred, score, figures_dir: Path, stem: str):
    label, kind = row["label"], row["kind"]
    drawings = []
    if kind in ("ordinal", "nominal"):
        levels = list(range(row["n_levels"]))
        matrix = confusion_matrix(true.astype(int), pred.astype(int), labels=levels)
        drawings.append(("confusion", lambda: confusion_figure(
            matrix, figures_dir / f"{stem}_confusion.png", f"{label} (pooled CV)")))
        if kind == "ordinal":  # an expected class index of unordered classes means nothing
            drawings.append(("pred vs true", lambda: pred_vs_true_figure(
                true, score, figures_dir / f"{stem}_pred_vs_true.png", f"{label} (pooled CV)")))
    elif kind == "anomaly":
        matrix = confusion_matrix(true.astype(bool), score > 0, labels=[False, True])
        drawings.append(("confusion", lambda: confusion_figure(
            matrix, figures_dir / f"{stem}_confusion.png", f"{label} (pooled CV)",
            tick_labels=["normal", "anomaly"])))
        drawings.append(("pred vs true", lambda: pred_vs_true_figure(
            true, score, figures_dir / f"{stem}_pred_vs_true.png", f"{label} (pooled CV)",
            ylabel="anomaly score - fold threshold", diagonal=False, hline=0.0)))
    else:
        drawings.append(("pred vs true", lambda: pred_vs_true_figure(
            true, score, figures_dir / f"{stem}_pred_vs_true.png", f"{label} (pooled CV)")))
    return drawings


def _try_draw(what: str, draw: Callable[[], None]) -> list[str]:
    try:
        draw()
    except Exception as error:  # noqa: BLE001 - a broken figure must not lose the summary
        log.warning("figure %s not drawn: %s", what, error)
        return [f"figure {what} not drawn: {error}"]
    return []


def _file_stem(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label.replace("/", "__"))



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
    save_png(fig, path, dpi=_DPI)


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
    save_png(fig, path, dpi=_DPI)


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
    save_png(fig, path, dpi=_DPI)


Interval = tuple[Sequence[float], Sequence[float], Sequence[float]]  # (values, ci_low, ci_high)


def comparison_figure(labels: Sequence[str], panels: Mapping[str, Interval],
                      path: str | os.PathLike[str], title: str,
                      baseline: Mapping[str, tuple[float, float, float, str]] | None = None
                      ) -> None:
    """Bar chart comparing rows (models, sweep points): one panel per metric.

    ``panels`` maps a metric's display name to ``(values, ci_low, ci_high)``, one entry per label;
    a whisker shows the interval. NaN values draw no bar, NaN bounds no whisker. ``baseline``
    maps a panel to ``(value, ci_low, ci_high, name)`` of the trivial predictor: a dashed line
    across the panel and its interval as a grey band.
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
        if baseline and name in baseline:
            value, b_low, b_high, what = baseline[name]
            if math.isfinite(b_low) and math.isfinite(b_high):
                ax.axhspan(b_low, b_high, color="grey", alpha=0.2, linewidth=0)
            if math.isfinite(value):
                ax.axhline(value, color="black", linestyle="--", linewidth=1, label=what)
                ax.legend(loc="best", fontsize=7)
        ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(name)
    fig.suptitle(title)
    save_png(fig, path, dpi=_DPI)


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


# ----------------------------------------------------------------------------------------------
# The files


def write_report(summary: Summary, root: Path, figures: bool) -> str:
    """Write ``summary.csv``, ``summary.json``, ``summary.md`` (atomically) under ``root`` and,
    with ``figures``, the PNGs under ``root/figures/`` (their problems become ``summary.notes``).
    Returns the Markdown summary."""
    if figures:
        summary.notes = write_figures(summary, root / "figures")
    write_text_atomic(root / "summary.csv", render_csv(summary))
    write_json_atomic(root / "summary.json", summary.to_json())
    markdown = render_markdown(summary)
    write_text_atomic(root / "summary.md", markdown)
    return markdown
