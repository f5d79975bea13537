"""Smoke runs of the benchmark scripts at their --quick sizes.

Each script checks its own results (equal curves, equal embeddings, each
query embedded once, equal search results) and raises when they disagree,
so a zero exit status means those checks held. Nothing here compares times.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

SCRIPTS = [
    "bench_metrics.py",
    "bench_routers.py",
    "bench_featurizer.py",
    "bench_search.py",
    "bench_image_stats.py",
    "bench_dask.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_run_finishes_with_table(script):
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    # Every script prints at least one table with a header and a data row.
    assert len(lines) >= 3, completed.stdout
