"""The CLI's resident worker: one warm process per user and code version that runs each command in a
fork of itself, so an operator's command starts with GX and MLflow already imported.

Importing them costs seconds on every invocation, more than the commands themselves. The first
command of a session runs in its own process, as without the worker, and starts the worker in the
background; later commands connect to its Unix socket and pass their stdin, stdout and stderr, so a
command run by the worker writes straight to the operator's terminal. Each command runs in a fresh
fork with the client's arguments, environment, working directory and umask; nothing is shared
between commands but the imported modules. The client forwards SIGINT, SIGTERM and SIGHUP to the
command's process group and exits with its exit code.

The socket sits in a 0700 directory of the user's and its peer's uid is checked. The socket's name is
a fingerprint of the interpreter, the installed packages and this package's source, so an upgrade or
an edit is served by a new worker; the old one exits within a minute, and any worker exits after ten
idle minutes. `GOVERNANCE_CLI_WORKER=off` runs every command in its own process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDLE_EXIT_S = 600.0
_STALE_CHECK_S = 30.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HEADER = struct.Struct("!I")
_EXIT = struct.Struct("!i")
_STARTED = b"S"
_SOURCE = Path(__file__).resolve().parent.parent  # the governance package


def fingerprint() -> str:
    """Changes when the interpreter, an installed package or a source file of this package does."""
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}".encode())
    for entry in sys.path[1:]:  # [0] is the script's directory or the working directory
        with contextlib.suppress(OSError):
            digest.update(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}\0".encode())
    for path in sorted(_SOURCE.rglob("*.py")):
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
    return digest.hexdigest()[:20]


@dataclass(frozen=True)
class Place:
    """Where this code version's worker listens."""

    directory: Path
    name: str

    @property
    def socket(self) -> Path:
        return self.directory / f"cli-{self.name}.sock"

    @property
    def lock(self) -> Path:
        return self.directory / f"cli-{self.name}.lock"

    @property
    def log(self) -> Path:
        return self.directory / f"cli-{self.name}.log"

    @classmethod
    def current(cls, directory: Path) -> Place | None:
        """None when the directory is not this user's alone (then no worker is used)."""
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            stat = directory.stat()
        except OSError:
            return None
        if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
            return None
        return cls(directory, fingerprint())


def _place() -> Place | None:
    from governance.services import Settings

    settings = Settings()
    return Place.current(settings.runtime_dir()) if settings.cli_worker() else None


# ---------------------------------------------------------------------------------------- client


def run_by_worker(argv: Sequence[str]) -> int | None:
    """The command's exit code when the worker ran it; None when it must run in this process."""
    from governance.errors import GovernanceError

    try:
        place = _place()
    except GovernanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if place is None:
        return None
    try:
        connection = _connect(place.socket)
    except OSError:
        start_worker(place)
        return None
    with connection:
        try:
            _send_request(connection, list(argv))
        except OSError:
            return None  # the worker is stopping; nothing ran
        if _receive_exactly(connection, 1) != _STARTED:
            return None  # refused before it forked; nothing ran
        return _await_exit(connection)


def _connect(path: Path, timeout_s: float = 2.0) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout_s)
    try:
        connection.connect(str(path))
    except OSError:
        connection.close()
        raise
    connection.settimeout(None)
    return connection


def _send_request(connection: socket.socket, argv: list[str]) -> None:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    request = {
        "argv": argv,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": _umask(),
        "main_package": getattr(sys.modules["__main__"], "__package__", None),
        "streams": [[s.encoding, s.errors] if s is not None else None for s in streams],
    }
    with contextlib.ExitStack() as stack:
        fds = [_usable_fd(fd, stack) for fd in (0, 1, 2)]
        for stream in streams[1:]:
            if stream is not None:
                stream.flush()
        body = json.dumps(request).encode()
        socket.send_fds(connection, [_HEADER.pack(len(body))], fds)
        connection.sendall(body)


def _usable_fd(fd: int, stack: contextlib.ExitStack) -> int:
    """The descriptor itself, or /dev/null in its place when this process was started without it."""
    try:
        os.fstat(fd)
        return fd
    except OSError:
        return stack.enter_context(open(os.devnull, "r+b")).fileno()


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _await_exit(connection: socket.socket) -> int:
    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(bytes([signum]))

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    answer = _receive_exactly(connection, _EXIT.size)
    if answer is None:
        print("error: the CLI worker ended before the command finished", file=sys.stderr)
        return 3
    code: int = _EXIT.unpack(answer)[0]
    return code


def _receive_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except InterruptedError:
            continue
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def start_worker(place: Place) -> subprocess.Popen[bytes]:
    """Start the worker in its own session; it exits at once if another one holds the lock."""
    with open(place.log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "governance.cli.resident", str(place.directory), place.name],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            cwd=_SOURCE.parent,  # `-m` finds this very package first
            start_new_session=True,
            close_fds=True,
        )


def control(place: Place, action: str) -> dict[str, Any] | None:
    """Ask the worker for its `status` or to `stop`; None when none listens."""
    try:
        connection = _connect(place.socket)
    except OSError:
        return None
    with connection:
        body = json.dumps({"control": action}).encode()
        connection.sendall(_HEADER.pack(len(body)) + body)
        header = _receive_exactly(connection, _HEADER.size)
        if header is None:
            return None
        answer = _receive_exactly(connection, _HEADER.unpack(header)[0])
        return json.loads(answer) if answer is not None else None


def wait_until_warm(place: Place, timeout_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = control(place, "status")
        if status is not None:
            return status
        time.sleep(0.2)
    return None


# ---------------------------------------------------------------------------------------- worker


@dataclass
class _Running:
    pid: int
    connection: socket.socket
    pidfd: int


class Worker:
    def __init__(self, place: Place) -> None:
        self.place = place
        self.started = time.time()
        self.served = 0
        self.running: dict[int, _Running] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.place.socket.unlink()
        self.listener.bind(str(self.place.socket))
        os.chmod(self.place.socket, 0o600)
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        last_activity = last_stale_check = time.monotonic()
        try:
            while not (self.stopping and not self.running):
                for key, _ in self.selector.select(timeout=1.0):
                    key.data(key.fileobj)
                    last_activity = time.monotonic()
                now = time.monotonic()
                if self.running:
                    last_activity = now
                elif now - last_activity > IDLE_EXIT_S:
                    self._stop()
                if now - last_stale_check > _STALE_CHECK_S:
                    last_stale_check = now
                    if fingerprint() != self.place.name:
                        self._stop()
        finally:
            self._stop()

    def _stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.selector.unregister(self.listener)
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.place.socket.unlink()

    def _accept(self, listener: Any) -> None:
        connection, _ = listener.accept()
        try:
            if not _same_user(connection):
                connection.close()
                return
            connection.settimeout(10)
            message, fds, _, _ = socket.recv_fds(connection, _HEADER.size, 3)
            header = message + (_receive_exactly(connection, _HEADER.size - len(message)) or b"")
            body = _receive_exactly(connection, _HEADER.unpack(header)[0])
            request = json.loads(body) if body is not None else {}
        except (OSError, ValueError, struct.error):
            connection.close()
            return
        if "control" in request:
            self._answer_control(connection, str(request["control"]))
            return
        try:
            if len(fds) != 3 or not isinstance(request.get("argv"), list):
                connection.close()
                return
            self._fork(connection, request, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _answer_control(self, connection: socket.socket, action: str) -> None:
        if action == "stop":
            self._stop()
        status = {
            "pid": os.getpid(),
            "fingerprint": self.place.name,
            "socket": str(self.place.socket),
            "started": self.started,
            "served": self.served,
            "running": len(self.running),
            "stopping": self.stopping,
        }
        with connection:
            body = json.dumps(status).encode()
            with contextlib.suppress(OSError):
                connection.sendall(_HEADER.pack(len(body)) + body)

    def _fork(self, connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                self.listener.close()
                connection.close()
                self.selector.close()
                for running in self.running.values():
                    running.connection.close()
                    os.close(running.pidfd)
                code = _run_command(request, fds)
            finally:
                os._exit(code)
        self.served += 1
        connection.settimeout(None)
        with contextlib.suppress(OSError):
            connection.sendall(_STARTED)
        pidfd = os.pidfd_open(pid)
        running = _Running(pid, connection, pidfd)
        self.running[pid] = running
        self.selector.register(pidfd, selectors.EVENT_READ, lambda _: self._finished(running))
        self.selector.register(connection, selectors.EVENT_READ, lambda _: self._signal(running))

    def _signal(self, running: _Running) -> None:
        """A forwarded signal, or the client went away (then the command is terminated)."""
        try:
            data = running.connection.recv(16)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(running.connection)
        for signum in data or bytes([signal.SIGTERM]):
            if signum in _FORWARDED:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.pid, signum)

    def _finished(self, running: _Running) -> None:
        _, status = os.waitpid(running.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.selector.unregister(running.pidfd)
        os.close(running.pidfd)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(running.connection)
        with running.connection, contextlib.suppress(OSError):
            running.connection.sendall(_EXIT.pack(code if code >= 0 else 128 - code))
        del self.running[running.pid]


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


def _run_command(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become the client's process, then run the command line."""
    os.setpgid(0, 0)
    for signum in (*_FORWARDED, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    _reopen_streams(request.get("streams") or [None, None, None])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request.get("env") or {}).items()})
    time.tzset()
    os.umask(int(request.get("umask", 0o022)))
    sys.argv = [str(arg) for arg in request["argv"]]
    # Click names the program after argv[0] and __main__'s package (`python -m governance`).
    sys.modules["__main__"].__package__ = request.get("main_package")
    try:
        os.chdir(str(request.get("cwd", "/")))
        from governance.cli.commands import run

        run()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
    finally:
        import atexit
        import threading

        # What interpreter shutdown does before os._exit skips it: wait for non-daemon threads
        # (an alert still being sent), then run the exit handlers.
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _reopen_streams(encodings: list[list[str] | None]) -> None:
    def wrap(fd: int, mode: str, spec: list[str] | None) -> Any:
        encoding, errors = spec if spec else ("utf-8", "strict")
        line_buffered = fd == 2 or os.isatty(fd)
        return open(
            fd,
            mode,
            encoding=encoding,
            errors=errors,
            buffering=1 if line_buffered and mode == "w" else -1,
            closefd=False,
        )

    sys.stdin = wrap(0, "r", encodings[0])
    sys.stdout = wrap(1, "w", encodings[1])
    sys.stderr = wrap(2, "w", encodings[2])


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _only_worker(place: Place) -> Iterator[bool]:
    """Holds the place's lock for the worker's life: a second worker for it exits at once."""
    import fcntl

    with open(place.lock, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def main(directory: str, name: str) -> None:
    place = Place(Path(directory), name)
    with _only_worker(place) as alone:
        if not alone:
            return
        from governance.warm import import_heavy

        import_heavy()
        import governance.cli.commands  # noqa: F401  (the command tree, warm too)

        Worker(place).serve()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
