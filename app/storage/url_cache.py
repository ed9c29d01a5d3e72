"""Download URLs reused for a few minutes instead of signed again on every list page.

A page of models signs ~150 URLs (each file and preview), on every request of every client
polling it; with S3 each signature costs more still. A URL asked for with ``expires_s`` is
reused for up to ``expires_s // 12`` seconds (5 minutes of an hour), so every URL handed out
stays valid for at least 11/12 of what was asked. Short-lived URLs (under 10 minutes) are
never reused. The cache is per process, keyed by storage key and download filename (a key
names one org's object, so no other tenant can be handed it), and bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_CACHED_EXPIRY_S = 600
MAX_ENTRIES = 50_000


class SignedUrlCache:
    def __init__(self) -> None:
        self._window: tuple[int, int] = (0, 0)  # (expires_s, window number)
        self._urls: dict[tuple[str, str | None, int], str] = {}

    def get(self, key: str, filename: str | None, expires_s: int,
            sign: Callable[[], str]) -> str:
        if expires_s < MIN_CACHED_EXPIRY_S:
            return sign()
        window = int(time.time()) // (expires_s // 12)
        entry = (key, filename, expires_s)
        urls = self._urls
        if self._window != (expires_s, window) or len(urls) >= MAX_ENTRIES:
            # A new window: every URL of the last one is older than reuse allows. Replacing
            # the dict (not clearing it) keeps concurrent readers on a consistent one.
            urls = self._urls = {}
            self._window = (expires_s, window)
        url = urls.get(entry)
        if url is None:
            url = urls[entry] = sign()
        return url
