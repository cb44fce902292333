"""The commands operators run every day, and *Materialize all* again on warm caches (a report).

Run: uv run python -m tests.bench.bench_everyday [repeats]
Each command runs as a fresh process, as an operator types it, `repeats` times (median reported):
`import great_expectations` and `import mlflow` for reference, `governance datasets validate` on the
sample, `governance models list`, each in its own process (GOVERNANCE_CLI_WORKER=off) and handed to
the warm resident worker (the default). Then the whole estate through `dagster asset materialize` on one
persistent instance: a cold run, then the warm one the goal is about (images cached, a retrain and
its promotion, up to the switched release), with the executor's forkserver (the default) and with
plain spawn; then `governance release rollback` end to end, champion alias moved. Uses a temporary
home, its own registry and builder storage (or $GOVERNANCE_IMAGE_REGISTRY/_STORAGE).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.lab import own_lab
from tests.conftest import REPO, repository_estate_data, write_estate
from tests.services import free_port

RELEASE = "penguin_service"
SPAWN = "execution:\n  config:\n    start_method:\n      spawn: {}\n"


OWN_PROCESS = {"GOVERNANCE_CLI_WORKER": "off"}


def timed(
    command: Sequence[str], env: dict[str, str] | None = None, accepted: tuple[int, ...] = (0, 1)
) -> float:
    """Seconds of one run; a command may end 1 (a check failed) unless `accepted` says otherwise."""
    started = time.perf_counter()
    result = subprocess.run(
        list(command), cwd=REPO, capture_output=True, text=True, timeout=900, env=env
    )
    seconds = time.perf_counter() - started
    if result.returncode not in accepted:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def step_timeline(dagster_home: Path) -> list[tuple[float, float, str]]:
    """The last run's steps: when each started after the run did, and how long it took."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(limit=1)
        stats = instance.get_run_stats(run.run_id)
        steps = instance.get_run_step_stats(run.run_id)
    begun = stats.start_time or 0.0
    return sorted(
        ((s.start_time or begun) - begun, (s.end_time or 0) - (s.start_time or 0), s.step_key)
        for s in steps
    )


def median(command: Sequence[str], repeats: int, env: dict[str, str] | None = None) -> float:
    return statistics.median(timed(command, env) for _ in range(repeats))


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="bench-everyday-") as tmp:
        root = Path(tmp)
        estate = root / "estate.yaml"
        with own_lab(root, estate):
            report(root, estate, repeats)


def report(root: Path, estate_path: Path, repeats: int) -> None:
    python = sys.executable
    data = repository_estate_data()
    data["releases"][RELEASE]["local"] = {
        name: free_port() for name in ("service_port", "blue_port", "green_port")
    }
    data["releases"][RELEASE]["scale_down_delay_s"] = 600
    estate = write_estate(data, root / "estate")
    estate_path.write_text(estate.path.read_text())
    governance = [python, "-m", "governance", "--estate", str(estate.path)]
    sample = root / "sample.csv"
    lines = estate.dataset("penguins").source.resolve().read_text().splitlines()
    sample.write_text("\n".join([lines[0], *(x for x in lines[1:] if "NA" not in x)]) + "\n")

    rows: list[tuple[str, float, str]] = []
    rows.append(
        ("import great_expectations", median([python, "-c", "import great_expectations"], repeats), "")
    )
    rows.append(("import mlflow", median([python, "-c", "import mlflow"], repeats), ""))
    rows.append(("governance worker start (once: warm-up)", timed([*governance, "worker", "start"]), ""))
    validate = [*governance, "datasets", "validate", "penguins", str(sample)]
    timed(validate)  # creates the GX context
    own = {**os.environ, **OWN_PROCESS}
    rows.append(
        ("governance datasets validate (sample), own process", median(validate, repeats, own), "")
    )
    rows.append(
        ("governance datasets validate (sample), worker", median(validate, repeats), "goal < 3 s")
    )

    dagster_home = root / "home" / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text((REPO / "deploy/local/dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "GOVERNANCE_ESTATE": str(estate.path)}
    spawn = root / "spawn.yaml"
    spawn.write_text(SPAWN)
    materialize = [str(Path(python).parent / "dagster"), "asset", "materialize", "-m",
                   "pipelines.definitions", "-a", "defs", "--select", "*"]  # fmt: skip
    rows.append(("whole estate, cold (bases, builds, first release)", timed(materialize, env, (0,)), ""))
    listing = [*governance, "models", "list"]
    rows.append(("governance models list, own process", median(listing, repeats, own), ""))
    rows.append(("governance models list, worker", median(listing, repeats), "goal < 2 s"))
    timelines = []
    for name, extra in (("forkserver (default)", []), ("spawn", ["-c", str(spawn)])):
        warm = timed([*materialize, *extra], env, (0,))  # a failed run is no measurement
        rows.append((f"whole estate, warm: retrain + promotion, {name}", warm, "goal < 12 s"))
        timelines.append((name, step_timeline(dagster_home)))
    rollback = [*governance, "release", "rollback", RELEASE, "--by", "bench", "--reason", "bench"]
    rows.append(("governance release rollback (alias moved), worker", timed(rollback), "goal < 2 s"))
    rows.append(("governance release rollback (back again), own process", timed(rollback, own), ""))

    for name, timeline in timelines:
        print(f"\nsteps of the warm run ({name}): start after run start, duration, step")
        for start, seconds, step in timeline:
            print(f"  {start:7.2f} {seconds:7.2f}  {step}")
    print(f"\n{'what':<58} {'seconds':>8}")
    for what, seconds, goal in rows:
        print(f"{what:<58} {seconds:8.2f}  {goal}")


if __name__ == "__main__":
    main()
