"""Client of the Extensions API and the Telemetry API (`AWS_LAMBDA_RUNTIME_API`).

Thin shell over `httpio.request`; the request bodies are built by pure functions.
"""

from __future__ import annotations

import json

from . import httpio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

REGISTER_PATH = "/2020-01-01/extension/register"
NEXT_PATH = "/2020-01-01/extension/event/next"
INIT_ERROR_PATH = "/2020-01-01/extension/init/error"
EXIT_ERROR_PATH = "/2020-01-01/extension/exit/error"
TELEMETRY_PATH = "/2022-07-01/telemetry"
TELEMETRY_SCHEMA_VERSION = "2022-12-13"
#: Lambda Managed Instances accept only this schema (backward compatible on demand, where the
#: older one is kept: its events are what the collector was built against).
MANAGED_INSTANCES_SCHEMA_VERSION = "2025-01-29"
TELEMETRY_TYPES = ("platform", "function", "extension")


class LambdaApiError(Exception):
    """A call to the Lambda API failed; the text names the call, the status and the body."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def telemetry_subscription(
    port: int,
    max_items: int = 1000,
    max_bytes: int = 262144,
    timeout_ms: int = 25,
    types: tuple[str, ...] = TELEMETRY_TYPES,
    schema_version: str | None = None,
) -> dict[str, Any]:
    """The `PUT /2022-07-01/telemetry` body; the destination host is the sandbox name, as
    Lambda requires, and the platform maps it to this environment's address."""
    return {
        "schemaVersion": schema_version or TELEMETRY_SCHEMA_VERSION,
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d/" % port},
        "types": list(types),
        "buffering": {"maxItems": max_items, "maxBytes": max_bytes, "timeoutMs": timeout_ms},
    }


def split_host_port(runtime_api: str) -> tuple[str, int]:
    value = runtime_api.strip()
    if value.startswith("http://"):
        value = value[len("http://") :]
    value = value.rstrip("/")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = value, "80"
    try:
        return host, int(port_text)
    except ValueError:
        raise LambdaApiError(
            "AWS_LAMBDA_RUNTIME_API=%r is not host:port (e.g. 127.0.0.1:9001)" % runtime_api
        ) from None


def _json_body(response: httpio.Response) -> dict[str, Any]:
    if not response.body:
        return {}
    try:
        value = json.loads(response.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ExtensionsApi:
    def __init__(self, runtime_api: str) -> None:
        self.runtime_api = runtime_api
        self.host, self.port = split_host_port(runtime_api)
        self.identifier: str | None = None
        self._connection = httpio.Connection(self.host, self.port)

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        timeout: float | None = 10.0,
    ) -> httpio.Response:
        try:
            return self._connection.request(method, path, headers, body, timeout=timeout)
        except (OSError, httpio.HttpError) as exc:
            raise LambdaApiError(
                "%s %s on http://%s failed: %s" % (what, path, self.runtime_api, exc)
            ) from exc

    def register(
        self, name: str, events: tuple[str, ...] = ("INVOKE", "SHUTDOWN")
    ) -> dict[str, Any]:
        """Register as external extension `name` (the executable's file name); keeps the
        identifier and returns the response body (functionName, functionVersion, handler)."""
        body = json.dumps({"events": list(events)}).encode()
        response = self._call(
            "register",
            "POST",
            REGISTER_PATH,
            {"Lambda-Extension-Name": name, "Content-Type": "application/json"},
            body,
        )
        identifier = response.headers.get("lambda-extension-identifier")
        if response.status != 200 or not identifier:
            raise LambdaApiError(
                "register as %r answered %d %s (no Lambda-Extension-Identifier: check that the "
                "name equals the file name under /opt/extensions)"
                % (name, response.status, response.body[:300].decode("utf-8", "replace")),
                response.status,
            )
        self.identifier = identifier
        return _json_body(response)

    def _id_headers(self) -> dict[str, str]:
        if not self.identifier:
            raise LambdaApiError("not registered: call register() first")
        return {"Lambda-Extension-Identifier": self.identifier}

    def next_event(self) -> dict[str, Any]:
        """Block (no client timeout: the sandbox may be frozen inside this call) until INVOKE or
        SHUTDOWN."""
        response = self._call("event/next", "GET", NEXT_PATH, self._id_headers(), timeout=None)
        if response.status != 200:
            raise LambdaApiError(
                "event/next answered %d %s"
                % (response.status, response.body[:300].decode("utf-8", "replace")),
                response.status,
            )
        event = _json_body(response)
        if not event:
            raise LambdaApiError("event/next answered 200 with a body that is not a JSON object")
        return event

    def subscribe_telemetry(self, subscription: dict[str, Any]) -> httpio.Response:
        """PUT the Telemetry API subscription; 200 means subscribed."""
        headers = self._id_headers()
        headers["Content-Type"] = "application/json"
        response = self._call(
            "telemetry subscribe", "PUT", TELEMETRY_PATH, headers, json.dumps(subscription).encode()
        )
        return response

    def report_error(self, phase: str, error_type: str, message: str) -> None:
        """POST init/error or exit/error; best effort (failures only logged by the caller)."""
        headers = self._id_headers()
        headers["Lambda-Extension-Function-Error-Type"] = error_type
        headers["Content-Type"] = "application/json"
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        path = INIT_ERROR_PATH if phase == "init" else EXIT_ERROR_PATH
        self._call(phase + "/error", "POST", path, headers, body)
