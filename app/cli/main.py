"""`atelier`: the operator CLI (API.md "Operator CLI")."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from app.core.settings import get_settings


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group()
def cli() -> None:
    """Atelier: train embeddings and concept models for Stable Diffusion."""


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision."""
    from app.cli.processes import load_settings
    from app.core.migrate import upgrade

    load_settings().ensure_dirs()
    upgrade()
    click.echo("database is at the latest revision")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="API processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API and dashboard (presigned URLs use this host and port unless
    ATELIER_BASE_URL says otherwise)."""
    import uvicorn

    from app.cli.access_log import log_config
    from app.cli.processes import listen_base_url, load_settings

    listen_base_url(host, port)
    load_settings()
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_config=log_config())


@cli.command()
@click.option("--queues", default="gpu,default", show_default=True)
@click.option("--concurrency", default=1, show_default=True, type=int,
              help="Jobs at once (one per GPU).")
def worker(queues: str, concurrency: int) -> None:
    """Run a Celery worker that trains jobs."""
    from app.cli.processes import load_settings, worker_argv

    load_settings()
    os.execvp(sys.executable, worker_argv(queues, concurrency))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo-password", default=None,
              help="Password of the demo owner when the demo org is first created "
              "(default: a random one, printed once).")
def up(host: str, port: int, demo_password: str | None) -> None:
    """Embedded all-in-one: migrate, seed a demo org, run API + worker + dashboard."""
    from app.cli.processes import run_all_in_one

    run_all_in_one(host, port, demo_password)


@cli.group()
def orgs() -> None:
    """Manage organizations."""


@orgs.command("create")
@click.argument("name")
@click.option("--admin-email", required=True)
@click.option("--admin-password", default=None, help="Generated and printed when omitted.")
@click.option("--json", "as_json", is_flag=True)
def orgs_create(name: str, admin_email: str, admin_password: str | None, as_json: bool) -> None:
    """Create an organization with an owner."""
    import secrets

    from app.cli.seed import create_org_with_admin
    from app.core.db import session_scope
    from app.identity.passwords import problem_with

    if admin_password is not None and (reason := problem_with(admin_password,
                                                                email=admin_email)):
        raise click.BadParameter(reason, param_hint="--admin-password")
    password = admin_password or secrets.token_urlsafe(12)
    with session_scope() as db:
        seeded = create_org_with_admin(db, name, admin_email, password)
        out = {"id": seeded.org.id, "name": seeded.org.name, "slug": seeded.org.slug,
               "admin_email": seeded.email}
        if not admin_password and seeded.new_account:
            out["admin_password"] = password
    if as_json:
        _echo_json(out)
        return
    if not seeded.new_account:
        note = " (an existing account: it keeps its own password)"
    elif not admin_password:
        note = f", password {password}"
    else:
        note = ""
    click.echo(f"created org {out['slug']} ({out['id']}); owner {admin_email}{note}")


@cli.group("api-keys")
def api_keys() -> None:
    """Manage API keys."""


@api_keys.command("create")
@click.option("--org", "org_slug", required=True, help="Organization slug.")
@click.option("--name", required=True)
@click.option("--scopes", multiple=True, help="Repeat or comma-separate; default all but admin.")
@click.option("--json", "as_json", is_flag=True)
def api_keys_create(org_slug: str, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create an API key; the key is printed once.

    It has no creating member, so it acts with the admin role at most (never owner: no key can
    grant, change or remove ownership). See app/identity/authorization.py.
    """
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.identity import service
    from app.identity.security import DEFAULT_KEY_SCOPES, check_scopes
    from app.models import Organization

    wanted = [s for group in scopes for s in group.split(",") if s] or list(DEFAULT_KEY_SCOPES)
    try:
        wanted = check_scopes(wanted)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with session_scope() as db:
        org = db.scalar(select(Organization).where(Organization.slug == org_slug))
        if org is None:
            raise click.ClickException(f"no organization with slug '{org_slug}'")
        row, key = service.create_api_key(db, org.id, name, wanted)
        out = {"id": row.id, "name": name, "key": key, "scopes": row.scopes, "org": org.slug}
    if as_json:
        _echo_json(out)
    else:
        click.echo(key)


@cli.group("base-models")
def base_models() -> None:
    """Manage base models."""


@base_models.command("add")
@click.argument("key")
@click.option("--source", required=True, help="Diffusers folder, .safetensors file or hub id.")
@click.option("--architecture", type=click.Choice(["sd15", "sdxl"]), required=True)
@click.option("--name", default=None)
@click.option("--resolution", type=click.IntRange(64, 4096), default=None,
              help="Native training size in pixels [default: 512 for sd15, 1024 for sdxl].")
def base_models_add(key: str, source: str, architecture: str, name: str | None,
                    resolution: int | None) -> None:
    """Register a base model that jobs can train on."""
    from app.cli.seed import register_base_model
    from app.core.db import session_scope

    with session_scope() as db:
        row = register_base_model(db, key, source, architecture, name, resolution)
        native = row.resolution
    click.echo(f"base model {key} ({architecture}, {native} px) -> {source}")


@base_models.command("make-tiny")
@click.argument("key")
@click.option("--architecture", type=click.Choice(["sd15", "sdxl"]), required=True)
@click.option("--json", "as_json", is_flag=True)
def base_models_make_tiny(key: str, architecture: str, as_json: bool) -> None:
    """Build a tiny random base model (demos, tests) and register it."""
    from app.cli.seed import build_tiny_base_model
    from app.core.db import session_scope

    s = get_settings()
    with session_scope() as db:
        row = build_tiny_base_model(db, key, architecture, s.data_dir.resolve() / "base-models")
        out = {"key": row.key, "architecture": row.architecture, "source": row.source,
               "resolution": row.resolution}
    if as_json:
        _echo_json(out)
    else:
        click.echo(f"built {key} at {out['source']}")


@cli.group()
def captioners() -> None:
    """Manage captioners (auto-captioning models)."""


@captioners.command("add")
@click.argument("key")
@click.option("--source", required=True,
              help="Local folder, or a hub id in the worker's local Hugging Face cache.")
@click.option("--kind", type=click.Choice(["sentence", "tags"]), required=True)
@click.option("--name", default=None)
def captioners_add(key: str, source: str, kind: str, name: str | None) -> None:
    """Register a captioner that caption jobs can use."""
    from app.cli.seed import register_captioner
    from app.core.db import session_scope

    with session_scope() as db:
        register_captioner(db, key, source, kind, name)
    click.echo(f"captioner {key} ({kind}) -> {source}")


@captioners.command("make-tiny")
@click.argument("key")
@click.option("--kind", type=click.Choice(["sentence", "tags"]), default="sentence",
              show_default=True)
@click.option("--json", "as_json", is_flag=True)
def captioners_make_tiny(key: str, kind: str, as_json: bool) -> None:
    """Build a tiny random captioner (demos, tests) and register it."""
    from app.cli.seed import build_tiny_captioner
    from app.core.db import session_scope

    s = get_settings()
    with session_scope() as db:
        row = build_tiny_captioner(db, key, kind, s.data_dir.resolve() / "captioners")
        out = {"key": row.key, "kind": row.kind, "source": row.source, "name": row.name}
    if as_json:
        _echo_json(out)
    else:
        click.echo(f"built {key} ({kind}) at {out['source']}")


@captioners.command("list")
@click.option("--json", "as_json", is_flag=True)
def captioners_list(as_json: bool) -> None:
    """Show the registered captioners."""
    from app.captioning.service import captioners as registered
    from app.core.db import session_scope

    with session_scope() as db:
        rows = [{"key": c.key, "name": c.name, "kind": c.kind, "source": c.source}
                for c in registered(db)]
    if as_json:
        _echo_json(rows)
    else:
        for r in rows:
            click.echo(f"{r['key']}\t{r['kind']}\t{r['source']}")


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("training-output"), show_default=True)
def train(config: Path, out_dir: Path) -> None:
    """Run one training locally from a YAML config (needs the worker extra)."""
    from worker.training.local_run import run_config_file

    run_config_file(config, out_dir)


# The integrator commands (datasets/jobs/models), which use only the REST API.
from app.cli.client import CLIENT_GROUPS  # noqa: E402

for _group in CLIENT_GROUPS:
    cli.add_command(_group)

if __name__ == "__main__":
    cli()
