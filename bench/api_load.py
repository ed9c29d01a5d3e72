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
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Run as a script, bench/ is on sys.path: its seeding and load-generator halves.
from api_load_seed import OrgSeed, SeedSize, libpq, scratch_database, seed  # noqa: E402
from api_load_traffic import HOST, ROUTES, Result, drive, plan_requests  # noqa: E402

REDIS = os.environ.get("ATELIER_TEST_REDIS", "redis://127.0.0.1:6379/0")

# --- the server --------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(pg_url: str, data_dir: Path, workers: int, redis_url: str | None,
               settings: dict[str, str] | None = None,
               ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`atelier serve` on the database, as tests/concurrency/live.py starts it. Of the caller's
    ATELIER_* variables it inherits none: besides its data dir, database, storage, base URL
    and Redis it gets only ``settings``, so a run measures what it names."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data_dir), ATELIER_DATABASE_URL=pg_url,
               ATELIER_STORAGE_URL=f"file://{data_dir / 'storage'}",
               ATELIER_BASE_URL=f"http://{HOST}:{port}", PYTHONPATH=str(ROOT))
    if redis_url:
        env.update(ATELIER_REDIS_URL=redis_url, ATELIER_BROKER_URL=redis_url)
    env.update(settings or {})
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


def _cpu_times() -> tuple[float, float, float]:
    """(busy, stolen, total) jiffies of the whole machine, from /proc/stat. Stolen: time the
    hypervisor gave this VM's CPUs to someone else, counted as busy (we could not run)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0.0
    return sum(fields) - idle, steal, sum(fields)


def _process_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of a process and of each of its children (the server's uvicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    times: dict[int, float] = {}
    for p in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
        try:
            parts = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            times[p] = (float(parts[11]) + float(parts[12])) / tick
        except (FileNotFoundError, IndexError):
            pass
    return times


def _sessions_opened(pg_url: str) -> int:
    """PostgreSQL sessions ever opened on the bench database, this reading's own included.
    Each new one forks a backend that loads its catalog caches on first use: a pool that
    closes and reopens connections under load pays that per connection."""
    import psycopg

    # A backend reports its counters at most once a second (PostgreSQL 15's shared stats).
    time.sleep(1.1)
    with psycopg.connect(libpq(pg_url)) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


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
          f"the run (stolen by the host {extra['stolen_pct']:.1f}%); server CPU "
          f"{extra['server_cpu_pct']:.0f}% of one core "
          f"({extra['workers']} worker(s): {extra['worker_cpu_pct']}); generator CPU "
          f"{extra['generator_cpu_pct']:.1f}% of one core, {extra['connections']} connections, "
          f"{extra['db_sessions_opened']} PostgreSQL sessions opened, "
          f"max send lag {extra['max_send_lag_ms']:.1f} ms (at {extra['max_send_lag_at_s']:.1f} "
          f"s); slowest answer due at {extra['slowest_at_s']:.1f} s")


def _load(args: argparse.Namespace, rate: float, orgs: list[OrgSeed], port: int,
          server: subprocess.Popen[bytes], pg_url: str) -> dict[str, Any]:
    """One open-loop run at ``rate``; prints and returns its figures."""
    sessions0 = _sessions_opened(pg_url)
    plan = plan_requests(orgs, rate, args.warmup + args.duration, port, random.Random(1))
    load_before = os.getloadavg()
    busy0, steal0, total0 = _cpu_times()
    server0 = _process_cpu_s(server.pid)
    results, stats = asyncio.run(drive(plan, port, args.check))
    busy1, steal1, total1 = _cpu_times()
    sessions = _sessions_opened(pg_url) - sessions0 - 1  # less the second reading's own
    # Per process: the kernel hands each new connection to one worker, and an uneven split
    # can saturate one worker while the other idles.
    spent = {p: s - server0.get(p, 0.0) for p, s in _process_cpu_s(server.pid).items()}
    measured = [r for r in results if r.due >= args.warmup]
    table = summarize(measured, args.duration)
    answered = [r for r in measured if r.latency is not None]
    slowest = max(answered, key=lambda r: r.latency or 0.0).due if answered else 0.0
    wall = stats["wall_s"]
    extra = {
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine_busy_pct": 100 * (busy1 - busy0) / max(total1 - total0, 1),
        "stolen_pct": 100 * (steal1 - steal0) / max(total1 - total0, 1),
        "server_cpu_pct": 100 * sum(spent.values()) / wall, "workers": args.workers,
        "worker_cpu_pct": " + ".join(  # the busiest children: the workers, not the tracker
            f"{100 * s / wall:.0f}%" for s in sorted(
                (s for p, s in spent.items() if p != server.pid), reverse=True)[:args.workers]),
        "generator_cpu_pct": 100 * stats["generator_cpu_s"] / wall,
        "connections": stats["connections"], "db_sessions_opened": sessions,
        "max_send_lag_ms": stats["max_send_lag_ms"],
        "max_send_lag_at_s": stats["max_send_lag_at_s"], "slowest_at_s": slowest,
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
        settings = dict(args.setting)
        with api_server(pg_url, data_dir, args.workers, redis_url, settings) as (base, proc):
            port = int(base.rsplit(":", 1)[1])
            for i, rate in enumerate(args.rate):
                if i:
                    time.sleep(5)  # let the server finish what the last run left it
                runs.append(_load(args, rate, orgs, port, proc, pg_url))
    return {"routes": runs[0]["routes"], "runs": runs, "seed": size.__dict__,
            "redis": bool(redis_url),
            "settings": dict(args.setting)}


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("ATELIER_"):
        raise argparse.ArgumentTypeError(f"expected ATELIER_NAME=VALUE, got {text!r}")
    return name, value


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
    parser.add_argument("--setting", type=_setting, action="append", default=[],
                        metavar="ATELIER_X=V", help="a server setting, e.g. "
                        "ATELIER_DB_POOL_SIZE=20 (repeatable)")
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
