"""The signature scheme and the retry schedule, without servers."""

from __future__ import annotations

import pytest

from app.core.settings import get_settings
from app.integrations import signing
from app.integrations.delivery import backoff


def test_signature_round_trip_and_replay_window() -> None:
    secret, body = signing.new_secret(), b'{"id":"e1"}'
    header = signing.sign(secret, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert signing.verify(secret, header, body, now=1_700_000_100)
    assert not signing.verify(secret, header, body, now=1_700_000_301)  # too old: a replay
    assert not signing.verify(secret, header, body + b"x", now=1_700_000_000)
    assert not signing.verify(secret, "garbage", body)
    assert not signing.verify(secret, "t=soon,v1=abc", body)


def test_backoff_doubles_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATELIER_WEBHOOK_BACKOFF_BASE_S", raising=False)
    monkeypatch.delenv("ATELIER_WEBHOOK_BACKOFF_CAP_S", raising=False)
    get_settings.cache_clear()
    assert [backoff(n) for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    monkeypatch.setenv("ATELIER_WEBHOOK_BACKOFF_BASE_S", "0.5")
    get_settings.cache_clear()
    assert backoff(3) == 2.0
    monkeypatch.undo()
    get_settings.cache_clear()
