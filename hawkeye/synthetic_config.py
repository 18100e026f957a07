"""Typed settings of the demo generator (:mod:`hawkeye.synthetic`), read from ``conf/synthetic/``.

``conf/synthetic/default.yaml`` is the one place the defaults live; :func:`load_synthetic_config`
composes it through the generator's primary config ``conf/synthetic.yaml`` (with Hydra overrides
such as ``"n_subjects=10"`` or ``"kinematics.severity_sd=0"``) and
returns a frozen :class:`SyntheticConfig`. Every key must be present and have the right type: a
typo or a wrong value fails here naming the key, instead of silently keeping a default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from hawkeye.config import SYNTHETIC_CONFIG_NAME, compose, section_values

N_SCORES = 5  # MDS-UPDRS 3.4 scores 0..4: every per-score table has one entry per score
WHERE = "conf/synthetic/default.yaml"


def _check_range(name: str, pair: tuple[float, float], low: float = 0.0) -> None:
    if not low <= pair[0] <= pair[1]:
        raise ValueError(f"{name} must be [min, max] with {low} <= min <= max, got {list(pair)}")


@dataclass(frozen=True)
class SubjectVariation:
    """What makes one subject's tapping and hand their own, and how their hands' scores differ."""

    hand_score_change: tuple[float, float, float]  # P(hand score = subject's -1, same, +1)
    speed_sd: float                    # log-sd of the subject's tapping-frequency factor
    amplitude_sd: float                # log-sd of the subject's opening-amplitude factor
    rhythm_sd: float                   # log-sd of the subject's rhythm-irregularity factor
    amplitude_range: tuple[float, float]  # the amplitude factor is clipped to this range
    bone_sd: float                     # sd of each bone's length factor (about 1)
    bone_range: tuple[float, float]    # bone length factors are clipped to this range

    def __post_init__(self) -> None:
        probs = self.hand_score_change
        if min(probs) < 0 or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"subjects.hand_score_change must be 3 probabilities summing to 1, "
                             f"got {list(probs)}")
        for name in ("speed_sd", "amplitude_sd", "rhythm_sd", "bone_sd"):
            if getattr(self, name) < 0:
                raise ValueError(f"subjects.{name} must be >= 0, got {getattr(self, name)}")
        _check_range("subjects.amplitude_range", self.amplitude_range)
        _check_range("subjects.bone_range", self.bone_range)


@dataclass(frozen=True)
class Kinematics:
    """The MDS-UPDRS 3.4 severity table (index = score 0..4) and the trial-to-trial noise."""

    severity_sd: float                 # sd of a trial's continuous impairment around its score
    trial_speed_sd: float              # log-sd of a trial's own frequency factor
    trial_rhythm_sd: float             # log-sd of a trial's own factor on rhythm_cv
    trial_amplitude_cv_sd: float       # log-sd of a trial's own factor on amplitude_cv
    trial_pause_sd: float              # log-sd of a trial's own factor on the pause chances
    trial_decrement_sd: float          # sd of a trial's own change of the decrement (share)
    frequency_hz: tuple[float, ...]    # tapping frequency per score, Hz
    amplitude: tuple[float, ...]       # opening per score, share of the hand model's full opening
    amplitude_sd: tuple[float, ...]    # log-sd of a trial's own amplitude factor, per score
    closed_dwell: tuple[float, ...]    # share of each cycle the fingers rest closed
    opening_share: tuple[float, ...]   # share of the movement spent opening (> 0.5: closing faster)
    rhythm_cv: tuple[float, ...]       # log-sd of each cycle's duration per score
    amplitude_cv: tuple[float, ...]    # log-sd of each cycle's amplitude per score
    decrement: tuple[float, ...]       # share of the amplitude lost by the end of the trial
    decrement_onset: tuple[float, ...]  # share of the trial before the decrement begins
    hesitation_per_tap: tuple[float, ...]  # chance of a short pause per tap
    freeze_per_tap: tuple[float, ...]  # chance of a longer arrest per tap
    hesitation_s: tuple[float, float]  # duration range of a short pause, s
    freeze_s: tuple[float, float]      # duration range of an arrest, s
    pause_position: tuple[float, float]  # where in its cycle a pause holds the fingers (share)
    sequence_slowing: float            # cycles lengthen by this share of the current decrement
    start_delay_s: tuple[float, float]  # the tapping starts this long after the recording, s

    def __post_init__(self) -> None:
        tables = ("frequency_hz", "amplitude", "amplitude_sd", "closed_dwell", "opening_share",
                  "rhythm_cv", "amplitude_cv", "decrement", "decrement_onset",
                  "hesitation_per_tap", "freeze_per_tap")
        for name in tables:
            table = getattr(self, name)
            if len(table) != N_SCORES or min(table) < 0:
                raise ValueError(f"kinematics.{name} must hold {N_SCORES} values >= 0 (one per "
                                 f"score 0..4), got {list(table)}")
        if max(self.closed_dwell) >= 1:
            raise ValueError(f"kinematics.closed_dwell must be < 1 (a cycle must move), got "
                             f"{list(self.closed_dwell)}")
        if not 0 < min(self.opening_share) <= max(self.opening_share) < 1:
            raise ValueError(f"kinematics.opening_share must lie in (0, 1), got "
                             f"{list(self.opening_share)}")
        for name in ("amplitude", "decrement", "decrement_onset", "hesitation_per_tap",
                     "freeze_per_tap"):
            if max(getattr(self, name)) > 1:
                raise ValueError(f"kinematics.{name} are shares, at most 1; got "
                                 f"{list(getattr(self, name))}")
        if min(self.frequency_hz) <= 0:
            raise ValueError(f"kinematics.frequency_hz must be > 0, got {list(self.frequency_hz)}")
        for name in ("severity_sd", "trial_speed_sd", "trial_rhythm_sd",
                     "trial_amplitude_cv_sd", "trial_pause_sd", "trial_decrement_sd",
                     "sequence_slowing"):
            if getattr(self, name) < 0:
                raise ValueError(f"kinematics.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("hesitation_s", "freeze_s", "pause_position", "start_delay_s"):
            _check_range(f"kinematics.{name}", getattr(self, name))
        if self.pause_position[1] > 1:
            raise ValueError(f"kinematics.pause_position is a share of a cycle, got "
                             f"{list(self.pause_position)}")


@dataclass(frozen=True)
class Raters:
    """Label noise: the annotated score is the median of several raters' readings of a trial.

    Each rater reads the trial's continuous severity with their own bias and a normal error and
    rounds it to 0..4; the annotation is the median of their ratings, as PARK's ground truth is the
    median of its three experts (see scripts/calibrate_synthetic.py).
    """

    bias: tuple[float, ...]            # each rater's mean offset, score units (one per rater)
    sd: float                          # sd of a rater's reading error, score units

    def __post_init__(self) -> None:
        if len(self.bias) % 2 != 1:
            raise ValueError(f"raters.bias needs an odd number of raters (their median is the "
                             f"annotated score), got {len(self.bias)}")
        if self.sd < 0:
            raise ValueError(f"raters.sd must be >= 0, got {self.sd}")


@dataclass(frozen=True)
class ParkTargets:
    """What the generator was fitted to: PARK's per-score medians of the matched measures.

    Names and definitions are those of :data:`hawkeye.calibration.MEASURES`. Not used to generate:
    they record the targets, so tests can check the generator without PARK's file.
    """

    frequency_hz: tuple[float, ...]           # per score 0..4, Hz
    rhythm_cv: tuple[float, ...]              # per score, ratio
    amplitude_deg: tuple[float, ...]          # per score, degrees
    amplitude_cv: tuple[float, ...]           # per score, ratio
    speed_deg_s: tuple[float, ...]            # per score, degrees / s
    interruptions_per_tap: tuple[float, ...]  # per score, count per tap
    decrement_deg: tuple[float, ...]          # per score, degrees
    rater_vs_consensus_mae: float             # one rater vs the consensus, score units
    rater_pairwise_mae: float                 # two raters vs each other, score units

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple) and len(value) != N_SCORES:
                raise ValueError(f"park.{field.name} must hold {N_SCORES} medians (scores 0..4), "
                                 f"got {list(value)}")

    def medians(self) -> dict[str, tuple[float, ...]]:
        """``{measure: per-score medians}`` for the seven matched measures."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), tuple)}


@dataclass(frozen=True)
class Camera:
    """How a trial is filmed: hand size, rotation and movement in the frame, tracker noise."""

    palm_height_share: tuple[float, float]  # palm length as a share of the frame height
    scale_wobble: float                # relative slow change of the hand's size over the trial
    rotation_deg: float                # in-plane rotation drawn from +-this, degrees
    rotation_drift_deg: float          # per-frame random walk of the rotation, degrees
    landmark_noise: float              # per-landmark, per-frame noise, palm lengths
    drift_px: float                    # per-frame step of the slow drift, pixels per 480 rows
    drift_memory: float                # AR(1) coefficient of the drift (bounds it)
    shake_px: float                    # per-frame camera shake, pixels per 480 rows
    margin: float                      # the hand stays this share of the frame from its edges

    def __post_init__(self) -> None:
        _check_range("camera.palm_height_share", self.palm_height_share)
        if not 0 <= self.drift_memory < 1:
            raise ValueError(f"camera.drift_memory must lie in [0, 1), got {self.drift_memory}")
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"camera.margin must lie in [0, 0.5), got {self.margin}")
        for name in ("scale_wobble", "rotation_deg", "rotation_drift_deg", "landmark_noise",
                     "drift_px", "shake_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"camera.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Tracking:
    """Frames where the hand tracker loses the hand (NaN landmarks)."""

    short_gaps_per_100_frames: float   # rate of short dropouts
    short_gap_frames: tuple[int, int]  # length range of a short dropout, frames
    long_gap_probability: float        # chance that a trial loses the hand once for long
    long_gap_s: tuple[float, float]    # duration range of the long dropout, s
    long_gap_max_share: float          # ... but at most this share of the trial

    def __post_init__(self) -> None:
        if self.short_gaps_per_100_frames < 0:
            raise ValueError(f"tracking.short_gaps_per_100_frames must be >= 0, got "
                             f"{self.short_gaps_per_100_frames}")
        _check_range("tracking.short_gap_frames", self.short_gap_frames, low=1)
        _check_range("tracking.long_gap_s", self.long_gap_s)
        for name in ("long_gap_probability", "long_gap_max_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"tracking.{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything ``python -m hawkeye.synthetic`` draws a dataset from (``conf/synthetic/``)."""

    n_subjects: int                    # subjects, ids 001..n (three digits, so at most 999)
    visits_min: int                    # fewest visits per subject (each visit records both hands)
    visits_max: int                    # most visits per subject
    seed: int                          # seeds everything; same seed -> byte-identical files
    fps: float                         # frames per second of every trial
    min_frames: int                    # shortest trial in frames
    max_frames: int                    # longest trial in frames
    resolutions: tuple[str, ...]       # frame sizes WxH, one drawn per trial
    score_probs: tuple[float, ...]     # subject severity, score 0..4
    test_fraction: float               # share of subjects in the official test split
    valid_fraction: float              # share of subjects in Annotations_split's valid split
    write_split: bool                  # also write Annotations_split/<task>/{train,valid,test}.csv
    render_videos: bool                # also write .mp4 videos that draw the simulated hand
    task: str                          # PD4T task folder name
    subjects: SubjectVariation
    kinematics: Kinematics
    raters: Raters
    park: ParkTargets
    camera: Camera
    tracking: Tracking

    def __post_init__(self) -> None:
        if not 1 <= self.n_subjects <= 999:
            raise ValueError(f"n_subjects must be 1..999 (three-digit ids), got {self.n_subjects}")
        if not 1 <= self.visits_min <= self.visits_max:
            raise ValueError(f"need 1 <= visits_min <= visits_max, got {self.visits_min}, "
                             f"{self.visits_max}")
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames}, "
                             f"{self.max_frames}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if len(self.score_probs) != N_SCORES or min(self.score_probs) < 0 or not math.isclose(
                sum(self.score_probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"score_probs must be 5 non-negative numbers summing to 1, "
                             f"got {list(self.score_probs)}")
        if not (0 < self.test_fraction < 1 and 0 <= self.valid_fraction < 1
                and self.test_fraction + self.valid_fraction < 1):
            raise ValueError(f"need 0 < test_fraction, 0 <= valid_fraction, sum < 1; got "
                             f"{self.test_fraction}, {self.valid_fraction}")
        if not self.resolutions:
            raise ValueError("resolutions must name at least one WxH frame size")
        for resolution in self.resolutions:
            parse_resolution(resolution)


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)`` (width, height in pixels), or ``ValueError``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution must look like 1920x1080, got {text!r}") from None
    if width < 16 or height < 16:
        raise ValueError(f"resolution too small: {text!r}")
    return width, height


# ---------------------------------------------------------------------------------------------
# reading: a composed mapping -> checked, typed dataclasses


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)


def _typed(kind: Any, value: Any, where: str) -> Any:
    """``value`` as type ``kind`` (bool, int, float, str or a tuple of them), or ``ValueError``."""
    origin = get_origin(kind)
    if origin is tuple:
        args = get_args(kind)
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {list(value)}")
        return tuple(_typed(a, v, where) for a, v in zip(args, value, strict=True))
    ok = {bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, int | float) and not isinstance(value, bool),
          str: isinstance(value, str)}
    if not ok.get(kind, False):
        raise ValueError(f"{where}={value!r}: expected {_type_name(kind)}")
    return float(value) if kind is float else value


def build_section(cls: type, section: Mapping[str, Any], where: str) -> Any:
    """Dataclass ``cls`` from a plain mapping: exact keys (``section_values``), checked types,
    nested dataclass fields built from nested mappings."""
    values = section_values(cls, section, where)
    hints = get_type_hints(cls)
    built = {}
    for name, value in values.items():
        kind = hints[name]
        path = f"{where}.{name}" if where != WHERE else name
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            if not isinstance(value, Mapping):
                raise ValueError(f"{path}: expected a section of keys, got {value!r}")
            built[name] = build_section(kind, value, path)
        else:
            built[name] = _typed(kind, value, path)
    return cls(**built)


def synthetic_config_from(cfg: DictConfig) -> SyntheticConfig:
    """The checked :class:`SyntheticConfig` of a composed ``conf/synthetic.yaml`` (its ``out``,
    the folder to write, is not a generator setting and is left out)."""
    section = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(section, dict)
    section.pop("out", None)
    return build_section(SyntheticConfig, section, WHERE)


def load_synthetic_config(overrides: Sequence[str] = ()) -> SyntheticConfig:
    """Compose ``conf/synthetic.yaml`` with ``overrides`` (``["n_subjects=10"]``; ``synthetic=easy``
    picks another file of ``conf/synthetic/``), as ``python -m hawkeye.synthetic`` does."""
    try:
        cfg = compose(overrides, config_name=SYNTHETIC_CONFIG_NAME)
    except HydraException as err:  # an unknown key or a malformed value: say which file
        raise ValueError(f"{WHERE}: {err}") from None
    return synthetic_config_from(cfg)
