"""Demo data for every PD4T task: ``python -m hawkeye.synthetic_tasks TASK out=DIR [key=value]``.

``TASK`` is a Hawkeye task name (``conf/task/<TASK>.yaml``). Finger tapping is
:mod:`hawkeye.synthetic`'s dataset, unchanged; the other tasks get landmark files of the shape
their landmark model gives, in the same PD4T layout (``Annotations*/<task>/``,
``Videos/<task>/<subject>/<visit>_<l|r>.landmarks.npz``, ``synthetic_<TASK>.json``) with the same
``key=value`` settings (``conf/synthetic/``, :class:`hawkeye.synthetic_config.SyntheticConfig`; its
``task`` folder is set from ``TASK``). These tasks have no real data to calibrate against, so they
start from ``synthetic=easy`` (the generator before its PARK calibration of finger tapping:
movements slow down as the score rises); ``synthetic=default`` picks the PARK-calibrated tables:

- ``pd4t_hand_movement``: a 21-point hand seen from the front opens and closes all five fingers;
- ``pd4t_leg_agility``: a 33-point seated body lifts the annotated leg's heel;
- ``pd4t_gait``: a 33-point body walks (ankles apart and together once per step, arms swinging),
  turns round half-way and walks back.

Each repeated movement follows finger tapping's severity model
(:func:`hawkeye.synthetic.aperture_trace` of :func:`~hawkeye.synthetic.tapping_params`: slowing,
smaller and decrementing movements, hesitations and freezes as the score rises), at the task's
pace (:data:`PACE`), so a model can learn the score from the features; the annotated score is the
median of the simulated raters' (:func:`hawkeye.synthetic.rate`). Seeded and deterministic like
:mod:`hawkeye.synthetic`; frames the tracker loses are NaN (:func:`hawkeye.synthetic.
drop_frames`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hawkeye import synthetic as syn
from hawkeye.io import write_json_atomic, write_npz_deterministic, write_text_atomic
from hawkeye.prepare import hand_movement, pose
from hawkeye.synthetic_config import SyntheticConfig, load_synthetic_config, parse_resolution

# PD4T folder of each task and how many times faster or slower than finger tapping its movement
# is (finger tapping at score 0 in conf/synthetic/easy.yaml: 3.4 taps/s; hand movement ~2.4
# cycles/s, heel lifts ~2 per s, steps ~1.9 per s).
FOLDERS = {"pd4t_hand_movement": "Hand movement", "pd4t_leg_agility": "Leg agility",
           "pd4t_gait": "Gait"}
PACE = {"pd4t_hand_movement": 0.7, "pd4t_leg_agility": 0.6, "pd4t_gait": 0.55}
DEFAULT_SETTINGS = "synthetic=easy"  # conf/synthetic/easy.yaml unless synthetic=... is given

# (opening trace (T,) in [0, 1], side "l"/"r", amplitude factor, rng) -> (T, K, 2) positions in
# units of the body (hand: palm sizes; body: leg lengths), origin at the body's centre, y down.
Figure = Callable[[np.ndarray, str, float, np.random.Generator], np.ndarray]


def hand_figure(opening: np.ndarray, side: str, amplitude: float,
                rng: np.random.Generator) -> np.ndarray:
    """A front-view right hand (mirrored for ``l``) in palm sizes: the five fingertips from 0.5
    (fist) to 1.6 (open) palm sizes from the palm centre; each finger's middle joints on the line
    from its base (thumb: the wrist; others: the MCP) to its tip."""
    points = np.zeros((opening.size, 21, 2))
    points[:, 0] = (0.0, 0.6)
    for x, mcp in zip((-0.3, -0.1, 0.1, 0.3), (5, 9, 13, 17), strict=True):
        points[:, mcp] = (x, -0.4)
    centre = points[:, list(hand_movement.PALM)].mean(axis=1)
    reach = 0.5 + 1.1 * opening
    for k, tip in enumerate(hand_movement.FINGERTIPS):
        angle = np.deg2rad(160.0 - 30.0 * k)  # thumb out to the side, little finger up-right
        points[:, tip] = centre + reach[:, None] * np.array([np.cos(angle), -np.sin(angle)])
        base, joints = (0, (1, 2, 3)) if tip == 4 else (tip - 3, (tip - 2, tip - 1))
        for step, joint in enumerate(joints, start=1):
            share = step / (len(joints) + 1)
            points[:, joint] = (1 - share) * points[:, base] + share * points[:, tip]
    if side == "l":
        points[..., 0] *= -1
    return points


def _standing_body(n: int) -> np.ndarray:
    """(n, 33, 2) a person facing the camera, in leg lengths, hips at y = 0, feet at y = 1."""
    points = np.zeros((n, 33, 2))
    points[:, pose.POINTS["nose"]] = (0.0, -1.0)
    for side, x in (("l", 0.12), ("r", -0.12)):  # the person's left on the image's right
        for name, at in (("shoulder", (x * 1.5, -0.75)), ("elbow", (x * 1.8, -0.4)),
                         ("wrist", (x * 1.9, -0.1)), ("hip", (x, 0.0)), ("knee", (x, 0.5)),
                         ("ankle", (x, 0.95)), ("heel", (x, 1.0)), ("foot_index", (x, 1.02))):
            points[:, pose.point(name, side)] = at
    return points


def leg_figure(opening: np.ndarray, side: str, amplitude: float,
               rng: np.random.Generator) -> np.ndarray:
    """The ``side`` foot (ankle, heel, toes) and half as much the knee rise by up to 0.5 leg
    lengths x ``opening``; the other leg stays down."""
    points = _standing_body(opening.size)
    lift = 0.5 * opening
    for name, share in (("knee", 0.5), ("ankle", 1.0), ("heel", 1.0), ("foot_index", 1.0)):
        points[:, pose.point(name, side), 1] -= share * lift
    return points


def gait_figure(opening: np.ndarray, side: str, amplitude: float,
                rng: np.random.Generator) -> np.ndarray:
    """Steps: the feet move apart (up to 0.6 leg lengths x ``opening``) and together once per
    cycle, alternating which foot leads; the arms swing against the legs with ``amplitude``; the
    person turns round half-way (shoulders and hips mirrored from then on)."""
    n = opening.size
    points = _standing_body(n)
    valleys = np.r_[False, (opening[1:-1] <= opening[:-2]) & (opening[1:-1] < opening[2:]), False]
    lead = np.where(np.cumsum(valleys) % 2, 1.0, -1.0)  # the other foot leads the next step
    half = 0.3 * opening * lead
    for name in ("ankle", "heel", "foot_index"):
        points[:, pose.point(name, "l"), 0] += half
        points[:, pose.point(name, "r"), 0] -= half
    for arm_side, sign in (("l", -1.0), ("r", 1.0)):
        points[:, pose.point("wrist", arm_side), 0] += sign * 0.25 * amplitude * half / 0.3
    back = np.arange(n) >= n // 2
    points[back, :, 0] *= -1  # facing away: the person's left is now on the image's left
    return points


FIGURES: dict[str, tuple[Figure, int]] = {
    "pd4t_hand_movement": (hand_figure, 21),
    "pd4t_leg_agility": (leg_figure, pose.N_POINTS),
    "pd4t_gait": (gait_figure, pose.N_POINTS),
}


def place(points: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Body units -> normalised (T, K, 3) float32 landmarks (z = 0): a random size (the figure
    spans about 40 % of the frame height), position, and 0.3 %-of-size landmark noise."""
    scale = float(rng.uniform(0.15, 0.22)) * height
    centre = np.array([rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.5) * height])
    pixels = centre + scale * (points + rng.normal(0.0, 0.003, points.shape))
    out = np.zeros(points.shape[:2] + (3,), dtype=np.float32)
    out[..., :2] = pixels / (width, height)
    return out


def generate_task(task: str, out_dir: str | Path, cfg: SyntheticConfig) -> list[dict]:
    """Write the demo dataset of ``task`` (not finger tapping) under ``out_dir``; its trials."""
    figure, _ = FIGURES[task]
    folder = FOLDERS[task]
    root = Path(out_dir)
    rng = np.random.default_rng(cfg.seed)
    subjects = [f"{k:03d}" for k in range(1, cfg.n_subjects + 1)]
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    n_test = max(1, round(cfg.test_fraction * len(order)))
    n_valid = round(cfg.valid_fraction * len(order))
    split = {s: "test" if k < n_test else "valid" if k < n_test + n_valid else "train"
             for k, s in enumerate(order)}
    trials, serial = [], 1000
    for subject in subjects:
        style = syn.draw_style(rng, cfg.subjects)
        severity = int(rng.choice(len(syn.SCORES), p=np.asarray(cfg.score_probs)))
        for _ in range(int(rng.integers(cfg.visits_min, cfg.visits_max + 1))):
            serial += int(rng.integers(1, 400))
            visit = f"{int(rng.integers(15, 24)):02d}-{serial:06d}"
            for side in (("l",) if task == "pd4t_gait" else ("l", "r")):  # gait: one walk
                trial_rng = np.random.default_rng([cfg.seed, 2, len(trials)])
                drawn = int(np.clip(severity + trial_rng.choice(
                    [-1, 0, 1], p=np.asarray(cfg.subjects.hand_score_change)), 0, 4))
                params = syn.tapping_params(drawn, style, trial_rng, cfg.kinematics)
                params = dataclasses.replace(params, frequency_hz=params.frequency_hz * PACE[task])
                ratings = syn.rate(params.severity, np.random.default_rng(
                    [cfg.seed, 3, len(trials)]), cfg.raters)
                score = int(np.median(ratings))
                n_frames = int(trial_rng.integers(cfg.min_frames, cfg.max_frames + 1))
                opening = syn.aperture_trace(params, n_frames, cfg.fps, trial_rng, cfg.kinematics)
                width, height = parse_resolution(cfg.resolutions[int(trial_rng.integers(
                    len(cfg.resolutions)))])
                landmarks = place(figure(opening, side, params.amplitude, trial_rng), width,
                                  height, trial_rng)
                landmarks = syn.drop_frames(landmarks, trial_rng, cfg.tracking, cfg.fps)
                path = root / "Videos" / folder / subject / f"{visit}_{side}.landmarks.npz"
                write_npz_deterministic(path, {
                    "landmarks": landmarks.astype(np.float32), "fps": np.float64(cfg.fps),
                    "width": np.int64(width), "height": np.int64(height)})
                trials.append({"id": f"{visit}_{side}_{subject}", "subject": subject,
                               "score": score, "ratings": list(ratings), "n_frames": n_frames,
                               "split": split[subject],
                               "official_split": "train" if split[subject] != "test" else "test",
                               "params": dataclasses.asdict(params)})
    _write_annotations(root, folder, trials, cfg.write_split)
    write_json_atomic(root / f"synthetic_{task}.json", {
        "generator": "hawkeye.synthetic_tasks", "task": task,
        "config": dataclasses.asdict(cfg), "videos": trials})
    return trials


def _write_annotations(root: Path, folder: str, trials: list[dict], write_split: bool) -> None:
    def rows(chosen: list[dict]) -> str:
        return "".join(f"{t['id']},{t['n_frames']},{t['score']}\n" for t in chosen)

    for name in ("train", "test"):
        write_text_atomic(root / "Annotations" / folder / f"{name}.csv",
                          rows([t for t in trials if t["official_split"] == name]))
    if write_split:
        for name in ("train", "valid", "test"):
            write_text_atomic(root / "Annotations_split" / folder / f"{name}.csv",
                              rows([t for t in trials if t["split"] == name]))


def parse_settings(args: Sequence[str]) -> tuple[Path, SyntheticConfig]:
    """``out=DIR`` and the generator's ``key=value`` overrides (``conf/synthetic.yaml``), from
    ``synthetic=easy`` unless ``synthetic=...`` is given; ValueError names a bad one."""
    out = next((a.split("=", 1)[1] for a in args if a.startswith("out=")), "")
    if not out:
        raise ValueError("missing out=DIR (the PD4T root to write)")
    chosen = any(a.startswith("synthetic=") for a in args)
    return Path(out), load_synthetic_config(list(args) if chosen else [DEFAULT_SETTINGS, *args])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hawkeye.synthetic_tasks TASK out=DIR ...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    tasks = ["pd4t_finger_tapping", *FIGURES]
    if not args or args[0] not in tasks:
        print(f"usage: python -m hawkeye.synthetic_tasks TASK out=DIR [key=value ...]; TASK one "
              f"of {', '.join(tasks)}", file=sys.stderr)
        return 2
    task, rest = args[0], args[1:]
    if task == "pd4t_finger_tapping":
        return syn.main(rest)
    try:
        out, cfg = parse_settings(rest)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trials = generate_task(task, out, dataclasses.replace(cfg, task=FOLDERS[task]))
    counts = np.bincount([t["score"] for t in trials], minlength=len(syn.SCORES))
    print(f"wrote {len(trials)} {FOLDERS[task].lower()} trials of {cfg.n_subjects} subjects to "
          f"{out} (scores 0..4: {counts.tolist()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
