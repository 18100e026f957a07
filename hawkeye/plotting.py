"""What every Hawkeye figure shares: the name of the score on an axis, units, readable labels.

A clinician reads an axis as "MDS-UPDRS 3.4 score (0-4)", not "true". The task config names its
score (``task.score_label``, levels ``task.score_min`` .. ``task.score_max``) and, when a model
predicts another target, that target with its unit (``task.target_label``, e.g. fuel consumption
in L/h); :func:`score_scale` reads them, the figure modules (:mod:`hawkeye.report`,
:mod:`hawkeye.prepare.qc`) only ask it. Files are written by :func:`hawkeye.io.save_png`.
"""

from __future__ import annotations

import logging
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)

GENERIC_SCORE = "score"    # what an axis says when the run names no score (an old run, a test)
LABEL_WIDTH = 26           # characters per line of a wrapped tick label (sweep points)


@dataclass(frozen=True)
class ScoreScale:
    """How a task's score and target read on an axis."""

    name: str                       # "MDS-UPDRS 3.4 score"
    low: int | None = None          # lowest level (task.score_min), None when not stated
    high: int | None = None         # highest level (task.score_max)
    target: str | None = None       # a real-valued target with its unit, "fuel consumption (L/h)"

    @property
    def label(self) -> str:
        """The score with its level range: ``MDS-UPDRS 3.4 score (0-4)``."""
        if self.low is None or self.high is None:
            return self.name
        return f"{self.name} ({self.low}-{self.high})"

    @property
    def points(self) -> str:
        """The unit of an error on the score: ``MDS-UPDRS 3.4 score points``."""
        return f"{self.name} points"

    @property
    def target_label(self) -> str:
        """The regression target (with unit), or the score when the target is the score."""
        return self.target or self.label

    @property
    def target_unit(self) -> str:
        """The unit of an error on the target: ``L/h`` from ``fuel consumption (L/h)``."""
        if self.target and self.target.endswith(")") and "(" in self.target:
            return self.target.rsplit("(", 1)[1][:-1]
        return self.points


def score_scale(task: Mapping[str, Any] | None) -> ScoreScale:
    """The :class:`ScoreScale` of a task config section (None or keys missing: generic)."""
    task = task or {}

    def level(key: str) -> int | None:
        value = task.get(key)
        return int(value) if value is not None else None

    return ScoreScale(name=str(task.get("score_label") or GENERIC_SCORE),
                      low=level("score_min"), high=level("score_max"),
                      target=task.get("target_label") or None)


def config_scale(path: str | os.PathLike[str]) -> ScoreScale:
    """The :class:`ScoreScale` of the ``task`` section of a saved ``config.yaml`` (a run's or a
    fold's, written by launch and train); generic when the file is absent or unreadable (a run
    assembled by hand), with a warning for an unreadable one."""
    path = Path(path)
    if not path.is_file():
        return score_scale(None)
    try:
        task = OmegaConf.select(OmegaConf.load(path), "task")
    except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException) as error:
        log.warning("%s unreadable (%s): figures name the score generically", path, error)
        return score_scale(None)
    return score_scale(OmegaConf.to_container(task) if isinstance(task, DictConfig) else None)


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """A long label (``model.hidden=128,train.lr=0.001/attention_lstm``) on several lines, broken
    after ``/`` and ``,`` first, so a tick label is never cut off."""
    spaced = text.replace("/", "/ ").replace(",", ", ")
    lines = textwrap.wrap(spaced, width=width, break_long_words=True, break_on_hyphens=False)
    return "\n".join(line.replace("/ ", "/").replace(", ", ",") for line in lines) or text


def corner_text(ax: Any, text: str, where: str = "upper left") -> None:
    """A headline number (``CV MAE 0.58 [0.52, 0.63]``) boxed in a corner of ``ax``."""
    x, ha = (0.03, "left") if "left" in where else (0.97, "right")
    y, va = (0.97, "top") if "upper" in where else (0.03, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
