"""The API under load: list routes at a fixed arrival rate from many API keys.

Seeds a throw-away PostgreSQL database (100 orgs x 1,000 jobs with their checkpoints and
validation images, datasets with items, library models) with COPY, starts the real server
(`atelier serve`, Redis for the rate limits as in the full stack), and sends an open-loop
stream of GETs to /v1/jobs (first and later pages), /v1/datasets, /v1/models and
/v1/jobs/{id}/checkpoints, spread over 3 keys per org. Prints p50/p95/p99/max, errors and the
achieved rate per route.

    python bench/api_load.py [--rate 200] [--duration 60] [--workers 2] [--smoke] [--json F]

Open loop: request i is due at t0 + i/rate whatever the server does, and its latency counts
from that moment, so a slow answer delays nothing else and queueing shows in the figures
(no coordinated omission). The generator is one asyncio loop speaking HTTP/1.1 keep-alive
over raw sockets: a few tens of microseconds of CPU per request, so it does not starve the
server of this machine's two cores (it prints its own CPU use). Only 127.0.0.1 is contacted;
the run ends by itself after warm-up + duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/0")
HOST = "127.0.0.1"
ROUTES = ("jobs", "jobs_page2", "datasets", "models", "checkpoints")
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256
# uvicorn closes a keep-alive connection idle for 5 s; retire ours before that, as clients do.
IDLE_RETIRE_S = 3.0


# --- seeding -----------------------------------------------------------------------------------

@dataclass
class SeedSize:
    orgs: int = 100
    jobs: int = 1000  # per org
    checkpoints: int = 3  # per job, each with one validation image
    datasets: int = 20  # per org
    items: int = 8  # per dataset (and in each job's snapshot)
    models: int = 30  # per org
    keys: int = 3  # per org


@dataclass
class OrgSeed:
    org_id: str
    keys: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)  # oldest first


class Ids:
    """Time-sortable ids shaped like app.core.ids.new_id, for rows created in the past."""

    def __init__(self) -> None:
        self.seq = 0

    def at(self, when: datetime) -> str:
        self.seq += 1
        return f"{int(when.timestamp() * 1000):012x}{self.seq % 65536:04x}{secrets.token_hex(6)}"


def _columns(table: Any, row: dict[str, Any]) -> tuple[Any, ...]:
    """A full row in column order: given values, else the column's scalar default, else NULL."""
    values = []
    for col in table.columns:
        if col.name in row:
            value = row[col.name]
        elif col.default is not None and col.default.is_scalar:
            value = col.default.arg
        else:
            value = None
        if isinstance(value, dict | list):
            value = json.dumps(value)
        values.append(value)
    return tuple(values)


def _copy(conn: Any, table: Any, rows: Iterable[dict[str, Any]]) -> int:
    names = ", ".join(f'"{c.name}"' for c in table.columns)
    n = 0
    with conn.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(_columns(table, row))
            n += 1
    return n


def _job_config() -> dict[str, Any]:
    """A real resolved config (what POST /v1/jobs stores), so rows have the real size."""
    from app.jobs.config_resolution import resolve_config
    from app.jobs.schemas import JobCreate

    body = JobCreate(name="bench", dataset_id="x" * 28, type="lora", base_model="sd15",
                     caption_prefix="zkw")
    return resolve_config(body, "sd15", 512)


def seed(pg_url: str, size: SeedSize) -> list[OrgSeed]:
    import psycopg

    from app.identity.authorization import READ_SCOPES
    from app.identity.security import hash_password, new_api_key
    from app.models import (
        ApiKey,
        Checkpoint,
        Dataset,
        DatasetItem,
        Membership,
        Model,
        Organization,
        TrainingJob,
        User,
        ValidationImage,
    )

    rng = random.Random(15)
    ids = Ids()
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    config = _job_config()
    config_json = json.dumps(config)  # one text for 100,000 rows: COPY takes it as is
    password_hash = hash_password(secrets.token_urlsafe(16))  # nobody signs in; hash once
    orgs: list[OrgSeed] = []
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (
        Organization, User, Membership, ApiKey, Dataset, DatasetItem, TrainingJob, Checkpoint,
        ValidationImage, Model)}

    def when(i: int, n: int) -> datetime:
        return start + timedelta(seconds=(now - start).total_seconds() * (i + rng.random()) / n)

    for o in range(size.orgs):
        created = start - timedelta(days=1)
        org = OrgSeed(ids.at(created))
        orgs.append(org)
        user_id = ids.at(created)
        rows[Organization].append(dict(id=org.org_id, created_at=created, name=f"Bench org {o}",
                                       slug=f"bench-{o}-{secrets.token_hex(3)}"))
        rows[User].append(dict(id=user_id, created_at=created, email=f"owner{o}@bench.example",
                               name="", password_hash=password_hash, is_active=True))
        rows[Membership].append(dict(id=ids.at(created), created_at=created, org_id=org.org_id,
                                     user_id=user_id, role="owner"))
        for k in range(size.keys):
            raw, prefix, key_hash = new_api_key()
            org.keys.append(raw)
            rows[ApiKey].append(dict(id=ids.at(created), created_at=created, org_id=org.org_id,
                                     name=f"bench-{k}", prefix=prefix, key_hash=key_hash,
                                     scopes=list(READ_SCOPES), created_by_user_id=user_id))
        prefix = f"orgs/{org.org_id}"
        snapshot = []
        for d in range(size.datasets):
            at = when(d, size.datasets)
            dataset_id = ids.at(at)
            rows[Dataset].append(dict(id=dataset_id, created_at=at, updated_at=at,
                                      org_id=org.org_id, name=f"dataset {d}", description=""))
            for i in range(size.items):
                item_id = ids.at(at)
                item = dict(id=item_id, created_at=at, org_id=org.org_id, dataset_id=dataset_id,
                            filename=f"img_{i:04d}.png",
                            storage_key=f"{prefix}/datasets/{dataset_id}/{item_id}.png",
                            thumbnail_key=f"{prefix}/datasets/{dataset_id}/{item_id}.thumb.webp",
                            content_type="image/png", sha256=secrets.token_hex(32), width=768,
                            height=768, bytes=rng.randint(200_000, 900_000),
                            caption=f"a photo of zkw, view {i}" if i % 4 else None)
                rows[DatasetItem].append(item)
                if d == 0:
                    snapshot.append({k: item[k] for k in ("id", "filename", "storage_key",
                                                          "sha256", "caption", "content_type")})
        snapshot_json = json.dumps(snapshot)
        for j in range(size.jobs):
            at = when(j, size.jobs)
            job_id = ids.at(at)
            org.job_ids.append(job_id)
            # The newest jobs are still queued or running; the rest have ended.
            left = size.jobs - j
            status = ("queued" if left <= 5 else "running" if left == 6 else
                      rng.choices(["succeeded", "finalized", "failed", "cancelled"],
                                  [70, 15, 10, 5])[0])
            done = status not in ("queued", "running")
            steps = config["max_train_steps"]
            rows[TrainingJob].append(dict(
                id=job_id, created_at=at, org_id=org.org_id, dataset_id=None,
                created_by="api_key:bench-0", name=f"job {j}", type="lora", architecture="sd15",
                base_model="sd15", template=None, config=config_json,
                dataset_snapshot=snapshot_json,
                status=status, progress_step=steps if done else 0, total_steps=steps,
                loss=0.08 if done else None, images_per_second=3.1 if done else None,
                attempts=0 if status == "queued" else 1, gpu_seconds=600.0 if done else 0.0,
                started_at=None if status == "queued" else at + timedelta(seconds=5),
                finished_at=at + timedelta(minutes=12) if done else None,
                error="CUDA out of memory" if status == "failed" else None,
                heartbeat_at=at if status == "running" else None))
            if not done:
                continue
            for c in range(size.checkpoints):
                step = steps * (c + 1) // size.checkpoints
                key = f"{prefix}/jobs/{job_id}/checkpoints/step-{step:06d}/"
                rows[Checkpoint].append(dict(
                    id=ids.at(at), created_at=at, org_id=org.org_id, job_id=job_id, step=step,
                    files=[{"name": "lora.safetensors", "key": key + "lora.safetensors",
                            "bytes": 3_300_000, "sha256": secrets.token_hex(32)}],
                    bytes=3_300_000))
                rows[ValidationImage].append(dict(
                    id=ids.at(at), created_at=at, org_id=org.org_id, job_id=job_id, step=step,
                    prompt_index=0, image_index=0, prompt="a photo of zkw", seed=1234,
                    storage_key=f"{prefix}/jobs/{job_id}/validation/step-{step:06d}/p0-0.webp",
                    bytes=40_000))
        for m in range(size.models):
            at = when(m, size.models)
            model_id = ids.at(at)
            key = f"{prefix}/models/{model_id}/"
            rows[Model].append(dict(
                id=model_id, created_at=at, org_id=org.org_id, name=f"model {m}", type="lora",
                architecture="sd15", base_model="sd15", trigger="zkw", step=1500,
                job_id=org.job_ids[m], dataset_id=None, config=config_json,
                files=[{"name": "lora.safetensors", "key": key + "lora.safetensors",
                        "bytes": 3_300_000, "sha256": secrets.token_hex(32)}],
                preview_images=[{"key": key + f"preview-{p}.webp", "prompt": "a photo of zkw",
                                 "prompt_index": 0, "index": p, "seed": p} for p in range(2)],
                bytes=3_380_000))

    libpq = _libpq(pg_url)
    with psycopg.connect(libpq) as conn:
        for model, table_rows in rows.items():
            _copy(conn, model.__table__, table_rows)
        conn.commit()
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum gives a long-lived database
    print(f"seeded: {', '.join(f'{m.__tablename__} {len(r):,}' for m, r in rows.items())}",
          flush=True)
    return orgs


def _libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new PostgreSQL database (SQLAlchemy URL), dropped afterwards, as tests/conftest.py."""
    import psycopg

    name = f"atelier_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the server --------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(pg_url: str, data_dir: Path, workers: int, redis_url: str | None,
               ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`atelier serve` on the database, as tests/concurrency/live.py starts it."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data_dir), ATELIER_DATABASE_URL=pg_url,
               ATELIER_STORAGE_URL=f"file://{data_dir / 'storage'}",
               ATELIER_BASE_URL=f"http://{HOST}:{port}", PYTHONPATH=str(ROOT))
    if redis_url:
        env.update(ATELIER_REDIS_URL=redis_url, ATELIER_BROKER_URL=redis_url)
    atelier = str(Path(sys.executable).parent / "atelier")
    log = (data_dir / "serve.log").open("wb")
    proc = subprocess.Popen([atelier, "serve", "--host", HOST, "--port", str(port),
                             "--workers", str(workers)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {data_dir / 'serve.log'}")
            time.sleep(0.3)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


# --- the open-loop load generator ---------------------------------------------------------------

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


def _plan(orgs: list[OrgSeed], rate: float, seconds: float, port: int,
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


async def _drive(plan: list[Request], port: int, check: bool) -> tuple[list[Result], dict]:
    pool = Connections(port)
    tasks = []
    lag = 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for req in plan:
        wait = t0 + req.due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        lag = max(lag, time.perf_counter() - t0 - req.due)
        tasks.append(asyncio.create_task(_one(pool, req, t0, check)))
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    for _, (_, writer) in pool.idle:
        writer.close()
    return list(results), {"generator_cpu_s": time.process_time() - cpu0, "wall_s": wall,
                           "max_send_lag_ms": lag * 1000, "connections": pool.opened}


# --- figures -----------------------------------------------------------------------------------

def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def summarize(results: list[Result], measured_s: float) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for route in (*ROUTES, "all"):
        rows = [r for r in results if route in ("all", r.route)]
        ok = sorted(r.latency for r in rows if r.latency is not None)
        errors = [r for r in rows if r.latency is None]
        table[route] = {
            "requests": len(rows), "errors": len(errors),
            "rate": len(rows) / measured_s if measured_s else 0.0,
            "p50_ms": _pct(ok, 50) * 1000, "p95_ms": _pct(ok, 95) * 1000,
            "p99_ms": _pct(ok, 99) * 1000, "max_ms": (ok[-1] if ok else float("nan")) * 1000,
            "error_samples": sorted({f"{e.status} {e.error}"[:160] for e in errors})[:3],
        }
    return table


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _process_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (the server's uvicorn workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids.append(int(child))
    for p in pids:
        try:
            parts = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (float(parts[11]) + float(parts[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return total


def report(table: dict[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    print(f"\n{'route':<12} {'req':>6} {'rate/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'errors':>6}")
    for route, row in table.items():
        print(f"{route:<12} {row['requests']:>6} {row['rate']:>7.1f} {row['p50_ms']:>7.1f} "
              f"{row['p95_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['max_ms']:>7.1f} "
              f"{row['errors']:>6}")
        for sample in row["error_samples"]:
            print(f"    e.g. {sample}")
    print(f"\nmachine: {os.cpu_count()} CPUs, load average before {extra['load_before']}, "
          f"after {extra['load_after']}; machine busy {extra['machine_busy_pct']:.0f}% during "
          f"the run; server CPU {extra['server_cpu_pct']:.0f}% of one core "
          f"({extra['workers']} worker(s)); generator CPU {extra['generator_cpu_pct']:.1f}% of "
          f"one core, {extra['connections']} connections, max send lag "
          f"{extra['max_send_lag_ms']:.1f} ms")


def _load(args: argparse.Namespace, rate: float, orgs: list[OrgSeed], port: int,
          server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """One open-loop run at ``rate``; prints and returns its figures."""
    plan = _plan(orgs, rate, args.warmup + args.duration, port, random.Random(1))
    load_before = os.getloadavg()
    busy0, total0 = _cpu_times()
    server0 = _process_cpu_s(server.pid)
    results, stats = asyncio.run(_drive(plan, port, args.check))
    busy1, total1 = _cpu_times()
    server_cpu = _process_cpu_s(server.pid) - server0
    table = summarize([r for r in results if r.due >= args.warmup], args.duration)
    wall = stats["wall_s"]
    extra = {
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine_busy_pct": 100 * (busy1 - busy0) / max(total1 - total0, 1),
        "server_cpu_pct": 100 * server_cpu / wall, "workers": args.workers,
        "generator_cpu_pct": 100 * stats["generator_cpu_s"] / wall,
        "connections": stats["connections"], "max_send_lag_ms": stats["max_send_lag_ms"],
        "rate": rate, "duration_s": args.duration,
    }
    print(f"\n== {rate:g} requests/s for {args.duration:g} s "
          f"(after {args.warmup:g} s not measured)")
    report(table, extra)
    return {"routes": table, "run": extra}


def run(args: argparse.Namespace) -> dict[str, Any]:
    size = SeedSize(orgs=3, jobs=60, datasets=3, items=2, models=3, keys=2) if args.smoke \
        else SeedSize(orgs=args.orgs, jobs=args.jobs_per_org)
    redis_url = None if args.no_redis else REDIS.rsplit("/", 1)[0] + f"/{args.redis_db}"
    data_dir = Path(tempfile.mkdtemp(prefix="atelier-api-load-"))
    if args.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    runs = []
    with scratch_database() as pg_url:
        from app.core.migrate import upgrade

        upgrade(pg_url)
        t = time.perf_counter()
        orgs = seed(pg_url, size)
        print(f"seed took {time.perf_counter() - t:.1f} s", flush=True)
        with api_server(pg_url, data_dir, args.workers, redis_url) as (base, proc):
            port = int(base.rsplit(":", 1)[1])
            for i, rate in enumerate(args.rate):
                if i:
                    time.sleep(5)  # let the server finish what the last run left it
                runs.append(_load(args, rate, orgs, port, proc))
    return {"routes": runs[0]["routes"], "runs": runs, "seed": size.__dict__,
            "redis": bool(redis_url)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=lambda t: [float(x) for x in t.split(",")],
                        default=[200.0], help="requests per second; several (50,200) run "
                        "one after another on the same seed and server")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds not measured")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--jobs-per-org", type=int, default=1000)
    parser.add_argument("--no-redis", action="store_true", help="in-process rate limits")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--check", action="store_true", help="parse every body (costs CPU)")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny seed, 20 requests/s for 3 s, bodies checked")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    # A plain kill must still stop the server and drop the database (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.smoke:
        args.rate, args.duration, args.warmup, args.check = [20.0], 3, 1, True
    if args.duration <= 0 or min(args.rate) <= 0 or args.duration * sum(args.rate) > 1_000_000:
        parser.error("need 0 < rate x duration <= 1,000,000 requests")
    out = run(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
