"""Code-location load time against `import dagster` alone (a report, not a timed test).

Run: uv run python -m tests.bench.bench_load_time [repeats]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from tests.conftest import REPO


def median_seconds(code: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    median_seconds("import pipelines.definitions", 1)  # warm the bytecode cache
    baseline = median_seconds("import dagster", repeats)
    location = median_seconds("import pipelines.definitions", repeats)
    print(f"import dagster:               {baseline:.3f} s (median of {repeats})")
    print(f"import pipelines.definitions: {location:.3f} s (median of {repeats})")
    print(f"ratio:                        {location / baseline:.2f}x (goal: at most 1.5x)")


if __name__ == "__main__":
    main()
