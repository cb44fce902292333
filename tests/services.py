"""Real services on loopback for the tests, started and stopped as process groups."""

from __future__ import annotations

import os
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HANDED_OUT: set[int] = set()
# Below Linux's ephemeral range (32768-60999): a port handed out here is not taken meanwhile as
# the source port of some connection. And not the kernel's `bind(0)`, which gives odd ports only:
# with an even number of workers, the one to take even ports never got one.
_PORTS = (20000, 32768)


def free_port() -> int:
    """A loopback port nothing listens on, and never one this process handed out before: a
    test's two services (a release's colors) must never be given one port. Each pytest-xdist
    worker takes its own residue of the port numbers, so two workers are never handed one port
    before either binds it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slot = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    while True:
        port = random.randrange(_PORTS[0] + slot, _PORTS[1], workers)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
        _HANDED_OUT.add(port)
        return port


@contextmanager
def process_group(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """Stop the whole group, not only its leader: a script's leader (`scripts/dev.sh`) exits at
    once while what it started (Dagster, the MLflow UI, the site) is still shutting down, and one
    that hangs must not outlive the test and load the rest of the run."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _live_members(process.pid) and time.monotonic() < deadline:
        process.poll()
        time.sleep(0.2)
    if _live_members(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _live_members(group: int) -> list[int]:
    """The group's processes that still run (a zombie waiting to be reaped does not)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, pgid = fields[0], int(fields[2])
        if pgid == group and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


@contextmanager
def model_server(
    model_dir: Path, logs: Path, *, ready: bool = True, port: int | None = None, **env: str
) -> Iterator[str]:
    """The sample model server from source (`python -m app`) on `port` (a free loopback port unless
    given), serving `model_dir` as penguin-classifier/1; yields its base URL once it is ready (or,
    with `ready=False`, once it is up)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "MODEL_DIR": str(model_dir),
        "MODEL_VERSION": "penguin-classifier/1",
        "PYTHONPATH": str(Path(__file__).parent.parent / "examples/penguins/apps/model-server"),
        **env,
    }
    log = logs / f"model-server-{port}.log"
    with process_group([sys.executable, "-m", "app"], log, env=environment) as process:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + ("/readyz" if ready else "/healthz"), process, log, timeout=60)
        yield url


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A real `mlflow server` with a sqlite backend and proxied artifacts."""
    port = free_port()
    mlflow = str(Path(sys.executable).parent / "mlflow")
    args = [
        mlflow, "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = root / "mlflow-server.log"
    env = {  # no job runner: its polling workers would take a quarter of a core all session
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with process_group(args, log, env=env) as process:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process, log)
        yield url


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL (Debian's) in a temporary cluster on a loopback port, run as `postgres`
    because the server refuses to run as root."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="governance-pg-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    as_postgres(
        str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
    )
    log = root / "postgres.log"
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    )
    as_postgres(
        str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


class LineageBackend:
    """A Marquez-shaped HTTP endpoint on loopback that can be made to fail (500), be slow, trickle
    its answer a byte at a time, reject events (400), or hold every request until released; its GET
    stands in for a package registry's index in preflight tests."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.mode = "ok"
        self.slow_s = 5.0
        self.received: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []
        self.reject_job: str | None = None  # with mode "reject": only this job's events get 400
        self.release = threading.Event()  # mode "hold": answers once set
        self.holding = threading.Event()  # set while a request is held
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if backend.mode == "slow":
                    time.sleep(backend.slow_s)
                if backend.mode == "hold":
                    backend.holding.set()
                    backend.release.wait(30)
                if backend.mode == "trickle":  # a byte every 0.5 s, for as long as it is read
                    for byte in b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n":
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(0.5)
                    return
                job = json.loads(body).get("job", {}).get("name")
                if backend.mode == "reject" and backend.reject_job in (None, job):
                    self.send_response(400)
                    self.end_headers()
                    return
                if backend.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                backend.received.append(json.loads(body))
                backend.headers.append(dict(self.headers))
                self.send_response(201)
                self.end_headers()

            def do_GET(self) -> None:  # a registry-style index: 200, or 500 while failing
                self.send_response(500 if backend.mode == "fail" else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def podman(*args: str, storage: Path | None = None) -> str:
    """podman on a builder storage: by default the one every home of the session shares."""
    from governance.images.containers import ContainerStorage

    root = storage or Path(os.environ["GOVERNANCE_IMAGE_STORAGE"])
    return ContainerStorage(root, "", {}).run(["podman", *args], what=f"podman {args[0]}")


def release_container(release: str, color: str) -> str:
    """The container of one color of a local release in this test's home."""
    from governance.home import GovernanceHome
    from governance.releases.lifecycle import release_dir
    from governance.releases.local import container_name

    return container_name(release_dir(GovernanceHome.resolve(), release), release, color)


def open_image_lab(root: Path) -> tuple[str, Path]:
    """A real docker-registry on a loopback port and one builder storage under `root`, started by
    the first process of the test run that asks (every pytest worker shares them, so bases are
    built and dependencies fetched once and every build's layers serve the others)."""
    from governance.images.registry import answering, start_registry
    from governance.locks import file_lock

    recorded = root / "registry-address"
    with file_lock(root / "lab.lock"):
        address = recorded.read_text() if recorded.is_file() else f"127.0.0.1:{free_port()}"
        if not answering(address):
            start_registry(address, root / "registry")
            recorded.write_text(address)
    return address, root / "storage"


def close_image_lab(root: Path) -> None:
    """Remove what the run left in the lab (containers, working containers, the registry)."""
    from governance.images.containers import ContainerStorage
    from governance.images.registry import stop_registry

    recorded = root / "registry-address"
    if recorded.is_file():
        env = ContainerStorage(root / "storage", recorded.read_text(), {}).environment()
        for command in (["podman", "rm", "--all", "--force"], ["buildah", "rm", "--all"]):
            subprocess.run(command, env=env, capture_output=True, timeout=120)
        stop_registry(root / "registry")


def sqlite_files(root: Path) -> list[str]:
    """Every sqlite database under `root` (by its header, whatever its name)."""

    def is_sqlite(path: Path) -> bool:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"

    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and is_sqlite(p))


@dataclass(frozen=True)
class ComposeStack:
    """deploy/docker's stack as `scripts/stack.sh up` left it."""

    api: Any  # governance.launch.DagsterApi on the stack's webserver
    host: dict[str, str]  # the host's `governance` CLI on the stack's stores (`scripts/stack.sh env`)
    image: str  # the platform image by digest that every service and run runs
    storage: Path  # the engine's container storage


@contextmanager
def compose_stack(root: Path, registry: str, storage: Path) -> Iterator[ComposeStack]:
    """`scripts/stack.sh up` on loopback ports of its own, with the images built and the engine run
    on `storage`; `down --volumes` afterwards, whatever happened."""
    from governance.launch import DagsterApi

    stack = str(Path(__file__).resolve().parent.parent / "scripts" / "stack.sh")
    env = {
        **os.environ,
        "GOVERNANCE_HOME": str(root / "home"),
        "GOVERNANCE_IMAGE_REGISTRY": registry,
        "GOVERNANCE_IMAGE_STORAGE": str(storage),
        "GOVERNANCE_STACK_DB_PASSWORD": secrets.token_hex(12),
        **{f"GOVERNANCE_STACK_{port}_PORT": str(free_port()) for port in ("PG", "MLFLOW", "GRPC", "WEB")},
    }  # fmt: skip
    log = root / "stack.log"
    try:
        with log.open("w") as output:
            up = subprocess.run(
                [stack, "up"], env=env, stdout=subprocess.PIPE, stderr=output, text=True, timeout=1500
            )
        if up.returncode != 0:
            raise RuntimeError(f"scripts/stack.sh up failed:\n{log.read_text()[-5000:]}")
        exports = subprocess.run([stack, "env"], env=env, capture_output=True, text=True, check=True)
        host = {"GOVERNANCE_HOME": str(root / "host-home"), "GOVERNANCE_CLI_WORKER": "off"}
        for line in exports.stdout.splitlines():
            name, value = line.removeprefix("export ").split("=", 1)
            host[name] = shlex.split(value)[0]
        image = (root / "home" / "stack" / "platform-image").read_text().strip()
        yield ComposeStack(DagsterApi(up.stdout.strip()), host, image, storage)
    finally:
        subprocess.run([stack, "down", "--volumes"], env=env, capture_output=True, timeout=300)
