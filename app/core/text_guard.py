"""Refuse text the database cannot store, for every route, before any handler runs.

PostgreSQL ``text`` cannot hold U+0000, and an unpaired UTF-16 surrogate (``"\\ud800"`` is valid
JSON) cannot be encoded at all. Let through, such a value fails only when the row is written:
at best a confusing error, at worst (when the write happens after the answer) a 2xx for
nothing stored. One ASGI middleware checks every JSON or urlencoded body, every query
parameter and the path, and answers 422 naming the field: no schema can forget it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "text must not contain NUL (\\u0000) characters or unpaired surrogates"


def bad_locations(value: Any, loc: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every place in a decoded JSON document (keys included) holding unstorable text."""
    if isinstance(value, str):
        if BAD_TEXT.search(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if BAD_TEXT.search(key):
                yield (*loc, repr(key)[1:-1])
            yield from bad_locations(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from bad_locations(item, (*loc, str(i)))


def _path_locations(scope: Scope) -> list[tuple[str, ...]]:
    if not BAD_TEXT.search(scope.get("path", "")):
        return []
    app = scope.get("app")
    # Route contexts as served (FastAPI composes included routers lazily); the one that matches
    # names the parameter.
    for route in iter_route_contexts(getattr(getattr(app, "router", None), "routes", [])):
        match, child = route.matches(scope)
        if match == Match.FULL:
            params = child.get("path_params", {})
            named = [("path", k) for k, v in params.items()
                     if isinstance(v, str) and BAD_TEXT.search(v)]
            if named:
                return named  # type: ignore[return-value]
    return [("path",)]


def _query_locations(scope: Scope) -> list[tuple[str, ...]]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return [("query", k) for k, v in parse_qsl(raw, keep_blank_values=True)
            if BAD_TEXT.search(k) or BAD_TEXT.search(v)]


def _body_kind(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            ctype = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if ctype == "application/json" or ctype.endswith("+json"):
                return "json"
            if ctype == "application/x-www-form-urlencoded":
                return "form"
    return None


def _body_locations(kind: str, body: bytes) -> list[tuple[str, ...]]:
    if kind == "form":
        return [("body", k) for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
                if BAD_TEXT.search(k) or BAD_TEXT.search(v)]
    try:
        document = json.loads(body)
    except ValueError:
        return []  # not JSON: the route's own validation answers it
    return list(bad_locations(document, ("body",)))


class TextGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = _path_locations(scope) + _query_locations(scope)
        kind = _body_kind(scope)
        if kind is not None and not found:
            body, receive = await _buffer(receive)
            found = _body_locations(kind, body)
        if not found:
            await self.app(scope, receive, send)
            return
        errors = [{"loc": list(loc), "msg": MESSAGE} for loc in found[:50]]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {MESSAGE}" for e in errors[:5])
        await problem(422, "Validation failed", detail, errors=errors)(scope, receive, send)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (the route reads it whole anyway) and hand it on unchanged."""
    chunks: list[bytes] = []
    early: Message | None = None
    while True:
        message = await receive()
        if message["type"] != "http.request":
            early = message  # the client went away: pass that on too
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return early or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
