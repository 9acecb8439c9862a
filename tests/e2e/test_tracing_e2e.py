"""In-function spans, end to end: a handler decorated with ``lambdascope_tracing`` runs in the
emulator with the layer zip as it is published (built, then extracted as Lambda extracts it
under /opt); the helper exports its spans to the extension's local OTLP receiver,
the extension forwards them undecoded in its batches, and the collector (a child process with
an embedded store) decodes them into ``otel_traces``, each span tagged with its invocation.
A second function is traced by OpenTelemetry's own ``AwsLambdaInstrumentor`` with the SDK's
OTLP/protobuf exporter pointed at the extension, the helper's decorator inside it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdascope.cli.processes import CollectorProcess
from lambdascope.emulator import Emulator, FunctionConfig
from lambdascope.extension.layer import build_layer_zip
from lambdascope.query import CollectorQueryClient, QueryClient
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.e2e

TRACED_HANDLER = """
import lambdascope_tracing
from opentelemetry import trace

@lambdascope_tracing.instrument
def handler(event, context):
    with trace.get_tracer("app").start_as_current_span("charge-card"):
        pass
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"statusCode": 200}
"""

# OpenTelemetry's usual Lambda set-up (AwsLambdaInstrumentor, BatchSpanProcessor flushed at the
# end of each invocation, OTLP over HTTP with protobuf), exporting to the extension.
INSTRUMENTOR_HANDLER = """
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import lambdascope_tracing

# In Lambda: http://localhost:4318. The emulator gives each environment its own loopback
# address (the host of AWS_LAMBDA_RUNTIME_API), where the extension's receiver listens.
sandbox = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0]
provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{sandbox}:4318/v1/traces"))
)
trace.set_tracer_provider(provider)


@lambdascope_tracing.instrument
def handler(event, context):
    with trace.get_tracer("orders").start_as_current_span("reserve-stock"):
        pass
    return {"statusCode": 200}


AwsLambdaInstrumentor().instrument(tracer_provider=provider)
"""


def extract_layer(archive: Path, destination: Path) -> Path:
    """Extract a layer zip as Lambda does: with the file modes the zip records (zipfile alone
    drops them, and the launcher must stay executable)."""
    with zipfile.ZipFile(archive) as layer_zip:
        for info in layer_zip.infolist():
            extracted = Path(layer_zip.extract(info, destination))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                extracted.chmod(mode & 0o777)
    return destination


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("tracing-e2e")
    code = root / "code"
    code.mkdir()
    (code / "app.py").write_text(TRACED_HANDLER)
    instrumented_code = root / "instrumented"
    instrumented_code.mkdir()
    (instrumented_code / "app.py").write_text(INSTRUMENTOR_HANDLER)
    layer = extract_layer(build_layer_zip(root / "layer.zip"), root / "layer")
    with CollectorProcess(f"chdb://{root / 'store'}") as collector:
        fn = FunctionConfig(
            name="payments",
            handler="app.handler",
            code_dir=code,
            timeout_s=3.0,
            layers=(layer,),
            environment={
                "LAMBDASCOPE_COLLECTOR_URL": collector.url,
                "LAMBDASCOPE_SPOOL_DIR": str(root / "spool"),
            },
        )
        instrumented = FunctionConfig(
            name="orders",
            handler="app.handler",
            code_dir=instrumented_code,
            timeout_s=5.0,
            layers=(layer,),
            environment=fn.environment,
        )
        with Emulator([fn, instrumented]) as emu:
            ok = emu.invoke("payments", b"{}")
            failed = emu.invoke("payments", b'{"fail": true}')
            orders = [emu.invoke("orders", b"{}") for _ in range(2)]
        # Leaving the block sent SHUTDOWN: the extension flushed what it still held.
        client = CollectorQueryClient(collector.url)
        wait_for(client, "SELECT count() FROM otel_traces", 4 + 6)
        wait_for(client, "SELECT count() FROM invocations WHERE has_report = 1", 2 + 2)
        yield {
            "client": client,
            "ok": ok,
            "failed": failed,
            "orders": orders,
            "layer": layer,
        }


def test_each_invocations_spans_land_in_otel_traces_with_its_request_id(traced: dict) -> None:
    client: QueryClient = traced["client"]
    rows = client.query(
        "SELECT RequestId, SpanName, StatusCode, FunctionName FROM otel_traces"
        " WHERE FunctionName = 'payments'"
    ).rows
    ok, failed = traced["ok"].request_id, traced["failed"].request_id
    assert sorted(rows) == sorted(
        [
            (ok, "payments", "Unset", "payments"),
            (ok, "charge-card", "Unset", "payments"),
            (failed, "payments", "Error", "payments"),
            (failed, "charge-card", "Unset", "payments"),
        ]
    )
    # The handler's own span is the child of the invocation span.
    parents = client.query(
        "SELECT c.RequestId FROM otel_traces AS c INNER JOIN otel_traces AS p"
        " ON c.ParentSpanId = p.SpanId AND c.TraceId = p.TraceId"
        " WHERE c.SpanName = 'charge-card' AND p.SpanName = 'payments'"
        " AND c.RequestId = p.RequestId"
    ).rows
    assert sorted(parents) == sorted([(ok,), (failed,)])


def test_spans_join_their_invocation_and_share_its_trace(traced: dict) -> None:
    client: QueryClient = traced["client"]
    joined = client.query(
        "SELECT i.request_id, i.status, uniqExact(t.TraceId), count()"
        " FROM invocations AS i INNER JOIN otel_traces AS t ON t.RequestId = i.request_id"
        " WHERE i.function_name = 'payments'"
        " GROUP BY i.request_id, i.status ORDER BY i.status"
    ).rows
    assert joined == [
        (traced["failed"].request_id, "error", 1, 2),
        (traced["ok"].request_id, "success", 1, 2),
    ]


def test_beside_aws_lambda_instrumentor_every_span_arrives_once_with_its_request(
    traced: dict,
) -> None:
    client: QueryClient = traced["client"]
    rows = client.query(
        "SELECT RequestId, SpanName, SpanKind, SpanAttributes['faas.invocation_id'] AS faas_id"
        " FROM otel_traces WHERE FunctionName = 'orders'"
    ).rows
    expected = []
    for result in traced["orders"]:
        rid = result.request_id
        expected += [
            (rid, "orders", "Server", rid),  # the instrumentor's invocation span
            (rid, "app.handler", "Internal", rid),  # the helper's span inside it
            (rid, "reserve-stock", "Internal", ""),
        ]
    assert sorted(rows) == sorted(expected)
    # One trace per invocation: the helper's span and the handler's are the instrumentor's
    # children, not a second trace.
    traces = client.query(
        "SELECT RequestId, uniqExact(TraceId), countIf(ParentSpanId = '')"
        " FROM otel_traces WHERE FunctionName = 'orders' GROUP BY RequestId"
    ).rows
    assert sorted(traces) == sorted((r.request_id, 1, 1) for r in traced["orders"])


def test_the_published_layer_zip_ran_the_extension_and_the_helper(traced: dict) -> None:
    layer: Path = traced["layer"]
    # What Lambda needs from the layer, and nothing of the build or the tests.
    assert sorted(p.name for p in layer.iterdir()) == [
        "extensions",
        "lambdascope_extension",
        "python",
    ]
    assert (layer / "extensions" / "lambdascope").stat().st_mode & 0o111
    assert (layer / "python" / "lambdascope_tracing" / "__init__.py").is_file()
    # The zipped extension shipped the invocations (a report needs the extension's batches).
    client: QueryClient = traced["client"]
    shipped = client.query(
        "SELECT count() FROM invocations WHERE has_report = 1 AND function_name = 'payments'"
    ).scalar()
    assert shipped == 2
