#!/bin/sh
# The stack's Postgres, from the `postgres` base image (Debian's postgresql): started as root only
# to hand its volume to the postgres user, then run as that user. The first start creates the
# cluster (password authentication, the password from $POSTGRES_PASSWORD, never on a command line)
# and the `governance` database.
set -eu
root=/var/lib/governance/postgres
data="$root/data"
for bin in /usr/lib/postgresql/*/bin; do :; done  # the one version the image has
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
chown postgres:postgres "$root"
if [ ! -s "$data/PG_VERSION" ]; then
  password_file="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
  chown postgres "$password_file"
  as_postgres "$bin/initdb" -D "$data" -U governance --pwfile="$password_file" \
    --auth=scram-sha-256 -E UTF8 >/dev/null
  rm -f "$password_file"
  echo "CREATE DATABASE governance;" | as_postgres "$bin/postgres" --single -D "$data" postgres >/dev/null
fi
unset POSTGRES_PASSWORD
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" \
  -c listen_addresses=127.0.0.1 -c port="$GOVERNANCE_STACK_PG_PORT" -c unix_socket_directories=/tmp
