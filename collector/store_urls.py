"""Store URLs: ``chdb:///abs/path`` (embedded) or ``http(s)://...`` (a server), turned into a
clickhouse-connect DSN, shown without passwords, and the errors that name what to fix.

Pure except for creating the embedded store's directory.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STORE_PATH",
    "DEFAULT_STORE_URL",
    "StoreError",
    "database_in_url",
    "open_failure",
    "redact_url",
    "resolve_url",
]

DEFAULT_STORE_PATH = Path("~/.lambdascope/store")
DEFAULT_STORE_URL = "chdb://" + str(DEFAULT_STORE_PATH.expanduser())


class StoreError(Exception):
    """The store could not be opened, written or read; the message names the URL and a fix."""


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def resolve_url(url: str) -> tuple[str, dict[str, Any]]:
    """Normalise a store URL into a clickhouse-connect DSN and its extra client arguments.

    ``chdb://`` alone means the default path; ``chdb:///abs/path`` and ``chdb://~/path`` are
    accepted. The embedded data directory is created (with parents) here.
    """
    if url.startswith("chdb:"):
        location = url[len("chdb:") :].removeprefix("//")
        path = Path(location).expanduser() if location else DEFAULT_STORE_PATH.expanduser()
        if not path.is_absolute():
            raise StoreError(
                f"store URL {url!r} names a relative path: use chdb:///absolute/path "
                f"(three slashes), e.g. chdb://{Path.cwd() / location}"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the embedded store directory {path} for {url!r}: {exc.strerror}. "
                "Choose a writable path with --store chdb:///path."
            ) from exc
        if not os.access(path, os.W_OK | os.X_OK):
            raise StoreError(
                f"the embedded store directory {path} is not writable: "
                "fix its permissions or choose another path with --store chdb:///path."
            )
        return f"chdb://{path}", {}
    if url.startswith(("http://", "https://")):
        # One client serves many threads: per-query sessions would otherwise collide
        # ("session is locked") on a server. The database is chosen per client, not by the
        # URL's path (see database_in_url).
        parts = urllib.parse.urlsplit(url)
        dsn = urllib.parse.urlunsplit(parts._replace(path=""))
        return dsn, {"autogenerate_session_id": False, "connect_timeout": 5}
    raise StoreError(
        f"unsupported store URL {redact_url(url)!r}: use chdb:///abs/path (embedded) or "
        "http(s)://user:password@host:8123 (a ClickHouse server)"
    )


def database_in_url(url: str) -> str | None:
    """The database named by a server URL's path (``http://host:8123/mydb``), if any."""
    if not url.startswith(("http://", "https://")):
        return None
    name = urllib.parse.urlsplit(url).path.strip("/")
    return name or None


def open_failure(shown_url: str, exc: Exception) -> str:
    text = str(exc)
    if "EmbeddedServer already initialized" in text:
        return (
            f"cannot open {shown_url}: this process already holds another embedded store, and "
            "chDB allows one data path per process. Use that store (another --database) or "
            "run a separate collector process."
        )
    if shown_url.startswith("chdb:"):
        return (
            f"cannot open the embedded store {shown_url}: {text}. Is another collector using "
            "this path? Stop it, read through its API, or choose another --store path."
        )
    return (
        f"cannot reach the ClickHouse server at {shown_url}: {text}. Check that it runs and "
        "that the URL, user and password are right."
    )
