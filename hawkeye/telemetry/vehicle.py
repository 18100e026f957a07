"""A small longitudinal vehicle model: one trip's true signals, its sensors and its fuel flow.

Everything runs at 1 Hz (``DT = 1`` s), in SI units inside and in the units of :data:`SIGNALS`
outside. A trip is simulated in three stages, each a pure function of its inputs and a numpy
``Generator``:

1. :func:`drive` — the driver: urban, suburban and highway segments with their own target speeds
   and stops; the van follows with a first-order controller, acceleration limited by comfort and
   by the engine's power against drag, rolling resistance and the slope.
2. :func:`vehicle_states` — physics from the speed trace: distance and road grade (altitude is a
   smooth random terrain along the road), gear and engine speed (shift logic with hysteresis),
   resistive forces, the engine power the driver must request (throttle), brake pressure,
   coolant temperature, fuel flow, fuel level and the GPS position.
3. :func:`sensor_readings` — what the ten sensors report: the true states plus sensor noise.

The fleet (:func:`draw_vehicle`) is vans of one model that differ in load, tyres, drag and
engine wear; every trip starts warm (vans in service all day).

Fuel flow (:func:`fuel_rate_lph`) is the usual engine picture: friction fuel that grows with rpm,
plus the engine's output power divided by its efficiency and the fuel's heating value, with the
efficiency falling at part load and at high rpm, full-load enrichment above 85 % throttle and a
fuel cut while coasting in gear. The power comes from the tractive force
``m a + m g (C_rr + grade) + rho C_d A v^2 / 2`` times the speed, so the fuel is a function of
speed, acceleration, rpm and throttle (the road grade enters through the throttle and the
accelerometer, which feels gravity along the slope).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DT = 1.0                 # seconds per sample
G = 9.81                 # m/s^2
AIR_DENSITY = 1.2        # kg/m^3
FUEL_MJ_PER_L = 32.0     # lower heating value of petrol, MJ per litre
IDLE_RPM = 800.0
METRES_PER_DEG_LAT = 111_320.0
HOLD_FORCE = 2000.0      # N of brake force that holds the car at a stop
BRAKE_N_PER_BAR = 150.0  # brake force per bar of brake-line pressure

# The ten signals, in column order: name -> unit (the store's series_names are the names).
SIGNALS = {
    "speed": "km/h",
    "rpm": "1/min",
    "throttle": "%",
    "brake_pressure": "bar",
    "coolant_temp": "degC",
    "fuel_level": "%",
    "long_accel": "m/s^2",
    "latitude": "deg",
    "longitude": "deg",
    "altitude": "m",
}
SIGNAL_NAMES = tuple(SIGNALS)

# Driving modes: (target speed range km/h, chance that a new target is a stop, stop length s).
MODES = {
    "urban": ((20.0, 55.0), 0.30, (8, 45)),
    "suburban": ((45.0, 85.0), 0.08, (5, 25)),
    "highway": ((85.0, 130.0), 0.0, (0, 0)),
}
MODE_PROBS = (0.45, 0.30, 0.25)


@dataclass(frozen=True)
class Vehicle:
    """Constants of one vehicle (drawn by :func:`draw_vehicle`)."""

    mass: float              # kg, with driver and load
    drag_area: float         # C_d * A, m^2
    rolling: float           # rolling resistance coefficient C_rr
    rated_power: float       # W, at 5500 rpm
    efficiency: float        # peak brake efficiency of the engine (fraction)
    idle_fuel: float         # L/h at idle rpm
    gear_ratios: tuple[float, ...]  # overall ratio (gearbox x final drive) per gear
    wheel_radius: float      # m
    tank: float              # L


@dataclass(frozen=True)
class Driver:
    """How one trip is driven (drawn per trip by :func:`draw_driver`)."""

    gain: float              # 1/s: how fast the driver closes a speed gap
    max_accel: float         # m/s^2, comfortable acceleration
    max_decel: float         # m/s^2, comfortable braking (positive number)


def draw_vehicle(rng: np.random.Generator) -> Vehicle:
    """One van of the fleet: all are the same model (engine, gearbox), with their own load,
    tyres, body fittings and engine wear (a few percent of efficiency and friction)."""
    return Vehicle(
        mass=rng.uniform(1700.0, 2300.0), drag_area=rng.uniform(0.85, 0.95),
        rolling=rng.uniform(0.010, 0.013), rated_power=100e3 * rng.uniform(0.97, 1.03),
        efficiency=rng.uniform(0.31, 0.33), idle_fuel=rng.uniform(0.75, 0.85),
        gear_ratios=tuple(3.9 * r for r in (3.6, 2.1, 1.4, 1.05, 0.85, 0.7)),
        wheel_radius=rng.uniform(0.32, 0.335), tank=70.0)


def draw_driver(rng: np.random.Generator) -> Driver:
    """A random driver, calm to brisk (normal driving stays below about 2.5 m/s^2)."""
    return Driver(gain=rng.uniform(0.08, 0.2), max_accel=rng.uniform(0.9, 1.8),
                  max_decel=rng.uniform(1.3, 2.4))


# ------------------------------------------------------------------------------------------------
# 1. the driver


def target_speeds(rng: np.random.Generator, n_steps: int) -> np.ndarray:
    """Speed (m/s) the driver aims for each second: mode segments of 3-10 min, cruising targets
    that drift by about 12 km/h every 20-90 s, and (urban, suburban) stops."""
    target = np.zeros(n_steps)
    t, cruise = 0, 0.0
    while t < n_steps:
        mode = str(rng.choice(list(MODES), p=MODE_PROBS))
        (low, high), stop_chance, (stop_min, stop_max) = MODES[mode]
        cruise = float(np.clip(cruise, low, high)) if cruise else rng.uniform(low, high)
        segment_end = min(n_steps, t + int(rng.integers(180, 600)))
        while t < segment_end:
            if rng.random() < stop_chance:
                length, value = int(rng.integers(stop_min, stop_max + 1)), 0.0
            else:
                cruise = float(np.clip(cruise + rng.normal(0.0, 12.0), low, high))
                length, value = int(rng.integers(20, 90)), cruise / 3.6
            target[t:min(t + length, segment_end)] = value
            t += length
    return target


def drive(rng: np.random.Generator, n_steps: int, vehicle: Vehicle, driver: Driver,
          terrain: Terrain) -> np.ndarray:
    """Speed trace (m/s) of one trip that starts from standstill.

    The driver accelerates towards the target at ``gain * gap``, smoothed (no instant jerks) and
    limited by comfort (``max_accel``, ``max_decel``) and by what the engine can give at full power
    against drag, rolling resistance and the slope (so a weak car slows down on a steep climb).
    """
    target = target_speeds(rng, n_steps)
    speed = np.zeros(n_steps)
    v, a, distance = 0.0, 0.0, 0.0
    for t in range(1, n_steps):
        wanted = np.clip(driver.gain * (target[t] - v), -driver.max_decel, driver.max_accel)
        slope = float(terrain.grade(np.array([distance]))[0])
        resist = G * (vehicle.rolling + slope) \
            + 0.5 * AIR_DENSITY * vehicle.drag_area * v * v / vehicle.mass
        power_limit = 0.8 * vehicle.rated_power / (vehicle.mass * max(v, 3.0)) - resist
        a = 0.7 * a + 0.3 * min(wanted, power_limit) + rng.normal(0.0, 0.03)
        v = max(0.0, v + a * DT)
        if target[t] == 0.0 and v < 0.5:  # stopped: hold the brake
            v, a = 0.0, 0.0
        distance += v * DT
        speed[t] = v
    return speed


# ------------------------------------------------------------------------------------------------
# 2. physics


@dataclass(frozen=True)
class Terrain:
    """Altitude along the road: a base height plus a few sine hills (wavelengths 0.4-5 km)."""

    base: float                  # m
    amplitudes: np.ndarray       # m
    wavelengths: np.ndarray      # m
    phases: np.ndarray           # rad

    def altitude(self, distance: np.ndarray) -> np.ndarray:
        """Altitude (m) at each distance (m) along the road."""
        waves = 2 * np.pi * distance[:, None] / self.wavelengths + self.phases
        return self.base + (self.amplitudes * np.sin(waves)).sum(axis=1)

    def grade(self, distance: np.ndarray) -> np.ndarray:
        """Slope d(altitude)/d(distance) (rise per metre) at each distance."""
        waves = 2 * np.pi * distance[:, None] / self.wavelengths + self.phases
        return (self.amplitudes * 2 * np.pi / self.wavelengths * np.cos(waves)).sum(axis=1)


def draw_terrain(rng: np.random.Generator) -> Terrain:
    """Rolling hills: four waves of up to 2.5 % slope each, a few percent together."""
    wavelengths = rng.uniform(400.0, 5000.0, size=4)
    amplitudes = rng.uniform(0.0, 1.0, size=4) * wavelengths * 0.025 / (2 * np.pi)
    return Terrain(base=rng.uniform(20.0, 600.0), amplitudes=amplitudes, wavelengths=wavelengths,
                   phases=rng.uniform(0, 2 * np.pi, size=4))


def max_power(vehicle: Vehicle, rpm: np.ndarray) -> np.ndarray:
    """Full-load power (W) at ``rpm``: rises with rpm to ``rated_power`` at 5500 rpm."""
    x = np.clip(rpm / 5500.0, 0.1, 1.1)
    return vehicle.rated_power * x * (0.6 + 0.4 * x)


def engine_speed(vehicle: Vehicle, speed: np.ndarray, accel: np.ndarray) -> np.ndarray:
    """rpm per sample: gear chosen with hysteresis (up at 2600, or 3300 when accelerating hard;
    down below 1300), clutch slipping at idle rpm below walking pace."""
    rpm = np.empty_like(speed)
    gear = 0
    per_ratio = 60.0 / (2 * np.pi * vehicle.wheel_radius)  # rpm per (m/s) per unit ratio
    for t, (v, a) in enumerate(zip(speed, accel, strict=True)):
        if v < 2.0:
            gear, rpm[t] = 0, IDLE_RPM + 400.0 * v * (a > 0)
            continue
        upshift = 3300.0 if a > 1.2 else 2600.0
        while gear < len(vehicle.gear_ratios) - 1 and \
                v * per_ratio * vehicle.gear_ratios[gear] > upshift:
            gear += 1
        while gear > 0 and v * per_ratio * vehicle.gear_ratios[gear] < 1300.0:
            gear -= 1
        rpm[t] = max(IDLE_RPM, v * per_ratio * vehicle.gear_ratios[gear])
    return rpm


def fuel_rate_lph(vehicle: Vehicle, rpm: np.ndarray, throttle: np.ndarray,
                  engine_power: np.ndarray, coasting: np.ndarray) -> np.ndarray:
    """Fuel flow (L/h): friction fuel (grows with rpm) + power / (efficiency x heating value).

    Efficiency is ``vehicle.efficiency`` at full load and mid rpm, 70 % of it at zero load, and
    falls by up to 15 % above 3000 rpm; above 85 % throttle the mixture is enriched (up to +25 %);
    coasting in gear above 1100 rpm cuts the fuel (no friction fuel either).
    """
    load = np.clip(throttle, 0.0, 1.0)
    efficiency = vehicle.efficiency * (0.7 + 0.3 * np.minimum(load / 0.7, 1.0)) \
        * (1.0 - 0.15 * np.clip((rpm - 3000.0) / 2500.0, 0.0, 1.0))
    enrichment = 1.0 + 0.25 * np.clip((load - 0.85) / 0.15, 0.0, 1.0)
    power_fuel = np.maximum(engine_power, 0.0) / (efficiency * FUEL_MJ_PER_L * 1e6) * 3600.0
    friction_fuel = vehicle.idle_fuel * (rpm / IDLE_RPM) ** 1.3
    cut = coasting & (rpm > 1100.0)
    return np.where(cut, 0.0, (friction_fuel + power_fuel) * enrichment)


@dataclass(frozen=True)
class TripStart:
    """Where and in which state a trip begins."""

    latitude: float          # deg
    longitude: float         # deg
    heading: float           # rad, 0 = north
    coolant: float           # degC at the start
    fuel_level: float        # % of the tank


def draw_start(rng: np.random.Generator, region: tuple[float, float]) -> TripStart:
    """A start within about 30 km of ``region`` (lat, lon). The vans are in service all day, so
    every trip starts with a warm engine (coolant 82-90 degC)."""
    return TripStart(latitude=region[0] + rng.uniform(-0.25, 0.25),
                     longitude=region[1] + rng.uniform(-0.35, 0.35),
                     heading=rng.uniform(0, 2 * np.pi), coolant=rng.uniform(82.0, 90.0),
                     fuel_level=rng.uniform(15.0, 95.0))


def vehicle_states(rng: np.random.Generator, speed: np.ndarray, vehicle: Vehicle,
                   terrain: Terrain, start: TripStart) -> dict[str, np.ndarray]:
    """True per-second states of a trip driven at ``speed`` (m/s), in the units of SIGNALS.

    Also returns ``fuel_rate`` (L/h, the quantity the regression target averages), ``grade``
    and ``accel`` (m/s^2, dv/dt; the accelerometer adds gravity along the slope).
    """
    accel = np.gradient(speed, DT) if len(speed) > 1 else np.zeros_like(speed)
    distance = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * DT)])
    grade = terrain.grade(distance)
    rpm = engine_speed(vehicle, speed, accel)
    resist = vehicle.mass * G * (vehicle.rolling + grade) \
        + 0.5 * AIR_DENSITY * vehicle.drag_area * speed ** 2
    force = vehicle.mass * accel + resist                       # N at the wheels
    moving = speed > 0.5
    engine_brake = np.where(moving & (rpm > 1000.0), 150.0 + 0.12 * rpm, 0.0)  # N, drag in gear
    traction = np.where(moving, np.maximum(force, 0.0), 0.0)
    engine_power = traction * speed / 0.9                        # W at the crankshaft (90 % drive)
    throttle = np.clip(engine_power / max_power(vehicle, rpm), 0.0, 1.0)
    # Braking takes what drag and engine braking leave; at a stop the driver holds the car.
    brake_force = np.where(moving, np.maximum(-force - engine_brake, 0.0), HOLD_FORCE)
    coasting = moving & (force <= 0.0)
    fuel = fuel_rate_lph(vehicle, rpm, throttle, engine_power, coasting)
    coolant = _coolant(start.coolant, throttle, rng)
    fuel_level = start.fuel_level - np.cumsum(fuel) * DT / 3600.0 / vehicle.tank * 100.0
    latitude, longitude = _positions(rng, speed, start)
    return {
        "speed": speed * 3.6, "rpm": rpm, "throttle": throttle * 100.0,
        "brake_pressure": brake_force / BRAKE_N_PER_BAR,
        "coolant_temp": coolant, "fuel_level": fuel_level,
        "long_accel": accel + G * grade, "latitude": latitude, "longitude": longitude,
        "altitude": terrain.altitude(distance),
        "fuel_rate": fuel, "grade": grade, "accel": accel,
    }


def _coolant(start: float, throttle: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coolant temperature: warms up (time constant 200 s) to the thermostat's 88-94 degC."""
    temp = np.empty_like(throttle)
    value = start
    for t, load in enumerate(throttle):
        setpoint = 89.0 + 5.0 * load
        tau = 200.0 if value < 80.0 else 40.0
        value += (setpoint - value) * DT / tau + rng.normal(0.0, 0.02)
        temp[t] = value
    return temp


def _positions(rng: np.random.Generator, speed: np.ndarray,
               start: TripStart) -> tuple[np.ndarray, np.ndarray]:
    """GPS track: the heading wanders, with a sharper turn now and then at low speed."""
    turns = rng.normal(0.0, 0.03, size=len(speed))
    slow = speed < 8.0
    turns += np.where(slow & (rng.random(len(speed)) < 0.05),
                      rng.choice([-1.0, 1.0], len(speed)) * np.pi / 2 / 6, 0.0)
    heading = start.heading + np.cumsum(turns)
    north = np.cumsum(speed * np.cos(heading) * DT)
    east = np.cumsum(speed * np.sin(heading) * DT)
    latitude = start.latitude + north / METRES_PER_DEG_LAT
    longitude = start.longitude + east / (METRES_PER_DEG_LAT * np.cos(np.radians(start.latitude)))
    return latitude, longitude


# ------------------------------------------------------------------------------------------------
# 3. sensors

# Gaussian noise of each sensor (standard deviation, in the signal's unit).
SENSOR_NOISE = {
    "speed": 0.3, "rpm": 15.0, "throttle": 0.5, "brake_pressure": 0.3, "coolant_temp": 0.2,
    "fuel_level": 0.4, "long_accel": 0.08, "latitude": 3.0 / METRES_PER_DEG_LAT,
    "longitude": 3.0 / METRES_PER_DEG_LAT, "altitude": 1.0,
}


def sensor_readings(rng: np.random.Generator, states: dict[str, np.ndarray]) -> np.ndarray:
    """``(T, 10)`` float64 readings in SIGNAL_NAMES order: true states plus sensor noise.

    Readings stay in their physical range (no negative speed, pressure or throttle).
    """
    columns = []
    for name in SIGNAL_NAMES:
        value = states[name] + rng.normal(0.0, SENSOR_NOISE[name], size=len(states[name]))
        if name in ("speed", "rpm", "throttle", "brake_pressure"):
            value = np.maximum(value, 0.0)
        if name in ("throttle", "fuel_level"):
            value = np.minimum(value, 100.0)
        columns.append(value)
    return np.stack(columns, axis=1)
