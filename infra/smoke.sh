#!/usr/bin/env bash
# Smoke test of a running Kilometers API (deployed or functions/local):
# health, create a tenant with the admin token, ingest a batch (and again
# gzipped: all duplicates), read activity and stats with exact counts,
# create and revoke a key. Exits non-zero on the first failure.
#
#   infra/smoke.sh URL [ADMIN_TOKEN]          # or KILOMETERS_ADMIN_TOKEN in the environment
#   infra/smoke.sh URL -- -wait 5m            # extra flags for go run ./infra/smoke (see -h)
#
# Prefer the environment variable for the token: arguments show in `ps`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
url=$1
shift
if [ $# -gt 0 ] && [ "$1" != -- ]; then
  export KILOMETERS_ADMIN_TOKEN=$1
  shift
fi
[ "${1:-}" = -- ] && shift
exec go run ./infra/smoke -url "$url" "$@"
