#!/usr/bin/env python3
"""Prints the BENCHMARKS.md tables from the JSON reports that
bench/scripts/run_benchmarks.sh leaves in its output directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(out: Path, name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt_ms(v: float) -> str:
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


LOADS: dict[str, str] = {}


def read_loads(out: Path) -> None:
    """The 1-minute load average at the start of each run, from
    commands.txt (other work on the host shows up there)."""
    path = out / "commands.txt"
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        if line.startswith("== ") and "load " in line:
            name = line[3:].split(" ", 1)[0]
            LOADS[name] = line.split("load ", 1)[1].split(")", 1)[0]


def row(r: dict, disk_mb: float, name: str) -> str:
    verified = r.get("verified") or {}
    ok = "yes" if verified.get("ok") else ("n/a" if not verified else "NO")
    return (
        f"{r['throughput_records_s']:,.0f} | {r['throughput_mb_s']:.1f} | "
        f"{r['throughput_mb_s'] / disk_mb:.2f} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | "
        f"{fmt_ms(r['p999_ms'])} | {fmt_ms(r['max_ms'])} | {r['errors']} | {ok} | "
        f"{LOADS.get(name, '?')}"
    )


HEADER = (
    "| records/s | MB/s | ÷ disk | p50 ms | p99 ms | p99.9 ms | max ms | errors | verified | load |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|"
)


def main() -> None:
    out = Path(sys.argv[1])
    read_loads(out)
    d0, d1 = load(out, "disk-start"), load(out, "disk-end")
    disks = [d for d in (d0, d1) if d]
    disk_mb = min(d["write_mb_s"] for d in disks)
    fsync_p99 = max(d["fsync_p99_ms"] for d in disks)
    print("### Disk ceiling (`ringlog bench disk`)\n")
    print("| when | write MB/s | fsync p50 ms | fsync p99 ms | fsync max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, d in (("start", d0), ("end", d1)):
        if d:
            print(
                f"| {name} | {d['write_mb_s']:.0f} | {d['fsync_p50_ms']:.3f} | "
                f"{d['fsync_p99_ms']:.3f} | {d['fsync_max_ms']:.3f} |"
            )
    print(f"\nRatios below use the lower write figure, {disk_mb:.0f} MB/s.\n")

    print("### OpenMessaging-Benchmark-style workloads (1 KiB, acks=all)\n")
    print("| partitions | rate | shards " + HEADER.splitlines()[0] + "\n|---:|---|---:" + HEADER.splitlines()[1])
    for p in (1, 8, 100):
        for mode, label in (("rate", "50,000/s"), ("max", "max")):
            for s in (1, 2):
                r = load(out, f"omb-p{p}-{mode}-s{s}")
                if r:
                    print(f"| {p} | {label} | {s} | {row(r, disk_mb, f'omb-p{p}-{mode}-s{s}')} |")

    print("\n### The target command\n")
    print("| run | " + HEADER.splitlines()[0][2:] + "\n|---|" + HEADER.splitlines()[1][1:])
    for name in (
        "target-max-s2",
        "target-half-s2",
        "target-half-linger0-s2",
        "target-max-s2-io64",
        "target-half-s2-io64",
        "target-half-linger0-s2-io64",
    ):
        r = load(out, name)
        if r:
            print(f"| {name} | {row(r, disk_mb, name)} |")
    print(f"\n3 x fsync p99 = {3 * fsync_p99:.3f} ms\n")

    print("### Scaling (2 shards, max rate)\n")
    print("| partitions " + HEADER.splitlines()[0] + "\n|---:" + HEADER.splitlines()[1])
    for p in (1, 2, 8, 32, 100, 300, 1000):
        r = load(out, f"scale-partitions-{p}")
        if r:
            print(f"| {p} | {row(r, disk_mb, f'scale-partitions-{p}')} |")
    print("\n| record bytes " + HEADER.splitlines()[0] + "\n|---:" + HEADER.splitlines()[1])
    for b in (100, 1024, 4096, 16384, 65536):
        r = load(out, f"scale-bytes-{b}")
        if r:
            print(f"| {b} | {row(r, disk_mb, f'scale-bytes-{b}')} |")
    r = load(out, "scale-half-rate")
    if r:
        print("\nAt half the 8-partition maximum:\n")
        print("| rate | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {r['options']['rate']:,.0f}/s | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p90_ms'])} | "
            f"{fmt_ms(r['p99_ms'])} | {fmt_ms(r['p999_ms'])} | {fmt_ms(r['max_ms'])} |"
        )

    print("\n### Other workloads (2 shards)\n")
    print("| run | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in (
        "e2e-50k",
        "consume",
        "requests-metadata",
        "requests-offset-commit",
        "requests-offset-fetch",
        "requests-create-topics",
    ):
        r = load(out, name)
        if r:
            print(
                f"| {name} | {r['throughput_records_s']:,.0f} | {r['throughput_mb_s']:.1f} | "
                f"{fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {fmt_ms(r['p999_ms'])} | "
                f"{fmt_ms(r['max_ms'])} | {r['errors']} |"
            )


if __name__ == "__main__":
    main()
