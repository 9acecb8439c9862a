"""Tokens from the environment or a file, never from a command line that every local user
can read (``ps``, ``/proc/<pid>/cmdline``). Standard library only: the CLI's readers and the
collector share it."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["INGEST_TOKEN_ENV", "READ_TOKEN_ENV", "TokenError", "resolve_token"]

INGEST_TOKEN_ENV = "LAMBDASCOPE_TOKEN"
"""The collector's ingest token (functions send with it)."""
READ_TOKEN_ENV = "LAMBDASCOPE_READ_TOKEN"
"""The collector's read API token (analyze, tui, query read with it)."""


class TokenError(Exception):
    """A token file that cannot be used, or a token given twice; the message says the fix."""


def resolve_token(
    *,
    flag_value: str | None,
    file: Path | None,
    env: Mapping[str, str],
    env_name: str,
    flag: str,
) -> tuple[str | None, list[str]]:
    """The token from ``--X-file``, the ``--X`` flag or the environment (in that order), and
    warnings to print: a token on the command line is readable by every local user (``ps``),
    and so is a token file that others may read.

    Raises :class:`TokenError` for a file that cannot be read or is empty, or both the flag
    and the file.
    """
    warnings: list[str] = []
    if file is not None and flag_value:
        raise TokenError(f"give {flag} or {flag}-file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
            mode = file.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"cannot read the token file {file} ({flag}-file): {exc}") from None
        value = text.strip()
        if not value:
            raise TokenError(f"the token file {file} ({flag}-file) is empty")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"the token file {file} can be read by other users: chmod 600 {file}")
        return value, warnings
    if flag_value:
        warnings.append(
            f"{flag} on the command line is visible to every user of this machine (ps, "
            f"/proc): set {env_name} in the environment or use {flag}-file FILE instead"
        )
        return flag_value, warnings
    value = env.get(env_name, "").strip()
    return value or None, warnings
