"""Who may reach the collector: the refusal to listen on a network without tokens, and the
check of a ClickHouse server read user's grants. Pure functions, tested without starting
anything. Tokens themselves are read by :mod:`lambdascope.collector.tokens`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from lambdascope.collector.tokens import INGEST_TOKEN_ENV, READ_TOKEN_ENV

__all__ = [
    "AccessError",
    "check_exposure",
    "grant_problems",
    "is_loopback",
]


class AccessError(Exception):
    """A configuration that would expose the collector or cannot be used; says the fix."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(
    host: str, ingest_token: str | None, read_token: str | None, *, read_open: bool
) -> list[str]:
    """Refuse (:class:`AccessError`) to listen beyond loopback without the tokens that keep
    strangers out; warnings for what is allowed but risky."""
    warnings: list[str] = []
    if not is_loopback(host):
        if ingest_token is None:
            raise AccessError(
                f"refusing to listen on {host} without an ingest token: anyone who reaches "
                f"the port could write. Set {INGEST_TOKEN_ENV} in the environment or pass "
                "--token-file FILE (or listen on 127.0.0.1)."
            )
        if read_token is None and not read_open:
            raise AccessError(
                f"refusing to listen on {host} without a read token: anyone who reaches the "
                f"port could read every function's logs. Set {READ_TOKEN_ENV} in the "
                "environment or pass --read-token-file FILE; --read-open serves reads without "
                "a token (only behind your own authenticating proxy)."
            )
        if read_token is None:
            warnings.append(
                f"WARNING: --read-open: the read API on {host} answers anyone who reaches it, "
                "without a token"
            )
    if ingest_token is not None and ingest_token == read_token:
        warnings.append(
            "the read token equals the ingest token: every function that sends data could "
            "read all of it. Use a different read token."
        )
    return warnings


# -- the read user's grants on a ClickHouse server -----------------------------------------

_GRANT = re.compile(
    r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO (?P<grantee>\S+)"
    r"(?P<option> WITH GRANT OPTION)?$",
    re.IGNORECASE,
)
_ROLE_GRANT = re.compile(r"^GRANT (?P<roles>[^ ]+(?:, [^ ]+)*) TO \S+", re.IGNORECASE)
#: Privileges that only read the lambdascope database (on that database).
_READ_PRIVILEGES = {"SELECT", "SHOW", "SHOW TABLES", "SHOW COLUMNS", "SHOW DATABASES"}


def grant_problems(grant_lines: Iterable[str], database: str) -> list[str]:
    """What ``SHOW GRANTS`` (one statement a line) allows beyond reading ``database``.

    Empty when the user may only read that database (``GRANT SELECT ON db.* TO user``, or
    SELECT on some of its tables or columns). A role grant counts as a problem: what the role
    allows is not in these lines.
    """
    problems: list[str] = []
    for raw in grant_lines:
        line = raw.strip().rstrip(";")
        if not line or line.upper().startswith("REVOKE "):
            continue  # a revoke only narrows what was granted
        match = _GRANT.match(line)
        if match is None:
            if _ROLE_GRANT.match(line):
                problems.append(f"{line} (a role: its grants are not checked here)")
            else:
                problems.append(line)
            continue
        if match["option"]:
            problems.append(f"{line} (WITH GRANT OPTION lets it grant to others)")
            continue
        target_db = match["target"].split(".", 1)[0].strip('`"')
        if target_db != database:
            problems.append(line)
            continue
        privileges = [_bare_privilege(p) for p in _split_privileges(match["privileges"])]
        if any(p not in _READ_PRIVILEGES for p in privileges):
            problems.append(line)
    return problems


def _split_privileges(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _bare_privilege(privilege: str) -> str:
    """``SELECT(a, b)`` -> ``SELECT``."""
    return privilege.split("(", 1)[0].strip().upper()
