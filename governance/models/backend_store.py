"""The MLflow server's backend store in the shared database (GOVERNANCE_DATABASE_URL).

MLflow gets a schema of its own: Dagster's tables share the database, and both keep an
`alembic_version` table of their migrations. `python -m governance.models.backend_store` creates the
schema if needed and prints the store's URI (scripts/mlflow.sh hands it to the server through
MLFLOW_BACKEND_STORE_URI, so the password is never on a command line).
"""

from __future__ import annotations

import os
import urllib.parse

SCHEMA = "mlflow"


def backend_store_uri(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    parts = urllib.parse.urlsplit(database_url)
    query = [*urllib.parse.parse_qsl(parts.query), ("options", f"-csearch_path={SCHEMA}")]
    scheme = "postgresql"  # SQLAlchemy knows no `postgres://`
    return urllib.parse.urlunsplit(parts._replace(scheme=scheme, query=urllib.parse.urlencode(query)))


if __name__ == "__main__":
    from governance.home import DATABASE_URL_ENV

    print(backend_store_uri(os.environ[DATABASE_URL_ENV]))
