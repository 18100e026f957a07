"""The benchmark runner's row parsing and table layout."""

import importlib.util
import os
import subprocess
import sys
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


def test_bench_gpu_without_cuda_skips_with_a_message_and_exit_0():
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this path is the one taken on every CPU machine
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "skipped, no CUDA device is visible" in proc.stdout
    assert "BENCH |" not in proc.stdout
