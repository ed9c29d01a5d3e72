from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.db import get_engine
from app.health.metrics import metrics_response

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="database, broker, storage: 'ok' or the error.")


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
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker),
                        ("storage", _check_storage)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # readiness reports, it never raises
            checks[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)


@router.get("/metrics", operation_id="prometheus_metrics", include_in_schema=False)
def metrics() -> Response:
    return metrics_response()
