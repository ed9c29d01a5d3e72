"""Fixtures for the integrations tests: a loopback webhook receiver and a real Celery worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.processes import celery_worker

# Short backoff and few attempts so retries finish in well under a second.
WORKER_ENV = {
    "ATELIER_WEBHOOK_BACKOFF_BASE_S": "0.2",
    "ATELIER_WEBHOOK_BACKOFF_CAP_S": "1",
    "ATELIER_WEBHOOK_MAX_ATTEMPTS": "3",
    "ATELIER_WEBHOOK_TIMEOUT_S": "5",
    "ATELIER_EGRESS_ALLOW": "127.0.0.1/32",  # the loopback receivers below (egress guard)
}


@pytest.fixture(autouse=True)
def _egress_allows_loopback() -> Iterator[None]:
    """The receivers here listen on 127.0.0.1, which the egress guard refuses by default."""
    from app.core.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATELIER_EGRESS_ALLOW", WORKER_ENV["ATELIER_EGRESS_ALLOW"])
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers ``/fail/<n>/...`` with 500 for the first n requests to that path, then 200."""

    base_url: str
    requests: list[Received] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status_for(self, path: str) -> int:
        with self.lock:
            self.seen[path] = n = self.seen.get(path, 0) + 1
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "fail" and n <= int(parts[1]):
            return 500
        return 200

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = state.status_for(self.path)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"no")

        def log_message(self, *_: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def webhook_worker(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[None]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker({**service_env, **WORKER_ENV}, queues="default", log_path=log):
        yield


def wait_for(check: Callable[[], Any], *, timeout_s: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")

