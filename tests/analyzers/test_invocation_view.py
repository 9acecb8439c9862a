from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdascope.analyzers.fleet import LogLine
from lambdascope.analyzers.invocation_view import (
    InvocationFilters,
    detail_row,
    environment_extension_row,
    invocation_view,
    invocations_page,
    last_line_before_deadline,
    page_of,
)
from lambdascope.analyzers.window import Window
from tests.analyzers.fleetdata import (
    NOW,
    OOM_AS_TIMEOUT,
    OOM_KILLED,
    OOM_MEMORY_ERROR,
    PAYMENTS_LINE,
    TIMED_OUT,
)
from tests.analyzers.viewdata import COLD_REQUEST, FAILED_SPAN, view_store_fixture  # noqa: F401

HOUR = Window.ending(NOW, timedelta(hours=1))
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _row(**overrides):
    row = {
        "request_id": "r1",
        "function_name": "f",
        "function_version": "$LATEST",
        "environment_id": "e1",
        "start_time": T0,
        "duration_ms": 3000.0,
        "billed_duration_ms": 3000.0,
        "status": "timeout",
        "error_type": "",
        "init_duration_ms": None,
        "cold_start": 0,
        "max_memory_used_mb": 70,
        "memory_size_mb": 128,
        "timeout_ms": 3000.0,
        "has_start": 1,
        "has_runtime_done": 1,
        "has_report": 1,
        "has_invoke": 1,
        "runtime_done_duration_ms": 2990.0,
        "restore_duration_ms": None,
        "architecture": "arm64",
        "region": "eu-west-1",
        "trace_id": None,
        "last_received_at": T0 + timedelta(minutes=3),
    }
    return {**row, **overrides}


# --- pure ------------------------------------------------------------------------------------


def test_a_page_knows_where_it_is():
    assert page_of([], offset=0, limit=10).total == 0
    rows = [_row(request_id=f"r{i}", total=25) for i in range(10)]
    page = page_of(rows, offset=10, limit=10)
    assert (page.number, page.pages, page.has_next, page.has_previous) == (2, 3, True, True)
    last = page_of(rows[:5], offset=20, limit=10)
    assert not last.has_next


def test_detail_row_splits_runtime_and_post_runtime_and_says_what_is_missing():
    detail = detail_row(_row())
    assert detail.post_runtime_ms == 10.0
    assert detail.deadline == T0 + timedelta(seconds=3)
    assert detail.missing == []
    assert detail.late  # its last event came 3 minutes after the end
    unreported = detail_row(_row(has_report=0, last_received_at=T0 + timedelta(seconds=4)))
    assert unreported.missing == ["platform.report"]
    assert unreported.post_runtime_ms is None
    assert not unreported.late


def test_the_last_line_before_a_timeouts_deadline():
    detail = detail_row(_row())
    lines = [
        LogLine(T0, "platform", "", "START RequestId: r1"),
        LogLine(T0 + timedelta(milliseconds=5), "function", "INFO", "calling payments"),
        LogLine(T0 + timedelta(seconds=3), "function", "", "r1 Task timed out after 3.00 seconds"),
        LogLine(T0 + timedelta(seconds=3), "platform", "", "END RequestId: r1"),
    ]
    assert last_line_before_deadline(detail, lines) == lines[1]
    assert last_line_before_deadline(detail, [lines[0], lines[2]]) is None
    assert last_line_before_deadline(detail_row(_row(status="success")), lines) is None


def test_filters_bind_as_parameters_and_describe_themselves():
    filters = InvocationFilters(status="failed", cold_only=True, min_duration_ms=500, log_text="x")
    assert filters.parameters()["cold_only"] == 1
    assert filters.describe() == 'failed · cold starts · ≥ 500 ms · logs contain "x"'
    assert InvocationFilters().describe() == ""


# --- against the store -----------------------------------------------------------------------


def test_pages_of_invocations_newest_first(view_store):
    first = invocations_page(view_store.reader, "checkout", HOUR, limit=15)
    second = invocations_page(view_store.reader, "checkout", HOUR, offset=15, limit=15)
    third = invocations_page(view_store.reader, "checkout", HOUR, offset=30, limit=15)

    assert (first.total, len(first.invocations), first.pages) == (40, 15, 3)
    assert first.invocations[0].request_id == "checkout-0039"
    assert second.invocations[0].request_id == "checkout-0024"
    assert len(third.invocations) == 10 and not third.has_next
    ids = [i.request_id for p in (first, second, third) for i in p.invocations]
    assert len(set(ids)) == 40


def test_orderings_and_filters(view_store):
    def ids(**filters):
        page = invocations_page(view_store.reader, "checkout", HOUR, InvocationFilters(**filters))
        return [i.request_id for i in page.invocations], page.total

    slowest, _ = ids(order="slowest")
    assert slowest[:3] == sorted(TIMED_OUT, reverse=True)
    failed_first, total = ids(order="failed")
    assert failed_first[:3] == sorted(TIMED_OUT, reverse=True) and total == 40
    assert ids(status="timeout") == (sorted(TIMED_OUT, reverse=True), 3)
    assert ids(cold_only=True) == (["checkout-0000"], 1)
    assert ids(min_duration_ms=1000)[1] == 3
    assert ids(log_text="PAYMENTS api") == (sorted(TIMED_OUT, reverse=True), 3)
    assert ids(function_version="7") == ([], 0)


def test_failed_includes_every_out_of_memory_kill(view_store):
    page = invocations_page(view_store.reader, "report_export", HOUR, InvocationFilters("failed"))

    assert sorted(i.request_id for i in page.invocations) == sorted(
        [OOM_KILLED, OOM_AS_TIMEOUT, OOM_MEMORY_ERROR]
    )


def test_a_timed_out_invocation(view_store):
    view = invocation_view(view_store.reader, TIMED_OUT[0], "checkout", HOUR)

    assert view is not None
    inv = view.detail.invocation
    assert (inv.status, inv.duration_ms, inv.max_memory_used_mb) == ("timeout", 3000.0, 71)
    assert view.detail.missing == [] and view.inits == []
    assert view.logs[0].message.startswith(f"START RequestId: {TIMED_OUT[0]}")
    assert any("Task timed out after 3.00 seconds" in line.message for line in view.logs)
    assert all(TIMED_OUT[1] not in line.message for line in view.logs)
    last = view.last_line_before_deadline
    assert last is not None and last.message == PAYMENTS_LINE


def test_a_cold_start_with_its_init_and_spans(view_store):
    view = invocation_view(view_store.reader, COLD_REQUEST, "checkout", HOUR)

    assert view is not None
    (init,) = view.inits
    assert (init.phase, init.initialization_type, init.init_duration_ms) == (
        "init",
        "on-demand",
        180.0,
    )
    assert init.start_time < view.detail.invocation.start_time
    assert [(s.name, s.duration_ms) for s in view.spans] == [
        ("checkout", 110.0),
        (FAILED_SPAN, 60.0),
    ]
    assert view.spans[1].failed and view.spans[1].status_message == "502 from payments"
    assert view.last_line_before_deadline is None


def test_environment_extension_row_is_none_without_a_flush():
    empty = {"flushes": 0, "peak_rss_mb": None, "startup_ms": None, "cpu_ms": None}
    assert environment_extension_row(empty) is None
    figures = environment_extension_row({**empty, "flushes": 2, "peak_rss_mb": 12.0})
    assert figures is not None
    assert (figures.flushes, figures.peak_rss_mb, figures.startup_ms) == (2, 12.0, None)


def test_the_extensions_figures_are_the_environments_over_the_window(view_store):
    # thumbnailer's environment flushed the extension's own figures; checkout's did not.
    view = invocation_view(view_store.reader, "thumbnailer-0005", "thumbnailer", HOUR)

    assert view is not None
    extension = view.environment_extension
    assert extension is not None
    assert (extension.flushes, extension.peak_rss_mb, extension.startup_ms) == (1, 12.0, 18.0)
    checkout = invocation_view(view_store.reader, COLD_REQUEST, "checkout", HOUR)
    assert checkout is not None and checkout.environment_extension is None
    # Outside the window the environment's figures are not the window's.
    before = Window(NOW - timedelta(hours=1), NOW - timedelta(minutes=10))
    early = invocation_view(view_store.reader, "thumbnailer-0005", "thumbnailer", before)
    assert early is not None and early.environment_extension is None


def test_a_request_that_is_not_stored(view_store):
    assert invocation_view(view_store.reader, "no-such-request", "checkout", HOUR) is None
