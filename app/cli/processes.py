"""Process wiring for `atelier worker` and the embedded all-in-one `atelier up`."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

import click
from pydantic import ValidationError

from app.core.settings import Settings, get_settings


def load_settings() -> Settings:
    """The settings, or a clear one-line refusal instead of a traceback (production mode
    without ATELIER_SECRET_KEY, an unreadable secret file, a bad value)."""
    try:
        return get_settings()
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise click.ClickException(f"invalid settings: {reasons}") from None


def listen_base_url(host: str, port: int) -> None:
    """Presigned URLs follow where the server listens unless ATELIER_BASE_URL is set.
    Exported, so the API workers and the embedded Celery worker see the same value."""
    if os.environ.get("ATELIER_BASE_URL"):
        return
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"  # listening everywhere: the local address at least works
    elif host == "::":
        host = "::1"
    netloc = f"[{host}]" if ":" in host else host
    os.environ["ATELIER_BASE_URL"] = f"http://{netloc}:{port}"
    get_settings.cache_clear()


def worker_argv(queues: str, concurrency: int, *, embedded: bool = False) -> list[str]:
    argv = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO",
        "--beat" if embedded else "--without-heartbeat",
    ]
    if embedded:
        # One process on SQLite: the solo pool avoids forking a second writer.
        argv += ["--pool", "solo", "--schedule", str(get_settings().data_dir.resolve()
                                                     / "celerybeat-schedule")]
    return argv


def run_all_in_one(host: str, port: int, demo_password: str | None = None) -> None:
    from app.cli.access_log import log_config
    from app.cli.seed import DEMO_EMAIL, demo_password_problem, seed_demo, seed_demo_captioners
    from app.core.db import session_scope
    from app.core.migrate import upgrade

    if demo_password is not None and (problem := demo_password_problem(demo_password)):
        raise click.BadParameter(problem, param_hint="--demo-password")
    listen_base_url(host, port)
    settings = load_settings()
    settings.ensure_dirs()
    upgrade()
    with session_scope() as db:
        seeded = seed_demo(db, settings.data_dir.resolve(), demo_password)
        seed_demo_captioners(db, settings.data_dir.resolve())
    _declare_broker_queues()
    url = settings.base_url.rstrip("/")
    if seeded is not None:
        org, key = seeded
        shown = "(as given)" if demo_password else f"{org.password}   (shown once)"
        click.echo(
            f"\n  Demo org created.\n  Dashboard: {url}/\n  Sign in:   {DEMO_EMAIL} / "
            f"{shown}\n  API key:   {key}   (shown once)\n"
        )
    else:
        click.echo(f"\n  Dashboard: {url}/   (demo login {DEMO_EMAIL}; its password was printed "
                   "when the demo org was created)\n")
    worker = subprocess.Popen(worker_argv("gpu,default", 1, embedded=True))
    atexit.register(_stop, worker)
    import uvicorn

    uvicorn.run("app.main:create_app", factory=True, host=host, port=port,
                log_config=log_config())


def _declare_broker_queues() -> None:
    # Create the broker's tables/queues once, before the API and the worker race to do it.
    from kombu import Queue

    from worker.celery_app import DEFAULT_QUEUE, GPU_QUEUE, celery_app

    with celery_app.connection_for_write() as conn:
        for name in (GPU_QUEUE, DEFAULT_QUEUE):
            Queue(name, channel=conn.default_channel).declare()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
