"""The FastAPI application: routers, error handlers, metrics, dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from app.captioning.router import router as captioning_router
from app.core import bookkeeping
from app.core.errors import install_error_handlers
from app.core.openapi import install_openapi
from app.core.security_headers import install_security_headers
from app.core.warmup import warm_up
from app.datasets.router import router as datasets_router
from app.health.metrics import install_metrics
from app.health.router import router as health_router
from app.identity.router import router as identity_router
from app.integrations.ratelimit import install_rate_limits
from app.integrations.router import router as integrations_router
from app.jobs.router import router as jobs_router
from app.library.links_router import router as links_router
from app.library.router import router as library_router
from app.storage.router import router as storage_router
from app.web.router import install as install_web


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # uvicorn accepts connections only once startup is done, so the first requests find every
    # route built and the pool warm instead of paying for them under load. FastAPI builds an
    # included router's routes (their dependencies, their models) on the first request: about
    # 150 ms of CPU per process for this app, during which requests queue (bench/README).
    for _ in iter_route_contexts(app.routes):
        pass
    await anyio.to_thread.run_sync(warm_up)
    bookkeeping.start()
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(bookkeeping.stop)  # what was noted since the last flush


def create_app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(
        title="Atelier",
        version="0.1.0",
        description="Train embeddings and concept models (LoRA/DoRA/pivotal) for SD 1.5 and SDXL.",
        lifespan=_lifespan,
    )
    install_error_handlers(app)
    install_metrics(app)
    install_rate_limits(app)
    install_security_headers(app)
    for router in (health_router, identity_router, datasets_router, captioning_router,
                   jobs_router, library_router, links_router, integrations_router,
                   storage_router):
        app.include_router(router)
    install_web(app)
    install_openapi(app)
    return app
