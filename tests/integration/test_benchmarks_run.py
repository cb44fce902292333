"""The benchmarks still run (smallest settings): they report numbers, so they are not timed here,
but a benchmark that no longer runs would leave the notes' numbers unreproducible."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    ("module", "args", "prints"),
    [
        ("tests.bench.bench_load_time", ["1"], "ratio:"),
        ("tests.bench.bench_models", ["1"], "tracking + registration + gate overhead"),
        ("tests.bench.bench_lineage_audit", [], "audit verify over 100000 records"),
        ("tests.bench.bench_fuzz", ["3", "dockerfile or audit"], "contract violations: 0"),
    ],
)
def test_benchmark_runs(module: str, args: list[str], prints: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert prints in result.stdout
