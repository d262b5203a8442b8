"""A `ringlog serve` process under test: start, await readiness, stop,
kill, read its log, and scrape its Prometheus metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parents[3]
# Data directories must be on a real disk: /tmp may be tmpfs, which the
# server refuses.
E2E_ROOT = REPO / "target" / "e2e"

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

T = TypeVar("T")


def ringlog_bin() -> Path:
    return Path(os.environ.get("RINGLOG_BIN", REPO / "target" / "release" / "ringlog"))


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Polls ``predicate`` until it returns a truthy value (returned) or
    ``timeout`` seconds pass (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A port nothing listens on right now (bind port 0, then release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def filesystem_type(path: Path) -> str:
    out = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


SAMPLE_LINE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?\s*$"
)
LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape of /metrics (Prometheus or OpenMetrics text)."""

    def __init__(self, text: str):
        self.text = text
        self.samples: list[Sample] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue  # HELP, TYPE, UNIT, EOF
            m = SAMPLE_LINE.match(line)
            if not m:
                continue
            labels = {
                lm["key"]: lm["value"].replace('\\"', '"').replace("\\\\", "\\")
                for lm in LABEL.finditer(m["labels"] or "")
            }
            self.samples.append(Sample(m["name"], labels, float(m["value"])))

    def find(self, name: str, **labels: str) -> list[Sample]:
        """Samples named ``name`` whose labels include ``labels`` (extra
        labels are fine)."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == str(v) for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """Sum over the matching samples; fails if there is none."""
        found = self.find(name, **labels)
        assert found, f"metric {name}{labels} not exported; /metrics was:\n{self.text[:4000]}"
        return sum(s.value for s in found)

    def per_shard(self, name: str, shards: int) -> list[float]:
        return [self.value(name, shard=str(shard)) for shard in range(shards)]


# ---------------------------------------------------------------- server


class ServerExited(AssertionError):
    pass


class RinglogServer:
    """One `ringlog serve` process, restartable on the same data dir.

    Every start picks fresh ports (the old ones may linger in TIME_WAIT)
    and appends to the same log file, with a marker line per start.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        shards: int = 2,
        extra_args: tuple[str, ...] = (),
    ):
        self.data_dir = data_dir
        self.log_path = log_path
        self.shards = shards
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.kafka_port = 0
        self.http_port = 0
        self.starts = 0
        # Extra environment of the next starts (a crash point, say).
        self.extra_env: dict[str, str] = {}

    # -- addresses

    @property
    def kafka_addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.kafka_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/metrics"

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            str(ringlog_bin()),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.kafka_port}",
            "--shards",
            str(self.shards),
            "--http",
            f"127.0.0.1:{self.http_port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = READY_TIMEOUT_S, keep_ports: bool = False) -> "RinglogServer":
        """Starts the server on fresh ports, or (``keep_ports``) on the
        ports of the previous start, so connected clients reconnect to it
        (the listener sets SO_REUSEPORT, so old connections in TIME_WAIT do
        not block the bind)."""
        assert not self.running, "server already running"
        binary = ringlog_bin()
        assert binary.is_file(), f"no ringlog binary at {binary} (set RINGLOG_BIN)"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if keep_ports:
            assert self.kafka_port, "keep_ports needs an earlier start"
            assert self._spawn_and_await(timeout, retry_on_port_clash=False)
            return self
        for attempt in range(3):
            self.kafka_port, self.http_port = free_port(), free_port()
            if self._spawn_and_await(timeout, retry_on_port_clash=attempt < 2):
                return self
        raise AssertionError("unreachable")

    def _spawn_and_await(self, timeout: float, retry_on_port_clash: bool) -> bool:
        self.starts += 1
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        cmd = self.command()
        env = dict(os.environ)
        env.setdefault("RINGLOG_LOG", "info")
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== e2e start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                since_start = self.log_text()[log_offset:]
                if retry_on_port_clash and "in use" in since_start.lower():
                    return False  # a port was taken between free_port() and bind
                raise ServerExited(
                    f"ringlog serve exited with {code} before accepting connections:\n"
                    f"{self.log_tail()}"
                )
            try:
                socket.create_connection(self.kafka_addr, timeout=0.5).close()
                return True
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"ringlog serve did not accept connections on {self.bootstrap} within "
                    f"{timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_S, expect_code: int | None = 0) -> int:
        """SIGTERM, wait for exit, check the exit code."""
        assert self.proc is not None, "server never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"ringlog serve did not exit within {timeout} s of SIGTERM:\n{self.log_tail()}"
            ) from None
        if expect_code is not None:
            assert code == expect_code, (
                f"ringlog serve exited with {code} after SIGTERM, expected {expect_code}:\n"
                f"{self.log_tail()}"
            )
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)

    def pause(self) -> None:
        """SIGSTOP: the process stops answering, its sockets stay open
        (the kernel still accepts connections and buffers bytes)."""
        assert self.proc is not None and self.running
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self, keep_ports: bool = False) -> "RinglogServer":
        if self.running:
            self.stop()
        return self.start(keep_ports=keep_ports)

    # -- log

    def log_text(self) -> str:
        try:
            raw = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return strip_ansi(raw.decode("utf-8", "replace"))

    def log_tail(self, lines: int = 80) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path}\n" + "\n".join(tail)

    def log_lines(self, *needles: str) -> list[str]:
        """Log lines containing every one of ``needles``."""
        return [line for line in self.log_text().splitlines() if all(n in line for n in needles)]

    # -- metrics

    def metrics(self, timeout: float = 10.0) -> Metrics:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
                    assert resp.status == 200, f"GET /metrics: HTTP {resp.status}"
                    return Metrics(resp.read().decode())
            except (urllib.error.URLError, ConnectionError) as e:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"GET {self.metrics_url} failed: {e}") from e
                time.sleep(0.1)

    def produce_records_per_shard(self) -> list[float]:
        return self.metrics().per_shard("ringlog_produce_records_total", self.shards)
