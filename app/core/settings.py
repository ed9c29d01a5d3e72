"""One settings class for the whole service, read from ``ATELIER_*`` environment variables.

In the embedded default every location derives from ``data_dir`` so the CLI and a running
``atelier up`` pointed at the same data dir see the same world.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.secret_file import MIN_SECRET_CHARS, SECRET_FILE, load_or_create_secret

# The shared secret older releases shipped with: public, so never accepted again.
PUBLIC_OLD_SECRET_KEY = "dev-insecure-secret-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATELIER_", extra="ignore")

    mode: Literal["development", "production"] = Field(
        "development", description="`production` refuses insecure defaults."
    )
    data_dir: Path = Field(Path(".atelier"), description="Root of every embedded location.")
    database_url: str = Field("", description="SQLAlchemy URL; default SQLite in data_dir.")
    broker_url: str = Field("", description="Celery broker; default SQLAlchemy over SQLite.")
    broker_poll_interval_s: float = Field(
        1.0, gt=0, description="SQLite broker: how often an idle worker polls when no wake-up "
        "reaches it (publishers wake it at once; this is the fallback)."
    )
    redis_url: str = Field("", description="Redis for events and rate limits (optional).")
    storage_url: str = Field("", description="`file:///path` or `s3://bucket[/prefix]`.")
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint (MinIO, moto).")
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint written into presigned URLs that browsers use."
    )
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key_id: str | None = Field(None, description="S3 access key.")
    s3_secret_access_key: str | None = Field(None, description="S3 secret key.")
    s3_path_style: bool = Field(True, description="Path-style addressing (MinIO, moto).")
    secret_key: str = Field(
        "", description="Signs local storage URLs; default a random one kept in data_dir."
    )
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL of the API.")
    session_cookie_secure: bool = Field(False, description="Mark session cookies Secure.")
    session_max_age_s: int = Field(14 * 24 * 3600, description="Session lifetime.")
    api_key_max_lifetime_days: int = Field(
        366, ge=1, le=3660, description="Latest `expires_at` an API key may be given, in days."
    )
    scratch_dir: Path | None = Field(None, description="Worker scratch; default data_dir/scratch.")
    dispatch_slots: int = Field(
        1, ge=1, description="Jobs sent to the broker but not yet started (~ number of GPUs)."
    )
    redispatch_after_s: float = Field(
        120, description="A dispatched job not started after this long is sent again."
    )
    heartbeat_timeout_s: float = Field(
        120, description="A running job whose worker is silent this long is requeued."
    )
    reconcile_interval_s: float = Field(10, description="How often the reconciler runs.")
    rate_limit_per_key: str = Field(
        "600/minute", description="Requests per API key or user, `N/second|minute|hour` or off."
    )
    rate_limit_per_org: str = Field("1200/minute", description="Requests per organization.")
    rate_limit_backend: Literal["auto", "redis", "memory"] = Field(
        "auto", description="`auto`: Redis when redis_url is set, else in-process."
    )
    webhook_max_attempts: int = Field(8, ge=1, description="Delivery attempts per event.")
    webhook_backoff_base_s: float = Field(30, gt=0, description="First retry delay (doubles).")
    webhook_backoff_cap_s: float = Field(3600, gt=0, description="Longest retry delay.")
    webhook_timeout_s: float = Field(10, gt=0, description="HTTP timeout per delivery.")
    egress_allow: str = Field(
        "", description="CIDRs and/or host names (comma-separated) that tenant-given URLs may "
        "reach although they are not public (development and tests only)."
    )
    db_pool_size: int = Field(
        10, ge=1, description="PostgreSQL: connections each process keeps open per pool."
    )
    db_max_overflow: int = Field(
        20, ge=0, description="PostgreSQL: extra connections a pool may open under load (the "
        "API's pool keeps them open once opened; the worker's closes them). An API process lets "
        "at most db_pool_size + db_max_overflow requests use the database at once; the rest "
        "wait their turn without holding a thread."
    )
    api_warm_up: bool = Field(
        True, description="PostgreSQL: before an API process takes traffic, open its pool's "
        "connections and run its busiest queries once on each (app.core.warmup)."
    )
    db_statement_timeout_ms: int = Field(
        30_000, ge=0, description="PostgreSQL: longest API statement (0 = none; worker exempt)."
    )
    db_idle_in_transaction_timeout_ms: int = Field(
        60_000, ge=0, description="PostgreSQL: an API transaction idle this long is ended."
    )
    stream_max_per_principal: int = Field(
        10, ge=0, description="Open event streams per API key or user (0 = no limit)."
    )
    stream_max_per_org: int = Field(
        100, ge=0, description="Open event streams per organization (0 = no limit)."
    )
    gpu_seconds_per_step: float = Field(
        1.0, gt=0, description="Expected GPU seconds per training step: a starting job "
        "reserves steps x this of its org's monthly GPU quota."
    )
    caption_batch_size: int = Field(
        8, ge=1, le=256, description="Images a caption job captions (and commits) at once; a "
        "cancel or a worker loss costs at most one batch."
    )
    login_limit_per_account: str = Field(
        "10/15minute", description="Failed sign-ins per email, `N/[K]second|minute|hour` or off."
    )
    login_limit_per_address: str = Field(
        "50/15minute", description="Failed sign-ins per client address."
    )
    password_reset_limit_per_account: str = Field(
        "5/hour", description="Reset emails per address asked for (more are silently dropped)."
    )
    password_reset_ttl_s: int = Field(3600, gt=0, description="Password-reset link lifetime.")
    invitation_ttl_s: int = Field(7 * 24 * 3600, gt=0, description="Invitation link lifetime.")
    mail_backend: Literal["console", "file", "smtp"] = Field(
        "console", description="`console` logs mail, `file` writes data_dir/mail, `smtp` sends."
    )
    mail_from: str = Field("Atelier <no-reply@atelier.local>", description="From address.")
    smtp_host: str = Field("", description="SMTP server (mail_backend=smtp).")
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_user: str = Field("", description="SMTP user (empty: no login).")
    smtp_password: str = Field("", description="SMTP password.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        data = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data / 'atelier.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data / 'broker.db'}"
        if not self.storage_url:
            self.storage_url = f"file://{data / 'storage'}"
        if self.scratch_dir is None:
            self.scratch_dir = data / "scratch"
        self._resolve_secret(data)
        return self

    def _resolve_secret(self, data: Path) -> None:
        """An explicit secret, else (development only) the data dir's own random one."""
        hint = ("Set ATELIER_SECRET_KEY to a long random value, e.g. ATELIER_SECRET_KEY=$(python"
                " -c 'import secrets; print(secrets.token_urlsafe(48))')")
        if self.secret_key == PUBLIC_OLD_SECRET_KEY:
            raise ValueError(f"ATELIER_SECRET_KEY is the old public development value. {hint}")
        if self.mode == "production":
            if not self.secret_key:
                raise ValueError(f"production mode needs an explicit ATELIER_SECRET_KEY. {hint}")
            if len(self.secret_key) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"ATELIER_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters. {hint}"
                )
        elif not self.secret_key:
            self.secret_key = load_or_create_secret(data)

    @property
    def secret_file(self) -> Path:
        return self.data_dir.resolve() / SECRET_FILE

    @property
    def api_db_slots(self) -> int:
        """Requests an API process lets use the database at once (app.core.deps), and so the
        connections its pool keeps (app.core.db)."""
        return self.db_pool_size + self.db_max_overflow

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.storage_url.startswith("file://"):
            Path(self.storage_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
