"""Waiting for the store to hold what the pipeline sends (the extension ships asynchronously)."""

from __future__ import annotations

import time

import pytest

from lambdascope.query import QueryClient


def wait_for(client: QueryClient, sql: str, expected: int, timeout_s: float = 20.0) -> None:
    """Until ``sql``'s scalar reaches ``expected``; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.query(sql).scalar() >= expected:
            return
        time.sleep(0.2)
    pytest.fail(f"the store never reached {expected} for {sql!r}")
