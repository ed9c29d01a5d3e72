"""Process wiring for `atelier worker` and the embedded all-in-one `atelier up`."""

from __future__ import annotations

import atexit
import subprocess
import sys

import click

from app.core.settings import get_settings


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


def run_all_in_one(host: str, port: int) -> None:
    from app.cli.seed import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
    from app.core.db import session_scope
    from app.core.migrate import upgrade

    settings = get_settings()
    settings.ensure_dirs()
    upgrade()
    with session_scope() as db:
        seeded = seed_demo(db, settings.data_dir.resolve())
    _declare_broker_queues()
    url = f"http://{host}:{port}"
    if seeded is not None:
        _, key = seeded
        click.echo(
            f"\n  Demo org created.\n  Dashboard: {url}/\n  Sign in:   {DEMO_EMAIL} / "
            f"{DEMO_PASSWORD}\n  API key:   {key}   (shown once)\n"
        )
    else:
        click.echo(f"\n  Dashboard: {url}/   (demo login {DEMO_EMAIL} / {DEMO_PASSWORD})\n")
    worker = subprocess.Popen(worker_argv("gpu,default", 1, embedded=True))
    atexit.register(_stop, worker)
    import uvicorn

    uvicorn.run("app.main:create_app", factory=True, host=host, port=port)


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
