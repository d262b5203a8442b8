#!/usr/bin/env python3
"""A default-sized segment archived with its search index (issue 14).

    python3 bench/scripts/search_large_segment.py [RINGLOG_BINARY] [--records N]

One `ringlog serve --shards 2` with its defaults (search on, archives in
the local directory, `segment.bytes` 1 GiB, local.retention.ms 0).
`ringlog bench produce` writes N (default 1,150,000) records of 1 KiB to
a new topic of one partition, so its first segment fills to 1 GiB and
seals. Then: the time from the end of produce until that segment's
archive exists with its search index member, the member's size, the
broker's peak RSS (VmHWM) over the run, and the first search that finds
an offset of the segment through the archive once it left the local
disk. Data lives under target/benchmarks-search-large/ and is removed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "scripts"))

import tiered  # noqa: E402  (its Broker, with OUT moved below)

OUT = REPO / "target" / "benchmarks-search-large"
tiered.OUT = OUT
TIMEOUT_S = 1800.0
MEMBER = re.compile(r"\s*(\d+)\s+member search index: (\d+) bytes")


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def index_member_bytes(binary: str, archive: Path) -> int | None:
    shown = subprocess.run([binary, "inspect", "archive", str(archive)], capture_output=True,
                           text=True, check=True).stdout
    for line in shown.splitlines():
        if m := MEMBER.match(line):
            return int(m[2])
    return None


def search(broker: tiered.Broker, q: str) -> dict:
    query = urllib.parse.urlencode({"topic": "big", "q": q})
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http}/search?{query}", timeout=60) as r:
        return json.loads(r.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default=str(REPO / "target" / "release" / "ringlog"))
    parser.add_argument("--records", type=int, default=1_150_000)
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    broker = tiered.Broker(args.binary, "large").start()
    try:
        subprocess.run(
            [args.binary, "bench", "produce", "--bootstrap", broker.bootstrap, "--topic", "big",
             "--partitions", "1", "--records", str(args.records), "--quiet"],
            check=True, stdout=subprocess.DEVNULL,
        )
        produced = time.monotonic()
        archives = broker.data / "archive"
        while True:
            assert time.monotonic() - produced < TIMEOUT_S, "no archive"
            found = sorted(p for p in archives.glob("topics/*/*/*.rla"))
            if found:
                break
            time.sleep(0.5)
        archived_s = time.monotonic() - produced
        [archive] = found
        member = index_member_bytes(args.binary, archive)
        print(f"archive {archive.name}: {archive.stat().st_size / 1e6:.0f} MB, written "
              f"{archived_s:.1f} s after produce ended; search index member "
              f"{'none' if member is None else f'{member / 1e6:.0f} MB'}", flush=True)
        if member is None:
            return
        last = int(archive.name.split("-")[1].split(".")[0])
        while True:
            answer = search(broker, f"offset:{last // 2}")
            if answer["archives_searched"] >= 1 and answer["hits"]:
                break
            assert time.monotonic() - produced < TIMEOUT_S, f"never searched: {answer}"
            time.sleep(0.5)
        print(f"offset {last // 2} found through the archive ({answer['archives_searched']} "
              f"searched, {answer['took_ms']} ms, unindexed {answer['unindexed']}); "
              f"broker peak RSS {vm_hwm_mb(broker.proc.pid):.0f} MB", flush=True)
    finally:
        broker.stop()
        shutil.rmtree(OUT, ignore_errors=True)


if __name__ == "__main__":
    main()
