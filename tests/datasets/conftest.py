from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Iterator[str]:
    """Runs a test on the local backend and on S3 (moto's server, a fresh bucket each time);
    ``s3_settings_env`` restores the local settings afterwards."""
    from app.storage.factory import get_storage
    from app.storage.local import LocalStorage
    from app.storage.s3 import S3Storage

    if request.param == "s3":
        request.getfixturevalue("s3_settings_env")
    expected = S3Storage if request.param == "s3" else LocalStorage
    assert isinstance(get_storage(), expected)
    yield request.param
