"""Turn a `POST /v1/jobs` body into a complete training config (every default filled in).

Order of precedence: the template's defaults, then the form's fields, then `advanced`. The
training library's own pydantic models (torch-free) do the validation, so the API and the
worker agree on what is valid.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.core.errors import Unprocessable, validation_detail
from app.core.field_errors import config_errors
from app.jobs.schemas import JobCreate
from worker.training.config import parse_config
from worker.training.templates import (
    NATIVE_RESOLUTION,
    default_validation_prompts,
    get_template,
    placeholder_from_name,
    resolution_for,
    resolution_problem,
)

FORM_FIELDS = ("caption_prefix", "initial_phrase", "placeholder_token", "learning_rate",
               "max_train_steps", "validation_prompts", "validate_every_n_steps",
               "save_every_n_steps")
EMBEDDING_TYPES = ("textual_inversion", "pivotal")


def _loc(path: list[str]) -> list[str]:
    # Point errors at the field the user filled in: a form field, else advanced.<name>.
    if path and path[0] in FORM_FIELDS:
        return ["body", *path]
    return ["body", "advanced", *path]


def resolve_config(body: JobCreate, architecture: str,
                   native_resolution: int | None = None) -> dict[str, Any]:
    """`native_resolution` is the base model's; sizes default to it and may not exceed it far."""
    native = native_resolution or NATIVE_RESOLUTION.get(architecture, 512)
    data: dict[str, Any] = {"resolution": native}
    if body.template:
        try:
            template = get_template(body.template)
        except KeyError as exc:
            raise Unprocessable(str(exc.args[0]), errors=[
                {"loc": ["body", "template"],
                 "msg": "no such template; choose one from GET /v1/training-templates"}]) from None
        if template.architecture != architecture:
            raise Unprocessable(
                f"Template '{template.key}' is for {template.architecture} but base model "
                f"'{body.base_model}' is {architecture}.",
                errors=[{"loc": ["body", "template"], "msg": f"this template is for "
                         f"{template.architecture}; choose one for {architecture} or another base "
                         "model"}])
        if template.type != body.type:
            raise Unprocessable(
                f"Template '{template.key}' trains {template.type}, not {body.type}.",
                errors=[{"loc": ["body", "template"], "msg": f"this template trains "
                         f"{template.type}; choose one for {body.type}"}])
        data.update(template.defaults)
        if "resolution" in template.defaults:
            data["resolution"] = resolution_for(template.defaults["resolution"], architecture,
                                                native)
    if body.type not in EMBEDDING_TYPES and (body.initial_phrase or body.placeholder_token):
        raise Unprocessable(
            "initial_phrase and placeholder_token apply to embeddings (textual_inversion, "
            "pivotal) only.", errors=[{"loc": ["body", "initial_phrase"],
                     "msg": "only embeddings (textual inversion, pivotal) take this"}])
    for name in FORM_FIELDS:
        value = getattr(body, name)
        if value is not None:
            data[name] = value
    overlap = sorted(set(body.advanced) & {n for n in FORM_FIELDS if getattr(body, n) is not None})
    if overlap:
        raise Unprocessable(f"{overlap} given both as fields and in advanced; give each once.",
                            errors=[{"loc": ["body", "advanced", overlap[0]],
                                     "msg": "given twice (as a field and here); give it once"}])
    data.update(body.advanced)
    data["type"], data["architecture"] = body.type, architecture
    if body.type in EMBEDDING_TYPES and not data.get("placeholder_token"):
        data["placeholder_token"] = placeholder_from_name(body.name)
    if not data.get("validation_prompts"):
        data["validation_prompts"] = default_validation_prompts(data)
    resolution = data.get("resolution")
    problem = (resolution_problem(resolution, native, body.base_model)
               if isinstance(resolution, int) else None)
    if problem:
        raise Unprocessable(problem, errors=[{"loc": ["body", "advanced", "resolution"],
                                              "msg": problem}])
    for reserved in ("type", "architecture"):
        if reserved in body.advanced:
            raise Unprocessable(f"'{reserved}' cannot be set in advanced.",
                                errors=[{"loc": ["body", "advanced", reserved],
                                         "msg": "set by the form's method and base model, "
                                         "not here"}])
    try:
        config = parse_config(data)
    except ValidationError as exc:
        # Worded for the form: labels and fixes, pinned to the field to change.
        errors = config_errors(list(exc.errors()), _loc)
        raise Unprocessable(validation_detail(errors), errors=errors) from None
    return config.model_dump(mode="json")
