"""The Logs API (`PUT /2020-08-15/logs`): the Telemetry API's predecessor, which Lambda still
serves and many published extensions still use.

A Logs API subscriber is a telemetry `Subscriber` (same buffering, batching, HTTP or TCP
delivery and `platform.logsDropped`) that turns each Telemetry API event into the records the
Logs API sends for the subscribed schema version:

  platform.start       {requestId, version}
  platform.runtimeDone {requestId, status}  (schema 2021-03-18 and later; status success,
                                             failure or timeout)
  platform.fault       "RequestId: … <what went wrong>"  (a timeout or a runtime crash)
  platform.end         {requestId}          (just before the report, as END is in CloudWatch)
  platform.report      {requestId, metrics}
  platform.extension, platform.logsSubscription, platform.logsDropped: as the Telemetry API's
  function / extension: the raw line as a string

Init events (initStart, initRuntimeDone, initReport) and telemetrySubscription are Telemetry
API only. An extension uses one of the two APIs: subscribing with the other is refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from lambdascope.emulator import events
from lambdascope.emulator.events import Event, Subscription, SubscriptionError
from lambdascope.emulator.sandbox_api import Response, error_response, json_response
from lambdascope.emulator.telemetry import Subscriber, TelemetryHub

# "2020-08-15" is the default; "2021-03-18" added platform.runtimeDone. "2021-08-15" is
# accepted as well and behaves like 2021-03-18.
SCHEMA_VERSIONS = ("2020-08-15", "2021-03-18", "2021-08-15")
DEFAULT_SCHEMA_VERSION = "2020-08-15"
_WITH_RUNTIME_DONE = ("2021-03-18", "2021-08-15")
# Errors Lambda reports as a platform fault rather than as the function's own error.
_FAULT_PREFIXES = ("Runtime.", "Sandbox.", "Extension.")


class Host(Protocol):
    address: str
    hub: TelemetryHub

    def emit(self, event: events.Event) -> None: ...
    def cloudwatch(self, line: str) -> None: ...


def parse_logs_subscription(body: Any) -> Subscription:
    """Validate a `PUT /2020-08-15/logs` body (same destination, types and buffering rules as
    the Telemetry API; its own schema versions)."""
    if not isinstance(body, dict):
        raise SubscriptionError("request body must be a JSON object")
    schema = body.get("schemaVersion", DEFAULT_SCHEMA_VERSION)
    if schema not in SCHEMA_VERSIONS:
        raise SubscriptionError(f"schemaVersion {schema!r} is not one of {list(SCHEMA_VERSIONS)}")
    destination = body.get("destination")
    if isinstance(destination, dict) and isinstance(destination.get("URI"), str):
        try:
            port = urlsplit(destination["URI"]).port
        except ValueError:
            port = None
        if port is None:
            raise SubscriptionError(f"URI port is not provided in {destination['URI']!r}")
    # The Telemetry API's checks apply as they are; only the schema version differs.
    telemetry_body = {**body, "schemaVersion": events.SCHEMA_VERSIONS[0]}
    return replace(events.parse_subscription(telemetry_body), schema_version=schema)


def logs_subscription(t: float, name: str, types: list[str]) -> Event:
    return events.envelope(
        "platform.logsSubscription", {"name": name, "state": "Subscribed", "types": types}, t
    )


def _runtime_done_status(status: str) -> str:
    # The Logs API knows success, failure and timeout: a function error is a failure there.
    return status if status in ("success", "timeout") else "failure"


def _fault(record: dict[str, Any], timeout_s: float) -> str | None:
    request_id = record.get("requestId", "")
    if record.get("status") == "timeout":
        return events.timeout_message(request_id, timeout_s)
    error_type = str(record.get("errorType") or "")
    if record.get("status") != "success" and error_type.startswith(_FAULT_PREFIXES):
        return f"RequestId: {request_id} Process exited before completing request"
    return None


def logs_api_events(event: Event, schema_version: str, timeout_s: float) -> list[Event]:
    """The Logs API records for one Telemetry API event (none when it has no counterpart)."""
    kind, record, at = event["type"], event["record"], event["time"]

    def make(event_type: str, new_record: Any) -> Event:
        return {"time": at, "type": event_type, "record": new_record}

    if kind in ("function", "extension"):
        return [make(kind, events.record_text(record))]
    if kind in ("platform.extension", "platform.logsDropped", "platform.logsSubscription"):
        return [event]
    if kind == "platform.start":
        start = {"requestId": record["requestId"]}
        if "version" in record:
            start["version"] = record["version"]
        return [make(kind, start)]
    if kind == "platform.runtimeDone":
        if schema_version not in _WITH_RUNTIME_DONE:
            return []
        status = _runtime_done_status(str(record.get("status")))
        return [make(kind, {"requestId": record["requestId"], "status": status})]
    if kind == "platform.report":
        out = []
        fault = _fault(record, timeout_s)
        if fault is not None:
            out.append(make("platform.fault", fault))
        out.append(make("platform.end", {"requestId": record["requestId"]}))
        out.append(make(kind, {"requestId": record["requestId"], "metrics": record["metrics"]}))
        return out
    return []


class LogsSubscriber(Subscriber):
    """A Logs API subscription: telemetry delivery, Logs API records."""

    def __init__(
        self,
        name: str,
        subscription: Subscription,
        host: str,
        port: int,
        path: str,
        timeout_s: float,
    ) -> None:
        self.timeout_s = timeout_s
        super().__init__(name, subscription, host, port, path)

    def wants(self, event: Event) -> bool:
        return events.category(event) in self.subscription.types

    def put(self, event: Event) -> None:
        for record in logs_api_events(event, self.subscription.schema_version, self.timeout_s):
            super().put(record)


def subscribe(host: Host, extension_name: str, body: bytes, timeout_s: float) -> Response:
    """Subscribe a registered extension, during init (the caller checked both)."""
    try:
        sub = parse_logs_subscription(json.loads(body or b"null"))
        dest_host, dest_port, dest_path = events.resolve_destination(sub.uri, host.address)
    except ValueError as exc:  # SubscriptionError and bad JSON alike
        return error_response(400, "Logs.ValidationError", str(exc))
    current = host.hub.subscriber(extension_name)
    if isinstance(current, LogsSubscriber):
        return json_response(200, "OK")  # Lambda: subscribing again changes nothing
    if current is not None:
        return error_response(
            400,
            "Logs.ValidationError",
            f"{extension_name} is subscribed to the Telemetry API already: an extension uses "
            "the Telemetry API or the Logs API, not both",
        )
    host.hub.subscribe(
        extension_name,
        LogsSubscriber(extension_name, sub, dest_host, dest_port, dest_path, timeout_s),
    )
    host.emit(logs_subscription(time.time(), extension_name, list(sub.types)))
    kinds = ", ".join(t.capitalize() for t in sub.types)
    host.cloudwatch(f"LOGS\tName: {extension_name}\tState: Subscribed\tTypes: [{kinds}]\n")
    return json_response(200, "OK")
