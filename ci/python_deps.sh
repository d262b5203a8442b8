#!/usr/bin/env bash
# The pinned Python packages the tests need, installed idempotently and
# without prompts into the current python3 (only what is missing or at
# another version). ci/test.sh calls it before the cargo tests (the S3
# store test, shard/tests/s3_store.rs, runs moto's server); ci/e2e.sh
# calls it for the end-to-end suite.
set -euo pipefail

# Pinned so a new release cannot change what CI tests. kafka-python
# 3.x reads snappy through python-snappy (which needs cramjam), lz4 through
# lz4.frame and zstd through zstandard; without them it cannot produce or
# read those codecs. moto's `server` extra brings the HTTP server
# (flask, flask-cors) that `python3 -m moto.server` runs; moto itself
# brings boto3.
PY_PACKAGES=(
  pytest==9.2.0
  pytest-timeout==2.4.0
  confluent-kafka==2.16.1
  kafka-python==3.0.12
  python-snappy==0.7.3
  cramjam==2.14.0
  lz4==4.4.5
  zstandard==0.25.0
  'moto[server]==5.2.6'
)

python3 --version
missing=$(python3 - "${PY_PACKAGES[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        have = version(name.split("[")[0])
    except PackageNotFoundError:
        have = None
    if have != want:
        print(spec)
PY
)
if [ -n "$missing" ]; then
  mapfile -t specs <<<"$missing"
  pip_flags=(--quiet --disable-pip-version-check --no-input --root-user-action=ignore)
  # Debian's own python3 is "externally managed" (PEP 668); this is a
  # throwaway CI machine, so install into it anyway.
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" "${specs[@]}" </dev/null
fi
python3 -c 'import moto, moto.server; print(f"moto {moto.__version__}")'
