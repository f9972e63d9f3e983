#!/usr/bin/env bash
# The whole of `make bench`: the monitor's overhead (direct pipe, bare copy,
# kilometers monitor, monitor with shipping to functions/local) and the
# backend's (ingest through the HTTP handler vs raw COPY; /api/stats at 1M
# and 10M events), each measured side by side in one run; and the
# dashboard's first render over 100,000 events in a real headless Chromium
# (floor: under 1 s; needs the chromium package); the analysis's and
# jsonstr's vector kernels beside their Go loops (floor: 1.5x); and the local store's
# `kilometers stats` and a no-match `kilometers activity` over 1M events
# (floor: under 100 ms each).
#
# Needs DATABASE_URL (`make bench` runs this under infra/local/with-postgres.sh,
# which provides one) and Go. Run from anywhere.
#
#   BENCH_QUICK=1  a smoke run in about a minute: same code paths, figures
#                  not meaningful.
#   BENCH_JSON=1   each half prints one JSON document instead of tables.
#   BENCH_ONLY=monitor|postgres|dashboard|kernels|store   run one part.
#   BENCH_SCALE=N  also time the backend with N events stored for one tenant
#                  (after 1M and 10M), e.g. 100000000. Loading took about a
#                  minute and 0.6 GB of disk per million events on a loaded
#                  2-CPU machine (docs/performance.md, "Scale"); a size that
#                  would fill the disk past 70% is not loaded. Opt-in: the
#                  default run stays within minutes.
#
# Exits 1 when a required floor is missed, 2 when a benchmark could not run.
set -uo pipefail

cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?DATABASE_URL is not set: run through infra/local/with-postgres.sh (make bench does)}"

quick=() json=() scale=()
[ "${BENCH_QUICK:-}" = 1 ] && quick=(-quick)
[ -n "${BENCH_SCALE:-}" ] && scale=(-sizes "1000000,10000000,$BENCH_SCALE")
[ "${BENCH_JSON:-}" = 1 ] && json=(-json)
only=${BENCH_ONLY:-}

tools=$(mktemp -d /tmp/km-bench-tools.XXXXXX)
trap 'rm -rf "$tools"' EXIT
echo "bench: building the benchmark programs" >&2
# The monitor is measured as users get it: built the way .goreleaser.yaml
# builds releases (static, stripped).
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$tools/kilometers" ./cli || exit 2
for pkg in infra/bench/monitor infra/bench/echoserver infra/bench/barecopy functions/local shared/postgres/internal/bench; do
  go build -trimpath -o "$tools/$(basename "$pkg")" "./$pkg" || exit 2
done
go build -trimpath -o "$tools/storebench" ./cli/internal/store/internal/bench || exit 2

status=0
note() { # keep the worst exit code: 2 (could not run) > 1 (floor missed) > 0
  local rc=$1
  if [ "$rc" -gt "$status" ]; then status=$rc; fi
  if [ "$rc" -gt 2 ]; then status=2; fi
}

echo "bench: machine: $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ -z "$only" ] || [ "$only" = monitor ]; then
  echo >&2
  echo "== monitor: go run ./infra/bench/monitor ${quick[*]} ${json[*]}" >&2
  "$tools/monitor" "${quick[@]}" "${json[@]}" \
    -kilometers "$tools/kilometers" -api-server "$tools/local" \
    -echo-server "$tools/echoserver" -bare-copy "$tools/barecopy"
  note $?
fi
if [ -z "$only" ] || [ "$only" = postgres ]; then
  echo >&2
  echo "== postgres: go run ./shared/postgres/internal/bench ${quick[*]} ${json[*]} ${scale[*]}" >&2
  "$tools/bench" "${quick[@]}" "${json[@]}" "${scale[@]}"
  note $?
fi

if [ -z "$only" ] || [ "$only" = dashboard ]; then
  echo >&2
  runs=10
  [ ${#quick[@]} -gt 0 ] && runs=1
  echo "== dashboard: go test -bench BenchmarkFirstRender -benchtime ${runs}x ./cli/internal/cmd/ui" >&2
  out=$(go test -run '^$' -bench BenchmarkFirstRender -benchtime "${runs}x" ./cli/internal/cmd/ui 2>&1)
  rc=$?
  echo "$out" >&2
  if [ $rc -ne 0 ]; then
    note 2
  else
    ms=$(echo "$out" | awk '/^BenchmarkFirstRender/ { for (i = 1; i < NF; i++) if ($(i+1) == "render-ms") print $i }')
    echo "dashboard: first render over 100,000 events: ${ms} ms (floor 1000 ms)" >&2
    awk -v ms="$ms" 'BEGIN { exit !(ms != "" && ms < 1000) }' || note 1
  fi
fi

if [ -z "$only" ] || [ "$only" = kernels ]; then
  echo >&2
  # The vector kernels of the analysis window's anchor scan and of long
  # plain runs, each beside its Go loop in one run: where the CPU has
  # them, each must be at least 1.5x as fast on every shape of text.
  echo "== kernels: go test -bench 'ScanBoth|PlainRunes' ./shared/analysis ./shared/jsonstr" >&2
  benchtime=1s
  [ ${#quick[@]} -gt 0 ] && benchtime=100x
  out=$(go test -run '^$' -bench 'ScanBoth|PlainRunes' -benchtime "$benchtime" ./shared/analysis ./shared/jsonstr 2>&1)
  rc=$?
  echo "$out" | grep -E '^(Benchmark|ok|FAIL|---)' >&2
  if [ $rc -ne 0 ]; then
    note 2
  else
    echo "$out" | awk '
      /^Benchmark(ScanBoth|PlainRunes)\// {
        name = $1; sub(/-[0-9]+$/, "", name); n = split(name, p, "/")
        shape = p[1] "/" p[2]; path = p[n]; if (n == 2) { shape = p[1]; path = p[2] }
        for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") ns[shape, path] = $i
        shapes[shape] = 1
      }
      END {
        bad = 0; seen = 0
        for (s in shapes) {
          vec = ns[s, "vector"]
          if (ns[s, "go"] == "" || vec == "") continue
          seen++
          r = ns[s, "go"] / vec
          printf "kernels: %-28s Go %9.0f ns, kernel %9.0f ns: %.1fx (floor 1.5x)\n", s, ns[s, "go"], vec, r > "/dev/stderr"
          if (r < 1.5) bad = 1
        }
        if (seen == 0) print "kernels: this CPU has no vector kernel (AVX-512 VBMI, AVX2): nothing to compare" > "/dev/stderr"
        exit bad
      }' || note 1
  fi
fi

if [ -z "$only" ] || [ "$only" = store ]; then
  echo >&2
  echo "== store: go run ./cli/internal/store/internal/bench ${quick[*]} ${json[*]}" >&2
  "$tools/storebench" "${quick[@]}" "${json[@]}" -kilometers "$tools/kilometers"
  note $?
fi

echo >&2
case $status in
  0) echo "bench: PASS (every required floor met)" >&2 ;;
  1) echo "bench: FAIL (a required floor was missed; see above)" >&2 ;;
  *) echo "bench: ERROR (a benchmark could not run; see above)" >&2 ;;
esac
exit "$status"
