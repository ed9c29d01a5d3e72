"""Prometheus request counts and latencies, labelled by route template (not raw path)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "atelier_http_requests_total", "HTTP requests", ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "atelier_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    registry=REGISTRY,
)
DEPENDENCY_UP = Gauge(
    "atelier_dependency_up", "1 if the dependency answered the last readiness check, else 0",
    ["dependency"], registry=REGISTRY,
)


class Metrics:
    """Plain ASGI middleware (no per-request task or body stream, unlike @app.middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)


def install_metrics(app: FastAPI) -> None:
    app.add_middleware(Metrics)


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
