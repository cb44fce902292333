"""Preflight verdicts against real loopback servers that answer, fail, refuse or never answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.images.preflight import (
    disk_free,
    load_headroom,
    memory_available,
    registry_reachable,
    run_preflight,
)
from tests.services import LineageBackend, free_port


@pytest.fixture
def server() -> Iterator[LineageBackend]:
    backend = LineageBackend()
    yield backend
    backend.close()


def test_reachable_and_failing_registry(server: LineageBackend) -> None:
    check = registry_reachable(server.url)
    assert check.ok and check.detail == "answered 200"
    server.mode = "fail"
    failing = registry_reachable(server.url)
    assert not failing.ok and failing.detail == "answered 500: the registry is failing, retry later"


def test_refused_registry_fails_at_once() -> None:
    check = registry_reachable(f"http://127.0.0.1:{free_port()}/simple/")
    assert not check.ok and "unreachable" in check.detail


def test_black_holed_registry_gets_a_verdict_within_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        check = registry_reachable(f"http://127.0.0.1:{listener.getsockname()[1]}/v2/", timeout_s=1)
    assert not check.ok  # a verdict, not a hang


def test_resources_against_thresholds(tmp_path: Path) -> None:
    assert disk_free(tmp_path, 0.001).ok
    too_much = disk_free(tmp_path, 10**9)
    assert not too_much.ok and "GiB free, need 1000000000.0 GiB" in too_much.detail
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 8388608 kB\nMemAvailable: 1048576 kB\n")
    assert memory_available(0.5, meminfo).ok
    assert not memory_available(2, meminfo).ok
    assert load_headroom(10_000).ok and not load_headroom(-1).ok


def test_full_preflight_lists_every_check(server: LineageBackend, tmp_path: Path) -> None:
    checks = run_preflight(
        [server.url], tmp_path, min_disk_gib=0.001, min_memory_gib=0.001, max_load_per_cpu=10_000
    )
    assert [c.name.split()[0] for c in checks] == ["registry", "disk", "memory", "load"]
    assert all(c.ok for c in checks)


def test_a_machine_without_the_builder_or_the_release_tools_says_where_the_work_runs(
    tmp_path: Path,
) -> None:
    """A run container of the Docker or Kubernetes launcher has the platform's Python and nothing
    of the builder's: the build's preflight and a local release say so, naming the tools, before
    any work starts."""
    import sys

    from tests.conftest import run_governance

    bare = {
        "PATH": str(Path(sys.executable).parent),  # the platform's venv, no buildah/podman/nginx
        "GOVERNANCE_HOME": str(tmp_path / "home"),
        "GOVERNANCE_CLI_WORKER": "off",
    }
    preflight = run_governance("images", "preflight", "model_server", env=bare)
    assert preflight.returncode != 0, preflight.stdout
    (builder,) = [line for line in preflight.stdout.splitlines() if "builder" in line]
    assert builder.startswith("FAIL") and "buildah, podman not on this machine" in builder, builder
    assert "a Docker or Kubernetes run container has none" in builder

    status = run_governance("release", "status", env=bare)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "release penguin_service (target local): podman, nginx not on this machine" in (
        status.stderr
    ), status.stderr


def test_a_heal_sensor_on_a_machine_without_the_release_tools_skips_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a Docker or Kubernetes stack the daemon ticks every sensor, also those of local releases,
    which it cannot probe: each tick skips with the reason instead of failing every 30 s."""
    import sys

    import dagster as dg

    from governance.config import load_estate
    from pipelines.definitions import build_definitions
    from tests.conftest import ESTATE_FILE

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no podman, no nginx
    defs = build_definitions(load_estate(ESTATE_FILE))
    heal = defs.resolve_sensor_def("heal_penguin_service")
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources=defs.resources) as context,
    ):
        tick = heal(context)
    assert isinstance(tick, dg.SkipReason), tick
    assert str(tick.skip_message).startswith(
        "not probed: release penguin_service (target local): podman, nginx not on this machine"
    ), tick.skip_message


def test_a_build_waits_for_a_busy_machine_and_fails_fast_on_anything_else(
    image_lab: tuple[str, Path], tmp_path: Path
) -> None:
    """Over its load limit the machine is waited for, with backoff, and the build refused only if
    it stays busy; a check of another kind that blocks refuses it at once."""
    import os
    import shutil
    import subprocess
    import sys
    import time

    from governance.errors import PermanentError, TransientError
    from governance.home import GovernanceHome
    from governance.images.lifecycle import BUSY, ImageWorkspace, admitted
    from tests.conftest import repository_estate_data, write_estate

    if os.getloadavg()[0] == 0:  # an idle machine: a few seconds of work raise the average
        subprocess.run(
            [sys.executable, "-c", "import time\nend = time.time() + 6\nwhile time.time() < end: pass"]
        )
        time.sleep(0.1)
    data = repository_estate_data()
    data["images"]["preflight"]["max_load_per_cpu"] = 1e-9
    estate = write_estate(data, tmp_path / "estate")
    workspace = ImageWorkspace.resolve(estate.images, GovernanceHome(tmp_path / "home"))
    waits: list[float] = []
    said: list[str] = []
    with pytest.raises(
        TransientError,
        match=r"^preflight of model_server failed after 8 attempts: preflight failed: load: .* limit 0\.00",
    ):
        admitted(estate.image("model_server"), workspace, said.append, sleep=waits.append)
    assert len(waits) == BUSY.attempts - 1 and sum(waits) > 100, waits
    assert sum(line.startswith("FAIL  load: ") for line in said) == BUSY.attempts  # each attempt

    waits.clear()
    root = tmp_path / "app"
    shutil.copytree(data["images"]["apps"]["model_server"]["context"], root)
    (root / "Dockerfile").write_text((root / "Dockerfile").read_text().replace("USER 10001\n", ""))
    data["images"]["apps"]["model_server"]["context"] = str(root)
    estate = write_estate(data, tmp_path / "estate")
    with pytest.raises(PermanentError, match="root-user"):
        admitted(estate.image("model_server"), workspace, said.append, sleep=waits.append)
    assert waits == []  # busy, but the policy refuses it: no waiting for what waiting cannot mend
