#!/usr/bin/env bash
# Interleaved A/B of two ringlog builds on the issue's produce workload.
#
#   bench/scripts/ab_produce.sh OLD_BINARY NEW_BINARY [ROUNDS] [HALF_RATE]
#
# Runs `ringlog bench produce --partitions 8 --message-bytes 1024 --acks all`
# at the maximum rate, then at HALF_RATE records/s (default 530000), ROUNDS
# times (default 2) for each binary, alternating a and b so both see the
# same host load. Every run gets a fresh `ringlog serve --shards 2` with
# default settings, data under target/benchmarks-ab/ (deleted after each
# run; a maximum-rate run writes ~12 GB), and prints throughput, latency
# percentiles and the server's minor page faults during the run (from
# /proc/<pid>/stat). Claims of a server-side improvement in BENCHMARKS.md
# come from this script, not from comparing single runs.
#
# A_SERVE_ARGS / B_SERVE_ARGS and A_BENCH_ARGS / B_BENCH_ARGS add options
# (split on spaces) to side a's or b's `serve` and `bench produce`, so one
# binary can be compared with itself under two settings, e.g. PLAINTEXT
# against SSL (BENCHMARKS.md, "TLS"):
#
#   B_SERVE_ARGS="--security-protocol SSL --tls-cert server.pem --tls-key server.key" \
#   B_BENCH_ARGS="--security-protocol SSL --tls-ca ca.pem" \
#   bench/scripts/ab_produce.sh target/release/ringlog target/release/ringlog
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 ROUNDS=${3:-2} HALF=${4:-530000}
read -ra A_SERVE <<<"${A_SERVE_ARGS:-}"
read -ra B_SERVE <<<"${B_SERVE_ARGS:-}"
read -ra A_BENCH <<<"${A_BENCH_ARGS:-}"
read -ra B_BENCH <<<"${B_BENCH_ARGS:-}"
OUT=$PWD/target/benchmarks-ab
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # binary name a|b bench-args...
  local bin=$1 name=$2 side=$3
  shift 3
  local serve_args=() bench_args=()
  if [ "$side" = a ]; then
    serve_args=(${A_SERVE[@]+"${A_SERVE[@]}"}) bench_args=(${A_BENCH[@]+"${A_BENCH[@]}"})
  else
    serve_args=(${B_SERVE[@]+"${B_SERVE[@]}"}) bench_args=(${B_BENCH[@]+"${B_BENCH[@]}"})
  fi
  local port
  port=$(free_port)
  rm -rf "$OUT/data"
  "$bin" serve --data-dir "$OUT/data" --listen "127.0.0.1:$port" --shards 2 \
    ${serve_args[@]+"${serve_args[@]}"} >>"$OUT/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  local faults_before
  faults_before=$(awk '{print $10}' "/proc/$pid/stat")
  "$bin" bench produce --partitions 8 --message-bytes 1024 --acks all "$@" \
    ${bench_args[@]+"${bench_args[@]}"} --duration 8s \
    --warmup 2s --bootstrap "127.0.0.1:$port" --quiet --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 ||
    echo "   (exit $?; see $OUT/$name.txt)"
  local faults=$(($(awk '{print $10}' "/proc/$pid/stat") - faults_before))
  kill "$pid"
  wait "$pid" || true
  rm -rf "$OUT/data"
  python3 - "$OUT/$name.json" "$name" "$faults" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("%-10s %7.1f MB/s %9.0f rec/s  p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms  errors %d  faults %s  load %s"
      % (sys.argv[2], j["throughput_mb_s"], j["throughput_records_s"], j["p50_ms"], j["p99_ms"],
         j["p999_ms"], j["max_ms"], j["errors"], sys.argv[3], sys.argv[4]))
PY
}
for round in $(seq "$ROUNDS"); do
  run "$A" "a-max-$round" a
  run "$B" "b-max-$round" b
done
for round in $(seq "$ROUNDS"); do
  run "$A" "a-half-$round" a --rate "$HALF"
  run "$B" "b-half-$round" b --rate "$HALF"
done
