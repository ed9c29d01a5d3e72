"""Bootstrap data: organizations with an admin, API keys, base models, the demo org."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity import service as identity
from app.identity.security import ALL_SCOPES
from app.models import BaseModel, Captioner, Organization, User
from worker.training.templates import NATIVE_RESOLUTION

DEMO_EMAIL = "demo@atelier.local"
DEMO_BASE_MODEL = "tiny-sd15"
DEMO_CAPTIONERS = {"tiny-sentence": "sentence", "tiny-tags": "tags"}


@dataclass
class SeededOrg:
    org: Organization
    email: str
    password: str
    # False when the email already had an account: it joins as owner with its own password.
    new_account: bool = True


def create_org_with_admin(db: Session, name: str, email: str, password: str) -> SeededOrg:
    org = identity.create_organization(db, name)
    existing = db.scalar(select(User.id).where(User.email == email.strip().lower()))
    user = identity.get_or_create_user(db, email, password)
    identity.add_member(db, org, user, "owner")
    return SeededOrg(org, email, password, new_account=existing is None)


def register_base_model(
    db: Session, key: str, source: str, architecture: str, name: str | None = None,
    resolution: int | None = None,
) -> BaseModel:
    """`resolution` is the model's native size; None = the architecture's (512 / 1024)."""
    native = resolution or NATIVE_RESOLUTION[architecture]
    row = db.scalar(select(BaseModel).where(BaseModel.key == key))
    if row is None:
        row = BaseModel(key=key, name=name or key, architecture=architecture, source=source,
                        resolution=native)
        db.add(row)
    else:
        row.source, row.architecture, row.resolution = source, architecture, native
    db.flush()
    return row


def build_tiny_base_model(db: Session, key: str, architecture: str, models_dir: Path) -> BaseModel:
    # Imported here: building needs torch, which only the worker extra installs.
    from worker.training.tiny_models import TINY_RESOLUTION, build_tiny_model

    path = build_tiny_model(models_dir / key, architecture)  # type: ignore[arg-type]
    return register_base_model(db, key, str(path), architecture, name=f"Tiny {architecture} (demo)",
                               resolution=TINY_RESOLUTION)


def register_captioner(db: Session, key: str, source: str, kind: str,
                       name: str | None = None) -> Captioner:
    row = db.scalar(select(Captioner).where(Captioner.key == key))
    if row is None:
        row = Captioner(key=key, name=name or key, kind=kind, source=source)
        db.add(row)
    else:
        row.source, row.kind = source, kind
        row.name = name or row.name
    db.flush()
    return row


def build_tiny_captioner(db: Session, key: str, kind: str, captioners_dir: Path) -> Captioner:
    # Imported here: building needs the worker extra (torch, transformers, onnx).
    from worker.captioning import make_tiny_captioner

    path = make_tiny_captioner(captioners_dir / key, kind)  # type: ignore[arg-type]
    return register_captioner(db, key, str(path), kind, name=f"Tiny {kind} captioner (demo)")


def seed_demo_captioners(db: Session, data_dir: Path) -> list[str]:
    """The demo's tiny captioners (one sentence, one tags) where missing; returns the keys
    built. Run on every `atelier up`, so data dirs seeded before captioning get them too."""
    built = []
    for key, kind in DEMO_CAPTIONERS.items():
        if db.scalar(select(Captioner.id).where(Captioner.key == key)) is None:
            build_tiny_captioner(db, key, kind, data_dir / "captioners")
            built.append(key)
    return built


def demo_password_problem(password: str) -> str | None:
    """Why an operator-chosen demo password is refused (the accounts' password policy)."""
    from app.identity.passwords import problem_with

    return problem_with(password, email=DEMO_EMAIL)


def seed_demo(
    db: Session, data_dir: Path, password: str | None = None
) -> tuple[SeededOrg, str] | None:
    """Create the demo org on first run; returns its login and a fresh API key, else None.
    There is no default password: a random one unless the operator chose one."""
    if db.scalar(select(Organization).limit(1)) is not None:
        return None
    seeded = create_org_with_admin(db, "Demo", DEMO_EMAIL, password or secrets.token_urlsafe(12))
    _, key = identity.create_api_key(db, seeded.org.id, "demo", list(ALL_SCOPES))
    if db.scalar(select(BaseModel).where(BaseModel.key == DEMO_BASE_MODEL)) is None:
        build_tiny_base_model(db, DEMO_BASE_MODEL, "sd15", data_dir / "base-models")
    return seeded, key
