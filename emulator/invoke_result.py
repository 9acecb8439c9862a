"""What the Invoke operation answers (`InvokeResult`) and its payload quotas: shared by the
pool of environments (`emulator`) and the HTTP shell in front of it (`invoke_api`)."""

from __future__ import annotations

from dataclasses import dataclass

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6,291,456 bytes, Lambda's RequestResponse limit
ASYNC_PAYLOAD_LIMIT = 256 * 1024


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
