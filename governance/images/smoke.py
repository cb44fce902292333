"""Run an image the way a target will and ask it for its health, within a deadline.

podman runs rootful here with runc, cgroupfs and the host network (see ContainerStorage): the app
listens on the free loopback port it is given in $PORT, so two colors or two tests never collide.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass

from governance.errors import GovernanceError
from governance.images.containers import ContainerStorage
from governance.probes import probe_url


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    status: int | None  # the last HTTP status seen, None when nothing answered
    seconds: float
    detail: str
    logs: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smoke_test(
    image: str, storage: ContainerStorage, *, health_path: str, timeout_s: float = 30.0
) -> SmokeResult:
    """Start `image`, wait for 200 from `health_path`, always remove the container."""
    name = f"governance-smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = time.monotonic()
    try:
        storage.run(
            [
                "podman",
                "run",
                "--detach",
                "--name",
                name,
                "--network",
                "host",
                "--pull",
                "missing",
                "--env",
                f"PORT={port}",
                image,
            ],
            what=f"podman run {image}",
            timeout_s=120,
        )
    except GovernanceError as exc:
        return SmokeResult(
            False, None, time.monotonic() - started, f"the container did not start: {exc}"
        )
    url = f"http://127.0.0.1:{port}{health_path}"
    status: int | None = None
    try:
        exited: str | None = None
        while time.monotonic() - started < timeout_s and exited is None:
            status = probe_url(url, timeout_s=2).status
            if status == 200:
                seconds = time.monotonic() - started
                return SmokeResult(
                    True, 200, seconds, f"GET {health_path} answered 200 in {seconds:.1f} s"
                )
            time.sleep(0.25)
            exited = _exit(storage, name)  # a crashed server fails now, with its logs
        logs = _logs(storage, name)
        seen = f"last answer {status}" if status else "nothing answered"
        detail = (
            f"the container exited ({exited}) before GET {health_path} answered 200"
            if exited is not None
            else f"GET {health_path}: no 200 within {timeout_s:.0f} s ({seen})"
        )
        return SmokeResult(False, status, time.monotonic() - started, detail, logs)
    finally:
        storage.run(["podman", "rm", "--force", "--time", "2", name], what="podman rm", timeout_s=60)


def _exit(storage: ContainerStorage, name: str) -> str | None:
    """`exit code N` once the container has stopped, None while it runs."""
    try:
        state = storage.run(
            [
                "podman",
                "container",
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                name,
            ],
            what="podman inspect",
            timeout_s=30,
        ).split()
    except GovernanceError:
        return None
    return f"exit code {state[1]}" if state and state[0] in ("exited", "stopped") else None


def _logs(storage: ContainerStorage, name: str, attempts: int = 10) -> str:
    """The container's last lines. `inspect` can say "stopped" before conmon has recorded the exit
    and drained the output into the log file, so a stopped container is first waited for, and an
    empty answer is asked again a few times before it is believed."""
    logs = ""
    for attempt in range(attempts):
        try:
            if attempt == 0 and _exit(storage, name) is not None:
                storage.run(["podman", "wait", name], what="podman wait", timeout_s=30)
            logs = storage.run(
                ["podman", "logs", "--tail", "40", name], what="podman logs", timeout_s=30
            )
        except GovernanceError as exc:
            return str(exc)
        if logs.strip():
            return logs
        time.sleep(0.5)
    return logs
