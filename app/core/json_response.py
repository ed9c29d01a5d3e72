"""Answers written by orjson, for the busiest read routes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


def plain_json(value: Any) -> Response:
    """``value`` (plain dicts, lists, numbers, strings, datetimes) written by orjson, unchecked.
    For list pages: a pydantic model per item was most of a page's rendering time, and FastAPI
    validates a plain-function route's answer on the thread pool, one more trip there per
    request. The route keeps its ``response_model`` for the schema, and
    tests/api/test_fast_read_routes.py holds each such answer byte for byte equal to what that
    model writes. Datetimes in UTC end in ``Z``, as pydantic writes them."""
    return Response(orjson.dumps(value, option=orjson.OPT_UTC_Z), media_type="application/json")
