"""Seeding bench/api_load.py's throw-away PostgreSQL database: orgs, keys, jobs with their
checkpoints and validation images, datasets with items and library models, written with COPY."""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PG_ADMIN = os.environ.get("ATELIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


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

    conninfo = libpq(pg_url)
    with psycopg.connect(conninfo) as conn:
        for model, table_rows in rows.items():
            _copy(conn, model.__table__, table_rows)
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum gives a long-lived database
        # Flush the seed's dirty pages now, or the checkpointer writes them during the run.
        conn.execute("CHECKPOINT")
    print(f"seeded: {', '.join(f'{m.__tablename__} {len(r):,}' for m, r in rows.items())}",
          flush=True)
    return orgs


def libpq(url: str) -> str:
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
