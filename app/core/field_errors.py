"""Validation errors in the form's language.

Pydantic speaks in paths (``body.advanced.lr_warmup_steps``) and phrases ("Input should be
greater than or equal to 1"). People filling the dashboard form, and integrators reading a 422,
get the field's label and a sentence that says what to change; ``loc`` stays the machine path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Config and request fields by their label on the form (and where the form keeps them).
LABELS: dict[str, str] = {
    "name": "Name", "dataset_id": "Dataset", "type": "Method", "base_model": "Base model",
    "template": "Template", "caption_prefix": "Caption prefix",
    "initial_phrase": "Initial phrase", "placeholder_token": "Placeholder token",
    "learning_rate": "Learning rate", "max_train_steps": "Training steps",
    "validation_prompts": "Validation prompts", "validate_every_n_steps": "Validate every",
    "save_every_n_steps": "Save a checkpoint every", "resolution": "Resolution",
    "rank": "LoRA rank", "train_batch_size": "Batch size",
    "validation_inference_steps": "Validation sampling steps",
    "num_validation_images": "Images per prompt", "seed": "Seed",
    "lr_warmup_steps": "Warm-up steps (lr_warmup_steps)",
    "steps": "Steps", "names": "Model names", "email": "Email", "password": "Password",
}
# Options the form shows only as keys of the "Other options" JSON box.
HIDDEN_WHERE = "Advanced › Other options"
ON_FORM_ADVANCED = {"resolution", "rank", "train_batch_size", "validation_inference_steps",
                    "num_validation_images", "seed", "placeholder_token"}


def label(loc: list[str]) -> str:
    """A readable name for an error location: the form label, else the option's own name."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    if not parts:
        return ""
    if parts[0] == "advanced" and len(parts) > 1:
        key = parts[1]
        if key in LABELS and key in ON_FORM_ADVANCED:
            return LABELS[key]
        return f"{LABELS.get(key, key)} in {HIDDEN_WHERE}"
    head = LABELS.get(parts[0], parts[0].replace("_", " ").capitalize())
    rest = [p for p in parts[1:] if not p.isdigit()]
    index = next((int(p) for p in parts[1:] if p.isdigit()), None)
    text = head if index is None else f"{head} (line {index + 1})"
    return " › ".join([text, *rest]) if rest else text


def _n(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def message(error: dict[str, Any]) -> str:
    """One pydantic error as a sentence fragment that says how to fix it."""
    kind, ctx = str(error.get("type", "")), error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
    if kind == "assertion_error":
        return str(error.get("msg", "")).removeprefix("Assertion failed, ")
    templates: dict[str, str] = {
        "missing": "is required",
        "extra_forbidden": "is not a known option; check the spelling or remove it",
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be more than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
        "multiple_of": "must be a multiple of {multiple_of}",
        "string_too_short": "must not be empty" if ctx.get("min_length") == 1
        else "must have at least {min_length} characters",
        "string_too_long": "must have at most {max_length} characters; shorten it",
        "too_short": "needs at least {min_length} entries",
        "too_long": "takes at most {max_length} entries",
        "int_parsing": "must be a whole number", "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number", "float_type": "must be a number",
        "bool_parsing": "must be true or false", "bool_type": "must be true or false",
        "string_type": "must be text", "list_type": "must be a list",
        "dict_type": "must be an object like {\"key\": value}",
        "model_attributes_type": "must be an object like {\"key\": value}",
        "literal_error": "must be one of {expected}",
        "enum": "must be one of {expected}",
        "union_tag_invalid": "must be one of {expected_tags}",
        "json_invalid": "is not valid JSON",
        "finite_number": "must be a finite number",
    }
    template = templates.get(kind)
    if template is None:
        return str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    try:
        return template.format(**{k: _n(v) for k, v in ctx.items()})
    except (KeyError, IndexError):
        return str(error.get("msg", "is not valid"))


def config_errors(raw: list[Any], where: Callable[[list[str]], list[str]]
                  ) -> list[dict[str, Any]]:
    """Errors of the training config (validated as a tagged union) as [{"loc", "msg"}]; a rule
    across fields is pinned to the field its error names (``ConfigError.field``)."""
    out = []
    for e in raw:
        path = [str(p) for p in e.get("loc", ())[1:]]  # [0] is the union's tag
        field = getattr((e.get("ctx") or {}).get("error"), "field", None)
        if field:
            path = [field]
        out.append({"loc": where(path), "msg": message(e)})
    return out


def sentence(loc: list[str], msg: str) -> str:
    """'Training steps: must be at least 1' — or the message alone when it names its field."""
    name = label(loc)
    return f"{name}: {msg}" if name else msg[:1].upper() + msg[1:]
