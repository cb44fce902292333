"""A Docker-compatible engine for Dagster's `DockerRunLauncher` and Compose: podman's API
service, rootful, on the platform's own container storage and configuration.

Debian's Docker engine (`docker.io`) would need its own daemon, storage and network set-up on this
kind of machine; podman is already what builds are tested and releases run with, and its service
speaks the Docker API the launcher's client uses. The socket is handed to one group (the platform
image's user), so a container of that user (the Dagster daemon) can launch runs without root.
"""

from __future__ import annotations

import os
from pathlib import Path

from governance import background
from governance.images.containers import ContainerStorage

SOCKET = "engine/podman.sock"


def socket_path(storage: ContainerStorage) -> Path:
    return storage.root / SOCKET


def docker_host(storage: ContainerStorage) -> str:
    return f"unix://{socket_path(storage)}"


def answering(socket: Path, timeout_s: float = 1.0) -> bool:
    """The Docker API's `_ping` over the unix socket."""
    import http.client
    import socket as sockets

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
            self.sock.settimeout(timeout_s)
            self.sock.connect(str(socket))

    try:
        connection = Connection("localhost", timeout=timeout_s)
        connection.request("GET", "/_ping")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


def start_engine(storage: ContainerStorage, group_id: int, timeout_s: float = 30.0) -> int | None:
    """Start the service unless it answers; returns the new pid. The socket is left to root and
    `group_id` (mode 0660)."""
    socket = socket_path(storage)
    if answering(socket):
        return None
    socket.unlink(missing_ok=True)
    pid = background.start(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        directory=socket.parent,
        name="engine",
        answering=lambda: answering(socket),
        what=f"podman's API service on {socket}",
        timeout_s=timeout_s,
        env=storage.environment(),
    )
    os.chown(socket, 0, group_id)
    socket.chmod(0o660)
    return pid


def stop_engine(storage: ContainerStorage) -> bool:
    return background.stop(socket_path(storage).parent, "engine")


def environment(storage: ContainerStorage) -> dict[str, str]:
    """What a client of this engine needs (Compose, the `docker` SDK, podman itself): the storage's
    configuration files and DOCKER_HOST."""
    own = {k: v for k, v in storage.environment().items() if k.startswith("CONTAINERS_")}
    return {**own, "DOCKER_HOST": docker_host(storage)}
