"""The audit log on real sqlite (WAL) and a real PostgreSQL server, with concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from governance.audit.chain import Entry, verify
from governance.audit.store import AuditLog, open_audit_log
from tests.conftest import REPO

WRITERS, PER_WRITER = 4, 150


def _write(target: str, writer: int) -> int:
    log = open_audit_log(Path(target), None if target.endswith(".db") else target)
    for i in range(PER_WRITER):
        log.append(Entry(f"writer-{writer}", "test.append", f"subject:{writer}", {"i": str(i)}, "ok"))
    return writer


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    url: str = request.getfixturevalue("postgres_url")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_log")
    return url


def opened(target: str) -> AuditLog:
    return open_audit_log(Path(target), None if target.endswith(".db") else target)


def test_concurrent_writers_extend_one_unbroken_chain(target: str) -> None:
    opened(target)  # create the table before the writers race
    with ProcessPoolExecutor(WRITERS) as pool:
        assert sorted(pool.map(_write, [target] * WRITERS, range(WRITERS))) == list(range(WRITERS))
    records = list(opened(target).records())
    assert [r.seq for r in records] == list(range(1, WRITERS * PER_WRITER + 1))
    assert verify(records) is None
    assert len(list(opened(target).records(subject="subject:2"))) == PER_WRITER


def _sql(target: str) -> Callable[[str], None]:
    if target.endswith(".db"):

        def run_sqlite(statement: str) -> None:
            with sqlite3.connect(target) as conn:
                conn.execute(statement)

        return run_sqlite
    import psycopg

    def run_postgres(statement: str) -> None:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(statement)

    return run_postgres


COPY_OF_2_AS_99 = (
    "INSERT INTO audit_log SELECT 99, at, actor, action, subject, versions, decision, reasons,"
    " prev_hash, hash FROM audit_log WHERE seq = 2"
)


@pytest.mark.parametrize(
    ("statements", "first_broken"),
    [
        (
            ["UPDATE audit_log SET decision = 'rejected' WHERE seq = 3"],
            "record 3: its content no longer matches",
        ),
        (["DELETE FROM audit_log WHERE seq = 3"], "record 4: expected record 3 here"),
        (
            [
                "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3",
                COPY_OF_2_AS_99.replace("99", "3"),
                "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103",
            ],
            "record 3: does not follow",
        ),
        (
            [
                "UPDATE audit_log SET seq = 100 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 100",
            ],
            "record 2: does not follow",
        ),
    ],
    ids=["edit", "delete", "insert", "reorder"],
)
def test_cli_verify_names_the_first_broken_record(
    target: str, statements: list[str], first_broken: str, home: Path
) -> None:
    log = opened(target)
    for i in range(5):
        log.append(Entry("cli:alice", "test.append", "dataset:penguins", {"i": str(i)}, "ok"))

    def verify_cli() -> subprocess.CompletedProcess[str]:
        url = [] if target.endswith(".db") else ["--audit-url", target]
        env_home = ["--home", str(Path(target).parent)] if target.endswith(".db") else []
        return subprocess.run(
            [sys.executable, "-m", "governance", *env_home, *url, "audit", "verify"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    intact = verify_cli()
    assert intact.returncode == 0 and "intact: 5 records" in intact.stdout, intact.stderr
    for statement in statements:
        _sql(target)(statement)
    broken = verify_cli()
    assert broken.returncode == 1
    assert f"audit log BROKEN at {first_broken}" in broken.stderr


def test_show_filters_by_subject_and_prints_json(home: Path) -> None:
    log = open_audit_log(home / "audit.db")
    log.append(
        Entry("dagster:r1", "dataset.published", "dataset:penguins", {"md5": "a" * 32}, "published")
    )
    log.append(
        Entry(
            "cli:alice",
            "alias.champion.promoted",
            "model:penguin-classifier",
            {"model_version": "m/1"},
            "promoted",
            ["beats baseline"],
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "governance",
            "audit",
            "show",
            "--subject",
            "model:penguin-classifier",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    import json

    (record,) = json.loads(result.stdout)
    assert (
        record["actor"] == "cli:alice" and record["reasons"] == ["beats baseline"] and record["seq"] == 2
    )
