"""Turn a `POST /v1/jobs` body into a complete training config (every default filled in).

Order of precedence: the template's defaults, then the form's fields, then `advanced`. The
training library's own pydantic models (torch-free) do the validation, so the API and the
worker agree on what is valid.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.core.errors import Unprocessable, validation_errors
from app.jobs.schemas import JobCreate
from worker.training.config import parse_config
from worker.training.templates import get_template

FORM_FIELDS = ("caption_prefix", "initial_phrase", "placeholder_token", "learning_rate",
               "max_train_steps", "validation_prompts", "validate_every_n_steps",
               "save_every_n_steps")
EMBEDDING_TYPES = ("textual_inversion", "pivotal")


def _loc(path: list[str]) -> list[str]:
    # Point errors at the field the user filled in: a form field, else advanced.<name>.
    if path and path[0] in FORM_FIELDS:
        return ["body", *path]
    return ["body", "advanced", *path]


def resolve_config(body: JobCreate, architecture: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if body.template:
        try:
            template = get_template(body.template)
        except KeyError as exc:
            raise Unprocessable(str(exc.args[0]), errors=[
                {"loc": ["body", "template"], "msg": "unknown template"}]) from None
        if template.architecture != architecture:
            raise Unprocessable(
                f"Template '{template.key}' is for {template.architecture} but base model "
                f"'{body.base_model}' is {architecture}.",
                errors=[{"loc": ["body", "template"], "msg": "architecture mismatch"}])
        if template.type != body.type:
            raise Unprocessable(
                f"Template '{template.key}' trains {template.type}, not {body.type}.",
                errors=[{"loc": ["body", "template"], "msg": "type mismatch"}])
        data.update(template.defaults)
    if body.type not in EMBEDDING_TYPES and (body.initial_phrase or body.placeholder_token):
        raise Unprocessable(
            "initial_phrase and placeholder_token apply to embeddings (textual_inversion, "
            "pivotal) only.", errors=[{"loc": ["body", "initial_phrase"], "msg": "not allowed"}])
    for name in FORM_FIELDS:
        value = getattr(body, name)
        if value is not None:
            data[name] = value
    overlap = sorted(set(body.advanced) & {n for n in FORM_FIELDS if getattr(body, n) is not None})
    if overlap:
        raise Unprocessable(f"{overlap} given both as fields and in advanced; give each once.",
                            errors=[{"loc": ["body", "advanced", overlap[0]], "msg": "duplicate"}])
    data.update(body.advanced)
    data["type"], data["architecture"] = body.type, architecture
    for reserved in ("type", "architecture"):
        if reserved in body.advanced:
            raise Unprocessable(f"'{reserved}' cannot be set in advanced.",
                                errors=[{"loc": ["body", "advanced", reserved],
                                         "msg": "not allowed"}])
    try:
        config = parse_config(data)
    except ValidationError as exc:
        errors = [{"loc": _loc([str(p) for p in e["loc"][1:]]), "msg": e["msg"]}
                  for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or 'config'}: {e['msg']}"
                           for e in errors[:5])
        raise Unprocessable(detail, errors=validation_errors(errors)) from None
    return config.model_dump(mode="json")
