"""Logins for ``idia web`` (docs/security.md): ``user:password`` lines, checked in constant
time. Passwords come from a file or the environment, never from the command line."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping, Sequence

from idia.errors import IdiaError


class LoginsError(IdiaError, ValueError):
    """A logins line is not ``user:password``."""


def read_logins(lines: Sequence[str]) -> dict[str, str]:
    """``user:password`` lines (blank lines and ``#`` comments skipped) -> {user: password}."""
    logins = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.strip().partition(":")
        if not sep or not user or not password:
            raise LoginsError(f"line {number} is not user:password")
        logins[user] = password
    return logins


def login_check(logins: Mapping[str, str]) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` callable: compares SHA-256 digests in constant time, and does as much
    work for an unknown user as for a known one."""
    digests = {
        user: hashlib.sha256(password.encode()).digest() for user, password in logins.items()
    }
    nobody = hashlib.sha256(os.urandom(16)).digest()

    def check(user: str, password: str) -> bool:
        given = hashlib.sha256((password or "").encode()).digest()
        return hmac.compare_digest(digests.get(user, nobody), given) and user in digests

    return check
