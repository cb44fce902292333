"""A season of days on the sample estate (30 by default), run twice on fresh homes: without
housekeeping, and with the daily housekeeping job after each day (retention: `RETENTION`).

Prints each day's wall time, its run's share of it, and the home's size; then the goals: day N's
time against day 2's, the same for days alike (released, with no other event: a refused day runs
fewer steps, so it is no baseline), and the home after day 1, 10 and N, store by store, the stores
retention covers apart from those kept for good. Days follow the weekly plan (a defect, a rollback,
a dying container and a restart of the machine each week), each through `dagster asset materialize`.

Run: uv run python -m tests.bench.bench_season [days] [--homes DIR]
(--homes keeps both seasons' homes and Dagster instances there, to look into afterwards.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.bench.lab import own_lab
from tests.conftest import REPO, repository_estate_data, write_estate
from tests.services import free_port

# small enough that 30 days reach every limit: ~12 lineage events and 1 to 2 runs a day
RETENTION = {"validations": 30, "runs": 10, "lineage_events": 100, "images": 1}
# stores retention covers; `lineage` is not one: beside its outbox it holds the embedded default's
# lineage backend, the file of every delivered event, which is kept for good like the audit log
COLLECTED = {"dagster", "gx", "releases"}


def season(root: Path, days: int, housekeeping: bool) -> list[dict[str, Any]]:
    data = repository_estate_data()
    data["releases"] = {"penguin_service": data["releases"]["penguin_service"]}
    release = data["releases"]["penguin_service"]
    release["local"] = {name: free_port() for name in ("service_port", "blue_port", "green_port")}
    data["retention"] = RETENTION
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


def mib(size: int) -> str:
    return f"{size / 2**20:.2f}"


def alike(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Released days with no other event, from day 2 (day 1 builds the image)."""
    return [r for r in reports[1:] if r["outcome"] == "released" and not r["events"]]


def goals(name: str, reports: list[dict[str, Any]], days: int) -> None:
    if len(reports) < days:
        print(f"{name}: stopped after day {len(reports)}")
        return
    ratio = reports[-1]["seconds"] / reports[1]["seconds"] if days > 1 else 1.0
    print(f"{name}: day {days} took {ratio:.2f}x day 2's time (goal: within 1.20x)")
    same = alike(reports)
    if len(same) >= 4:
        first, last = same[:2], same[-2:]
        before, after = (statistics.mean(r["seconds"] for r in pair) for pair in (first, last))
        print(
            f"{name}: days alike, {', '.join(str(r['day']) for r in first)} against "
            f"{', '.join(str(r['day']) for r in last)}: {before:.1f} s -> {after:.1f} s "
            f"({after / before:.2f}x)"
        )
    for day in sorted({1, min(10, days), days}):
        stores = reports[day - 1]["stores"]
        covered = sum(size for store, size in stores.items() if store in COLLECTED)
        listed = ", ".join(f"{store} {mib(size)}" for store, size in stores.items())
        print(
            f"{name}: home after day {day}: {mib(reports[day - 1]['home_bytes'])} MiB, "
            f"{mib(covered)} in stores retention covers ({listed})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", type=int, nargs="?", default=30)
    parser.add_argument("--homes", type=Path, help="keep both seasons' homes here")
    args = parser.parse_args()
    runs = {}
    for housekeeping in (False, True):
        if args.homes:
            root = args.homes / ("with-gc" if housekeeping else "without-gc")
            root.mkdir(parents=True)
            runs[housekeeping] = season(root, args.days, housekeeping)
            continue
        with tempfile.TemporaryDirectory(prefix="bench-season-") as tmp:
            runs[housekeeping] = season(Path(tmp), args.days, housekeeping)
    plain, kept = runs[False], runs[True]
    print("\n| day | events | outcome | s | run s | home MiB | s (gc) | run s (gc) | home MiB (gc) |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for day, (a, b) in enumerate(zip(plain, kept, strict=False), start=1):
        events = ", ".join(a["events"]) or "-"
        outcome = a["outcome"] if a["outcome"] == b["outcome"] else f"{a['outcome']} / {b['outcome']}"
        row = [day, events, outcome]
        for report in (a, b):
            row += [
                report["seconds"],
                report["phases"].get("materialize", "-"),
                mib(report["home_bytes"]),
            ]
        print("| " + " | ".join(map(str, row)) + " |")
    violations = [f"day {r['day']}: {v}" for r in plain + kept for v in r["violations"]]
    print(f"\nviolations: {'; '.join(violations) or 'none'}")
    for name, reports in (("without gc", plain), ("with gc", kept)):
        goals(name, reports, args.days)


if __name__ == "__main__":
    main()
