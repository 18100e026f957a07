"""The exported folds of one model of a run, opened and checked to agree (for
:mod:`hawkeye.predict`).

Every fold of the model must be usable: a fold without ``model.onnx`` (or one run.json expects
that never ran) or with a truncated or foreign file stops prediction with each such fold named;
``allow_missing_folds`` scores with the others and lists the folds left out. A model exported
before the time base (it counted frames, not seconds) is refused with the reason. Apart
from predict.py so that module keeps to scoring inputs; predict imports this.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from hawkeye.export import metadata_of
from hawkeye.families import ExportedFamily, family_of
from hawkeye.onnx_files import ONNX_NAME, ort_session
from hawkeye.onnx_optimize import runtime_session
from hawkeye.scoring import PredictError
from hawkeye.timebase import TimeBase

log = logging.getLogger("hawkeye.predict")


@dataclass(frozen=True)
class ExportedFold:
    """One fold's exported model (an open ONNX Runtime session) and its metadata."""

    fold: int
    path: Path
    session: ort.InferenceSession  # on runs: what scores
    meta: dict[str, Any]
    runs: Path | None = None       # the file the session runs (hawkeye.runtime)


@dataclass(frozen=True)
class Ensemble:
    """The folds of one model of a run; all share inputs, family and preparation."""

    model: str
    family: str                 # the model's family (hawkeye.families): how folds are ensembled
    folds: list[ExportedFold]
    input_names: list[str]
    input_features: str         # series | landmarks | both
    time_base: TimeBase | None  # the rate and window inputs are resampled to (as in training);
                                # None for a tree model, which scores table rows
    score_levels: list[int]
    prepare: dict[str, Any] | None  # settings that built the training store (None: unknown)
    task: dict[str, str] | None = None  # the task the model rates (None: not recorded)
    left_out: list[str] = field(default_factory=list)  # folds not scored, each with the reason

    @property
    def kind(self) -> ExportedFamily:
        """The family object that scores, ensembles and describes this model's folds."""
        kind = family_of(self.family, self.model)
        if not isinstance(kind, ExportedFamily):
            raise PredictError(f"{self.folds[0].path}: family {self.family!r} is not exported")
        return kind


def load_ensemble(run_dir: Path, model: str, threads: int,
                  allow_missing_folds: bool = False) -> Ensemble:
    """Open every ``<run_dir>/<model>/fold_*/model.onnx`` and check that the folds agree.

    A fold that cannot be scored (no folder of a fold run.json expects, no ``model.onnx``, a
    truncated or foreign file) raises :class:`PredictError` naming every such fold, unless
    ``allow_missing_folds``: then the others score and ``left_out`` says what was left out.
    """
    run_dir = Path(run_dir)
    model_dir = run_dir / model
    if not model_dir.is_dir():
        present = sorted(p.parent.parent.name for p in run_dir.glob(f"*/fold_*/{ONNX_NAME}"))
        raise PredictError(f"{run_dir}: no folder for model {model!r}; exported models there: "
                           f"{sorted(set(present)) or 'none'} (pass model=<name>)")
    paths = sorted(model_dir.glob(f"fold_*/{ONNX_NAME}"), key=lambda p: _fold_index(p.parent))
    if not paths:
        trained = sorted(model_dir.glob("fold_*/best.pt"))
        hint = (f"run python -m hawkeye.export run_dir={run_dir}" if trained else
                "no fold has best.pt either (a tree model's is written when it is fitted)")
        raise PredictError(f"{model_dir}: no fold has {ONNX_NAME}; {hint}")
    folds, left_out = [], fold_problems(run_dir, model_dir)
    for path in paths:
        try:
            session = ort_session(path, threads)
            meta = metadata_of(session, path)
            # the optimised or int8 file export chose (hawkeye.runtime), else model.onnx itself
            runs, runtime = runtime_session(path, meta, threads)
        except FileNotFoundError as error:
            left_out.append(f"{error} (python -m hawkeye.export run_dir={run_dir} "
                            "export.force=true)")
            continue
        except _ORT_LOAD_ERRORS as error:
            left_out.append(f"{path}: not a readable ONNX model ({type(error).__name__}: "
                            f"{str(error).strip()[:200]}); re-export it: python -m hawkeye.export "
                            f"run_dir={run_dir} export.force=true")
            continue
        folds.append(ExportedFold(_fold_index(path.parent), path, runtime or session, meta, runs))
    if left_out and (not allow_missing_folds or not folds):
        usable = (f"score with the {len(folds)} other fold(s) only with "
                  "predict.allow_missing_folds=true" if folds else "no fold is usable")
        raise PredictError(f"{model_dir}: {len(left_out)} fold(s) cannot be scored: "
                           + "; ".join(left_out) + f". Fix them, or {usable}")
    for problem in left_out:
        log.warning("fold left out (predict.allow_missing_folds=true): %s", problem)
    first = folds[0].meta
    sequences = family_of(str(first["family"]), model).needs_sequences
    if sequences and "sample_rate_hz" not in first:
        raise PredictError(f"{folds[0].path} was exported by an older Hawkeye that counted "
                           "frames, not seconds (its scores depend on the camera's frame rate); "
                           "retrain the run with this version (task.sample_rate_hz, "
                           "task.max_seconds)")
    shared = ("input_names", "family", "input_features", "sample_rate_hz", "max_seconds",
              "score_levels", "prepare", "task")
    for fold in folds[1:]:
        differ = [k for k in shared if fold.meta.get(k) != first.get(k)]
        if differ:
            raise PredictError(f"{fold.path} differs from {folds[0].path} in {differ}: the folds "
                               "come from different runs; re-export the run")
    return Ensemble(model=model, family=str(first["family"]), folds=folds,
                    input_names=list(first["input_names"]),
                    input_features=str(first["input_features"]),
                    time_base=TimeBase.from_task(first) if sequences else None,
                    score_levels=[int(v) for v in first["score_levels"]],
                    prepare=first.get("prepare"), task=first.get("task"),
                    left_out=left_out)


# What ONNX Runtime raises for a file it cannot load (its own classes derive from Exception only)
_ORT_LOAD_ERRORS = (ValueError, RuntimeError, OSError, ort_state.InvalidProtobuf, ort_state.Fail,
                    ort_state.InvalidGraph, ort_state.NoSuchFile, ort_state.InvalidArgument)


def fold_problems(run_dir: Path, model_dir: Path) -> list[str]:
    """Folds of ``model_dir`` without a ``model.onnx``: a fold folder that lacks it (with the
    export error training recorded, if any), or a fold run.json's ``n_folds`` expects but that has
    no folder."""
    problems = []
    expected = _expected_folds(run_dir)
    present = {p.name for p in model_dir.glob("fold_*") if p.is_dir()}
    problems += [f"{model_dir / f'fold_{k}'}: missing (run.json expects {expected} folds)"
                 for k in range(expected or 0) if f"fold_{k}" not in present]
    for name in sorted(present, key=lambda n: _fold_index(model_dir / n)):
        if (model_dir / name / ONNX_NAME).exists():
            continue
        recorded = _recorded_export_error(model_dir / name)
        problems.append(f"{model_dir / name / ONNX_NAME}: missing"
                        + (f" (export failed: {recorded})" if recorded else ""))
    return problems


def _expected_folds(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / "run.json").read_text())["n_folds"])
    except (OSError, ValueError, KeyError, TypeError):  # no run.json: only the folders tell
        return None


def _recorded_export_error(fold_dir: Path) -> str:
    try:
        return str(json.loads((fold_dir / "metrics.json").read_text()).get("onnx_error") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def _fold_index(fold_dir: Path) -> int:
    try:
        return int(fold_dir.name.split("_", 1)[1])
    except (IndexError, ValueError):
        raise PredictError(f"{fold_dir}: fold folders must be named fold_<k>") from None
