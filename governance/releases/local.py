"""The embedded default target: blue and green as podman containers of the built image on loopback
ports, and nginx on 127.0.0.1 as the service, switched by rewriting its upstream and a graceful
reload (in-flight requests finish on the old workers; new ones go to the new color).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from governance.config import ReleaseSpec
from governance.errors import GovernanceError, PermanentError, TransientError
from governance.images.containers import ContainerStorage
from governance.locks import file_lock
from governance.probes import Probe, probe_url
from governance.releases.candidate import Candidate

NGINX_START_S = 30.0  # for its first worker to start (milliseconds, unless the machine is loaded)
SWITCH_S = 30.0  # for the workers of the previous configuration to stop accepting
NGINX_CONF = """\
# Written by the governance platform for release {release}; the upstream is in upstream.conf.
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  include {dir}/upstream.conf;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{release}_active;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""
UPSTREAM = (
    "# color: {color}\nupstream {release}_active {{\n  server 127.0.0.1:{port};\n  keepalive 16;\n}}\n"
)


class LocalTarget:
    def __init__(
        self,
        spec: ReleaseSpec,
        directory: Path,
        storage: ContainerStorage,
        model_dir: Callable[[Candidate], Path | None],
        upstreams: Mapping[str, str],
    ):
        self.spec = spec
        self.directory = directory
        self.nginx_dir = directory / "nginx"
        self.storage = storage
        self.model_dir = model_dir
        self.upstreams = dict(upstreams)  # environment variable -> another release's service URL
        self.service_url = f"http://127.0.0.1:{spec.local.service_port}"
        self._ports = {"blue": spec.local.blue_port, "green": spec.local.green_port}

    def lock(self, timeout_s: float | None = None) -> contextlib.AbstractContextManager[None]:
        return target_lock(self.directory, timeout_s)

    def active_color(self) -> str | None:
        """The color nginx's configuration routes to, whether or not nginx runs now: after a restart
        of the machine the service is down, not unreleased, and self-heal starts it again."""
        upstream = self.nginx_dir / "upstream.conf"
        if not upstream.is_file():
            return None
        color = upstream.read_text().splitlines()[0].removeprefix("# color: ").strip()
        return color if color in self._ports else None

    def render(self, candidate: Candidate) -> str:
        return json.dumps(
            {"run": self._run_args("<color>", candidate), "nginx": NGINX_CONF, "upstream": UPSTREAM},
            sort_keys=True,
        )

    def deploy(self, color: str, candidate: Candidate) -> None:
        model_dir = self.model_dir(candidate)
        name = self.container_name(color)
        self.storage.remove_container(name, stop_timeout_s=5)
        owner = f"governance.directory={self.directory}"
        run_args = self._run_args(color, candidate, model_dir)
        self._podman("run", "--detach", "--name", name, "--label", owner, *run_args)

    def _run_args(self, color: str, candidate: Candidate, model_dir: Path | None = None) -> list[str]:
        """The container of one color, as rendered into the release's version: nothing of the
        home in it (its name is), so one candidate has one version whichever home releases it.
        HOSTNAME is the bind address of a Node server (Next.js), HOST that of uvicorn."""
        port = self._ports.get(color, 0)
        args = [
            "--network", "host",
            "--pull", "missing",
            "--label", f"governance.release={self.spec.name}",
            "--label", f"governance.color={color}",
            "--label", f"governance.version={candidate.version}",
            "--env", f"PORT={port}",
            "--env", "HOST=127.0.0.1",
            "--env", "HOSTNAME=127.0.0.1",
            "--env", f"COLOR={color}",
            "--env", f"IMAGE_REF={candidate.image}",
        ]  # fmt: skip
        for variable, url in sorted(self.upstreams.items()):
            args += ["--env", f"{variable}={url}"]
        if candidate.model is not None:
            args += ["--env", f"MODEL_VERSION={candidate.model_ref}"]
            args += ["--volume", f"{model_dir or '/MODEL'}:/model:ro"]
        return [*args, candidate.image]

    def wait_ready(self, color: str, timeout_s: float) -> Probe:
        deadline = time.monotonic() + timeout_s
        probe = self.probe(color, "/readyz", timeout_s=2)
        while not probe.ok and time.monotonic() < deadline:
            if not self.running(color):
                logs = self._podman_output("logs", "--tail", "20", self.container_name(color))
                return Probe(False, None, f"{color} exited:\n{logs}")
            time.sleep(0.2)
            probe = self.probe(color, "/readyz", timeout_s=2)
        return probe

    def switch(self, color: str) -> None:
        """Rewrite the upstream and reload; return only once every worker that accepts connections
        runs the new configuration. nginx starts new workers before it tells the old ones to quit,
        so until then a new connection can still reach the previous color."""
        master = self._ensure_nginx(color)
        upstream = self.nginx_dir / "upstream.conf"
        partial = upstream.with_suffix(".partial")
        partial.write_text(UPSTREAM.format(color=color, release=self.spec.name, port=self._ports[color]))
        partial.replace(upstream)
        # A reload keeps the listening socket: the workers change, not it, so it is looked up once.
        listening = listening_sockets(self.spec.local.service_port)
        before = set(accepting_workers(master, listening))
        self._nginx("-s", "reload")
        self._await_new_workers(master, listening, before)

    def _await_new_workers(self, master: int, listening: set[str], old: set[int]) -> None:
        """Until every worker holding the socket is a new one that has started: a new worker holds
        it from its fork, and may still exit without ever accepting (a start-up that fails)."""
        deadline = time.monotonic() + SWITCH_S
        while True:
            accepting = set(accepting_workers(master, listening))
            if accepting and not accepting & old and all(map(_started, accepting)):
                return
            if time.monotonic() > deadline:
                self._fail(
                    "still had workers of the previous configuration accepting connections"
                    if accepting & old
                    else "had no worker accepting connections",
                    SWITCH_S,
                )
            time.sleep(0.02)

    def _fail(self, state: str, waited_s: float) -> NoReturn:
        raise TransientError(
            f"nginx for {self.spec.name} {state} after {waited_s:.0f} s: {self._error_log_tail()}"
        )

    def _error_log_tail(self) -> str:
        """nginx's last words: a worker that cannot start logs why, then the master that it
        cannot respawn it."""
        log = self.nginx_dir / "error.log"
        try:
            last = log.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            last = []
        return f"{'; '.join(last) or 'nothing logged'} (see {log})"

    def probe(self, color: str | None, path: str, body: Any = None, timeout_s: float = 5.0) -> Probe:
        base = self.service_url if color is None else f"http://127.0.0.1:{self._ports[color]}"
        return probe_url(base + path, body, timeout_s)

    def restart(self, color: str) -> None:
        self._podman("restart", "--time", "5", self.container_name(color))

    def scale_down(self, color: str) -> None:
        self.storage.remove_container(self.container_name(color), stop_timeout_s=5)

    def running(self, color: str) -> bool:
        state = self._podman_output(
            "container", "inspect", "--format", "{{.State.Running}}", self.container_name(color)
        )
        return state.strip() == "true"

    def down(self) -> None:
        if self._nginx_running():
            self._nginx("-s", "quit")
        for color in self._ports:
            self.scale_down(color)
        (self.nginx_dir / "upstream.conf").unlink(missing_ok=True)

    def container_name(self, color: str) -> str:
        return container_name(self.directory, self.spec.name, color)

    def _podman(self, *args: str) -> str:
        return self.storage.run(["podman", *args], what=f"podman {args[0]}", timeout_s=300)

    def _podman_output(self, *args: str) -> str:
        try:
            return self._podman(*args)
        except GovernanceError as exc:
            return str(exc)

    def _nginx_pid(self) -> int | None:
        pid_file = self.nginx_dir / "nginx.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def _nginx_running(self) -> bool:
        return self._nginx_pid() is not None

    def _ensure_nginx(self, color: str) -> int:
        """The master's pid, starting nginx if it is not running. Never unknown: `nginx` returns
        before its daemon writes the pid file, and a switch that went on without the pid could
        not tell which workers serve (CI once saw one return with no worker serving)."""
        running = self._nginx_pid()
        if running is not None:
            return running
        temp = self.nginx_dir / "tmp"
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / name).mkdir(parents=True, exist_ok=True)
        for path in (temp, *temp.iterdir()):
            os.chmod(path, 0o777)  # nginx workers run as nobody
        (self.nginx_dir / "nginx.conf").write_text(
            NGINX_CONF.format(
                release=self.spec.name, dir=self.nginx_dir, port=self.spec.local.service_port
            )
        )
        (self.nginx_dir / "upstream.conf").write_text(
            UPSTREAM.format(color=color, release=self.spec.name, port=self._ports[color])
        )
        self._nginx()  # daemonizes; the service outlives the run that started it
        # Until its first worker has started, a reload would start a second generation that the
        # switch could not tell from the first; a worker that cannot start fails the switch here.
        deadline = time.monotonic() + NGINX_START_S
        listening: set[str] = set()
        while time.monotonic() < deadline:
            master = self._nginx_pid()
            listening = listening or listening_sockets(self.spec.local.service_port)
            if master is not None and any(map(_started, accepting_workers(master, listening))):
                return master
            time.sleep(0.02)
        self._fail("had no worker accepting connections", NGINX_START_S)

    def _nginx(self, *args: str) -> None:
        command = [
            "nginx",
            "-c",
            str(self.nginx_dir / "nginx.conf"),
            "-e",
            str(self.nginx_dir / "error.log"),
            *args,
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            raise PermanentError("nginx is not installed (run `make setup`)") from None
        if result.returncode != 0:
            raise PermanentError(f"nginx {' '.join(args) or 'start'} failed: {result.stderr.strip()}")


def target_lock(
    directory: Path, timeout_s: float | None = None
) -> contextlib.AbstractContextManager[None]:
    """One promotion, rollback, heal or housekeeping of a local release's files at a time, across
    processes; released by the kernel if its holder is killed."""
    return file_lock(directory / "target.lock", timeout_s)


def container_name(directory: Path, release: str, color: str) -> str:
    """One name per home as well as per release and color: homes may share one builder storage
    (GOVERNANCE_IMAGE_STORAGE), whose containers are one namespace, and a deploy in one home
    must never replace the other's container of the same release."""
    home = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:8]
    return f"governance-{release}-{color}-{home}"


def accepting_workers(master: int, listening: set[str]) -> list[int]:
    """The master's worker processes that can still accept a connection: those that hold one of
    its `listening` sockets (`listening_sockets`). Their titles would not do: a worker a reload has
    just forked holds the socket before it titles itself "worker process"."""
    return [child for child in _children(master) if _descriptors(child) & listening]


def _started(worker: int) -> bool:
    """nginx titles a worker "worker process" once its start-up (user, working directory, modules)
    has succeeded; until then it holds the socket but may exit without accepting. A worker that is
    shutting down is titled otherwise, and no longer holds the socket."""
    try:
        title = (Path("/proc") / str(worker) / "cmdline").read_bytes()
    except OSError:
        return False  # exited meanwhile
    return title.split(b"\0", 1)[0].rstrip() == b"nginx: worker process"


def _descriptors(pid: int) -> set[str]:
    """What the process's open descriptors point at; a descriptor closed while they are read is
    left out, never the process (a worker that closed a connection meanwhile still accepts)."""
    fds = Path("/proc") / str(pid) / "fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return set()  # exited meanwhile
    held = set()
    for name in names:
        with contextlib.suppress(OSError):
            held.add(os.readlink(fds / name))
    return held


def listening_sockets(port: int) -> set[str]:
    """The port's listening sockets, as a process's descriptor links name them."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # "sl local_address rem_address st … inode": the address ends in ":PORT" (hex).
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    return sockets


def _children(pid: int) -> list[int]:
    """Every process whose parent is `pid`. Not the kernel's /proc/PID/task/TID/children, one
    read instead of this scan: it may skip a child while an earlier one exits, as old workers do
    during a switch, and a skipped old worker would end the switch while it still accepts."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid …": comm may hold spaces, so split after its closing paren.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1:2] == [str(pid)]:
            found.append(int(stat.parent.name))
    return found
