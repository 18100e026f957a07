"""Compare the demo generator with PARK's real finger-tapping videos, measure by measure.

    .venv/bin/python scripts/calibrate_synthetic.py [--park CSV] [--subjects 240]
        [--figure docs/figures/synthetic_vs_park.png] [key=value ...]

Reads PARK's feature table (default ``../shared/data/park-finger-tapping/``, see its ABOUT.md),
generates a data set with ``hawkeye.synthetic`` (``conf/synthetic/default.yaml``; ``key=value``
overrides it, e.g. ``kinematics.severity_sd=0.3``) into a temporary folder, computes Hawkeye's
features of every generated trial, and prints, for each matched measure (``hawkeye.calibration``,
``docs/synthetic.md``) and score 0..4, PARK's and the generator's median and quartiles, then the
label noise (one rater against the consensus, two raters against each other) and how much of the
variation belongs to the person (the correlation between the two hands of one recording). Draws
both side by side into ``--figure``. The PARK medians it prints are what ``park:`` in the config
holds. Without PARK's file it says so and stops (exit 0: a skip, nothing is written).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hawkeye.calibration import (
    MEASURES,
    PARK_TABLE,
    ScoreQuartiles,
    hand_pair_correlation,
    hand_score_difference,
    landmark_file_measures,
    park_data_dir,
    rater_agreement,
    rater_differences,
    read_park_table,
    score_quartiles,
)
from hawkeye.config import compose
from hawkeye.io import atomic_path
from hawkeye.prepare.features import FeatureConfig
from hawkeye.synthetic import SCORES, generate_dataset
from hawkeye.synthetic_config import load_synthetic_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PARK = park_data_dir(REPO) / PARK_TABLE
DEFAULT_FIGURE = REPO / "docs" / "figures" / "synthetic_vs_park.png"
# Measures whose per-person share is compared on a log scale (positive, spread multiplicatively).
LOG_MEASURES = {"frequency_hz": True, "amplitude_deg": True, "speed_deg_s": True,
                "rhythm_cv": False}
PARK_COLOUR, GENERATED_COLOUR = "#1f5fa8", "#d9822b"


def _quartile_text(q: ScoreQuartiles, s: int) -> str:
    if not q.count[s]:
        return "-"
    return f"{q.median[s]:.3g} [{q.q1[s]:.3g}, {q.q3[s]:.3g}] n={q.count[s]}"


def comparison_table(park: Mapping[str, ScoreQuartiles],
                     generated: Mapping[str, ScoreQuartiles]) -> str:
    """Markdown table: per measure and score, median [Q1, Q3] and n of PARK and the generator."""
    lines = ["| measure | score | PARK median [Q1, Q3] | generated median [Q1, Q3] |",
             "|---|---|---|---|"]
    for measure in MEASURES:
        for s in SCORES:
            lines.append(f"| {measure.name} | {s} | {_quartile_text(park[measure.name], s)} | "
                         f"{_quartile_text(generated[measure.name], s)} |")
    return "\n".join(lines)


def draw_comparison(park: Mapping[str, ScoreQuartiles], generated: Mapping[str, ScoreQuartiles],
                    park_raters: Mapping[int, float], generated_raters: Mapping[int, float],
                    rater_mae: tuple[float, float], path: Path) -> None:
    """One panel per measure (median and interquartile range per score, PARK beside the
    generator), and one panel of the label noise (one rater minus the consensus; ``rater_mae``:
    PARK's and the generator's MAE of a rater against the consensus)."""
    fig = Figure(figsize=(15.0, 8.0))
    axes = fig.subplots(2, 4)
    x = np.asarray(SCORES, dtype=np.float64)
    for ax, measure in zip(axes.flat, MEASURES, strict=False):
        for offset, colour, name, q in ((-0.13, PARK_COLOUR, "PARK (real)", park[measure.name]),
                                        (0.13, GENERATED_COLOUR, "generated",
                                         generated[measure.name])):
            shown = q.count > 0
            ax.errorbar(x[shown] + offset, q.median[shown],
                        yerr=[q.median[shown] - q.q1[shown], q.q3[shown] - q.median[shown]],
                        fmt="o", color=colour, capsize=3, lw=1.6, ms=5,
                        label=f"{name}: median, Q1-Q3")
        counts = park[measure.name].count
        ax.set_xticks(x, [f"{s}\n(n={counts[s]})" for s in SCORES], fontsize=8)
        ax.set_xlim(-0.5, 4.5)
        ax.set_xlabel("MDS-UPDRS 3.4 score (n: PARK videos)", fontsize=9)
        ax.set_ylabel(measure.label, fontsize=9)
        ax.set_title(measure.title, fontsize=11)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=2, fontsize=9, frameon=False)
    ax = axes.flat[len(MEASURES)]
    diffs = np.asarray(sorted(park_raters))
    ax.bar(diffs - 0.18, [100 * park_raters[d] for d in diffs], width=0.36, color=PARK_COLOUR,
           label="PARK: 3 experts")
    ax.bar(diffs + 0.18, [100 * generated_raters[d] for d in diffs], width=0.36,
           color=GENERATED_COLOUR, label="generated: 3 raters")
    ax.set_xticks(diffs)
    ax.set_xlabel("a rater's score - consensus (score points)", fontsize=9)
    ax.set_ylabel("share of ratings (%)", fontsize=9)
    ax.set_title("label noise", fontsize=11)
    ax.text(0.03, 0.97, f"MAE vs consensus\nPARK {rater_mae[0]:.2f}\ngenerated {rater_mae[1]:.2f}",
            transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Demo generator vs PARK ({int(park[MEASURES[0].name].count.sum())} real "
                 "videos), per MDS-UPDRS 3.4 score", fontsize=13, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--park", type=Path, default=DEFAULT_PARK, help="PARK's feature CSV")
    parser.add_argument("--subjects", type=int, default=240,
                        help="subjects to generate (240: about PARK's size twice over)")
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE, help="PNG to draw")
    parser.add_argument("overrides", nargs="*", help="key=value of conf/synthetic/default.yaml")
    args = parser.parse_args(argv)
    if not args.park.is_file():
        print(f"skipped: PARK's feature table is not at {args.park} (the real data lives in "
              f"../shared/data/park-finger-tapping/, see its ABOUT.md); nothing compared")
        return 0
    try:
        park = read_park_table(args.park)
        cfg = load_synthetic_config([*args.overrides, f"n_subjects={args.subjects}"])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    features = FeatureConfig.from_config(compose().prepare.features)
    with tempfile.TemporaryDirectory(prefix="hawkeye-calibrate-") as tmp:
        videos = generate_dataset(tmp, cfg)
        measured = landmark_file_measures([v.landmarks_path for v in videos], features)
    scores = np.array([v.score for v in videos])
    ratings = np.array([v.ratings for v in videos])
    recordings = [f"{v.subject}/{v.visit}" for v in videos]
    park_q = {m.name: score_quartiles(park.measures[m.name], park.consensus) for m in MEASURES}
    gen_q = {m.name: score_quartiles(measured[m.name], scores) for m in MEASURES}

    print(f"PARK: {len(park.consensus)} videos from {park.path}"
          + (f" ({len(park.skipped)} rows skipped: {park.skipped[:3]})" if park.skipped else ""))
    print(f"generated: {len(videos)} trials of {cfg.n_subjects} subjects "
          f"(seed {cfg.seed}); scores 0..4: PARK {np.bincount(park.consensus, minlength=5)}, "
          f"generated {np.bincount(scores, minlength=5)}\n")
    print(comparison_table(park_q, gen_q))
    print("\nPARK medians (conf/synthetic/default.yaml, park:):")
    for m in MEASURES:
        print(f"  {m.name}: [{', '.join(f'{v:.3g}' for v in park_q[m.name].median)}]")
    park_agree = rater_agreement(park.consensus, park.experts)
    gen_agree = rater_agreement(scores, ratings)
    print("\n| label noise | PARK (3 experts) | generated (3 raters) |\n|---|---|---|")
    for key, value in park_agree.items():
        print(f"| {key} | {value:.3f} | {gen_agree[key]:.3f} |")
    print("\n| person's share (corr. of the two hands' residuals) | PARK | generated |")
    print("|---|---|---|")
    for name, log in LOG_MEASURES.items():
        real = hand_pair_correlation(park.measures[name], park.consensus, park.recording, log)
        simulated = hand_pair_correlation(measured[name], scores, recordings, log)
        print(f"| {name} | {real:.2f} | {simulated:.2f} |")
    park_hands = hand_score_difference(park.consensus, park.recording)
    gen_hands = hand_score_difference(scores, recordings)
    print("| hands' scores equal (share of recordings) | "
          f"{park_hands.get(0, 0.0):.2f} | {gen_hands.get(0, 0.0):.2f} |")
    draw_comparison(park_q, gen_q, rater_differences(park.consensus, park.experts),
                    rater_differences(scores, ratings),
                    (park_agree["mae_vs_consensus"], gen_agree["mae_vs_consensus"]), args.figure)
    print(f"\nfigure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
