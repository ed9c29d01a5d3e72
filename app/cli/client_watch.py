"""`atelier jobs watch JOB`: a live progress bar from the job's Server-Sent Events stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import click
import httpx

from app.cli.client_http import Api, ApiError
from app.cli.client_progress import bar

ENDED = {"succeeded", "finalized", "failed", "cancelled"}
OK = {"succeeded", "finalized"}
RECONNECT_S = 2.0


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) per SSE message; comments (keep-alives) and retry hints are skipped."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                try:
                    yield event, json.loads("\n".join(data))
                except ValueError:
                    pass
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def _stream(api: Api, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # No read timeout beyond the keep-alive cadence (15 s) plus slack.
    timeout = httpx.Timeout(30.0, read=90.0)
    with api.client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as r:
        if not r.is_success:
            r.read()
            raise ApiError(r)
        yield from parse_sse(r.iter_lines())


def watch(api: Api, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Follow the job until it ends; returns the final job. Reconnects when the stream drops
    (a proxy timing out, a server restart) because the job keeps running regardless."""
    job = api.get(f"/v1/jobs/{job_id}")
    progress = bar(job["progress"]["total_steps"] or None, job["name"], "step", disable=quiet)
    try:
        while job["status"] not in ENDED:
            try:
                for event, data in _stream(api, job_id):
                    _show(progress, event, data)
            except httpx.HTTPError:
                pass
            job = api.get(f"/v1/jobs/{job_id}")
            if job["status"] not in ENDED:
                time.sleep(RECONNECT_S)  # the stream dropped early: do not hammer the server
        _show(progress, "progress", {"step": job["progress"]["step"],
                                     "total_steps": job["progress"]["total_steps"],
                                     "loss": job["progress"]["loss"]})
    finally:
        progress.close()
    return job


def _show(progress: Any, event: str, data: dict[str, Any]) -> None:
    if event == "progress":
        if data.get("total_steps"):
            progress.total = data["total_steps"]
        step = int(data.get("step") or 0)
        if step > progress.n:
            progress.update(step - progress.n)
        if data.get("loss") is not None:
            progress.set_postfix_str(f"loss {data['loss']:.4f}")
    elif event == "checkpoint":
        click.echo(f"checkpoint at step {data.get('step')}", err=True)
    elif event == "status":
        click.echo(f"status: {data.get('status')}", err=True)


def outcome(job: dict[str, Any]) -> None:
    """Exit 0 on success; otherwise a non-zero exit carrying the job's error."""
    if job["status"] in OK:
        return
    reason = job.get("error") or "no error recorded"
    raise click.ClickException(f"job {job['id']} {job['status']}: {reason}")
