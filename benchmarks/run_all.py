"""Run every ``benchmarks/bench_*.py`` and print one table of the ratios they measured.

Each benchmark prints its own detail and lines of the form
``BENCH | <name> | <measured> | <baseline> | <ratio> | <goal>``; this runner collects those rows
into one table at the end. ``--quick`` is passed through for a smaller run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
HEADER = ("benchmark", "measured", "baseline", "ratio", "goal")


def parse_rows(output: str) -> list[tuple[str, ...]]:
    """The ``BENCH | ...`` rows of one benchmark's output, as tuples of five fields."""
    rows = []
    for line in output.splitlines():
        if line.startswith("BENCH |"):
            fields = tuple(part.strip() for part in line.split("|")[1:])
            rows.append((fields + ("",) * 5)[:5])
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table of benchmark rows with aligned columns."""
    table = [HEADER, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
             for row in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    extra = [arg for arg in argv if arg == "--quick"]
    rows: list[tuple[str, ...]] = []
    failed = []
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(proc.stderr, end="", file=sys.stderr)
            failed.append(script.name)
        rows.extend(parse_rows(proc.stdout))
    print("\n" + format_table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
