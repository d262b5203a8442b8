#!/usr/bin/env bash
# End-to-end suite: real Kafka clients (kcat, confluent-kafka, kafka-python)
# against a release `ringlog serve`. Called by ci/test.sh after the cargo
# tests; runs on its own too (as root, or as a user with sudo for apt).
#
# Installs, idempotently and without prompts, only what is missing:
#   * kcat from Debian 12 (kcat 1.7.1 on librdkafka 2.0.2),
#   * the openssl CLI (test_tls.py and test_sasl.py make their certificates
#     with it),
#   * the pinned Python packages of ci/python_deps.sh (pip, current
#     interpreter),
# then builds target/release/ringlog and runs tools/tests/e2e with pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "e2e: kcat, openssl"
if ! command -v kcat >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo -n"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends kcat openssl </dev/null
fi
kcat -V 2>&1 | grep -E '^Version' || { echo "ci/e2e.sh: kcat -V failed" >&2; exit 2; }

step "e2e: python packages"
ci/python_deps.sh
python3 - <<'EOF'
import confluent_kafka, kafka, lz4, pytest, snappy, zstandard
from kafka.codec import has_lz4, has_snappy, has_zstd

assert has_snappy() and has_lz4() and has_zstd(), "kafka-python lacks a compression codec"
print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]}), "
      f"kafka-python {kafka.__version__}, lz4 {lz4.__version__}, zstandard {zstandard.__version__}, "
      f"pytest {pytest.__version__}")
EOF

step "e2e: build ringlog (release)"
cargo build --release -p ringlog-tools --locked
export RINGLOG_BIN="$PWD/target/release/ringlog"

step "e2e: pytest tools/tests/e2e"
# glommio locks memory for io_uring; the servers inherit this limit.
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
# Each test bounds its own waits (pytest-timeout is the backstop); this
# bounds the whole suite (normally a few minutes) within the CI budget.
timeout --kill-after=30 1200 python3 -m pytest -x -q --durations=10 tools/tests/e2e </dev/null
