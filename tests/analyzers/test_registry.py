from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from lambdascope.analyzers import DETECTORS, Finding, Window, register, run_detectors
from lambdascope.query import QueryError, QueryResult, ReadLimitError, StoreUnavailableError
from tests.analyzers.fleetdata import NOW


class FailingClient:
    def __init__(self, error: QueryError) -> None:
        self.error = error
        self.calls = 0

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        self.calls += 1
        raise self.error


def test_every_core_detector_is_registered():
    assert {"timeouts", "memory", "cold_starts", "errors"} <= set(DETECTORS)


def test_unreachable_store_keeps_its_error_type_and_names_the_detector():
    client = FailingClient(StoreUnavailableError("cannot reach http://127.0.0.1:9"))

    with pytest.raises(StoreUnavailableError, match=r"detector '\w+': cannot reach"):
        run_detectors(client, since=timedelta(hours=1), now=NOW)
    assert client.calls == 1  # stops at the first failure instead of hammering a dead store


def test_a_read_limit_keeps_its_type_and_limit_and_names_the_detector():
    limit = ReadLimitError("the query needed more than 2 GB", limit="MEMORY_LIMIT_EXCEEDED")
    with pytest.raises(ReadLimitError) as raised:
        run_detectors(FailingClient(limit), since=timedelta(hours=1), now=NOW)
    assert raised.value.limit == "MEMORY_LIMIT_EXCEEDED"
    assert str(raised.value).startswith("detector ") and "2 GB" in str(raised.value)


def test_refused_query_is_a_query_error_naming_the_detector():
    client = FailingClient(QueryError("Unknown table invocations"))

    with pytest.raises(QueryError, match="Unknown table invocations") as caught:
        run_detectors(client, since=timedelta(hours=1), now=NOW)
    assert not isinstance(caught.value, StoreUnavailableError)


def test_findings_are_sorted_most_severe_first():
    window = Window.ending(NOW, timedelta(hours=1))

    def make(severity: str, name: str) -> Finding:
        return Finding("k", severity, name, "$LATEST", window.start, window.end, "s")

    detectors = {
        "a": lambda client, w, fn: [make("info", "a"), make("warning", "z")],
        "b": lambda client, w, fn: [make("critical", "m"), make("warning", "b")],
    }

    found = run_detectors(
        FailingClient(QueryError("unused")), since=timedelta(hours=1), now=NOW, detectors=detectors
    )  # type: ignore[arg-type]

    assert [(f.severity, f.function_name) for f in found] == [
        ("critical", "m"),
        ("warning", "b"),
        ("warning", "z"),
        ("info", "a"),
    ]


def test_registering_two_detectors_under_one_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register("timeouts")(lambda client, window, fn: [])


def test_bad_window_and_bad_severity_are_clear_errors():
    with pytest.raises(ValueError, match="since must be a positive duration"):
        run_detectors(FailingClient(QueryError("x")), since=timedelta(0), now=NOW)
    with pytest.raises(ValueError, match="severity 'urgent'"):
        Finding("timeout", "urgent", "f", "$LATEST", NOW, NOW, "s")
