from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import timedelta

from textual.pilot import Pilot
from textual.widgets import Static

from lambdascope.query import CollectorQueryClient
from lambdascope.tui.app import LambdascopeApp
from lambdascope.tui.screens import FindingScreen, FleetScreen
from lambdascope.tui.widgets import FindingsTable, FleetTable, InvocationsTable, LogView
from tests.analyzers import fleetdata
from tests.analyzers.fleetdata import NOW, PAYMENTS_LINE, TIMED_OUT

SIZE = (120, 36)


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let workers finish and messages land, for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the UI did not reach the expected state in time"
        await pilot.pause(0.02)


def status_text(app: LambdascopeApp) -> str:
    return str(app.screen.query_one("#status", Static).render())


def row_texts(table) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def log_texts(view: LogView) -> list[str]:
    return view.text.splitlines()


async def test_timeout_finding_is_listed_on_the_fleet_screen(store):
    store.write(fleetdata.timeout_fleet())
    app = LambdascopeApp(store.reader, since=timedelta(hours=1), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        findings = app.screen.query_one(FindingsTable)
        await wait_for(pilot, lambda: findings.row_count > 0)

        assert row_texts(findings) == [
            [
                "critical",
                "Timeout",
                "checkout",
                "3 of 40 invocations of checkout timed out at its 3.0 s limit",
            ]
        ]
        fleet = {row[0]: row for row in row_texts(app.screen.query_one(FleetTable))}
        assert sorted(fleet) == ["checkout", "report_export", "thumbnailer"]
        # Invocations, errors, timeouts, throttles (no metric stream here: unknown), cold starts.
        assert fleet["checkout"][1:6] == ["40", "0%", "3", "-", "2.5%"]
        assert "3 functions, 1 findings (1 critical)" in status_text(app)


async def test_enter_on_a_finding_shows_its_invocations_and_the_request_log(store):
    store.write(fleetdata.timeout_fleet())
    app = LambdascopeApp(store.reader, since=timedelta(hours=1), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(FindingsTable).row_count > 0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FindingScreen))
        screen = app.screen
        invocations = screen.query_one(InvocationsTable)
        log = screen.query_one(LogView)
        await wait_for(pilot, lambda: invocations.row_count == 3 and bool(log.messages))

        assert [row[-1] for row in row_texts(invocations)] == list(TIMED_OUT)
        assert row_texts(invocations)[0][1] == "timed out"
        shown = log_texts(log)
        assert any(PAYMENTS_LINE in line for line in shown)
        assert any("Task timed out after 3.00 seconds" in line for line in shown)
        assert "START RequestId: checkout-0007" in shown[0]

        # Moving down shows the next request's log.
        await pilot.press("down")
        await wait_for(pilot, lambda: any("checkout-0019" in m for m in log.messages))
        assert all("checkout-0007" not in line for line in log_texts(log))

        summary = str(screen.query_one("#finding-summary", Static).render())
        assert "Timeout  checkout" in summary
        details = screen.query_one("#finding-details", Static)
        assert not details.display  # 36 rows: the figures wait behind m
        await pilot.press("m")
        assert details.display
        assert "timeouts 3 · timeout share 7.5% · timeout 3.00 s" in str(details.render())

        await pilot.press("s")  # the SQL behind the finding
        await wait_for(pilot, lambda: "FROM invocations" in log.text)
        assert "{since:" not in log.text  # the values are written in
        assert "toDateTime64('" in log.text and "'checkout'" in log.text
        await pilot.press("s")  # back to the highlighted request's log
        await wait_for(pilot, lambda: "checkout-0019" in log.text)

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_collector_shows_a_message_instead_of_crashing():
    url = f"http://127.0.0.1:{closed_port()}"
    app = LambdascopeApp(CollectorQueryClient(url, timeout_s=2.0), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "unreachable" in status_text(app))

        text = status_text(app)
        assert url in text
        assert "Press r to retry" in text
        assert app.screen.query_one(FindingsTable).row_count == 0
        await pilot.press("r")  # retrying fails the same way, still without a crash
        await wait_for(pilot, lambda: "unreachable" in status_text(app))
        assert app.is_running


async def test_empty_store_says_there_is_no_data(store):
    app = LambdascopeApp(store.reader, since=timedelta(minutes=15), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "No invocations" in status_text(app))
        assert "last 15m" in status_text(app)
        await pilot.press("enter")  # nothing to open
        await asyncio.sleep(0.05)
        assert isinstance(app.screen, FleetScreen)


async def test_healthy_fleet_shows_functions_and_no_findings(store):
    store.write(fleetdata.healthy_fleet())
    app = LambdascopeApp(store.reader, since=timedelta(hours=1), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "No detector fired" in status_text(app))
        assert "for the 3 functions in the last 1h" in status_text(app)
        assert app.screen.query_one(FleetTable).row_count == 3
        assert app.screen.query_one(FindingsTable).row_count == 0
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_r_refreshes_and_picks_up_new_data(store):
    app = LambdascopeApp(store.reader, since=timedelta(hours=1), now=NOW)

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "No invocations" in status_text(app))
        store.write(fleetdata.timeout_fleet())
        await pilot.press("r")
        findings = app.screen.query_one(FindingsTable)
        await wait_for(pilot, lambda: findings.row_count == 1)
        assert row_texts(findings)[0][1:3] == ["Timeout", "checkout"]


async def test_a_store_without_the_contract_tables_shows_the_stores_error(chdb_path):
    import clickhouse_connect

    from lambdascope.query import DirectQueryClient

    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    admin.command("CREATE DATABASE IF NOT EXISTS t_tui_empty")
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database="t_tui_empty")
    try:
        app = LambdascopeApp(DirectQueryClient(client), now=NOW)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: "could not answer" in status_text(app))
            assert "invocations" in status_text(app)  # names what is missing
            assert "retry" not in status_text(app)
    finally:
        admin.command("DROP DATABASE IF EXISTS t_tui_empty")
        client.close()
        admin.close()
