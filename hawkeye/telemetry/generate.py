"""Synthetic vehicle telemetry in the shape of the source's data set, written to a Hawkeye store.

Trips are simulated second by second (:mod:`hawkeye.telemetry.vehicle`) and cut into windows of
``window`` samples (60 s at 1 Hz, no overlap). Whole trips go to one split, so a trip never sits on
both sides of a split or of a CV fold: the store's ``subjects`` are trip ids
(``veh<vehicle>_trip<k>``). The training split has no anomalies; the validation and test splits get
``anomaly_rate`` of their windows turned anomalous, the kinds dealt in turn:

=================  =====================================================================
kind               what happens inside the window (the window is labelled 1)
=================  =====================================================================
``spike``          2-4 glitch bursts of 1-3 samples in one sensor, which reads its
                   out-of-range code (rpm 16383.75, coolant 215 degC, brake 250 bar,
                   acceleration +-19.6 m/s^2 = the 2 g full scale), as a corrupted CAN frame
                   or a loose connector does
``stuck``          every reading repeats the last record from an onset in the first third of
                   the window to its end (a hung CAN gateway or logger); the onset falls while
                   the car accelerates or brakes (``|a| >= 1.5 m/s^2``), so the frozen record
                   claims a speed that stays put under a lasting acceleration
``harsh_braking``  an emergency stop simulated through the vehicle physics: -7.5 to -10 m/s^2
                   from 60 km/h or more down to 0-30 % of the speed, a short hold, then the
                   driver accelerates back into the traffic (brake pressure, rpm, throttle,
                   acceleration and fuel all follow); normal braking stays below 2.5 m/s^2
``overheating``    the coolant temperature of a warm engine climbs at 1.2-2.2 degC/s (fan and
                   pump failure under load) to a peak of 120-130 degC and stays there
=================  =====================================================================

Sensor faults (spike, stuck) and overheating are confined to their window (the next window reads
normally again); harsh braking changes the trip itself, since its speed trace drives everything.

Targets, per window, stored under ``targets/`` (see :mod:`hawkeye.store`):

- ``fuel_consumption``: mean fuel flow over the window in L/h, from the *true* states (a sensor
  fault does not change what the engine burns), times ``1 + N(0, fuel_noise)`` (flow-meter noise);
- ``anomaly``: 1 for an anomalous window, else 0; also the store's integer ``scores``, so folds
  are stratified by it.

The store's ``attrs`` record the generator settings, each anomalous window's kind and fault details
and the signal units. Everything is drawn from ``numpy.random.default_rng`` streams keyed by
``(seed, purpose, index)``, so the same settings give the same store.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hawkeye.config import section_values
from hawkeye.store import WriteReport, write_sequences
from hawkeye.telemetry.vehicle import (
    SIGNAL_NAMES,
    SIGNALS,
    draw_driver,
    draw_start,
    draw_terrain,
    draw_vehicle,
    drive,
    sensor_readings,
    vehicle_states,
)

ANOMALY_KINDS = ("spike", "stuck", "harsh_braking", "overheating")
TARGET_UNITS = {"fuel_consumption": "L/h (mean fuel flow over the window)",
                "anomaly": "1 = anomalous window, 0 = normal"}

# what a glitching sensor reads: its out-of-range code (long_accel: +- full scale, sign drawn)
SPIKE_CODES = {"rpm": 16383.75, "coolant_temp": 215.0, "brake_pressure": 250.0, "long_accel": 19.6}
STUCK_MIN_ACCEL = 1.5           # m/s^2 at the onset of a stuck record
HARSH_MIN_SPEED_KMH = 60.0


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of the generator (defaults live in ``conf/task/telemetry.yaml``, ``generator:``)."""

    seed: int
    window: int                          # samples per window (1 Hz)
    n_train: int                         # windows in the train split (no anomalies)
    n_valid: int                         # windows in the valid split
    n_test: int                          # windows in the test split
    anomaly_rate_valid: float            # share of anomalous valid windows
    anomaly_rate_test: float             # share of anomalous test windows
    anomaly_kinds: tuple[str, ...]       # kinds dealt in turn
    trip_windows: tuple[int, int]        # fewest and most windows per trip
    n_vehicles: int                      # vans in the fleet; each trip drives one
    fuel_noise: float                    # relative noise of the fuel target
    region: tuple[float, float]          # (lat, lon) the trips start around

    def __post_init__(self) -> None:
        if self.window < 8:
            raise ValueError(f"window must be >= 8 samples, got {self.window}")
        if min(self.n_train, self.n_valid, self.n_test) < 0 or self.n_train < 1:
            raise ValueError(f"need n_train >= 1 and n_valid, n_test >= 0; got {self.n_train}, "
                             f"{self.n_valid}, {self.n_test}")
        for name in ("anomaly_rate_valid", "anomaly_rate_test"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        unknown = sorted(set(self.anomaly_kinds) - set(ANOMALY_KINDS))
        if unknown or not self.anomaly_kinds:
            raise ValueError(f"anomaly_kinds must be a non-empty subset of {ANOMALY_KINDS}, "
                             f"got {list(self.anomaly_kinds)}")
        low, high = self.trip_windows
        if not 1 <= low <= high:
            raise ValueError(f"trip_windows must be [min, max] with 1 <= min <= max, got "
                             f"{list(self.trip_windows)}")
        if self.n_vehicles < 1 or self.fuel_noise < 0:
            raise ValueError(f"need n_vehicles >= 1 and fuel_noise >= 0, got {self.n_vehicles}, "
                             f"{self.fuel_noise}")

    @classmethod
    def from_mapping(cls, values: Any) -> GeneratorConfig:
        """Build from a plain dict (``task.generator`` as a container); lists become tuples."""
        return cls(**section_values(cls, values, "conf/task/telemetry.yaml, generator:"))


@dataclass
class Trip:
    """One simulated trip: its id, true states and sensor readings ``(T, 10)``."""

    trip_id: str
    split: str
    states: dict[str, np.ndarray]
    readings: np.ndarray
    index: int                           # global trip number (keys its random streams)


@dataclass(frozen=True)
class Windows:
    """The generated data set, one row per window (what goes into the store)."""

    ids: list[str]
    trips: list[str]
    splits: list[str]
    sequences: np.ndarray                # (N, window, 10) float32
    fuel: np.ndarray                     # (N,) L/h
    anomaly: np.ndarray                  # (N,) int64 0/1
    kinds: list[str]                     # "" for normal windows
    details: dict[str, dict[str, Any]]   # window id -> what was injected


def _rng(cfg: GeneratorConfig, purpose: int, index: int = 0) -> np.random.Generator:
    """An independent stream per (seed, purpose, index): adding a trip changes no other trip."""
    return np.random.default_rng([cfg.seed, purpose, index])


_VEHICLES, _TRIP, _STATES, _SENSORS, _PLAN, _FUEL, _LENGTH = range(7)  # stream purposes


def simulate_trip(cfg: GeneratorConfig, index: int, split: str, n_windows: int,
                  vehicles: Sequence[Any], brakings: Sequence[dict[str, Any]] = ()) -> Trip:
    """Simulate trip ``index`` (``n_windows`` windows long), with optional harsh-braking edits."""
    rng = _rng(cfg, _TRIP, index)
    vehicle_index = int(rng.integers(len(vehicles)))
    vehicle = vehicles[vehicle_index]
    driver, terrain, start = draw_driver(rng), draw_terrain(rng), draw_start(rng, cfg.region)
    speed = drive(rng, n_windows * cfg.window, vehicle, driver, terrain)
    for braking in brakings:
        speed = harsh_braking(speed, **braking)
    states = vehicle_states(_rng(cfg, _STATES, index), speed, vehicle, terrain, start)
    readings = sensor_readings(_rng(cfg, _SENSORS, index), states)
    return Trip(f"veh{vehicle_index:02d}_trip{index:04d}", split, states, readings, index)


def harsh_braking(speed: np.ndarray, onset: int, decel: float, end_ratio: float, hold: int,
                  recover: float) -> np.ndarray:
    """Speed trace (m/s) with an emergency stop at ``onset``: brake at ``decel`` m/s^2 to
    ``end_ratio`` of the speed, stand/roll ``hold`` s, then accelerate at ``recover`` m/s^2 until
    the original trace is reached again (the car rejoins the traffic it was following)."""
    out = speed.copy()
    v = speed[onset]
    low = end_ratio * v
    t = onset
    while t + 1 < len(out) and v > low:          # braking
        v = max(low, v - decel)
        t += 1
        out[t] = min(out[t], v)
    for _ in range(min(hold, len(out) - 1 - t)):  # standing or rolling slowly
        t += 1
        out[t] = min(out[t], low)
    while t + 1 < len(out) and v < speed[t + 1]:  # back up to the traffic's speed
        t += 1
        v = min(speed[t], v + recover)
        out[t] = v
    return out


def _trip_lengths(cfg: GeneratorConfig, n_windows: int, first_index: int) -> list[int]:
    """Windows per trip for a split of ``n_windows`` (the last trip is cut to fit)."""
    lengths, index = [], first_index
    while sum(lengths) < n_windows:
        low, high = cfg.trip_windows
        length = int(_rng(cfg, _LENGTH, index).integers(low, high + 1))
        lengths.append(min(length, n_windows - sum(lengths)))
        index += 1
    return lengths


def generate_windows(cfg: GeneratorConfig) -> Windows:
    """Simulate every split's trips, inject the anomalies, cut and label the windows."""
    vehicles = [draw_vehicle(_rng(cfg, _VEHICLES, v)) for v in range(cfg.n_vehicles)]
    plan_rng = _rng(cfg, _PLAN)
    trips: list[Trip] = []
    faults: dict[tuple[int, int], dict[str, Any]] = {}   # (trip index, window) -> fault
    for split, n, rate in (("train", cfg.n_train, 0.0), ("valid", cfg.n_valid,
                                                         cfg.anomaly_rate_valid),
                           ("test", cfg.n_test, cfg.anomaly_rate_test)):
        if n == 0:
            continue
        lengths = _trip_lengths(cfg, n, len(trips))
        first = len(trips)
        split_trips = [simulate_trip(cfg, first + k, split, length, vehicles)
                       for k, length in enumerate(lengths)]
        split_faults = plan_anomalies(plan_rng, cfg, split_trips, round(rate * n))
        for (trip_pos, window), fault in split_faults.items():
            faults[(first + trip_pos, window)] = fault
        brakings: dict[int, list[dict[str, Any]]] = {}
        for (trip_pos, window), fault in split_faults.items():
            if fault["kind"] == "harsh_braking":  # onset within the window -> within the trip
                onset = window * cfg.window + fault["braking"]["onset"]
                edit = {**fault["braking"], "onset": onset}
                brakings.setdefault(trip_pos, []).append(edit)
        for trip_pos, edits in brakings.items():  # re-simulate with the emergency stops
            split_trips[trip_pos] = simulate_trip(cfg, first + trip_pos, split,
                                                  lengths[trip_pos], vehicles, edits)
        trips += split_trips
    return _cut_windows(cfg, trips, faults)


def plan_anomalies(rng: np.random.Generator, cfg: GeneratorConfig, trips: Sequence[Trip],
                   n_anomalies: int) -> dict[tuple[int, int], dict[str, Any]]:
    """Pick ``n_anomalies`` distinct windows of ``trips`` and what to inject into each.

    Kinds are dealt in turn (shuffled once); each kind is placed in a random window where it can
    happen (a harsh stop needs speed, a stuck record a marked acceleration, overheating a warm
    engine). When no window meets that (a tiny data set), the condition is relaxed to half before
    giving up with a ValueError.
    """
    slots = [(t, w) for t, trip in enumerate(trips)
             for w in range(len(trip.readings) // cfg.window)]
    kinds = [cfg.anomaly_kinds[i % len(cfg.anomaly_kinds)] for i in range(n_anomalies)]
    kinds = [kinds[i] for i in rng.permutation(n_anomalies)]
    chosen: dict[tuple[int, int], dict[str, Any]] = {}
    for kind in kinds:
        fault = None
        for strictness in (1.0, 0.5):
            for slot_index in rng.permutation(len(slots)):
                slot = slots[slot_index]
                if slot in chosen:
                    continue
                trip, window = trips[slot[0]], slot[1]
                span = slice(window * cfg.window, (window + 1) * cfg.window)
                fault = _fault(rng, kind, {k: v[span] for k, v in trip.states.items()},
                               cfg.window, strictness)
                if fault is not None:
                    chosen[slot] = fault
                    break
            if fault is not None:
                break
        else:
            raise ValueError(f"no window of the {len(trips)} trips allows a {kind!r} anomaly; "
                             "generate more windows or drop that kind from anomaly_kinds")
    return chosen


def _fault(rng: np.random.Generator, kind: str, states: dict[str, np.ndarray], window: int,
           strictness: float = 1.0) -> dict[str, Any] | None:
    """Parameters of a ``kind`` fault for a window with true ``states``, or None if impossible.

    ``strictness`` scales the speed and acceleration a harsh stop and a stuck record need.
    """
    if kind == "spike":
        signal = str(rng.choice(list(SPIKE_CODES)))
        count = int(rng.integers(2, 5))
        starts = sorted(int(t) for t in rng.choice(window - 2, count, replace=False))
        signs = rng.choice([-1.0, 1.0], count) if signal == "long_accel" else np.ones(count)
        return {"kind": kind, "signal": signal, "starts": starts,
                "widths": [int(w) for w in rng.integers(1, 4, count)],
                "values": [float(sign * SPIKE_CODES[signal]) for sign in signs]}
    if kind == "stuck":
        candidates = np.flatnonzero(np.abs(states["accel"][:window // 3])
                                    >= strictness * STUCK_MIN_ACCEL)
        if not len(candidates):
            return None
        return {"kind": kind, "signals": list(SIGNAL_NAMES), "onset": int(rng.choice(candidates))}
    if kind == "harsh_braking":
        last = min(window // 2, window - 20)
        candidates = np.flatnonzero(states["speed"][3:last]
                                    >= strictness * HARSH_MIN_SPEED_KMH) + 3
        if not len(candidates):
            return None
        braking = {"onset": int(rng.choice(candidates)), "decel": float(rng.uniform(7.5, 10.0)),
                   "end_ratio": float(rng.uniform(0.0, 0.3)), "hold": int(rng.integers(0, 4)),
                   "recover": float(rng.uniform(2.0, 2.8))}
        return {"kind": kind, "braking": braking}
    if kind == "overheating":
        onset = int(rng.integers(0, window // 4))
        if states["coolant_temp"][onset] < 80.0:
            return None
        return {"kind": kind, "onset": onset, "rate": float(rng.uniform(1.2, 2.2)),
                "peak": float(rng.uniform(120.0, 130.0))}
    raise ValueError(f"unknown anomaly kind {kind!r}; known: {ANOMALY_KINDS}")


def apply_fault(readings: np.ndarray, fault: dict[str, Any]) -> np.ndarray:
    """A window's ``(window, 10)`` readings with a spike, stuck or overheating fault applied.

    Harsh braking is already in the readings (it changed the trip's physics), so it passes through.
    """
    out = readings.copy()
    kind = fault["kind"]
    if kind == "spike":
        col = SIGNAL_NAMES.index(fault["signal"])
        for start, width, value in zip(fault["starts"], fault["widths"], fault["values"],
                                       strict=True):
            out[start:start + width, col] = value
    elif kind == "stuck":
        cols = [SIGNAL_NAMES.index(name) for name in fault["signals"]]
        out[fault["onset"]:, cols] = out[fault["onset"], cols]
    elif kind == "overheating":
        col = SIGNAL_NAMES.index("coolant_temp")
        onset = fault["onset"]
        ramp = out[onset, col] + fault["rate"] * np.arange(len(out) - onset)
        wiggle = out[onset:, col] - out[onset, col]  # the sensor's own noise and drift
        out[onset:, col] = np.minimum(ramp, fault["peak"]) + wiggle
    return out


def _cut_windows(cfg: GeneratorConfig, trips: Sequence[Trip],
                 faults: dict[tuple[int, int], dict[str, Any]]) -> Windows:
    ids, trip_ids, splits, sequences, fuel, anomaly, kinds = [], [], [], [], [], [], []
    details: dict[str, dict[str, Any]] = {}
    for trip in trips:
        fuel_rng = _rng(cfg, _FUEL, trip.index)
        for w in range(len(trip.readings) // cfg.window):
            span = slice(w * cfg.window, (w + 1) * cfg.window)
            window_id = f"{trip.trip_id}_w{w:02d}"
            fault = faults.get((trip.index, w))
            readings = trip.readings[span]
            if fault is not None:
                readings = apply_fault(readings, fault)
                details[window_id] = fault
            ids.append(window_id)
            trip_ids.append(trip.trip_id)
            splits.append(trip.split)
            sequences.append(readings.astype(np.float32))
            true_fuel = float(trip.states["fuel_rate"][span].mean())
            fuel.append(true_fuel * (1.0 + fuel_rng.normal(0.0, cfg.fuel_noise)))
            anomaly.append(int(fault is not None))
            kinds.append(fault["kind"] if fault is not None else "")
    return Windows(ids, trip_ids, splits, np.stack(sequences), np.maximum(np.asarray(fuel), 0.0),
                   np.asarray(anomaly, dtype=np.int64), kinds, details)


def write_windows(path: str | os.PathLike[str], windows: Windows, cfg: GeneratorConfig,
                  task: str = "telemetry") -> WriteReport:
    """Write ``windows`` as a new store at ``path`` (replacing any file there, atomically)."""
    attrs = {"task": task, "source": "hawkeye.telemetry generate",
             "generator": _jsonable(dataclasses.asdict(cfg)), "signal_units": SIGNALS,
             "target_units": TARGET_UNITS, "sample_rate_hz": 1.0,
             "anomalies": {i: _jsonable(d) for i, d in windows.details.items()}}
    return write_fresh_store(
        path, ids=windows.ids, sequences=list(windows.sequences), scores=windows.anomaly,
        subjects=windows.trips, splits=windows.splits, fps=1.0,
        channel_names=list(SIGNAL_NAMES), attrs=attrs, source="synthetic-telemetry",
        targets={"fuel_consumption": windows.fuel, "anomaly": windows.anomaly})


def write_fresh_store(path: str | os.PathLike[str], **kwargs: Any) -> WriteReport:
    """:func:`hawkeye.store.write_sequences` into a NEW store that replaces ``path`` atomically.

    Unlike ``write_sequences`` on an existing file, nothing is merged: windows of an earlier,
    larger data set would otherwise stay behind. The file is built beside ``path`` and renamed
    over it, so a killed job leaves the previous store or none, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        built = Path(tmp) / path.name
        report = write_sequences(built, **kwargs)
        os.replace(built, path)
    report.path = path
    return report


def generate(path: str | os.PathLike[str], cfg: GeneratorConfig) -> WriteReport:
    """Generate the synthetic telemetry data set of ``cfg`` into the store at ``path``."""
    return write_windows(path, generate_windows(cfg), cfg)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
