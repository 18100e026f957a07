"""One scored input of :mod:`hawkeye.predict`: the :class:`Prediction` record, how a fold
ensemble scores one input (:func:`score_ensemble`) and fills the record (:func:`scored`), and
:class:`PredictError`. Apart from predict.py so the input readers that build predictions
(:mod:`hawkeye.table_inputs`) need not import it: predict imports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hawkeye.sequence_inputs import SequenceInput

if TYPE_CHECKING:  # types only: hawkeye.predict imports this module
    from hawkeye.ensemble import Ensemble
    from hawkeye.predict import VideoInput

OK, FLAGGED, FAILED = "ok", "flagged", "failed"


class PredictError(Exception):
    """An input or a run that cannot be scored; the message names the file and what to do."""


@dataclass
class Prediction:
    """One input's result; ``fold_values`` keyed by fold index."""

    input: VideoInput | SequenceInput
    status: str = FAILED
    reason: str = ""
    frames: int = 0
    fps: float = math.nan                # native rate the features used (frames' median rate)
    timing: str = ""                     # where the frame times came from (QC ``timing``)
    model_rate_hz: float = math.nan      # rate the model's inputs were resampled to
    rate_note: str = ""                  # says when the native rate differs from the model's
    hand_choice: str = ""                # how the hand was chosen (QC ``hand_choice``)
    hand_detail: str = ""                # why
    qc_status: str = ""                  # preparation QC: ok | flagged
    qc_reason: str = ""                  # why flagged (hand chosen by motion, implausible fps ...)
    detection_rate: float = math.nan     # share of frames with a detected hand
    taps: int | None = None              # tap cycles detected
    task_note: str = ""                  # task given differs but allowed, or not recorded
    score: int | None = None             # ensemble level (sequence models)
    mean: float = math.nan               # mean over folds of expected score / reconstruction error
    std: float = math.nan                # their standard deviation over folds (ddof 0)
    flagged: int | None = None           # autoencoder: folds whose threshold the error exceeds
    fold_values: dict[int, float] = field(default_factory=dict)
    fold_levels: dict[int, int] = field(default_factory=dict)
    trace_png: str = ""


def score_ensemble(ensemble: Ensemble, x: np.ndarray,
                   mask: np.ndarray | None = None) -> dict[str, Any]:
    """Every fold run on one padded video (no ``mask``: a table row): values and summary."""
    feeds = {"x": x} if mask is None else {"x": x, "mask": mask}
    return ensemble.kind.score_folds(ensemble.folds, feeds, ensemble.score_levels)


def scored(prediction: Prediction, result: dict[str, Any], frames: int, fps: float,
           trace_png: str = "") -> Prediction:
    """``prediction`` filled with the ensemble's ``result`` (:func:`score_ensemble`)."""
    prediction.status, prediction.frames, prediction.fps = OK, frames, fps
    prediction.mean, prediction.std = result["mean"], result["std"]
    prediction.score, prediction.flagged = result.get("score"), result.get("flagged")
    prediction.fold_values, prediction.fold_levels = result["fold_values"], result["fold_levels"]
    prediction.trace_png = trace_png
    return prediction
