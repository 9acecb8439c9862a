"""What each screen looks like, at 80x24 and 160x48, over canned data and a frozen clock.

The pictures live in ``__snapshots__/`` beside this file; after an intended change of the UI,
look at the report pytest writes and accept the new pictures with ``--snapshot-update``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from lambdascope.analyzers.window import Window
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens.function import FunctionScreen
from lambdascope.tui.screens.help import HelpScreen
from lambdascope.tui.screens.invocation import InvocationScreen
from lambdascope.tui.screens.invocations import InvocationsScreen
from lambdascope.tui.screens.tail import TailScreen
from tests.analyzers import fleetdata
from tests.analyzers.storefixtures import TestStore
from tests.analyzers.tailfixtures import json_line, line, report, start, write

#: A fixed clock: the same pictures whatever day the tests run on.
FROZEN = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = Window(FROZEN - timedelta(hours=1), FROZEN)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture(scope="module")
def canned(chdb_path: str) -> Iterator[TestStore]:
    store = TestStore(chdb_path, f"t_tui_snapshots_{os.getpid()}")
    try:
        store.write(fleetdata.with_checkout_timeouts(fleetdata.oom_fleet(FROZEN)))
        yield store
    finally:
        store.drop()


#: Where the tail's canned lines begin.
TAIL_T0 = FROZEN - timedelta(minutes=10)


@pytest.fixture(scope="module")
def extras(chdb_path: str) -> Iterator[TestStore]:
    """Log lines for the tail, in a store of their own: the fleet's pictures stay as they are."""
    store = TestStore(chdb_path, f"t_tui_snapshot_extras_{os.getpid()}")
    try:
        t0 = TAIL_T0
        write(store, "checkout", [start(0, "r1", t0=t0), line(5, "r1", "charging card", t0=t0)],
              t0=t0)  # fmt: skip
        slow = {"level": "WARN", "message": "bank slow", "attempt": 2}
        write(store, "payments", [json_line(8, slow, t0=t0)], t0=t0)
        write(store, "checkout", [line(20, "r1", "card charged", t0=t0),
                                  *report(30, "r1", 25.0, t0=t0)], t0=t0)  # fmt: skip
        yield store
    finally:
        store.drop()


def _app(store: TestStore) -> LambdascopeApp:
    # A long refresh interval: a live refresh must not land between two pictures.
    return LambdascopeApp(store.reader, now=FROZEN, refresh_interval=3600.0)


def _until(condition: Callable[[], bool]) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, "the screen did not finish loading"
            await pilot.pause(0.05)
        await pilot.pause(0.2)  # let the last layout settle

    return run_before


def _tables_filled(app: LambdascopeApp) -> bool:
    tables = list(app.screen.query(DataTable))
    return (
        bool(tables)
        and all(t.row_count > 0 for t in tables)
        and not app.screen.workers
        # Column widths follow new rows on the table's next idle: wait for them.
        and not any(t._require_update_dimensions or t._new_rows for t in tables)
    )


@pytest.mark.parametrize("size", SIZES)
def test_fleet(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)
    assert snap_compare(app, terminal_size=size, run_before=_until(lambda: _tables_filled(app)))


@pytest.mark.parametrize("size", SIZES)
def test_function(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        app.push_screen(FunctionScreen(app.client, "checkout", WINDOW))
        await _until(lambda: isinstance(app.screen, FunctionScreen) and _tables_filled(app))(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_timed_out_invocation(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)
    request_id = fleetdata.TIMED_OUT[0]

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        app.push_screen(InvocationScreen(app.client, request_id, "checkout", WINDOW))
        await _until(lambda: isinstance(app.screen, InvocationScreen) and not app.screen.workers)(
            pilot
        )

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_timeout_finding(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        findings = app.screen.query_one("#findings", DataTable)
        findings.focus()
        await pilot.press("g", "enter")
        await _until(lambda: app.screen is not app.screen_stack[0] and _tables_filled(app))(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_invocations(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        app.push_screen(InvocationsScreen(app.client, "checkout", WINDOW))
        await _until(
            lambda: (
                isinstance(app.screen, InvocationsScreen)
                and app.screen.page is not None
                and _tables_filled(app)
            )
        )(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_tail(
    snap_compare: Any, canned: TestStore, extras: TestStore, size: tuple[int, int]
) -> None:
    app = _app(canned)

    def read() -> bool:
        tail = app.screen
        return isinstance(tail, TailScreen) and tail.buffer.line_count > 0 and not tail.workers

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        # Polled once from the window's start; the next poll would be an hour later.
        app.push_screen(TailScreen(extras.reader, start=WINDOW.start, interval_s=3600.0))
        await _until(read)(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help_over_the_fleet(snap_compare: Any, canned: TestStore, size: tuple[int, int]) -> None:
    app = _app(canned)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _until(lambda: _tables_filled(app))(pilot)
        await pilot.press("question_mark")
        await _until(lambda: isinstance(app.screen, HelpScreen))(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
