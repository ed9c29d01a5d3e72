from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from app.core.settings import get_settings
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
    expires_at: datetime | None = Field(
        None, description="When the key stops working: in the future and within "
        "ATELIER_API_KEY_MAX_LIFETIME_DAYS (default 366 days). A time without offset is UTC.",
    )

    _scopes = field_validator("scopes")(check_scopes)

    @field_validator("expires_at")
    @classmethod
    def _bounded_expiry(cls, value: datetime | None) -> datetime | None:
        # Normalised to UTC here so no odd offset (year 1 at +14:00) ever reaches the database.
        if value is None:
            return None
        try:
            when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("must be a date between now and the key lifetime limit") from None
        now = datetime.now(UTC)
        days = get_settings().api_key_max_lifetime_days
        if when <= now:
            raise ValueError("must be in the future")
        if when > now + timedelta(days=days):
            raise ValueError(f"must be at most {days} days from now")
        return when


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


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role = "member"


class MemberCreate(InvitationCreate):
    """Adding a member invites them; the invitee chooses their own password."""

    name: str = Field("", max_length=200, description="Ignored: the invitee names themselves.")

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("members are invited and choose their own password; "
                             "do not send one")
        return data


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    role: Role
    invited_by: str
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationOut):
    url: str = Field(description="The one-time invitation link. Shown only once.")


class InvitationOrg(BaseModel):
    name: str


class InvitationInfo(BaseModel):
    """What an invitation link offers, and nothing more."""

    organization: InvitationOrg
    role: Role
    email: str
    account_exists: bool
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=200, description="New account only.")
    password: str | None = Field(None, max_length=1024, description="New account only.")


class PasswordResetRequest(BaseModel):
    email: Email


class PasswordResetComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(max_length=1024)


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
