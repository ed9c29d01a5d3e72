"""The integrator CLI: `atelier datasets|jobs|models ...`, built only on the REST API.

Configure with ``ATELIER_URL`` and ``ATELIER_API_KEY`` (or ``--url``/``--api-key``). Errors
print the API's problem+json detail and exit non-zero.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import click
import httpx

from app.cli.client_http import Api, ApiError, api_options
from app.cli.client_progress import bar


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


# --- datasets ---------------------------------------------------------------------------------

@click.group("datasets")
def datasets_group() -> None:
    """Datasets through the REST API (integrators)."""


@datasets_group.command("create")
@click.argument("name")
@click.option("--description", default="", help="Free text.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole dataset as JSON.")
@api_options
def datasets_create(name: str, description: str, as_json: bool, api: Api) -> None:
    """Create a dataset; prints its id."""
    dataset = api.post("/v1/datasets", {"name": name, "description": description})
    _echo_json(dataset) if as_json else click.echo(dataset["id"])


@datasets_group.command("upload")
@click.argument("dataset_id", metavar="DATASET")
@click.argument("folder", metavar="DIR",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workers", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Parallel uploads.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@api_options
def datasets_upload(dataset_id: str, folder: Path, workers: int, as_json: bool, quiet: bool,
                    api: Api) -> None:
    """Upload DIR's images (PNG/JPEG/WebP, recursively) with same-name .txt captions.

    Resumable: files whose content is already in the dataset are skipped, so re-running after
    an interrupt sends only what is missing. Exits 1 when any file was rejected.
    """
    from app.cli.client_upload import upload_folder

    api.get(f"/v1/datasets/{dataset_id}")  # a clear 404 before hashing a large folder
    progress = bar(0, "upload", "file", disable=quiet)

    def on_total(n: int) -> None:
        progress.total = n
        progress.refresh()

    try:
        summary = upload_folder(api, dataset_id, folder, workers=workers,
                                tick=progress.update, on_total=on_total)
    finally:
        progress.close()
    if as_json:
        _echo_json(summary.as_dict())
    else:
        click.echo(f"{summary.found} images found: {len(summary.created)} uploaded, "
                   f"{summary.skipped} already in the dataset, {len(summary.rejected)} rejected; "
                   f"{summary.captioned} captions applied")
        for r in summary.rejected:
            click.echo(f"  rejected {r['filename']}: {r['reason']}")
    if summary.rejected:
        raise SystemExit(1)


# --- jobs -------------------------------------------------------------------------------------

@click.group("jobs")
def jobs_group() -> None:
    """Training jobs through the REST API (integrators)."""


def _parse_advanced(values: tuple[str, ...]) -> dict[str, Any]:
    """Each value is a JSON object or ``key=value`` (the value read as JSON when it parses,
    so ``resolution=64`` is a number and ``optimizer=AdamW`` a string)."""
    out: dict[str, Any] = {}
    for text in values:
        if text.lstrip().startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}",
                                         param_hint="--advanced") from None
            if not isinstance(parsed, dict):
                raise click.BadParameter("JSON must be an object", param_hint="--advanced")
            out.update(parsed)
            continue
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value or a JSON object, got {text!r}",
                                     param_hint="--advanced")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


@jobs_group.command("create")
@click.option("--dataset", "dataset_id", required=True, help="Dataset id.")
@click.option("--name", required=True, help="Name of the model to train.")
@click.option("--type", "type_", required=True,
              type=click.Choice(["lora", "dora", "textual_inversion", "pivotal"]))
@click.option("--base-model", required=True, help="Key from GET /v1/base-models.")
@click.option("--template", default=None, help="Key from GET /v1/training-templates.")
@click.option("--caption-prefix", default=None, help="Trigger word (LoRA/DoRA/pivotal).")
@click.option("--initial-phrase", default=None, help="<= 8 characters (TI/pivotal).")
@click.option("--placeholder-token", default=None, help="The new token (TI/pivotal).")
@click.option("--steps", type=int, default=None, help="max_train_steps.")
@click.option("--lr", type=float, default=None, help="Learning rate.")
@click.option("--prompt", "prompts", multiple=True, help="Validation prompt (repeatable).")
@click.option("--validate-every", type=int, default=None, help="validate_every_n_steps.")
@click.option("--save-every", type=int, default=None, help="save_every_n_steps.")
@click.option("--advanced", "advanced", multiple=True,
              help="JSON object or key=value (repeatable): any other training option.")
@click.option("--idempotency-key", default=None, help="Makes retrying this command safe.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
@api_options
def jobs_create(dataset_id: str, name: str, type_: str, base_model: str, template: str | None,
                caption_prefix: str | None, initial_phrase: str | None,
                placeholder_token: str | None, steps: int | None, lr: float | None,
                prompts: tuple[str, ...], validate_every: int | None, save_every: int | None,
                advanced: tuple[str, ...], idempotency_key: str | None, as_json: bool,
                api: Api) -> None:
    """Queue a training job; prints its id."""
    body: dict[str, Any] = {
        "name": name, "dataset_id": dataset_id, "type": type_, "base_model": base_model,
        "template": template, "caption_prefix": caption_prefix,
        "initial_phrase": initial_phrase, "placeholder_token": placeholder_token,
        "max_train_steps": steps, "learning_rate": lr,
        "validation_prompts": list(prompts) or None,
        "validate_every_n_steps": validate_every, "save_every_n_steps": save_every,
        "advanced": _parse_advanced(advanced),
    }
    body = {k: v for k, v in body.items() if v is not None}  # unset: the server's defaults
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = api.post("/v1/jobs", body, headers=headers)
    _echo_json(job) if as_json else click.echo(job["id"])


@jobs_group.command("watch")
@click.argument("job_id", metavar="JOB")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the final job as JSON.")
@api_options
def jobs_watch(job_id: str, quiet: bool, as_json: bool, api: Api) -> None:
    """Follow a job live; exit 0 when it succeeds, 1 when it fails or is cancelled."""
    from app.cli.client_watch import outcome, watch

    job = watch(api, job_id, quiet=quiet)
    if as_json:
        _echo_json(job)
    else:
        click.echo(f"job {job['id']} {job['status']}")
    outcome(job)


@jobs_group.command("finalize")
@click.argument("job_id", metavar="JOB")
@click.option("--steps", required=True, help="Checkpoint steps to keep, e.g. 2,4.")
@click.option("--names", "names", multiple=True,
              help="Model names, one per step (repeat, or comma-separate).")
@click.option("--idempotency-key", default=None, help="Makes retrying this command safe.")
@click.option("--json", "as_json", is_flag=True, help="Print the models as JSON.")
@api_options
def jobs_finalize(job_id: str, steps: str, names: tuple[str, ...],
                  idempotency_key: str | None, as_json: bool, api: Api) -> None:
    """Keep the chosen checkpoints as library models; prints one model id per line."""
    try:
        step_list = [int(s) for s in steps.replace(" ", "").split(",") if s]
    except ValueError:
        raise click.BadParameter("steps must be integers, e.g. 2,4",
                                 param_hint="--steps") from None
    body: dict[str, Any] = {"steps": step_list}
    name_list = [n.strip() for group in names for n in group.split(",") if n.strip()]
    if name_list:
        body["names"] = name_list
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    out = api.post(f"/v1/jobs/{job_id}/finalize", body, headers=headers)
    if as_json:
        _echo_json(out)
    else:
        for model in out["models"]:
            click.echo(f"{model['id']}\tstep {model['step']}\t{model['name']}")


# --- models -----------------------------------------------------------------------------------

@click.group("models")
def models_group() -> None:
    """The model library through the REST API (integrators)."""


@models_group.command("download")
@click.argument("model_id", metavar="MODEL")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder to write into.")
@click.option("--file", "file_name", default=None,
              help="Which file when the model has several (default: the primary one).")
@api_options
def models_download(model_id: str, out_dir: Path, file_name: str | None, api: Api) -> None:
    """Download a model's file; prints the path written."""
    model = api.get(f"/v1/models/{model_id}")
    params = {"file": file_name} if file_name else {}
    # The API answers 302 to a short-lived URL; follow it ourselves so the API key is never
    # sent to storage.
    first = api.request("GET", f"/v1/models/{model_id}/download", params=params,
                        follow_redirects=False, ok=(301, 302, 303, 307))
    name = file_name or (model["files"][0]["name"] if model.get("files") else f"{model_id}.bin")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / Path(name).name  # never let a server-side name escape --out
    if first.is_redirect:
        url = urljoin(str(first.request.url), first.headers["location"])
        _fetch(url, target)
    else:
        target.write_bytes(first.content)
    click.echo(str(target))


def _fetch(url: str, target: Path) -> None:
    partial = target.with_name(target.name + ".part")
    with httpx.stream("GET", url, timeout=300, follow_redirects=True) as r:
        if not r.is_success:
            r.read()
            raise ApiError(r)
        total = int(r.headers.get("content-length") or 0) or None
        progress = bar(total, target.name, "B", disable=not total or total < (1 << 20))
        try:
            with partial.open("wb") as fp:
                for chunk in r.iter_bytes(1 << 20):
                    fp.write(chunk)
                    progress.update(len(chunk))
        finally:
            progress.close()
    os.replace(partial, target)  # a complete file or none: no half-written model at NAME


CLIENT_GROUPS = (datasets_group, jobs_group, models_group)
