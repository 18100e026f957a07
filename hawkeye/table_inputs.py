"""Inputs of :mod:`hawkeye.predict` for a tree model (family ``tabular``): the rows of a
per-video feature table (CSV or XLSX, read by :func:`hawkeye.tables.read_table`, as
``python -m hawkeye.store import-table`` reads it) or of a summary-only ``.h5`` store.

The model's summary feature names (its metadata's ``input_names``) must all be columns of the
table; a missing one is an error naming the file and the columns. Other columns are ignored. A
row's id comes from ``id_column`` (null: a column named ``id`` when there is one, else
``<table stem>:<line>``, import-table's default). An empty or ``NA``-like cell is scored as
missing (NaN: the trees send it to the side they learned) and said in the row's ``reason``; text
or an infinite value in a feature cell fails that row, naming line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hawkeye.scoring import PredictError, Prediction, score_ensemble, scored
from hawkeye.sequence_inputs import SequenceInput
from hawkeye.store import load_store
from hawkeye.tables import MISSING_TOKENS, XLSX_SUFFIXES, TableError, number_or_problem, read_table

if TYPE_CHECKING:  # types only: hawkeye.predict imports this module
    from hawkeye.ensemble import Ensemble

TABLE_SUFFIXES = (".csv", *XLSX_SUFFIXES)
STORE_SUFFIXES = (".h5", ".hdf5")


def predict_table(path: Path, ensemble: Ensemble, id_column: str | None = None) -> list[Prediction]:
    """Score every row of the feature table (or summary-only store) ``path`` with the folds of
    a tree model; a file that cannot be used raises :class:`PredictError` naming it."""
    if path.suffix.lower() in STORE_SUFFIXES:
        return _predict_store(path, ensemble)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise PredictError(f"{path}: {ensemble.model} is a tree model on summary features: it "
                           f"scores feature tables ({', '.join(TABLE_SUFFIXES)}) or a "
                           "summary-only store (.h5), one row per video, not videos or sequences")
    try:
        table = read_table(path)
    except TableError as error:
        raise PredictError(str(error)) from None
    names = ensemble.input_names
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise PredictError(f"{path}: no column {missing} (of the {len(names)} summary features "
                           f"{ensemble.model} was trained on); the table has {table.columns}")
    if id_column is not None and id_column not in table.columns:
        raise PredictError(f"{path}: no id column {id_column!r} (predict.id_column); the table "
                           f"has {table.columns}")
    id_column = id_column or ("id" if "id" in table.columns else None)
    index = {c: j for j, c in enumerate(table.columns)}
    predictions = []
    for line, cells in table.rows:
        row_id = str(cells[index[id_column]]).strip() if id_column else f"{path.stem}:{line}"
        predictions.append(_score_row(SequenceInput(path, row_id), ensemble,
                                      [cells[index[n]] for n in names], names, line))
    return predictions


def _score_row(inp: SequenceInput, ensemble: Ensemble, cells: list, names: list[str],
               line: int) -> Prediction:
    """One table row scored, or failed with the bad cell named."""
    values = np.empty((1, len(names)), np.float32)
    missing = []
    for k, (cell, name) in enumerate(zip(cells, names, strict=True)):
        values[0, k], why = number_or_problem(cell)
        if why is None:
            continue
        if cell is not None and str(cell).strip().lower() not in MISSING_TOKENS:
            return Prediction(input=inp, reason=f"{inp.path}:{line}: column {name!r}: {why}")
        missing.append(name)
    prediction = scored(Prediction(input=inp), score_ensemble(ensemble, values), 0, float("nan"))
    if missing:
        prediction.reason = f"missing cells scored as NaN: {', '.join(missing)}"
    return prediction


def _predict_store(path: Path, ensemble: Ensemble) -> list[Prediction]:
    """Every video of a store scored from its summary features, by name."""
    try:
        store = load_store(path)
    except (ValueError, OSError) as error:
        raise PredictError(f"{path}: cannot read as a Hawkeye store ({error})") from None
    have = [str(n) for n in store.summary_names]
    missing = [n for n in ensemble.input_names if n not in have]
    if missing:
        raise PredictError(f"{path}: no summary feature {missing} (of the "
                           f"{len(ensemble.input_names)} {ensemble.model} was trained on); the "
                           f"store has {have}")
    columns = [have.index(n) for n in ensemble.input_names]
    features = np.asarray(store.summary, np.float32)[:, columns]
    return [scored(Prediction(input=SequenceInput(path, str(store.ids[i]))),
                   score_ensemble(ensemble, features[i:i + 1]), 0, float("nan"))
            for i in range(len(store))]
