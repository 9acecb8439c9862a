"""What the Invoke operation answers (`InvokeResult`), its payload quotas, its error bodies and
how it reads a FunctionName: shared by the pool of environments (`emulator`) and the HTTP
shell in front of it (`invoke_api`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdascope.emulator.config import ACCOUNT_ID, FunctionConfig

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6,291,456 bytes, Lambda's RequestResponse limit
ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # Event invocations: 1 MB since 2025 (256 KB before)
TOO_LARGE = "RequestEntityTooLargeException"

# Lambda's error shapes spell the message key differently (botocore's Lambda model):
# these say "Message", every other Invoke error says "message".
_CAPITAL_MESSAGE = ("ResourceNotFoundException", "ServiceException", "AccessDeniedException")


@dataclass
class InvokeResult:
    """The Invoke API's answer. `error_type` is `x-amzn-ErrorType` for API errors (4xx/5xx),
    None otherwise; `retry_after_s` is set on 429."""

    status_code: int
    payload: bytes
    function_error: str | None
    executed_version: str | None
    log_result: str | None
    request_id: str
    error_type: str | None = None
    retry_after_s: int | None = None


def aws_error_body(error_type: str, message: str, **extra: Any) -> bytes:
    """An Invoke API error body as Lambda writes it, e.g.
    `{"Type": "User", "Message": "Function not found: arn:..."}`."""
    key = "Message" if error_type in _CAPITAL_MESSAGE else "message"
    kind = "Service" if error_type == "ServiceException" else "User"
    return json.dumps({"Type": kind, key: message, **extra}).encode("utf-8")


def api_error(
    status: int, error_type: str, message: str, request_id: str, **extra: str
) -> InvokeResult:
    return InvokeResult(
        status_code=status,
        payload=aws_error_body(error_type, message, **extra),
        function_error=None,
        executed_version=None,
        log_result=None,
        request_id=request_id,
        error_type=error_type,
    )


def payload_too_large(size: int, invocation_type: str) -> str | None:
    """Lambda's message for a payload over the invocation type's quota (413
    RequestEntityTooLargeException), or None when it fits."""
    if invocation_type == "Event":
        if size <= ASYNC_PAYLOAD_LIMIT:
            return None
        return (
            f"{size} byte payload is too large for the Event invocation type "
            f"(limit {ASYNC_PAYLOAD_LIMIT} bytes)"
        )
    if size <= SYNC_PAYLOAD_LIMIT:
        return None
    return (
        f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation"
    )


@dataclass(frozen=True)
class FunctionName:
    """A FunctionName as Lambda reads it: `name`, `name:qualifier`, a partial ARN
    `account:function:name[:qualifier]` or a full ARN; `region`/`account` when it said them."""

    name: str
    qualifier: str | None
    region: str | None
    account: str | None


def parse_function_name(text: str) -> FunctionName | None:
    """None when `text` is none of the three forms."""
    parts = text.split(":")
    region = account = None
    if parts[0] == "arn":
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            return None
        region, account, rest = parts[3], parts[4], parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":
        if len(parts) > 4:
            return None
        account, rest = parts[0], parts[2:]
    elif len(parts) <= 2:
        rest = parts
    else:
        return None
    name = rest[0]
    qualifier = rest[1] if len(rest) > 1 else None
    if not name or qualifier == "":
        return None
    return FunctionName(name, qualifier, region, account)


def locate_function(
    text: str,
    qualifier: str | None,
    functions: Mapping[str, FunctionConfig],
    request_id: str,
) -> FunctionConfig | InvokeResult:
    """The function a FunctionName (and `Qualifier`) names, or the error Lambda answers."""
    parsed = parse_function_name(text)
    fn = functions.get(parsed.name) if parsed is not None else None
    if fn is not None:
        region = fn.region
    else:  # the emulator's functions share a region in practice: name the first one's
        region = next(iter(functions.values())).region if functions else "us-east-1"
    if parsed is None:
        return api_error(
            400,
            "ValidationException",
            f"1 validation error detected: Value '{text}' at 'functionName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
            "(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            request_id,
        )
    if qualifier and parsed.qualifier and qualifier != parsed.qualifier:
        return api_error(
            400,
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
            request_id,
        )
    qualifier = qualifier or parsed.qualifier
    if parsed.region is not None and parsed.region != region:
        return api_error(
            404,
            "ResourceNotFoundException",
            f"Functions from '{parsed.region}' are not reachable in this region ('{region}')",
            request_id,
        )
    arn = f"arn:aws:lambda:{region}:{parsed.account or ACCOUNT_ID}:function:{parsed.name}"
    if qualifier:
        arn += f":{qualifier}"
    if parsed.account is not None and parsed.account != ACCOUNT_ID:
        # Another account's function: no resource policy here lets this caller invoke it.
        return api_error(
            403,
            "AccessDeniedException",
            f"User: arn:aws:iam::{ACCOUNT_ID}:user/local is not authorized to perform: "
            f"lambda:InvokeFunction on resource: {arn} because no resource-based policy "
            "allows the lambda:InvokeFunction action",
            request_id,
        )
    if fn is None or qualifier not in (None, "$LATEST", fn.version):
        return api_error(404, "ResourceNotFoundException", f"Function not found: {arn}", request_id)
    return fn
