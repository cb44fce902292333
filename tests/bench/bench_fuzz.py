"""The long fuzzing campaign over every front door (a report, not a test).

Run: uv run python -m tests.bench.bench_fuzz [examples per door] [door filter]
Default 10,000 examples per door, unseeded (each campaign explores anew). Prints per door: the
examples run, the contract violations found (pytest's failures; Hypothesis shrinks each and prints
its reproduction), and the slowest input's time. A violation found becomes an explicit @example or
a regression test, so it stays fixed.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import REPO


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    selection = sys.argv[2] if len(sys.argv) > 2 else ""
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        stats = Path(tmp) / "stats.jsonl"
        env = {
            **os.environ,
            "HYPOTHESIS_PROFILE": "campaign",
            "FUZZ_EXAMPLES": str(examples),
            "FUZZ_STATS": str(stats),
            "GOVERNANCE_CLI_WORKER": "off",
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0"]
        command.append("tests/fuzz")  # a door's campaign may take longer than a test's timeout
        if selection:
            command += ["-k", selection]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        runs: dict[str, list[float]] = collections.defaultdict(list)
        if stats.is_file():
            for line in stats.read_text().splitlines():
                entry = json.loads(line)
                runs[entry["door"]].append(float(entry["seconds"]))
    report = Path(tempfile.gettempdir()) / f"bench-fuzz-{int(time.time())}.log"
    report.write_text(result.stdout + result.stderr)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    print(f"{'door':<16} {'examples':>9} {'slowest s':>10} {'median s':>9}")
    for door, seconds in sorted(runs.items()):
        ordered = sorted(seconds)
        print(f"{door:<16} {len(seconds):>9} {ordered[-1]:>10.2f} {ordered[len(ordered) // 2]:>9.3f}")
    print(f"\ncontract violations: {len(failed)}")
    for line in failed:
        print(f"  {line}")
    print(f"pytest's whole report, with each violation's shrunk input and reproduction: {report}")


if __name__ == "__main__":
    main()
