"""A real S3 endpoint for tests: moto's server as a subprocess speaking HTTP.

Register with ``pytest_plugins = ["tests.fixtures_s3"]`` (or import the fixtures). Fixtures:

- ``s3_server`` (session): endpoint URL of a running moto server.
- ``s3_bucket``: a fresh, created bucket name per test.
- ``s3_storage``: an ``S3Storage`` on that bucket.
- ``s3_settings_env``: ``ATELIER_*`` env vars pointing the service at that bucket, with the
  settings and storage caches reset before and after.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.storage.s3 import S3Storage

S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server at {url} not ready after {timeout_s}s")


# ``python -m moto.server`` that first asks Linux to SIGTERM it when pytest dies, so a killed
# or timed-out test run does not leave orphan servers behind.
_LAUNCH = """
import ctypes, runpy, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
sys.argv[0] = "moto.server"
runpy.run_module("moto.server", run_name="__main__", alter_sys=True)
"""


class _MotoServer:
    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": S3_REGION,
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(self.url, self._proc)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# Test modules may import ``s3_server`` as well as get it from the plugin; each import is its
# own session fixture to pytest, so they share one process through this reference count.
_shared: dict[str, Any] = {"server": None, "users": 0}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    if _shared["server"] is None:
        _shared["server"] = _MotoServer()
    _shared["users"] += 1
    try:
        yield _shared["server"].url
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared["server"].stop()
            _shared["server"] = None


def make_s3_storage(
    endpoint_url: str, bucket: str, prefix: str = "", *, create: bool = True, **kwargs: object
) -> S3Storage:
    """An S3Storage on the moto server (path-style, as moto needs), bucket created."""
    storage = S3Storage(
        bucket,
        prefix,
        endpoint_url=endpoint_url,
        region=S3_REGION,
        access_key_id=S3_ACCESS_KEY,
        secret_access_key=S3_SECRET_KEY,
        path_style=True,
        **kwargs,  # type: ignore[arg-type]
    )
    if create:
        storage.ensure_bucket()
    return storage


def unique_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    bucket = unique_bucket_name()
    make_s3_storage(s3_server, bucket)
    return bucket


@pytest.fixture
def s3_storage(s3_server: str, s3_bucket: str) -> S3Storage:
    return make_s3_storage(s3_server, s3_bucket, create=False)


@pytest.fixture
def s3_settings_env(
    s3_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    from app.core.settings import get_settings
    from app.storage.factory import reset_storage_cache

    env = {
        "ATELIER_STORAGE_URL": f"s3://{s3_bucket}/atelier",
        "ATELIER_S3_ENDPOINT_URL": s3_server,
        "ATELIER_S3_PUBLIC_ENDPOINT_URL": s3_server,
        "ATELIER_S3_REGION": S3_REGION,
        "ATELIER_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "ATELIER_S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "ATELIER_S3_PATH_STYLE": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_storage_cache()
    yield env
    get_settings.cache_clear()
    reset_storage_cache()
