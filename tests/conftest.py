"""Shared fixtures: a real PostgreSQL database per test session, real Redis, local storage.

Each test creates its own organizations, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

pytest_plugins = ["tests.fixtures_s3", "tests.fixtures_browser"]

PG_ADMIN_URL = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/0")
BROKER_DB = os.environ.get("ATELIER_TEST_BROKER_DB", "9")


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{dbname}"


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[object]:
    """Creates throw-away PostgreSQL databases; drops them at the end of the session."""
    created: list[str] = []

    def make() -> str:
        name = f"atelier_t_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _pg_url(name)

    yield make
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(env: dict[str, str]) -> None:
    """Point the whole app (settings, engine, storage, celery) at a new environment."""
    from app.core.db import reset_db_caches
    from app.core.settings import get_settings
    from app.storage.factory import reset_storage_cache

    for key, value in env.items():
        os.environ[key] = value
    get_settings.cache_clear()
    reset_db_caches()
    reset_storage_cache()
    from worker.celery_app import celery_app, result_backend_for

    celery_app.conf.broker_url = get_settings().broker_url
    celery_app.conf.result_backend = result_backend_for(get_settings().broker_url)


@pytest.fixture(scope="session")
def service_env(make_pg_database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from app.core.migrate import upgrade

    data_dir = tmp_path_factory.mktemp("atelier-data")
    env = {
        "ATELIER_DATA_DIR": str(data_dir),
        "ATELIER_DATABASE_URL": make_pg_database(),
        # ATELIER_TEST_BROKER_DB keeps sessions that run workers at once off each other's queue.
        "ATELIER_BROKER_URL": REDIS_URL.rsplit("/", 1)[0] + f"/{BROKER_DB}",
        "ATELIER_REDIS_URL": REDIS_URL.rsplit("/", 1)[0] + f"/{BROKER_DB}",
        "ATELIER_STORAGE_URL": f"file://{data_dir / 'storage'}",
        "ATELIER_BASE_URL": "http://testserver",
    }
    configure(env)
    upgrade(env["ATELIER_DATABASE_URL"])
    return env


@pytest.fixture(scope="session")
def tiny_base_model(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    from app.cli.seed import build_tiny_base_model
    from app.core.db import session_scope

    key = f"tiny-sd15-{secrets.token_hex(3)}"
    with session_scope() as db:
        build_tiny_base_model(db, key, "sd15", tmp_path_factory.mktemp("base-models"))
    return key


@pytest.fixture()
def client(service_env: dict[str, str]) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c


@dataclass
class Tenant:
    org_id: str
    slug: str
    email: str
    password: str
    api_key: str
    api_key_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(scopes: list[str] | None = None) -> Tenant:
    from app.cli.seed import create_org_with_admin
    from app.core.db import session_scope
    from app.identity import service
    from app.identity.security import ALL_SCOPES

    suffix = secrets.token_hex(4)
    email, password = f"owner-{suffix}@example.com", f"pw-{suffix}-secret"
    with session_scope() as db:
        seeded = create_org_with_admin(db, f"Org {suffix}", email, password)
        key_row, key = service.create_api_key(db, seeded.org.id, "test",
                                              scopes if scopes is not None else list(ALL_SCOPES))
        return Tenant(seeded.org.id, seeded.org.slug, email, password, key, key_row.id)


@pytest.fixture()
def tenant(service_env: dict[str, str]) -> Tenant:
    return make_tenant()


@pytest.fixture()
def other_tenant(service_env: dict[str, str]) -> Tenant:
    return make_tenant()


def park_active_jobs() -> None:
    """Cancel every active job in the shared test database.

    Dispatch is global (fair across orgs, a few slots): jobs other tests left queued, or marked
    dispatched to a broker no worker reads, would hold the slots a test's own jobs need.
    """
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.models import CaptionJob, TrainingJob

    with session_scope() as db:
        for model in (TrainingJob, CaptionJob):  # one GPU queue for both kinds
            db.execute(update(model).where(model.status.in_(
                ("queued", "running", "cancelling"))).values(status="cancelled"))


@pytest.fixture()
def isolated_queue(service_env: dict[str, str]) -> Iterator[None]:
    park_active_jobs()
    yield
    park_active_jobs()


def add_user(tenant: Tenant, role: str) -> tuple[str, str]:
    """A user of the tenant's org with the given role; returns (email, password)."""
    from app.core.db import session_scope
    from app.identity import service
    from app.models import Organization

    suffix = secrets.token_hex(4)
    email, password = f"{role}-{suffix}@example.com", f"pw-{suffix}-secret"
    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None
        user = service.get_or_create_user(db, email, password)
        service.add_member(db, org, user, role)
    return email, password


def login(client: TestClient, email: str, password: str) -> str:
    """Signs the client in; returns the CSRF token to send on unsafe requests."""
    r = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


ROOT = Path(__file__).resolve().parents[1]
