"""Per-video trace figures drawn from the store, for videos that need no new landmarks.

``prepare.qc.plots=true`` on a rerun finds every video cached (same content hash) and used to draw
nothing. The figure (finger tapping; other tasks' cached videos are logged, not drawn) needs only
what the store keeps: the thumb-index distance series, its velocity, the frame times and which
frames had a usable hand; the taps are found again with the same detector
(:func:`hawkeye.prepare.features.detect_taps`) and the recorded feature settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hawkeye.prepare.features import FeatureConfig, detect_taps
from hawkeye.prepare.qc import tap_trace_figure, video_trace
from hawkeye.prepare.tasks import TaskSpec
from hawkeye.store import StoreData, load_store

log = logging.getLogger(__name__)


def stored_usable(data: StoreData, i: int) -> np.ndarray:
    """Frames of video ``i`` with a usable hand: finite x, y of every stored landmark (gap-filled
    frames count, as in :func:`hawkeye.prepare.features.validate_landmarks`), every frame when
    the store keeps no landmarks."""
    rows = slice(data.offsets[i], data.offsets[i + 1])
    if data.landmarks is None:
        return np.ones(rows.stop - rows.start, dtype=bool)
    return np.isfinite(data.landmarks[rows, :, :2]).all(axis=(1, 2))


def draw_stored_traces(store: Path, ids: Iterable[str], plot_dir: Path,
                       config: FeatureConfig, task: TaskSpec) -> list[str]:
    """Draw ``<plot_dir>/<id>.png`` for each stored id in ``ids`` whose figure is missing, on
    ``task``'s trace scale with its score named; returns the ids drawn. A figure that cannot be
    drawn is logged, never fatal."""
    wanted = [i for i in ids if not (plot_dir / f"{i}.png").exists()]
    if not wanted or not store.exists():
        return []
    data = load_store(store)
    position = {video_id: k for k, video_id in enumerate(data.ids.tolist())}
    times = data.frame_times()
    names = list(data.series_names)
    if not {"thumb_index_distance", "thumb_index_velocity"} <= set(names):
        log.warning("%s: no thumb-index series stored (a task other than finger tapping): no "
                    "trace figures drawn for the %d cached video(s)", store, len(wanted))
        return []
    distance_col = names.index("thumb_index_distance")
    velocity_col = names.index("thumb_index_velocity")
    drawn = []
    for video_id in wanted:
        if video_id not in position:
            continue
        k = position[video_id]
        rows = slice(data.offsets[k], data.offsets[k + 1])
        series, usable = data.series[rows].astype(np.float64), stored_usable(data, k)
        presence = usable if data.presence is None else data.presence[rows]
        try:
            taps = detect_taps(series[:, distance_col], series[:, velocity_col],
                               float(data.fps[k]), usable, config)
            trace = video_trace(series[:, distance_col], presence, times[rows], taps)
            tap_trace_figure(plot_dir / f"{video_id}.png", trace,
                             f"{video_id} (stored): {task.score.name} {data.scores[k]} (rated)",
                             task.features.trace)
        except (ValueError, OSError) as err:
            log.warning("%s: trace figure not drawn from the store: %s", video_id, err)
            continue
        drawn.append(video_id)
    return drawn
