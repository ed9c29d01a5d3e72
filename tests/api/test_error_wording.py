"""Validation errors read like the form: labels and fixes, never ``body.`` paths or pydantic
phrases; ``errors[].loc`` stays the machine path."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core import field_errors
from tests.conftest import Tenant

RAW = ("body.", "Input should", "Value error", "Extra inputs", "Field required", "String should")


def test_request_errors_name_fields_in_words(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/datasets", json={"description": 5, "extra": 1}, headers=tenant.auth)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert "Name: is required" in problem["detail"]
    assert "Description: must be text" in problem["detail"]
    assert "Extra: is not a known option" in problem["detail"]
    assert ["body", "name"] in [e["loc"] for e in problem["errors"]]
    for text in [problem["detail"], *(e["msg"] for e in problem["errors"])]:
        assert not any(raw in text for raw in RAW), text


@pytest.mark.parametrize(("error", "expected"), [
    ({"type": "greater_than_equal", "ctx": {"ge": 1}}, "must be at least 1"),
    ({"type": "less_than_equal", "ctx": {"le": 0.5}}, "must be at most 0.5"),
    ({"type": "string_too_long", "ctx": {"max_length": 8}},
     "must have at most 8 characters; shorten it"),
    ({"type": "literal_error", "ctx": {"expected": "'a' or 'b'"}}, "must be one of 'a' or 'b'"),
    ({"type": "value_error", "msg": "Value error, steps clash"}, "steps clash"),
    ({"type": "something_new", "msg": "Value error, odd"}, "odd"),
])
def test_messages(error: dict[str, Any], expected: str) -> None:
    assert field_errors.message(error) == expected


def test_labels() -> None:
    assert field_errors.label(["body", "max_train_steps"]) == "Training steps"
    assert field_errors.label(["body", "advanced", "rank"]) == "LoRA rank"
    assert field_errors.label(["body", "advanced", "noise_offset"]) == (
        "noise_offset in Advanced › Other options")
    assert field_errors.label(["body", "validation_prompts", "2"]) == "Validation prompts (line 3)"
    assert field_errors.sentence([], "the job failed") == "The job failed"
