"""The kinematic measures that PARK's feature table and Hawkeye's features share, both ways.

PARK (``../shared/data/park-finger-tapping/``, Islam et al. 2023) describes each video by 116
features of one signal: the angle at the wrist between the thumb tip and the index-finger tip,
in degrees, unfiltered, with taps at the peaks of that angle. Hawkeye's features
(``docs/features.md``) time taps on the thumb-index *distance* (in index-finger lengths) and also
carry the same wrist angle as a per-frame series (``thumb_index_angle``, degrees, low-pass filtered
at 7.5 Hz). A measure is matched when the same quantity can be read from both (PARK column ->
Hawkeye feature):

- ``frequency_hz``: 1 / ``period_mean_denoised`` -> 1 / ``iti_mean_s`` (both the mean
  peak-to-peak interval of the taps);
- ``rhythm_cv``: ``period_stdev_denoised / period_mean_denoised`` -> ``iti_cv`` (both population
  std / mean of the inter-tap intervals);
- ``amplitude_deg``: ``amplitude_median_denoised`` -> median of ``thumb_index_angle`` at the tap
  peaks (Hawkeye's own ``amplitude_mean`` is in index-finger lengths: no PARK counterpart);
- ``amplitude_cv``: ``amplitude_stdev_denoised / amplitude_mean_denoised`` -> std / mean of
  ``thumb_index_angle`` at the tap peaks;
- ``speed_deg_s``: ``speed_median_trimmed`` -> median ``|d thumb_index_angle / dt|`` from the
  second to the second-to-last tap peak (PARK's "trimmed" span);
- ``interruptions_per_tap``: ``num_interruptions_norm_denoised`` -> PARK's rule (runs of at least
  0.2 s with the angle moving at most 50 deg/s) on ``thumb_index_angle``, per tap (Hawkeye's
  ``n_hesitations`` counts long intervals instead, a different definition);
- ``decrement_deg``: ``amplitude_decrement_last_to_first_half_denoised`` -> the same split of
  ``thumb_index_angle`` at the tap peaks (first half minus second half, degrees).

Everything is a pure function of arrays; :func:`read_park_table` is the one reader of the CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hawkeye.prepare.features import (
    SERIES_NAMES,
    SUMMARY_NAMES,
    FeatureConfig,
    VideoFeatures,
    compute_features,
    validate_landmarks,
)

SCORES = (0, 1, 2, 3, 4)
PARK_TABLE = "fingertapping_features_severity_diagnosis_June13_2023.csv"


def park_data_dir(repo: Path) -> Path:
    """Where the real PARK data lies beside a checkout ``repo``: ``../shared/data/park-finger-
    tapping`` (read from there, never copied into the repository; absent in a user's clone)."""
    return repo.parent / "shared" / "data" / "park-finger-tapping"
# PARK's interruption rule (its feature_extraction.py, Signal.INTERRUPTION_*): the angle moves at
# most this fast, for at least this long. Part of the definition being matched, not a setting.
INTERRUPTION_SPEED_DEG_S = 50.0
INTERRUPTION_MIN_S = 0.20
# The three experts (Rating2 and Rating5 are the two non-experts).
EXPERT_RATERS = ("Rating1", "Rating3", "Rating4")
CONSENSUS = "Rating"


@dataclass(frozen=True)
class MatchedMeasure:
    """One kinematic quantity that PARK and Hawkeye both measure."""

    name: str       # key in the tables and in conf/synthetic/default.yaml, park:
    title: str      # what it measures, in words
    label: str      # axis label, with the unit
    park: str       # where PARK's value comes from
    hawkeye: str    # where Hawkeye's value comes from


MEASURES: tuple[MatchedMeasure, ...] = (
    MatchedMeasure("frequency_hz", "tapping frequency", "taps per second (Hz)",
                   "1 / period_mean_denoised", "1 / iti_mean_s"),
    MatchedMeasure("rhythm_cv", "rhythm variability", "inter-tap interval CV (std / mean)",
                   "period_stdev / period_mean (denoised)", "iti_cv"),
    MatchedMeasure("amplitude_deg", "tap amplitude", "wrist angle at the tap peak (deg)",
                   "amplitude_median_denoised", "median thumb_index_angle at tap peaks"),
    MatchedMeasure("amplitude_cv", "amplitude variability", "CV of the peak angles (std / mean)",
                   "amplitude_stdev / amplitude_mean (denoised)",
                   "std / mean of thumb_index_angle at tap peaks"),
    MatchedMeasure("speed_deg_s", "speed", "median angular speed (deg/s)",
                   "speed_median_trimmed",
                   "median |d thumb_index_angle / dt|, 2nd to 2nd-last tap"),
    MatchedMeasure("interruptions_per_tap", "interruptions",
                   "stops >= 0.2 s at <= 50 deg/s, per tap", "num_interruptions_norm_denoised",
                   "runs >= 0.2 s at <= 50 deg/s on thumb_index_angle, per tap"),
    MatchedMeasure("decrement_deg", "amplitude decrement",
                   "peak angle, 1st half - 2nd half (deg)",
                   "amplitude_decrement_last_to_first_half_denoised",
                   "same split of thumb_index_angle at tap peaks"),
)
MEASURE_NAMES = tuple(m.name for m in MEASURES)

_PARK_COLUMNS = ("period_mean_denoised", "period_stdev_denoised", "amplitude_median_denoised",
                 "amplitude_mean_denoised", "amplitude_stdev_denoised", "speed_median_trimmed",
                 "num_interruptions_norm_denoised",
                 "amplitude_decrement_last_to_first_half_denoised")


@dataclass(frozen=True)
class ParkTable:
    """What the calibration needs from PARK's CSV, one entry per video (row)."""

    path: Path
    consensus: np.ndarray              # (N,) int, the ground-truth score (median of the experts)
    experts: np.ndarray                # (N, 3) int, Rating1, Rating3, Rating4
    recording: np.ndarray              # (N,) str, the filename without its hand suffix
    hand: np.ndarray                   # (N,) str, Left | Right
    measures: dict[str, np.ndarray]    # name -> (N,) float, the matched measures
    skipped: tuple[str, ...]           # rows left out, each with its reason


def read_park_table(path: str | Path) -> ParkTable:
    """Read PARK's feature table; a row with an unreadable needed cell is skipped with its reason.

    Raises ``FileNotFoundError`` when the file is absent and ``ValueError`` naming the file when a
    needed column is missing or no row is usable.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        needed = (CONSENSUS, *EXPERT_RATERS, "filename", "hand", *_PARK_COLUMNS)
        missing = [c for c in needed if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: not PARK's feature table, missing columns {missing}")
        rows, skipped = [], []
        for line, row in enumerate(reader, start=2):
            try:
                numbers = {c: float(row[c]) for c in (CONSENSUS, *EXPERT_RATERS, *_PARK_COLUMNS)}
            except ValueError as err:
                skipped.append(f"{path.name} line {line}: {err}")
                continue
            if not all(np.isfinite(v) for v in numbers.values()):
                skipped.append(f"{path.name} line {line}: a needed cell is not finite")
                continue
            rows.append((numbers, row["filename"], row["hand"]))
    if not rows:
        raise ValueError(f"{path}: no usable row ({len(skipped)} skipped: {skipped[:3]})")
    column = {c: np.array([r[0][c] for r in rows]) for c in _PARK_COLUMNS}
    period = column["period_mean_denoised"]
    measures = {
        "frequency_hz": 1.0 / period,
        "rhythm_cv": column["period_stdev_denoised"] / period,
        "amplitude_deg": column["amplitude_median_denoised"],
        "amplitude_cv": column["amplitude_stdev_denoised"] / column["amplitude_mean_denoised"],
        "speed_deg_s": column["speed_median_trimmed"],
        "interruptions_per_tap": column["num_interruptions_norm_denoised"],
        "decrement_deg": column["amplitude_decrement_last_to_first_half_denoised"],
    }
    return ParkTable(
        path=path,
        consensus=np.array([r[0][CONSENSUS] for r in rows]).astype(np.int64),
        experts=np.array([[r[0][c] for c in EXPERT_RATERS] for r in rows]).astype(np.int64),
        recording=np.array([recording_id(r[1]) for r in rows]),
        hand=np.array([r[2] for r in rows]),
        measures=measures, skipped=tuple(skipped))


def recording_id(filename: str) -> str:
    """PARK's file name without its hand part: both hands of one recording share it."""
    stem = filename.removesuffix(".webm")
    for hand in ("-left", "-right"):
        if stem.endswith(hand):
            return stem.removesuffix(hand).rstrip("-")
    return stem


# ---------------------------------------------------------------------------------------------
# Hawkeye's side: the same measures from one video's features


def _peak_half_difference(peaks: np.ndarray) -> float:
    """PARK's decrement: mean of the first ``round(n/2) + 1`` peaks minus the mean of the rest."""
    split = round(peaks.size / 2) + 1
    if split >= peaks.size:
        return float("nan")
    return float(peaks[:split].mean() - peaks[split:].mean())


def interruption_count(angle: np.ndarray, usable: np.ndarray, fps: float) -> int:
    """Runs of frames where ``|d angle/dt| <= 50 deg/s`` for at least 0.2 s, ended by movement.

    PARK's rule (a still stretch counts when the angle starts moving again); a frame without a
    usable hand ends a run without counting it, as PARK's interruption runs only span tracked
    frames. ``angle`` ``(T,)`` degrees, ``usable`` ``(T,)`` bool.
    """
    speed = np.abs(np.gradient(angle, 1.0 / fps))
    still = speed <= INTERRUPTION_SPEED_DEG_S
    count, run = 0, 0
    for is_still, is_usable in zip(still, usable, strict=True):
        if not is_usable:
            run = 0
        elif is_still:
            run += 1
        else:
            count += int(run / fps >= INTERRUPTION_MIN_S)
            run = 0
    return count


def hawkeye_measures(features: VideoFeatures, fps: float, usable: np.ndarray) -> dict[str, float]:
    """The matched measures of one video from its Hawkeye features (NaN where too few taps).

    ``usable``: frames whose landmarks were finite (``hawkeye.features.validate_landmarks``).
    """
    summary = dict(zip(SUMMARY_NAMES, features.summary.astype(np.float64), strict=True))
    angle = features.series[:, SERIES_NAMES.index("thumb_index_angle")].astype(np.float64)
    peaks = features.taps.peak
    at_peaks = angle[peaks]
    nan = float("nan")
    if peaks.size >= 4:
        window = slice(int(peaks[1]), int(peaks[-2]) + 1)
        speed = np.abs(np.gradient(angle, 1.0 / fps))[window][usable[window]]
        median_speed = float(np.median(speed)) if speed.size else nan
    else:
        median_speed = nan
    iti = summary["iti_mean_s"]
    return {
        "frequency_hz": 1.0 / iti if iti > 0 else nan,
        "rhythm_cv": summary["iti_cv"] if peaks.size >= 3 else nan,
        "amplitude_deg": float(np.median(at_peaks)) if peaks.size else nan,
        "amplitude_cv": float(at_peaks.std() / at_peaks.mean()) if peaks.size >= 2 else nan,
        "speed_deg_s": median_speed,
        "interruptions_per_tap": (interruption_count(angle, usable, fps) / peaks.size
                                  if peaks.size else nan),
        "decrement_deg": _peak_half_difference(at_peaks),
    }


def landmark_file_measures(paths: Sequence[str | Path], config: FeatureConfig
                           ) -> dict[str, np.ndarray]:
    """The matched measures of precomputed landmark files (``.landmarks.npz``), ``{name: (N,)}``.

    The features are Hawkeye's own (:func:`hawkeye.features.compute_features` with ``config``, the
    ``prepare.features`` settings), computed as ``prepare`` does for landmark files.
    """
    rows = []
    for path in paths:
        with np.load(path, allow_pickle=False) as archive:
            landmarks, fps = archive["landmarks"], float(archive["fps"])
            width, height = int(archive["width"]), int(archive["height"])
        features = compute_features(landmarks, None, fps, width, height, config)
        _, _, usable = validate_landmarks(landmarks)
        rows.append(hawkeye_measures(features, fps, usable))
    return {name: np.array([row[name] for row in rows], dtype=np.float64)
            for name in MEASURE_NAMES}


# ---------------------------------------------------------------------------------------------
# comparisons


@dataclass(frozen=True)
class ScoreQuartiles:
    """Per-score first quartile, median and third quartile of one measure; NaN where no video."""

    q1: np.ndarray       # (5,)
    median: np.ndarray   # (5,)
    q3: np.ndarray       # (5,)
    count: np.ndarray    # (5,) int, videos with a finite value


def score_quartiles(values: np.ndarray, scores: np.ndarray) -> ScoreQuartiles:
    """Quartiles of ``values`` ``(N,)`` within each score 0..4 of ``scores`` ``(N,)``, NaN aside."""
    values, scores = np.asarray(values, dtype=np.float64), np.asarray(scores)
    out = np.full((3, len(SCORES)), np.nan)
    count = np.zeros(len(SCORES), dtype=np.int64)
    for s in SCORES:
        chosen = values[(scores == s) & np.isfinite(values)]
        count[s] = chosen.size
        if chosen.size:
            out[:, s] = np.percentile(chosen, [25, 50, 75])
    return ScoreQuartiles(q1=out[0], median=out[1], q3=out[2], count=count)


def rater_agreement(consensus: np.ndarray, raters: np.ndarray) -> dict[str, float]:
    """How single raters ``(N, R)`` agree with the consensus ``(N,)`` and with each other.

    ``mae_vs_consensus``, ``exact_vs_consensus``: every rater's rating against the consensus
    (pooled over raters); ``mae_vs_others``: each rater against the mean of the other raters
    (the paper's "expert vs consensus" when the consensus is made without that rater);
    ``pairwise_mae``: mean absolute difference of two raters, over all pairs.
    """
    consensus, raters = np.asarray(consensus, float), np.asarray(raters, float)
    n_raters = raters.shape[1]
    diff = raters - consensus[:, None]
    others = (raters.sum(axis=1, keepdims=True) - raters) / (n_raters - 1)
    pairs = [np.abs(raters[:, a] - raters[:, b]).mean()
             for a in range(n_raters) for b in range(a + 1, n_raters)]
    return {"mae_vs_consensus": float(np.abs(diff).mean()),
            "exact_vs_consensus": float((diff == 0).mean()),
            "mae_vs_others": float(np.abs(raters - others).mean()),
            "pairwise_mae": float(np.mean(pairs))}


def hand_pair_correlation(values: np.ndarray, scores: np.ndarray, recording: Sequence[str],
                          log: bool) -> float:
    """Correlation between the two hands of one recording of a measure's per-score residual.

    The residual is the value (its log with ``log``) minus its score's median: what is left is the
    person's own style plus the trial's noise, so the correlation between a person's two hands is
    the share of that variation that belongs to the person (an intra-class correlation).
    """
    values = np.log(values) if log else np.asarray(values, dtype=np.float64)
    residual = np.full(values.shape, np.nan)
    for s in SCORES:
        chosen = (np.asarray(scores) == s) & np.isfinite(values)
        if chosen.any():
            residual[chosen] = values[chosen] - np.median(values[chosen])
    by_recording: dict[str, list[float]] = {}
    for key, r in zip(recording, residual, strict=True):
        if np.isfinite(r):
            by_recording.setdefault(str(key), []).append(float(r))
    pairs = np.array([v[:2] for v in by_recording.values() if len(v) >= 2])
    if len(pairs) < 3 or not np.all(pairs.std(axis=0) > 0):  # no pairs, or nothing varies
        return float("nan")
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def hand_score_difference(scores: np.ndarray, recording: Sequence[str]) -> dict[int, float]:
    """Share of recordings whose two hands' scores differ by 0, 1, 2, ... (absolute)."""
    by_recording: dict[str, list[int]] = {}
    for key, s in zip(recording, scores, strict=True):
        by_recording.setdefault(str(key), []).append(int(s))
    diffs = np.array([abs(v[0] - v[1]) for v in by_recording.values() if len(v) >= 2])
    return {int(d): float(np.mean(diffs == d)) for d in range(int(diffs.max()) + 1)}



def rater_differences(consensus: np.ndarray, raters: np.ndarray,
                      span: int = 2) -> dict[int, float]:
    """Share of single ratings ``(N, R)`` at each difference -span..span from the consensus
    ``(N,)`` (pooled over raters; differences beyond the span are counted at its ends)."""
    diff = np.clip(np.asarray(raters) - np.asarray(consensus)[:, None], -span, span).ravel()
    return {d: float(np.mean(diff == d)) for d in range(-span, span + 1)}
