"""bench/api_load.py's open-loop load generator: one asyncio loop speaking HTTP/1.1
keep-alive over raw sockets; each request is due at t0 + i/rate whatever the server does."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from dataclasses import dataclass

from api_load_seed import OrgSeed

HOST = "127.0.0.1"
ROUTES = ("jobs", "jobs_page2", "datasets", "models", "checkpoints")
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256
# uvicorn closes a keep-alive connection idle for 5 s; retire ours before that, as clients do.
IDLE_RETIRE_S = 3.0


@dataclass
class Request:
    due: float  # seconds after t0
    route: str
    raw: bytes  # the whole HTTP/1.1 request


@dataclass
class Result:
    route: str
    due: float
    latency: float | None  # None: an error
    status: int = 0
    error: str = ""


def plan_requests(orgs: list[OrgSeed], rate: float, seconds: float, port: int,
          rng: random.Random) -> list[Request]:
    plan = []
    for i in range(int(rate * seconds)):
        org = rng.choice(orgs)
        key = rng.choice(org.keys)
        route = ROUTES[i % len(ROUTES)]
        if route == "jobs":
            path = "/v1/jobs"
        elif route == "jobs_page2":  # a later page: the cursor is a job id of the org
            path = f"/v1/jobs?cursor={rng.choice(org.job_ids[50:] or org.job_ids)}"
        elif route == "datasets":
            path = "/v1/datasets"
        elif route == "models":
            path = "/v1/models"
        else:  # ended jobs have checkpoints: the newest 6 are queued/running
            path = f"/v1/jobs/{rng.choice(org.job_ids[:-6] or org.job_ids)}/checkpoints"
        raw = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               f"Authorization: Bearer {key}\r\nAccept: application/json\r\n\r\n").encode()
        plan.append(Request(i / rate, route, raw))
    return plan


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Connections:
    """Idle keep-alive connections; a new one when none is idle (at most MAX_CONNECTIONS)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[float, Conn]] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def take(self) -> Conn:
        await self.slots.acquire()
        now = time.perf_counter()
        while self.idle:
            since, conn = self.idle.pop()
            if now - since < IDLE_RETIRE_S:
                return conn
            conn[1].close()
        self.opened += 1
        return await asyncio.open_connection(HOST, self.port)  # a failure: give(None) frees

    def give(self, conn: Conn | None) -> None:
        if conn is not None:
            self.idle.append((time.perf_counter(), conn))
        self.slots.release()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> tuple[int, bytes, bool]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        raise ValueError("response without a length")
    return status, body, headers.get("connection", "").lower() != "close"


def _body_problem(route: str, body: bytes) -> str:
    """A 200 must carry data: pages of items, or a job's checkpoints (--check)."""
    doc = json.loads(body)
    items = doc if route == "checkpoints" else doc.get("items")
    return "" if isinstance(items, list) and items else f"empty answer: {body[:80]!r}"


async def _one(pool: Connections, req: Request, t0: float, check: bool) -> Result:
    """One request; one not answered REQUEST_TIMEOUT_S after it was due is an error, so an
    overloaded server ends the run on time instead of queueing for ever."""
    left = t0 + req.due + REQUEST_TIMEOUT_S - time.perf_counter()
    try:
        return await asyncio.wait_for(_attempt(pool, req, t0, check), max(left, 0.001))
    except TimeoutError:
        return Result(req.route, req.due, None, 0, f"no answer within {REQUEST_TIMEOUT_S} s")


async def _attempt(pool: Connections, req: Request, t0: float, check: bool) -> Result:
    conn = None
    try:
        conn = await pool.take()
        status, body, keep = await _exchange(*conn, req.raw)
        latency = time.perf_counter() - t0 - req.due
        if not keep:
            conn[1].close()
            conn = None
        if status != 200:
            return Result(req.route, req.due, None, status, body[:120].decode("latin-1"))
        if check and (problem := _body_problem(req.route, body)):
            return Result(req.route, req.due, None, status, problem)
        return Result(req.route, req.due, latency, status)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        if conn is not None:
            conn[1].close()
            conn = None
        return Result(req.route, req.due, None, 0, f"{type(exc).__name__}: {exc}")
    except asyncio.CancelledError:  # timed out mid-exchange: the connection is unusable
        if conn is not None:
            conn[1].close()
            conn = None
        raise
    finally:
        pool.give(conn)


async def drive(plan: list[Request], port: int, check: bool) -> tuple[list[Result], dict]:
    pool = Connections(port)
    tasks = []
    lag, lag_at = 0.0, 0.0
    # The generator's own collector pauses would count as server latency: none during the run.
    gc.collect()
    gc.disable()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        for req in plan:
            wait = t0 + req.due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if (late := time.perf_counter() - t0 - req.due) > lag:
                lag, lag_at = late, req.due
            tasks.append(asyncio.create_task(_one(pool, req, t0, check)))
        results = await asyncio.gather(*tasks)
    finally:
        gc.enable()
    wall = time.perf_counter() - t0
    for _, (_, writer) in pool.idle:
        writer.close()
    return list(results), {"generator_cpu_s": time.process_time() - cpu0, "wall_s": wall,
                           "max_send_lag_ms": lag * 1000, "max_send_lag_at_s": lag_at,
                           "connections": pool.opened}
