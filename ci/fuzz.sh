#!/usr/bin/env bash
# The cargo-fuzz targets (libFuzzer, nightly toolchain), one at a time:
#
#   ci/fuzz.sh smoke                  each target ${RINGLOG_FUZZ_SMOKE_SECONDS:-25} s (CI)
#   ci/fuzz.sh long SECONDS [TARGET]  each target (or only TARGET) SECONDS, by hand
#
# Targets: protocol/fuzz (request_decoder, record_batch_view) and
# engine/fuzz (segment_recovery, metadata_log_replay); the properties they
# check are in ringlog_protocol::fuzzing and ringlog_engine::fuzzing.
# Each run reads the committed corpus (<crate>/fuzz/corpus/<target>) and
# writes what it discovers to target/fuzz-work/<target>, so a run never
# changes the repository. Findings land in target/fuzz-artifacts/<target>/;
# the script then fails and prints how to reproduce one. A fixed finding
# is committed to <crate>/fuzz/regressions/<target>/, where the stable
# replay tests (<crate>/tests/fuzz_corpus.rs) keep checking it.
#
# Without a nightly toolchain the script says so and replays the committed
# corpora on stable instead (the same checks, no new inputs); that is not a
# failure. Fuzzers run under `nice -n 19`: they are CPU-bound and should
# not starve other work on a shared machine.
#
# Folding a long run's discoveries into the committed corpus (keep it
# small: the seeds plus inputs that add coverage):
#   cd <crate> && cargo +nightly fuzz run --target-dir ../target/fuzz <target> \
#     <new dir> fuzz/corpus/<target> ../target/fuzz-work/<target> -- -merge=1
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: ci/fuzz.sh smoke | ci/fuzz.sh long SECONDS [TARGET]" >&2
  exit 2
}

only=
case "${1:-}" in
  smoke) seconds=${RINGLOG_FUZZ_SMOKE_SECONDS:-25} ;;
  long)
    seconds=${2:-}
    only=${3:-}
    [[ "$seconds" =~ ^[0-9]+$ ]] || usage
    ;;
  *) usage ;;
esac

# crate, target, largest input in bytes.
targets=(
  "protocol request_decoder 4096"
  "protocol record_batch_view 4096"
  "engine segment_recovery 65536"
  "engine metadata_log_replay 65536"
)

replay_on_stable() {
  cargo test --locked -p ringlog-protocol --test fuzz_corpus
  cargo test --locked -p ringlog-engine --test fuzz_corpus
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "ci/fuzz.sh: no nightly toolchain here (cargo-fuzz needs one: rustup toolchain install nightly);"
  echo "ci/fuzz.sh: replaying the committed fuzz corpora on stable instead"
  replay_on_stable
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# glommio (the engine targets' executor) pins memory for io_uring.
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true

mkdir -p target/fuzz-logs
ran=0
for spec in "${targets[@]}"; do
  read -r crate target max_len <<<"$spec"
  if [ -n "$only" ] && [ "$only" != "$target" ]; then
    continue
  fi
  ran=$((ran + 1))
  work=target/fuzz-work/$target
  artifacts=target/fuzz-artifacts/$target
  log=target/fuzz-logs/$target.log
  mkdir -p "$work" "$artifacts"
  echo "== fuzz $crate/$target for ${seconds}s (cargo fuzz run builds it first)"
  status=0
  (cd "$crate" && nice -n 19 cargo +nightly fuzz run --target-dir ../target/fuzz "$target" \
    "../$work" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -malloc_limit_mb=64 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="../$artifacts/") >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "ci/fuzz.sh: $target failed (exit $status); full log $log, findings in $artifacts:" >&2
    ls -l "$artifacts" >&2
    echo "reproduce: (cd $crate && cargo +nightly fuzz run --target-dir ../target/fuzz $target ../$artifacts/<file>)" >&2
    exit 1
  fi
done
if [ "$ran" -eq 0 ]; then
  echo "ci/fuzz.sh: no target named $only" >&2
  usage
fi
echo "ci/fuzz.sh: $ran target(s) ran ${seconds}s each without a finding"
