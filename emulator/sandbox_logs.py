"""What one execution environment says, where Lambda says it: the platform events of each
phase (Telemetry API) with their CloudWatch lines (INIT_START, START, END, REPORT, ...), and
the runtime's and extensions' output as `function` / `extension` records, CloudWatch lines
and the current invocation's Tail log."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable

from lambdascope.emulator import events
from lambdascope.emulator.config import FunctionConfig
from lambdascope.emulator.sandbox_state import Invocation, RegisteredExtension

RUNTIME_VERSION = f"python:{sys.version_info.major}.{sys.version_info.minor}.emulator"


def runtime_version_arn(region: str, runtime_version: str = RUNTIME_VERSION) -> str:
    """Lambda's `arn:aws:lambda:<region>::runtime:<64 hex>` for a runtime version: a stable
    fake (the same version gives the same ARN, as Lambda's do) so tools can key on it."""
    digest = hashlib.sha256(runtime_version.encode("utf-8")).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


class SandboxLogs:
    """Builds and sends; the lifecycle decides when. Safe to call from any thread."""

    def __init__(
        self,
        fn: FunctionConfig,
        initialization_type: str,
        log_stream: str,
        *,
        emit: Callable[[events.Event], None],
        cloudwatch: Callable[[str], None],
    ) -> None:
        self.fn = fn
        self._initialization_type = initialization_type
        self._log_stream = log_stream
        self._emit = emit
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()
        self._tail: list[str] | None = None  # the log lines of the invocation under way

    # --- the processes' output --------------------------------------------------------------

    def function_line(self, line: str, t: float) -> None:
        self._emit(events.log_record("function", line, t, self.fn.log_format))
        self._to_tail(line)
        self._cloudwatch(line)

    def extension_line(self, line: str, t: float) -> None:
        self._emit(events.log_record("extension", line, t, self.fn.log_format))
        self._to_tail(line)
        self._cloudwatch(line)

    def _to_tail(self, line: str) -> None:
        # A multi-line record (a stack trace) arrives without its final newline: the Tail,
        # like CloudWatch, keeps it apart from the END line that follows.
        if not line.endswith("\n"):
            line += "\n"
        with self._lock:
            if self._tail is not None:
                self._tail.append(line)

    def follow(self, inv: Invocation) -> None:
        """From now on the processes' output is also the invocation's log (its Tail)."""
        with self._lock:
            self._tail = inv.log_lines

    def lines(self, inv: Invocation) -> list[str]:
        """The invocation's log so far (its Tail)."""
        with self._lock:
            return list(inv.log_lines)

    # --- init -------------------------------------------------------------------------------

    def init_start(self, t: float, phase: str) -> None:
        event = events.init_start(
            t,
            initialization_type=self._initialization_type,
            phase=phase,
            function_name=self.fn.name,
            function_version=self.fn.version,
            instance_id=self._log_stream,
            memory_size_mb=self.fn.memory_size_mb,
            runtime_version=RUNTIME_VERSION,
        )
        arn = runtime_version_arn(self.fn.region)
        event["record"]["runtimeVersionArn"] = arn
        self._emit(event)
        self._cloudwatch(
            f"INIT_START Runtime Version: {RUNTIME_VERSION}\tRuntime Version ARN: {arn}\n"
        )

    def init_runtime_done(
        self,
        t: float,
        phase: str,
        status: str,
        error_type: str | None,
        extensions: list[RegisteredExtension],
    ) -> None:
        """platform.initRuntimeDone at `t` (epoch s, when the runtime finished its init),
        then each registered extension's Ready state (now: all of them are done)."""
        now = time.time()
        self._emit(
            events.init_runtime_done(
                t,
                initialization_type=self._initialization_type,
                phase=phase,
                status=status,
                error_type=error_type,
            )
        )
        for ext in extensions:
            self._emit(events.extension_state(now, ext.name, "Ready", ext.events))
            self._cloudwatch(
                f"EXTENSION\tName: {ext.name}\tState: Ready\tEvents: [{', '.join(ext.events)}]\n"
            )

    def init_report(
        self, phase: str, status: str, error_type: str | None, duration_s: float
    ) -> None:
        self._emit(
            events.init_report(
                time.time(),
                initialization_type=self._initialization_type,
                phase=phase,
                status=status,
                error_type=error_type,
                duration_s=duration_s,
            )
        )
        line = f"INIT_REPORT Init Duration: {duration_s * 1000:.2f} ms\tPhase: {phase}"
        if status != "success":
            line += f"\tStatus: {status}" + (f"\tError Type: {error_type}" if error_type else "")
        self._cloudwatch(line + "\n")

    # --- invoke -----------------------------------------------------------------------------

    def start(self, inv: Invocation) -> None:
        self._emit(
            events.start(
                inv.started_at,
                inv.request_id,
                version=self.fn.version,
                function_arn=self.fn.function_arn,
                trace_id=inv.trace_id,
            )
        )
        self._cloudwatch(events.start_line(inv.request_id, self.fn.version))

    def runtime_done(self, inv: Invocation, status: str, error_type: str | None, at: float) -> None:
        """platform.runtimeDone; `at` is when the runtime was done (monotonic)."""
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
        self._emit(
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

    def report(
        self,
        inv: Invocation,
        status: str,
        error_type: str | None,
        at: float,
        max_memory_used_mb: int,
    ) -> events.ReportMetrics:
        """platform.report with END and REPORT, which close the invocation's log."""
        metrics = events.ReportMetrics(
            duration_ms=(at - inv.started_mono) * 1000.0,
            memory_size_mb=self.fn.memory_size_mb,
            max_memory_used_mb=max_memory_used_mb,
            init_duration_ms=(
                inv.init_duration_s * 1000.0 if inv.init_duration_s is not None else None
            ),
        )
        self._emit(
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
        with self._lock:
            inv.log_lines.extend([end, report])
            if self._tail is inv.log_lines:
                self._tail = None
        self._cloudwatch(end)
        self._cloudwatch(report)
        return metrics
