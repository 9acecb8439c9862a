"""The `Emulator`: a pool of execution environments per function behind an Invoke API.

Warm reuse: an idle environment serves the next invocation; a busy one is never shared (a
concurrent invocation gets a new environment); idle ones spin down after `keep_warm_s`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from lambdascope.emulator import events, sandboxfs
from lambdascope.emulator import memory_limit as memory_limit_module
from lambdascope.emulator.config import FunctionConfig
from lambdascope.emulator.environment import INIT_TIMEOUT_S, ExecutionEnvironment
from lambdascope.emulator.invoke_api import InvokeServer
from lambdascope.emulator.invoke_result import (
    TOO_LARGE,
    InvokeResult,
    api_error,
    locate_function,
    payload_too_large,
)
from lambdascope.emulator.logs import FunctionLogs
from lambdascope.emulator.managed import INITIALIZATION_TYPE as MANAGED_INIT_TYPE
from lambdascope.emulator.managed import ManagedEnvironment
from lambdascope.emulator.metrics import MetricStream, MetricStreamConfig

log = logging.getLogger(__name__)

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
DEFAULT_ACCOUNT_CONCURRENCY = 1000
# Lambda keeps 100 of an account's (default 1,000) concurrency unreserved; the emulator keeps
# the same tenth of whatever account limit it is given, at most 100.
UNRESERVED_CONCURRENCY_MIN = 100
# A caller arriving while the only environment finishes its post-runtime phase (extensions
# calling `next`, usually a few ms) waits this long for it instead of paying a cold start:
# sequential invocations then stay warm, as they do in Lambda.
FINISHING_WAIT_S = 0.1


_api_error = api_error  # the Invoke API error bodies live with InvokeResult


def unreserved_pool(functions: Iterable[FunctionConfig], account_concurrency: int) -> int:
    """What functions without a reservation share: the account limit minus every reservation.
    ValueError when the reservations leave less than Lambda keeps unreserved."""
    if isinstance(account_concurrency, bool) or not isinstance(account_concurrency, int):
        raise ValueError(f"account_concurrency must be a whole number, not {account_concurrency!r}")
    if account_concurrency < 1:
        raise ValueError(f"account_concurrency must be at least 1, not {account_concurrency}")
    reserved = {f.name: f.reserved_concurrency for f in functions if f.reserved_concurrency}
    keep = min(UNRESERVED_CONCURRENCY_MIN, account_concurrency // 10)
    if sum(reserved.values()) > account_concurrency - keep:
        raise ValueError(
            f"reserved concurrency {reserved} adds up to {sum(reserved.values())}, which leaves "
            f"less than {keep} of account_concurrency {account_concurrency} unreserved: lower "
            "the reservations or raise account_concurrency"
        )
    return account_concurrency - sum(reserved.values())


class Emulator:
    """Local Lambda: `start()`, then `invoke()` from Python or boto3 at `invoke_url`."""

    def __init__(
        self,
        functions: Iterable[FunctionConfig],
        host: str = "127.0.0.1",
        port: int = 0,
        keep_warm_s: float = 300.0,
        account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
        async_retry_delays_s: tuple[float, ...] = (60.0, 120.0),
        max_event_age_s: float = 21_600.0,
        log_dir: Path | None = None,
        metric_stream: MetricStreamConfig | None = None,
        isolation: str = "auto",
        memory_limit: str = "auto",
    ) -> None:
        """`isolation`: "namespace" (private /opt, /var/task, /tmp, /etc/hosts per
        environment; IsolationError where impossible), "none" (real paths, shared /tmp) or
        "auto" (namespace where possible, else none, said once in the log).

        `memory_limit`: "cgroup" (the kernel holds each environment's processes together to
        the memory size; MemoryLimitError where impossible), "sampling" (their peaks summed
        every 20 ms and before each response) or "auto" (cgroup where possible, else
        sampling, said once in the log)."""
        self.functions: dict[str, FunctionConfig] = {}
        for fn in functions:
            if fn.name in self.functions:
                raise ValueError(f"function {fn.name!r} is configured twice: names must be unique")
            self.functions[fn.name] = fn
        self.host = host
        self.port = port
        self.keep_warm_s = keep_warm_s
        self.account_concurrency = account_concurrency
        self.unreserved_concurrency = unreserved_pool(self.functions.values(), account_concurrency)
        self.async_retry_delays_s = async_retry_delays_s
        self.max_event_age_s = max_event_age_s
        self.throttles: dict[str, int] = {}
        # Invocations served by on-demand environments of a function with provisioned
        # concurrency (CloudWatch's ProvisionedConcurrencySpilloverInvocations).
        self.spillover: dict[str, int] = {}
        self.async_attempts: dict[str, int] = {}  # request id -> attempts made
        self.async_dropped: list[str] = []  # request ids given up on
        self._lock = threading.Condition()
        self._envs: dict[str, list[ExecutionEnvironment]] = {name: [] for name in self.functions}
        # Per function: the /tmp of reset environments, for their successors.
        self._tmp_after_reset = {name: sandboxfs.TmpAfterReset() for name in self.functions}
        self._all_envs: list[ExecutionEnvironment] = []
        self._background: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stopped = False
        self._server: InvokeServer | None = None
        self._reaper: threading.Thread | None = None
        self.logs = FunctionLogs(log_dir)
        self.namespaced = sandboxfs.resolve_isolation(isolation)
        self.memory_limit = memory_limit_module.resolve_memory_limit(memory_limit)
        # CloudWatch AWS/Lambda metrics, streamed as Firehose delivers a metric stream.
        self.metric_stream = MetricStream(metric_stream) if metric_stream else None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        server = InvokeServer((self.host, self.port), self)
        server.start()
        self._server = server
        self.port = server.server_address[1]
        self._reaper = threading.Thread(target=self._reap, name="emulator-reaper", daemon=True)
        self._reaper.start()
        if self.metric_stream is not None:
            self.metric_stream.start()
        # Provisioned concurrency: initialised ahead, ready when start() returns.
        provisioning = [
            self._provision(fn)
            for fn in self.functions.values()
            for _ in range(fn.provisioned_concurrency)
        ]
        # Lambda Managed Instances: their minimum of environments, ready before any request.
        provisioning += [
            self._provision(fn, MANAGED_INIT_TYPE)
            for fn in self.functions.values()
            if fn.managed_instances
            for _ in range(fn.min_execution_environments)
        ]
        # Proactive initialization: one on-demand environment initialised ahead of the first
        # request, as Lambda may do; nobody waits for it, so start() does not either.
        for fn in self.functions.values():
            if fn.proactive_init:
                self._provision(fn, "on-demand")
        for thread in provisioning:
            if thread is not None:
                thread.join(INIT_TIMEOUT_S + 5)
        return self

    def _new_environment(
        self, fn: FunctionConfig, initialization_type: str = "on-demand"
    ) -> ExecutionEnvironment:
        kind = ManagedEnvironment if fn.managed_instances else ExecutionEnvironment
        if fn.managed_instances:
            initialization_type = MANAGED_INIT_TYPE
        env = kind(
            fn,
            self._finished,
            self._cloudwatch_line,
            initialization_type,
            namespaced=self.namespaced,
            tmp_after_reset=self._tmp_after_reset[fn.name],
            memory_limit=self.memory_limit,
        )
        env.on_report = self._on_report
        return env

    def _provision(
        self, fn: FunctionConfig, initialization_type: str = "provisioned-concurrency"
    ) -> threading.Thread | None:
        """Initialise an environment ahead of any request, in the background: provisioned
        concurrency, or a proactive on-demand init (whose first invocation still reports
        its Init Duration, as Lambda's does)."""
        env = self._new_environment(fn, initialization_type)
        env.initialized_ahead = True
        with self._lock:
            if self._stopping.is_set():
                return None
            self._envs[fn.name].append(env)
            self._all_envs.append(env)

        def run() -> None:
            env.initialize()
            if not env.make_idle():
                log.warning(
                    "%s environment of %s initialised ahead failed its init (%s); not replaced",
                    initialization_type,
                    fn.name,
                    env.init_error[0] if env.init_error else "stopped",
                )
                env.shutdown("failure")
                self._finished(env, False)

        thread = threading.Thread(target=run, name=f"provision-{fn.name}", daemon=True)
        thread.start()
        with self._lock:
            self._background.append(thread)
        return thread

    @property
    def invoke_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """SHUTDOWN (spindown) to every environment in parallel, then kill what remains."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._stopping.set()
            envs = list(self._all_envs)
        if self._server is not None:
            self._server.stop()
        threads = [
            threading.Thread(target=env.shutdown, args=("spindown",), daemon=True) for env in envs
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5.0
        for thread in threads + list(self._background):
            thread.join(max(deadline - time.monotonic(), 0.0))
        for env in envs:
            env.kill()
            env.cleanup()  # also when a shutdown did not finish in time
        for kept in self._tmp_after_reset.values():
            kept.clear()
        if self._reaper is not None:
            self._reaper.join(2.0)
        if self.metric_stream is not None:
            # After the environments: their last reports are in the final flush.
            self.metric_stream.stop()

    def environments(self, name: str) -> list[ExecutionEnvironment]:
        """The live environments of a function (for tests and the TUI)."""
        with self._lock:
            return list(self._envs.get(name, []))

    # --- invoke -----------------------------------------------------------------------------

    def resolve(self, name: str) -> FunctionConfig | None:
        """A function by name, `name:qualifier`, partial or full ARN."""
        found = locate_function(name, None, self.functions, "")
        return found if isinstance(found, FunctionConfig) else None

    def invoke(
        self,
        name: str,
        payload: bytes = b"{}",
        invocation_type: str = "RequestResponse",
        log_type: str | None = None,
        qualifier: str | None = None,
        client_context: str | None = None,
    ) -> InvokeResult:
        """Invoke like Lambda's Invoke API. `client_context` is base64 JSON, as boto3's
        `ClientContext` (the handler sees it as `context.client_context`)."""
        request_id = str(uuid.uuid4())
        found = locate_function(name, qualifier, self.functions, request_id)
        if isinstance(found, InvokeResult):
            return found
        fn = found
        if invocation_type not in INVOCATION_TYPES:
            return _api_error(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type {invocation_type!r} is not one of {INVOCATION_TYPES}",
                request_id,
            )
        too_large = payload_too_large(len(payload), invocation_type)
        if too_large:
            return _api_error(413, TOO_LARGE, too_large, request_id)
        if not payload.strip():
            payload = b"{}"
        try:
            json.loads(payload)
        except ValueError as exc:
            return _api_error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
                request_id,
            )
        context_json = None
        if client_context:
            try:
                context_json = base64.b64decode(client_context, validate=True).decode("utf-8")
                if not isinstance(json.loads(context_json), dict):
                    raise ValueError("not an object")
            except ValueError:
                return _api_error(
                    400,
                    "InvalidRequestContentException",
                    "Client context must be a valid Base64-encoded JSON object.",
                    request_id,
                )
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, None, None, request_id)
        if invocation_type == "Event":
            return self._enqueue(fn, payload, request_id)
        return self._invoke_sync(
            fn, payload, request_id, tail=log_type == "Tail", client_context=context_json
        )

    def _invoke_sync(
        self,
        fn: FunctionConfig,
        payload: bytes,
        request_id: str,
        *,
        tail: bool,
        client_context: str | None = None,
    ) -> InvokeResult:
        env, throttle = self._acquire(fn)
        if env is None and throttle is None:
            return _api_error(
                503, "ServiceException", "the emulator is stopping; no new invocations", request_id
            )
        if env is None:
            assert throttle is not None
            with self._lock:
                self.throttles[fn.name] = self.throttles.get(fn.name, 0) + 1
            self._metric("Throttles", 1, fn)
            result = _api_error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                request_id,
                Reason=throttle,
            )
            result.retry_after_s = 1
            return result
        if fn.provisioned_concurrency and env.initialization_type == "on-demand":
            with self._lock:
                self.spillover[fn.name] = self.spillover.get(fn.name, 0) + 1
            self._metric("ProvisionedConcurrencySpilloverInvocations", 1, fn)
        elif env.initialization_type == "provisioned-concurrency":
            self._metric("ProvisionedConcurrencyInvocations", 1, fn)
        self._sample_concurrency(fn)
        if env.state == "new":
            env.initialize()
        outcome = env.invoke(
            request_id, payload, wait_for_report=tail, client_context=client_context
        )
        return InvokeResult(
            status_code=200,
            payload=outcome.payload,
            function_error=outcome.function_error,
            executed_version=fn.version,
            log_result=events.log_tail(outcome.log_lines) if tail else None,
            request_id=request_id,
        )

    def _acquire(self, fn: FunctionConfig) -> tuple[ExecutionEnvironment | None, str | None]:
        """An idle environment (warm), or a new one (cold), or the throttle reason. Every
        request in flight counts against the limits, whichever environment serves it."""
        wait_until = time.monotonic() + FINISHING_WAIT_S
        with self._lock:
            if self._stopping.is_set():
                return None, None
            if fn.managed_instances:
                return self._acquire_managed(fn, wait_until)
            envs = self._envs[fn.name]
            while True:
                reason = self._throttle_reason(fn)
                if reason is None:
                    # Provisioned environments first; then the most recently created on-demand.
                    ordered = sorted(
                        reversed(envs), key=lambda e: e.initialization_type == "on-demand"
                    )
                    for env in ordered:
                        if env.try_claim():
                            return env, None
                # An environment about to finish frees concurrency (a throttle) or serves this
                # request warm (no cold start): sequential callers never see either in Lambda.
                candidates = envs if reason is None else self._every_environment()
                remaining = wait_until - time.monotonic()
                if remaining <= 0 or not any(env.finishing() for env in candidates):
                    break
                self._lock.wait(remaining)
            if reason is not None:
                return None, reason
            env = self._new_environment(fn)
            envs.append(env)
            self._all_envs = [e for e in self._all_envs if e.state != "dead"] + [env]
            return env, None

    def _acquire_managed(
        self, fn: FunctionConfig, wait_until: float
    ) -> tuple[ExecutionEnvironment | None, str | None]:
        """Lambda Managed Instances (hold `_lock`): a free runtime worker in the first
        environment that has one; else a throttle, with one more environment started in the
        background when the function's maximum and the account allow it."""
        envs = self._envs[fn.name]
        while True:
            reason = self._throttle_reason(fn)
            if reason is None:
                for env in envs:
                    if env.try_claim():
                        return env, None
            remaining = wait_until - time.monotonic()
            candidates = envs if reason is None else self._every_environment()
            if remaining <= 0 or not any(env.finishing() for env in candidates):
                break
            self._lock.wait(remaining)
        if reason is None:
            self._scale_out(fn)
        # Lambda gives no reason of its own for a saturated environment: the closest it has.
        return None, reason or "ConcurrentInvocationLimitExceeded"

    def _scale_out(self, fn: FunctionConfig) -> None:
        """One more Managed Instances environment, unless one is being initialised already or
        the function has its maximum (hold `_lock`)."""
        envs = self._envs[fn.name]
        if any(not env.ready_once for env in envs):
            return
        most = fn.max_execution_environments
        if most is not None and len(envs) >= most:
            return
        threading.Thread(target=self._provision, args=(fn, MANAGED_INIT_TYPE), daemon=True).start()

    def _every_environment(self) -> list[ExecutionEnvironment]:
        return [env for group in self._envs.values() for env in group]

    def _throttle_reason(self, fn: FunctionConfig) -> str | None:
        """Why one more request of `fn` would be throttled now, or None (hold `_lock`).

        A reservation is both a ceiling for its function and a share taken out of the account
        limit: functions without one share what is left (the unreserved pool)."""
        in_flight = {
            name: sum(env.requests_in_flight() for env in group)
            for name, group in self._envs.items()
        }
        if fn.reserved_concurrency is not None:
            if in_flight[fn.name] >= fn.reserved_concurrency:
                return "ReservedFunctionConcurrentInvocationLimitExceeded"
            return None
        unreserved_busy = sum(
            count
            for name, count in in_flight.items()
            if self.functions[name].reserved_concurrency is None
        )
        if unreserved_busy >= self.unreserved_concurrency:
            return "ConcurrentInvocationLimitExceeded"
        return None

    def _finished(self, env: ExecutionEnvironment, reusable: bool) -> None:
        replace = False
        with self._lock:
            self._lock.notify_all()
            if not reusable:
                group = self._envs.get(env.fn.name, [])
                if env in group:
                    group.remove(env)
                    # A provisioned environment lost to a timeout or crash is re-provisioned,
                    # and Managed Instances keep their minimum.
                    replace = (
                        env.initialization_type in ("provisioned-concurrency", MANAGED_INIT_TYPE)
                        and env.ready_once
                        and not self._stopping.is_set()
                        and (
                            not env.fn.managed_instances
                            or len(group) < env.fn.min_execution_environments
                        )
                    )
        if replace:
            self._provision(env.fn, env.initialization_type)

    # --- CloudWatch metrics -----------------------------------------------------------------

    def _metric(
        self, name: str, value: float, fn: FunctionConfig | None, t_s: float | None = None
    ) -> None:
        if self.metric_stream is None:
            return
        self.metric_stream.add(
            name,
            value,
            time.time() if t_s is None else t_s,
            function_name=fn.name if fn else "",
            resource=fn.name if fn else "",
        )

    def _on_report(
        self,
        env: ExecutionEnvironment,
        started_at: float,
        status: str,
        duration_ms: float,
        post_runtime_ms: float | None,
    ) -> None:
        """One finished invocation, stamped (as CloudWatch does) with its start time."""
        fn = env.fn
        self._metric("Invocations", 1, fn, started_at)
        self._metric("Errors", 0 if status == "success" else 1, fn, started_at)
        self._metric("Duration", duration_ms, fn, started_at)
        if post_runtime_ms is not None:
            self._metric("PostRuntimeExtensionsDuration", post_runtime_ms, fn, started_at)

    def _sample_concurrency(self, fn: FunctionConfig) -> None:
        """Concurrency gauges, sampled whenever an invocation takes an environment (the only
        moment they can reach a new maximum)."""
        if self.metric_stream is None:
            return

        def busy(env: ExecutionEnvironment) -> bool:
            if env.initialized_ahead and not env.ready_once:
                return False  # still being initialised ahead: not serving anything
            return env.state in ("new", "initializing", "busy")

        with self._lock:
            per_function = {
                name: [env for env in group if busy(env)] for name, group in self._envs.items()
            }
        now = time.time()
        mine = per_function.get(fn.name, [])
        self._metric("ConcurrentExecutions", len(mine), fn, now)
        total = sum(len(group) for group in per_function.values())
        unreserved = sum(
            len(group)
            for name, group in per_function.items()
            if self.functions[name].reserved_concurrency is None
        )
        claimed = unreserved + sum(
            f.reserved_concurrency if f.reserved_concurrency is not None else 0
            for f in self.functions.values()
        )
        # Provisioned concurrency of functions without a reservation is claimed too.
        claimed += sum(
            max(
                f.provisioned_concurrency
                - sum(1 for e in per_function[f.name] if e.initialization_type != "on-demand"),
                0,
            )
            for f in self.functions.values()
            if f.reserved_concurrency is None
        )
        self.metric_stream.add("ConcurrentExecutions", total, now, account_level=True)
        self.metric_stream.add("UnreservedConcurrentExecutions", unreserved, now)
        self.metric_stream.add("ClaimedAccountConcurrency", claimed, now)
        if fn.provisioned_concurrency:
            provisioned_busy = sum(1 for e in mine if e.initialization_type != "on-demand")
            self._metric("ProvisionedConcurrentExecutions", provisioned_busy, fn, now)
            self._metric(
                "ProvisionedConcurrencyUtilization",
                provisioned_busy / fn.provisioned_concurrency,
                fn,
                now,
            )

    def _cloudwatch_line(self, env: ExecutionEnvironment, line: str) -> None:
        self.logs.write(env.fn.name, env.log_stream, line)

    def _enqueue(self, fn: FunctionConfig, payload: bytes, request_id: str) -> InvokeResult:
        thread = threading.Thread(
            target=self._run_async, args=(fn, payload, request_id), daemon=True
        )
        with self._lock:
            self._background = [t for t in self._background if t.is_alive()]
            self._background.append(thread)
        thread.start()
        self._metric("AsyncEventsReceived", 1, fn)
        return InvokeResult(202, b"", None, None, None, request_id)

    def _run_async(self, fn: FunctionConfig, payload: bytes, request_id: str) -> None:
        """Lambda's async path: a function error (timeouts included) is retried
        `len(async_retry_delays_s)` times after those delays; throttles are retried every
        second until `max_event_age_s`; then the event is dropped."""
        expires = time.monotonic() + self.max_event_age_s
        retries = list(self.async_retry_delays_s)
        while not self._stopping.is_set():
            if time.monotonic() >= expires:
                break
            # Retries keep the request id, as Lambda's do.
            result = self._invoke_sync(fn, payload, request_id, tail=False)
            if result.status_code == 429:
                self._stopping.wait(1.0)
                continue
            with self._lock:
                self.async_attempts[request_id] = self.async_attempts.get(request_id, 0) + 1
            if result.status_code == 200 and result.function_error is None:
                return
            if not retries:
                break
            self._stopping.wait(retries.pop(0))
        with self._lock:
            self.async_dropped.append(request_id)
        self._metric("AsyncEventsDropped", 1, fn)

    def _reap(self) -> None:
        interval = max(min(1.0, self.keep_warm_s / 4), 0.05)
        while not self._stopping.wait(interval):
            now = time.monotonic()
            expired: list[ExecutionEnvironment] = []
            with self._lock:
                for group in self._envs.values():
                    for env in list(group):
                        if isinstance(env, ManagedEnvironment):
                            # Down to the function's minimum, one idle environment at a time.
                            above_min = len(group) > env.fn.min_execution_environments
                            idle = above_min and env.idle_for_s() >= self.keep_warm_s
                            if idle and env.try_retire():
                                group.remove(env)
                                expired.append(env)
                            continue
                        if env.initialization_type != "on-demand":
                            continue  # provisioned concurrency stays warm
                        if now - env.idle_since >= self.keep_warm_s and env.try_retire():
                            group.remove(env)
                            expired.append(env)
            for env in expired:
                thread = threading.Thread(target=env.shutdown, args=("spindown",), daemon=True)
                thread.start()
                with self._lock:
                    self._background.append(thread)
