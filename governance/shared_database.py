"""The shared database (GOVERNANCE_DATABASE_URL) as each tool must be given it.

- MLflow's server gets a schema of its own: Dagster's tables share the database, and both keep an
  `alembic_version` table of their migrations.
- Dagster's storage (dagster-postgres) goes through psycopg2: SQLAlchemy 2.1 hands a bare
  `postgresql://` to psycopg 3, on which dagster-postgres's `NOTIFY run_events, <bound parameter>`
  is a syntax error (dagster-io/dagster#33958).

`python -m governance.shared_database mlflow|dagster` prints the URL for the scripts, which hand it
on through the environment, so the password is never on a command line; `… ready SECONDS` waits
until the database accepts connections.

`connect` is how the platform's own stores reach it, and `classified` what they say when a query fails.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from governance.errors import TransientError

if TYPE_CHECKING:
    import psycopg

MLFLOW_SCHEMA = "mlflow"
DAGSTER_STORAGE_URL_ENV = "GOVERNANCE_DAGSTER_STORAGE_URL"  # what storage-postgres.yaml reads
_CREATED: set[tuple[str, str]] = set()  # (url, DDL) this process has run already


def connect(url: str, what: str, ddl: str | None = None, timeout_s: int = 10) -> psycopg.Connection:
    """An autocommit connection. `ddl` (`CREATE … IF NOT EXISTS`) runs once per process, under a
    transaction-scoped advisory lock: two processes creating one table at once would otherwise
    collide on its type. Any database error is a TransientError saying `what` it was for."""
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=timeout_s)
    except psycopg.Error as exc:
        raise TransientError(f"{what}: the database cannot be reached ({_first_line(exc)})") from None
    if ddl is None or (url, ddl) in _CREATED:
        return conn
    try:
        with classified(what), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('governance-schema'))")
            conn.execute(ddl)
    except TransientError:
        conn.close()
        raise
    _CREATED.add((url, ddl))
    return conn


@contextmanager
def classified(what: str) -> Iterator[None]:
    """A database error inside (a connection dropped mid-query, a lock or statement timeout) as a
    TransientError saying `what` it was for: the caller's retry takes it, and its text is redacted
    like every GovernanceError's, never a raw driver error in a run or a sensor tick."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise TransientError(f"{what}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def mlflow_backend_store(database_url: str) -> str:
    """Creates MLflow's schema if needed."""
    ddl = f"CREATE SCHEMA IF NOT EXISTS {MLFLOW_SCHEMA}"
    connect(database_url, "MLflow's schema", ddl).close()
    parts = urllib.parse.urlsplit(database_url)
    query = [*urllib.parse.parse_qsl(parts.query), ("options", f"-csearch_path={MLFLOW_SCHEMA}")]
    scheme = "postgresql"  # SQLAlchemy knows no `postgres://`
    return urllib.parse.urlunsplit(parts._replace(scheme=scheme, query=urllib.parse.urlencode(query)))


def dagster_storage(database_url: str) -> str:
    return "postgresql+psycopg2://" + database_url.split("://", 1)[1]


def wait_ready(database_url: str, timeout_s: float) -> None:
    """Until the database accepts a connection (a server just started refuses them for a while)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connect(database_url, "the shared database", timeout_s=2).close()
            return
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


if __name__ == "__main__":
    from governance.home import DATABASE_URL_ENV

    url = os.environ[DATABASE_URL_ENV]
    tool = sys.argv[1] if len(sys.argv) >= 2 else ""
    if tool == "ready" and len(sys.argv) == 3:
        wait_ready(url, float(sys.argv[2]))
        sys.exit(0)
    convert = {"mlflow": mlflow_backend_store, "dagster": dagster_storage}.get(tool)
    if convert is None or len(sys.argv) != 2:
        sys.exit("usage: python -m governance.shared_database mlflow|dagster|ready SECONDS")
    print(convert(url))
