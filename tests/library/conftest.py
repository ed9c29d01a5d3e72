"""Fixtures for finalize and the model library, on both storage backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.storage.base import Storage


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Iterator[str]:
    """Runs the test once with local-directory storage and once with S3 (moto over HTTP)."""
    if request.param == "s3":
        request.getfixturevalue("s3_settings_env")
    yield request.param


@pytest.fixture()
def storage(backend: str) -> Storage:
    from app.storage.factory import get_storage

    return get_storage()


@pytest.fixture()
def cleanups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Runs the after-commit cleanup in-process instead of sending it to a broker, and records
    which jobs it was scheduled for."""
    from app.library import cleanup

    calls: list[tuple[str, str]] = []

    def run_now(org_id: str, job_id: str) -> None:
        calls.append((org_id, job_id))
        cleanup.run_cleanup(org_id, job_id)

    monkeypatch.setattr(cleanup, "send_cleanup", run_now)
    return calls


@pytest.fixture()
def api(backend: str, cleanups: list[tuple[str, str]]) -> Iterator[TestClient]:
    """A client of the app on the selected backend, with synchronous cleanup."""
    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c
