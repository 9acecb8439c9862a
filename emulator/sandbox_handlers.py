"""The rules behind one execution environment's Runtime API (`runtime_next`, `runtime_response`,
...), Extensions API (`extension_register`, `extension_next`, ...), Telemetry API
(`telemetry_subscribe`) and Logs API (`logs_subscribe`): the `SandboxController` that
`sandbox_api` serves over HTTP. They meet the environment's lifecycle in the shared
`SandboxState`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Protocol

from lambdascope.emulator import events, logs_api
from lambdascope.emulator.config import ACCOUNT_ID, FunctionConfig
from lambdascope.emulator.sandbox_api import (
    MAX_BODY_BYTES,
    Response,
    error_response,
    json_response,
)
from lambdascope.emulator.sandbox_state import Invocation, RegisteredExtension, SandboxState
from lambdascope.emulator.telemetry import Subscriber, TelemetryHub

MAX_EXTENSIONS = 10
# The only Telemetry API schema Lambda Managed Instances accept.
MANAGED_SCHEMA_VERSION = "2025-01-29"


class Host(Protocol):
    """What the handlers need of their environment."""

    address: str  # the sandbox's, for `sandbox.localdomain` in Telemetry destinations
    hub: TelemetryHub  # replaced when a suppressed init resets the sandbox

    def emit(self, event: events.Event) -> None: ...
    def cloudwatch(self, line: str) -> None: ...


class SandboxHandlers:
    """One method per API call. Long polls (`next`) block on the sandbox's `cv` in their HTTP
    handler thread; None tells the server to drop the connection (the sandbox is closing)."""

    def __init__(self, fn: FunctionConfig, sandbox: SandboxState, host: Host) -> None:
        self.fn = fn
        self._sandbox = sandbox
        self._host = host

    # --- Runtime API ------------------------------------------------------------------------

    def runtime_next(self) -> Response | None:
        sandbox = self._sandbox
        if sandbox.managed:
            return self._managed_next()
        with sandbox.cv:
            if sandbox.closing:
                return None
            if not sandbox.init_done:
                if sandbox.runtime_init_done_at is None:
                    sandbox.runtime_init_done_at = time.time()
                sandbox.runtime_ready = True
            inv = sandbox.current
            if inv is not None and inv.kind is not None and inv.runtime_done_mono is None:
                inv.runtime_done_mono = time.monotonic()
            sandbox.cv.notify_all()
            while not sandbox.closing and sandbox.runtime_pending is None:
                sandbox.cv.wait(1.0)
            if sandbox.closing or sandbox.runtime_pending is None:
                return None
            inv = sandbox.runtime_pending
            sandbox.runtime_pending = None
        return self._invocation_response(inv)

    def _managed_next(self) -> Response | None:
        """Lambda Managed Instances: any idle worker takes the oldest pending request; the
        `next` of a worker on the connection that took a request ends that request's runtime
        part (its runtimeDone)."""
        sandbox = self._sandbox
        connection = threading.get_ident()
        with sandbox.cv:
            if sandbox.closing:
                return None
            if not sandbox.init_done:
                if sandbox.runtime_init_done_at is None:
                    sandbox.runtime_init_done_at = time.time()
                sandbox.runtime_ready = True
            done = sandbox.taken_by.pop(connection, None)
            if done is not None and done.runtime_done_mono is None:
                done.runtime_done_mono = time.monotonic()
            sandbox.workers_waiting += 1
            sandbox.cv.notify_all()
            try:
                while not sandbox.closing and not sandbox.pending:
                    sandbox.cv.wait(1.0)
                if sandbox.closing or not sandbox.pending:
                    return None
                inv = sandbox.pending.popleft()
            finally:
                sandbox.workers_waiting -= 1
            sandbox.taken_by[connection] = inv
            sandbox.cv.notify_all()
        return self._invocation_response(inv)

    def _invocation_response(self, inv: Invocation) -> Response:
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

    def _posting(self, request_id: str) -> tuple[Invocation | None, Response | None]:
        sandbox = self._sandbox
        if sandbox.managed:
            inv = sandbox.in_flight.get(request_id)
            if request_id in sandbox.timed_out:
                return None, error_response(
                    403, "InvalidStateTransition", f"invocation {request_id} already timed out"
                )
            if inv is not None and sandbox.taken_by.get(threading.get_ident()) is not inv:
                # The worker posts on another connection than it took the request on: its
                # runtime part ends with the post (no `next` of this worker can be told apart).
                inv.runtime_done_mono = time.monotonic()
                for connection in [c for c, x in sandbox.taken_by.items() if x is inv]:
                    del sandbox.taken_by[connection]
        else:
            inv = sandbox.current
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
        with self._sandbox.cv:
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
                self._sandbox.cv.notify_all()
                return error_response(413, "RequestEntityTooLarge", "response exceeds 6 MiB")
            inv.kind, inv.body = "response", body
            inv.response_started_mono, inv.response_done_mono = started, time.monotonic()
            self._sandbox.cv.notify_all()
        return json_response(202, {"status": "OK"})

    def runtime_error(self, request_id: str, body: bytes, headers: dict[str, str]) -> Response:
        with self._sandbox.cv:
            inv, problem = self._posting(request_id)
            if inv is None:
                assert problem is not None
                return problem
            error_type = _error_type(body, headers)
            inv.kind, inv.body, inv.error_type = "error", body, error_type
            self._sandbox.cv.notify_all()
        return json_response(202, {"status": "OK"})

    def runtime_init_error(self, body: bytes, headers: dict[str, str]) -> Response:
        with self._sandbox.cv:
            # Managed Instances: every worker fails its own init; the first one tells Lambda.
            if self._sandbox.init_done or (
                self._sandbox.managed and self._sandbox.init_error is not None
            ):
                return error_response(
                    403, "InvalidStateTransition", "init/error is only valid during init"
                )
            self._sandbox.init_error = (_error_type(body, headers), body)
            if self._sandbox.runtime_init_done_at is None:
                self._sandbox.runtime_init_done_at = time.time()
            self._sandbox.cv.notify_all()
        return json_response(202, {"status": "OK"})

    # --- Extensions API ---------------------------------------------------------------------

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
        sandbox = self._sandbox
        if sandbox.managed and "INVOKE" in requested:
            # One environment serves many requests at once: there is no per-request event.
            return error_response(
                400,
                "Extension.InvalidEventType",
                f"{name or 'the extension'} registers for INVOKE, which Lambda Managed Instances "
                "do not send: register for SHUTDOWN only",
            )
        with sandbox.cv:
            if not name:
                return error_response(
                    403, "Extension.InvalidExtensionName", "Lambda-Extension-Name is empty"
                )
            if sandbox.init_done:
                return error_response(
                    403, "Extension.RegistrationClosed", "extensions register during init only"
                )
            if name in sandbox.registered_names():
                return error_response(
                    403, "Extension.InvalidExtensionState", f"{name} is already registered"
                )
            if len(sandbox.extensions) >= MAX_EXTENSIONS:
                return error_response(
                    403, "Extension.TooManyExtensions", f"at most {MAX_EXTENSIONS} extensions"
                )
            external = name in sandbox.external_names
            if not external and "SHUTDOWN" in requested:
                return error_response(
                    400,
                    "Extension.InvalidEventType",
                    f"{name} is not an executable in a layer's extensions/ folder: internal "
                    "extensions may not register for SHUTDOWN",
                )
            identifier = str(uuid.uuid4())
            sandbox.extensions[identifier] = RegisteredExtension(
                name, identifier, list(requested), external
            )
            sandbox.cv.notify_all()
        reply: dict[str, str] = {
            "functionName": self.fn.name,
            "functionVersion": self.fn.version,
            "handler": self.fn.handler,
        }
        if "accountid" in headers.get("lambda-extension-accept-feature", "").lower():
            reply["accountId"] = ACCOUNT_ID
        return json_response(200, reply, {"Lambda-Extension-Identifier": identifier})

    def _identify(
        self, headers: dict[str, str]
    ) -> tuple[RegisteredExtension | None, Response | None]:
        identifier = headers.get("lambda-extension-identifier", "")
        if not identifier:
            return None, error_response(
                403, "Extension.MissingExtensionIdentifier", "Lambda-Extension-Identifier missing"
            )
        ext = self._sandbox.extensions.get(identifier)
        if ext is None:
            return None, error_response(
                403, "Extension.UnknownExtensionIdentifier", f"{identifier} is not registered"
            )
        return ext, None

    def extension_next(self, headers: dict[str, str]) -> Response | None:
        sandbox = self._sandbox
        with sandbox.cv:
            ext, problem = self._identify(headers)
            if ext is None:
                return problem
            ext.waiting = True
            sandbox.cv.notify_all()
            while not sandbox.closing and not ext.queue:
                sandbox.cv.wait(1.0)
            if not ext.queue:
                return None
            event = ext.queue.popleft()
            ext.waiting = False
        return json_response(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    def extension_error(self, kind: str, headers: dict[str, str], body: bytes) -> Response:
        with self._sandbox.cv:
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
        self._host.emit(
            events.extension_state(time.time(), ext.name, state, ext.events, error_type)
        )
        return json_response(202, {"status": "OK"})

    # --- Telemetry API ----------------------------------------------------------------------

    def telemetry_subscribe(self, headers: dict[str, str], body: bytes) -> Response:
        with self._sandbox.cv:
            ext, problem = self._identify(headers)
            if ext is None:
                assert problem is not None
                return problem
            if self._sandbox.init_done:
                return error_response(
                    403, "Telemetry.SubscriptionClosed", "subscribe during init, before `next`"
                )
        host = self._host
        try:
            sub = events.parse_subscription(json.loads(body or b"null"))
            dest_host, dest_port, dest_path = events.resolve_destination(sub.uri, host.address)
        except ValueError as exc:  # SubscriptionError and bad JSON alike
            return error_response(400, "ValidationError", str(exc))
        if self._sandbox.managed and sub.schema_version != MANAGED_SCHEMA_VERSION:
            return error_response(
                400,
                "ValidationError",
                f"schemaVersion {sub.schema_version!r}: Lambda Managed Instances accept only "
                f"{MANAGED_SCHEMA_VERSION!r}",
            )
        current = host.hub.subscriber(ext.name)
        if isinstance(current, logs_api.LogsSubscriber):
            return error_response(
                400,
                "ValidationError",
                f"{ext.name} is subscribed to the Logs API already: an extension uses the "
                "Telemetry API or the Logs API, not both",
            )
        if current is not None:
            return error_response(
                400, "ValidationError", f"{ext.name} already has a Telemetry subscription"
            )
        host.hub.subscribe(ext.name, Subscriber(ext.name, sub, dest_host, dest_port, dest_path))
        host.emit(events.telemetry_subscription(time.time(), ext.name, list(sub.types)))
        kinds = ", ".join(t.capitalize() for t in sub.types)
        host.cloudwatch(f"TELEMETRY\tName: {ext.name}\tState: Subscribed\tTypes: [{kinds}]\n")
        return json_response(200, "OK")

    # --- Logs API ---------------------------------------------------------------------------

    def logs_subscribe(self, headers: dict[str, str], body: bytes) -> Response:
        with self._sandbox.cv:
            ext, problem = self._identify(headers)
            if ext is None:
                assert problem is not None
                return problem
            if self._sandbox.init_done:
                return error_response(
                    403, "Logs.SubscriptionClosed", "Logs API subscription is closed already"
                )
        return logs_api.subscribe(self._host, ext.name, body, self.fn.timeout_s)


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
