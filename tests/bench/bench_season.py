"""A season of days on the sample estate (30 by default), run twice on fresh homes: without
housekeeping, and with the daily housekeeping job after each day (retention: 30 validations).
Prints each day's wall time and the home's size, then the goals: day N's time against day 2's, and
the home after day 1, 10 and N. Days follow the weekly plan (a defect, a rollback, a dying container
and a restart of the machine each week), each through `dagster asset materialize`.

Run: uv run python -m tests.bench.bench_season [days]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.bench.lab import own_lab
from tests.conftest import REPO, repository_estate_data, write_estate
from tests.services import free_port

RETENTION = 30


def season(root: Path, days: int, housekeeping: bool) -> list[dict[str, Any]]:
    data = repository_estate_data()
    data["releases"] = {"penguin_service": data["releases"]["penguin_service"]}
    release = data["releases"]["penguin_service"]
    release["local"] = {name: free_port() for name in ("service_port", "blue_port", "green_port")}
    data["retention"] = {"validations": RETENTION}
    estate = write_estate(data, root / "estate").path
    with own_lab(root, estate):
        dagster = root / "home" / "dagster"
        dagster.mkdir(parents=True)
        (dagster / "dagster.yaml").write_text((REPO / "deploy/local/dagster.yaml").read_text())
        command = [sys.executable, "-m", "governance", "--estate", str(estate), "simulate", "season"]
        command += ["--days", str(days), *(["--gc"] if housekeeping else [])]
        subprocess.run(command, cwd=REPO, check=False)  # its progress goes to the terminal
        reports = root / "home" / "season" / "days.jsonl"
        return [json.loads(line) for line in reports.read_text().splitlines()]


def mib(report: dict[str, Any]) -> str:
    return f"{report['home_bytes'] / 2**20:.2f}"


def main() -> None:
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    runs = {}
    for housekeeping in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-season-") as tmp:
            runs[housekeeping] = season(Path(tmp), days, housekeeping)
    plain, kept = runs[False], runs[True]
    print("\n| day | events | outcome | s | home MiB | s (with gc) | home MiB (with gc) | violations |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for day, (a, b) in enumerate(zip(plain, kept, strict=False), start=1):
        problems = "; ".join(a["violations"] + b["violations"]) or "none"
        events = ", ".join(a["events"]) or "-"
        outcome = a["outcome"] if a["outcome"] == b["outcome"] else f"{a['outcome']} / {b['outcome']}"
        row = [day, events, outcome, a["seconds"], mib(a), b["seconds"], mib(b), problems]
        print("| " + " | ".join(map(str, row)) + " |")
    for name, reports in (("without gc", plain), ("with gc", kept)):
        if len(reports) < days:
            print(f"{name}: stopped after day {len(reports)}")
            continue
        ratio = reports[-1]["seconds"] / reports[1]["seconds"] if days > 1 else 1.0
        sizes = ", ".join(
            f"day {d}: {mib(reports[d - 1])} MiB" for d in sorted({1, min(10, days), days})
        )
        print(f"{name}: day {days} took {ratio:.2f}x day 2's time (goal: within 1.20x); home {sizes}")


if __name__ == "__main__":
    main()
