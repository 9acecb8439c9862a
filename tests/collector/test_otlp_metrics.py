"""OTLP/JSON metrics: data points of every kind into otel_metrics rows, and /v1/metrics."""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

import pytest

from lambdascope.collector.otlp import OtlpError, parse_metrics
from lambdascope.collector.server import CollectorServer
from lambdascope.query import CollectorQueryClient
from tests.collector.test_server import post_json

RID = "8f5a2c1e-1111-4c3d-9e8f-0a1b2c3d4e5f"
T0 = "1795503600210000000"

EXPORT: dict[str, Any] = {
    "resourceMetrics": [
        {
            "resource": {
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "orders-svc"}},
                    {"key": "faas.name", "value": {"stringValue": "orders"}},
                ]
            },
            "scopeMetrics": [
                {
                    "scope": {"name": "app", "version": "2.0"},
                    "metrics": [
                        {
                            "name": "cold.starts",
                            "description": "cold starts seen",
                            "unit": "1",
                            "sum": {
                                "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                                "isMonotonic": True,
                                "dataPoints": [
                                    {
                                        "timeUnixNano": T0,
                                        "asInt": "3",
                                        "attributes": [
                                            {
                                                "key": "faas.invocation_id",
                                                "value": {"stringValue": RID},
                                            }
                                        ],
                                    },
                                    {"timeUnixNano": T0, "asDouble": "NaN"},
                                ],
                            },
                        },
                        {
                            "name": "duration",
                            "unit": "ms",
                            "histogram": {
                                "aggregationTemporality": 2,
                                "dataPoints": [
                                    {
                                        "timeUnixNano": T0,
                                        "count": "3",
                                        "sum": 30.5,
                                        "bucketCounts": ["1", "2"],
                                        "explicitBounds": [10],
                                        "min": 2,
                                        "max": 20,
                                    }
                                ],
                            },
                        },
                    ],
                }
            ],
        }
    ]
}


def export() -> dict[str, Any]:
    return copy.deepcopy(EXPORT)


def metrics(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return raw["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]


def test_json_points_become_rows_with_names_types_and_request_ids() -> None:
    parsed = parse_metrics(export())
    assert parsed.rejected == 0
    counted, nan, duration = parsed.rows
    assert (counted.MetricName, counted.MetricType, counted.Value) == ("cold.starts", "Sum", 3.0)
    assert (counted.AggregationTemporality, counted.IsMonotonic) == ("Delta", True)
    assert (counted.MetricDescription, counted.MetricUnit) == ("cold starts seen", "1")
    assert (counted.RequestId, counted.FunctionName, counted.ServiceName) == (
        RID,
        "orders",
        "orders-svc",
    )
    assert counted.TimeUnix == dt.datetime(2026, 11, 24, 7, 0, 0, 210000, tzinfo=dt.UTC)
    assert (counted.ScopeName, counted.ScopeVersion) == ("app", "2.0")
    assert math.isnan(nan.Value)  # the protobuf JSON mapping spells NaN as a string
    assert nan.RequestId == ""
    assert (duration.Count, duration.Sum, duration.Min, duration.Max) == (3, 30.5, 2.0, 20.0)
    assert (duration.BucketCounts, duration.ExplicitBounds) == ([1, 2], [10.0])
    assert duration.AggregationTemporality == "Cumulative"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((0, "sum", 0, "asInt"), "lots", "dataPoints[0].asInt: must be an integer"),
        ((1, "histogram", 0, "count"), -1, "dataPoints[0].count: must be between 0"),
        ((1, "histogram", 0, "bucketCounts"), "1,2", "bucketCounts: must be a list"),
        ((1, "histogram", 0, "timeUnixNano"), "yesterday", "timeUnixNano: must be an integer"),
        ((1, "histogram", 0, "timeUnixNano"), str(2**63), "past the year 2262"),
    ],
)
def test_a_malformed_point_is_rejected_alone(
    path: tuple[int, str, int, str], value: Any, message: str
) -> None:
    raw = export()
    metric, kind, point, key = path
    metrics(raw)[metric][kind]["dataPoints"][point][key] = value
    parsed = parse_metrics(raw)
    assert (parsed.rejected, len(parsed.rows)) == (1, 2)
    assert message in parsed.errors[0]


def test_a_metric_without_exactly_one_kind_or_name_is_rejected() -> None:
    raw = export()
    metrics(raw)[1]["gauge"] = {"dataPoints": []}
    del metrics(raw)[0]["name"]
    parsed = parse_metrics(raw)
    assert parsed.rejected == 2
    assert "needs exactly one of gauge, sum, histogram" in parsed.errors[1]
    assert "a metric needs a name" in parsed.errors[0]


@pytest.mark.parametrize("body", [[], {"resourceMetrics": 1}, {"resourceMetrics": [3]}])
def test_a_body_that_is_not_a_metrics_export_is_an_error(body: Any) -> None:
    with pytest.raises(OtlpError):
        parse_metrics(body)


def test_metrics_endpoint_stores_json_and_reports_rejected_data_points(
    server: CollectorServer,
) -> None:
    raw = export()
    metrics(raw)[1]["histogram"]["dataPoints"][0]["count"] = "many"
    status, headers, body = post_json(server.url, "/v1/metrics", raw)
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert body["partialSuccess"]["rejectedDataPoints"] == 1
    assert "count" in body["partialSuccess"]["errorMessage"]
    rows = (
        CollectorQueryClient(server.url)
        .query(
            "SELECT MetricName, Value, RequestId, FunctionName FROM otel_metrics"
            " WHERE NOT isNaN(Value)"
        )
        .rows
    )
    assert rows == [("cold.starts", 3.0, RID, "orders")]
