"""A real ``atelier serve`` (uvicorn, one process) on SQLite or PostgreSQL, with tenants seeded
straight into its database: the concurrency tests talk to it over real HTTP from threads."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.processes import ROOT, free_port, stop, wait_http

ATELIER = str(Path(sys.executable).parent / "atelier")
READ_SCOPES = ["datasets:read", "jobs:read", "models:read"]


@dataclass
class Org:
    org_id: str
    email: str
    password: str
    keys: list[str] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)

    def auth(self, i: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[i]}"}


@dataclass
class Live:
    base: str
    url: str  # database URL
    env: dict[str, str]
    engine: Engine
    log: Path

    @property
    def is_pg(self) -> bool:
        return self.url.startswith("postgresql")

    def org(self, keys: int = 1, read_keys: int = 0) -> Org:
        """An org with an owner (who can sign in), ``keys`` full and ``read_keys`` read-only
        API keys."""
        from app.cli.seed import create_org_with_admin
        from app.identity import service
        from app.identity.authorization import ALL_SCOPES

        suffix = secrets.token_hex(4)
        email, password = f"owner-{suffix}@example.com", f"pw-{suffix}-Secret-9"
        with Session(self.engine) as db:
            seeded = create_org_with_admin(db, f"Org {suffix}", email, password)
            org = Org(seeded.org.id, email, password)
            scopes = [s for s in ALL_SCOPES if s != "admin"]
            for i in range(keys + read_keys):
                row, raw = service.create_api_key(db, org.org_id, f"k{i}",
                                                  scopes if i < keys else READ_SCOPES)
                org.keys.append(raw)
                org.key_ids.append(row.id)
            db.commit()
        return org

    def queued_job(self, org: Org) -> str:
        """A job row that stays queued (no worker here): its event stream stays open."""
        from app.models import TrainingJob

        with Session(self.engine) as db:
            job = TrainingJob(org_id=org.org_id, name="stream me", type="lora",
                              architecture="sd15", base_model="none", config={},
                              dataset_snapshot=[], status="queued")
            db.add(job)
            db.commit()
            return job.id

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        with self.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'atelier.db'}"


@contextmanager
def live_server(data_dir: Path, database_url: str, redis_url: str | None = None,
                **settings: str) -> Iterator[Live]:
    """Migrate ``database_url``, start ``atelier serve`` on it, yield, stop."""
    from app.core.db import make_engine
    from app.core.migrate import upgrade

    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data_dir), ATELIER_DATABASE_URL=database_url,
               ATELIER_STORAGE_URL=f"file://{data_dir / 'storage'}",
               ATELIER_BASE_URL=f"http://127.0.0.1:{port}", PYTHONPATH=str(ROOT))
    if redis_url:
        env.update(ATELIER_REDIS_URL=redis_url, ATELIER_BROKER_URL=redis_url)
    env.update({f"ATELIER_{k.upper()}": v for k, v in settings.items()})
    log = data_dir / "serve.log"
    engine = make_engine(database_url, pool_size=2, max_overflow=2) if "postgresql" in \
        database_url else make_engine(database_url)
    with log.open("wb") as out:
        proc = subprocess.Popen([ATELIER, "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", timeout_s=90)
            yield Live(base, database_url, env, engine, log)
        finally:
            stop(proc)
            engine.dispose()


# --- event streams held open from the test process -------------------------------------------

@dataclass
class Stream:
    client: httpx.Client
    response: httpx.Response
    # Kept, not dropped: a collected line iterator would close the connection under us.
    lines: Iterator[str] | None = None

    def close(self) -> None:
        self.response.close()
        self.client.close()


def open_stream(base: str, job_id: str, headers: dict[str, str],
                timeout_s: float = 60) -> Stream:
    """Open a job's event stream and read it up to its first ``status`` event (the stream has
    authenticated, read the database once and is now waiting); the caller closes it."""
    client = httpx.Client(base_url=base, timeout=timeout_s)
    response = client.send(client.build_request("GET", f"/v1/jobs/{job_id}/events",
                                                headers=headers), stream=True)
    stream = Stream(client, response, response.iter_lines())
    if response.status_code == 200:
        assert stream.lines is not None
        for line in stream.lines:
            if line.startswith("event: status"):
                break
    return stream


def open_streams(base: str, job_id: str, headers: list[dict[str, str]],
                 timeout_s: float = 60) -> list[Stream]:
    """One stream per entry of ``headers``, all opened at once from threads."""
    with ThreadPoolExecutor(max_workers=min(len(headers), 64)) as pool:
        return list(pool.map(lambda h: open_stream(base, job_id, h, timeout_s), headers))


def close_all(streams: list[Stream]) -> None:
    for s in streams:
        s.close()
