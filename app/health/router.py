from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.db import get_engine
from app.health.metrics import DEPENDENCY_UP, metrics_response

router = APIRouter(tags=["health"])
log = logging.getLogger("atelier.health")


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"] = Field(
        description="Whether every dependency (database, broker, storage) answered. Which one "
        "failed, and why, goes to the server log and to `atelier_dependency_up` in /metrics."
    )


@router.get("/healthz", operation_id="healthz", response_model=HealthOut)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _check_broker() -> None:
    from worker.celery_app import celery_app

    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def _check_storage() -> None:
    from app.storage.factory import get_storage

    get_storage().check()


@router.get("/readyz", operation_id="readyz",
            responses={200: {"model": ReadyOut, "description": "Everything is reachable"},
                       503: {"model": ReadyOut, "description": "A dependency is unreachable"}})
def readyz() -> JSONResponse:
    ok = True
    for name, check in (("database", _check_database), ("broker", _check_broker),
                        ("storage", _check_storage)):
        try:
            check()
            DEPENDENCY_UP.labels(name).set(1)
        except Exception as exc:  # readiness reports, it never raises
            # Hosts, ports and paths stay in the server log: /readyz is public.
            log.warning("readiness: %s is not reachable: %s: %s", name, type(exc).__name__, exc)
            DEPENDENCY_UP.labels(name).set(0)
            ok = False
    return JSONResponse({"status": "ready" if ok else "not ready"},
                        status_code=200 if ok else 503)


@router.get("/metrics", operation_id="prometheus_metrics", include_in_schema=False)
def metrics() -> Response:
    return metrics_response()
