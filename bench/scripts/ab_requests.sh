#!/usr/bin/env bash
# Interleaved A/B of two ringlog builds on one `bench requests` workload.
#
#   bench/scripts/ab_requests.sh OLD_BINARY NEW_BINARY [ROUNDS] -- BENCH_ARGS...
#
# e.g. `bench/scripts/ab_requests.sh old new 2 -- --api offset-fetch
# --connections 16 --max-in-flight 5 --partitions 8`. Runs `ringlog bench
# requests BENCH_ARGS --duration 6s --warmup 2s` ROUNDS times (default 2)
# for each binary, alternating a and b so both see the same host load. Each
# run gets a fresh `ringlog serve --shards 2` on a new data directory under
# target/benchmarks-ab-requests/ (deleted after the run) and prints requests
# per second, latency percentiles and errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2
shift 2
ROUNDS=2
if [ "${1:-}" != "--" ]; then
  ROUNDS=$1
  shift
fi
[ "${1:-}" = "--" ] || { echo "usage: $0 OLD NEW [ROUNDS] -- BENCH_ARGS..." >&2; exit 2; }
shift
OUT=$PWD/target/benchmarks-ab-requests
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # binary name
  local bin=$1 name=$2 port data
  port=$(free_port)
  data=$OUT/data-$name
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --shards 2 >>"$OUT/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  "$bin" bench requests "${BENCH_ARGS[@]}" --duration 6s --warmup 2s \
    --bootstrap "127.0.0.1:$port" --quiet --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 ||
    echo "   (exit $?; see $OUT/$name.txt)"
  kill "$pid"
  wait "$pid" || true
  rm -rf "$data"
  python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("%-8s %9.0f requests/s  p50 %.3f  p99 %.3f  p99.9 %.3f ms  errors %d"
      % (sys.argv[2], j["throughput_records_s"], j["p50_ms"], j["p99_ms"], j["p999_ms"], j["errors"]))
PY
}
BENCH_ARGS=("$@")
for round in $(seq "$ROUNDS"); do
  run "$A" "a-$round"
  run "$B" "b-$round"
done
