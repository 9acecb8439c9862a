"""Lambda Managed Instances: one execution environment serving many requests at once.

As Lambda documents it for Python (see the README's "Lambda Managed Instances" section):
- the runtime (awslambdaric, given `AWS_LAMBDA_MAX_CONCURRENCY`) forks one worker process per
  request slot; every worker performs its own init and polls `/runtime/invocation/next` on the
  environment's one Runtime API; they share /tmp, the extensions and the memory limit;
- the init ends when the extensions are ready and one worker called `next`; its limit is the
  larger of 130 s and the function's timeout;
- nothing freezes between requests and extensions get no INVOKE events (SHUTDOWN only);
- a request is routed to any worker waiting in `next`; the response (or error) is matched to
  its request by the request id in the path;
- each request has its own timeout: the caller gets the timeout error and the platform events
  say `timeout`, but Lambda does not stop the handler: its worker stays busy until the handler
  returns (its late response is refused), and the other requests carry on;
- all workers busy: the request is refused (429) while the emulator adds an environment, if the
  function's maximum and the account allow one (Lambda scales asynchronously).
"""

from __future__ import annotations

import logging
import threading
import time

from lambdascope.emulator import events
from lambdascope.emulator.environment import SHUTDOWN_BUDGET_S, ExecutionEnvironment
from lambdascope.emulator.sandbox_state import Invocation, Outcome

log = logging.getLogger(__name__)

INITIALIZATION_TYPE = "lambda-managed-instances"
INIT_TIMEOUT_MIN_S = 130.0


def init_timeout_s(function_timeout_s: float) -> float:
    """Lambda Managed Instances: the larger of 130 s and the function's timeout."""
    return max(INIT_TIMEOUT_MIN_S, function_timeout_s)


class ManagedEnvironment(ExecutionEnvironment):
    """An environment whose `invoke()` may run many times at once, up to the number of runtime
    workers waiting in `next`. `try_claim()` reserves one of them for a caller."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._sandbox.managed = True
        self.init_timeout_s = init_timeout_s(self.fn.timeout_s)
        self._claims = 0  # claimed by a caller, not yet queued
        self._max_concurrency = self.fn.max_concurrency or 1
        # Concurrent requests' lines interleave: each request's Tail gets the records that
        # carry its request id (JSON, the only format here), not whatever came meanwhile.
        self._processes._on_function_line = self._function_line

    # --- capacity ----------------------------------------------------------------------

    def _ready(self) -> bool:
        """Initialised, not shutting down, runtime alive (hold `cv`)."""
        return (
            self.state == "idle"
            and not self._sandbox.closing
            and self._processes.runtime_exit is None
            and self.init_error is None
        )

    def _busy_workers(self) -> int:
        """Worker slots promised or taken: claimed, queued, or handed to a worker that has not
        called `next` again (a timed-out handler still running keeps its slot, and so does a
        worker that died with a request: the others carry on, as in Lambda). Hold `cv`."""
        sandbox = self._sandbox
        return self._claims + len(sandbox.pending) + len(sandbox.taken_by)

    def free_workers(self) -> int:
        """Worker slots no request is promised to. A worker still in its own init counts as
        free: a request queued for it waits until it calls `next`."""
        with self._cv:
            if not self._ready():
                return 0
            return max(self._max_concurrency - self._busy_workers(), 0)

    def try_claim(self) -> bool:
        with self._cv:
            if not self._ready() or self._busy_workers() >= self._max_concurrency:
                return False
            self._claims += 1
            return True

    def requests_in_flight(self) -> int:
        with self._cv:
            return self._claims + len(self._sandbox.in_flight)

    def finishing(self) -> bool:
        """A worker answered and is about to call `next` again: capacity in a moment."""
        with self._cv:
            return self._ready() and any(
                inv.answered.is_set() and inv.runtime_done_mono is None
                for inv in self._sandbox.in_flight.values()
            )

    def idle_for_s(self) -> float:
        """Seconds without any request in flight (0 while one is)."""
        with self._cv:
            if self._claims or self._sandbox.in_flight or self.state != "idle":
                return 0.0
            return time.monotonic() - self.idle_since

    # --- invoke ------------------------------------------------------------------------

    def invoke(
        self,
        request_id: str,
        payload: bytes,
        *,
        wait_for_report: bool,
        client_context: str | None = None,
    ) -> Outcome:
        """Queue the request for the next free worker (claimed with `try_claim()`)."""
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
            init_duration_s=None,  # initialised ahead of any request, as provisioned ones are
            client_context=client_context,
        )
        self.invocations += 1
        self._logs.start(inv)
        with self._cv:
            self._claims = max(self._claims - 1, 0)
            self._sandbox.in_flight[request_id] = inv
            self._sandbox.pending.append(inv)
            self._cv.notify_all()
        thread = threading.Thread(
            target=self._run_request, args=(inv,), name=f"invoke-{request_id}", daemon=True
        )
        thread.start()
        inv.answered.wait(timeout + SHUTDOWN_BUDGET_S + 10)
        if wait_for_report:
            inv.completed.wait(max(inv.deadline_mono - time.monotonic(), 0) + 1.0)
        outcome = inv.outcome or Outcome(
            request_id, events.error_body("Sandbox.Failure", "no answer"), "Unhandled", []
        )
        outcome.log_lines = self._logs.lines(inv)
        return outcome

    def _run_request(self, inv: Invocation) -> None:
        try:
            self._request_phases(inv)
        except Exception:
            log.exception("invocation %s failed inside the emulator", inv.request_id)
            inv.answer(events.error_body("Sandbox.Failure", "emulator error"), "Unhandled")
            inv.completed.set()
        finally:
            with self._cv:
                self._sandbox.in_flight.pop(inv.request_id, None)
                if inv in self._sandbox.pending:
                    self._sandbox.pending.remove(inv)
                if not self._sandbox.in_flight:
                    self.idle_since = time.monotonic()
                self._cv.notify_all()
            if not self._sandbox.closing:
                self._on_finished(self, True)  # wakes callers waiting for capacity

    def _request_phases(self, inv: Invocation) -> None:
        sandbox, processes = self._sandbox, self._processes
        with self._cv:
            while (
                inv.kind is None
                and not sandbox.closing
                and processes.runtime_exit is None
                and time.monotonic() < inv.deadline_mono
            ):
                self._cv.wait(max(inv.deadline_mono - time.monotonic(), 0.001))
            kind, exit_code = inv.kind, processes.runtime_exit
        if kind is not None:
            processes.sync_runtime_logs()
            inv.answer(inv.body, "Unhandled" if kind == "error" else None)
            with self._cv:
                while (
                    inv.runtime_done_mono is None
                    and not sandbox.closing
                    and processes.runtime_exit is None
                    and time.monotonic() < inv.deadline_mono
                ):
                    self._cv.wait(max(inv.deadline_mono - time.monotonic(), 0.001))
            done = inv.runtime_done_mono or time.monotonic()
            status = "error" if kind == "error" else "success"
            self._runtime_done(inv, status, inv.error_type, done)
            self._report(inv, status, inv.error_type, done)
            return
        if exit_code is not None or sandbox.closing:
            # The runtime (every worker) is gone, or the environment shuts down under it.
            at = time.monotonic()
            code = -9 if exit_code is None else exit_code
            message = events.runtime_exit_message(inv.request_id, code)
            inv.answer(events.error_body("Runtime.ExitError", message), "Unhandled")
            self._runtime_done(inv, "error", "Runtime.ExitError", at)
            self._report(inv, "error", "Runtime.ExitError", at)
            return
        self._request_timed_out(inv)

    def _request_timed_out(self, inv: Invocation) -> None:
        """The caller gets the timeout; the worker keeps running the handler (Lambda Managed
        Instances do not stop it) and stays busy until it returns."""
        with self._cv:
            self._sandbox.timed_out.add(inv.request_id)
        at = inv.deadline_mono
        self._processes.sync_runtime_logs()
        message = events.timeout_message(inv.request_id, self.fn.timeout_s)
        inv.answer(events.error_body("Sandbox.Timedout", message), "Unhandled")
        self._function_line(
            events.timeout_line(time.time(), inv.request_id, self.fn.timeout_s), time.time()
        )
        self._runtime_done(inv, "timeout", None, at)
        self._report(inv, "timeout", None, at)

    # --- logs and processes ------------------------------------------------------------

    def _function_line(self, line: str, t: float) -> None:
        self._logs.function_line(line, t)
        request_id = _request_id_of(line)
        if request_id is None:
            return
        with self._cv:
            inv = self._sandbox.in_flight.get(request_id)
        if inv is not None and not inv.completed.is_set():
            inv.log_lines.append(line)

    def _runtime_exited(self) -> None:
        # Every worker is gone (a worker that dies alone leaves the others serving, as in
        # Lambda): nothing can serve here any more. During the init, the init reports it.
        with self._cv:
            self._cv.notify_all()
            serving = self.state == "idle" and not self._sandbox.closing
        if serving:
            self._retire("failure")


def _request_id_of(line: str) -> str | None:
    """The request id of a JSON log record ("requestId"), or of a timeout line."""
    stripped = line.lstrip()
    if stripped.startswith("{"):
        try:
            import json

            record = json.loads(stripped)
        except ValueError:
            return None
        value = record.get("requestId") if isinstance(record, dict) else None
        return value if isinstance(value, str) and value else None
    parts = stripped.split(" ", 2)
    if len(parts) == 3 and parts[2].startswith("Task timed out"):
        return parts[1]
    return None
