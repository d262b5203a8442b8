"""Fixtures for the end-to-end suite: a `ringlog serve --shards 2` per test
(or per module), its data under target/e2e/, its stderr in a log file whose
tail is attached to every failing test's report.

Run with ``RINGLOG_BIN=target/release/ringlog python3 -m pytest tools/tests/e2e``.
"""

from __future__ import annotations

import re
import resource
import shutil
import uuid
from pathlib import Path

import pytest

from ringlog_server import E2E_ROOT, RinglogServer, filesystem_type

# Servers currently running for the test in progress (function- or
# module-scoped); their log tails go into a failing test's report.
LIVE_SERVERS: list[RinglogServer] = []


def pytest_configure(config):
    # glommio locks memory for its io_uring rings; the server inherits our
    # limits, so raise the soft memlock limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
        except (ValueError, OSError):
            pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed:
        for server in LIVE_SERVERS:
            report.sections.append((f"ringlog server log ({server.log_path})", server.log_tail()))


def _unique_dir(name: str) -> Path:
    E2E_ROOT.mkdir(parents=True, exist_ok=True)
    fs = filesystem_type(E2E_ROOT)
    assert fs != "tmpfs", f"{E2E_ROOT} is on tmpfs; ringlog needs a real disk"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
    path = E2E_ROOT / f"{safe}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


class ServerFactory:
    """Creates servers in one test directory and stops them (SIGTERM,
    exit code 0 asserted) at teardown."""

    def __init__(self, root: Path):
        self.root = root
        self.servers: list[RinglogServer] = []

    def __call__(self, *extra_args: str, name: str = "server", start: bool = True) -> RinglogServer:
        server = RinglogServer(
            self.root / f"{name}-data", self.root / f"{name}.log", extra_args=extra_args
        )
        self.servers.append(server)
        LIVE_SERVERS.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        errors = []
        for server in self.servers:
            try:
                if server.running:
                    server.stop()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                if server in LIVE_SERVERS:
                    LIVE_SERVERS.remove(server)
        assert not errors, "\n\n".join(errors)


def _cleanup(root: Path, passed: bool) -> None:
    # Keep everything of a failed test for inspection.
    if passed:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_factory(request):
    factory = ServerFactory(_unique_dir(request.node.name))
    yield factory
    factory.stop_all()
    _cleanup(
        factory.root,
        getattr(request.node, "rep_call", None) is not None and request.node.rep_call.passed,
    )


@pytest.fixture
def server(server_factory) -> RinglogServer:
    """A fresh `ringlog serve --shards 2` with its own data dir."""
    return server_factory()


@pytest.fixture(scope="module")
def module_server(request):
    """One server shared by every test of a module (tests that must see it
    survive a series of abuses)."""
    factory = ServerFactory(_unique_dir(request.module.__name__))
    server = factory()
    yield server
    factory.stop_all()
    failed = any(
        getattr(item, "rep_call", None) is not None and item.rep_call.failed
        for item in request.session.items
        if item.module is request.module
    )
    _cleanup(factory.root, not failed)
