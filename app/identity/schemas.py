from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.identity.security import DEFAULT_KEY_SCOPES, check_scopes

Role = Literal["owner", "admin", "member", "viewer"]


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    slug: str
    plan: str


class PrincipalOut(BaseModel):
    type: Literal["user", "api_key"]
    id: str
    name: str
    email: str | None = None
    role: Role | None = None


class MeOut(BaseModel):
    organization: OrganizationOut
    principal: PrincipalOut
    scopes: list[str]
    organizations: list[OrganizationOut] = Field(
        default_factory=list, description="Every org the signed-in user belongs to."
    )
    csrf_token: str | None = Field(None, description="Send as X-CSRF-Token (session only).")


def _email(value: str) -> str:
    # Deliberately lenient (internal domains such as .local are fine); normalised to lower case.
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or not domain or " " in value or len(value) > 320:
        raise ValueError("must be an email address like name@example.com")
    return value


Email = Annotated[str, AfterValidator(_email)]


class LoginIn(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024)
    org_id: str | None = Field(None, description="Which org to enter when in several.")


class SwitchOrgIn(BaseModel):
    org_id: str


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_KEY_SCOPES),
        description="Defaults to every scope except admin.",
    )
    expires_at: datetime | None = None

    _scopes = field_validator("scopes")(check_scopes)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key. Shown only once.")


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role = "member"
    name: str = Field("", max_length=200)
    password: str | None = Field(
        None, min_length=8, max_length=1024, description="Initial password for a new user."
    )


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class MemberOut(BaseModel):
    id: str
    user_id: str
    email: str
    name: str
    role: Role
    created_at: datetime
