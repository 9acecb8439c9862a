"""Pure helpers: trigger detection, the X-Ray header, attributes and the endpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lambdascope_tracing import faas_trigger, invocation_attributes, parse_xray_header
from lambdascope_tracing._faas import default_traces_endpoint, resource_attributes

API_GATEWAY_V1 = {"resource": "/", "httpMethod": "GET", "requestContext": {"stage": "prod"}}
HTTP_API_V2 = {
    "version": "2.0",
    "routeKey": "$default",
    "requestContext": {"http": {"method": "GET"}},
}
FUNCTION_URL = {"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}}}
ALB = {"requestContext": {"elb": {"targetGroupArn": "arn:..."}}, "httpMethod": "GET"}
SQS = {"Records": [{"messageId": "1", "eventSource": "aws:sqs", "body": "x"}]}
SNS = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "x"}}]}
S3 = {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}}}]}
DYNAMODB = {"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {}}]}
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
EVENTBRIDGE = {"source": "shop.orders", "detail-type": "OrderPlaced", "detail": {}}


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        (API_GATEWAY_V1, "http"),
        (HTTP_API_V2, "http"),
        (FUNCTION_URL, "http"),
        (ALB, "http"),
        (SQS, "pubsub"),
        (SNS, "pubsub"),
        (EVENTBRIDGE, "pubsub"),
        (S3, "datasource"),
        (DYNAMODB, "datasource"),
        (SCHEDULE, "timer"),
        ({"n": 1}, "other"),
        ([1, 2], "other"),
        (None, "other"),
        ({"Records": []}, "other"),
    ],
)
def test_trigger_from_event_shape(event: object, trigger: str) -> None:
    assert faas_trigger(event) == trigger


def test_xray_header_gives_trace_and_parent() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert parse_xray_header(header) == (
        0x5759E988BD862E3FE1BE46A994272793,
        0x53995C3F42CD8AD8,
        True,
    )
    unsampled = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    assert parse_xray_header(unsampled)[2] is False  # type: ignore[index]
    assert parse_xray_header("Root=1-5759e988-bd862e3fe1be46a994272793") is None
    bad_hex = "Root=1-zz59e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"
    assert parse_xray_header(bad_hex) is None
    assert parse_xray_header("garbage") is None
    assert parse_xray_header(None) is None


def test_invocation_attributes_follow_the_faas_conventions() -> None:
    context = SimpleNamespace(
        aws_request_id="req-1",
        function_name="checkout",
        function_version="$LATEST",
        log_stream_name="2026/11/24/[$LATEST]abc",
        memory_limit_in_mb="128",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:checkout",
    )
    attributes = invocation_attributes(context, SQS, True, {"AWS_REGION": "eu-west-1"})
    assert attributes == {
        "faas.invocation_id": "req-1",
        "faas.coldstart": True,
        "faas.name": "checkout",
        "faas.version": "$LATEST",
        "faas.instance": "2026/11/24/[$LATEST]abc",
        "faas.max_memory": 128 * 1024 * 1024,
        "faas.trigger": "pubsub",
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "cloud.resource_id": "arn:aws:lambda:us-east-1:123456789012:function:checkout",
        "cloud.account.id": "123456789012",
    }


def test_attributes_fall_back_to_the_environment_without_a_context() -> None:
    env = {"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "bad"}
    attributes = invocation_attributes(None, {}, False, env)
    assert attributes["faas.name"] == "f" and "faas.max_memory" not in attributes
    assert resource_attributes({"AWS_LAMBDA_FUNCTION_NAME": "f"})["service.name"] == "f"


def test_endpoint_defaults_to_the_extension_receiver() -> None:
    assert default_traces_endpoint({}) == "http://localhost:4318/v1/traces"
    runtime = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
    assert default_traces_endpoint(runtime) == "http://127.0.0.1:4318/v1/traces"
    emulated = {"AWS_LAMBDA_RUNTIME_API": "127.3.0.7:9001", "LAMBDASCOPE_OTLP_PORT": "4400"}
    assert default_traces_endpoint(emulated) == "http://127.3.0.7:4400/v1/traces"
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", **runtime}
    assert default_traces_endpoint(base) == "http://collector:4318/v1/traces"
    full = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:1/custom", **base}
    assert default_traces_endpoint(full) == "http://x:1/custom"
