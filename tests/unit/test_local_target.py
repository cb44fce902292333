"""Homes that share one builder storage (GOVERNANCE_IMAGE_STORAGE) share its container namespace;
which of nginx's workers still accept connections."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from governance.config import load_estate
from governance.releases.local import LocalTarget, accepting_workers, listening_sockets
from tests.conftest import ESTATE_FILE
from tests.release_evidence import RELEASE, candidate


def _target(home: Path) -> LocalTarget:
    spec = load_estate(ESTATE_FILE).release(RELEASE)
    directory = home / "releases" / RELEASE
    return LocalTarget(spec, directory, storage=None, model_dir=lambda c: None, upstreams={})  # type: ignore[arg-type]


def test_two_homes_name_their_containers_apart_and_version_a_candidate_alike(tmp_path: Path) -> None:
    first, second = _target(tmp_path / "first"), _target(tmp_path / "second")
    names = {target.container_name(color) for target in (first, second) for color in ("blue", "green")}
    assert len(names) == 4  # a deploy in one home never replaces the other's container
    assert first.container_name("blue") == _target(tmp_path / "first").container_name("blue")
    served = candidate("127.0.0.1:5000/penguins/model-server@sha256:" + "ab" * 32, "1")
    assert first.render(served) == second.render(served)  # the release version names no home
    assert not any(name in first.render(served) for name in names)


def test_a_service_down_after_a_restart_still_routes_to_its_color(tmp_path: Path) -> None:
    """nginx's configuration says which color the service routes to, running or not: after the
    machine restarts the release is down, not unreleased, so self-heal brings it back."""
    target = _target(tmp_path)
    assert target.active_color() is None  # never switched
    target.nginx_dir.mkdir(parents=True)
    (target.nginx_dir / "upstream.conf").write_text("# color: green\nserver 127.0.0.1:1;\n")
    (target.nginx_dir / "nginx.pid").write_text("999999999\n")  # the pid of a process that is gone
    assert target.active_color() == "green"


# A worker holding the listening socket while it opens and closes other descriptors, as a busy
# nginx worker does with its connections.
BUSY_WORKER = """
import os, socket
listening = socket.socket()
listening.bind(("127.0.0.1", 0))
listening.listen(8)
print(listening.getsockname()[1], flush=True)
while True:
    for fd in [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]:
        os.close(fd)
"""


def test_a_worker_busy_with_other_descriptors_still_counts_as_accepting() -> None:
    """Its descriptors change while they are read: one closed in between must not make the worker
    look gone, or a switch would return while it still serves the previous color."""
    worker = subprocess.Popen([sys.executable, "-c", BUSY_WORKER], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        port = int(worker.stdout.readline())
        listening = listening_sockets(port)
        seen = [worker.pid in accepting_workers(os.getpid(), listening) for _ in range(100)]
    finally:
        worker.kill()
        worker.wait()
    assert all(seen), f"missed in {seen.count(False)} of {len(seen)} reads"
