"""The shared database (GOVERNANCE_DATABASE_URL) as each tool must be given it.

- MLflow's server gets a schema of its own: Dagster's tables share the database, and both keep an
  `alembic_version` table of their migrations.
- Dagster's storage (dagster-postgres) goes through psycopg2: SQLAlchemy 2.1 hands a bare
  `postgresql://` to psycopg 3, on which dagster-postgres's `NOTIFY run_events, <bound parameter>`
  is a syntax error (dagster-io/dagster#33958).

`python -m governance.shared_database mlflow|dagster` prints the URL for the scripts, which hand it
on through the environment, so the password is never on a command line.
"""

from __future__ import annotations

import os
import sys
import urllib.parse

MLFLOW_SCHEMA = "mlflow"
DAGSTER_STORAGE_URL_ENV = "GOVERNANCE_DAGSTER_STORAGE_URL"  # what storage-postgres.yaml reads


def mlflow_backend_store(database_url: str) -> str:
    """Creates MLflow's schema if needed."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {MLFLOW_SCHEMA}")
    parts = urllib.parse.urlsplit(database_url)
    query = [*urllib.parse.parse_qsl(parts.query), ("options", f"-csearch_path={MLFLOW_SCHEMA}")]
    scheme = "postgresql"  # SQLAlchemy knows no `postgres://`
    return urllib.parse.urlunsplit(parts._replace(scheme=scheme, query=urllib.parse.urlencode(query)))


def dagster_storage(database_url: str) -> str:
    return "postgresql+psycopg2://" + database_url.split("://", 1)[1]


if __name__ == "__main__":
    from governance.home import DATABASE_URL_ENV

    tool = sys.argv[1] if len(sys.argv) == 2 else ""
    convert = {"mlflow": mlflow_backend_store, "dagster": dagster_storage}.get(tool)
    if convert is None:
        sys.exit("usage: python -m governance.shared_database mlflow|dagster")
    print(convert(os.environ[DATABASE_URL_ENV]))
