"""Domain errors and the one place that turns every error into application/problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import field_errors

log = logging.getLogger("atelier.errors")

PROBLEM = "application/problem+json"


class AppError(Exception):
    """Base of every error the API answers on purpose."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status, title = 401, "Unauthorized"


class Forbidden(AppError):
    status, title = 403, "Forbidden"


class NotFound(AppError):
    status, title = 404, "Not found"


class Conflict(AppError):
    status, title = 409, "Conflict"


class PayloadTooLarge(AppError):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(AppError):
    status, title = 415, "Unsupported media type"


class Unprocessable(AppError):
    status, title = 422, "Validation failed"


class TooManyRequests(AppError):
    status, title = 429, "Too many requests"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://atelier.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def validation_errors(raw: list[Any]) -> list[dict[str, Any]]:
    """Pydantic error list -> [{"loc", "msg"}]: ``loc`` the machine path (clients map it to
    their fields), ``msg`` a sentence that says what to change (no pydantic phrases)."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": field_errors.message(e)}
        for e in raw
    ]


def validation_detail(errors: list[dict[str, Any]]) -> str:
    """'Training steps: must be at least 1; Name: is required' — labels, not ``body.`` paths."""
    return "; ".join(field_errors.sentence(e["loc"], e["msg"]) for e in errors[:5])


_STATUS_TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
    415: "Unsupported media type", 422: "Validation failed", 429: "Too many requests",
    503: "Service unavailable",
}


def install_error_handlers(app: FastAPI) -> None:
    from app.core.text_guard import TextGuard

    # Text the database cannot store (NUL, lone surrogates) is refused here, for every route,
    # as a 422 naming the field: it must never reach a commit that could fail after the fact.
    app.add_middleware(TextGuard)

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem(
            exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        detail = validation_detail(errors)
        return problem(422, "Validation failed", detail or "Invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _STATUS_TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, title, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        text = str(exc.orig)
        if "uq_models_org_id_name" in text or "models.org_id, models.name" in text:
            # Two requests raced for one model name; the loser hears why.
            return problem(409, "Conflict", "A model with this name already exists in your "
                           "library; model names are unique within an organization.")
        return problem(409, "Conflict", "The request conflicts with existing data.")

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a NUL character in text on PostgreSQL, a number out of
        # range): bad input, not a server fault.
        log.info("data error: %s", exc.orig)
        return problem(422, "Validation failed",
                       "A value in the request cannot be stored (e.g. a NUL character).")

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, exc: OperationalError) -> JSONResponse:
        # The database is busy or unreachable, or a statement ran past the API's timeout
        # (including at commit): a fault on our side, the write is not stored, retrying helps.
        log.warning("database unavailable: %s", exc.orig)
        return problem(503, "Service unavailable",
                       "The database is busy; nothing was changed. Please retry.",
                       headers={"Retry-After": "1"})

    @app.exception_handler(DBAPIError)
    async def _database_fault(_: Request, exc: DBAPIError) -> JSONResponse:
        # Any other database error, at commit included: nothing was stored, and the answer says
        # so (answered here rather than by the last-resort handler, which also drops the
        # connection).
        log.error("database error", exc_info=exc)
        return problem(500, "Internal server error",
                       "Something went wrong on our side; nothing was changed.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal server error", "Something went wrong on our side.")
