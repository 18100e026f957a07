"""The benchmark runner's row parsing and table layout."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "run_all", Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py")
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)


def test_parse_rows_keeps_only_bench_lines_and_pads_fields():
    output = ("detail line\n"
              "BENCH | train tcn | 120 seq/s | 125 seq/s | 0.96 | >= 0.9\n"
              "BENCH | short | 1\n")
    assert run_all.parse_rows(output) == [
        ("train tcn", "120 seq/s", "125 seq/s", "0.96", ">= 0.9"),
        ("short", "1", "", "", ""),
    ]


def test_format_table_aligns_columns():
    table = run_all.format_table([("a", "1", "2", "0.5", "<= 1")]).splitlines()
    assert table[0].startswith("| benchmark")
    assert len({len(line) for line in table}) == 1
