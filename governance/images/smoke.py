"""Run an image the way a target will and ask it for its health, within a deadline.

podman runs rootful here with runc, cgroupfs and the host network (see ContainerStorage): the app
listens on the free loopback port it is given in $PORT, so two colors or two tests never collide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import IO

from governance.images.containers import ContainerStorage
from governance.probes import probe_url

# `podman run`'s own failures (the container never ran its command): 125 podman, 126 not
# executable, 127 not found.
NOT_STARTED = (125, 126, 127)


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
    """Start `image`, wait for 200 from `health_path`, always remove the container.

    `podman run` stays attached, its output (the container's) going to a file of ours: when the
    container exits, the client exits only after the last line has been copied, so a crash is
    reported with its own words. (Reading `podman logs` after the fact lost them under load: the
    container was recorded as exited while its log was still empty.)"""
    name = f"governance-smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = time.monotonic()
    command = ["podman", "run", "--name", name, "--network", "host", "--pull", "missing"]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*command, "--env", f"PORT={port}", image],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=storage.environment(),
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}{health_path}"
        status: int | None = None
        crashed = False
        try:
            while time.monotonic() - started < timeout_s and not crashed:
                status = probe_url(url, timeout_s=2).status
                if status == 200:
                    seconds = time.monotonic() - started
                    return SmokeResult(
                        True, 200, seconds, f"GET {health_path} answered 200 in {seconds:.1f} s"
                    )
                time.sleep(0.25)
                crashed = process.poll() is not None  # it exited by itself
        finally:
            _remove(storage, name, process)
        logs = _tail(output)
    seconds = time.monotonic() - started
    code = process.returncode
    if crashed and code in NOT_STARTED:
        last = logs.strip().splitlines()[-1:] or ["no output"]
        return SmokeResult(False, None, seconds, f"the container did not start: {last[0]}", logs)
    seen = f"last answer {status}" if status else "nothing answered"
    detail = (
        f"the container exited (exit code {code}) before GET {health_path} answered 200"
        if crashed
        else f"GET {health_path}: no 200 within {timeout_s:.0f} s ({seen})"
    )
    return SmokeResult(False, status, seconds, detail, logs)


def _remove(storage: ContainerStorage, name: str, process: subprocess.Popen[bytes]) -> None:
    """The container removed and the attached client gone, whatever happened."""
    try:
        storage.remove_container(name, stop_timeout_s=2)
    finally:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _tail(output: IO[bytes], lines: int = 40, limit: int = 64 * 1024) -> str:
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - limit))
    text = output.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
