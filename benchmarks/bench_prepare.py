"""Benchmark: frames per second of ``hawkeye.prepare`` against the bare work it wraps.

The bare loop is the obvious way to get the landmarks: decode every frame with OpenCV
(``VideoCapture.read`` + ``cvtColor`` to RGB, full size) and run the stock
``mp.solutions.hands.Hands`` on it (tracking mode, ``max_num_hands=2``, the same model complexity
and confidences as prepare's config), in one process, one detector, nothing else.
``hawkeye.prepare`` does the same decoding plus hashing, hand choice, gap filling, features, QC
and atomic HDF5 writes, spread over W worker processes, with its default config: frames decoded
ahead in a thread (``prepare.video.decode_ahead``) and MediaPipe's palm detector searching for a
hand not yet seen every ``prepare.landmarks.new_hand_search_every`` frames instead of every frame
(tracked hands get the same landmarks). Goal: prepare's frames/s >= 1.2 x W x the bare loop's
frames/s with W = 2 workers (issue 18), and the stored landmarks equal to the bare loop's: the
run checks it, frame by frame, and prints the largest difference and the frames where only one
of the two saw a hand.

Clips: real hand photographs (``tests/assets``) moving across 640 x 480 frames, written as mp4v
into a PD4T layout in a temporary folder; the same clips for every measurement. Each measurement
runs in a fresh Python process (a process that already built a MediaPipe graph could not fork
workers), timed inside it from the first frame (bare) or the ``prepare()`` call (prepare), after
imports; the best of ``--repeats`` interleaved rounds is kept, since other jobs share the CPUs.

    python benchmarks/bench_prepare.py [--quick] [--workers N] [--repeats R] [--override K=V ...]
    python benchmarks/bench_prepare.py --resize-study 480,320 [--size 1280x720]

prints ``BENCH | ...`` rows (see benchmarks/run_all.py) and the split of the time into hashing,
decoding, detection and features. ``--resize-study`` instead times stock MediaPipe fed each clip
frame at full size and shrunk to each ``max_side`` (``prepare.video.resize_max_side``), with the
landmark differences to full size in pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"
PHOTOS = ("handDst.jpg", "Back_Projection_Theory0.jpg", "Back_Projection1_Source_Image.jpg")
TASK_DIR = "Finger tapping"
SIZE = "640x480"  # default clip frame size, pixels
GOAL = 1.2  # prepare frames/s / (W x bare loop frames/s), issue 18
LANDMARK_TOLERANCE = 1e-6  # largest |stored - bare loop| landmark coordinate, normalised units


def make_dataset(root: Path, n_clips: int, n_frames: int, size: tuple[int, int]) -> list[Path]:
    """A PD4T layout with ``n_clips`` clips of ``n_frames`` frames of ``size`` (width, height);
    returns the video paths."""
    import cv2

    from hawkeye.prepare.video import moving_image_frames, write_video

    videos, rows = [], {"train": [], "valid": [], "test": []}
    for k in range(n_clips):
        image = cv2.cvtColor(cv2.imread(str(ASSETS / PHOTOS[k % len(PHOTOS)])), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        subject, visit, hand = f"{k + 1:03d}", f"15-{k + 1:06d}", "lr"[k % 2]
        path = root / "Videos" / TASK_DIR / subject / f"{visit}_{hand}.mp4"
        write_video(path, moving_image_frames(image, n_frames, shift=0.05, angle_deg=6.0), 30.0)
        rows[("train", "valid", "test")[k % 3]].append(f"{visit}_{hand}_{subject},{n_frames},1\n")
        videos.append(path)
    folder = root / "Annotations_split" / TASK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (folder / f"{split}.csv").write_text("".join(lines))
    return videos


def measure_bare(videos: list[Path], complexity: int, landmarks_out: Path) -> dict[str, float]:
    """Decode + MediaPipe tracking over every clip, one process, one detector; the hands found
    go to ``landmarks_out`` (npz, one ``(T, 2, 21, 3)`` array per video path, NaN: no hand),
    written after the clock stopped."""
    import cv2
    import mediapipe as mp
    import numpy as np

    start = time.perf_counter()
    decode = detect = 0.0
    frames = 0
    found: dict[str, list] = {}
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2,
                                  model_complexity=complexity) as hands:
        for path in videos:
            hands.reset()
            capture = cv2.VideoCapture(str(path))
            results = found.setdefault(str(path), [])
            while True:
                t0 = time.perf_counter()
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                t1 = time.perf_counter()
                results.append(hands.process(rgb).multi_hand_landmarks or [])
                detect += time.perf_counter() - t1
                decode += t1 - t0
                frames += 1
            capture.release()
    wall = time.perf_counter() - start
    arrays = {}
    for path, per_frame in found.items():
        array = np.full((len(per_frame), 2, 21, 3), np.nan, dtype=np.float32)
        for t, hands_in_frame in enumerate(per_frame):
            for k, hand in enumerate(hands_in_frame[:2]):
                array[t, k] = [(p.x, p.y, p.z) for p in hand.landmark]
        arrays[path] = array
    np.savez(landmarks_out, **arrays)
    return {"frames": frames, "wall_s": wall, "decode_s": decode, "detect_s": detect}


def measure_prepare(root: Path, store: Path, workers: int, complexity: int,
                    overrides: list[str]) -> dict[str, float]:
    """One ``hawkeye.prepare`` run with the default config (plus ``overrides``) into a fresh
    store."""
    import logging

    from hawkeye.config import compose
    from hawkeye.prepare.pipeline import prepare_from_config

    logging.basicConfig(level=logging.WARNING)
    cfg = compose([f"data_root={root}", f"paths.store={store}", f"prepare.workers={workers}",
                   f"prepare.landmarks.model_complexity={complexity}", *overrides])
    start = time.perf_counter()
    report = prepare_from_config(cfg)
    wall = time.perf_counter() - start
    if report.counts.get("ok", 0) == 0:
        raise RuntimeError(f"prepare stored no video: {report.counts}")
    return {"frames": report.frames, "wall_s": wall, "store": str(store), **report.timings}


def landmark_agreement(store: Path, bare_npz: Path) -> dict[str, float]:
    """Stored landmarks against the bare loop's, frame by frame: the largest coordinate
    difference to the nearest bare-loop hand where both saw one, and the frames where only one
    of them did (a stored frame filled by interpolation counts as not seen)."""
    import numpy as np

    from hawkeye.store import load_store

    largest, compared, only_one = 0.0, 0, 0
    with np.load(bare_npz) as bare:
        for entry in load_store(store, require_landmarks=True).entries():
            theirs = bare[entry.source]  # (T, 2, 21, 3)
            ours, seen = entry.landmarks, np.asarray(entry.presence, dtype=bool)
            theirs_seen = ~np.isnan(theirs[:, :, 0, 0])
            if len(theirs) != len(ours):
                raise RuntimeError(f"{entry.source}: {len(ours)} frames stored, bare loop "
                                   f"decoded {len(theirs)}")
            only_one += int((seen != theirs_seen.any(axis=1)).sum())
            for t in np.flatnonzero(seen & theirs_seen.any(axis=1)):
                diffs = [np.abs(ours[t] - hand).max() for hand in theirs[t][theirs_seen[t]]]
                largest = max(largest, float(min(diffs)))
                compared += 1
    return {"max_diff": largest, "frames_compared": compared, "frames_only_one": only_one}


def measure_sizes(videos: list[Path], complexity: int, max_sides: list[int]
                  ) -> list[dict[str, float]]:
    """Stock MediaPipe (as the bare loop) on every clip's frames, at full size and shrunk to each
    of ``max_sides``: ms/frame of detection (the shrinking included) and the landmarks' largest
    x/y difference to the nearest full-size hand, in pixels of the full frame."""
    import mediapipe as mp
    import numpy as np

    from hawkeye.prepare.video import iter_frames, resize_for_detection

    clips = [list(iter_frames(path)) for path in videos]
    height, width = clips[0][0].shape[:2]

    def run(max_side: int | None) -> tuple[list[list[np.ndarray]], float]:
        found, seconds = [], 0.0
        with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2,
                                      model_complexity=complexity) as hands:
            for frames in clips:
                hands.reset()
                for frame in frames:
                    start = time.perf_counter()
                    result = hands.process(resize_for_detection(frame, max_side))
                    seconds += time.perf_counter() - start
                    found.append([np.array([(p.x, p.y) for p in hand.landmark]) * (width, height)
                                  for hand in result.multi_hand_landmarks or []])
        return found, 1000 * seconds / len(found)

    full, full_ms = run(None)
    rows = []
    for max_side in max_sides:
        found, ms = run(max_side)
        pairs = list(zip(found, full, strict=True))
        diffs = [min(float(np.abs(points - other).max()) for other in theirs)
                 for ours, theirs in pairs if ours and theirs for points in ours]
        only_one = sum(bool(ours) != bool(theirs) for ours, theirs in pairs)
        rows.append({"max_side": max_side, "ms": ms, "full_ms": full_ms, "width": width,
                     "height": height, "median_px": float(np.median(diffs)),
                     "p95_px": float(np.percentile(diffs, 95)), "max_px": float(max(diffs)),
                     "frames_only_one": only_one})
    return rows


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children, all threads."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(args: argparse.Namespace) -> None:
    # Imports are not part of the work measured (both sides need MediaPipe and OpenCV loaded).
    import cv2  # noqa: F401
    import mediapipe  # noqa: F401

    import hawkeye.config  # noqa: F401
    import hawkeye.prepare.pipeline  # noqa: F401

    root = Path(args.root)
    cpu = _cpu_seconds()
    videos = sorted((root / "Videos").rglob("*.mp4"))
    if args.measure == "sizes":
        print("RESULT " + json.dumps(measure_sizes(videos, args.complexity,
                                                   _max_sides(args.resize_study))), flush=True)
        return
    if args.measure == "bare":
        result = measure_bare(videos, args.complexity, root.parent / "bare-landmarks.npz")
    else:
        store = Path(args.root).parent / f"store-{args.workers}-{time.time_ns()}.h5"
        result = measure_prepare(root, store, args.workers, args.complexity, args.override)
    result["cpu_s"] = _cpu_seconds() - cpu  # worker processes are reaped when the pool closes
    print("RESULT " + json.dumps(result), flush=True)


def _max_sides(text: str) -> list[int]:
    return [int(side) for side in text.split(",")]


def _run_child(root: Path, measure: str, workers: int, complexity: int, overrides: list[str],
               resize_study: str | None = None) -> Any:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    study = [f"--resize-study={resize_study}"] if resize_study else []
    proc = subprocess.run([sys.executable, __file__, "--child", measure, "--root", str(root),
                           "--workers", str(workers), "--complexity", str(complexity),
                           *(f"--override={override}" for override in overrides), *study],
                          capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{measure} (workers={workers}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _fps(result: dict[str, float]) -> float:
    return result["frames"] / result["wall_s"]


def _print_resize_study(rows: list[dict[str, float]]) -> int:
    for row in rows:
        print(f"BENCH | MediaPipe ms/frame fed at max_side {row['max_side']} "
              f"({row['width']}x{row['height']} clips); landmarks vs full size: median / p95 / max "
              f"{row['median_px']:.1f} / {row['p95_px']:.1f} / {row['max_px']:.1f} px, "
              f"{row['frames_only_one']} frames with a hand in only one | {row['ms']:.1f} ms | "
              f"{row['full_ms']:.1f} ms (full size) | {row['full_ms'] / row['ms']:.2f} | -")
    print(f"load average while measuring (1, 5, 15 min): {os.getloadavg()}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 clips x 45 frames, one round")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for the parallel run (default: all cores)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (best kept)")
    parser.add_argument("--complexity", type=int, default=1, help="MediaPipe model complexity")
    parser.add_argument("--clips", type=int, default=None, help="number of clips")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the prepare runs, e.g. "
                             "prepare.video.decode_ahead=0 (repeatable)")
    parser.add_argument("--size", default=SIZE, help="clip frame size WIDTHxHEIGHT, pixels")
    parser.add_argument("--resize-study", default=None, metavar="SIDE,SIDE,...",
                        help="instead of the prepare comparison: MediaPipe time and landmark "
                             "differences with frames shrunk to each longest side (pixels)")
    parser.add_argument("--child", choices=("bare", "prepare", "sizes"), dest="measure",
                        default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        _child(args)
        return 0

    from hawkeye.prepare.worker import default_workers

    n_clips = args.clips or (4 if args.quick else 8)
    n_frames = args.frames or (45 if args.quick else 90)
    repeats = args.repeats or (1 if args.quick else 2)
    parallel = args.workers or default_workers()
    worker_counts = sorted({1, parallel})
    width, height = (int(side) for side in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        root = Path(tmp) / "PD4T"
        make_dataset(root, n_clips, n_frames, (width, height))
        print(f"clips: {n_clips} x {n_frames} frames, {width}x{height}, MediaPipe complexity "
              f"{args.complexity}, cores available {default_workers()}, rounds {repeats}",
              flush=True)
        if args.resize_study:
            return _print_resize_study(_run_child(root, "sizes", 1, args.complexity, [],
                                                  args.resize_study))
        best: dict[str, dict[str, float]] = {}
        for round_ in range(repeats):
            for key, measure, workers in [("bare", "bare", 1),
                                          *((f"prepare{w}", "prepare", w) for w in worker_counts)]:
                result = _run_child(root, measure, workers, args.complexity, args.override)
                print(f"round {round_ + 1} {key:>9}: {result['frames']} frames in "
                      f"{result['wall_s']:.2f} s = {_fps(result):.1f} frames/s, CPU "
                      f"{result['cpu_s']:.2f} s", flush=True)
                if key not in best or _fps(result) > _fps(best[key]):
                    best[key] = result
        agreement = {workers: landmark_agreement(Path(best[f"prepare{workers}"]["store"]),
                                                 Path(tmp) / "bare-landmarks.npz")
                     for workers in worker_counts}

    bare = best["bare"]
    print(f"bare loop: decode {bare['decode_s']:.2f} s, detect {bare['detect_s']:.2f} s "
          f"({1000 * bare['detect_s'] / bare['frames']:.1f} ms/frame), wall {bare['wall_s']:.2f} s")
    for workers in worker_counts:
        result = best[f"prepare{workers}"]
        other = result["total_s"] - result["decode_s"] - result["detect_s"] - result["features_s"]
        print(f"prepare, {workers} worker(s), summed over workers: hash {result['hash_s']:.2f} s, "
              f"decode {result['decode_s']:.2f} s, detect {result['detect_s']:.2f} s, features "
              f"{result['features_s']:.2f} s, rest {other:.2f} s; wall {result['wall_s']:.2f} s")
    print(f"load average while measuring (1, 5, 15 min): {os.getloadavg()}")
    if args.override:
        print(f"prepare runs with overrides: {' '.join(args.override)}")
    for workers in worker_counts:
        result = best[f"prepare{workers}"]
        baseline = workers * _fps(bare)
        print(f"BENCH | prepare frames/s, {workers} worker(s) | {_fps(result):.1f} frames/s | "
              f"{workers} x {_fps(bare):.1f} frames/s (bare decode+MediaPipe loop) | "
              f"{_fps(result) / baseline:.2f} | >= {GOAL}")
    # Wall-clock scaling needs idle cores; on a shared machine the CPU time per frame says whether
    # prepare's own work (pool, hashing, features, writes) wastes what MediaPipe could use.
    bare_cpu = bare["cpu_s"] / bare["frames"]
    for workers in worker_counts:
        result = best[f"prepare{workers}"]
        cpu = result["cpu_s"] / result["frames"]
        print(f"BENCH | prepare CPU ms/frame, {workers} worker(s) | {1000 * cpu:.1f} ms | "
              f"{1000 * bare_cpu:.1f} ms (bare loop) | {bare_cpu / cpu:.2f} | >= {GOAL}")
    for workers in worker_counts:
        same = agreement[workers]
        print(f"BENCH | prepare landmarks vs bare loop, {workers} worker(s): largest difference "
              f"over {same['frames_compared']} frames, {same['frames_only_one']} frames with a "
              f"hand in only one | {same['max_diff']:.1e} | 0 | - | <= {LANDMARK_TOLERANCE:.0e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
