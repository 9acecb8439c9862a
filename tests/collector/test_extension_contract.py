"""The batches the extension builds are the batches the collector reads (docs §1)."""

from __future__ import annotations

import json

from lambdascope.collector.normalize import normalize_batch
from lambdascope.extension.batch import build_batch_json, environment_info, invocation_record

RID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def test_a_batch_built_by_the_extension_normalises() -> None:
    environment = environment_info(
        {"functionName": "checkout", "functionVersion": "$LATEST"},
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "eu-west-1"},
        "ab" * 16,
        "aarch64",
        tags={"team": "payments"},
    )
    invoke = {
        "eventType": "INVOKE",
        "deadlineMs": 1795503603000,
        "requestId": RID,
        "invokedFunctionArn": "arn:aws:lambda:eu-west-1:000000000000:function:checkout",
        "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-abc;Parent=def;Sampled=1"},
    }
    telemetry = [
        json.dumps(event)
        for event in (
            {
                "time": "2026-11-24T07:00:00.000Z",
                "type": "platform.start",
                "record": {"requestId": RID},
            },
            {"time": "2026-11-24T07:00:00.001Z", "type": "function", "record": "hello ünïcode\n"},
        )
    ]
    body = build_batch_json(
        "cd" * 16,
        1795503600500,
        {"name": "lambdascope", "version": "0.1.0"},
        environment,
        None,
        telemetry,
        [invocation_record(invoke, 1795503600000)],
    )
    batch = normalize_batch(json.loads(body))
    assert batch.batch_id == "cd" * 16
    assert (batch.environment.function_name, batch.environment.memory_size_mb) == ("checkout", 256)
    assert batch.environment.architecture == "arm64"
    assert batch.environment.tags == (("team", "payments"),)
    invoke_part = next(p for p in batch.invocation_rows if p.has_invoke)
    assert (invoke_part.request_id, invoke_part.timeout_ms) == (RID, 3000)
    assert invoke_part.trace_id == "Root=1-abc;Parent=def;Sampled=1"
    assert [(r.request_id, r.message) for r in batch.log_rows if r.stream == "function"] == [
        (RID, "hello ünïcode")
    ]
