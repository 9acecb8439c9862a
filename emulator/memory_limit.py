"""One memory limit per execution environment, over all of its processes together.

Lambda limits the whole sandbox (the runtime, every extension and whatever they spawn) to the
function's memory size and never lets an invocation succeed above it. Two ways to do that:

"cgroup"   the kernel enforces it. Each environment gets a memory cgroup of its own, created
           under the emulator's own cgroup (`/proc/self/cgroup`), limited to the memory size
           with no swap. Every process joins it between fork and exec (`preexec`), so it is
           charged from its first instruction and what it spawns inherits the cgroup. The
           runtime is made the OOM killer's choice (`oom_score_adj` 1000): Lambda kills the
           function, not its extensions. Max Memory Used is the cgroup's peak. Needs Linux,
           root and a writable memory controller (cgroup v1, or v2 with the memory
           controller enabled for the emulator's children).
"sampling" the fallback: the sum of every process's peak RSS (VmHWM) is read every 20 ms while
           an invocation runs and once more before the caller is answered; above the memory
           size the runtime is killed. See `SandboxProcesses`.

"auto" picks "cgroup" where it works (probed once per process), else says why not.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MEMORY_LIMIT_MODES = ("auto", "cgroup", "sampling")
MIB = 1024 * 1024
CGROUP_PREFIX = "lambdascope-"
# The runtime is the first process the OOM killer picks in its cgroup (range -1000..1000).
RUNTIME_OOM_SCORE_ADJ = b"1000"
REMOVE_TIMEOUT_S = 1.0
_STALE_RE = re.compile(rf"^{CGROUP_PREFIX}(\d+)-\d+$")


class MemoryLimitError(ValueError):
    """`memory_limit = "cgroup"` was asked for where the kernel cannot enforce it."""


# --- pure -------------------------------------------------------------------------------------


def own_cgroup_paths(proc_self_cgroup: str) -> tuple[str | None, str | None]:
    """(cgroup v1 memory hierarchy path, cgroup v2 path) from `/proc/self/cgroup` text.

    v1 lines are `ID:controllers:/path` (the controllers comma-separated); the v2 line is
    `0::/path`. Either is None when absent."""
    v1: str | None = None
    v2: str | None = None
    for line in proc_self_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v1, v2


@dataclass(frozen=True)
class Mount:
    """One line of `/proc/self/mountinfo`, the fields that locate a cgroup hierarchy."""

    root: str  # which folder of the filesystem is mounted
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of `/proc/self/mountinfo` text (lines that do not parse are skipped)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        mounts.append(
            Mount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=tail[0],
                super_options=tuple(tail[2].split(",")),
            )
        )
    return mounts


def _under_mount(mount: Mount, path: str) -> Path | None:
    """Where `path` (a cgroup path as /proc/self/cgroup names it) is in this mount."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return Path(mount.mount_point + path[len(root) :])


@dataclass(frozen=True)
class CgroupParent:
    """The emulator's own memory cgroup: environments get children of it."""

    version: int  # 1 or 2
    path: Path


def memory_cgroup_dir(proc_self_cgroup: str, mountinfo: str) -> CgroupParent | None:
    """The emulator's own memory cgroup folder, None when it is not mounted. A memory
    controller on a v1 hierarchy cannot be on v2 as well (a hybrid system). Pure."""
    v1, v2 = own_cgroup_paths(proc_self_cgroup)
    mounts = parse_mountinfo(mountinfo)
    if v1 is not None:
        for mount in mounts:
            if mount.fstype == "cgroup" and "memory" in mount.super_options:
                found = _under_mount(mount, v1)
                if found is not None:
                    return CgroupParent(1, found)
        return None
    if v2 is not None:
        for mount in mounts:
            if mount.fstype == "cgroup2":
                found = _under_mount(mount, v2)
                if found is not None:
                    return CgroupParent(2, found)
    return None


def oom_kill_count(text: str) -> int:
    """The `oom_kill N` counter of v1 `memory.oom_control` or v2 `memory.events`; 0 without."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "oom_kill" and parts[1].isdigit():
            return int(parts[1])
    return 0


def ceil_mb(size_bytes: int) -> int:
    """Bytes as Lambda's whole MB, rounded up, at least 1."""
    return max(1, math.ceil(size_bytes / MIB))


# --- one environment's cgroup ---------------------------------------------------------------

_names = itertools.count(1)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


class EnvironmentCgroup:
    """The memory cgroup of one execution environment. Create with :func:`create`."""

    def __init__(self, parent: CgroupParent, path: Path, memory_size_mb: int) -> None:
        self.parent = parent
        self.path = path
        self.memory_size_mb = memory_size_mb
        self._procs = os.fsencode(path / "cgroup.procs")
        # A preexec step must not format a path after fork: it is ready here.
        self._join_failed = os.fsencode(f"lambdascope: cannot join the memory cgroup {path}\n")
        self._lock = threading.Lock()
        self._removed = False
        v1 = parent.version == 1
        self._peak_file = path / ("memory.max_usage_in_bytes" if v1 else "memory.peak")
        self._events_file = path / ("memory.oom_control" if v1 else "memory.events")
        self._oom_kills_seen = 0

    @classmethod
    def create(cls, parent: CgroupParent, memory_size_mb: int) -> EnvironmentCgroup:
        """A new child cgroup limited to `memory_size_mb`, no swap. Raises OSError."""
        path = parent.path / f"{CGROUP_PREFIX}{os.getpid()}-{next(_names)}"
        path.mkdir()
        limit = str(memory_size_mb * MIB)
        try:
            if parent.version == 1:
                _write(path / "memory.limit_in_bytes", limit)
                # Without it the kernel would swap instead of killing (where swap exists);
                # it must not be below memory.limit_in_bytes, hence written after it.
                if (path / "memory.memsw.limit_in_bytes").exists():
                    _write(path / "memory.memsw.limit_in_bytes", limit)
            else:
                _write(path / "memory.max", limit)
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", "0")
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            raise
        return cls(parent, path, memory_size_mb)

    def preexec(self, *, runtime: bool) -> Callable[[], None]:
        """For `subprocess.Popen(preexec_fn=...)`: runs in the child between fork and exec,
        so the process is in the cgroup before its first instruction. Plain syscalls only
        (other threads of the emulator may have held locks at fork). A child that cannot
        join says so on its output and exits 127: the environment then fails visibly
        instead of running without its limit."""
        procs, failed = self._procs, self._join_failed

        def join() -> None:
            try:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, b"%d" % os.getpid())
                finally:
                    os.close(fd)
            except BaseException:
                os.write(2, failed)
                os._exit(127)
            if runtime:
                # Lambda kills the function, not its extensions, when the sandbox is full.
                with contextlib.suppress(OSError):
                    fd = os.open(b"/proc/self/oom_score_adj", os.O_WRONLY)
                    try:
                        os.write(fd, RUNTIME_OOM_SCORE_ADJ)
                    finally:
                        os.close(fd)

        return join

    def peak_bytes(self) -> int:
        """The most memory the environment used at once (what the kernel charged to it,
        the page cache of files it read included); 0 when unreadable."""
        try:
            return int(_read(self._peak_file).split()[0])
        except (OSError, ValueError, IndexError):
            pass
        try:  # v2 before Linux 5.19 has no memory.peak: the usage now is the best there is
            return int(_read(self.path / "memory.current").split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def oom_kills(self) -> int:
        try:
            return oom_kill_count(_read(self._events_file))
        except OSError:
            return 0

    def new_oom_kill(self) -> bool:
        """Whether the kernel OOM-killed a process here since the last call."""
        count = self.oom_kills()
        new, self._oom_kills_seen = count > self._oom_kills_seen, count
        return new

    def restart(self) -> None:
        """For an init started again in the same environment: forget the last one's peak
        (v1 only; v2's memory.peak cannot be reset for every reader) and kills."""
        if self.parent.version == 1:
            with contextlib.suppress(OSError):
                _write(self._peak_file, "0")
        self._oom_kills_seen = self.oom_kills()

    def remove(self, timeout_s: float = REMOVE_TIMEOUT_S) -> bool:
        """Remove the cgroup once its processes are gone, killing any left (a process a
        handler spawned in a session of its own). Idempotent; False if it is still there
        after `timeout_s` (logged)."""
        with self._lock:
            if self._removed:
                return True
            deadline = time.monotonic() + timeout_s
            while True:
                for pid in self._pids():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    self.path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                        log.warning("cannot remove the memory cgroup %s: %s", self.path, exc)
                        return False
                    time.sleep(0.01)
                    continue
                self._removed = True
                return True

    def _pids(self) -> list[int]:
        try:
            return [int(x) for x in _read(self.path / "cgroup.procs").split()]
        except (OSError, ValueError):
            return []


# --- can this machine do it? ------------------------------------------------------------------

_probe_lock = threading.Lock()
_probe_result: tuple[CgroupParent | None, str] | None = None


def probe_cgroup() -> tuple[CgroupParent | None, str]:
    """(where environments' cgroups go, or None and why not). Tries once per process."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


def _probe() -> tuple[CgroupParent | None, str]:
    if not sys.platform.startswith("linux"):
        return None, f"memory cgroups need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return None, "memory cgroups need root (run the emulator as root, or in a container)"
    try:
        parent = memory_cgroup_dir(_read(Path("/proc/self/cgroup")), _read_mountinfo())
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup or /proc/self/mountinfo: {exc.strerror}"
    if parent is None:
        return None, "no memory cgroup hierarchy is mounted for the emulator's cgroup"
    if parent.version == 2:
        why = _enable_v2_memory(parent.path)
        if why:
            return None, why
    try:
        EnvironmentCgroup.create(parent, 128).remove()
    except OSError as exc:
        return None, f"cannot create a memory cgroup under {parent.path}: {exc.strerror}"
    _remove_stale(parent.path)
    return parent, ""


def _read_mountinfo() -> str:
    return _read(Path("/proc/self/mountinfo"))


def _enable_v2_memory(path: Path) -> str:
    """Enable the memory controller for the children of `path`; why not, or ""."""
    try:
        if "memory" not in _read(path / "cgroup.controllers").split():
            return f"the memory controller is not available in {path}"
        if "memory" in _read(path / "cgroup.subtree_control").split():
            return ""
        _write(path / "cgroup.subtree_control", "+memory")
    except OSError as exc:
        # EBUSY: cgroup v2 lets a cgroup that has processes (the emulator) have no
        # controllers for its children.
        return (
            f"cannot enable the memory controller for the children of {path} "
            f"({exc.strerror}); start the emulator in a cgroup that allows it"
        )
    return ""


def _remove_stale(parent: Path) -> None:
    """Empty cgroups left by emulators that were killed before they could remove them."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            match = _STALE_RE.match(child.name)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(match.group(1)), 0)
                continue  # its emulator still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            with contextlib.suppress(OSError):
                child.rmdir()  # refused while processes are in it


def resolve_memory_limit(mode: str) -> str:
    """The mode environments use ("cgroup" or "sampling") for a `memory_limit` setting.
    "auto" falls back to sampling (logged); "cgroup" raises MemoryLimitError where the
    kernel cannot do it."""
    if mode not in MEMORY_LIMIT_MODES:
        raise MemoryLimitError(f"memory_limit {mode!r}: use one of {MEMORY_LIMIT_MODES}")
    if mode == "sampling":
        return "sampling"
    parent, why = probe_cgroup()
    if parent is not None:
        return "cgroup"
    if mode == "cgroup":
        raise MemoryLimitError(
            f"memory_limit 'cgroup' is not possible here: {why}; "
            "use memory_limit = 'sampling' or 'auto'"
        )
    log.warning(
        "memory is limited by sampling every process's peak RSS, not by the kernel (%s)", why
    )
    return "sampling"


def create_environment_cgroup(memory_size_mb: int) -> EnvironmentCgroup:
    """A cgroup for one environment. Raises OSError (or MemoryLimitError when the probe
    found none: call only after `resolve_memory_limit` said "cgroup")."""
    parent, why = probe_cgroup()
    if parent is None:
        raise MemoryLimitError(f"no memory cgroup: {why}")
    return EnvironmentCgroup.create(parent, memory_size_mb)
