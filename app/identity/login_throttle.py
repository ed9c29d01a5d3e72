"""Sign-in throttling per account (email) and per client address.

Every attempt is counted before the password is checked, and a successful one is taken back,
so the counts are failures (plus refused attempts), and a burst of parallel guesses cannot
slip past the limit between a check and a count. Once a count is over its limit, every
attempt is refused with 429 until the window ends, even one with the right password.
The counters are those of app.integrations.ratelimit: Redis when configured, else in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from app.core.errors import TooManyRequests
from app.identity.security import sha256_hex
from app.integrations import ratelimit
from app.integrations.config import value


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _keys(email: str, address: str) -> list[tuple[str, str, ratelimit.Limit]]:
    out = []
    # The email is hashed: counter names in Redis should not list who is being attacked.
    for what, key, setting in (
        ("account", f"login:acct:{sha256_hex(email.strip().lower())}", "login_limit_per_account"),
        ("address", f"login:addr:{address}", "login_limit_per_address"),
    ):
        limit = ratelimit.parse_limit(value(setting))
        if limit is not None:
            out.append((what, key, limit))
    return out


def _refused(what: str, limit: ratelimit.Limit, retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        f"Too many failed sign-ins for this {what}. Try again in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
        extra={"limit": f"login_per_{what}", "retry_after": retry_after},
    )


@contextmanager
def attempt(email: str, request: Request) -> Iterator[None]:
    """Count a sign-in attempt; refuse it (429) when over a limit; forget it if it succeeds."""
    counted: list[tuple[str, ratelimit.Limit]] = []
    refusal: TooManyRequests | None = None
    for what, key, limit in _keys(email, client_address(request)):
        allowed, retry_after = ratelimit.hit(key, limit)
        counted.append((key, limit))
        if not allowed and refusal is None:
            refusal = _refused(what, limit, retry_after)
    if refusal is not None:
        raise refusal
    yield  # the body raises on a wrong password: the hits then stay counted
    for key, limit in counted:
        ratelimit.undo(key, limit)


def count_address(request: Request) -> None:
    """Count an unauthenticated request that is not a sign-in (a reset request) against the
    client address's budget: 429 once over it. Says nothing about any account."""
    address = client_address(request)
    for what, key, limit in _keys("", address):
        if what == "address":
            allowed, retry_after = ratelimit.hit(key, limit)
            if not allowed:
                raise _refused(what, limit, retry_after)


def forget(email: str, address: str) -> None:
    """Clear both counters (operators unlocking an account, tests cleaning up)."""
    for _, key, limit in _keys(email, address):
        ratelimit.undo(key, limit, times=1_000_000)
