#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server:
#   1. $DATABASE_URL if it is set (and answers);
#   2. else the server on 127.0.0.1:5432 (trust auth) if one answers;
#   3. else a throwaway cluster made with initdb in a temporary directory,
#      on a unix socket and a free loopback port, removed on exit.
# Usage: infra/local/with-postgres.sh go test ./...
set -euo pipefail

ready() { pg_isready -q -d "$1" -t 3 >/dev/null 2>&1; }

if [ -n "${DATABASE_URL:-}" ]; then
  if ! ready "$DATABASE_URL"; then
    echo "with-postgres: DATABASE_URL is set but does not answer: $DATABASE_URL" >&2
    exit 1
  fi
  exec "$@"
fi

default="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
if ready "$default"; then
  DATABASE_URL="$default" exec "$@"
fi

# No server: start our own. initdb refuses to run as root, so use the
# postgres system user when we are root.
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "with-postgres: no PostgreSQL found (apt-get install postgresql)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/km-pg.XXXXXX)
chmod 755 "$tmp"
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); chown postgres "$tmp"; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
cleanup() {
  "${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "with-postgres: starting a throwaway PostgreSQL on 127.0.0.1:$port" >&2
"${as[@]}" "$bindir/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -o "-k $tmp -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" -l "$tmp/log" -w start >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
"$@"
