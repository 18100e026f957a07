"""Preparation: a PD4T root (videos or landmark files) -> the HDF5 feature store + QC report.

One module per step, in the order a video goes through them:

- :mod:`~hawkeye.prepare.pd4t`: the PD4T layout and its annotation CSVs (which videos, which
  labels);
- :mod:`~hawkeye.prepare.video`: decoding frames (and their timestamps) with OpenCV;
- :mod:`~hawkeye.prepare.timing`: each video's frame times and rate, implausible rates flagged;
- :mod:`~hawkeye.prepare.landmarks`: MediaPipe hand landmarks, hand choice, gap filling;
- :mod:`~hawkeye.prepare.pose`: MediaPipe Pose body landmarks and the leg choice;
- :mod:`~hawkeye.prepare.tasks`: which landmark model and feature set each task uses;
- :mod:`~hawkeye.prepare.sources`: one video's landmarks and frame times, from the task's
  MediaPipe model or a precomputed file;
- :mod:`~hawkeye.prepare.features`: clinical kinematic features of finger tapping
  (``docs/features.md``); :mod:`~hawkeye.prepare.cycles` runs its cycle machinery on the traces
  of :mod:`~hawkeye.prepare.hand_movement`, :mod:`~hawkeye.prepare.leg_agility` and
  :mod:`~hawkeye.prepare.gait`;
- :mod:`~hawkeye.prepare.worker`: one video in a worker process (landmarks, checks, features)
  and the process pool;
- :mod:`~hawkeye.prepare.pipeline`: :func:`~hawkeye.prepare.pipeline.prepare`, the run: store
  lock, flushes, resume, QC report, shards and their merge;
- :mod:`~hawkeye.prepare.qc`: the QC rows, CSV/Markdown report and figures;
- :mod:`~hawkeye.prepare.traces`: trace figures of videos already in the store;
- :mod:`~hawkeye.prepare.checks`: the checks before decoding (settings, input, output folder)
  and after (nothing usable, an empty split);
- :mod:`~hawkeye.prepare.submit`: the same run as a Slurm job array of shards + a merge job;
- :mod:`~hawkeye.prepare.__main__`: ``python -m hawkeye.prepare`` (run here, or submit).

Nothing is imported here, so importing one step (e.g. the features) does not load the others.
"""
