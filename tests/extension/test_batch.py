from __future__ import annotations

import gzip
import json

from lambdascope.extension.batch import (
    build_batch_json,
    environment_info,
    gzip_bytes,
    invocation_record,
    new_id,
    normalise_architecture,
)

INVOKE = {
    "eventType": "INVOKE",
    "deadlineMs": 1764000003000,
    "requestId": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
    "invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:checkout",
    "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5759e988;Parent=53995c3f;Sampled=1"},
}


def test_invocation_record_from_invoke_event() -> None:
    assert invocation_record(INVOKE, 1764000000000) == {
        "request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        "deadline_ms": 1764000003000,
        "received_at_ms": 1764000000000,
        "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:checkout",
        "trace_id": "Root=1-5759e988;Parent=53995c3f;Sampled=1",
    }


def test_invocation_record_without_tracing_and_with_float_deadline() -> None:
    event = {k: v for k, v in INVOKE.items() if k != "tracing"}
    event["deadlineMs"] = 1764000003000.0
    record = invocation_record(event, 1)
    assert record["trace_id"] is None
    assert record["deadline_ms"] == 1764000003000


def test_environment_info_prefers_the_register_response() -> None:
    info = environment_info(
        {"functionName": "checkout", "functionVersion": "7"},
        {
            "AWS_LAMBDA_FUNCTION_NAME": "other",
            "AWS_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency",
        },
        "e" * 32,
        "aarch64",
    )
    assert info == {
        "environment_id": "e" * 32,
        "function_name": "checkout",
        "function_version": "7",
        "region": "eu-west-1",
        "memory_size_mb": 512,
        "initialization_type": "provisioned-concurrency",
        "architecture": "arm64",
    }


def test_environment_info_falls_back_to_variables_and_survives_bad_memory() -> None:
    info = environment_info(
        {},
        {"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"},
        "x",
        "x86_64",
    )
    assert info["function_name"] == "fn"
    assert info["function_version"] == "$LATEST"
    assert info["memory_size_mb"] is None
    assert info["initialization_type"] == "on-demand"


def test_architecture_names() -> None:
    assert normalise_architecture("x86_64") == "x86_64"
    assert normalise_architecture("AMD64") == "x86_64"
    assert normalise_architecture("aarch64") == "arm64"


def test_batch_json_has_the_contract_shape() -> None:
    telemetry = [
        {
            "time": "2026-11-24T07:00:00.123Z",
            "type": "platform.start",
            "record": {"requestId": "r"},
        },
        {"time": "2026-11-24T07:00:00.124Z", "type": "function", "record": "héllo\n"},
    ]
    texts = [json.dumps(e, ensure_ascii=False) for e in telemetry]
    body = build_batch_json(
        "b" * 32,
        1764000000000,
        {"name": "lambdascope", "version": "0.1.0"},
        {"environment_id": "e" * 32},
        "r",
        texts,
        [invocation_record(INVOKE, 1764000000000)],
        {"startup_ms": 12.0},
    )
    batch = json.loads(body.decode("utf-8"))
    assert list(batch) == [
        "schema_version",
        "batch_id",
        "sent_at_ms",
        "extension",
        "environment",
        "open_request_id",
        "extension_stats",
        "telemetry",
        "invocations",
    ]
    assert batch["schema_version"] == 1
    assert batch["telemetry"] == telemetry
    assert batch["open_request_id"] == "r"
    assert batch["invocations"][0]["request_id"] == INVOKE["requestId"]


def test_empty_batch_is_valid_json() -> None:
    batch = json.loads(build_batch_json("b", 1, {}, {}, None, [], []))
    assert batch["telemetry"] == [] and batch["invocations"] == []
    assert batch["open_request_id"] is None and "extension_stats" not in batch


def test_gzip_round_trip_and_ids() -> None:
    data = b'{"a": 1}' * 100
    assert gzip.decompress(gzip_bytes(data)) == data
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_environment_info_carries_tags_only_when_set() -> None:
    tagged = environment_info({}, {}, "x", "x86_64", tags={"team": "payments"})
    assert tagged["tags"] == {"team": "payments"}
    assert "tags" not in environment_info({}, {}, "x", "x86_64", tags={})
