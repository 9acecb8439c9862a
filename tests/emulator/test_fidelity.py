"""Behaviours where AWS's own clients (boto3, awslambdaric, an extension) saw the emulator
differ from Lambda, each checked with the client that saw it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdascope.emulator.invoke_result import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT

from .conftest import function, wait_for


def lambda_client(emu):
    return boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


@pytest.fixture
def emu(make_emulator):
    return make_emulator([function("ok", "app.ok"), function("bad", "app.raises")])


@pytest.fixture
def client(emu):
    return lambda_client(emu)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _tail(response) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_init_duration_after_a_reset_excludes_the_old_environments_shutdown(
    make_emulator, recording
):
    """The replaced environment's shutdown (its extension's SHUTDOWN included) is over before
    the new one's init clock starts: initStart comes after it, Init Duration excludes it."""
    emu = make_emulator([function("slow", "app.sleepy", recording=recording, timeout_s=1.0)])
    client = lambda_client(emu)
    timed_out = client.invoke(FunctionName="slow", Payload=b'{"sleep_s": 5}')
    assert timed_out["FunctionError"] == "Unhandled"
    response = client.invoke(FunctionName="slow", Payload=b'{"sleep_s": 0}', LogType="Tail")
    assert "FunctionError" not in response
    exits = wait_for(
        lambda: [x["t"] for x in recording.lines() if x["kind"] == "exit"], 5, "the old exit"
    )
    starts = wait_for(
        lambda: recording.platform("platform.initStart")[1:] and recording.telemetry(),
        5,
        "the second initStart",
    )
    second_init = [e for e in starts if e["type"] == "platform.initStart"][1]
    # iso times have millisecond precision
    assert _epoch(second_init["time"]) >= exits[0] - 0.001
    init_ms = float(re.search(r"Init Duration: ([\d.]+) ms", _tail(response)).group(1))
    cold_ms = recording.platform("platform.initReport")[0]["metrics"]["durationMs"]
    # The extension's SHUTDOWN and the runtime's kill took hundreds of ms; a clean cold init
    # of the same function is the yardstick.
    assert init_ms < cold_ms + 500
