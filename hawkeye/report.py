"""The collector's presentation: a :class:`hawkeye.collect.Summary` -> one table per kind of
row (``summary_scores.csv``, ``summary_anomaly.csv``, ...: :data:`TABLE_NAMES`), ``summary.md``,
``summary.json`` and the PNG figures under ``figures/``.

Statistics (reading folds, pooling, bootstrap, ranking) live in :mod:`hawkeye.collect`; this module
only decides how they read, so changing a table or a figure never touches a number. Column
headers follow the source package's table (Model, CV MAE, CV Exact, Pearson, ...). A kind's table
has only its own metrics: score rows never share columns with anomaly rows.

Which figure each row gets, and how its axes are named (the run's task: ``config.yaml``
``task.score_label``, :mod:`hawkeye.plotting`), is decided here; the drawing is in
:mod:`hawkeye.figures`. A figure that cannot be drawn becomes a note in the summary, never a
lost summary.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import confusion_matrix

from hawkeye.figures import (
    Interval,
    comparison_figure,
    confusion_figure,
    learning_curves_figure,
    pred_vs_true_figure,
    roc_pr_figure,
)
from hawkeye.io import write_json_atomic, write_text_atomic
from hawkeye.metrics import as_float
from hawkeye.plotting import ScoreScale, config_scale, score_scale

if TYPE_CHECKING:  # types only: hawkeye.collect imports this module to write its summary
    from hawkeye.collect import ModelResult, Summary

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

# The file name part of each kind's table: summary_<name>.csv, summary.json "tables"/<name>,
# figures/comparison_<name>.png; None = a summary whose rows have no results at all.
TABLE_NAMES = {"ordinal": "scores", "nominal": "classes", "regression": "regression",
               "anomaly": "anomaly", None: "no_results"}


def shown_columns(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[Column]:
    """The columns of the ``metrics`` (in their order) that any of ``rows`` has."""
    return [COLUMNS.get(key, Column(key, key, key)) for key in metrics
            if any(key in r["cv"] for r in rows)]


@dataclass(frozen=True)
class KindTable:
    """One kind of row's table: its ranked rows, its baselines and only its own columns."""

    kind: str | None
    rows: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    columns: list[Column]

    @property
    def name(self) -> str:
        return TABLE_NAMES.get(self.kind, str(self.kind))


def summary_tables(summary: Summary) -> list[KindTable]:
    """The summary as one table per kind of target (ranked within each; rows that have no
    results join the first table, as in :func:`hawkeye.collect.kind_groups`)."""
    tables = []
    for group in summary.groups:
        kind = next((r["kind"] for r in group if r["kind"]), None)
        baselines = [b for b in summary.baselines if kind is not None and b["kind"] == kind]
        tables.append(KindTable(kind, group, baselines, shown_columns(group, summary.metrics)))
    return tables


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
    tables = summary_tables(summary)
    for table in tables:
        if len(tables) > 1:
            lines += [f"## {KIND_TITLES.get(table.kind, 'No results')}", ""]
        lines += _group_tables([*table.rows, *table.baselines], table.columns, level)
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


def render_csv(table: KindTable) -> str:
    """``summary_<name>.csv`` of one kind of row: its models (ranked), then its baselines; only
    the kind's own metrics; leads with model and the source's three columns (README, "Summary
    files", explains every column)."""
    rows, columns = [*table.rows, *table.baselines], table.columns
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


_LOWER_IS_BETTER = {"mae", "mae_raw", "rmse"}
# The comparison chart's panels per kind: the ranking metric first (hawkeye.collect._RANK_BY).
_COMPARED = {"ordinal": ("mae", "exact", "pearson"),
             "nominal": ("balanced_accuracy", "accuracy", "macro_f1"),
             "regression": ("mae", "rmse", "r2"), "anomaly": ("f1", "roc_auc", "pr_auc")}
# The metric a row's predicted-vs-true (or ROC/PR) figure states in its corner, per kind.
_HEADLINE = {"ordinal": ("mae",), "nominal": ("balanced_accuracy",), "regression": ("mae",),
             "anomaly": ("roc_auc", "pr_auc")}


def write_figures(summary: Summary, figures_dir: Path) -> list[str]:
    """Per row: confusion matrix, predicted vs true (ROC and precision-recall for anomaly rows),
    learning curves; per kind of row, one comparison chart ranked like its table.

    Returns notes for figures that could not be drawn: a figure never stops the summary.
    """
    notes, scales = [], {}
    level = f"{100 * (1 - summary.bootstrap['alpha']):g}%"
    for result in summary.results:
        row, stem = result.row, _file_stem(result.row["label"])
        run = row.get("run") or "."
        if run not in scales:  # one config.yaml read per sweep point, not one per row
            scales[run] = config_scale(Path(summary.root) / run / "config.yaml")
        scale = scales[run]
        drawings = []
        if result.pooled is not None:
            drawings += _pooled_drawings(result, scale, level, figures_dir, stem)
        if result.histories:
            drawings.append(("learning curves", lambda r=result, s=stem, sc=scale:
                             learning_curves_figure(r.histories,
                                                    figures_dir / f"{s}_learning_curves.png",
                                                    r.row["label"], r.best_epochs,
                                                    _validation_label(sc, r.row["kind"]))))
        for what, draw in drawings:
            notes += _try_draw(f"{row['label']} {what}", draw)
    for table in summary_tables(summary):
        drawn = [r for r in table.rows if r["n_cv"]]
        columns = _compared_columns(table)
        if not drawn or not columns:
            continue
        scale = scales.get(drawn[0].get("run") or ".", score_scale(None))
        panels = {c.short: _interval(drawn, c) for c in columns}
        baseline = _baseline_bar(table.baselines, columns)
        axes = {c.short: _metric_axis(c, table.kind, scale) for c in columns}
        title = (f"{KIND_TITLES.get(table.kind, 'Models')}: pooled out-of-fold metrics, ranked "
                 f"as in the summary, {level} subject-bootstrap CI")
        notes += _try_draw(f"comparison of {table.name}", lambda d=drawn, p=panels, b=baseline,
                           a=axes, t=title, n=table.name: comparison_figure(
                               [r["label"] for r in d], p, figures_dir / f"comparison_{n}.png",
                               t, b, a))
    return notes


def _compared_columns(table: KindTable) -> list[Column]:
    """The comparison chart's panels: the kind's ranking metric and two that complete it
    (:data:`_COMPARED`), those the rows have; else the table's first three columns."""
    wanted = [c for key in _COMPARED.get(table.kind, ()) for c in table.columns if c.key == key]
    return wanted or table.columns[:3]


def _interval(rows: Sequence[Mapping[str, Any]], column: Column) -> Interval:
    """(values, ci_low, ci_high) of a column's pooled metric, in the units its axis shows."""
    factor = 100.0 if column.percent else 1.0
    return tuple([factor * as_float(r["cv"].get(column.key, {}).get(stat, math.nan))
                  for r in rows] for stat in ("pooled", "ci_low", "ci_high"))


def _baseline_bar(baselines: Sequence[Mapping[str, Any]], columns: Sequence[Column]
                  ) -> tuple[str, dict[str, tuple[float, float, float]]] | None:
    """The first baseline row as a bar: its name and, per panel, pooled value and interval."""
    row = next((b for b in baselines if b["cv"]), None)
    if row is None:
        return None
    values = {c.short: tuple(v[0] for v in _interval([row], c)) for c in columns}
    return f"baseline: {row['baseline_rule']} of each fold", values


def _metric_axis(column: Column, kind: str | None, scale: ScoreScale) -> str:
    """``MAE (MDS-UPDRS 3.4 score points; lower is better)``, ``Exact (%; higher is better)``."""
    if column.percent:
        unit = "%"
    elif column.key in _LOWER_IS_BETTER:
        unit = scale.target_unit if kind == "regression" else scale.points
    else:
        unit = ""
    better = "lower" if column.key in _LOWER_IS_BETTER else "higher"
    return f"{column.short} ({unit}; {better} is better)" if unit else \
        f"{column.short} ({better} is better)"


def _validation_label(scale: ScoreScale, kind: str | None) -> Callable[[str], str]:
    """``val_mae`` -> ``validation MAE (MDS-UPDRS 3.4 score points)``; other metrics by name."""
    def label(metric: str) -> str:
        key = metric.removeprefix("val_")
        column = COLUMNS.get(key, Column(key, key, key))
        if key in _LOWER_IS_BETTER:
            unit = scale.target_unit if kind == "regression" else scale.points
            return f"validation {column.short} ({unit})"
        return f"validation {column.short}"
    return label


def _headline(row: Mapping[str, Any], key: str, level: str) -> str:
    """``pooled CV MAE 0.580 [0.52, 0.63]`` (the row's ranking metric with its interval)."""
    column = COLUMNS.get(key, Column(key, key, key))
    stats = row["cv"].get(key) or {}
    value = _with_ci(stats.get("pooled"), stats.get("ci_low"), stats.get("ci_high"),
                     column.percent)
    return f"pooled CV {column.short} {value}\n({level} subject-bootstrap CI, n={row['n_cv']})"


def _pooled_drawings(result: ModelResult, scale: ScoreScale, level: str, figures_dir: Path,
                     stem: str) -> list[tuple[str, Callable[[], Any]]]:
    """The row's figures of its pooled out-of-fold predictions, as (what, draw) pairs."""
    row = result.row
    label, kind = row["label"], row["kind"]
    true, pred, score = result.pooled
    folds = result.pooled_folds if result.pooled_folds is not None else np.zeros(true.size, int)
    headlines = [_headline(row, key, level) for key in _HEADLINE.get(kind, ())]
    title = f"{label} (pooled CV)"
    path = figures_dir / f"{stem}_pred_vs_true.png"
    drawings: list[tuple[str, Callable[[], Any]]] = []
    if kind in ("ordinal", "nominal"):
        levels = list(range(row["n_levels"]))
        matrix = confusion_matrix(true.astype(int), pred.astype(int), labels=levels)
        drawings.append(("confusion", lambda: confusion_figure(
            matrix, figures_dir / f"{stem}_confusion.png", title, axis_name=scale.name)))
        if kind == "ordinal":  # an expected class index of unordered classes means nothing
            drawings.append(("pred vs true", lambda: pred_vs_true_figure(
                true, score, folds, path, title, f"true {scale.label}",
                f"predicted {scale.name} (continuous output)", headlines[0])))
    elif kind == "anomaly":
        matrix = confusion_matrix(true.astype(bool), score > 0, labels=[False, True])
        drawings.append(("confusion", lambda: confusion_figure(
            matrix, figures_dir / f"{stem}_confusion.png", title,
            tick_labels=["normal", "anomaly"], axis_name="label")))
        drawings.append(("ROC and precision-recall", lambda: roc_pr_figure(
            true.astype(bool), score, figures_dir / f"{stem}_roc_pr.png", title, headlines)))
    else:
        drawings.append(("pred vs true", lambda: pred_vs_true_figure(
            true, score, folds, path, title, f"true {scale.target_label}",
            f"predicted {scale.target_label}", headlines[0])))
    return drawings


def _try_draw(what: str, draw: Callable[[], Any]) -> list[str]:
    try:
        draw()
    except Exception as error:  # noqa: BLE001 - a broken figure must not lose the summary
        log.warning("figure %s not drawn: %s", what, error)
        return [f"figure {what} not drawn: {error}"]
    return []


def _file_stem(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label.replace("/", "__"))


# ----------------------------------------------------------------------------------------------
# The files


def write_report(summary: Summary, root: Path, figures: bool) -> str:
    """Write one ``summary_<name>.csv`` per kind of row (:data:`TABLE_NAMES`), ``summary.json``
    and ``summary.md`` (atomically) under ``root`` and, with ``figures``, the PNGs under
    ``root/figures/`` (their problems become ``summary.notes``). A table file left by an earlier
    collection whose kind of row is gone, or the one wide ``summary.csv`` of older collectors,
    is removed: a reader must not take stale numbers for this run's. Returns the Markdown."""
    if figures:
        summary.notes = write_figures(summary, root / "figures")
    tables = summary_tables(summary)
    for table in tables:
        write_text_atomic(root / f"summary_{table.name}.csv", render_csv(table))
    written = {f"summary_{t.name}.csv" for t in tables}
    for stale in ["summary.csv", *(f"summary_{n}.csv" for n in TABLE_NAMES.values())]:
        if stale not in written and (root / stale).is_file():
            (root / stale).unlink()
            log.info("removed %s (not a table of this collection)", root / stale)
    write_json_atomic(root / "summary.json", {**summary.to_json(),
                                              "tables": json_tables(tables)})
    markdown = render_markdown(summary)
    write_text_atomic(root / "summary.md", markdown)
    return markdown


def json_tables(tables: Sequence[KindTable]) -> dict[str, dict[str, Any]]:
    """``summary.json`` ``"tables"``: per kind of row its csv file, its metric keys, its ranked
    model rows and its baseline rows (the same row objects as ``rows`` and ``baselines``)."""
    return {t.name: {"kind": t.kind, "csv": f"summary_{t.name}.csv",
                     "metrics": [c.key for c in t.columns], "rows": t.rows,
                     "baselines": t.baselines} for t in tables}
