"""Blue/green under load on the local target (a report, not a test).

Run: uv run python -m tests.bench.bench_releases [seconds]
A steady, bounded load (fresh loopback connection per request, 250 requests/s target) goes through
the nginx service while a new model version is promoted to the idle color and then rolled back;
then the serving container is killed and `governance release heal` runs every second, as the
sensor would. Reports failed requests per phase, switch time, rollback time, heal detection and
recovery. Uses a temporary home, its own registry and builder storage (or $GOVERNANCE_IMAGE_*).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO, repository_estate_data, write_estate
from tests.services import free_port, podman, release_container

RELEASE = "penguin_service"
RATE = 250.0
THREADS = 6


class Load:
    """Paced requests through the service; every outcome is kept with its time."""

    def __init__(self, port: int, body: dict[str, Any]):
        self.port, self.body = port, json.dumps(body).encode()
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(THREADS)
        ]

    def _run(self, index: int) -> None:
        interval = THREADS / RATE
        next_at = time.monotonic() + index * interval / THREADS
        while not self._stop.is_set():
            ok = self._one()
            with self._lock:
                self.results.append((time.monotonic(), ok))
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _one(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("POST", "/predict", self.body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def window(self, start: float, end: float) -> tuple[int, int]:
        inside = [ok for at, ok in self.results if start <= at <= end]
        return len(inside), inside.count(False)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    with tempfile.TemporaryDirectory(prefix="bench-releases-") as tmp:
        root = Path(tmp)
        os.environ["GOVERNANCE_HOME"] = str(root / "home")
        registry = os.environ.get("GOVERNANCE_IMAGE_REGISTRY")
        if registry is None:
            from governance.images.registry import start_registry

            registry = f"127.0.0.1:{free_port()}"
            start_registry(registry, root / "registry")
            os.environ["GOVERNANCE_IMAGE_REGISTRY"] = registry
            os.environ["GOVERNANCE_IMAGE_STORAGE"] = str(root / "storage")
        estate_path = None
        try:
            estate_path = run(root, seconds)
        finally:
            if estate_path is not None:
                governance(estate_path, "release", "down", "--all")
            from governance.images.registry import stop_registry

            stop_registry(root / "registry")


def governance(estate: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "governance", "--estate", str(estate), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run(root: Path, seconds: float) -> Path:
    import dagster as dg

    from pipelines.definitions import build_definitions

    data = repository_estate_data()
    ports = {"service_port": free_port(), "blue_port": free_port(), "green_port": free_port()}
    data["releases"][RELEASE] |= {
        "local": ports,
        "scale_down_delay_s": 600,
        "heal": {"failures_before_action": 2},
    }
    estate = write_estate(data, root / "estate")
    defs = build_definitions(estate)

    def materialize(instance: dg.DagsterInstance, *assets: str) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(*assets) if assets else dg.AssetSelection.all()
        return dg.materialize(
            defs.assets,
            instance=instance,
            resources=defs.resources,
            selection=selection,
            raise_on_error=False,
        )

    with dg.DagsterInstance.ephemeral() as instance:
        started = time.monotonic()
        assert materialize(instance).success, "the estate did not materialize"
        print(
            f"whole estate (datasets, model, images, release to blue): {time.monotonic() - started:.1f} s"
        )
        load = Load(ports["service_port"], estate.release(RELEASE).smoke.body)
        load.start()
        time.sleep(3)
        promote_start = time.monotonic()
        promoted = materialize(instance, "penguin_classifier", f"{RELEASE}_candidate", RELEASE)
        promote_end = time.monotonic()
        assert promoted.success, "the promotion failed"
        (release,) = promoted.asset_materializations_for_node(RELEASE)
        switch_s = float(release.metadata["switch_s"].value)  # type: ignore[arg-type]
        time.sleep(2)
        rollback_start = time.monotonic()
        rolled = governance(estate.path, "release", "rollback", RELEASE, "--reason", "benchmark")
        rollback_end = time.monotonic()
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        remaining = seconds - (time.monotonic() - promote_start) - 3
        time.sleep(max(remaining, 2))
        load.stop()

    total, failed = load.window(0, float("inf"))
    duration = load.results[-1][0] - load.results[0][0]
    promote_requests, promote_failed = load.window(promote_start, promote_end)
    rollback_requests, rollback_failed = load.window(rollback_start, rollback_end)

    heal = measure_heal(estate.path, ports, root)
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| load | {total} requests in {duration:.1f} s = {total / duration:.0f} requests/s |")
    print(f"| failed requests, whole run (promote + rollback) | {failed} |")
    print(f"| failed during the promotion ({promote_requests} requests) | {promote_failed} |")
    print(f"| failed during the rollback ({rollback_requests} requests) | {rollback_failed} |")
    print(
        f"| switch time (nginx reload until the service answers from the new color) | {switch_s * 1000:.0f} ms |"
    )
    print(
        f"| promotion end to end (train v2, candidate, deploy green, gates, switch) | {promote_end - promote_start:.1f} s |"
    )
    switched_back = next(
        float(line.split()[1])
        for line in rolled.stdout.splitlines()
        if line.strip().startswith("traffic_back_s")
    )
    print(
        f"| rollback: traffic verified back on the previous color (controller) | {switched_back:.2f} s |"
    )
    print(
        "| rollback end to end (`governance release rollback`: process start, switch, verify, "
        f"MLflow champion alias, audit) | {rollback_end - rollback_start:.2f} s |"
    )
    print(f"| self-heal: detection (kill to first failed probe) | {heal['detect_s']:.2f} s |")
    print(
        f"| self-heal: recovery (kill to serving again, {heal['probes']} probes at 1 s) | {heal['recover_s']:.2f} s |"
    )
    return estate.path


def measure_heal(estate: Path, ports: dict[str, int], root: Path) -> dict[str, float]:
    status = json.loads(governance(estate, "release", "status", "--json").stdout)[0]
    color = status["active_color"]
    container = release_container(RELEASE, color)
    killed = time.monotonic()
    podman("kill", container)
    detect = recover = 0.0
    probes = 0
    while time.monotonic() - killed < 120:
        probes += 1
        result = governance(estate, "release", "heal", RELEASE)
        now = time.monotonic() - killed
        if result.stdout.startswith("degraded") and not detect:
            detect = now
        if result.stdout.startswith(("restarted", "rolled back")):
            recover = now
            break
        time.sleep(1)
    return {"detect_s": detect, "recover_s": recover, "probes": probes}


if __name__ == "__main__":
    main()
