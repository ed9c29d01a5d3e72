"""The integrator CLI's HTTP layer: one httpx client, problem+json errors, polite retries.

It talks only to the public REST API (API.md), so it works against any Atelier deployment an
integrator can reach, never touching the database or storage configuration of this machine.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import httpx

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "http://127.0.0.1:8000"
# 429 (rate limited) and 503 (briefly unavailable) are worth waiting for; anything else is not.
RETRY_STATUSES = {429, 503}
MAX_RETRIES = 5


class ApiError(click.ClickException):
    """An error answer from the API, worded from its problem+json body."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        super().__init__(describe(response))


def describe(response: httpx.Response) -> str:
    """E.g. ``HTTP 404 Not found: Dataset 'x' not found.`` plus per-field validation errors."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:500] or response.reason_phrase
        return f"HTTP {response.status_code}: {text}"
    title = body.get("title") or response.reason_phrase
    detail = body.get("detail") or ""
    lines = [f"HTTP {response.status_code} {title}: {detail}".rstrip(": ")]
    for err in body.get("errors") or []:
        loc = ".".join(str(p) for p in err.get("loc", []))
        lines.append(f"  - {loc}: {err.get('msg', '')}")
    return "\n".join(lines)


class Api:
    """A thin wrapper around ``httpx.Client`` bound to one server and API key."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self.base_url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url, timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "atelier-cli"},
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (),
                **kwargs: Any) -> httpx.Response:
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise click.ClickException(
                    f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and attempt < MAX_RETRIES:
                time.sleep(_retry_after(response, attempt))
                continue
            if response.is_success or response.status_code in ok:
                return response
            raise ApiError(response)
        raise AssertionError("unreachable")

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs).json()

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=body, **kwargs).json()

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        cursor: str | None = None
        while True:
            query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = self.get(path, params=query)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after", "")
    try:
        return min(max(float(header), 0.1), 60.0)
    except ValueError:
        return min(2.0**attempt, 30.0)


def api_options(func: F) -> F:
    """Adds --url/--api-key (or ATELIER_URL/ATELIER_API_KEY) and passes an ``api`` argument."""

    @click.option("--url", envvar="ATELIER_URL", default=DEFAULT_URL, show_default=True,
                  help="Server base URL [env ATELIER_URL].")
    @click.option("--api-key", envvar="ATELIER_API_KEY", default=None,
                  help="API key (atl_...) [env ATELIER_API_KEY].")
    @functools.wraps(func)
    def wrapper(*args: Any, url: str, api_key: str | None, **kwargs: Any) -> Any:
        if not api_key:
            raise click.UsageError("no API key: set ATELIER_API_KEY or pass --api-key")
        api = Api(url, api_key)
        try:
            return func(*args, api=api, **kwargs)
        finally:
            api.close()

    return wrapper  # type: ignore[return-value]
