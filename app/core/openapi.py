"""The OpenAPI document, completed with what FastAPI cannot infer from the routes.

Every error is ``application/problem+json`` (``app.core.errors``), raised from shared
dependencies (authentication, scopes, rate limits, org-scoped path objects) that FastAPI does
not list per operation. Documenting them here, in one pass, keeps every operation honest
without repeating the same ``responses=`` on ~60 routes, and new routes get them for free.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC = {"/v1/auth/login", "/v1/auth/logout"}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; some errors add fields (e.g. `limit`).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Per-field problems (validation).",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                               "msg": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
DESCRIPTIONS = {
    400: "Malformed request",
    401: "Not authenticated (missing, invalid, expired or revoked credentials)",
    403: "Authenticated, but missing the scope or role this needs (or the CSRF token)",
    404: "No such object in the caller's organization",
    409: "Conflicts with the current state",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid request (see `errors`)",
    429: "Rate limit or quota exceeded (see `Retry-After`)",
}
SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "atl_…",
               "description": "An API key: `Authorization: Bearer atl_…`."},
    "session": {"type": "apiKey", "in": "cookie", "name": "atelier_session",
                "description": "Dashboard session; unsafe methods also need X-CSRF-Token."},
}


def _errors_for(path: str, method: str, op: dict[str, Any]) -> list[int]:
    codes = [400, 422]  # bad JSON / bad parameters are possible on every operation
    if path not in PUBLIC:
        codes += [401, 403, 429]
    if "{" in path:
        codes.append(404)
    if method in ("post", "put", "patch", "delete"):
        codes.append(409)  # state conflicts and unique-constraint races
    content = op.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        codes += [413, 415]
    return codes


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the Problem schema, security schemes and every operation's error responses."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, ops in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, op in ops.items():
            if path not in PUBLIC:
                op["security"] = [{"apiKey": []}, {"session": []}]
            responses = op.setdefault("responses", {})
            for code in _errors_for(path, method, op):
                entry = responses.setdefault(str(code), {})
                entry.setdefault("description", DESCRIPTIONS[code])
                # Replaces FastAPI's HTTPValidationError: our 422 is a Problem like the rest.
                entry["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
                if code == 429:
                    entry["headers"] = {"Retry-After": {
                        "description": "Seconds to wait", "schema": {"type": "integer"}}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes, tags=app.openapi_tags, servers=app.servers,
            ))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
