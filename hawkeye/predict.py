"""Score new videos with a trained run: the fold ensemble through ONNX Runtime.

``python -m hawkeye.predict video=PATH run_dir=runs/<run> [model=tcn]``

``video`` is one video, one precomputed ``.landmarks.npz`` (the contract of docs/architecture.md;
what ``hawkeye.synthetic`` writes), a folder of them, or a CSV with a ``video`` column (paths
relative to the CSV; optional ``hand`` and ``task`` columns). It may also be sequences the
model's family takes directly (:mod:`hawkeye.sequence_inputs`): a ``.npz`` in the ``store write``
layout (one row per sequence) or a telemetry CSV without a ``video`` column (one row per window),
resampled the same way; a tree model scores a feature table's rows
(:mod:`hawkeye.table_inputs`). Each video goes through exactly the preparation a training video went
through — :func:`hawkeye.prepare.worker.process_video` (decode, the task's MediaPipe model, hand or
side choice, gap filling, the task's features: :mod:`hawkeye.prepare.tasks`), then
:func:`hawkeye.data.model_frames`: resampled by the frame times to the rate and window the model
was trained with (``sample_rate_hz``, ``max_seconds``; a 60 fps phone video gets the same steps
as the same video at 30 fps) — and then through every fold's ``model.onnx`` (which normalises
inside the graph). The preparation settings come from the exported file's metadata (the settings
that built the training store) when it has them, else from the composed ``prepare`` config.

Task-aware: the model records the task it rates (PD4T "Finger tapping"); an input given as
another task (``predict.task``, a ``task`` column of the CSV, or a PD4T path
``Videos/<task>/...``) is refused with the reason unless ``predict.allow_task_mismatch=true``.

Output, in ``predict.out``: ``scores.csv`` (one row per input: the ensemble score, the mean and
standard deviation of the folds' continuous scores, every fold's score, and what a clinician needs
to trust the row: the hand taken and why, the preparation's QC status and reason, detection rate,
tap count, native and model rate; a row whose preparation was flagged, e.g. a hand chosen by
motion against its label, has status ``flagged``, not ``ok``) and ``<id>.trace.png``
per video (the thumb-index distance with the detected taps; ``hawkeye.prepare``'s QC figure).
The score is the fold ensemble's level by the head's rule (:func:`hawkeye.families.
ensemble_levels`: mean class probabilities, soft vote or CORAL thresholds; regression: the mean
expected score rounded), the same rule as the collector's test ensemble. For the LSTM
autoencoder the row holds the reconstruction error instead and how many folds flag the video.

Bad input (no hand found, too few frames, features the model was not trained on, a file that
cannot be read) stops a single-input call with a message naming the file and exit code 1, and
writes nothing. With several inputs every input gets a row (``status`` ``ok`` or ``failed`` with
the ``reason``; a broken symbolic link in a folder too); the exit code is 1 when any failed.

Every fold of the model must be usable: a fold without ``model.onnx`` (or one run.json expects
that never ran) or with a truncated or foreign file stops prediction with each such fold named;
``predict.allow_missing_folds=true`` scores with the others and prints the folds left out.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from hawkeye.cli import PREDICT_HELP, hydra_app
from hawkeye.data import channel_names, model_frames
from hawkeye.ensemble import Ensemble, load_ensemble
from hawkeye.families import csv_number
from hawkeye.io import atomic_path
from hawkeye.plotting import config_scale
from hawkeye.prepare import landmarks as lm
from hawkeye.prepare.features import SERIES_NAMES
from hawkeye.prepare.pd4t import VideoItem
from hawkeye.prepare.qc import FLAGGED as QC_FLAGGED
from hawkeye.prepare.qc import plot_video
from hawkeye.prepare.tasks import TaskSpec
from hawkeye.prepare.worker import PrepareSettings, VideoResult, process_video
from hawkeye.scoring import FAILED, FLAGGED, OK, PredictError, Prediction, score_ensemble, scored
from hawkeye.scoring_task import task_mismatch
from hawkeye.sequence_inputs import (
    SequenceInput,
    is_sequence_file,
    read_sequence_file,
    sequence_model_inputs,
)
from hawkeye.store import VideoEntry
from hawkeye.table_inputs import predict_table
from hawkeye.timebase import VARIABLE_SPREAD

log = logging.getLogger("hawkeye.predict")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
LANDMARKS_SUFFIX = lm.PRECOMPUTED_SUFFIX
SCORES_NAME = "scores.csv"


# ----------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class VideoInput:
    """One thing to score: a video or a ``.landmarks.npz`` file, and the side that taps."""

    path: Path
    hand: str   # "l", "r" or "" (unknown: fine for landmark files, needed for videos)
    task: str = ""  # the clinical task the video shows, as given ("": not said)

    @property
    def id(self) -> str:
        name = self.path.name
        return name[: -len(LANDMARKS_SUFFIX)] if name.endswith(LANDMARKS_SUFFIX) else self.path.stem

    @property
    def is_landmarks(self) -> bool:
        return self.path.name.endswith(LANDMARKS_SUFFIX)


def hand_from_name(stem: str) -> str:
    """``"l"``/``"r"`` from a PD4T-style name ``<visit>_<l|r>``, else ``""``."""
    side = stem.rsplit("_", 1)[-1].lower() if "_" in stem else ""
    return side if side in ("l", "r") else ""


def task_from_path(path: Path) -> str:
    """The PD4T task folder of ``.../Videos/<task>/<subject>/<file>``, else ``""``."""
    parts = path.parts
    if "Videos" in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index("Videos")
        if index + 2 < len(parts):
            return parts[index + 1]
    return ""


def resolve_inputs(video: str | os.PathLike[str], hand: str | None = None,
                   task: str | None = None) -> list[VideoInput]:
    """The inputs named by ``video``: a file, a folder (videos and landmark files in it), or a CSV.

    Each input's task is ``task`` when given, else the CSV's ``task`` column, else the PD4T
    folder its path lies in (:func:`task_from_path`), else unknown.
"""
    inputs = _resolve_paths(video, hand)
    return [replace(inp, task=task or inp.task or task_from_path(inp.path)) for inp in inputs]


def _resolve_paths(video: str | os.PathLike[str], hand: str | None) -> list[VideoInput]:
    """The inputs of :func:`resolve_inputs`, tasks as the CSV gives them.

    In a folder, a ``.landmarks.npz`` beside a video of the same stem is not a second input (the
    video is; ``prepare.landmark_source=precomputed`` reads that file instead of running
    MediaPipe). Raises :class:`PredictError` for a missing path, an empty folder or a bad CSV.
    """
    path = Path(video)
    if not path.exists():
        raise PredictError(f"{path}: not found (video= takes a video, a {LANDMARKS_SUFFIX} "
                           "file, a folder or a CSV with a 'video' column)")
    if path.is_dir():
        # a broken symbolic link is an input too: its row says it is broken (never dropped)
        files = sorted(p for p in path.iterdir()
                       if (p.is_file() or p.is_symlink() and not p.exists()) and _is_input(p))
        videos = {p.stem for p in files if p.suffix.lower() in VIDEO_SUFFIXES}
        files = [p for p in files if not (p.name.endswith(LANDMARKS_SUFFIX)
                                          and p.name[: -len(LANDMARKS_SUFFIX)] in videos)]
        if not files:
            raise PredictError(f"{path}: no video ({', '.join(VIDEO_SUFFIXES)}) or "
                               f"{LANDMARKS_SUFFIX} file in this folder")
        return [_input(p, hand) for p in files]
    if path.suffix.lower() == ".csv":
        return _inputs_from_csv(path, hand)
    if not _is_input(path):
        raise PredictError(f"{path}: not a video ({', '.join(VIDEO_SUFFIXES)}), a "
                           f"{LANDMARKS_SUFFIX} file, a folder or a CSV")
    return [_input(path, hand)]


def _is_input(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES or path.name.endswith(LANDMARKS_SUFFIX)


def _input(path: Path, hand: str | None) -> VideoInput:
    if hand not in (None, "", "l", "r"):
        raise PredictError(f"predict.hand must be l, r or null, got {hand!r}")
    stem = VideoInput(path, "").id
    return VideoInput(path=path, hand=hand or hand_from_name(stem))


def _inputs_from_csv(path: Path, hand: str | None) -> list[VideoInput]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "video" not in rows[0]:
        raise PredictError(f"{path}: a CSV of inputs needs a header with a 'video' column "
                           "(and optionally 'hand': l | r, 'task') and at least one row")
    inputs = []
    for line, row in enumerate(rows, start=2):
        name = (row.get("video") or "").strip()
        if not name:
            raise PredictError(f"{path}, line {line}: empty 'video' field")
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        row_hand = (row.get("hand") or "").strip().lower() or hand
        if row_hand not in (None, "", "l", "r"):
            raise PredictError(f"{path}, line {line}: hand must be l or r, got {row_hand!r}")
        inputs.append(replace(_input(target, row_hand), task=(row.get("task") or "").strip()))
    return inputs


# ----------------------------------------------------------------------------------------------
# Preparation: hawkeye.prepare's per-video function, on an item with no annotation


def prepare_settings(prepare_cfg: Any, ensemble: Ensemble,
                     landmark_source: str) -> PrepareSettings:
    """:class:`PrepareSettings` for scoring: the training store's settings where recorded.

    The recorded ``prepare`` section (features, gap filling, hand choice, detector) decides the
    feature values, so it wins over the composed one. Differences for scoring: no annotated
    frame count to compare with, landmarks kept when the model reads them, each video's trace
    kept (:func:`draw_trace` draws it once scored) and the score named as the run's task names
    it (its fold's ``config.yaml``).
    """
    section = _plain(prepare_cfg)
    if ensemble.prepare is not None:
        section.update({k: v for k, v in ensemble.prepare.items() if k in section})
    else:
        log.warning("%s has no record of the preparation settings of its training store; using "
                    "the composed prepare config (features must match how the store was built)",
                    ensemble.folds[0].path)
    section["landmark_source"] = landmark_source
    section["qc"] = {**_plain(section.get("qc", {})), "plots": True}
    # the training store's landmark model and features (none recorded: finger tapping)
    task = (ensemble.prepare or {}).get("task")
    settings = PrepareSettings.from_config(section, None, task)
    # the trace is drawn once the video is scored (its title names the predicted score)
    spec = replace(settings.task, score=config_scale(ensemble.folds[0].path.parent / "config.yaml"))
    return replace(settings, keep_landmarks=ensemble.input_features != "series",
                   frame_count_tolerance=sys.maxsize, skip_frame_mismatch=False,
                   keep_trace=True, task=spec)


def _plain(section: Any) -> dict[str, Any]:
    if isinstance(section, DictConfig):
        return OmegaConf.to_container(section, resolve=True)  # type: ignore[return-value]
    return dict(section)


def side_question(task: TaskSpec) -> str | None:
    """What a video of ``task`` must say about its side to be prepared from MediaPipe ("which
    hand taps", "which leg is rated"); None when the task measures both sides (gait)."""
    if task.landmarks.name == "hands":
        return "which hand taps"
    return "which leg is rated" if task.features.choose_side is not None else None


def video_item(inp: VideoInput, landmark_source: str,
               question: str | None = "which hand taps") -> VideoItem:
    """The :class:`VideoItem` ``process_video`` takes, for a file outside any PD4T annotation
    (``question``: :func:`side_question` of the model's task)."""
    if inp.is_landmarks:
        video_path, landmarks_path = inp.path, inp.path
    else:
        video_path, landmarks_path = inp.path, lm.precomputed_path(inp.path)
    if landmark_source == "mediapipe" and question and inp.hand not in ("l", "r"):
        raise PredictError(f"{inp.path}: cannot tell {question}: name the file "
                           "<visit>_l.<ext> / <visit>_r.<ext>, add a 'hand' column to the CSV, "
                           "or pass predict.hand=l|r")
    return VideoItem(id=inp.id, visit=inp.id, hand=inp.hand or "l", subject="", frame_count=0,
                     score=-1, split="predict", video_path=video_path,
                     landmarks_path=landmarks_path)


def extract(inp: VideoInput, settings: PrepareSettings) -> VideoResult:
    """Features (``entry``), QC row and trace of one input through
    :func:`hawkeye.prepare.worker.process_video`; PredictError if no features."""
    landmark_source = "precomputed" if inp.is_landmarks else settings.landmark_source
    settings = replace(settings, landmark_source=landmark_source)
    item = video_item(inp, landmark_source, side_question(settings.task))
    result = process_video(item, None, settings)
    if result.entry is None:
        raise PredictError(result.qc.reason or f"{inp.path}: not usable (no reason recorded)")
    return result


@dataclass(frozen=True)
class _OneVideo:
    """The fields of a store that :func:`hawkeye.data.model_frames` reads, for one video."""

    series: np.ndarray
    series_names: tuple[str, ...]
    landmarks: np.ndarray | None
    times: np.ndarray       # (T,) seconds of each frame

    @property
    def offsets(self) -> np.ndarray:
        return np.array([0, len(self.series)])

    def frame_times(self) -> np.ndarray:
        return self.times


def model_inputs(entry: VideoEntry, ensemble: Ensemble, source: Path,
                 series_names: Sequence[str] = SERIES_NAMES) -> tuple[np.ndarray, np.ndarray]:
    """``x (1, L, F)`` float32 and ``mask (1, L)`` bool, built as training built them
    (``series_names``: the task's feature set's, :class:`PrepareSettings` ``.task.features``)."""
    video = _OneVideo(series=entry.series, series_names=tuple(series_names),
                      landmarks=entry.landmarks, times=entry.frame_times())
    names = channel_names(video, ensemble.input_features)
    if names != ensemble.input_names:
        raise PredictError(
            f"{source}: the model {ensemble.model!r} reads {len(ensemble.input_names)} features "
            f"per frame ({_short(ensemble.input_names)}) but hawkeye.prepare computes "
            f"{len(names)} ({_short(names)}); it was trained on other features (a store of your "
            "own sequences?): score such data with the same tool that made them")
    return model_frames(video, ensemble.input_features, ensemble.time_base)


def _short(names: Sequence[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


# ----------------------------------------------------------------------------------------------
# Scoring


def check_duration(entry: VideoEntry, source: Path, min_seconds: float) -> None:
    """PredictError unless the video lasts at least ``min_seconds``."""
    seconds = len(entry.series) / entry.fps
    if not seconds >= min_seconds:
        raise PredictError(f"{source}: {len(entry.series)} frames at {entry.fps:g} fps = "
                           f"{seconds:.2f} s, shorter than predict.min_seconds={min_seconds:g}: "
                           "too few taps to score (the task asks for 10 taps)")


def rate_note(native_fps: float, model_rate_hz: float, variable: bool) -> str:
    """Says how a video at ``native_fps`` reached the model's rate: any camera rate is fine, the
    inputs are resampled by frame time ("" when the rates agree and the rate is constant)."""
    if math.isclose(native_fps, model_rate_hz, rel_tol=1e-3) and not variable:
        return ""
    how = "its frame timestamps (variable frame rate)" if variable else "frame time"
    return f"resampled from {native_fps:.4g} fps to the model's {model_rate_hz:g} Hz by {how}"


def predict_one(inp: VideoInput, ensemble: Ensemble, settings: PrepareSettings,
                plot_dir: Path, min_seconds: float, allow_task_mismatch: bool = False
                ) -> Prediction:
    """Prepare and score one input; a problem becomes ``status="failed"`` with its reason."""
    prediction = Prediction(input=inp, model_rate_hz=ensemble.time_base.sample_rate_hz)
    refusal, prediction.task_note = task_mismatch(ensemble.task, inp.task, allow_task_mismatch)
    if refusal is not None:
        prediction.reason = f"{inp.path}: {refusal}"
        return prediction
    try:
        if inp.path.is_symlink() and not inp.path.exists():
            raise PredictError(f"{inp.path}: broken symbolic link (its target "
                               f"{os.readlink(inp.path)} does not exist)")
        extracted = extract(inp, settings)
        entry, qc = extracted.entry, extracted.qc
        check_duration(entry, inp.path, min_seconds)
        x, mask = model_inputs(entry, ensemble, inp.path, settings.task.features.series_names)
        result = score_ensemble(ensemble, x, mask)
    except (PredictError, ValueError) as error:
        prediction.reason = str(error)
        return prediction
    prediction.timing = qc.timing
    prediction.rate_note = rate_note(entry.fps, prediction.model_rate_hz,
                                     qc.fps_spread > VARIABLE_SPREAD)
    prediction.hand_choice, prediction.hand_detail = qc.hand_choice, qc.hand_detail
    prediction.qc_status, prediction.qc_reason = qc.status, qc.reason
    prediction.detection_rate, prediction.taps = qc.detection_rate, qc.taps
    prediction.reason = "; ".join(filter(None, [qc.reason, prediction.task_note]))
    scored(prediction, result, len(entry.series), entry.fps,
           draw_trace(plot_dir / f"{inp.id}.png", extracted, result, settings.task))
    prediction.status = FLAGGED if qc.status == QC_FLAGGED else OK
    return prediction


def draw_trace(path: Path, extracted: VideoResult, result: dict[str, Any],
               task: TaskSpec) -> str:
    """The video's trace figure, titled with the ensemble's predicted score; returns its path,
    or "" when it could not be drawn (noted in the QC reason, as in prepare)."""
    mean, level = result["mean"], result.get("score")
    said = f"level {level}, " if level is not None else ""
    plot_video(path, extracted.trace, extracted.qc, task.features.trace,
               f"predicted {task.score.name} {mean:.2f} ({said}fold ensemble)")
    return str(path) if path.exists() else ""


def predict_sequence_file(path: Path, ensemble: Ensemble, scratch: Path) -> list[Prediction]:
    """Score every sequence of a ``.npz`` or every window of a telemetry CSV
    (:mod:`hawkeye.sequence_inputs`); a file that cannot be used raises :class:`PredictError`."""
    try:
        store = read_sequence_file(path, ensemble.folds[0].path.parent / "config.yaml", scratch)
        x, mask = sequence_model_inputs(store, ensemble.input_features, ensemble.input_names,
                                        ensemble.time_base, path)
    except ValueError as error:
        raise PredictError(str(error)) from None
    rate = ensemble.time_base.sample_rate_hz
    return [scored(Prediction(input=SequenceInput(path, str(store.ids[i])), model_rate_hz=rate),
                   score_ensemble(ensemble, x[i:i + 1], mask[i:i + 1]), int(store.lengths[i]),
                   float(store.fps[i]))
            for i in range(len(store))]


def predict_inputs(inputs: Sequence[VideoInput], ensemble: Ensemble, prepare_cfg: Any,
                   plot_dir: Path, min_seconds: float,
                   allow_task_mismatch: bool = False) -> list[Prediction]:
    """Score every input (trace figures go to ``plot_dir``)."""
    base = prepare_settings(prepare_cfg, ensemble, _plain(prepare_cfg)["landmark_source"])
    try:
        return [predict_one(inp, ensemble, base, plot_dir, min_seconds, allow_task_mismatch)
                for inp in inputs]
    finally:
        base.task.landmarks.close_process_detector()


# ----------------------------------------------------------------------------------------------
# Outputs


def csv_columns(ensemble: Ensemble) -> list[str]:
    """Columns of scores.csv for this ensemble's family and folds."""
    main, per_fold = ensemble.kind.csv_columns([f.fold for f in ensemble.folds])
    return ["input", "id", "model", "status", "reason", *main, "n_folds", *per_fold, *TRUST_COLUMNS,
            "trace_png"]


# What a clinician needs to trust a row, after the scores (Prediction field -> column).
TRUST_COLUMNS = ("task", "hand", "hand_choice", "hand_detail", "qc_status", "qc_reason",
                 "detection_rate", "taps", "frames", "fps", "timing", "model_rate_hz",
                 "rate_note")


def csv_row(p: Prediction, ensemble: Ensemble) -> dict[str, Any]:
    """One scores.csv row."""
    row: dict[str, Any] = {"input": str(p.input.path), "id": p.input.id, "model": ensemble.model,
                           "status": p.status, "reason": p.reason,
                           "n_folds": len(p.fold_values), "frames": p.frames or "",
                           "fps": csv_number(p.fps), "trace_png": p.trace_png,
                           "task": p.input.task, "hand": p.input.hand,
                           "hand_choice": p.hand_choice, "hand_detail": p.hand_detail,
                           "qc_status": p.qc_status, "qc_reason": p.qc_reason,
                           "detection_rate": csv_number(p.detection_rate),
                           "taps": "" if p.taps is None else p.taps, "timing": p.timing,
                           "model_rate_hz": csv_number(p.model_rate_hz),
                           "rate_note": p.rate_note}
    return {**row, **ensemble.kind.csv_fields(p)}


def write_outputs(predictions: Sequence[Prediction], ensemble: Ensemble, out: Path) -> Path:
    """Publish the trace figures and ``scores.csv`` in ``out`` (each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    for p in predictions:
        if p.trace_png:
            final = out / f"{p.input.id}.trace.png"
            with atomic_path(final) as tmp:
                shutil.copyfile(p.trace_png, tmp)
            p.trace_png = str(final)
    path = out / SCORES_NAME
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=csv_columns(ensemble))
        writer.writeheader()
        writer.writerows(csv_row(p, ensemble) for p in predictions)
    return path


def describe(p: Prediction, ensemble: Ensemble) -> str:
    """One line for the console."""
    if p.status == FAILED:
        return f"{p.input.path}: FAILED: {p.reason}"
    line = f"{p.input.path}: {ensemble.kind.describe(p)}"
    if p.status == FLAGGED:  # scored, but a person should look at the video first
        line += f" -- FLAGGED: {p.reason}"
    elif p.reason:
        line += f" ({p.reason})"
    return f"{line}; {p.rate_note}" if p.rate_note else line


@dataclass(frozen=True)
class PredictRun:
    """What :func:`run_predict` did."""

    ensemble: Ensemble
    predictions: list[Prediction]
    csv: Path                      # scores.csv written


def run_predict(video: str | os.PathLike[str], run_dir: str | os.PathLike[str], model: str,
                prepare_cfg: Any, out: str | os.PathLike[str], hand: str | None = None,
                threads: int = 1, min_seconds: float = 0.0, task: str | None = None,
                allow_task_mismatch: bool = False, allow_missing_folds: bool = False,
                id_column: str | None = None) -> PredictRun:
    """Score ``video`` with the folds of ``<run_dir>/<model>``, write to ``out``.

    A single input that fails (a task mismatch included, unless ``allow_task_mismatch``) raises
    :class:`PredictError` and nothing is written. Several inputs: the CSV lists every one (failed
    ones with their reason). Tree models: table rows.
    """
    ensemble = load_ensemble(Path(run_dir), model, threads, allow_missing_folds)
    if ensemble.kind.scores_tables:
        predictions = predict_table(Path(video), ensemble, id_column)
        return PredictRun(ensemble, predictions, write_outputs(predictions, ensemble, Path(out)))
    if is_sequence_file(Path(video)) and Path(video).is_file():
        with tempfile.TemporaryDirectory(prefix="hawkeye-predict-") as scratch:
            predictions = predict_sequence_file(Path(video), ensemble, Path(scratch))
            csv_path = write_outputs(predictions, ensemble, Path(out))
        return PredictRun(ensemble, predictions, csv_path)
    inputs = resolve_inputs(video, hand, task)
    with tempfile.TemporaryDirectory(prefix="hawkeye-predict-") as scratch:
        predictions = predict_inputs(inputs, ensemble, prepare_cfg, Path(scratch), min_seconds,
                                     allow_task_mismatch)
        if len(inputs) == 1 and predictions[0].status == FAILED:
            raise PredictError(predictions[0].reason)
        csv_path = write_outputs(predictions, ensemble, Path(out))
    return PredictRun(ensemble, predictions, csv_path)


@hydra_app(PREDICT_HELP)
def main(cfg: DictConfig) -> None:
    """``python -m hawkeye.predict video=... run_dir=... [model=...]``; exit 1 on any failure."""
    if cfg.get("video") is None or cfg.run_dir is None:
        sys.exit("hawkeye.predict: pass video=<video | .landmarks.npz | folder | CSV> and "
                 "run_dir=<run folder> (and model=<name> if not the default)")
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ INFO lines
    try:
        run = run_predict(cfg.video, cfg.run_dir, str(cfg.model.name), cfg.prepare,
                          cfg.predict.out, cfg.predict.hand, int(cfg.export.ort_threads),
                          float(cfg.predict.min_seconds), cfg.predict.task,
                          bool(cfg.predict.allow_task_mismatch),
                          bool(cfg.predict.allow_missing_folds), cfg.predict.id_column)
    except PredictError as error:
        sys.exit(f"hawkeye.predict: {error}")
    for problem in run.ensemble.left_out:  # only with predict.allow_missing_folds=true
        print(f"hawkeye.predict: WARNING: fold left out, the scores average fewer folds than "
              f"were trained: {problem}", file=sys.stderr)
    for p in run.predictions:
        print(describe(p, run.ensemble))
    print(f"wrote {run.csv}")
    failed = sum(p.status == FAILED for p in run.predictions)
    if failed:
        sys.exit(f"hawkeye.predict: {failed} of {len(run.predictions)} input(s) failed (see the "
                 f"reason column of {run.csv})")


if __name__ == "__main__":
    main()
