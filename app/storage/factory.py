"""Build the configured storage backend from settings, once per process."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends

from app.core.settings import Settings, get_settings
from app.storage.base import Storage
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage


def storage_from_settings(settings: Settings) -> Storage:
    """``file:///path`` -> LocalStorage; ``s3://bucket[/prefix]`` -> S3Storage."""
    url = settings.storage_url
    if url.startswith("file://"):
        # Same parsing as Settings.ensure_dirs, so both agree on the directory.
        path = url.removeprefix("file://")
        if not path:
            raise ValueError(f"storage URL {url!r} has no path")
        return LocalStorage(Path(path), base_url=settings.base_url, secret_key=settings.secret_key)
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} has no bucket (expected s3://bucket[/prefix])")
        return S3Storage(
            parts.netloc,
            parts.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            path_style=settings.s3_path_style,
        )
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket[/prefix]")


@lru_cache(maxsize=1)
def _cached_storage(pid: int) -> Storage:
    return storage_from_settings(get_settings())


def get_storage() -> Storage:
    """The process-wide storage (worker, CLI and health checks; routes take ``STORAGE``).
    Tests call ``reset_storage_cache`` after changing settings."""
    # Keyed by pid: a Celery prefork child must not reuse the parent's boto3 connection pool.
    return _cached_storage(os.getpid())


async def storage_dependency() -> Storage:
    """The routes' storage. async: FastAPI runs a plain-function dependency on the thread pool,
    a trip per request that this lookup does not need. Tests override it with
    ``app.dependency_overrides[storage_dependency]``."""
    return get_storage()


# Every route takes its storage as `storage: Storage = STORAGE`.
STORAGE = Depends(storage_dependency)


def reset_storage_cache() -> None:
    _cached_storage.cache_clear()
