"""An S3-compatible server for tests of the S3 archive target: moto
(`python3 -m moto.server`, from the pinned `moto[server]` that
ci/python_deps.sh installs) on 127.0.0.1, with a bucket made through
boto3. It can be stopped mid-run and started again on the same port (moto
keeps everything in memory, so `start` makes the bucket again).

    with MotoServer(bucket="archive") as s3:
        env = s3.env()                  # AWS_* variables for `ringlog serve`
        serve(..., "--archive", f"s3://{s3.bucket}/prefix",
              "--s3-endpoint", s3.endpoint)
        s3.stop(); ...; s3.start()      # the store goes down and comes back
        s3.keys("prefix/")              # what is in the bucket
"""

from __future__ import annotations

import os
import subprocess
import sys

from ringlog_server import E2E_ROOT, free_port, wait_until

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# moto checks no signature; any credentials do, but some must be set so
# that neither boto3 nor ringlog looks further (instance metadata).
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"


class MotoServer:
    """One moto server on 127.0.0.1 and one bucket in it."""

    def __init__(self, bucket: str = "ringlog-archive", port: int | None = None) -> None:
        self.bucket = bucket
        self.port = port if port is not None else free_port()
        self.log_path = E2E_ROOT / f"moto-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables ringlog (and boto3) read for this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3  # moto depends on boto3; imported here so the module loads without it

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=REGION,
        )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Starts moto on this server's port, waits until it answers, and
        creates the bucket."""
        assert not self.running(), "moto is already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env()},
            )
        client = self.client()

        def answers() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"moto exited with {self._process.returncode}: {self.log()}")
            try:
                client.list_buckets()
                return True
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_until(answers, START_TIMEOUT_S, f"moto on port {self.port}", interval=0.1)
        client.create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        """Stops moto (SIGTERM, then SIGKILL); the bucket's contents are gone."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix``: key -> size."""
        found: dict[str, int] = {}
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "MotoServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main() -> None:
    """Self-check: start, put and list an object, stop, start again on the
    same port (empty), stop."""
    with MotoServer(bucket="self-check") as s3:
        s3.client().put_object(Bucket=s3.bucket, Key="p/k", Body=b"x" * 10)
        assert s3.keys("p/") == {"p/k": 10}, s3.keys()
        port = s3.port
        s3.stop()
        assert not s3.running()
        s3.start()
        assert s3.port == port and s3.keys() == {}, s3.keys()
    assert not s3.running()
    print(f"moto_server: started, stopped and restarted moto on port {port}; log {s3.log_path}")


if __name__ == "__main__":
    _main()
