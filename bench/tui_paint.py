"""The TUI at scale: each screen's queries alone, timed side by side with the screen's first
paint and refresh in the real Textual app (run headless), over a store of N invocations.

    python bench/tui_paint.py [--quick] [--invocations 10000000] [--store-dir DIR]
                              [--hours 1,24] [--runs 5] [--paints 3]

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

Per screen, over the last 1 h and 24 h (``--hours``; the app's whole-minute windows, its clock
pinned to the data's):

* fleet: ``fleet_summary`` + ``run_detectors`` (what FleetScreen reads);
* function (the busiest function): ``function_overview`` + ``recent_invocations``;
* invocations (the same function): ``invocations_page``, the first page, and a page 80% deep
  among the failed invocations (the screen's ``f`` filter).

(a) "query" is the screen's reads alone through the store's reader (the same client, read
sandbox included), ``--runs`` times after one warm-up: median and max. (b) "first paint" and
"refresh" are the real ``LambdascopeApp`` under ``app.run_test(size=(160, 48))``: from pushing
the screen (for the fleet, its first screen: from starting the app) until its table holds the
rows, and from pressing ``r`` until the table was refilled (the fleet fills its table from its
own rollup reads and shows the findings when the detectors finish: "query" counts both); the
end is stamped when the table's ``show`` returns (the only instrumentation), ``--paints``
times each. "of which reads" is the
time the app's worker spent in queries during that paint (the rest: mounting, handing the
rows to the UI thread, filling the table, and the worker waiting for the GIL). The goals are
the TUI's: first paint < 1 s, refresh < 300 ms (on the median). A screen that misses one gets
the breakdown of its reads from (a), largest first, and how many queries one pass makes.

Not a test: figures depend on the machine (2 shared cores here). Every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping
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

from lambdascope.analyzers import (  # noqa: E402
    DETECTORS,
    function_view_sql,
    invocation_view_sql,
    run_detectors,
)
from lambdascope.analyzers import sql as analyzer_sql  # noqa: E402
from lambdascope.analyzers.fleet import fleet_summary  # noqa: E402
from lambdascope.analyzers.function_view import function_overview, recent_invocations  # noqa: E402
from lambdascope.analyzers.invocation_view import InvocationFilters, invocations_page  # noqa: E402
from lambdascope.analyzers.window import Window, ch_time  # noqa: E402
from lambdascope.collector.store import Store  # noqa: E402
from lambdascope.query import QueryClient, QueryError, QueryResult  # noqa: E402
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
            {
                "now": now.isoformat(),
                "invocations": invocations,
                "insert_s": insert_s,
                "merge_s": merge_s,
            }
        )
    )
    return store, Built(now, invocations, insert_s, merge_s, reused=False)


def check_counts(store: Store, built: Built, store_dir: Path) -> None:
    row = store._client.query(COUNTS).result_rows[0]
    parts, reported, inits, log_lines = (int(v or 0) for v in row)
    # Each file once: the merged parts' files are hard links to the old parts' where unchanged.
    files = {(st.st_dev, st.st_ino): st.st_size for st in (p.stat() for p in store_dir.rglob("*"))}
    size = sum(files.values())
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
    #: One timed pass of the screen's reads on a client; returns {part: ms}, parts summing
    #: to the total.
    reads: Callable[[QueryClient], dict[str, float]]
    #: The screen to push, on the given client (None: the fleet, the app's first screen).
    make_screen: Callable[[QueryClient], Screen[None]] | None
    query: Stats = field(default_factory=Stats)
    parts: dict[str, Stats] = field(default_factory=lambda: defaultdict(Stats))
    first_paint: Stats = field(default_factory=Stats)
    refresh: Stats = field(default_factory=Stats)
    #: Of the paints, the time the app's worker spent in queries.
    paint_reads: Stats = field(default_factory=Stats)
    refresh_reads: Stats = field(default_factory=Stats)
    rows: int = 0
    #: Queries in one pass of the reads: each pays a fixed cost (read sandbox, planning).
    queries: int = 0
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
        try:
            run_detectors(reader, since=since, now=window.end, detectors={name: detector})
        except Exception as exc:
            # Name the detector and the query's own error: run_detectors' re-raise can fail
            # itself (a TypeError raised while handling the QueryError, its __context__).
            cause = exc if isinstance(exc, QueryError) else (exc.__context__ or exc)
            raise RuntimeError(f"detector {name!r}: {cause}") from exc
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


def measure_queries(reader: QueryClient, scenario: Scenario, runs: int) -> None:
    counting = StampingClient(reader)
    try:
        scenario.reads(counting)  # warm-up: the first read of a table pays for loading marks
    except Exception as exc:  # a read limit, say: reported, and the screen is not painted
        scenario.note = f"its reads fail: {exc}"
        if isinstance(exc.__cause__, TypeError):
            scenario.note += f" (and run_detectors, re-raising it, raises {exc.__cause__!r})"
        return
    scenario.queries = len(counting.spans)
    for _ in range(runs):
        parts = scenario.reads(reader)
        scenario.query.samples.append(sum(parts.values()))
        for name, ms in parts.items():
            scenario.parts[name].samples.append(ms)


# --- (b) the real app, headless ------------------------------------------------------------


class StampingClient:
    """The app's reader, recording when each query ran: the part of a paint spent reading."""

    def __init__(self, client: QueryClient) -> None:
        self.client = client
        self.spans: list[tuple[float, float]] = []

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        started = time.perf_counter()
        try:
            return self.client.query(sql, parameters)
        finally:
            self.spans.append((started, time.perf_counter()))

    def reading_ms(self, start: float, end: float) -> float:
        """Milliseconds spent in queries that ran within [start, end]."""
        return sum(b - a for a, b in self.spans if a >= start and b <= end) * 1000


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


async def settled(pilot: Pilot[None]) -> None:
    """Wait until the app's reads are over: the fleet fills its table first and its findings
    later, so a later ``show`` of this load must not end the next measurement."""
    deadline = time.monotonic() + PAINT_TIMEOUT_S
    while any(worker.is_running for worker in pilot.app.workers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app was still reading after {PAINT_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.01)
    await pilot.pause()


def app_for(reader: QueryClient, window: Window) -> LambdascopeApp:
    # The clock pinned to the window's end; no live ticks, so only the presses refresh.
    return LambdascopeApp(
        reader, since=window.end - window.start, now=window.end, refresh_interval=3600.0
    )


@dataclass
class Painter:
    """Times from a trigger to the next table fill, and the app's reads in between."""

    client: StampingClient
    stamps: list[float]

    async def time(
        self,
        pilot: Pilot[None],
        trigger: Callable[[], Awaitable[object]],
        total: Stats,
        reads: Stats,
    ) -> None:
        seen = len(self.stamps)
        started = time.perf_counter()
        await trigger()
        done = await next_stamp(pilot, self.stamps, seen)
        total.samples.append((done - started) * 1000)
        reads.samples.append(self.client.reading_ms(started, done))
        await settled(pilot)

    async def refreshes(self, pilot: Pilot[None], scenario: Scenario, paints: int) -> None:
        for _ in range(paints):
            await self.time(
                pilot, lambda: pilot.press("r"), scenario.refresh, scenario.refresh_reads
            )


async def paint_fleet(painter: Painter, scenario: Scenario, paints: int) -> None:
    """The app's first screen: first paint from starting the app, ``paints`` apps; then
    refreshes (r) on the first."""
    for attempt in range(paints):
        app = app_for(painter.client, scenario.window)
        seen = len(painter.stamps)
        started = time.perf_counter()
        # The fleet loads as the app starts, maybe before run_test hands over the pilot.
        async with app.run_test(size=SIZE) as pilot:
            done = await next_stamp(pilot, painter.stamps, seen)
            scenario.first_paint.samples.append((done - started) * 1000)
            scenario.paint_reads.samples.append(painter.client.reading_ms(started, done))
            scenario.rows = app.screen.query_one(FleetTable).row_count
            await settled(pilot)
            if attempt == 0:
                await painter.refreshes(pilot, scenario, paints)


async def paint_pushed(
    painter: Painter, pilot: Pilot[None], scenario: Scenario, paints: int
) -> None:
    """Push the screen over the fleet ``paints`` times (first paint); refresh it (r) on the
    first push."""
    make_screen = scenario.make_screen
    assert make_screen is not None
    app = pilot.app
    for attempt in range(paints):
        screen = make_screen(painter.client)

        async def push(screen: Screen[None] = screen) -> None:
            await app.push_screen(screen)

        await painter.time(pilot, push, scenario.first_paint, scenario.paint_reads)
        scenario.rows = screen.query_one(InvocationList).row_count
        if attempt == 0:
            await painter.refreshes(pilot, scenario, paints)
        await app.pop_screen()
        await pilot.pause()


async def measure_paints(reader: QueryClient, scenarios: list[Scenario], paints: int) -> None:
    with stamped(FleetTable, InvocationList) as stamps:
        painter = Painter(StampingClient(reader), stamps)
        # A screen whose reads fail would wait out PAINT_TIMEOUT_S: not painted.
        fleets = [s for s in scenarios if s.make_screen is None and not s.note]
        pushed = [s for s in scenarios if s.make_screen is not None and not s.note]
        for scenario in fleets:
            print(f"  painting {scenario.screen}: {scenario.label}", flush=True)
            try:
                await paint_fleet(painter, scenario, paints)
            except TimeoutError as exc:
                scenario.note = str(exc)
        if not pushed:
            return
        # One app for the pushed screens (each carries its own window): the fleet beneath
        # loads once, and is idle while they are timed (no live ticks).
        app = app_for(painter.client, pushed[0].window)
        async with app.run_test(size=SIZE) as pilot:
            await next_stamp(pilot, stamps, len(stamps))
            for scenario in pushed:
                print(f"  painting {scenario.screen}: {scenario.label}", flush=True)
                try:
                    await paint_pushed(painter, pilot, scenario, paints)
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
            "| of which reads | refresh ms (median / max) | of which reads | paint/query "
            "| first paint < 1 s | refresh < 300 ms |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for s in rows:
            ratio = s.first_paint.median / s.query.median if s.query.samples else float("nan")
            print(
                f"| {s.label} | {s.rows:,} | {_ms(s.query.median)} / {_ms(s.query.max)} "
                f"| {_ms(s.first_paint.median)} / {_ms(s.first_paint.max)} "
                f"| {_ms(s.paint_reads.median)} "
                f"| {_ms(s.refresh.median)} / {_ms(s.refresh.max)} "
                f"| {_ms(s.refresh_reads.median)} "
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
                f"{name} {_ms(stats.median)} ms ({stats.median / total:.0%})" for name, stats in top
            )
            alone = s.parts.get("fleet_summary")
            print(
                f"- {s.label}: {' and '.join(missed)} missed; of {_ms(total)} ms "
                f"({s.queries} queries): {dominant}"
                + (
                    f"; the fleet table's own fleet_summary: {_ms(alone.median)} ms"
                    if alone
                    else ""
                )
            )
    print()
    print(
        f"(query: {runs} runs after a warm-up; first paint and refresh: {paints} each; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


# --- main --------------------------------------------------------------------------------


def function_screen(window: Window) -> Callable[[QueryClient], Screen[None]]:
    def make(client: QueryClient) -> Screen[None]:
        return FunctionScreen(client, FUNCTION, window)

    return make


def invocations_screen(
    window: Window, filters: InvocationFilters, offset: int
) -> Callable[[QueryClient], Screen[None]]:
    def make(client: QueryClient) -> Screen[None]:
        screen = InvocationsScreen(client, FUNCTION, window, filters=filters)
        # As if n had been pressed offset / PAGE_SIZE times: the first load reads that page.
        screen.page_offset = offset
        return screen

    return make


def scenarios_for(reader: QueryClient, now: datetime, hours: list[float]) -> list[Scenario]:
    spans = [timedelta(hours=h) for h in hours]
    windows = [
        (f"last {span.total_seconds() / 3600:g} h", Window(now - span, now)) for span in spans
    ]
    out: list[Scenario] = []
    for label, window in windows:
        out.append(
            Scenario(
                "fleet (fleet_summary + run_detectors)",
                label,
                window,
                functools.partial(fleet_reads, window=window),
                None,
            )
        )
    for label, window in windows:
        out.append(
            Scenario(
                f"function {FUNCTION} (function_overview + recent_invocations)",
                label,
                window,
                functools.partial(function_reads, window=window),
                function_screen(window),
            )
        )
    every, failed = InvocationFilters(), InvocationFilters(status="failed")
    for label, window in windows:
        out.append(
            Scenario(
                f"invocations {FUNCTION} (invocations_page, {PAGE_SIZE} rows a page)",
                f"{label}, first page",
                window,
                functools.partial(page_reads, window=window, filters=every, offset=0),
                invocations_screen(window, every, 0),
            )
        )
        total = invocations_page(reader, FUNCTION, window, failed, limit=1).total
        offset = (int(total * 0.8) // PAGE_SIZE) * PAGE_SIZE
        pages = max(1, -(-total // PAGE_SIZE))
        out.append(
            Scenario(
                f"invocations {FUNCTION} (invocations_page, {PAGE_SIZE} rows a page)",
                f"{label}, failed, page {offset // PAGE_SIZE + 1} of {pages}",
                window,
                functools.partial(page_reads, window=window, filters=failed, offset=offset),
                invocations_screen(window, failed, offset),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="200,000 invocations, 3 runs, 2 paints"
    )
    parser.add_argument("--invocations", type=int, default=None, help="default 10,000,000")
    parser.add_argument("--runs", type=int, default=None, help="query-only runs (default 5)")
    parser.add_argument("--paints", type=int, default=None, help="paints per screen (default 3)")
    parser.add_argument(
        "--store-dir", type=Path, default=None, help="build the store here and keep it (reused)"
    )
    parser.add_argument(
        "--hours", default="1,24", help="the windows, last N hours each (default 1,24)"
    )
    args = parser.parse_args(argv)
    try:
        hours = [float(h) for h in args.hours.split(",")]
    except ValueError:
        parser.error("--hours takes numbers of hours separated by commas, e.g. 1,24")
    if not hours or not all(0 < h <= SPAN_DAYS * 24 for h in hours):
        parser.error(f"--hours must be within the data's {SPAN_DAYS * 24} h")
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
            f"{built.merge_s:.1f} s merging)" + (" when it was built" if built.reused else "")
        )
        check_counts(store, built, store_dir)
        reader = store.reader()
        scenarios = scenarios_for(reader, built.now, hours)
        print("timing the queries alone", flush=True)
        for scenario in scenarios:
            measure_queries(reader, scenario, runs)
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
