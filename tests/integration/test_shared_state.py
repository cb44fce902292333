"""The stores that processes share, on a real PostgreSQL (GOVERNANCE_DATABASE_URL): locks, release
state and the lineage outbox, each used from several processes at once, as run containers would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.errors import ConfigError, PermanentError, TransientError
from governance.home import DATABASE_URL_ENV, GovernanceHome
from governance.lineage.outbox import PostgresOutbox
from governance.lineage.transport import FileTransport
from governance.locks import Locks
from governance.releases.state import PostgresStateStore, ReleaseState, release_state
from tests.conftest import REPO
from tests.services import postgres_server


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _holder(url: str, name: str) -> subprocess.Popen[str]:
    """Another process holding the lock `name` until it is killed."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from governance.locks import Locks\n"
        f"with Locks({url!r}).hold({name!r}, Path('/nonexistent')):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_an_advisory_lock_excludes_other_processes_and_dies_with_its_holder(
    database: str, tmp_path: Path
) -> None:
    locks = Locks(database)
    holder = _holder(database, "release-penguin_service-target")
    try:
        started = time.monotonic()
        held = locks.hold("release-penguin_service-target", tmp_path / "unused", timeout_s=0.5)
        with pytest.raises(TransientError, match="is held by another process"), held:
            pass
        assert 0.4 < time.monotonic() - started < 5
        with locks.hold("another-lock", tmp_path / "unused", timeout_s=0):  # keyed by name
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no unlock: the server ends its session
        holder.wait()
    with locks.hold("release-penguin_service-target", tmp_path / "unused", timeout_s=10):
        assert not (tmp_path / "unused").exists()  # no file: the lock is the database's


def test_an_unreachable_database_is_a_transient_error_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://governance:s3cret-pass@127.0.0.1:1/governance"
    with pytest.raises(TransientError) as caught, Locks(url).hold("x", tmp_path / "x", timeout_s=0):
        pass
    assert "s3cret-pass" not in str(caught.value) and "cannot be reached" in str(caught.value)


def test_the_setting_must_be_postgres_and_says_so_without_echoing_it(tmp_path: Path) -> None:
    environ = {DATABASE_URL_ENV: "mysql://root:hunter2@db/governance"}
    with pytest.raises(ConfigError) as caught:
        GovernanceHome.resolve(str(tmp_path), environ)
    assert "postgresql://" in str(caught.value) and "hunter2" not in str(caught.value)


def test_release_state_is_one_row_per_release_shared_by_every_process(
    database: str, tmp_path: Path
) -> None:
    home = GovernanceHome.resolve(str(tmp_path / "home"), {DATABASE_URL_ENV: database})
    store = release_state(home, "penguin_service")
    assert isinstance(store, PostgresStateStore) and store.load() == ReleaseState()
    store.save(ReleaseState(previous="blue", failures=2))
    other = release_state(home, "penguin_web")
    other.save(ReleaseState(previous="green"))
    again = release_state(home, "penguin_service").load()  # a fresh connection, as another run
    assert (again.previous, again.failures) == ("blue", 2)
    assert release_state(home, "penguin_web").load().previous == "green"
    assert not (tmp_path / "home" / "releases" / "penguin_service" / "state.json").exists()

    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "UPDATE governance_release_state SET state = %s WHERE release = %s",
            ('{"colors": {"purple": {}}}', "penguin_service"),
        )
    with pytest.raises(PermanentError, match="not a release state file") as refused:
        store.load()
    assert "delete its row (release = 'penguin_service')" in str(refused.value)


def test_two_flushers_of_the_shared_outbox_deliver_each_event_once_in_order(
    database: str, tmp_path: Path
) -> None:
    box = PostgresOutbox(database)
    sent = [box.append({"eventType": "START", "n": n}) for n in range(200)]
    assert box.pending_count() == 200 and len(sent) == len(set(sent))
    delivered = tmp_path / "events.jsonl"

    def flush() -> None:
        PostgresOutbox(database).flush(FileTransport(delivered), lock_timeout_s=60)

    flushers = [threading.Thread(target=flush) for _ in range(2)]
    for thread in flushers:
        thread.start()
    for thread in flushers:
        thread.join()
    import json

    numbers = [json.loads(line)["n"] for line in delivered.read_text().splitlines()]
    assert numbers == list(range(200))  # once each, in order
    assert box.pending_count() == 0
    removed, kept, _ = box.collect_delivered(keep=50)
    assert (removed, kept) == (150, 50)
    assert [e["n"] for e in box.events()] == list(range(150, 200))


def test_a_query_that_fails_mid_way_is_a_transient_error_naming_the_store(database: str) -> None:
    """Once connected, a store's query can still fail: its connection terminated (a database
    restart, a failover), a lock it waits for timing out. Each is a TransientError saying which
    store, so the run's retry takes it; never a raw driver error with its connection string."""
    import psycopg

    box = PostgresOutbox(database)
    (pid,) = box._run("SELECT pg_backend_pid()").fetchone()
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(TransientError, match=r"^the lineage outbox: ") as dropped:
        box.append({"eventType": "START"})
    assert database not in str(dropped.value)

    impatient = f"{database}?options=-c%20lock_timeout%3D200"
    store = PostgresStateStore(impatient, "penguin_service")
    store.save(ReleaseState(previous="blue"))
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE governance_release_state IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TransientError, match=r"^release state of penguin_service: .*lock"):
            store.load()
        with pytest.raises(TransientError, match=r"^release state of penguin_service: "):
            store.save(ReleaseState(previous="green"))
    assert store.load().previous == "blue"  # the lock gone, the state as it was


def test_the_home_moves_every_shared_store_to_the_database(database: str, tmp_path: Path) -> None:
    """Audit log, outbox, release state and locks: nothing of them is a file under the home."""
    from governance.services import Services, Settings

    environ = {**os.environ, DATABASE_URL_ENV: database, "GOVERNANCE_HOME": str(tmp_path / "home")}
    services = Services(Settings(environ=environ))
    trail = services.trail("cli:alice")
    trail.record("dataset.published", "dataset:penguins", {"md5": "abc"}, "published", ["test"])
    assert [r.action for r in services.audit_log().records("dataset:penguins")] == ["dataset.published"]
    assert isinstance(services.outbox(), PostgresOutbox)
    assert services.home.locks == Locks(database)
    assert services.dataset_store().locks == Locks(database)
    written = sorted(p.name for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert not [name for name in written if name.endswith((".db", ".json", ".lock"))], written


class _Recorded:
    """A notifier that keeps what it was asked to send (Slack itself is tested elsewhere)."""

    def __init__(self) -> None:
        self.titles: list[str] = []

    def send(self, title: str, lines: list[str], *, ok: bool) -> bool:
        self.titles.append(title)
        return True


def test_the_alert_ledger_holds_back_a_repeat_from_any_process(database: str, tmp_path: Path) -> None:
    from governance.notify.alerts import Alert, Alerts

    failing = Alert("run_failed", "job penguins", "boom")
    first, second = _Recorded(), _Recorded()
    for notifier in (first, second):  # two run containers, one ledger
        sent = Alerts(notifier, tmp_path / "alerts.db", 3600, database).alert(failing)
        if sent is not None:
            sent.join()
    assert (first.titles, second.titles) == (["Dagster run failed: job penguins"], [])
    assert not (tmp_path / "alerts.db").exists()


def test_two_working_copies_publish_through_the_shared_git_and_dvc_remotes(
    database: str, penguins_csv: Path, tmp_path: Path
) -> None:
    """Two run containers, each with a working copy of its own, publish at the same time: both
    versions land in the one history, each copy reads the other's, and the data comes back from
    the DVC remote; a publication whose audit record fails is taken back out of the remote."""
    from governance.datasets.versioning import DatasetStore

    volume = tmp_path / "volume"

    def container(name: str) -> DatasetStore:
        return DatasetStore(
            tmp_path / name / "datasets",
            str(volume / "dvc-remote"),
            Locks(database),
            str(volume / "datasets.git"),
        )

    first, second = container("a"), container("b")
    assert first.history("penguins") == []
    rows = penguins_csv.read_text().splitlines(keepends=True)
    files = []
    for n, count in enumerate((100, 200)):
        path = tmp_path / f"part{n}.csv"
        path.write_text("".join(rows[:count]))
        files.append(path)
    published: list[str] = []
    threads = [
        threading.Thread(
            target=lambda s=store, f=file: published.append(s.commit("penguins", f, lambda v: None).md5)
        )
        for store, file in ((first, files[0]), (second, files[1]))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(published) == 2
    for store in (first, second):
        assert sorted(v.md5 for v in store.history("penguins")) == sorted(published)
    assert first.current("penguins") == second.current("penguins")

    third = container("c")  # a new container: cloned from the remote, data from the DVC remote
    for version, source in zip(sorted(published), sorted(files, key=_md5), strict=True):
        out = tmp_path / f"{version}.csv"
        third.export("penguins", version, out)
        assert _md5(out) == _md5(source)

    def refuse(version: object) -> None:
        raise OSError("audit log unavailable")

    before = third.current("penguins")
    with pytest.raises(Exception, match="publication undone"):
        third.commit("penguins", penguins_csv, refuse)
    assert first.current("penguins") == before  # the remote, too, is back where it was
    assert sorted(v.md5 for v in first.history("penguins")) == sorted(published)

    # The daily check reads a working copy's file: a fresh container's, and one that published
    # an older version, are brought to the current version first.
    assert before is not None
    current = tmp_path / "current.csv"
    third.export("penguins", before.md5, current)
    for store in (container("d"), first, second):
        assert _md5(store.checked_out("penguins")) == _md5(current)


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()
