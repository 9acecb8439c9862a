"""One execution environment's lifecycle: its phases as Lambda runs them, their timeouts,
and the reset after a timeout or crash. It drives the environment's parts: `SandboxProcesses`
(the runtime and extension processes), `SandboxHandlers` (the Runtime, Extensions and
Telemetry APIs those processes call) and `SandboxLogs` (platform events and log lines); they
meet in the shared `SandboxState`.

Lifecycle (as Lambda runs it):
  1. init: launch extensions, wait for them to register; start the runtime; init ends when the
     runtime and every registered extension have called `next` (10 s limit).
  2. invoke (repeated): platform.start, INVOKE to extensions, the event to the runtime; the
     caller is answered when the runtime posts; the invocation ends when runtime and
     extensions have called `next`; then platform.report.
  3. shutdown (spindown, timeout or failure): runtime killed, telemetry flushed, SHUTDOWN to
     extensions, 2 s for them to exit, then the process groups are killed.
A timeout or crash during an invocation resets the environment (it shuts down; its /tmp goes
to its successor), and an init that failed is retried inside the first invocation.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lambdascope.emulator import events, sandboxfs
from lambdascope.emulator.config import FunctionConfig
from lambdascope.emulator.sandbox_api import SandboxServer, open_sandbox, release_address
from lambdascope.emulator.sandbox_handlers import SandboxHandlers
from lambdascope.emulator.sandbox_logs import SandboxLogs
from lambdascope.emulator.sandbox_processes import (
    SandboxProcesses,
    build_environment,
    find_extensions,
)
from lambdascope.emulator.sandbox_state import Invocation, Outcome, SandboxState
from lambdascope.emulator.telemetry import TelemetryHub

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 10.0
SHUTDOWN_BUDGET_S = 2.0  # with external extensions
RUNTIME_TERM_GRACE_S = 0.3


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
        memory_limit: str = "sampling",
    ) -> None:
        """`memory_limit`: "cgroup" or "sampling", resolved by the emulator (see
        emulator.memory_limit)."""
        self.fn = fn
        # The function's /tmp kept across resets (namespaced only; see sandboxfs).
        self._tmp_after_reset = tmp_after_reset if namespaced else None
        self._resetting = False
        # Private /opt, /var/task, /tmp and /etc/hosts (see sandboxfs); set at init.
        self.namespaced = namespaced
        self.view = sandboxfs.SandboxView(False, fn.code_dir, fn.layers)
        # "on-demand", or "provisioned-concurrency" for environments initialised ahead.
        self.initialization_type = initialization_type
        # Initialised before any request wanted it (provisioned, or a proactive init).
        self.initialized_ahead = False
        self.ready_once = False
        self.environment_id = secrets.token_hex(16)
        self.created_at = time.time()
        self.log_stream = events.log_stream_name(self.created_at, fn.version, self.environment_id)
        self.hub = TelemetryHub()
        self.state = "new"  # new, initializing, idle, busy, shutting-down, dead
        self.idle_since = time.monotonic()
        self.invocations = 0
        self.init_duration_s: float | None = None
        self.shutdown_reason: str | None = None
        self._on_finished = on_finished
        self._on_cloudwatch_line = on_line
        # Told of every platform.report (the emulator's CloudWatch metrics): (environment,
        # invocation start epoch s, status, durationMs, PostRuntimeExtensionsDuration ms).
        self.on_report: (
            Callable[[ExecutionEnvironment, float, str, float, float | None], None] | None
        ) = None
        self._sandbox = SandboxState()
        self._cv = self._sandbox.cv  # guards `state` too
        self._logs = SandboxLogs(
            fn, initialization_type, self.log_stream, emit=self.emit, cloudwatch=self.cloudwatch
        )
        self._processes = SandboxProcesses(
            fn,
            self._sandbox,
            on_function_line=self._logs.function_line,
            on_extension_line=self._logs.extension_line,
            on_runtime_exit=self._runtime_exited,
            emit=self.emit,
            memory_limit_mode=memory_limit,
        )
        self.api = SandboxHandlers(fn, self._sandbox, self)
        self._shutdown_lock = threading.Lock()
        self._shutdown_done = threading.Event()
        self._server: SandboxServer | None = None
        self.suppressed_init = False  # the init was retried inside the first invocation
        self.init_timeout_s = INIT_TIMEOUT_S  # longer for Lambda Managed Instances
        self.address = ""
        self.port = 0

    # --- public ------------------------------------------------------------------------

    @property
    def runtime_api(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def runtime_pid(self) -> int | None:
        return self._processes.runtime_pid

    @property
    def init_error(self) -> tuple[str, bytes] | None:
        """(errorType, body for the caller) when the init failed."""
        return self._sandbox.init_error

    def pids(self) -> list[int]:
        return self._processes.pids()

    def usable(self) -> bool:
        with self._cv:
            return (
                not self._sandbox.closing
                and self.init_error is None
                and self._processes.runtime_exit is None
                and self.state in ("idle", "initializing", "new")
            )

    def requests_in_flight(self) -> int:
        """Requests this environment serves now, for the concurrency limits: one while it is
        not idle, none while it is initialised ahead of any request."""
        with self._cv:
            ahead = self.initialized_ahead and not self.ready_once
            return 0 if ahead or self.state in ("idle", "dead") else 1

    def try_claim(self) -> bool:
        """Take an idle environment for one invocation (warm start)."""
        with self._cv:
            if (
                self.state == "idle"
                and not self._sandbox.closing
                and self._processes.runtime_exit is None
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
                and self._processes.runtime_exit is None
                and not self._sandbox.closing
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
            inv = self._sandbox.current
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
        with self._cv:
            if self.state != "new":  # stopped before it started: launch nothing
                self._sandbox.fail_init("Sandbox.Failure", "stopped")
                self._sandbox.init_done = True
                return
            self.state = "initializing"
        self._server = open_sandbox(self.api)
        host, port = self._server.server_address[:2]
        self.address, self.port = str(host), int(port)
        self._server.start()
        kept_tmp = None
        if self._tmp_after_reset is not None:
            kept_tmp = self._tmp_after_reset.take(SHUTDOWN_BUDGET_S + 1.0)
        # The init clock starts once the previous environment is gone: Lambda counts the wait
        # for its shutdown in the caller's latency, never in this environment's Init Duration.
        t0, mono0 = time.time(), time.monotonic()
        deadline = mono0 + INIT_TIMEOUT_S
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
        sandbox, processes = self._sandbox, self._processes
        if phase == "init":
            deadline = max(deadline, mono0 + self.init_timeout_s)
        runtime_env, extension_env = build_environment(
            self.fn,
            self.runtime_api,
            self.log_stream,
            initialization_type=self.initialization_type,
            view=self.view,
        )
        self._logs.init_start(t0, phase)
        for path in find_extensions(self.fn.layers):
            processes.launch_extension(path, extension_env, self.view)
        with self._cv:
            while time.monotonic() < deadline and not processes.all_registered_or_exited(
                sandbox.registered_names()
            ):
                self._cv.wait(0.05)
        with self._cv:
            # stop() came during extension init
            stopped = self.state not in ("initializing", "busy") or sandbox.closing
            if stopped:
                sandbox.fail_init("Sandbox.Failure", "stopped")
                sandbox.init_done = True
        if stopped:
            self.kill()
            return
        processes.start_runtime(runtime_env, self.view)
        with self._cv:
            # A shutdown that ran while the runtime was being started has not seen it.
            late = sandbox.closing or self.state in ("shutting-down", "dead")
        if late:
            processes.kill_runtime()
        processes.watch_runtime()
        status, error_type = "success", None
        crashed: list[str] = []
        with self._cv:
            while True:
                runtime_settled = (
                    sandbox.runtime_ready
                    or sandbox.init_error is not None
                    or processes.runtime_exit is not None
                )
                if processes.runtime_exit is not None and sandbox.runtime_init_done_at is None:
                    sandbox.runtime_init_done_at = time.time()  # it died during its init
                if runtime_settled and sandbox.extensions_idle():
                    break
                crashed = self._crashed_extensions()
                if crashed:
                    break
                if time.monotonic() >= deadline:
                    status, error_type = "timeout", "Sandbox.Timedout"
                    break
                self._cv.wait(0.05)
            crashed = crashed or self._crashed_extensions()
            sandbox.init_done = True
        self.hub.close_subscriptions()
        if crashed:
            # An extension that dies during init fails the init, as in Lambda.
            message = "; ".join(processes.crash_description(name) for name in crashed)
            sandbox.fail_init("Extension.Crash", message)
        elif status == "success" and sandbox.init_error is None and not sandbox.runtime_ready:
            # The runtime died without reporting why (e.g. a crash before its client started).
            with self._cv:
                code = processes.runtime_exit
            message = f"Runtime exited with error: exit status {code}"
            sandbox.fail_init("Runtime.ExitError", message)
        if status == "timeout":
            message = f"Init timed out after {deadline - mono0:.2f} seconds"
            sandbox.fail_init("Sandbox.Timedout", message)
        elif sandbox.init_error is not None:
            status, error_type = "error", sandbox.init_error[0]
        processes.sync_runtime_logs()
        # Lambda stamps initRuntimeDone when the runtime finished, not when the extensions
        # did: the time between it and initReport is the extensions' part of the init.
        self._logs.init_runtime_done(
            sandbox.runtime_init_done_at or time.time(),
            phase,
            status,
            error_type,
            list(sandbox.extensions.values()),
        )
        self.init_duration_s = time.monotonic() - mono0
        self._logs.init_report(phase, status, error_type, self.init_duration_s)
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
        inv = Invocation(
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
        outcome.log_lines = self._logs.lines(inv)
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
        self._processes.kill()

    def cleanup(self) -> None:
        """After `kill()`: remove the environment's folders and its memory cgroup."""
        self.view.cleanup()
        self._processes.release_memory_limit()

    # --- telemetry and logs -------------------------------------------------------------

    def emit(self, event: events.Event) -> None:
        self.hub.emit(event)

    def cloudwatch(self, line: str) -> None:
        """One line of the environment's CloudWatch log stream."""
        if self._on_cloudwatch_line is not None:
            self._on_cloudwatch_line(self, line)

    # --- processes ----------------------------------------------------------------------

    def _runtime_exited(self) -> None:
        with self._cv:
            idle = self.state == "idle" and not self._sandbox.closing
        if idle:
            # Killed from outside between invocations: this environment cannot serve again.
            self._retire("failure")

    def _crashed_extensions(self) -> list[str]:
        """Launched extensions whose process has exited (outside shutdown)."""
        if self.state in ("shutting-down", "dead"):
            return []
        return self._processes.exited_extensions()

    # --- invocation -----------------------------------------------------------------------

    def _run_invocation(self, inv: Invocation) -> None:
        try:
            self._invocation_phases(inv)
        except Exception:
            log.exception("invocation %s failed inside the emulator", inv.request_id)
            inv.answer(events.error_body("Sandbox.Failure", "emulator error"), "Unhandled")
            inv.completed.set()
            self._retire("failure")

    def _invocation_phases(self, inv: Invocation) -> None:
        sandbox, processes = self._sandbox, self._processes
        self._logs.follow(inv)
        if (
            self.init_error is not None
            and self.init_error[0] != "Sandbox.Failure"  # the emulator stopped it
            and not self.suppressed_init
            and self.initialization_type == "on-demand"
            and self.invocations == 1
            and not sandbox.closing
            and self.state == "busy"
        ):
            self._retry_init_in_invoke(inv)
        self._logs.start(inv)
        if self.init_error is not None:
            self._finish_failed_init(inv)
            return
        invoke_event = events.invoke_event(
            inv.request_id, inv.deadline_ms, self.fn.function_arn, inv.trace_id
        )
        with self._cv:
            sandbox.current = inv
            sandbox.deliver("INVOKE", invoke_event)
            sandbox.runtime_pending = inv
            self._cv.notify_all()
            while (
                inv.kind is None
                and processes.runtime_exit is None
                and time.monotonic() < inv.deadline_mono
            ):
                self._cv.wait(inv.deadline_mono - time.monotonic())
        if inv.kind is not None:
            # Answer now; the runtime's `next` (and the extensions') end the invocation.
            processes.sync_runtime_logs()
            if processes.over_memory_limit():
                # Sampling mode: an allocation made and freed between two samples still
                # left the sandbox above its memory size, which Lambda never answers from.
                exit_code = processes.kill_runtime_out_of_memory(RUNTIME_TERM_GRACE_S)
                self._runtime_failed(inv, -9 if exit_code is None else exit_code, True)
                return
            inv.answer(inv.body, "Unhandled" if inv.kind == "error" else None)
            with self._cv:
                while (
                    inv.runtime_done_mono is None
                    and processes.runtime_exit is None
                    and time.monotonic() < inv.deadline_mono
                ):
                    self._cv.wait(inv.deadline_mono - time.monotonic())
        if inv.runtime_done_mono is not None:
            status = "error" if inv.kind == "error" else "success"
            self._runtime_done(inv, status, inv.error_type, inv.runtime_done_mono)
            with self._cv:
                while not sandbox.extensions_idle() and time.monotonic() < inv.deadline_mono:
                    if sandbox.closing or self._crashed_extensions():
                        break
                    self._cv.wait(max(inv.deadline_mono - time.monotonic(), 0.001))
                extensions_done = sandbox.extensions_idle()
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
            exit_code, oom = processes.runtime_exit, processes.oom
        if exit_code is not None:
            self._runtime_failed(inv, exit_code, oom)
        else:
            self._timed_out(inv, runtime_done_emitted=False)

    def _retry_init_in_invoke(self, inv: Invocation) -> None:
        """Suppressed init (reference §2): an init that failed or timed out is retried inside
        the first invocation, phase "invoke", bounded by the invocation's deadline. Lambda
        resets the sandbox for it: every process is killed and started again, so extensions
        register and subscribe anew."""
        self.suppressed_init = True
        self.hub.flush(0.2)  # the failed init's events reach whoever subscribed to them
        self.kill()
        self._processes.join_runtime_watcher(2.0)
        self._processes.wait_for_extension_output(0.5)
        old_hub, self.hub = self.hub, TelemetryHub()
        old_hub.stop()
        with self._cv:
            if self._sandbox.closing or self.state != "busy":
                return  # a shutdown came meanwhile: the invocation fails with the init error
            self._sandbox.restart_init()
            self._processes.forget()
        self._run_init("invoke", time.time(), time.monotonic(), inv.deadline_mono)
        # The retried init ran inside this invocation: its time is in durationMs already.
        inv.init_duration_s = None

    def _runtime_done(
        self, inv: Invocation, status: str, error_type: str | None, at: float
    ) -> None:
        self._processes.sync_runtime_logs()
        self._logs.runtime_done(inv, status, error_type, at)

    def _report(
        self,
        inv: Invocation,
        status: str,
        error_type: str | None,
        at: float,
        max_memory_mb: int | None = None,
    ) -> None:
        self._processes.sync_extension_logs()
        memory = max_memory_mb or self._processes.max_memory_used_mb()
        metrics = self._logs.report(inv, status, error_type, at, memory)
        if self.on_report is not None:
            post_runtime_ms = (
                (at - inv.runtime_done_mono) * 1000.0
                if inv.runtime_done_mono is not None and self._sandbox.extensions
                else None
            )
            try:
                self.on_report(self, inv.started_at, status, metrics.duration_ms, post_runtime_ms)
            except Exception:  # metrics must never break an invocation
                log.exception("report consumer failed for %s", inv.request_id)
        inv.completed.set()

    def _release(self, inv: Invocation) -> None:
        with self._cv:
            self._sandbox.current = None
            if self._sandbox.closing or self.state in ("shutting-down", "dead"):
                return  # a shutdown is under way: never hand this environment out again
            runtime_gone = self._processes.runtime_exit is not None
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

    def _timed_out(self, inv: Invocation, *, runtime_done_emitted: bool) -> None:
        self._begin_reset()
        at = inv.deadline_mono
        self._processes.max_memory_used_mb()  # read the runtime's peak before it is gone
        self._processes.signal_runtime(signal.SIGKILL)
        self._processes.sync_runtime_logs()
        message = events.timeout_message(inv.request_id, self.fn.timeout_s)
        inv.answer(events.error_body("Sandbox.Timedout", message), "Unhandled")
        self._logs.function_line(
            events.timeout_line(time.time(), inv.request_id, self.fn.timeout_s), time.time()
        )
        if not runtime_done_emitted:
            self._runtime_done(inv, "timeout", None, at)
        self._report(inv, "timeout", None, at)
        self._retire("timeout")

    def _runtime_failed(self, inv: Invocation, exit_code: int, oom: bool) -> None:
        self._begin_reset()
        at = time.monotonic()
        self._processes.sync_runtime_logs()
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        message = events.runtime_exit_message(inv.request_id, -9 if oom else exit_code)
        inv.answer(events.error_body(error_type, message), "Unhandled")
        self._logs.function_line(message + "\n", time.time())
        if inv.error_type == "Function.ResponseSizeTooLarge":
            # The runtime died of the refused response: that is what the caller was told.
            error_type = inv.error_type
        self._runtime_done(inv, "error", error_type, at)
        memory = self.fn.memory_size_mb if oom else None
        self._report(inv, "error", error_type, at, max_memory_mb=memory)
        self._retire("failure")

    def _finish_failed_init(self, inv: Invocation) -> None:
        assert self.init_error is not None
        error_type, body = self.init_error
        inv.answer(body, "Unhandled")
        at = time.monotonic()
        status = "timeout" if error_type == "Sandbox.Timedout" else "error"
        self._runtime_done(inv, status, error_type, at)
        self._report(inv, status, error_type, at)
        self._retire("failure")

    # --- shutdown -------------------------------------------------------------------------

    def _shutdown(self, reason: str) -> None:
        self.shutdown_reason = reason
        with self._cv:
            self.state = "shutting-down"
            inv = self._sandbox.current
            self._cv.notify_all()
        if inv is not None and inv.answered.is_set():
            # Lambda never spins down mid-invocation: let one that only waits for extensions'
            # `next` finish (bounded), so its report reaches them before SHUTDOWN.
            inv.completed.wait(min(SHUTDOWN_BUDGET_S, max(inv.deadline_mono - time.monotonic(), 0)))
        with_extensions = self._processes.has_extensions()
        budget_end = time.monotonic() + (SHUTDOWN_BUDGET_S if with_extensions else 0.0)
        self._processes.stop_runtime(RUNTIME_TERM_GRACE_S if with_extensions else 0.05)
        # Extensions must see everything (the last report included) before SHUTDOWN.
        self.hub.flush(max(min(1.0, budget_end - time.monotonic()), 0.05))
        with self._cv:
            deadline_ms = int((time.time() + max(budget_end - time.monotonic(), 0)) * 1000)
            self._sandbox.deliver("SHUTDOWN", events.shutdown_event(reason, deadline_ms))
            self._cv.notify_all()
            while time.monotonic() < budget_end and self._processes.extensions_running():
                self._cv.wait(0.02)
        self.kill()
        self._processes.release_memory_limit()
        with self._cv:
            self._sandbox.closing = True
            self.state = "dead"
            self._cv.notify_all()
        self._processes.wait_for_extension_output(0.5)
        self.hub.stop()
        if self._server is not None:
            self._server.stop()
        if self._resetting:
            self._end_reset(self.view.keep_tmp())
        self.view.cleanup()
        release_address(self.address)
