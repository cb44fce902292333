"""Loopback servers the platform starts and leaves running (the image registry, the site, the
Docker-compatible engine): started in their own session, their output in a log beside a pid file,
and only reported started once they answer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from governance.errors import PermanentError, TransientError


def start(
    command: Sequence[str],
    *,
    directory: Path,
    name: str,
    answering: Callable[[], bool],
    what: str,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> int:
    """The new process's pid, once `answering()`; a process that exits first is a permanent error
    naming its log, one that never answers is killed and a transient one."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    try:
        with open(log, "ab") as output:  # the child keeps its own descriptor
            process = subprocess.Popen(
                list(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=dict(env) if env is not None else None,
            )
    except FileNotFoundError:
        raise PermanentError(f"{what}: {command[0]} is not installed (run `make setup`)") from None
    (directory / f"{name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PermanentError(f"{what} exited ({process.returncode}); see {log}")
        if answering():
            return process.pid
        time.sleep(0.1)
    process.kill()
    raise TransientError(f"{what} did not answer within {timeout_s:.0f} s; see {log}")


def stop(directory: Path, name: str) -> bool:
    """Stop what `start` started there; False when nothing was."""
    pid_file = directory / f"{name}.pid"
    if not pid_file.is_file():
        return False
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    pid_file.unlink()
    return True
