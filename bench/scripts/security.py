#!/usr/bin/env python3
"""What security costs on the produce path: PLAINTEXT, SSL and SASL_SSL
(SCRAM-SHA-512) side by side, in one run on one host.

    bench/scripts/security.py [BINARY] [--duration 8s] [--warmup 2s] [--rounds 1]

Makes a CA and a server certificate for 127.0.0.1 with the openssl CLI in
a temporary directory, creates a SCRAM-SHA-512 user offline
(`ringlog user add --data-dir`) for the SASL_SSL broker, then for each
protocol starts a fresh `ringlog serve --shards 2` and runs
`ringlog bench produce --partitions 8 --message-bytes 1024 --acks all`
with the matching client flags (the password from a 0600 file, never
argv), and prints a table of throughput and latency percentiles.
Protocols alternate within each round so all see the same host load.
BINARY defaults to target/release/ringlog; data lives under
target/benchmarks-security/ and is deleted after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "benchmarks-security"
USER = "bench"
PASSWORD = "bench-password"
READY_TIMEOUT_S = 30.0
OPENSSL_TIMEOUT_S = 30.0
PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_SSL"]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=OPENSSL_TIMEOUT_S)


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            cwd=d)
    return d / "ca.pem", d / "server.pem", d / "server.key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the broker exited with {server.returncode}; see {OUT / 'server.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"the broker did not listen on {port} within {READY_TIMEOUT_S} s")


def flags(protocol: str, pki: tuple[Path, Path, Path], password_file: Path) -> tuple[list, list]:
    """The `serve` and `bench` flags of a protocol."""
    ca, cert, key = pki
    if protocol == "PLAINTEXT":
        return [], []
    serve = ["--security-protocol", protocol, "--tls-cert", str(cert), "--tls-key", str(key)]
    bench = ["--security-protocol", protocol, "--tls-ca", str(ca)]
    if protocol == "SASL_SSL":
        serve += ["--sasl-mechanisms", "SCRAM-SHA-512"]
        bench += ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", USER,
                  "--sasl-password-file", str(password_file)]
    return serve, bench


def run(binary: Path, protocol: str, name: str, pki, password_file: Path,
        args: argparse.Namespace) -> dict:
    data = OUT / "data"
    shutil.rmtree(data, ignore_errors=True)
    serve_flags, bench_flags = flags(protocol, pki, password_file)
    if protocol == "SASL_SSL":
        subprocess.run([str(binary), "user", "add", USER, "--mechanism", "SCRAM-SHA-512",
                        "--password-stdin", "--data-dir", str(data)],
                       input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    port = free_port()
    with open(OUT / "server.log", "a") as log:
        server = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
             "--shards", "2", *serve_flags], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, server)
        report = OUT / f"{name}.json"
        bench = subprocess.run(
            [str(binary), "bench", "produce", "--partitions", "8", "--message-bytes", "1024",
             "--acks", "all", "--duration", args.duration, "--warmup", args.warmup,
             "--bootstrap", f"127.0.0.1:{port}", "--quiet", "--json", str(report),
             *bench_flags], capture_output=True, text=True)
        (OUT / f"{name}.txt").write_text(bench.stdout + bench.stderr)
        if bench.returncode != 0:
            sys.exit(f"{name}: bench exited with {bench.returncode}:\n{bench.stderr}")
        return json.loads(report.read_text())
    finally:
        server.terminate()
        server.wait(timeout=READY_TIMEOUT_S)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", nargs="?", default=str(ROOT / "target/release/ringlog"))
    parser.add_argument("--duration", default="8s")
    parser.add_argument("--warmup", default="2s")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        sys.exit(f"{binary} does not exist: build it (cargo build --release -p ringlog-tools)")
    if shutil.which("openssl") is None:
        sys.exit("this script needs the openssl CLI")
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {p: [] for p in PROTOCOLS}
    with tempfile.TemporaryDirectory(prefix="ringlog-security-") as tmp:
        tmp = Path(tmp)
        pki = make_pki(tmp)
        password_file = tmp / "password"
        password_file.write_text(PASSWORD + "\n")
        os.chmod(password_file, 0o600)
        for round_ in range(1, args.rounds + 1):
            for protocol in PROTOCOLS:
                name = f"{protocol.lower()}-{round_}"
                results[protocol].append(run(binary, protocol, name, pki, password_file, args))
    base = results["PLAINTEXT"]
    print(f"produce, 8 partitions, 1 KiB records, acks=all, {args.duration} "
          f"(+{args.warmup} warm-up), {args.rounds} round(s), load {os.getloadavg()[0]:.2f}\n")
    print("| protocol | round | records/s | MB/s | vs PLAINTEXT | p50 ms | p99 ms | p99.9 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for protocol in PROTOCOLS:
        for i, r in enumerate(results[protocol]):
            ratio = r["throughput_mb_s"] / base[i]["throughput_mb_s"]
            print(f"| {protocol} | {i + 1} | {r['throughput_records_s']:,.0f} | "
                  f"{r['throughput_mb_s']:.1f} | {ratio:.2f} | {r['p50_ms']:.2f} | "
                  f"{r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['errors']} |")


if __name__ == "__main__":
    main()
