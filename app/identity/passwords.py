"""The password policy: one function, used wherever a person chooses a password.

Long enough, and not on a list of passwords attackers try first (app/identity/common_passwords.txt,
see its header for the source). No composition rules: length and a blocklist are what NIST
SP 800-63B asks for, and they do not push people towards ``Password1!``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from app.core.errors import Unprocessable

MIN_LENGTH = 10
MAX_LENGTH = 1024
_LIST = Path(__file__).with_name("common_passwords.txt")
# "password123", "dragon2024!": a listed password with digits or symbols stuck on the end.
_TAIL = re.compile(r"[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#"))


def problem_with(password: str, *, email: str | None = None) -> str | None:
    """Why this password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    lowered = password.lower()
    listed = common_passwords()
    stem = _TAIL.sub("", lowered)
    if lowered in listed or (len(stem) >= 4 and stem in listed) or len(set(lowered)) < 3:
        return "This password is too common; choose one that is harder to guess."
    if email and lowered in (email.lower(), email.lower().partition("@")[0]):
        return "Do not use your email address as your password."
    return None


def check_password(password: str, *, email: str | None = None, field: str = "password") -> None:
    """Raise a 422 naming the reason when the password breaks the policy."""
    reason = problem_with(password, email=email)
    if reason is not None:
        raise Unprocessable(f"{field}: {reason}",
                            errors=[{"loc": ["body", field], "msg": reason}])
