"""Runs launched through the webserver's GraphQL API (a report, not a test), three ways:
- `scripts/dev.sh` on the embedded default;
- `scripts/dev.sh` with every shared store in Postgres (GOVERNANCE_DATABASE_URL, the MLflow server,
  the datasets' remotes on a directory standing in for the shared volume);
- deploy/docker's Compose stack (`scripts/stack.sh`), each run in a container of its own, on an
  image lab of its own (so its first `up` builds the platform image cold; that is timed too).

Run: uv run python -m tests.bench.bench_shared_runs [concurrent runs, default 8]
1. Each setup: `launchRun` to RUN_SUCCESS for the datasets group (penguins_raw, penguins, checks).
2. Shared and Compose: that many runs of penguin_classifier launched at once through the queue;
   their statuses and times, how many ran at once, lock waits that gave up (in the runs' events),
   the model versions they registered, and the audit chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from governance.launch import DagsterApi
from tests.conftest import REPO, run_governance
from tests.services import (
    close_image_lab,
    compose_stack,
    free_port,
    open_image_lab,
    postgres_server,
    process_group,
)

LOCATION = "governance"
LOCATIONS = "{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }"
STATUSES = "{ runsOrError(limit: 100) { ... on Runs { results { runId status } } } }"
MESSAGES = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  ... on MessageEvent { message } ... on ExecutionStepFailureEvent { error { message } } } } } }"""


@contextlib.contextmanager
def platform(root: Path, shared: bool) -> Iterator[tuple[DagsterApi, dict[str, str]]]:
    """`scripts/dev.sh` on a home of its own; with `shared`, on a fresh Postgres."""
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(root / "home"),
        "DAGSTER_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
        "GOVERNANCE_SITE_URL": f"http://127.0.0.1:{free_port()}",
        "GOVERNANCE_CLI_WORKER": "off",
    }
    with contextlib.ExitStack() as stack:
        if shared:
            env |= {
                "GOVERNANCE_DATABASE_URL": stack.enter_context(postgres_server()),
                "GOVERNANCE_SHARED_DIR": str(root / "volume"),
                # what dev.sh points its runs at; the CLI below reads the same server
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{env['MLFLOW_PORT']}",
            }
        log = root / "dev.log"
        stack.enter_context(process_group([str(REPO / "scripts" / "dev.sh")], log, env=env))
        api = DagsterApi(f"http://127.0.0.1:{env['DAGSTER_PORT']}")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                nodes = api.query(LOCATIONS)["repositoriesOrError"]["nodes"]
                if any(n["location"]["name"] == LOCATION for n in nodes):
                    break
            time.sleep(1)
        else:
            raise TimeoutError(f"the code location did not load: see {log}")
        try:
            yield api, env
        finally:  # what dev.sh leaves running: the releases and the registry
            run_governance("release", "down", "--all", env=env)
            run_governance("images", "registry", "stop", env=env)


def timed(api: DagsterApi, assets: list[str]) -> tuple[str, float]:
    started = time.monotonic()
    run_id = api.launch(LOCATION, assets, {"bench": "shared-runs"})
    return api.wait(run_id, 900, poll_s=0.5), time.monotonic() - started


def concurrent(api: DagsterApi, env: dict[str, str], count: int) -> None:
    started = time.monotonic()
    run_ids = [
        api.launch(LOCATION, ["penguin_classifier"], {"bench": "concurrent"}) for _ in range(count)
    ]
    most = 0
    finished: dict[str, float] = {}
    while len(finished) < count and time.monotonic() - started < 1800:
        runs = {r["runId"]: r["status"] for r in api.query(STATUSES)["runsOrError"]["results"]}
        most = max(most, sum(runs.get(r) == "STARTED" for r in run_ids))
        for run_id in run_ids:
            if runs.get(run_id) in ("SUCCESS", "FAILURE", "CANCELED") and run_id not in finished:
                finished[run_id] = time.monotonic() - started
        time.sleep(0.5)
    statuses = [api.wait(run_id, 60) for run_id in run_ids]
    print(
        f"  {count} runs of penguin_classifier launched at once: {statuses.count('SUCCESS')} succeeded,"
    )
    print(f"    statuses {sorted(set(statuses))}; at most {most} running at once")
    times = sorted(finished.values())
    print(f"    first done after {times[0]:.1f} s, last after {times[-1]:.1f} s")
    gave_up = sum(_messages(api, run_id).count("is held by another process") for run_id in run_ids)
    print(f"    lock waits that gave up (in the runs' events): {gave_up}")
    models = json.loads(run_governance("models", "list", "--json", env=env).stdout or "[]")
    versions = [v["version"] for m in models for v in m.get("versions", [])]
    print(f"    model versions registered: {len(versions)}, distinct: {len(set(versions))}")
    verified = run_governance("audit", "verify", env=env)
    print(f"    audit: {verified.stdout.strip() or verified.stderr.strip()}")


def _messages(api: DagsterApi, run_id: str) -> str:
    events = api.query(MESSAGES, id=run_id)["logsForRun"]["events"]
    return "\n".join(
        str(e.get("message") or (e.get("error") or {}).get("message") or "") for e in events
    )


@contextlib.contextmanager
def compose(root: Path) -> Iterator[tuple[DagsterApi, dict[str, str]]]:
    started = time.monotonic()
    lab = root / "lab"
    lab.mkdir()
    try:
        with compose_stack(root, *open_image_lab(lab)) as stack:
            print(
                f"compose stack: `scripts/stack.sh up` on a cold lab: {time.monotonic() - started:.1f} s"
            )
            yield stack.api, {**os.environ, **stack.host}
    finally:
        close_image_lab(lab)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    setups = {
        "embedded stores (dagster dev)": lambda root: platform(root, shared=False),
        "shared stores (dagster dev, Postgres)": lambda root: platform(root, shared=True),
        "Compose stack (a container per run)": compose,
    }
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        for number, (label, setup) in enumerate(setups.items()):
            root = Path(tmp) / str(number)
            root.mkdir()
            with setup(root) as (api, env):
                status, seconds = timed(api, ["penguins_raw", "penguins"])
                print(f"{label}: launchRun to {status} for the datasets group: {seconds:.1f} s")
                again, seconds = timed(api, ["penguins_raw", "penguins"])
                print(f"  again, on the state the first left: {again} in {seconds:.1f} s")
                if number:
                    concurrent(api, env, count)


if __name__ == "__main__":
    main()
