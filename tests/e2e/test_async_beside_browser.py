"""Async test code still runs once the session's browser is open (tests/fixtures_browser.py).

tests/concurrency/test_pool_admission.py failed with "asyncio.run() cannot be called from a
running event loop" whenever a browser test ran before it in the same session.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.sync_api import Browser

from tests.fixtures_browser import run_async


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_run_async_works_while_the_browser_is_open(browser: Browser) -> None:
    assert browser.is_connected()
    plain = _answer()
    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(plain)  # what the helper exists for: plain asyncio.run fails here
    plain.close()
    assert run_async(_answer) == 42
