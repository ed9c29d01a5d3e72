"""The app's API routes as served: each with the app's and its routers' dependencies (the rate
limiter's included), however FastAPI composes included routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts


def served_routes(app: FastAPI) -> Iterator[tuple[str, Any]]:
    """("['GET'] /v1/jobs", route context) for every API route; the context carries
    ``dependant``, ``endpoint``, ``path``, ``methods`` and ``original_route``."""
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and getattr(ctx, "dependant", None) is not None:
            yield f"{sorted(ctx.methods or ())} {ctx.path}", ctx
