"""The processes of one execution environment: the runtime (awslambdaric running the handler)
and the external extensions, launched with the variables Lambda gives each, watched until they
exit, held to the function's memory size together (see `memory_limit`), and what is left to
say about an extension that crashed."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambdascope.emulator import events, memory_limit, procs, sandboxfs
from lambdascope.emulator.config import FunctionConfig
from lambdascope.emulator.sandbox_state import SandboxState

log = logging.getLogger(__name__)

MEMORY_SAMPLE_INTERVAL_S = 0.02
# Variables only the runtime sees (reference §1): extensions get the rest.
RUNTIME_ONLY_VARS = (
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_XRAY_DAEMON_ADDRESS",
    "AWS_XRAY_CONTEXT_MISSING",
)
# Passed through from the emulator's own environment so the children behave like it does.
INHERITED_VARS = ("HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "LD_LIBRARY_PATH")


def build_environment(
    fn: FunctionConfig,
    runtime_api: str,
    log_stream: str,
    base: dict[str, str] | None = None,
    initialization_type: str = "on-demand",
    view: sandboxfs.SandboxView | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(runtime env, extension env) as Lambda sets them (reference §5), with the paths as
    the environment's processes see them (`view`: /var/task and /opt when namespaced). Pure."""
    base = dict(os.environ if base is None else base)
    view = view or sandboxfs.SandboxView(False, fn.code_dir, fn.layers)
    python_dirs = [view.task_root] + [f"{root}/python" for root in view.layer_roots]
    exe_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([exe_dir, base.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    env = {k: base[k] for k in INHERITED_VARS if k in base}
    if view.namespaced:
        env.pop("TMPDIR", None)  # the host's temp folder is hidden: /tmp is the environment's
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_LOG_FORMAT": fn.log_format,
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{py}",
            "_HANDLER": fn.handler,
            "LAMBDA_TASK_ROOT": view.task_root,
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "TZ": ":UTC",
            "PATH": path,
            "PYTHONPATH": os.pathsep.join(python_dirs),
        }
    )
    if fn.log_level:
        env["AWS_LAMBDA_LOG_LEVEL"] = fn.log_level.upper()
    if fn.managed_instances:
        # awslambdaric forks this many workers, each polling `next` (Lambda Managed Instances).
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(fn.max_concurrency)
    env.update(fn.environment)
    extension_env = {
        k: v for k, v in env.items() if k not in RUNTIME_ONLY_VARS and not k.startswith("_")
    }
    return env, extension_env


def find_extensions(layers: tuple[Path, ...]) -> list[Path]:
    """Every executable file in `<layer>/extensions/`, in Lambda's (alphabetical) order."""
    found: dict[str, Path] = {}
    for layer in layers:
        folder = layer / "extensions"
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and os.access(path, os.X_OK):
                found[path.name] = path  # a later layer overrides an earlier one, as in /opt
    return [found[name] for name in sorted(found)]


@dataclass
class _Launched:
    name: str
    proc: subprocess.Popen[bytes]
    reader: procs.LineReader | None = None
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=5))


class SandboxProcesses:
    """The runtime and extension processes of one environment. `runtime_exit` and `oom` are
    read under the sandbox's `cv`, which the watchers notify whenever a process exits."""

    def __init__(
        self,
        fn: FunctionConfig,
        sandbox: SandboxState,
        *,
        on_function_line: Callable[[str, float], None],
        on_extension_line: Callable[[str, float], None],
        on_runtime_exit: Callable[[], None],
        emit: Callable[[events.Event], None],
        memory_limit_mode: str = "sampling",
    ) -> None:
        """`memory_limit_mode`: "cgroup" (the kernel enforces the memory size on every
        process together) or "sampling" (peaks summed every 20 ms and at the response)."""
        self.fn = fn
        self._sandbox = sandbox
        self._on_function_line = on_function_line
        self._on_extension_line = on_extension_line
        self._on_runtime_exit = on_runtime_exit
        self._emit = emit
        self.runtime_exit: int | None = None
        self.oom = False  # killed for going over the function's memory size
        self._runtime: subprocess.Popen[bytes] | None = None
        self._runtime_readers: list[procs.LineReader] = []
        self._runtime_watcher: threading.Thread | None = None
        self._launched: dict[str, _Launched] = {}
        self.memory_limit_mode = memory_limit_mode
        self._cgroup: memory_limit.EnvironmentCgroup | None = None
        self._cgroup_lock = threading.Lock()
        self._stop_sampling = threading.Event()
        self._peaks_kb: dict[int, int] = {}  # pid -> VmHWM last read (sampling mode)
        # Lambda Managed Instances: the runtime forks its workers, whose output arrives on a
        # socket of their own each (see `_serve_worker_output`).
        self._worker_output: socket.socket | None = None
        self._worker_output_dir: str | None = None
        self._worker_readers: list[procs.LineReader] = []
        self._peaks_lock = threading.Lock()  # the sampler and the invocation both read them

    @property
    def runtime_pid(self) -> int | None:
        return self._runtime.pid if self._runtime else None

    def pids(self) -> list[int]:
        found = [p.proc.pid for p in self._launched.values()]
        if self._runtime:
            found.append(self._runtime.pid)
            if self.fn.managed_instances:
                found.extend(procs_children(self._runtime.pid))
        return found

    # --- launching ----------------------------------------------------------------------

    def launch_extension(
        self, path: Path, env: dict[str, str], view: sandboxfs.SandboxView
    ) -> None:
        with self._sandbox.cv:
            # Known before the process runs: it may register before Popen even returns.
            self._sandbox.external_names.add(path.name)
        argv, cwd = view.extension_command(path)
        try:
            proc = procs.launch(argv, cwd, env, preexec_fn=self._preexec(runtime=False))
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("extension %s could not be started: %s", path, exc)
            self._emit(events.extension_state(time.time(), path.name, "LaunchError", [], None))
            return
        launched = _Launched(path.name, proc)

        def on_line(line: str, t: float) -> None:
            launched.last_lines.append(line)
            self._on_extension_line(line, t)

        launched.reader = procs.LineReader(proc.stdout, on_line, path.name)
        with self._sandbox.cv:
            self._launched[path.name] = launched
        threading.Thread(target=self._watch_extension, args=(launched,), daemon=True).start()

    def start_runtime(self, env: dict[str, str], view: sandboxfs.SandboxView) -> None:
        """Launch the runtime and read its output; `watch_runtime()` then follows it."""
        # awslambdaric writes its log records as frames to this descriptor (as in Lambda), so a
        # multi-line record (a traceback) stays one `function` record; print() goes to stdout.
        frames_read, frames_write = os.pipe()
        env["_LAMBDA_TELEMETRY_LOG_FD"] = str(frames_write)
        if self.fn.managed_instances:
            env["_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"] = self._serve_worker_output()
        argv, cwd = view.runtime_command([sys.executable, "-m", "awslambdaric", self.fn.handler])
        try:
            self._runtime = procs.launch(
                argv, cwd, env, pass_fds=(frames_write,), preexec_fn=self._preexec(runtime=True)
            )
        finally:
            os.close(frames_write)
        self._runtime_readers = [
            procs.LineReader(
                self._runtime.stdout, self._on_function_line, f"{self.fn.name}-stdout"
            ),
            procs.LineReader(
                os.fdopen(frames_read, "rb", buffering=0),
                self._on_function_line,
                f"{self.fn.name}-frames",
                framed=True,
            ),
        ]

    def _serve_worker_output(self) -> str:
        """A Unix socket the forked runtime workers connect their stdout and stderr to (as
        awslambdaric does on Lambda Managed Instances): one stream per worker, so lines of
        concurrent requests never mix within a line. Its folder is under /dev/shm where there
        is one, which private mount namespaces leave shared with the host."""
        shm = Path("/dev/shm")
        base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self._worker_output_dir = tempfile.mkdtemp(prefix="lambdascope-workers-", dir=base)
        path = os.path.join(self._worker_output_dir, "output.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(64)
        self._worker_output = server

        def accept() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return  # closed at shutdown
                reader = procs.LineReader(connection, self._on_function_line, "worker-output")
                with self._sandbox.cv:
                    self._worker_readers.append(reader)

        threading.Thread(target=accept, name=f"{self.fn.name}-workers", daemon=True).start()
        return path

    def _close_worker_output(self) -> None:
        if self._worker_output is not None:
            with contextlib.suppress(OSError):
                self._worker_output.close()
            self._worker_output = None
        if self._worker_output_dir is not None:
            shutil.rmtree(self._worker_output_dir, ignore_errors=True)
            self._worker_output_dir = None

    def watch_runtime(self) -> None:
        """Wait for the runtime's exit (and, without a cgroup, sample the memory), each in a
        thread of its own."""
        assert self._runtime is not None
        self._runtime_watcher = threading.Thread(
            target=self._watch_runtime, args=(self._runtime,), daemon=True
        )
        self._runtime_watcher.start()
        if self._cgroup is None:
            threading.Thread(target=self._sample_memory, args=(self._runtime,), daemon=True).start()

    # --- memory ---------------------------------------------------------------------------

    def _preexec(self, *, runtime: bool) -> Callable[[], None] | None:
        """The step that puts a new process in the environment's cgroup (made on the first
        launch); None in sampling mode."""
        with self._cgroup_lock:
            if self.memory_limit_mode != "cgroup":
                return None
            if self._cgroup is None:
                started = time.perf_counter()
                try:
                    self._cgroup = memory_limit.create_environment_cgroup(self.fn.memory_size_mb)
                except (OSError, ValueError) as exc:
                    log.warning(
                        "%s: no memory cgroup for this environment (%s); sampling instead",
                        self.fn.name,
                        exc,
                    )
                    self.memory_limit_mode = "sampling"
                    return None
                log.debug(
                    "%s: memory cgroup %s made in %.2f ms",
                    self.fn.name,
                    self._cgroup.path,
                    (time.perf_counter() - started) * 1000,
                )
            return self._cgroup.preexec(runtime=runtime)

    @property
    def cgroup_path(self) -> Path | None:
        """The environment's memory cgroup folder (None in sampling mode)."""
        return self._cgroup.path if self._cgroup is not None else None

    def _peak_sum_kb(self) -> int:
        """The sum of every process's VmHWM (kept after a process is gone)."""
        with self._sandbox.cv:
            pids = self.pids()
        now_kb = {pid: procs.memory_kb(pid, "VmHWM") for pid in pids}
        with self._peaks_lock:
            for pid, peak_kb in now_kb.items():
                self._peaks_kb[pid] = max(self._peaks_kb.get(pid, 0), peak_kb)
            return sum(self._peaks_kb.values())

    def over_memory_limit(self) -> bool:
        """In sampling mode: whether the processes' peaks add up to more than the memory
        size. Always False with a cgroup, where the kernel never lets it happen."""
        if self._cgroup is not None:
            return False
        return self._peak_sum_kb() > self.fn.memory_size_mb * 1024

    def kill_runtime_out_of_memory(self, wait_s: float) -> int | None:
        """SIGKILL the runtime as Lambda does above the memory size; its exit code, or None
        if it has not exited after `wait_s`."""
        runtime = self._runtime
        with self._sandbox.cv:
            self.oom = True
        if runtime is not None:
            procs.signal_group(runtime, signal.SIGKILL)
        with self._sandbox.cv:
            self._sandbox.cv.wait_for(lambda: self.runtime_exit is not None, wait_s)
            return self.runtime_exit

    # --- watching -----------------------------------------------------------------------

    def _watch_extension(self, launched: _Launched) -> None:
        procs.wait_and_clean_group(launched.proc)
        with self._sandbox.cv:
            self._sandbox.cv.notify_all()

    def _watch_runtime(self, proc: subprocess.Popen[bytes]) -> None:
        code = procs.wait_and_clean_group(proc)
        # The kernel's OOM killer picks the runtime (its oom_score_adj): a SIGKILL that came
        # with a new oom_kill in the cgroup is the sandbox running out of memory.
        killed_by_oom = (
            self._cgroup is not None and code == -signal.SIGKILL and self._cgroup.new_oom_kill()
        )
        with self._sandbox.cv:
            if killed_by_oom:
                self.oom = True
            self.runtime_exit = code
            self._sandbox.cv.notify_all()
        self._on_runtime_exit()

    def _sample_memory(self, mine: subprocess.Popen[bytes]) -> None:
        """Sampling mode: every 20 ms while an invocation runs, kill the runtime when the
        processes' peaks add up to more than the memory size."""
        while True:
            with self._sandbox.cv:
                if (
                    self._sandbox.closing
                    or self.runtime_exit is not None
                    or self._runtime is not mine
                ):
                    return
                busy = self._sandbox.current is not None or bool(self._sandbox.in_flight)
            if busy and self.over_memory_limit():
                with self._sandbox.cv:
                    self.oom = True
                procs.signal_group(mine, signal.SIGKILL)
                return
            if self._stop_sampling.wait(MEMORY_SAMPLE_INTERVAL_S):
                return

    def max_memory_used_mb(self) -> int:
        """Max Memory Used: the cgroup's peak, or (sampling) the sum of the processes'
        peaks, which the response-time check keeps at or below the memory size."""
        if self._cgroup is not None:
            return memory_limit.ceil_mb(self._cgroup.peak_bytes())
        total_mb = memory_limit.ceil_mb(self._peak_sum_kb() * 1024)
        return min(total_mb, self.fn.memory_size_mb)

    def release_memory_limit(self) -> None:
        """Once every process is gone: stop sampling, remove the cgroup (a process a handler
        left behind in a session of its own is killed first). Idempotent."""
        self._stop_sampling.set()
        self._close_worker_output()
        with self._cgroup_lock:
            cgroup = self._cgroup
        if cgroup is not None:
            cgroup.remove()

    def has_extensions(self) -> bool:
        return bool(self._launched)

    def all_registered_or_exited(self, registered: set[str]) -> bool:
        """Every launched extension registered (by the name of its executable) or exited."""
        return all(
            x.name in registered or x.proc.poll() is not None for x in self._launched.values()
        )

    def exited_extensions(self) -> list[str]:
        return [x.name for x in self._launched.values() if x.proc.poll() is not None]

    def extensions_running(self) -> bool:
        return any(x.proc.poll() is None for x in self._launched.values())

    def crash_description(self, name: str) -> str:
        launched = self._launched[name]
        if launched.reader is not None:
            launched.reader.wait_eof(0.2)
        tail = "".join(launched.last_lines).strip()
        return f"extension {name} exited with status {launched.proc.returncode} during init" + (
            f"; its last output: {tail}" if tail else ""
        )

    # --- output -------------------------------------------------------------------------

    def sync_runtime_logs(self) -> None:
        """Until the runtime's output so far is handed over. Never while holding `cv`."""
        for reader in self._runtime_readers + list(self._worker_readers):
            reader.sync()

    def sync_extension_logs(self) -> None:
        """Until the extensions' output so far is handed over. Never while holding `cv`."""
        for launched in list(self._launched.values()):
            if launched.reader is not None:
                launched.reader.sync()

    def wait_for_extension_output(self, timeout_s: float) -> None:
        """Until each extension's output is read to its end, at most `timeout_s` each."""
        for launched in list(self._launched.values()):
            if launched.reader is not None:
                launched.reader.wait_eof(timeout_s)

    # --- stopping -----------------------------------------------------------------------

    def signal_runtime(self, sig: int) -> None:
        if self._runtime is not None:
            procs.signal_group(self._runtime, sig)

    def kill_runtime(self) -> None:
        if self._runtime is not None:
            procs.kill_group(self._runtime)

    def stop_runtime(self, grace_s: float) -> None:
        """SIGTERM, `grace_s` to exit, then SIGKILL."""
        if self._runtime is not None and self._runtime.poll() is None:
            procs.signal_group(self._runtime, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._runtime.wait(grace_s)
            procs.kill_group(self._runtime)

    def kill(self) -> None:
        """SIGKILL every process group now."""
        for launched in list(self._launched.values()):
            procs.kill_group(launched.proc)
        if self._runtime is not None:
            procs.kill_group(self._runtime)

    def join_runtime_watcher(self, timeout_s: float) -> None:
        if self._runtime_watcher is not None:
            self._runtime_watcher.join(timeout_s)

    def forget(self) -> None:
        """Forget the killed processes, for an init that starts them again (hold `cv`).

        The dead runtime stays until the new one replaces it: a shutdown running meanwhile
        must find a process there, never None."""
        self._launched.clear()
        self._runtime_watcher = None
        self._runtime_readers = []
        self.runtime_exit = None
        self.oom = False
        with self._peaks_lock:
            self._peaks_kb.clear()
        if self._cgroup is not None:
            self._cgroup.restart()


def procs_children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux; none elsewhere): a runtime's forked workers."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(x) for x in handle.read().split())
        except (OSError, ValueError):
            continue
    return found
