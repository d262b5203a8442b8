#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every
# test. CI (.ci/run) calls exactly this on a fresh clone.
#
# What the tests need today: a Rust toolchain with rustfmt and clippy, a
# real (non-tmpfs) filesystem under target/ for the O_DIRECT tests, and
# enough locked memory for glommio executors (each test binary runs several
# executors at once), and the pinned Python packages of
# ci/python_deps.sh, installed first: the S3 store test starts moto's
# server. The Kafka client end-to-end suite (kcat, confluent-kafka,
# kafka-python against a release `ringlog serve`) runs last, from
# ci/e2e.sh, which installs kcat.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "environment"
uname -r
cargo --version
# glommio pins memory for io_uring: raise the soft limit to the hard one
# (as root in CI this is unlimited); fail clearly if it stays too low.
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
memlock_kib=$(ulimit -l)
echo "memlock: ${memlock_kib} KiB"
if [ "$memlock_kib" != unlimited ] && [ "$memlock_kib" -lt 8192 ]; then
  echo "ci/test.sh: locked memory limit ${memlock_kib} KiB is below the 8192 KiB the tests need; raise it with 'ulimit -l 8192' (root) or LimitMEMLOCK" >&2
  exit 2
fi
mkdir -p target
fs=$(stat -f -c %T target)
echo "target/ filesystem: $fs"
if [ "$fs" = tmpfs ]; then
  echo "ci/test.sh: target/ is on tmpfs; the direct-I/O tests need a real disk filesystem" >&2
  exit 2
fi

step "python packages (the S3 store test runs moto; the e2e suite's clients)"
ci/python_deps.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (debug, with doc tests)"
cargo test --workspace --locked

step "crash property test, release, ${RINGLOG_PROPTEST_CASES:=2000} cases"
PROPTEST_CASES=$RINGLOG_PROPTEST_CASES cargo test --release --locked -p ringlog-engine --test log_crash_prop

step "fault points: a broken invariant stops one partition; a stalled indexer stalls no search"
cargo test --locked -p ringlog-shard --features failpoints --test partition_stop --test search_stalled_indexer

step "fuzz smoke (cargo-fuzz on nightly; corpus replay on stable without one)"
ci/fuzz.sh smoke

step "benchmarks compile"
cargo bench --workspace --locked --no-run

step "end-to-end suite (Kafka clients against ringlog serve)"
ci/e2e.sh

echo
echo "ci/test.sh: all checks passed"
