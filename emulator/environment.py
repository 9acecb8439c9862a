"""One execution environment: a runtime process (awslambdaric running the handler), its
external extension processes, and the sandbox API they talk to, run through Lambda's phases.

Lifecycle (as Lambda runs it):
  1. init: launch extensions, wait for them to register; start the runtime; init ends when the
     runtime and every registered extension have called `next` (10 s limit).
  2. invoke (repeated): platform.start, INVOKE to extensions, the event to the runtime; the
     caller is answered when the runtime posts; the invocation ends when runtime and
     extensions have called `next`; then platform.report.
  3. shutdown (spindown, timeout or failure): runtime killed, telemetry flushed, SHUTDOWN to
     extensions, 2 s for them to exit, then the process groups are killed.

All state sits behind one condition variable, `_cv`; HTTP handler threads block on it for
long polls. Never call a LineReader's `sync()` while holding `_cv` (its reader thread takes
locks of its own while handing over lines).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdascope.emulator import events, procs, sandboxfs
from lambdascope.emulator.config import ACCOUNT_ID, FunctionConfig
from lambdascope.emulator.sandbox_api import (
    MAX_BODY_BYTES,
    Response,
    SandboxServer,
    error_response,
    json_response,
    open_sandbox,
    release_address,
)
from lambdascope.emulator.telemetry import Subscriber, TelemetryHub

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0
SHUTDOWN_BUDGET_S = 2.0  # with external extensions
RUNTIME_TERM_GRACE_S = 0.3
MAX_EXTENSIONS = 10
MEMORY_SAMPLE_INTERVAL_S = 0.02
RUNTIME_VERSION = f"python:{sys.version_info.major}.{sys.version_info.minor}.emulator"
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
class _Extension:
    name: str
    identifier: str
    events: list[str]
    external: bool
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    waiting: bool = False  # blocked in event/next with nothing to deliver


@dataclass
class _Launched:
    name: str
    proc: subprocess.Popen[bytes]
    reader: procs.LineReader | None = None
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=5))


@dataclass
class Outcome:
    """What the Invoke API answers for one invocation."""

    request_id: str
    payload: bytes
    function_error: str | None
    log_lines: list[str]


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    trace_id: str
    deadline_ms: int
    started_at: float  # epoch s
    started_mono: float
    deadline_mono: float
    log_lines: list[str]
    init_duration_s: float | None
    client_context: str | None = None
    kind: str | None = None  # "response" or "error" once the runtime posted
    body: bytes = b""
    error_type: str | None = None
    response_started_mono: float | None = None
    response_done_mono: float | None = None
    runtime_done_mono: float | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    completed: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class ExecutionEnvironment:
    """One sandbox. The pool calls `initialize()` once, then `invoke()` one at a time."""

    def __init__(
        self,
        fn: FunctionConfig,
        on_finished: Callable[[ExecutionEnvironment, bool], None],
        on_line: Callable[[ExecutionEnvironment, str], None] | None = None,
        initialization_type: str = "on-demand",
        *,
        namespaced: bool = False,
        tmp_after_reset: sandboxfs.TmpAfterReset | None = None,
    ) -> None:
        self.fn = fn
        # The function's /tmp kept across resets (namespaced only; see sandboxfs).
        self._tmp_after_reset = tmp_after_reset if namespaced else None
        self._resetting = False
        # Private /opt, /var/task, /tmp and /etc/hosts (see sandboxfs); set at init.
        self.namespaced = namespaced
        self.view = sandboxfs.SandboxView(False, fn.code_dir, fn.layers)
        # "on-demand", or "provisioned-concurrency" for environments initialised ahead.
        self.initialization_type = initialization_type
        self.ready_once = False
        self.environment_id = secrets.token_hex(16)
        self.created_at = time.time()
        self.log_stream = events.log_stream_name(self.created_at, fn.version, self.environment_id)
        self.hub = TelemetryHub()
        self.state = "new"  # new, initializing, idle, busy, shutting-down, dead
        self.idle_since = time.monotonic()
        self.invocations = 0
        self.init_duration_s: float | None = None
        self.init_error: tuple[str, bytes] | None = None  # (errorType, body for the caller)
        self.shutdown_reason: str | None = None
        self._on_finished = on_finished
        self._on_cloudwatch_line = on_line
        # Told of every platform.report (the emulator's CloudWatch metrics): (environment,
        # invocation start epoch s, status, durationMs, PostRuntimeExtensionsDuration ms).
        self.on_report: (
            Callable[[ExecutionEnvironment, float, str, float, float | None], None] | None
        ) = None
        self._cv = threading.Condition()
        self._closing = False
        self._init_done = False
        self._runtime: subprocess.Popen[bytes] | None = None
        self._runtime_readers: list[procs.LineReader] = []
        self._runtime_ready = False
        self._runtime_exit: int | None = None
        self._runtime_pending: _Invocation | None = None
        self._current: _Invocation | None = None
        self._oom = False
        self._runtime_peak_kb = 0
        self._launched: dict[str, _Launched] = {}
        self._external_names: set[str] = set()
        self._extensions: dict[str, _Extension] = {}
        self._log_lock = threading.Lock()
        self._log_target: list[str] | None = None
        self._shutdown_lock = threading.Lock()
        self._shutdown_done = threading.Event()
        self._server: SandboxServer | None = None
        self._runtime_watcher: threading.Thread | None = None
        self.suppressed_init = False  # the init was retried inside the first invocation
        self.address = ""
        self.port = 0

    # --- public ------------------------------------------------------------------------

    @property
    def runtime_api(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def runtime_pid(self) -> int | None:
        return self._runtime.pid if self._runtime else None

    def pids(self) -> list[int]:
        found = [p.proc.pid for p in self._launched.values()]
        if self._runtime:
            found.append(self._runtime.pid)
        return found

    def usable(self) -> bool:
        with self._cv:
            return (
                not self._closing
                and self.init_error is None
                and self._runtime_exit is None
                and self.state in ("idle", "initializing", "new")
            )

    def try_claim(self) -> bool:
        """Take an idle environment for one invocation (warm start)."""
        with self._cv:
            if (
                self.state == "idle"
                and not self._closing
                and self._runtime_exit is None
                and self.init_error is None
            ):
                self.state = "busy"
                return True
            return False

    def make_idle(self) -> bool:
        """After a provisioned init: ready for invocations (False when the init failed)."""
        with self._cv:
            ready = (
                self.state == "busy"
                and self.init_error is None
                and self._runtime_exit is None
                and not self._closing
            )
            if ready:
                self.state = "idle"
                self.idle_since = time.monotonic()
                self.ready_once = True
        if ready:
            self._on_finished(self, True)
        return ready

    def finishing(self) -> bool:
        """Answered its caller and waits only for `next` calls (the post-runtime phase)."""
        with self._cv:
            inv = self._current
            return self.state == "busy" and inv is not None and inv.answered.is_set()

    def try_retire(self) -> bool:
        """Mark an idle environment for spindown; False when it got busy meanwhile."""
        with self._cv:
            if self.state == "idle":
                self.state = "shutting-down"
                return True
            return False

    def initialize(self) -> None:
        """Run the init phase. Never raises for user errors: they land in `init_error`."""
        t0, mono0 = time.time(), time.monotonic()
        deadline = mono0 + INIT_TIMEOUT_S
        with self._cv:
            if self.state != "new":  # stopped before it started: launch nothing
                self.init_error = (
                    "Sandbox.Failure",
                    events.error_body("Sandbox.Failure", "stopped"),
                )
                self._init_done = True
                return
            self.state = "initializing"
        self._server = open_sandbox(self)
        host, port = self._server.server_address[:2]
        self.address, self.port = str(host), int(port)
        self._server.start()
        kept_tmp = None
        if self._tmp_after_reset is not None:
            kept_tmp = self._tmp_after_reset.take(SHUTDOWN_BUDGET_S + 1.0)
        try:
            self.view = sandboxfs.prepare(
                self.fn.code_dir, self.fn.layers, self.address, self.namespaced, kept_tmp
            )
        except OSError as exc:
            log.warning(
                "%s: no private filesystem view (%s); using the shared one", self.fn.name, exc
            )
        self._run_init("init", t0, mono0, deadline)

    def _run_init(self, phase: str, t0: float, mono0: float, deadline: float) -> None:
        """Extensions, then the runtime, until all called `next` or `deadline` (monotonic).
        `phase` is "init", or "invoke" for a suppressed init retried inside an invocation."""
        runtime_env, extension_env = build_environment(
            self.fn,
            self.runtime_api,
            self.log_stream,
            initialization_type=self.initialization_type,
            view=self.view,
        )
        self.emit(
            events.init_start(
                t0,
                initialization_type=self.initialization_type,
                phase=phase,
                function_name=self.fn.name,
                function_version=self.fn.version,
                instance_id=self.log_stream,
                memory_size_mb=self.fn.memory_size_mb,
                runtime_version=RUNTIME_VERSION,
            )
        )
        self._cloudwatch(f"INIT_START Runtime Version: {RUNTIME_VERSION}\n")
        for path in find_extensions(self.fn.layers):
            self._launch_extension(path, extension_env)
        with self._cv:
            while time.monotonic() < deadline and not all(
                x.name in self._registered_names() or x.proc.poll() is not None
                for x in self._launched.values()
            ):
                self._cv.wait(0.05)
        with self._cv:
            # stop() came during extension init
            stopped = self.state not in ("initializing", "busy") or self._closing
            if stopped:
                self.init_error = (
                    "Sandbox.Failure",
                    events.error_body("Sandbox.Failure", "stopped"),
                )
                self._init_done = True
        if stopped:
            self.kill()
            return
        # awslambdaric writes its log records as frames to this descriptor (as in Lambda), so a
        # multi-line record (a traceback) stays one `function` record; print() goes to stdout.
        frames_read, frames_write = os.pipe()
        runtime_env["_LAMBDA_TELEMETRY_LOG_FD"] = str(frames_write)
        argv, cwd = self.view.runtime_command(
            [sys.executable, "-m", "awslambdaric", self.fn.handler]
        )
        try:
            self._runtime = procs.launch(argv, cwd, runtime_env, pass_fds=(frames_write,))
        finally:
            os.close(frames_write)
        self._runtime_readers = [
            procs.LineReader(self._runtime.stdout, self._function_line, f"{self.fn.name}-stdout"),
            procs.LineReader(
                os.fdopen(frames_read, "rb", buffering=0),
                self._function_line,
                f"{self.fn.name}-frames",
                framed=True,
            ),
        ]
        with self._cv:
            # A shutdown that ran while the runtime was being started has not seen it.
            late = self._closing or self.state in ("shutting-down", "dead")
        if late:
            procs.kill_group(self._runtime)
        self._runtime_watcher = threading.Thread(
            target=self._watch_runtime, args=(self._runtime,), daemon=True
        )
        self._runtime_watcher.start()
        threading.Thread(target=self._sample_memory, args=(self._runtime,), daemon=True).start()
        status, error_type = "success", None
        crashed: list[str] = []
        with self._cv:
            while True:
                runtime_settled = (
                    self._runtime_ready
                    or self.init_error is not None
                    or self._runtime_exit is not None
                )
                if runtime_settled and self._extensions_idle():
                    break
                crashed = self._crashed_extensions()
                if crashed:
                    break
                if time.monotonic() >= deadline:
                    status, error_type = "timeout", "Sandbox.Timedout"
                    break
                self._cv.wait(0.05)
            crashed = crashed or self._crashed_extensions()
            self._init_done = True
        self.hub.close_subscriptions()
        if crashed:
            # An extension that dies during init fails the init, as in Lambda.
            message = "; ".join(self._crash_description(name) for name in crashed)
            self.init_error = ("Extension.Crash", events.error_body("Extension.Crash", message))
        elif status == "success" and self.init_error is None and not self._runtime_ready:
            # The runtime died without reporting why (e.g. a crash before its client started).
            with self._cv:
                code = self._runtime_exit
            message = f"Runtime exited with error: exit status {code}"
            self.init_error = ("Runtime.ExitError", events.error_body("Runtime.ExitError", message))
        if status == "timeout":
            message = f"Init timed out after {deadline - mono0:.2f} seconds"
            self.init_error = ("Sandbox.Timedout", events.error_body("Sandbox.Timedout", message))
        elif self.init_error is not None:
            status, error_type = "error", self.init_error[0]
        self._sync_runtime_logs()
        now = time.time()
        self.emit(
            events.init_runtime_done(
                now,
                initialization_type=self.initialization_type,
                phase=phase,
                status=status,
                error_type=error_type,
            )
        )
        for ext in list(self._extensions.values()):
            self.emit(events.extension_state(now, ext.name, "Ready", ext.events))
            self._cloudwatch(
                f"EXTENSION\tName: {ext.name}\tState: Ready\tEvents: [{', '.join(ext.events)}]\n"
            )
        self.init_duration_s = time.monotonic() - mono0
        self.emit(
            events.init_report(
                time.time(),
                initialization_type=self.initialization_type,
                phase=phase,
                status=status,
                error_type=error_type,
                duration_s=self.init_duration_s,
            )
        )
        line = f"INIT_REPORT Init Duration: {self.init_duration_s * 1000:.2f} ms\tPhase: {phase}"
        if status != "success":
            line += f"\tStatus: {status}" + (f"\tError Type: {error_type}" if error_type else "")
        self._cloudwatch(line + "\n")
        with self._cv:
            if self.state == "initializing":
                self.state = "busy"

    def invoke(
        self,
        request_id: str,
        payload: bytes,
        *,
        wait_for_report: bool,
        client_context: str | None = None,
    ) -> Outcome:
        """Run one invocation; answers when the runtime posts (or after the report when
        `wait_for_report`, which Tail logs need). The rest finishes in the background."""
        now, mono = time.time(), time.monotonic()
        timeout = self.fn.timeout_s
        inv = _Invocation(
            request_id=request_id,
            payload=payload,
            trace_id=events.new_trace_id(now),
            deadline_ms=int((now + timeout) * 1000),
            started_at=now,
            started_mono=mono,
            deadline_mono=mono + timeout,
            log_lines=[events.start_line(request_id, self.fn.version)],
            # Only an on-demand cold start reports (and bills) its init in the invocation.
            init_duration_s=(
                self.init_duration_s
                if self.invocations == 0 and self.initialization_type == "on-demand"
                else None
            ),
            client_context=client_context,
        )
        self.invocations += 1
        with self._cv:
            self.state = "busy"
        thread = threading.Thread(
            target=self._run_invocation, args=(inv,), name=f"invoke-{request_id}", daemon=True
        )
        thread.start()
        # Bounded even if something goes badly wrong: the timeout plus the shutdown budget.
        inv.answered.wait(timeout + SHUTDOWN_BUDGET_S + 10)
        if wait_for_report:
            inv.completed.wait(max(inv.deadline_mono - time.monotonic(), 0) + 1.0)
        outcome = inv.outcome or Outcome(
            request_id, events.error_body("Sandbox.Failure", "no answer"), "Unhandled", []
        )
        with self._log_lock:
            outcome.log_lines = list(inv.log_lines)
        return outcome

    def shutdown(self, reason: str) -> None:
        """SHUTDOWN with the 2 s budget, then kill what remains. Idempotent, bounded."""
        if not self._shutdown_lock.acquire(blocking=False):
            self._shutdown_done.wait(SHUTDOWN_BUDGET_S + 3)
            return
        try:
            self._shutdown(reason)
        finally:
            self._end_reset(None)  # a shutdown that failed part-way keeps nothing
            self.view.cleanup()
            self._shutdown_done.set()

    def kill(self) -> None:
        """Last resort: SIGKILL every process group now."""
        for launched in list(self._launched.values()):
            procs.kill_group(launched.proc)
        if self._runtime is not None:
            procs.kill_group(self._runtime)

    # --- telemetry and logs -------------------------------------------------------------

    def emit(self, event: events.Event) -> None:
        self.hub.emit(event)

    def _cloudwatch(self, line: str) -> None:
        if self._on_cloudwatch_line is not None:
            self._on_cloudwatch_line(self, line)

    def _sync_runtime_logs(self) -> None:
        for reader in self._runtime_readers:
            reader.sync()

    def _invocation_log(self, line: str) -> None:
        with self._log_lock:
            if self._log_target is not None:
                self._log_target.append(line)

    def _function_line(self, line: str, t: float) -> None:
        self.emit(events.log_record("function", line, t, self.fn.log_format))
        self._invocation_log(line)
        self._cloudwatch(line)

    def _crash_description(self, name: str) -> str:
        launched = self._launched[name]
        if launched.reader is not None:
            launched.reader.wait_eof(0.2)
        tail = "".join(launched.last_lines).strip()
        return f"extension {name} exited with status {launched.proc.returncode} during init" + (
            f"; its last output: {tail}" if tail else ""
        )

    def _extension_line(self, line: str, t: float) -> None:
        self.emit(events.log_record("extension", line, t, self.fn.log_format))
        self._invocation_log(line)
        self._cloudwatch(line)

    # --- processes ----------------------------------------------------------------------

    def _registered_names(self) -> set[str]:
        return {x.name for x in self._extensions.values()}

    def _launch_extension(self, path: Path, env: dict[str, str]) -> None:
        with self._cv:
            # Known before the process runs: it may register before Popen even returns.
            self._external_names.add(path.name)
        argv, cwd = self.view.extension_command(path)
        try:
            proc = procs.launch(argv, cwd, env)
        except OSError as exc:
            log.warning("extension %s could not be started: %s", path, exc)
            self.emit(events.extension_state(time.time(), path.name, "LaunchError", [], None))
            return
        launched = _Launched(path.name, proc)

        def on_line(line: str, t: float) -> None:
            launched.last_lines.append(line)
            self._extension_line(line, t)

        launched.reader = procs.LineReader(proc.stdout, on_line, path.name)
        with self._cv:
            self._launched[path.name] = launched
        threading.Thread(target=self._watch_extension, args=(launched,), daemon=True).start()

    def _watch_extension(self, launched: _Launched) -> None:
        procs.wait_and_clean_group(launched.proc)
        with self._cv:
            self._cv.notify_all()

    def _watch_runtime(self, proc: subprocess.Popen[bytes]) -> None:
        code = procs.wait_and_clean_group(proc)
        with self._cv:
            self._runtime_exit = code
            idle = self.state == "idle" and not self._closing
            self._cv.notify_all()
        if idle:
            # Killed from outside between invocations: this environment cannot serve again.
            self._retire("failure")

    def _sample_memory(self, mine: subprocess.Popen[bytes]) -> None:
        limit_kb = self.fn.memory_size_mb * 1024
        while True:
            with self._cv:
                if self._closing or self._runtime_exit is not None or self._runtime is not mine:
                    return
                busy = self._current is not None
                runtime = self._runtime
            if runtime is not None:
                # Kept so a report after the runtime died can still say what it used.
                self._runtime_peak_kb = max(
                    self._runtime_peak_kb, procs.memory_kb(runtime.pid, "VmHWM")
                )
            if busy and runtime is not None and procs.memory_kb(runtime.pid) > limit_kb:
                with self._cv:
                    self._oom = True
                procs.signal_group(runtime, signal.SIGKILL)
                return
            time.sleep(MEMORY_SAMPLE_INTERVAL_S)

    def _max_memory_used_mb(self) -> int:
        total_kb = 0
        if self._runtime is not None:
            now_kb = procs.memory_kb(self._runtime.pid, "VmHWM")
            self._runtime_peak_kb = max(self._runtime_peak_kb, now_kb)
            total_kb += self._runtime_peak_kb
        for launched in self._launched.values():
            total_kb += procs.memory_kb(launched.proc.pid, "VmHWM")
        return max(1, math.ceil(total_kb / 1024))

    # --- invocation -----------------------------------------------------------------------

    def _crashed_extensions(self) -> list[str]:
        """Launched extensions whose process has exited (outside shutdown)."""
        if self.state in ("shutting-down", "dead"):
            return []
        return [x.name for x in self._launched.values() if x.proc.poll() is not None]

    def _extensions_idle(self) -> bool:
        return all(x.waiting and not x.queue for x in self._extensions.values())

    def _run_invocation(self, inv: _Invocation) -> None:
        try:
            self._invocation_phases(inv)
        except Exception:
            log.exception("invocation %s failed inside the emulator", inv.request_id)
            self._answer(inv, events.error_body("Sandbox.Failure", "emulator error"), "Unhandled")
            inv.completed.set()
            self._retire("failure")

    def _answer(self, inv: _Invocation, payload: bytes, function_error: str | None) -> None:
        if not inv.answered.is_set():
            inv.outcome = Outcome(inv.request_id, payload, function_error, [])
            inv.answered.set()

    def _invocation_phases(self, inv: _Invocation) -> None:
        fn = self.fn
        with self._log_lock:
            self._log_target = inv.log_lines
        if (
            self.init_error is not None
            and self.init_error[0] != "Sandbox.Failure"  # the emulator stopped it
            and not self.suppressed_init
            and self.initialization_type == "on-demand"
            and self.invocations == 1
            and not self._closing
            and self.state == "busy"
        ):
            self._retry_init_in_invoke(inv)
        self.emit(
            events.start(
                inv.started_at,
                inv.request_id,
                version=fn.version,
                function_arn=fn.function_arn,
                trace_id=inv.trace_id,
            )
        )
        self._cloudwatch(events.start_line(inv.request_id, fn.version))
        if self.init_error is not None:
            self._finish_failed_init(inv)
            return
        invoke_event = events.invoke_event(
            inv.request_id, inv.deadline_ms, fn.function_arn, inv.trace_id
        )
        with self._cv:
            self._current = inv
            for ext in self._extensions.values():
                if "INVOKE" in ext.events:
                    ext.queue.append(dict(invoke_event))
                    ext.waiting = False
            self._runtime_pending = inv
            self._cv.notify_all()
            while (
                inv.kind is None
                and self._runtime_exit is None
                and time.monotonic() < inv.deadline_mono
            ):
                self._cv.wait(inv.deadline_mono - time.monotonic())
        if inv.kind is not None:
            # Answer now; the runtime's `next` (and the extensions') end the invocation.
            self._sync_runtime_logs()
            self._answer(inv, inv.body, "Unhandled" if inv.kind == "error" else None)
            with self._cv:
                while (
                    inv.runtime_done_mono is None
                    and self._runtime_exit is None
                    and time.monotonic() < inv.deadline_mono
                ):
                    self._cv.wait(inv.deadline_mono - time.monotonic())
        if inv.runtime_done_mono is not None:
            status = "error" if inv.kind == "error" else "success"
            self._runtime_done(inv, status, inv.error_type, inv.runtime_done_mono)
            with self._cv:
                while not self._extensions_idle() and time.monotonic() < inv.deadline_mono:
                    if self._closing or self._crashed_extensions():
                        break
                    self._cv.wait(max(inv.deadline_mono - time.monotonic(), 0.001))
                extensions_done = self._extensions_idle()
                crashed = self._crashed_extensions()
            if crashed:
                self._report(inv, "error", "Extension.Crash", time.monotonic())
                self._retire("failure")
                return
            if extensions_done:
                self._report(inv, status, inv.error_type, time.monotonic())
                self._release(inv)
                return
            # Extensions ran past the deadline: Lambda times the invocation out.
            self._timed_out(inv, runtime_done_emitted=True)
            return
        with self._cv:
            exit_code, oom = self._runtime_exit, self._oom
        if exit_code is not None:
            self._runtime_failed(inv, exit_code, oom)
        else:
            self._timed_out(inv, runtime_done_emitted=False)

    def _retry_init_in_invoke(self, inv: _Invocation) -> None:
        """Suppressed init (reference §2): an init that failed or timed out is retried inside
        the first invocation, phase "invoke", bounded by the invocation's deadline. Lambda
        resets the sandbox for it: every process is killed and started again, so extensions
        register and subscribe anew."""
        self.suppressed_init = True
        self.hub.flush(0.2)  # the failed init's events reach whoever subscribed to them
        self.kill()
        if self._runtime_watcher is not None:
            self._runtime_watcher.join(2.0)
        for launched in list(self._launched.values()):
            if launched.reader is not None:
                launched.reader.wait_eof(0.5)
        old_hub, self.hub = self.hub, TelemetryHub()
        old_hub.stop()
        with self._cv:
            if self._closing or self.state != "busy":
                return  # a shutdown came meanwhile: the invocation fails with the init error
            self._extensions.clear()
            self._launched.clear()
            self._external_names.clear()
            # self._runtime keeps the dead process until the new one replaces it: a shutdown
            # running meanwhile must find a process object there, never None.
            self._runtime_watcher = None
            self._runtime_readers = []
            self._runtime_ready = False
            self._runtime_exit = None
            self._oom = False
            self._runtime_peak_kb = 0
            self.init_error = None
            self._init_done = False
        self._run_init("invoke", time.time(), time.monotonic(), inv.deadline_mono)
        # The retried init ran inside this invocation: its time is in durationMs already.
        inv.init_duration_s = None

    def _runtime_done(
        self, inv: _Invocation, status: str, error_type: str | None, at: float
    ) -> None:
        self._sync_runtime_logs()
        spans = None
        if inv.response_started_mono is not None and inv.response_done_mono is not None:
            base = inv.started_at - inv.started_mono  # monotonic -> epoch
            spans = [
                events.span(
                    "responseLatency", inv.started_at, inv.response_started_mono - inv.started_mono
                ),
                events.span(
                    "responseDuration",
                    base + inv.response_started_mono,
                    inv.response_done_mono - inv.response_started_mono,
                ),
                events.span(
                    "runtimeOverhead",
                    base + inv.response_done_mono,
                    max(at - inv.response_done_mono, 0.0),
                ),
            ]
        produced = len(inv.body) if inv.kind == "response" else None
        self.emit(
            events.runtime_done(
                time.time(),
                inv.request_id,
                status=status,
                error_type=error_type,
                duration_s=at - inv.started_mono,
                produced_bytes=produced,
                spans=spans,
                trace_id=inv.trace_id,
            )
        )

    def _report(
        self,
        inv: _Invocation,
        status: str,
        error_type: str | None,
        at: float,
        max_memory_mb: int | None = None,
    ) -> None:
        for launched in list(self._launched.values()):
            if launched.reader is not None:
                launched.reader.sync()
        metrics = events.ReportMetrics(
            duration_ms=(at - inv.started_mono) * 1000.0,
            memory_size_mb=self.fn.memory_size_mb,
            max_memory_used_mb=max_memory_mb or self._max_memory_used_mb(),
            init_duration_ms=(
                inv.init_duration_s * 1000.0 if inv.init_duration_s is not None else None
            ),
        )
        self.emit(
            events.report(
                time.time(),
                inv.request_id,
                status=status,
                error_type=error_type,
                metrics=metrics,
                trace_id=inv.trace_id,
            )
        )
        end = events.end_line(inv.request_id)
        report = events.report_line(inv.request_id, metrics, status, error_type)
        with self._log_lock:
            inv.log_lines.extend([end, report])
            if self._log_target is inv.log_lines:
                self._log_target = None
        self._cloudwatch(end)
        self._cloudwatch(report)
        if self.on_report is not None:
            post_runtime_ms = (
                (at - inv.runtime_done_mono) * 1000.0
                if inv.runtime_done_mono is not None and self._extensions
                else None
            )
            try:
                self.on_report(self, inv.started_at, status, metrics.duration_ms, post_runtime_ms)
            except Exception:  # metrics must never break an invocation
                log.exception("report consumer failed for %s", inv.request_id)
        inv.completed.set()

    def _release(self, inv: _Invocation) -> None:
        with self._cv:
            self._current = None
            if self._closing or self.state in ("shutting-down", "dead"):
                return  # a shutdown is under way: never hand this environment out again
            runtime_gone = self._runtime_exit is not None
            if not runtime_gone:
                self.state = "idle"
                self.idle_since = time.monotonic()
        if runtime_gone:
            # The runtime died after the invocation ended but before the environment was idle
            # (where its watcher would have retired it): retire it here instead.
            self._retire("failure")
            return
        self._on_finished(self, True)

    def _retire(self, reason: str) -> None:
        with self._cv:
            if self.state in ("shutting-down", "dead"):
                return
            self.state = "shutting-down"
        self._on_finished(self, False)
        self.shutdown(reason)

    def _begin_reset(self) -> None:
        """A timeout or crash during an invocation resets the environment: its /tmp goes to
        the next one (announced before the caller is answered, so it waits for it)."""
        if self._tmp_after_reset is not None and not self._resetting:
            self._resetting = True
            self._tmp_after_reset.begin()

    def _end_reset(self, kept_tmp: Path | None) -> None:
        if self._resetting and self._tmp_after_reset is not None:
            self._resetting = False
            self._tmp_after_reset.put(kept_tmp)

    def _timed_out(self, inv: _Invocation, *, runtime_done_emitted: bool) -> None:
        self._begin_reset()
        at = inv.deadline_mono
        self._max_memory_used_mb()  # read the runtime's peak before it is gone
        if self._runtime is not None:
            procs.signal_group(self._runtime, signal.SIGKILL)
        self._sync_runtime_logs()
        message = events.timeout_message(inv.request_id, self.fn.timeout_s)
        self._answer(inv, events.error_body("Sandbox.Timedout", message), "Unhandled")
        self._function_line(
            events.timeout_line(time.time(), inv.request_id, self.fn.timeout_s), time.time()
        )
        if not runtime_done_emitted:
            self._runtime_done(inv, "timeout", None, at)
        self._report(inv, "timeout", None, at)
        self._retire("timeout")

    def _runtime_failed(self, inv: _Invocation, exit_code: int, oom: bool) -> None:
        self._begin_reset()
        at = time.monotonic()
        self._sync_runtime_logs()
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        message = events.runtime_exit_message(inv.request_id, -9 if oom else exit_code)
        self._answer(inv, events.error_body(error_type, message), "Unhandled")
        self._function_line(message + "\n", time.time())
        if inv.error_type == "Function.ResponseSizeTooLarge":
            # The runtime died of the refused response: that is what the caller was told.
            error_type = inv.error_type
        self._runtime_done(inv, "error", error_type, at)
        memory = self.fn.memory_size_mb if oom else None
        self._report(inv, "error", error_type, at, max_memory_mb=memory)
        self._retire("failure")

    def _finish_failed_init(self, inv: _Invocation) -> None:
        assert self.init_error is not None
        error_type, body = self.init_error
        self._answer(inv, body, "Unhandled")
        at = time.monotonic()
        status = "timeout" if error_type == "Sandbox.Timedout" else "error"
        self._runtime_done(inv, status, error_type, at)
        self._report(inv, status, error_type, at)
        self._retire("failure")

    def _shutdown(self, reason: str) -> None:
        self.shutdown_reason = reason
        with self._cv:
            self.state = "shutting-down"
            inv = self._current
            self._cv.notify_all()
        if inv is not None and inv.answered.is_set():
            # Lambda never spins down mid-invocation: let one that only waits for extensions'
            # `next` finish (bounded), so its report reaches them before SHUTDOWN.
            inv.completed.wait(min(SHUTDOWN_BUDGET_S, max(inv.deadline_mono - time.monotonic(), 0)))
        budget_end = time.monotonic() + (SHUTDOWN_BUDGET_S if self._launched else 0.0)
        if self._runtime is not None and self._runtime.poll() is None:
            procs.signal_group(self._runtime, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._runtime.wait(RUNTIME_TERM_GRACE_S if self._launched else 0.05)
            procs.kill_group(self._runtime)
        # Extensions must see everything (the last report included) before SHUTDOWN.
        self.hub.flush(max(min(1.0, budget_end - time.monotonic()), 0.05))
        with self._cv:
            deadline_ms = int((time.time() + max(budget_end - time.monotonic(), 0)) * 1000)
            for ext in self._extensions.values():
                if "SHUTDOWN" in ext.events:
                    ext.queue.append(events.shutdown_event(reason, deadline_ms))
                    ext.waiting = False
            self._cv.notify_all()
            while time.monotonic() < budget_end and any(
                x.proc.poll() is None for x in self._launched.values()
            ):
                self._cv.wait(0.02)
        self.kill()
        with self._cv:
            self._closing = True
            self.state = "dead"
            self._cv.notify_all()
        for launched in self._launched.values():
            if launched.reader is not None:
                launched.reader.wait_eof(0.5)
        self.hub.stop()
        if self._server is not None:
            self._server.stop()
        if self._resetting:
            self._end_reset(self.view.keep_tmp())
        self.view.cleanup()
        release_address(self.address)

    # --- SandboxController: Runtime API ---------------------------------------------------

    def runtime_next(self) -> Response | None:
        with self._cv:
            if self._closing:
                return None
            if not self._init_done:
                self._runtime_ready = True
            inv = self._current
            if inv is not None and inv.kind is not None and inv.runtime_done_mono is None:
                inv.runtime_done_mono = time.monotonic()
            self._cv.notify_all()
            while not self._closing and self._runtime_pending is None:
                self._cv.wait(1.0)
            if self._closing or self._runtime_pending is None:
                return None
            inv = self._runtime_pending
            self._runtime_pending = None
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.fn.function_arn,
            "Lambda-Runtime-Trace-Id": inv.trace_id,
        }
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        return Response(200, inv.payload, headers)

    def _posting(self, request_id: str) -> tuple[_Invocation | None, Response | None]:
        inv = self._current
        if inv is None or inv.request_id != request_id:
            return None, error_response(
                400, "InvalidRequestID", f"request id {request_id} is not the current invocation"
            )
        if inv.kind is not None:
            return None, error_response(
                403, "InvalidStateTransition", f"invocation {request_id} was already answered"
            )
        return inv, None

    def runtime_response(self, request_id: str, body: bytes, headers: dict[str, str]) -> Response:
        started = float(headers.get("x-emulator-read-started", time.monotonic()))
        with self._cv:
            inv, problem = self._posting(request_id)
            if inv is None:
                assert problem is not None
                return problem
            if len(body) > MAX_BODY_BYTES:
                inv.kind, inv.error_type = "error", "Function.ResponseSizeTooLarge"
                inv.body = events.error_body(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size ({len(body)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_BODY_BYTES - 100} bytes).",
                )
                self._cv.notify_all()
                return error_response(413, "RequestEntityTooLarge", "response exceeds 6 MiB")
            inv.kind, inv.body = "response", body
            inv.response_started_mono, inv.response_done_mono = started, time.monotonic()
            self._cv.notify_all()
        return json_response(202, {"status": "OK"})

    def runtime_error(self, request_id: str, body: bytes, headers: dict[str, str]) -> Response:
        with self._cv:
            inv, problem = self._posting(request_id)
            if inv is None:
                assert problem is not None
                return problem
            error_type = _error_type(body, headers)
            inv.kind, inv.body, inv.error_type = "error", body, error_type
            self._cv.notify_all()
        return json_response(202, {"status": "OK"})

    def runtime_init_error(self, body: bytes, headers: dict[str, str]) -> Response:
        with self._cv:
            if self._init_done:
                return error_response(
                    403, "InvalidStateTransition", "init/error is only valid during init"
                )
            self.init_error = (_error_type(body, headers), body)
            self._cv.notify_all()
        return json_response(202, {"status": "OK"})

    # --- SandboxController: Extensions API ------------------------------------------------

    def extension_register(self, headers: dict[str, str], body: bytes) -> Response:
        name = headers.get("lambda-extension-name", "").strip()
        try:
            requested = json.loads(body or b"{}").get("events", [])
        except (ValueError, AttributeError):
            return error_response(400, "InvalidRequest", "register body must be a JSON object")
        if not isinstance(requested, list) or any(
            e not in ("INVOKE", "SHUTDOWN") for e in requested
        ):
            return error_response(
                400, "Extension.InvalidEventType", f"events {requested!r}: use INVOKE, SHUTDOWN"
            )
        with self._cv:
            if not name:
                return error_response(
                    403, "Extension.InvalidExtensionName", "Lambda-Extension-Name is empty"
                )
            if self._init_done:
                return error_response(
                    403, "Extension.RegistrationClosed", "extensions register during init only"
                )
            if any(x.name == name for x in self._extensions.values()):
                return error_response(
                    403, "Extension.InvalidExtensionState", f"{name} is already registered"
                )
            if len(self._extensions) >= MAX_EXTENSIONS:
                return error_response(
                    403, "Extension.TooManyExtensions", f"at most {MAX_EXTENSIONS} extensions"
                )
            external = name in self._external_names
            if not external and "SHUTDOWN" in requested:
                return error_response(
                    400,
                    "Extension.InvalidEventType",
                    f"{name} is not an executable in a layer's extensions/ folder: internal "
                    "extensions may not register for SHUTDOWN",
                )
            identifier = str(uuid.uuid4())
            self._extensions[identifier] = _Extension(name, identifier, list(requested), external)
            self._cv.notify_all()
        reply: dict[str, str] = {
            "functionName": self.fn.name,
            "functionVersion": self.fn.version,
            "handler": self.fn.handler,
        }
        if "accountid" in headers.get("lambda-extension-accept-feature", "").lower():
            reply["accountId"] = ACCOUNT_ID
        return json_response(200, reply, {"Lambda-Extension-Identifier": identifier})

    def _identify(self, headers: dict[str, str]) -> tuple[_Extension | None, Response | None]:
        identifier = headers.get("lambda-extension-identifier", "")
        if not identifier:
            return None, error_response(
                403, "Extension.MissingExtensionIdentifier", "Lambda-Extension-Identifier missing"
            )
        ext = self._extensions.get(identifier)
        if ext is None:
            return None, error_response(
                403, "Extension.UnknownExtensionIdentifier", f"{identifier} is not registered"
            )
        return ext, None

    def extension_next(self, headers: dict[str, str]) -> Response | None:
        with self._cv:
            ext, problem = self._identify(headers)
            if ext is None:
                return problem
            ext.waiting = True
            self._cv.notify_all()
            while not self._closing and not ext.queue:
                self._cv.wait(1.0)
            if not ext.queue:
                return None
            event = ext.queue.popleft()
            ext.waiting = False
        return json_response(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    def extension_error(self, kind: str, headers: dict[str, str], body: bytes) -> Response:
        with self._cv:
            ext, problem = self._identify(headers)
            if ext is None:
                assert problem is not None
                return problem
        error_type = headers.get("lambda-extension-function-error-type", "")
        if not error_type:
            return error_response(
                403, "Extension.MissingHeader", "Lambda-Extension-Function-Error-Type missing"
            )
        state = "InitError" if kind == "init" else "ExitError"
        self.emit(events.extension_state(time.time(), ext.name, state, ext.events, error_type))
        return json_response(202, {"status": "OK"})

    # --- SandboxController: Telemetry API -------------------------------------------------

    def telemetry_subscribe(self, headers: dict[str, str], body: bytes) -> Response:
        with self._cv:
            ext, problem = self._identify(headers)
            if ext is None:
                assert problem is not None
                return problem
            if self._init_done:
                return error_response(
                    403, "Telemetry.SubscriptionClosed", "subscribe during init, before `next`"
                )
        try:
            sub = events.parse_subscription(json.loads(body or b"null"))
            host, port, path = events.resolve_destination(sub.uri, self.address)
        except ValueError as exc:  # SubscriptionError and bad JSON alike
            return error_response(400, "ValidationError", str(exc))
        if self.hub.is_subscribed(ext.name):
            return error_response(
                400, "ValidationError", f"{ext.name} already has a Telemetry subscription"
            )
        self.hub.subscribe(ext.name, Subscriber(ext.name, sub, host, port, path))
        self.emit(events.telemetry_subscription(time.time(), ext.name, list(sub.types)))
        kinds = ", ".join(t.capitalize() for t in sub.types)
        self._cloudwatch(f"TELEMETRY\tName: {ext.name}\tState: Subscribed\tTypes: [{kinds}]\n")
        return json_response(200, "OK")


def _error_type(body: bytes, headers: dict[str, str]) -> str:
    """awslambdaric puts the type in the JSON body; other runtimes use the header."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        parsed = None
    if (
        isinstance(parsed, dict)
        and isinstance(parsed.get("errorType"), str)
        and parsed["errorType"]
    ):
        return str(parsed["errorType"])
    return headers.get("lambda-runtime-function-error-type") or "Unhandled"
