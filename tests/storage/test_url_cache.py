"""Download URLs are reused for a twelfth of their lifetime, never longer, never across keys."""

from __future__ import annotations

import itertools

import pytest

from app.storage import url_cache
from app.storage.url_cache import SignedUrlCache


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(url_cache.time, "time", lambda: now[0])
    return now


def _signer():  # type: ignore[no-untyped-def]
    counter = itertools.count()
    return lambda: f"url-{next(counter)}"


def test_reused_within_a_twelfth_of_the_expiry_then_signed_again(clock: list[float]) -> None:
    cache, sign = SignedUrlCache(), _signer()
    start = clock[0] - clock[0] % 300  # the 1-hour URLs' 5-minute windows
    clock[0] = start
    first = cache.get("orgs/a/x.png", None, 3600, sign)
    clock[0] = start + 299
    assert cache.get("orgs/a/x.png", None, 3600, sign) == first
    clock[0] = start + 300  # a new window: the old URL has less than 55 minutes left
    assert cache.get("orgs/a/x.png", None, 3600, sign) != first


def test_keys_filenames_and_lifetimes_never_share_a_url(clock: list[float]) -> None:
    cache, sign = SignedUrlCache(), _signer()
    urls = {cache.get("orgs/a/x.png", None, 3600, sign),
            cache.get("orgs/b/x.png", None, 3600, sign),
            cache.get("orgs/a/x.png", "x.png", 3600, sign),
            cache.get("orgs/a/x.png", None, 7200, sign)}
    assert len(urls) == 4


def test_short_lived_urls_are_always_new(clock: list[float]) -> None:
    cache, sign = SignedUrlCache(), _signer()
    assert cache.get("orgs/a/x.png", None, 60, sign) != cache.get("orgs/a/x.png", None, 60, sign)


def test_local_storage_hands_the_same_valid_url_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.storage.local import LocalStorage

    storage = LocalStorage(tmp_path, base_url="http://127.0.0.1:1", secret_key="k" * 32)
    url = storage.presign_get("orgs/o/a.png", 3600)
    assert storage.presign_get("orgs/o/a.png", 3600) == url
    grant = storage.verify_token(url.rsplit("/", 1)[-1], "get")
    assert grant.key == "orgs/o/a.png"
