"""A real `atelier serve` process on PostgreSQL or SQLite, hammered by threads.

The limits tests need the requests to really overlap inside a server (its thread pool, its
database connections), so they talk HTTP to a child process. Tenants and assertions use a
private engine on the server's database, never the test process's global settings, so the
SQLite server's world and the shared PostgreSQL one do not mix.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import create_engine, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.conftest import Tenant
from tests.processes import ROOT, child_env, free_port, stop, wait_http


@dataclass
class Server:
    url: str
    env: dict[str, str]
    engine: Engine
    storage_dir: Path
    tenants: list[Tenant] = field(default_factory=list)

    def session(self) -> Session:
        return Session(self.engine)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def tenant(self, **limits: Any) -> Tenant:
        """A new org with an owner and an all-scopes API key; ``limits`` set org columns."""
        from app.cli.seed import create_org_with_admin
        from app.identity import service
        from app.identity.security import ALL_SCOPES
        from app.models import Organization

        suffix = secrets.token_hex(4)
        email, password = f"owner-{suffix}@example.com", f"pw-{suffix}-secret"
        with self.session() as db:
            seeded = create_org_with_admin(db, f"Org {suffix}", email, password)
            key_row, key = service.create_api_key(db, seeded.org.id, "test", list(ALL_SCOPES))
            if limits:
                db.execute(update(Organization).where(Organization.id == seeded.org.id)
                           .values(**limits))
            db.commit()
            return Tenant(seeded.org.id, seeded.org.slug, email, password, key, key_row.id)

    def base_model(self) -> str:
        """A base model row jobs can name (no worker runs in these tests)."""
        from app.cli.seed import register_base_model

        key = f"limits-sd15-{secrets.token_hex(3)}"
        with self.session() as db:
            register_base_model(db, key, "/nonexistent", "sd15")
            db.commit()
        return key


@contextmanager
def serve(env: dict[str, str], log_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "app.cli.main", "serve", "--host", "127.0.0.1",
            "--port", str(port)]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=child_env({**env, "ATELIER_BASE_URL": url}),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"{url}/healthz", timeout_s=90)
            yield url
        finally:
            stop(proc)


def _sqlite_env(data_dir: Path) -> dict[str, str]:
    env = {"ATELIER_DATA_DIR": str(data_dir), "ATELIER_DATABASE_URL": "",
           "ATELIER_BROKER_URL": "", "ATELIER_REDIS_URL": "", "ATELIER_STORAGE_URL": ""}
    return env


@pytest.fixture(name="server", scope="module", params=["postgresql", "sqlite"])
def server_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """One server per database for the module's tests."""
    from app.core.migrate import upgrade

    base = tmp_path_factory.mktemp(f"limits-{request.param}")
    if request.param == "postgresql":
        env = dict(request.getfixturevalue("service_env"))
        db_url = env["ATELIER_DATABASE_URL"]
        storage_dir = Path(env["ATELIER_STORAGE_URL"].removeprefix("file://"))
    else:
        env = _sqlite_env(base / "data")
        (base / "data").mkdir()
        db_url = f"sqlite:///{base / 'data' / 'atelier.db'}"
        storage_dir = base / "data" / "storage"
        upgrade(db_url)
    env = {**env, "ATELIER_RATE_LIMIT_PER_KEY": "off", "ATELIER_RATE_LIMIT_PER_ORG": "off"}
    engine = create_engine(db_url)
    with serve({**os.environ, **env} if request.param == "sqlite" else env,
               base / "server.log") as url:
        yield Server(url, env, engine, storage_dir)
    engine.dispose()


def png(size: int = 184) -> bytes:
    """Random noise (PNG cannot compress it): about ``size * size * 3`` bytes, a new sha256."""
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(out, "PNG")
    return out.getvalue()


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # reported, not swallowed: the test asserts on results
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results
