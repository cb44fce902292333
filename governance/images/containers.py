"""Running buildah and podman against storage and configuration the platform owns.

Both tools read their configuration from files named by environment variables; pointing those at
files under the image storage keeps every home (and every test session) self-contained and applies
what this kind of machine needs: the overlay driver, runc with cgroupfs, and no default ulimits
(a rootful runtime here cannot raise rlimits: "error setting rlimit … operation not permitted").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from governance.errors import PermanentError, TransientError

# Output that means "the network or a registry failed, try again", as buildah, podman, pip and
# pnpm word it; anything else (a failing RUN, a bad Dockerfile) is permanent.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|TLS handshake timeout|timed? ?out|"
    r"unexpected EOF|temporary failure in name resolution|no route to host|"
    r"50[0234] (Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)|"
    r"status code:? 5\d\d|HTTP error 5\d\d|ERR_PNPM_FETCH_5\d\d|ECONNRESET|ETIMEDOUT|EAI_AGAIN",
    re.I,
)


# A failing RUN step of an offline build fails the same way every time, whatever it printed
# (a step that tried the network prints a name-resolution error, which is the point).
_FAILED_RUN_STEP = re.compile(r'building at STEP "RUN ')


def is_transient_output(output: str) -> bool:
    return not _FAILED_RUN_STEP.search(output) and bool(_TRANSIENT.search(output))


class LocalImage(NamedTuple):
    size: int  # bytes, with its parents' layers
    containers: int  # how many containers use it


@dataclass(frozen=True)
class ContainerStorage:
    """Storage and configuration of the daemonless builder and runtime under one directory."""

    root: Path
    registry: str
    mirrors: Mapping[str, str]

    def environment(self) -> dict[str, str]:
        """Environment for buildah/podman: the configuration files, one directory per distinct
        configuration. Homes sharing the storage may differ in registry and mirrors and run at the
        same time, so none rewrites the files another is reading; each file is written whole once
        (renamed into place) and never changed after."""
        files = {
            "storage.conf": (
                "[storage]\n"
                'driver = "overlay"\n'
                f'graphroot = "{self.root / "graph"}"\n'
                f'runroot = "{self.root / "run"}"\n'
            ),
            "registries.conf": self._registries(),
            "containers.conf": (
                "[containers]\n"
                "default_ulimits = []\n"
                "[engine]\n"
                'runtime = "runc"\n'
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
            ),
        }
        key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        conf = self.root / "conf" / key
        for name, text in files.items():
            if not (conf / name).is_file():
                conf.mkdir(parents=True, exist_ok=True)
                partial = conf / f".{name}.{os.getpid()}.partial"
                partial.write_text(text)
                partial.replace(conf / name)
        # buildah keeps RUN --mount=type=cache directories under $TMPDIR: with the storage, too
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "TMPDIR": str(self.root / "tmp"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
            "CONTAINERS_CONF": str(conf / "containers.conf"),
        }

    def _registries(self) -> str:
        """The registry (none for a storage only used to run podman) and the mirrors."""
        blocks = []
        if self.registry:
            blocks.append(
                f'[[registry]]\nlocation = "{self.registry}"\ninsecure = {_loopback(self.registry)}\n'
            )
        for prefix, location in sorted(self.mirrors.items()):
            blocks.append(
                f'[[registry]]\nprefix = "{prefix}"\nlocation = "{prefix}"\n'
                f'[[registry.mirror]]\nlocation = "{location}"\ninsecure = {_loopback(location)}\n'
            )
        return "\n".join(blocks)

    def images(self) -> dict[str, LocalImage]:
        """Every image in the storage, intermediate ones too, by full id."""
        output = self.run(["podman", "images", "--all", "--format", "json"], what="podman images")
        listed = json.loads(output[output.find("[") : output.rfind("]") + 1] or "[]")  # no warnings
        return {i["Id"]: LocalImage(int(i["Size"]), int(i.get("Containers") or 0)) for i in listed}

    def remove_image(self, image_id: str) -> None:
        """Its names first (an image known by several cannot be removed by id), then the image.
        Never forced: an image a container uses stays, and the removal fails saying so."""
        self.run(["podman", "untag", image_id], what=f"untag of image {image_id}")
        self.run(["buildah", "rmi", image_id], what=f"removal of image {image_id}")

    def remove_container(self, name: str, stop_timeout_s: int) -> None:
        """Stop `name` (SIGTERM, SIGKILL after the timeout) and remove it; nothing when it is not
        there. podman 4.3 can lose a race with a container that exits while it stops it ("container
        not running") and fail with nothing left to do, so it is asked once more: only a container
        still there after that is an error."""
        command = ["podman", "rm", "--force", "--ignore", "--time", str(stop_timeout_s), name]
        what = f"removal of container {name}"
        try:
            self.run(command, what=what, timeout_s=300)
        except (PermanentError, TransientError):
            self.run(command, what=what, timeout_s=300)

    def run(
        self,
        command: Sequence[str],
        *,
        what: str,
        timeout_s: float = 1800,
        on_line: Callable[[str], None] | None = None,
        cwd: Path | None = None,
    ) -> str:
        """Run a tool, streaming its output lines; failures are classified transient or permanent."""
        return run_streaming(
            command, what=what, env=self.environment(), timeout_s=timeout_s, on_line=on_line, cwd=cwd
        )


# Terminal escapes (colours, cursor moves, links): tools that colour their output in a container
# (Vitest, pnpm) would otherwise put them in progress lines, logs and error messages.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# Enough of a failing output to hold a test runner's failure (the test, its assertion, the code)
# as well as its summary, which alone would not say which test failed.
_ERROR_LINES = 40


def run_streaming(
    command: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 1800,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
) -> str:
    """Output is merged and streamed line by line so a long step reports progress as it goes."""
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PermanentError(f"{what}: {command[0]} is not installed (run `make setup`)") from None
    assert process.stdout is not None
    watchdog = threading.Timer(timeout_s, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            lines.append(_ESCAPE.sub("", line.rstrip("\n")))
            if on_line is not None:
                on_line(lines[-1])
        code = process.wait()
    finally:
        watchdog.cancel()
    if code == -signal.SIGKILL and not watchdog.is_alive():
        raise TransientError(f"{what}: timed out after {timeout_s:.0f} s")
    output = "\n".join(lines)
    if code != 0:
        tail = "\n".join(lines[-_ERROR_LINES:])
        error = TransientError if is_transient_output(tail) else PermanentError
        raise error(f"{what} failed (exit {code}):\n{tail}")
    return output


def _loopback(address: str) -> str:
    host = address.split("/")[0].rsplit(":", 1)[0]
    return "true" if host in ("127.0.0.1", "localhost", "[::1]") else "false"
