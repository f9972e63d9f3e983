#!/usr/bin/env bash
# Proves infra/smoke.sh against a real functions/local on a free loopback
# port over $DATABASE_URL (run it under infra/local/with-postgres.sh): the
# smoke test must pass with the right admin token and fail with a wrong one.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (infra/local/with-postgres.sh sets it)}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-smoke.XXXXXX")
pid=
# A database of its own: the server's default one is shared with every
# other checkout and run on the machine, at whatever migration they left.
server_url=$DATABASE_URL
db="km_smoke_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql "$server_url" -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
psql "$server_url" -qXc "CREATE DATABASE $db" >/dev/null
DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DATABASE_URL" "$db")
export DATABASE_URL

go build -o "$tmp/local" ./functions/local
# Build the smoke command once so the two runs below do not each compile it.
go build -o /dev/null ./infra/smoke
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
KILOMETERS_ADMIN_TOKEN=$token "$tmp/local" -addr 127.0.0.1:0 2>"$tmp/local.log" &
pid=$!
url=
for _ in $(seq 1 300); do
  url=$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$tmp/local.log" | head -1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/local.log" >&2; echo "smoke_local: functions/local exited" >&2; exit 1; }
  sleep 0.2
done
[ -n "$url" ] || { cat "$tmp/local.log" >&2; echo "smoke_local: functions/local did not listen within 60s" >&2; exit 1; }
echo "functions/local listening on $url"

KILOMETERS_ADMIN_TOKEN=$token infra/smoke.sh "$url" -- -wait 10s

# The script must fail, and say why, when something is wrong.
if KILOMETERS_ADMIN_TOKEN=wrong-token infra/smoke.sh "$url" -- -wait 10s 2>"$tmp/fail.log"; then
  echo "smoke_local: smoke.sh passed with a wrong admin token" >&2
  exit 1
fi
grep -q 'create tenant: POST /api/admin/tenants: status 401' "$tmp/fail.log" ||
  { cat "$tmp/fail.log" >&2; echo "smoke_local: smoke.sh failed for another reason than the wrong token" >&2; exit 1; }
echo "smoke.sh with a wrong admin token: failed as it should ($(head -c 120 "$tmp/fail.log"))"
