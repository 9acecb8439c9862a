"""Which process holds an embedded store, so a reader can say so instead of chDB's lock error.

An embedded store is one ClickHouse engine; it locks ``<path>/status`` (``flock``) and writes
its process id there. Only one process may open the path, so a reader that finds it locked
names the holder and points at that process's read API.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
from pathlib import Path

__all__ = ["StoreInUse", "check_store_free", "holder_of", "redact_command"]

_SECRET_FLAGS = ("--token", "--read-token")


class StoreInUse(Exception):
    """The embedded store is open in another process; the message names it and the fix."""


def check_store_free(url: str) -> None:
    """Raise :class:`StoreInUse` when ``url`` is an embedded store another process holds."""
    if not url.startswith("chdb:"):
        return
    path = Path(url.removeprefix("chdb://").removeprefix("chdb:") or ".")
    holder = holder_of(path)
    if holder is None:
        return
    pid, command = holder
    who = f"process {pid}" + (f" ({command})" if command else "") if pid else "another process"
    collector = _collector_url(command, pid) if command else None
    fix = (
        f"read through its API with --collector {collector}"
        if collector
        else "read through that collector's API with --collector URL"
    )
    raise StoreInUse(
        f"the store {path} is in use by {who}: {fix}, or stop it to read the store directly"
    )


def holder_of(path: Path) -> tuple[int | None, str] | None:
    """``(pid, command line)`` of the process holding the store at ``path``, None when free."""
    status = path / "status"
    try:
        handle = os.open(status, os.O_RDONLY)
    except OSError:
        return None  # no store there yet (or unreadable): let opening it report that
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
        text = os.read(handle, 4096).decode("utf-8", "replace")
    finally:
        os.close(handle)
    match = re.search(r"^PID:\s*(\d+)", text, re.MULTILINE)
    pid = int(match.group(1)) if match else None
    if pid == os.getpid():
        return None  # this process has it open already, and chDB shares it within a process
    return pid, _command_line(pid) if pid else ""


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return redact_command([part.decode("utf-8", "replace") for part in raw.split(b"\0") if part])


def redact_command(argv: list[str]) -> str:
    """The command line with token values and URL passwords hidden: it goes to a terminal."""
    shown: list[str] = []
    hide_next = False
    for part in argv:
        if hide_next:
            shown.append("***")
            hide_next = False
            continue
        name, eq, _ = part.partition("=")
        if name in _SECRET_FLAGS:
            hide_next = not eq
            shown.append(f"{name}=***" if eq else part)
            continue
        shown.append(re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", r"\1***@", part))
    return shlex.join(shown)


def _collector_url(command: str, pid: int | None = None) -> str | None:
    """The read API URL of a ``lambdascope collector`` command line; with ``--port 0`` (the
    system chose) the port it listens on, when ``/proc`` shows exactly one."""
    argv = shlex.split(command)
    if "collector" not in argv:
        return None
    host, port, scheme = "127.0.0.1", "4320", "http"
    for i, part in enumerate(argv):
        name, eq, value = part.partition("=")
        if not eq and i + 1 < len(argv):
            value = argv[i + 1]
        if name == "--host":
            host = value
        elif name == "--port":
            port = value
        elif name == "--tls-cert":
            scheme = "https"
    if port == "0":
        ports = listening_ports(pid) if pid else []
        if len(ports) != 1:
            return None
        port = str(ports[0])
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def listening_ports(pid: int) -> list[int]:
    """The TCP ports process ``pid`` listens on (Linux ``/proc``; empty elsewhere)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address, state 0A (LISTEN), inode
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)
