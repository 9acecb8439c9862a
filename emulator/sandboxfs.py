"""Lambda's filesystem view for one execution environment: layers under `/opt` (extensions
in `/opt/extensions/`), the code under `/var/task`, a private `/tmp`, and
`sandbox.localdomain` resolving to the environment's own loopback address.

Where the OS allows it (Linux, root, `unshare` and `mount` from util-linux) every process of
an environment starts in a private mount namespace (`unshare --mount`, propagation private, so
nothing leaks into the host) with bind mounts of:

    code_dir                                   -> /var/task
    <env>/opt   (the layers, merged in order)  -> /opt
    <env>/hosts (host's + sandbox.localdomain) -> /etc/hosts
    <env>/tmp   (empty at init)                -> /tmp        (last: sources may be under /tmp)

The runtime and each extension get a namespace of their own with the same binds, hence the
same view. `unshare` and `sh` `exec` the target, so its pid (and process group) stays the one
the emulator started. Elsewhere ("none"): layers and code stay at their real paths, `/tmp` is
shared, and `sandbox.localdomain` does not resolve.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ISOLATION_MODES = ("auto", "namespace", "none")
TASK_ROOT = "/var/task"
OPT = "/opt"
HOSTS = "/etc/hosts"

_probe_lock = threading.Lock()
_probe_result: tuple[bool, str] | None = None


class IsolationError(ValueError):
    """`isolation = "namespace"` was asked for where the OS cannot provide it."""


# --- pure -------------------------------------------------------------------------------------


def hosts_text(host_hosts: str, address: str) -> str:
    """The host's /etc/hosts plus `sandbox.localdomain` (and `sandbox`) -> `address`."""
    base = host_hosts if host_hosts.endswith("\n") or not host_hosts else host_hosts + "\n"
    return base + f"{address}\tsandbox.localdomain sandbox\n"


def mount_script(binds: list[tuple[str, str]], cwd: str, mount: str = "mount") -> str:
    """The shell script run inside the new namespace: make every mount private (so nothing
    propagates to the host), bind each (source, target) in order, cd, exec the target.
    Binds are recursive, so what was bound inside a source comes along with it."""
    tool = shlex.quote(mount)
    steps = ["set -e", f"{tool} --make-rprivate /"]
    steps += [f"{tool} --rbind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in binds]
    steps += [f"cd {shlex.quote(cwd)}", 'exec "$@"']
    return "\n".join(steps)


def wrap_argv(binds: list[tuple[str, str]], cwd: str, argv: list[str]) -> list[str]:
    """`argv` run in a private mount namespace with `binds`, from `cwd`. The tools are found
    on the emulator's PATH: the function's own PATH may not have them."""
    script = mount_script(binds, cwd, _tool("mount"))
    return [_tool("unshare"), "--mount", _tool("sh"), "-c", script, "lambda-sandbox", *argv]


@functools.cache
def _tool(name: str) -> str:
    return shutil.which(name) or name


# --- the view of one environment ------------------------------------------------------------


@dataclass
class SandboxView:
    """Where an environment's processes find things, and how to start them."""

    namespaced: bool
    code_dir: Path
    layers: tuple[Path, ...]
    root: Path | None = None  # per-environment folder (namespaced only)

    @property
    def task_root(self) -> str:
        return TASK_ROOT if self.namespaced else str(self.code_dir)

    @property
    def layer_roots(self) -> list[str]:
        """The layer folders as the processes see them."""
        return [OPT] if self.namespaced else [str(layer) for layer in self.layers]

    @property
    def tmp_dir(self) -> Path | None:
        """The host folder that is this environment's /tmp (None when /tmp is shared)."""
        return self.root / "tmp" if self.root is not None else None

    def binds(self) -> list[tuple[str, str]]:
        assert self.root is not None
        # Ordered so no bind hides a later one's source: code and layers may live under
        # /opt, and this environment's own folders under /tmp. The interpreter and the import
        # paths the processes need may live under the host's /tmp too (a virtualenv in a CI
        # checkout): they are bound into the private /tmp first, at the same paths, and come
        # along when it is bound over /tmp.
        private_tmp = self.root / "tmp"
        carried = [
            (path, str(private_tmp / Path(path).relative_to("/tmp"))) for path in host_tmp_paths()
        ]
        return [
            (str(self.code_dir.resolve()), TASK_ROOT),
            (str((self.root / "opt").resolve()), OPT),
            (str(self.root / "hosts"), HOSTS),
            *carried,
            (str(private_tmp), "/tmp"),
        ]

    def runtime_command(self, argv: list[str]) -> tuple[list[str], Path]:
        """(argv, cwd) for the runtime: cwd is the task root, as in Lambda."""
        if not self.namespaced:
            return argv, self.code_dir
        return wrap_argv(self.binds(), TASK_ROOT, argv), Path("/")

    def extension_command(self, path: Path) -> tuple[list[str], Path]:
        """(argv, cwd) for an extension found at `path` (`<layer>/extensions/<name>`): in a
        namespace it is launched as `/opt/extensions/<name>`, from /opt."""
        if not self.namespaced:
            return [str(path)], path.parent.parent
        return wrap_argv(self.binds(), OPT, [f"{OPT}/extensions/{path.name}"]), Path("/")

    def cleanup(self) -> None:
        """Remove the environment's folders (its /tmp included), as Lambda discards them."""
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def keep_tmp(self) -> Path | None:
        """Move this environment's /tmp out of its folders (before :meth:`cleanup`), for the
        environment that takes over after a reset; None when /tmp is shared or gone."""
        if self.root is None or not (self.root / "tmp").is_dir():
            return None
        kept = Path(tempfile.mkdtemp(prefix="lambdascope-reset-tmp-"))
        try:
            (self.root / "tmp").rename(kept / "tmp")
        except OSError:
            shutil.rmtree(kept, ignore_errors=True)
            return None
        return kept


class TmpAfterReset:
    """The /tmp of a function's environments that were reset, for the next one to start with.

    A timeout or a crash during an invocation resets the environment: Lambda restarts its
    runtime and extensions but keeps its disk, so what a handler or an extension left in /tmp
    (a cache, an extension's spool of unsent data) is still there afterwards. The emulator
    replaces a reset environment with a new one; that one starts with this /tmp. A reset is
    announced (:meth:`begin`) before the caller is answered, so a new environment created
    right after waits for the reset's shutdown to finish (bounded) instead of starting empty.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._resetting = 0
        self._waiting = 0  # new environments waiting for a reset in progress
        self._kept: list[Path] = []

    def begin(self) -> None:
        with self._cv:
            self._resetting += 1

    def put(self, kept: Path | None) -> None:
        """End one reset begun with :meth:`begin`, with the /tmp it kept (or None)."""
        with self._cv:
            self._resetting = max(0, self._resetting - 1)
            if kept is not None:
                self._kept.append(kept)
            self._cv.notify_all()

    def take(self, timeout_s: float) -> Path | None:
        """A kept /tmp folder (its parent holds it as ``tmp``), waiting up to ``timeout_s``
        for a reset still shutting down; None when there is none. Each reset in progress is
        waited for by one new environment only: the others start at once."""
        with self._cv:
            if not self._kept and self._resetting > self._waiting:
                self._waiting += 1
                try:
                    self._cv.wait_for(lambda: self._kept or not self._resetting, timeout_s)
                finally:
                    self._waiting -= 1
            return self._kept.pop(0) if self._kept else None

    def clear(self) -> None:
        with self._cv:
            kept, self._kept = self._kept, []
        for folder in kept:
            shutil.rmtree(folder, ignore_errors=True)


def outermost_under_tmp(paths: list[str]) -> list[str]:
    """Pure: the paths below /tmp (not /tmp itself), without those inside another one."""
    below = sorted({os.path.normpath(p) for p in paths if p.startswith("/tmp/")})
    kept: list[str] = []
    for path in below:
        if not any(path.startswith(k + "/") for k in kept):
            kept.append(path)
    return kept


@functools.cache
def host_tmp_paths() -> tuple[str, ...]:
    """What the environment's processes need from the host's /tmp: the interpreter's prefixes
    and the emulator's own import paths (the runtime client, an editable checkout)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix]
    candidates.append(os.path.dirname(os.path.realpath(sys.executable)))
    candidates += [p for p in sys.path if p and os.path.isdir(p)]
    real = [os.path.realpath(p) for p in candidates] + candidates
    return tuple(p for p in outermost_under_tmp(real) if os.path.isdir(p))


def merge_layers(layers: tuple[Path, ...], dest: Path) -> None:
    """Copy the layers into `dest` in order, a later layer's files replacing an earlier one's,
    as Lambda extracts them into /opt."""
    dest.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        shutil.copytree(layer, dest, symlinks=True, dirs_exist_ok=True)


def prepare(
    fn_code_dir: Path,
    layers: tuple[Path, ...],
    address: str,
    namespaced: bool,
    kept_tmp: Path | None = None,
) -> SandboxView:
    """The folders of one environment's view (namespaced), or the shared view. ``kept_tmp``
    (from :meth:`SandboxView.keep_tmp`) becomes its /tmp: the environment follows a reset."""
    if not namespaced:
        return SandboxView(False, fn_code_dir, layers)
    root = Path(tempfile.mkdtemp(prefix="lambdascope-env-"))
    try:
        if kept_tmp is not None:
            (kept_tmp / "tmp").rename(root / "tmp")
            shutil.rmtree(kept_tmp, ignore_errors=True)
        else:
            (root / "tmp").mkdir()
        (root / "tmp").chmod(0o1777)
        for path in host_tmp_paths():  # mount points for what is carried into the private /tmp
            (root / "tmp" / Path(path).relative_to("/tmp")).mkdir(parents=True, exist_ok=True)
        if len(layers) == 1:
            # One layer: bind it as it is (no copy), so edits show up and start-up stays cheap.
            (root / "opt").symlink_to(layers[0].resolve(), target_is_directory=True)
        else:
            merge_layers(layers, root / "opt")
        try:
            host_hosts = Path(HOSTS).read_text(encoding="utf-8", errors="replace")
        except OSError:
            host_hosts = "127.0.0.1\tlocalhost\n"
        (root / "hosts").write_text(hosts_text(host_hosts, address), encoding="utf-8")
    except OSError:
        shutil.rmtree(root, ignore_errors=True)
        if kept_tmp is not None:
            shutil.rmtree(kept_tmp, ignore_errors=True)
        raise
    return SandboxView(True, fn_code_dir, layers, root)


# --- can this machine do it? ------------------------------------------------------------------


def probe_namespace() -> tuple[bool, str]:
    """(supported, why not). Tries a real private bind mount once per process."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


def _probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"mount namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return False, "mount namespaces need root (run the emulator as root, or in a container)"
    for tool in ("unshare", "mount", "sh"):
        if shutil.which(tool) is None:
            return False, f"{tool} (util-linux) is not on PATH"
    try:
        Path(TASK_ROOT).mkdir(parents=True, exist_ok=True)  # the mount point for the code
    except OSError as exc:
        return False, f"cannot create the mount point {TASK_ROOT}: {exc.strerror}"
    with tempfile.TemporaryDirectory(prefix="lambdascope-probe-") as folder:
        source = Path(folder) / "src"
        source.mkdir()
        (source / "marker").write_text("x")
        script = mount_script([(str(source), TASK_ROOT)], "/").replace(
            'exec "$@"', "test -f /var/task/marker"
        )
        argv = ["unshare", "--mount", "sh", "-c", script]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"unshare --mount failed: {exc}"
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).decode(errors="replace").strip()
            return False, f"unshare --mount was refused: {reason or done.returncode}"
    return True, ""


def resolve_isolation(mode: str) -> bool:
    """True when environments get private mount namespaces. "auto" falls back to the shared
    view (logged once); "namespace" raises IsolationError where it is impossible."""
    if mode not in ISOLATION_MODES:
        raise IsolationError(f"isolation {mode!r}: use one of {ISOLATION_MODES}")
    if mode == "none":
        return False
    supported, why = probe_namespace()
    if supported:
        return True
    if mode == "namespace":
        raise IsolationError(f"isolation 'namespace' is not possible here: {why}")
    log.warning(
        "no private /opt, /tmp or sandbox.localdomain per environment (%s): layers are used "
        "at their real paths and /tmp is shared",
        why,
    )
    return False
