from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.secret_file import SECRET_FILE
from app.core.settings import Settings
from tests.processes import ROOT


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


def test_production_refuses_to_start_without_an_explicit_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="production mode needs an explicit ATELIER_SECRET"):
        Settings(mode="production", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="shorter than"):
        Settings(mode="production", data_dir=tmp_path, secret_key="short")
    assert not (tmp_path / SECRET_FILE).exists()  # production never falls back to a file
    assert Settings(mode="production", data_dir=tmp_path, secret_key="x" * 40).mode == "production"


def test_the_old_public_secret_is_refused_in_every_mode(tmp_path: Path) -> None:
    for mode in ("development", "production"):
        with pytest.raises(ValidationError, match="old public development value"):
            Settings(mode=mode, data_dir=tmp_path, secret_key="dev-insecure-secret-key-change-me")


def test_development_secret_is_random_private_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "a")
    path = tmp_path / "a" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32 and first.secret_key == path.read_text().strip()
    assert Settings(data_dir=tmp_path / "a").secret_key == first.secret_key  # a restart
    assert Settings(data_dir=tmp_path / "b").secret_key != first.secret_key  # another install
    assert Settings(data_dir=tmp_path / "a", secret_key="y" * 40).secret_key == "y" * 40


def test_loosened_secret_file_is_made_private_again(tmp_path: Path) -> None:
    secret = Settings(data_dir=tmp_path).secret_key
    (tmp_path / SECRET_FILE).chmod(0o644)
    assert Settings(data_dir=tmp_path).secret_key == secret
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600


def test_processes_starting_together_agree_on_the_secret(tmp_path: Path) -> None:
    # Real processes racing to create the file: every one must read the same secret.
    code = ("import sys; from app.core.settings import Settings; "
            "print(Settings(data_dir=sys.argv[1]).secret_key)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env["PYTHONPATH"] = str(ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "d")], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    secrets = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert [p.name for p in (tmp_path / "d").iterdir()] == [SECRET_FILE]  # no temp files left


def test_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATELIER_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("ATELIER_DATA_DIR", str(tmp_path))
    assert Settings().storage_url == "s3://bucket/prefix"
