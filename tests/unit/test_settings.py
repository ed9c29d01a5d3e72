from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other tests point the process at their databases through ATELIER_* variables.
    import os

    for key in [k for k in os.environ if k.startswith("ATELIER_")]:
        monkeypatch.delenv(key)


def test_embedded_defaults_derive_from_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'atelier.db'}"
    assert s.broker_url == f"sqla+sqlite:///{tmp_path.resolve() / 'broker.db'}"
    assert s.storage_url == f"file://{tmp_path.resolve() / 'storage'}"


def test_production_refuses_default_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ATELIER_SECRET_KEY"):
        Settings(mode="production", data_dir=tmp_path)
    assert Settings(mode="production", data_dir=tmp_path, secret_key="x" * 40).mode == "production"


def test_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATELIER_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("ATELIER_DATA_DIR", str(tmp_path))
    assert Settings().storage_url == "s3://bucket/prefix"
