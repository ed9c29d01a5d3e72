"""Security headers on every answer: one middleware, one place.

- Dashboard pages (HTML): a Content-Security-Policy that runs only our own scripts (no inline
  script, no eval), may be framed by nobody, loads no plugins and cannot re-base its URLs.
  Images and upload XHRs may also go to the storage origin (MinIO/S3 in the full stack).
- ``/storage/…``: the URL is the credential, so no referrer, and a sandbox that makes any
  content inert (the storage router sets the same headers itself).
- Everything: ``nosniff``, so a browser never guesses a type we did not send.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.settings import Settings, get_settings

# Interactive API docs are FastAPI's own pages (inline script, CDN assets): framing rules only.
_DOCS_PATHS = ("/docs", "/redoc")
STORAGE_CSP = "default-src 'none'; sandbox"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def storage_origins(settings: Settings) -> list[str]:
    """Where presigned URLs point, for ``img-src`` and ``connect-src``."""
    if settings.storage_url.startswith("s3://"):
        endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
        origin = _origin(endpoint)
        return [origin] if origin else ["https://*.amazonaws.com"]
    origin = _origin(settings.base_url)
    return [origin] if origin else []


def dashboard_csp(settings: Settings) -> str:
    extra = " ".join(storage_origins(settings))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Progress bars start as style="width:0%"; attributes cannot run script.
        "style-src-attr 'unsafe-inline'",
        f"img-src 'self' {extra}".strip(),
        f"connect-src 'self' {extra}".strip(),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def headers_for(path: str, content_type: str, settings: Settings) -> dict[str, str]:
    headers = {"X-Content-Type-Options": "nosniff"}
    if path.startswith("/storage/"):
        headers.update({"Content-Security-Policy": STORAGE_CSP, "Referrer-Policy": "no-referrer"})
    elif path.startswith(_DOCS_PATHS):
        headers.update({"Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'",
                        "Referrer-Policy": "same-origin"})
    elif content_type.startswith("text/html"):
        headers.update({"Content-Security-Policy": dashboard_csp(settings),
                        "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"})
    else:
        headers.update({"Content-Security-Policy": API_CSP, "Referrer-Policy": "same-origin"})
    return headers


class SecurityHeaders:
    """Plain ASGI middleware: sets what the answer lacks when its headers go out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                found = headers_for(scope["path"], headers.get("content-type", ""),
                                    get_settings())
                for name, value in found.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)
