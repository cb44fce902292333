"""The CLI's resident worker: a command run by it is the command run in its own process (output,
exit code, environment, working directory, signals), and a worker is only ever used for the code
it has loaded. The rest of the suite runs its commands through the worker too, an operator's
default (tests/conftest.py); this module has a worker of its own."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.cli.resident import Place, control, fingerprint
from governance.lineage.events import JobRef, new_run_id, run_event
from governance.lineage.outbox import SqliteOutbox
from governance.services import Settings
from tests.conftest import REPO, run_governance
from tests.services import LineageBackend

pytestmark = pytest.mark.runs_for(100)


def governance(
    *args: str, worker: bool = True, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    mode = {"GOVERNANCE_CLI_WORKER": "auto" if worker else "off"}
    return run_governance(*args, env={**mode, **(env or {})}, cwd=cwd, timeout_s=180)


def served() -> int:
    status = governance("worker", "status")
    assert status.returncode == 0, status.stderr
    return int(re.search(r"(\d+) commands served", status.stdout).group(1))  # type: ignore[union-attr]


def worker_pid() -> int:
    return int(re.search(r"pid (\d+)", governance("worker", "status").stdout).group(1))  # type: ignore[union-attr]


def wait_until_gone(pid: int, timeout_s: float = 90) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module", autouse=True)
def warm_worker() -> Iterator[None]:
    """A private runtime directory (short: a socket path has a length limit); the first command
    runs in its own process and starts the worker, which is warm soon after, without being asked."""
    runtime = Path(tempfile.mkdtemp(prefix="gw-"))
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        first = governance("models", "list", env={"GOVERNANCE_HOME": str(runtime / "first")})
        assert first.returncode == 0, first.stderr
        deadline = time.monotonic() + 180
        while governance("worker", "status").returncode != 0:
            assert time.monotonic() < deadline, "the first command did not start a worker"
            time.sleep(1)
        yield
        pid = worker_pid()
        stopped = governance("worker", "stop")
        assert stopped.returncode == 0 and "stopping" in stopped.stdout, stopped.stderr
        assert wait_until_gone(pid), "the worker did not exit when asked to stop"
    finally:
        if saved is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = saved
        shutil.rmtree(runtime, ignore_errors=True)


def _comparable(text: str) -> str:
    """Data Docs paths carry the validation's timestamp; everything else must be identical."""
    return re.sub(r"\d{8}T\d{6}\.\d+Z", "<time>", text)


def test_commands_answer_exactly_as_in_their_own_process(clean_csv: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.csv"
    lines = clean_csv.read_text().splitlines()
    extra.write_text("\n".join([lines[0] + ",password", *(f"{x},hunter2" for x in lines[1:])]) + "\n")
    cases = [
        ["datasets", "validate", "penguins", str(clean_csv)],  # 0: passes
        ["datasets", "validate", "penguins", str(extra)],  # 1: a column the suite refuses
        ["datasets", "validate", "penguins", str(tmp_path / "missing.csv")],  # 2: no such file
        ["models", "list"],
        ["release", "approve", "penguin_service", "--by", "   "],  # 2: an empty approver
        ["audit", "verify"],
        ["no-such-command"],  # click's usage error
        ["--help"],
    ]
    for argv in cases[:4]:  # the stores are created once, with their own messages
        governance(*argv)
    before = served()
    for argv in cases:
        alone = governance(*argv, worker=False)
        warm = governance(*argv)
        assert warm.returncode == alone.returncode, (argv, warm.stderr, alone.stderr)
        assert _comparable(warm.stdout) == _comparable(alone.stdout), argv
        assert _comparable(warm.stderr) == _comparable(alone.stderr), argv
    assert {governance(*c).returncode for c in cases[:3]} == {0, 1, 2}
    assert served() - before == len(cases) + 3 + 1  # every case, three again, this status


def test_each_command_has_its_own_environment_and_working_directory(
    clean_csv: Path, tmp_path: Path
) -> None:
    """Settings come from the client's environment (two homes, one after the other), and a relative
    path is the client's."""
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        result = governance(
            "--estate", str(REPO / "governance.yaml"), "datasets", "validate", "penguins",
            clean_csv.name, cwd=clean_csv.parent, env={"GOVERNANCE_HOME": str(home)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert str(home) in result.stdout  # its Data Docs are under its own home
    refused = governance(
        "datasets", "validate", "penguins", str(clean_csv),
        env={"GOVERNANCE_HOME": str(tmp_path / "c"), "GOVERNANCE_CLI_WORKER": "bogus"},
    )  # fmt: skip
    assert refused.returncode == 2 and "GOVERNANCE_CLI_WORKER must be auto or off" in refused.stderr


def test_a_signal_reaches_the_command_and_ends_it(tmp_path: Path) -> None:
    """Ctrl-C on a command the worker runs: a flush held by its backend ends at once, not when the
    backend lets go (it holds for 30 s)."""
    backend = LineageBackend()
    backend.mode = "hold"
    try:
        home = tmp_path / "home"
        SqliteOutbox(home / "lineage" / "outbox.db").append(
            run_event("START", JobRef("held"), new_run_id())
        )
        config = tmp_path / "openlineage.yml"
        config.write_text(f"transport:\n  type: http\n  url: {backend.url}\n  timeout: 60\n")
        client = subprocess.Popen(
            [sys.executable, "-m", "governance", "lineage", "flush"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "GOVERNANCE_CLI_WORKER": "auto",
                "GOVERNANCE_HOME": str(home),
                "OPENLINEAGE_CONFIG": str(config),
            },
        )
        assert backend.holding.wait(60), "the flush never reached the backend"
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=20)  # the backend still holds: only the signal ends it
        assert client.returncode not in (0, 1), err
        assert not backend.release.is_set()
    finally:
        backend.release.set()
        backend.close()


def test_an_edited_source_is_never_served_by_the_old_worker() -> None:
    old_pid, old_name = worker_pid(), fingerprint()
    source = REPO / "governance" / "warm.py"
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert fingerprint() != old_name
        # Asked directly: a `governance` command would start a worker for the edited code.
        place = Place.current(Settings().runtime_dir())
        assert place is not None and place.name != old_name and control(place, "status") is None
        assert wait_until_gone(old_pid), "the worker of the old code is still running"
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint() == old_name
    started = governance("worker", "start")
    assert started.returncode == 0, started.stderr


def test_a_runtime_directory_others_can_write_is_never_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert Place.current(shared) is None
    private = tmp_path / "private"
    assert Place.current(private) is not None and private.stat().st_mode & 0o777 == 0o700


def test_an_alert_a_command_raises_is_delivered_before_it_ends(tmp_path: Path) -> None:
    """A forked command ends with os._exit, which would cut off an alert still on its thread: the
    worker waits for it as interpreter shutdown would. The webhook answers 500 after a second, so
    only a sender that finished its attempt can report it."""
    import http.server
    import socket as sockets
    import threading

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(1.0)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    try:
        with sockets.socket() as hole:  # a registry that accepts and never answers
            hole.bind(("127.0.0.1", 0))
            hole.listen(8)
            result = governance(
                "images", "build", "model_server",
                env={
                    "GOVERNANCE_HOME": str(tmp_path / "home"),
                    "GOVERNANCE_IMAGE_REGISTRY": f"127.0.0.1:{hole.getsockname()[1]}",
                    "GOVERNANCE_IMAGE_STORAGE": str(tmp_path / "storage"),
                    "GOVERNANCE_SLACK_WEBHOOK_URL":
                        f"http://127.0.0.1:{webhook.server_port}/services/T0/B0/worker-hook",
                },
            )  # fmt: skip
        assert result.returncode in (2, 4) and "preflight failed" in result.stderr, result.stderr
        assert "Slack alert to 127.0.0.1 not delivered: HTTP 500" in result.stderr, result.stderr
        assert "worker-hook" not in result.stderr
    finally:
        webhook.shutdown()
        webhook.server_close()
