"""The TUI at scale: each screen's queries alone, timed side by side with the screen's first
paint and refresh in the real Textual app (run headless), over a store of N invocations.

    python bench/tui_paint.py [--quick] [--invocations 10000000] [--store-dir DIR]

The store is the collector's own (``Store.open`` creates the schema), filled inside ClickHouse
with ``INSERT ... SELECT FROM numbers(N)`` into the tables the collector writes
(``invocation_parts``, ``cold_start_parts``, ``logs``), so the materialized views fill the
per-minute rollups exactly as ingest would. Distributions: 50 functions with skewed traffic
(``fn-00`` takes ~17% of it, ``fn-49`` ~1%), start times uniform over the last 7 days, a new
version every day, memory sizes 128-2048 MB, timeouts 3 s-15 min, lognormal-ish durations,
~0.5% errors and a few unhealthy functions (timeouts, errors, out-of-memory kills, memory near
the limit, slow inits), ~0.4% cold starts (with their init rows), one log line per ten
invocations plus the OOM lines. ``--store-dir`` keeps the store (and reuses it next time: the
clock the data was generated at is saved beside it, so the windows are the same).

Per screen, over the last 1 h and 24 h (the app's own whole-minute windows, clock pinned):

* fleet: ``fleet_summary`` + ``run_detectors`` (what FleetScreen reads);
* function (the busiest function): ``function_overview`` + ``recent_invocations``;
* invocations (the same function): ``invocations_page``, the first page, and a page 80% deep
  among the failed invocations (the screen's ``f`` filter).

(a) "query" is the screen's reads alone through the store's reader (the same client, read
sandbox included), ``--runs`` times after one warm-up: median and max. (b) "first paint" and
"refresh" are the real ``LambdascopeApp`` under ``app.run_test(size=(160, 48))``: from pushing
the screen (for the fleet, its first screen: from starting the app) until its table holds the
rows, and from pressing ``r`` until the table was refilled; the end is stamped when the table's
``show`` returns (the only instrumentation), ``--paints`` times each. The goals are the
TUI's: first paint < 1 s, refresh < 300 ms (on the median). A screen that misses one gets the
breakdown of its reads from (a), largest first.

Not a test: figures depend on the machine (2 shared cores here). Every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import textual  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from textual.screen import Screen  # noqa: E402

from lambdascope.analyzers import DETECTORS, run_detectors  # noqa: E402
from lambdascope.analyzers import function_view_sql, invocation_view_sql  # noqa: E402
from lambdascope.analyzers import sql as analyzer_sql  # noqa: E402
from lambdascope.analyzers.fleet import fleet_summary  # noqa: E402
from lambdascope.analyzers.function_view import function_overview, recent_invocations  # noqa: E402
from lambdascope.analyzers.invocation_view import InvocationFilters, invocations_page  # noqa: E402
from lambdascope.analyzers.window import Window, ch_time  # noqa: E402
from lambdascope.collector.store import Store  # noqa: E402
from lambdascope.query import QueryClient, QueryResult  # noqa: E402
from lambdascope.tui.app import LambdascopeApp  # noqa: E402
from lambdascope.tui.screens.function import FunctionScreen  # noqa: E402
from lambdascope.tui.screens.invocations import CHROME_LINES, InvocationsScreen  # noqa: E402
from lambdascope.tui.widgets.fleet_table import FleetTable  # noqa: E402
from lambdascope.tui.widgets.invocation_list import InvocationList  # noqa: E402

SIZE = (160, 48)
FIRST_PAINT_GOAL_MS = 1000.0
REFRESH_GOAL_MS = 300.0
SPAN_DAYS = 7
CHUNK = 2_000_000
FUNCTION = "fn-00"  # the busiest function: the function screens' worst case
META = "tui_paint.json"
#: A screen that has not painted after this long is reported as failed, not waited for.
PAINT_TIMEOUT_S = 120.0

# One synthetic invocation per number n, every value a pure function of n (cityHash64 with a
# per-column seed) so the log lines and init rows below name the same requests and
# environments. Traffic per function is skewed (f = 50 * u^2.2) as real fleets are.
_INVOCATION = """
WITH
    {span_ms:UInt64} AS span_ms,
    toUInt64(floor(50 * pow((cityHash64(n, 9) % 1000000) / 1000000.0, 2.2))) AS f,
    cityHash64(n, 1) % span_ms AS age_ms,
    {now:DateTime64(3, 'UTC')} - toIntervalMillisecond(age_ms + 1) AS t_start,
    (cityHash64(n, 2) % 100000) AS u_status,
    (cityHash64(n, 3) % 1000) / 1000.0 AS u_duration,
    (cityHash64(n, 4) % 1000) / 1000.0 AS u_memory,
    (cityHash64(n, 5) % 10000) AS u_cold,
    [128, 256, 512, 1024, 2048][1 + f % 5] AS memory_mb,
    [3000, 6000, 15000, 30000, 60000, 900000][1 + f % 6] AS timeout_ms_,
    (20 + (f * 37) % 400) * (0.5 + pow(u_duration, 6) * 6) AS normal_ms,
    multiIf(f = 7 AND u_status < 2000, 'timeout',
            u_status < 20, 'timeout',
            f = 13 AND u_status < 3000, 'error',
            f = 33 AND u_status < 400, 'error',
            u_status >= 99500, 'error',
            'success') AS status_,
    multiIf(status_ = 'timeout', toFloat64(timeout_ms_),
            f = 29, timeout_ms_ * (0.5 + 0.45 * u_duration),
            normal_ms) AS duration_ms_,
    multiIf(f = 33 AND u_status < 400, 'Runtime.OutOfMemory',
            status_ = 'error', ['Runtime.HandlerError', 'ValueError', 'KeyError'][1 + u_status % 3],
            status_ = 'timeout', 'Sandbox.Timedout',
            '') AS error_type_,
    multiIf(f = 33 AND u_status < 400, memory_mb,
            f = 21, toUInt32(memory_mb * (0.9 + 0.1 * u_memory)),
            toUInt32(memory_mb * (0.2 + 0.5 * u_memory))) AS used_mb,
    if(f = 40, u_cold < 800, u_cold < 40) AS cold,
    if(cold, if(f = 40, 1200 + cityHash64(n, 6) % 1800, 150 + cityHash64(n, 6) % 900), NULL)
        AS init_ms,
    t_start + toIntervalMillisecond(toUInt64(duration_ms_)) AS t_end,
    toString(reinterpretAsUUID(concat(reinterpretAsString(cityHash64(n, 7)),
                                      reinterpretAsString(cityHash64(n, 8))))) AS request_id_,
    concat('fn-', leftPad(toString(f), 2, '0')) AS function_name_,
    toString(1 + intDiv(span_ms - age_ms, 86400000)) AS version_,
    -- A cold start opens an environment of its own; warm invocations share ~60 per hour.
    lower(hex(if(cold, cityHash64(n, 10),
                 cityHash64(f, intDiv(n, 50) % 60, intDiv(span_ms - age_ms, 3600000)))))
        AS environment_id_
"""

_NUMBERS = "\nFROM (SELECT number AS n FROM numbers({offset:UInt64}, {count:UInt64}))\n"

INSERT_INVOCATIONS = (
    """
INSERT INTO invocation_parts (function_name, request_id, event_date, function_version,
    environment_id, region, architecture, env_memory_size_mb, start_time, runtime_done_time,
    report_time, received_at, deadline, timeout_ms, invoked_function_arn, runtime_done_status,
    runtime_done_error_type, runtime_done_duration_ms, report_status, report_error_type,
    report_duration_ms, report_billed_duration_ms, report_memory_size_mb,
    report_max_memory_used_mb, report_init_duration_ms, has_start, has_runtime_done, has_report,
    has_invoke, log_lines, last_sent_at)
"""
    + _INVOCATION
    + """
SELECT
    function_name_,
    request_id_,
    toDate(t_start),
    version_,
    environment_id_,
    'us-east-1',
    if(f % 3 = 0, 'arm64', 'x86_64'),
    memory_mb,
    t_start,
    t_end,
    t_end + toIntervalMillisecond(3),
    t_start - toIntervalMillisecond(2),
    t_start + toIntervalMillisecond(timeout_ms_),
    toFloat64(timeout_ms_),
    concat('arn:aws:lambda:us-east-1:000000000000:function:', function_name_),
    status_,
    nullIf(error_type_, ''),
    duration_ms_ - 0.4,
    status_,
    nullIf(error_type_, ''),
    duration_ms_,
    ceil(duration_ms_),
    memory_mb,
    used_mb,
    init_ms,
    1, 1, 1, 1,
    if(n % 10 = 0 OR error_type_ = 'Runtime.OutOfMemory', 1, 0),
    t_end + toIntervalMillisecond(700)"""
    + _NUMBERS
)

# The init of every cold start (platform.initStart / initRuntimeDone / initReport merged), as
# the collector writes them: the cold_starts view and the function screen's inits read these.
INSERT_COLD_STARTS = (
    """
INSERT INTO cold_start_parts (function_name, environment_id, phase, event_date,
    function_version, initialization_type, init_start_time, runtime_done_time, report_time,
    runtime_version, runtime_done_status, report_status, init_duration_ms, has_init_start,
    has_runtime_done, has_report)
"""
    + _INVOCATION
    + """,
    t_start - toIntervalMillisecond(toUInt64(init_ms) + 5) AS init_start
SELECT
    function_name_,
    environment_id_,
    'init',
    toDate(init_start),
    version_,
    'on-demand',
    init_start,
    t_start - toIntervalMillisecond(5),
    t_start - toIntervalMillisecond(4),
    'python:3.12.v40',
    'success',
    'success',
    init_ms,
    1, 1, 1"""
    + _NUMBERS
    + "WHERE cold\n"
)

# One ordinary line per ten invocations, and the OOM line of every out-of-memory kill.
INSERT_LOGS = (
    """
INSERT INTO logs (timestamp, function_name, function_version, environment_id, request_id,
    stream, level, message, batch_id, seq)
"""
    + _INVOCATION
    + """
SELECT
    t_start + toIntervalMillisecond(1),
    function_name_,
    version_,
    environment_id_,
    request_id_,
    'function',
    if(error_type_ = 'Runtime.OutOfMemory', 'ERROR', 'INFO'),
    if(error_type_ = 'Runtime.OutOfMemory',
       'MemoryError: Unable to allocate 96.0 MiB for an array',
       concat('processed order ', toString(n))),
    'bench',
    0"""
    + _NUMBERS
    + "WHERE n % 10 = 0 OR error_type_ = 'Runtime.OutOfMemory'\n"
)

COUNTS = """
SELECT
    (SELECT count() FROM invocation_parts) AS parts,
    (SELECT sum(invocations) FROM invocation_minutes) AS reported,
    (SELECT count() FROM cold_start_parts) AS inits,
    (SELECT count() FROM logs) AS log_lines
"""


# --- the store -------------------------------------------------------------------------------


@dataclass
class Built:
    now: datetime
    invocations: int
    insert_s: float
    merge_s: float
    reused: bool


def generate(store: Store, invocations: int, now: datetime) -> tuple[float, float]:
    """Fill the store; returns (seconds inserting, seconds merging)."""
    client = store._client
    started = time.perf_counter()
    for offset in range(0, invocations, CHUNK):
        count = min(CHUNK, invocations - offset)
        params = {
            "now": ch_time(now),
            "offset": offset,
            "count": count,
            "span_ms": SPAN_DAYS * 86_400_000,
        }
        client.command(INSERT_INVOCATIONS, parameters=params)
        client.command(INSERT_COLD_STARTS, parameters=params)
        client.command(INSERT_LOGS, parameters=params)
        elapsed = time.perf_counter() - started
        print(f"  inserted {offset + count:>12,} invocations ({elapsed:.0f} s)", flush=True)
    inserted = time.perf_counter() - started
    # Merge the freshly written parts (and build their projection) as background merges would
    # on a store that has been running: timings then reflect a settled store, not a merge storm.
    for table in ("invocation_parts", "invocation_minutes", "cold_start_parts", "logs"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    return inserted, time.perf_counter() - started - inserted


def open_store(store_dir: Path, invocations: int) -> tuple[Store, Built]:
    """The store in ``store_dir``: reused when it holds this benchmark's data, else built."""
    meta_path = store_dir / META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if int(meta["invocations"]) != invocations:
            raise SystemExit(
                f"{store_dir} holds {int(meta['invocations']):,} invocations, not "
                f"{invocations:,}: pass --invocations {meta['invocations']} or another directory"
            )
        store = Store.open(f"chdb://{store_dir}/store", "bench")
        now = datetime.fromisoformat(meta["now"])
        return store, Built(now, invocations, meta["insert_s"], meta["merge_s"], reused=True)
    if store_dir.exists() and any(store_dir.iterdir()):
        raise SystemExit(f"{store_dir} is not empty and holds no {META}: choose another directory")
    store_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(store_dir).free / 1e9
    print(f"building {invocations:,} invocations over {SPAN_DAYS} days in {store_dir}", flush=True)
    print(f"  disk free before: {free_gb:.1f} GB", flush=True)
    # The clock on a whole minute: the app's windows end on one (tui/timewindow.py), so the
    # query-only windows and the app's are the very same.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    store = Store.open(f"chdb://{store_dir}/store", "bench")
    insert_s, merge_s = generate(store, invocations, now)
    meta_path.write_text(
        json.dumps(
            {"now": now.isoformat(), "invocations": invocations, "insert_s": insert_s,
             "merge_s": merge_s}
        )
    )
    return store, Built(now, invocations, insert_s, merge_s, reused=False)


def check_counts(store: Store, built: Built, store_dir: Path) -> None:
    row = store._client.query(COUNTS).result_rows[0]
    parts, reported, inits, log_lines = (int(v or 0) for v in row)
    size = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file())
    print(
        f"  counted: {parts:,} invocation rows, {reported:,} in the per-minute rollups, "
        f"{inits:,} inits, {log_lines:,} log lines; {size / 1e9:.2f} GB on disk"
    )
    if parts != built.invocations or reported != built.invocations:
        raise SystemExit(
            f"the store holds {parts:,} invocation rows ({reported:,} in the rollups), "
            f"expected {built.invocations:,}"
        )


# --- (a) the queries alone -----------------------------------------------------------------

#: Every SQL statement the analyzers name, by its text: the breakdown's labels.
SQL_NAMES: dict[str, str] = {
    text: name
    for module in (analyzer_sql, function_view_sql, invocation_view_sql)
    for name, text in vars(module).items()
    if name.isupper() and isinstance(text, str) and "SELECT" in text
}


class TimingClient:
    """The reader, timing each query under the analyzers' name for its SQL."""

    def __init__(self, client: QueryClient) -> None:
        self.client = client
        self.times: dict[str, float] = defaultdict(float)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        started = time.perf_counter()
        try:
            return self.client.query(sql, parameters)
        finally:
            name = SQL_NAMES.get(sql, " ".join(sql.split()[:4]))
            self.times[name] += (time.perf_counter() - started) * 1000


@dataclass
class Stats:
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else float("nan")


@dataclass
class Scenario:
    """One screen over one window: its reads (a) and its paints (b)."""

    screen: str
    label: str
    window: Window
    #: One timed pass of the screen's reads; returns {part: ms}, parts summing to the total.
    reads: Callable[[], dict[str, float]]
    #: What the screen is opened with (function screens: the Screen; fleet: None).
    make_screen: Callable[[], Screen[None]] | None
    query: Stats = field(default_factory=Stats)
    parts: dict[str, Stats] = field(default_factory=lambda: defaultdict(Stats))
    first_paint: Stats = field(default_factory=Stats)
    refresh: Stats = field(default_factory=Stats)
    rows: int = 0
    note: str = ""


def fleet_reads(reader: QueryClient, window: Window) -> dict[str, float]:
    """What FleetScreen._read runs: the fleet, then every detector (timed one by one)."""
    since = window.end - window.start
    parts: dict[str, float] = {}
    started = time.perf_counter()
    fleet_summary(reader, since=since, now=window.end)
    parts["fleet_summary"] = (time.perf_counter() - started) * 1000
    for name, detector in DETECTORS.items():
        started = time.perf_counter()
        run_detectors(reader, since=since, now=window.end, detectors={name: detector})
        parts[f"detector {name}"] = (time.perf_counter() - started) * 1000
    return parts


def function_reads(reader: QueryClient, window: Window) -> dict[str, float]:
    """What FunctionScreen.load runs, per statement."""
    timing = TimingClient(reader)
    function_overview(timing, FUNCTION, window)
    overview = dict(timing.times)
    timing.times.clear()
    recent_invocations(timing, FUNCTION, window)
    parts = {f"function_overview: {name}": ms for name, ms in overview.items()}
    parts.update({f"recent_invocations: {name}": ms for name, ms in timing.times.items()})
    return parts


def page_reads(
    reader: QueryClient, window: Window, filters: InvocationFilters, offset: int
) -> dict[str, float]:
    started = time.perf_counter()
    invocations_page(reader, FUNCTION, window, filters, offset=offset, limit=PAGE_SIZE)
    return {"invocations_page": (time.perf_counter() - started) * 1000}


#: The invocation screen's page at 160x48 (InvocationsScreen.page_size): the same limit here.
PAGE_SIZE = max(5, SIZE[1] - CHROME_LINES)


def measure_queries(scenario: Scenario, runs: int) -> None:
    scenario.reads()  # warm-up: the first read of a table pays for loading its marks
    for _ in range(runs):
        parts = scenario.reads()
        scenario.query.samples.append(sum(parts.values()))
        for name, ms in parts.items():
            scenario.parts[name].samples.append(ms)


# --- (b) the real app, headless ------------------------------------------------------------


@contextlib.contextmanager
def stamped(*classes: type[Any]) -> Iterator[list[float]]:
    """Record when each ``show`` of these tables returns: the moment a screen's table holds
    its rows (the screens fill their table last, from the message their worker posts)."""
    stamps: list[float] = []
    originals = {cls: cls.show for cls in classes}

    def wrap(original: Callable[..., None]) -> Callable[..., None]:
        def show(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            stamps.append(time.perf_counter())

        return show

    for cls, original in originals.items():
        cls.show = wrap(original)  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        for cls, original in originals.items():
            cls.show = original  # type: ignore[method-assign]


async def next_stamp(pilot: Pilot[None], stamps: list[float], seen: int) -> float:
    """The stamp after the first ``seen`` ones, once the app posted it."""
    deadline = time.monotonic() + PAINT_TIMEOUT_S
    while len(stamps) <= seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no table was filled within {PAINT_TIMEOUT_S:.0f} s")
        # A short sleep, not pilot.pause(): the stamp carries the exact time anyway.
        await asyncio.sleep(0.002)
    return stamps[seen]


def app_for(reader: QueryClient, window: Window) -> LambdascopeApp:
    # The clock pinned to the window's end; no live ticks, so only the presses refresh.
    return LambdascopeApp(
        reader, since=window.end - window.start, now=window.end, refresh_interval=3600.0
    )


async def paint_fleet(
    reader: QueryClient, scenario: Scenario, paints: int, stamps: list[float]
) -> None:
    """First paint of the app's first screen, then refreshes (r) on one of the apps."""
    for attempt in range(paints):
        app = app_for(reader, scenario.window)
        seen = len(stamps)
        started = time.perf_counter()
        async with app.run_test(size=SIZE) as pilot:
            scenario.first_paint.samples.append((await next_stamp(pilot, stamps, seen) - started) * 1000)
            scenario.rows = app.screen.query_one(FleetTable).row_count
            if attempt == 0:
                for _ in range(paints):
                    seen = len(stamps)
                    started = time.perf_counter()
                    await pilot.press("r")
                    done = await next_stamp(pilot, stamps, seen)
                    scenario.refresh.samples.append((done - started) * 1000)


async def paint_pushed(
    reader: QueryClient, scenario: Scenario, paints: int, stamps: list[float]
) -> None:
    """Push the screen over the fleet ``paints`` times (first paint), refresh it (r) on the
    first push."""
    assert scenario.make_screen is not None
    app = app_for(reader, scenario.window)
    async with app.run_test(size=SIZE) as pilot:
        await next_stamp(pilot, stamps, len(stamps))  # the fleet, underneath, has loaded
        for attempt in range(paints):
            screen = scenario.make_screen()
            seen = len(stamps)
            started = time.perf_counter()
            await app.push_screen(screen)
            scenario.first_paint.samples.append((await next_stamp(pilot, stamps, seen) - started) * 1000)
            scenario.rows = screen.query_one(InvocationList).row_count
            if attempt == 0:
                for _ in range(paints):
                    seen = len(stamps)
                    started = time.perf_counter()
                    await pilot.press("r")
                    done = await next_stamp(pilot, stamps, seen)
                    scenario.refresh.samples.append((done - started) * 1000)
            await app.pop_screen()
            await pilot.pause()


async def measure_paints(reader: QueryClient, scenarios: list[Scenario], paints: int) -> None:
    with stamped(FleetTable, InvocationList) as stamps:
        for scenario in scenarios:
            print(f"  painting {scenario.screen}: {scenario.label}", flush=True)
            try:
                if scenario.make_screen is None:
                    await paint_fleet(reader, scenario, paints, stamps)
                else:
                    await paint_pushed(reader, scenario, paints, stamps)
            except TimeoutError as exc:
                scenario.note = str(exc)


# --- the report ----------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def _goal(stats: Stats, goal: float) -> str:
    if not stats.samples:
        return "not measured"
    if stats.median >= goal:
        return "**not met**"
    return "met" if stats.max < goal else "met (max over)"


def print_tables(scenarios: list[Scenario], runs: int, paints: int) -> None:
    for screen in dict.fromkeys(s.screen for s in scenarios):
        rows = [s for s in scenarios if s.screen == screen]
        print()
        print(f"### {screen}")
        print()
        print(
            "| window | rows | query ms (median / max) | first paint ms (median / max) "
            "| refresh ms (median / max) | paint/query | first paint < 1 s | refresh < 300 ms |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for s in rows:
            ratio = s.first_paint.median / s.query.median if s.query.samples else float("nan")
            print(
                f"| {s.label} | {s.rows:,} | {_ms(s.query.median)} / {_ms(s.query.max)} "
                f"| {_ms(s.first_paint.median)} / {_ms(s.first_paint.max)} "
                f"| {_ms(s.refresh.median)} / {_ms(s.refresh.max)} "
                f"| {'-' if ratio != ratio else f'{ratio:.2f}x'} "
                f"| {_goal(s.first_paint, FIRST_PAINT_GOAL_MS)} "
                f"| {_goal(s.refresh, REFRESH_GOAL_MS)} |"
            )
        print()
        for s in rows:
            if s.note:
                print(f"- {s.label}: {s.note}")
            missed = [
                goal
                for goal, stats, target in (
                    ("first paint", s.first_paint, FIRST_PAINT_GOAL_MS),
                    ("refresh", s.refresh, REFRESH_GOAL_MS),
                )
                if stats.samples and stats.median >= target
            ]
            if not missed:
                continue
            total = s.query.median
            top = sorted(s.parts.items(), key=lambda item: -item[1].median)[:4]
            dominant = ", ".join(
                f"{name} {_ms(stats.median)} ms ({stats.median / total:.0%})"
                for name, stats in top
            )
            print(f"- {s.label}: {' and '.join(missed)} missed; of {_ms(total)} ms: {dominant}")
    print()
    print(
        f"(query: {runs} runs after a warm-up; first paint and refresh: {paints} each; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


# --- main --------------------------------------------------------------------------------


def scenarios_for(reader: QueryClient, now: datetime) -> list[Scenario]:
    out: list[Scenario] = []
    windows = [(span, Window(now - span, now)) for span in (timedelta(hours=1), timedelta(hours=24))]
    for span, window in windows:
        out.append(
            Scenario(
                "fleet (fleet_summary + run_detectors)",
                f"last {span_label(span)}",
                window,
                lambda w=window: fleet_reads(reader, w),
                None,
            )
        )
    for span, window in windows:
        out.append(
            Scenario(
                f"function {FUNCTION} (function_overview + recent_invocations)",
                f"last {span_label(span)}",
                window,
                lambda w=window: function_reads(reader, w),
                lambda w=window: FunctionScreen(reader, FUNCTION, w),
            )
        )
    failed = InvocationFilters(status="failed")
    for span, window in windows:
        out.append(
            Scenario(
                f"invocations {FUNCTION} (invocations_page, {PAGE_SIZE} rows a page)",
                f"last {span_label(span)}, first page",
                window,
                lambda w=window: page_reads(reader, w, InvocationFilters(), 0),
                lambda w=window: InvocationsScreen(reader, FUNCTION, w),
            )
        )
        total = invocations_page(reader, FUNCTION, window, failed, limit=1).total
        offset = (int(total * 0.8) // PAGE_SIZE) * PAGE_SIZE

        def deep_screen(w: Window = window, offset: int = offset) -> Screen[None]:
            screen = InvocationsScreen(reader, FUNCTION, w, filters=failed)
            # As if n had been pressed offset/PAGE_SIZE times: the first load reads that page.
            screen.page_offset = offset
            return screen

        out.append(
            Scenario(
                f"invocations {FUNCTION} (invocations_page, {PAGE_SIZE} rows a page)",
                f"last {span_label(span)}, failed, page {offset // PAGE_SIZE + 1} of "
                f"{max(1, -(-total // PAGE_SIZE))}",
                window,
                lambda w=window, o=offset: page_reads(reader, w, failed, o),
                deep_screen,
            )
        )
    return out


def span_label(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 invocations, 3 runs, 2 paints")
    parser.add_argument("--invocations", type=int, default=None, help="default 10,000,000")
    parser.add_argument("--runs", type=int, default=None, help="query-only runs (default 5)")
    parser.add_argument("--paints", type=int, default=None, help="paints per screen (default 3)")
    parser.add_argument(
        "--store-dir", type=Path, default=None, help="build the store here and keep it (reused)"
    )
    args = parser.parse_args(argv)
    invocations = args.invocations or (200_000 if args.quick else 10_000_000)
    runs = args.runs or (3 if args.quick else 5)
    paints = args.paints or (2 if args.quick else 3)
    if invocations <= 0 or runs <= 0 or paints <= 0:
        parser.error("--invocations, --runs and --paints must be positive")
    started = time.perf_counter()
    print(
        f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}, "
        f"Textual {textual.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    tmp = None
    store_dir = args.store_dir
    if store_dir is None:
        tmp = tempfile.mkdtemp(prefix="lambdascope-bench-tui-")
        store_dir = Path(tmp)
    store = None
    try:
        store, built = open_store(store_dir.resolve(), invocations)
        if built.reused:
            print(f"reusing {built.invocations:,} invocations in {store_dir} (clock {built.now})")
        print(
            f"build: {built.insert_s + built.merge_s:.1f} s ({built.insert_s:.1f} s inserting, "
            f"{built.insert_s and invocations / built.insert_s:,.0f} invocations/s; "
            f"{built.merge_s:.1f} s merging)"
            + (" when it was built" if built.reused else "")
        )
        check_counts(store, built, store_dir)
        reader = store.reader()
        scenarios = scenarios_for(reader, built.now)
        print("timing the queries alone", flush=True)
        for scenario in scenarios:
            measure_queries(scenario, runs)
        print("timing the app", flush=True)
        asyncio.run(measure_paints(reader, scenarios, paints))
        print_tables(scenarios, runs, paints)
        print(f"total {time.perf_counter() - started:.0f} s")
    finally:
        if store is not None:
            store.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
