"""Concurrency as Lambda counts it: every request in flight, warm or cold, against the limits;
reservations taken out of the pool the other functions share. Through boto3, as callers see it."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.config import Config

from lambdascope.emulator import Emulator

from .conftest import function, wait_for


def lambda_client(emu: Emulator):  # type: ignore[no-untyped-def]
    return boto3.client(
        "lambda",
        endpoint_url=emu.invoke_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def hold(emu: Emulator, name: str, sleep_s: float) -> threading.Thread:
    """Invoke `name` in the background with a handler that sleeps `sleep_s`."""
    thread = threading.Thread(
        target=lambda: emu.invoke(name, f'{{"sleep_s": {sleep_s}}}'.encode()), daemon=True
    )
    thread.start()
    return thread


def busy(emu: Emulator, name: str) -> int:
    return sum(1 for env in emu.environments(name) if env.requests_in_flight())


def throttle_reason(client, name: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName=name, Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    return str(caught.value.response["Reason"])


def test_a_reservation_is_taken_out_of_the_pool_other_functions_share(make_emulator):
    emu = make_emulator(
        [
            function("reserved", "app.pid", reserved_concurrency=2, timeout_s=3.0),
            function("other", "app.pid", timeout_s=3.0),
            function("third", "app.pid", timeout_s=3.0),
        ],
        account_concurrency=3,
    )
    assert emu.unreserved_concurrency == 1
    client = lambda_client(emu)
    held = [hold(emu, "other", 1.0)]
    wait_for(lambda: busy(emu, "other") == 1, 5, "other to be busy")
    # The pool of 3 minus the reservation of 2 is full: an unreserved function is throttled...
    assert throttle_reason(client, "third") == "ConcurrentInvocationLimitExceeded"
    # ...while the reserved function still has its 2, untouched by the others.
    held += [hold(emu, "reserved", 1.0), hold(emu, "reserved", 1.0)]
    wait_for(lambda: busy(emu, "reserved") == 2, 5, "both reserved requests to run")
    assert (
        throttle_reason(client, "reserved") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    for thread in held:
        thread.join(5)
    assert emu.throttles == {"third": 1, "reserved": 1}


def test_a_request_served_by_a_warm_environment_counts_against_the_account_limit(make_emulator):
    emu = make_emulator(
        [function("warm", "app.pid", timeout_s=3.0), function("hog", "app.pid", timeout_s=3.0)],
        account_concurrency=1,
    )
    client = lambda_client(emu)
    assert client.invoke(FunctionName="warm", Payload=b"{}")["StatusCode"] == 200
    wait_for(lambda: emu.environments("warm")[0].state == "idle", 2, "an idle warm environment")
    held = hold(emu, "hog", 1.0)
    wait_for(lambda: busy(emu, "hog") == 1, 5, "hog to be busy")
    # The idle environment could serve it, but the account has no concurrency left.
    assert throttle_reason(client, "warm") == "ConcurrentInvocationLimitExceeded"
    held.join(5)
    assert client.invoke(FunctionName="warm", Payload=b"{}")["StatusCode"] == 200


def test_sequential_requests_at_the_account_limit_are_not_throttled(make_emulator):
    emu = make_emulator(
        [function("a", "app.pid", timeout_s=3.0), function("b", "app.pid", timeout_s=3.0)],
        account_concurrency=1,
    )
    client = lambda_client(emu)
    for name in ("a", "a", "b", "a", "b"):
        assert client.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
    assert emu.throttles == {}


def test_reservations_that_leave_too_little_unreserved_are_refused():
    functions = [function("greedy", "app.ok", reserved_concurrency=950)]
    with pytest.raises(ValueError, match="leaves less than 100 of account_concurrency 1000"):
        Emulator(functions)
    assert Emulator(functions, account_concurrency=2000).unreserved_concurrency == 1050
