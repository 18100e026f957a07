"""The telemetry task: vehicle sensor windows for fuel regression (TCN) and anomaly detection.

The second source document trained small sequence models on 60-step x 10-signal windows of
synthetic vehicle telemetry; Hawkeye runs the same task through its store, training, launch,
collector and export jobs (``task=telemetry``). This package brings the data into the store:

- :mod:`hawkeye.telemetry.vehicle`: a longitudinal vehicle model that simulates a trip's ten
  signals (:data:`SIGNALS`) and its fuel flow;
- :mod:`hawkeye.telemetry.generate`: the synthetic data set (train without anomalies, validation
  and test with spikes, stuck sensors, harsh braking and overheating), grouped by trip;
- :mod:`hawkeye.telemetry.csv_import`: a user's own telemetry CSV, windowed into the same store.

Command line (``python -m hawkeye.telemetry``, defaults in ``conf/task/telemetry.yaml``)::

    python -m hawkeye.telemetry generate out=data/telemetry.h5 [seed=1 n_train=800 ...]
    python -m hawkeye.telemetry import csv=drives.csv out=data/my_telemetry.h5 \\
        id_column=trip_id label_column=anomaly targets=[fuel_consumption] window=60 stride=30
"""

from hawkeye.telemetry.vehicle import SIGNAL_NAMES, SIGNALS

__all__ = ["SIGNALS", "SIGNAL_NAMES"]
