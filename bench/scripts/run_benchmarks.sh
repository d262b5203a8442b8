#!/usr/bin/env bash
# Runs every measurement in BENCHMARKS.md and prints its tables.
#
#   cargo build --release -p ringlog-tools --locked
#   bench/scripts/run_benchmarks.sh            # ~12 minutes
#
# Starts `ringlog serve` (1 and 2 shards, default settings, data under
# target/benchmarks/, which must be on the disk being measured and have
# ~20 GB free; each server's data is deleted when it stops) on free
# ports, runs `ringlog bench disk` at the start and the end of the session,
# then the workloads below, one at a time, each against a fresh server.
# Every run's JSON report is kept in target/benchmarks/; the tables are
# printed by bench/scripts/tables.py from them. Do not run it while
# anything else uses the CPUs or the disk: the numbers would be theirs.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${RINGLOG_BIN:-$PWD/target/release/ringlog}
OUT=${RINGLOG_BENCH_OUT:-$PWD/target/benchmarks}
DURATION=${RINGLOG_BENCH_DURATION:-10s}
WARMUP=${RINGLOG_BENCH_WARMUP:-2s}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER_PID=""
SERVER_ARGS=()
start_server() { # shards
  local shards=$1
  PORT=$(free_port)
  HTTP=$(free_port)
  rm -rf "$OUT/data"
  "$BIN" serve --data-dir "$OUT/data" --listen "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP" \
    --shards "$shards" "${SERVER_ARGS[@]}" >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "run_benchmarks: ringlog serve did not start; see $OUT/server.log" >&2
  exit 2
}
stop_server() {
  kill "$SERVER_PID"
  wait "$SERVER_PID" || true
  # A maximum-rate run writes ~15 GB: free it before the next one.
  rm -rf "$OUT/data"
}

# run NAME SHARDS bench-args...: one bench run against a fresh server.
run() {
  local name=$1 shards=$2
  shift 2
  start_server "$shards"
  echo "== $name (shards $shards ${SERVER_ARGS[*]}, load $(cut -d' ' -f1 /proc/loadavg)): ringlog bench $*" | tee -a "$OUT/commands.txt"
  "$BIN" bench "$@" --bootstrap "127.0.0.1:$PORT" --duration "$DURATION" --warmup "$WARMUP" \
    --quiet --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 || echo "   (exit $?; see $OUT/$name.txt)"
  grep -E "records/s|MB/s|verified" "$OUT/$name.txt" | sed 's/^/   /' || true
  stop_server
}

disk() { # name
  echo "== $1: ringlog bench disk --dir $OUT" | tee -a "$OUT/commands.txt"
  "$BIN" bench disk --dir "$OUT" --json "$OUT/$1.json" | sed 's/^/   /'
}

disk disk-start

# OpenMessaging-Benchmark-style workloads: 1 KiB records, acks=all, at a
# fixed 50,000 records/s and at the maximum rate; 1, 8 and 100 partitions;
# ringlog with 1 and 2 shards.
for shards in 1 2; do
  for partitions in 1 8 100; do
    connections=$((partitions < 8 ? partitions : 8))
    common=(produce --topic "omb-$partitions" --partitions "$partitions" --message-bytes 1024
      --acks all --connections "$connections")
    run "omb-p$partitions-rate-s$shards" "$shards" "${common[@]}" --rate 50000
    run "omb-p$partitions-max-s$shards" "$shards" "${common[@]}"
  done
done

# The issue's target command, with every other option at its default.
run target-max-s2 2 produce --partitions 8 --message-bytes 1024 --acks all
half=$(python3 -c "import json; print(round(json.load(open('$OUT/target-max-s2.json'))['throughput_records_s'] / 2))")
run target-half-s2 2 produce --partitions 8 --message-bytes 1024 --acks all --rate "$half"
run target-half-linger0-s2 2 produce --partitions 8 --message-bytes 1024 --acks all --rate "$half" \
  --linger-ms 0
# The same with the I/O memory the write buffers need (see "Where the time
# goes"): every log's write-behind buffers come from glommio's arena.
SERVER_ARGS=(--io-memory-bytes 67108864)
run target-max-s2-io64 2 produce --partitions 8 --message-bytes 1024 --acks all
run target-half-s2-io64 2 produce --partitions 8 --message-bytes 1024 --acks all --rate "$half"
run target-half-linger0-s2-io64 2 produce --partitions 8 --message-bytes 1024 --acks all \
  --rate "$half" --linger-ms 0
SERVER_ARGS=()

# Scaling, 2 shards, maximum rate: partitions, then record size.
for partitions in 1 2 8 32 100 300 1000; do
  connections=$((partitions < 8 ? partitions : 8))
  run "scale-partitions-$partitions" 2 produce --topic "scale-$partitions" --partitions "$partitions" \
    --message-bytes 1024 --acks all --connections "$connections"
done
for bytes in 100 1024 4096 16384 65536; do
  run "scale-bytes-$bytes" 2 produce --topic scale-bytes --partitions 8 --message-bytes "$bytes" \
    --acks all --connections 8
done
# Latency at half the maximum rate of the 8-partition, 1 KiB run above.
half8=$(python3 -c "import json; print(round(json.load(open('$OUT/scale-partitions-8.json'))['throughput_records_s'] / 2))")
run scale-half-rate 2 produce --topic scale-half --partitions 8 --message-bytes 1024 --acks all \
  --connections 8 --rate "$half8"

# The other workloads, 2 shards.
run e2e-50k 2 e2e --topic e2e --partitions 8 --message-bytes 1024 --acks all --rate 50000 \
  --connections 8 --consumers 2
run requests-metadata 2 requests --api metadata --connections 64 --threads 1
run requests-create-topics 2 requests --api create-topics --connections 8 --threads 1 --records 1500
run requests-offset-commit 2 requests --api offset-commit --connections 64 --threads 1 --partitions 8
run requests-offset-fetch 2 requests --api offset-fetch --connections 64 --threads 1 --partitions 8

# Consume: fill 8 partitions with 4 GiB, then read them back from the start.
start_server 2
echo "== consume (shards 2, load $(cut -d' ' -f1 /proc/loadavg)): fill, then ringlog bench consume" | tee -a "$OUT/commands.txt"
"$BIN" bench produce --bootstrap "127.0.0.1:$PORT" --topic consume --partitions 8 --connections 8 \
  --records 4194304 --quiet >"$OUT/consume-fill.txt" 2>&1
"$BIN" bench consume --bootstrap "127.0.0.1:$PORT" --topic consume --from earliest --until-end \
  --connections 8 --quiet --json "$OUT/consume.json" >"$OUT/consume.txt" 2>&1 || echo "   (exit $?)"
grep -E "records/s|MB/s" "$OUT/consume.txt" | sed 's/^/   /' || true
stop_server

disk disk-end

python3 bench/scripts/tables.py "$OUT"
