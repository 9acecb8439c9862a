"""Reads at scale: the fleet query, every detector and one alert evaluation over N invocations,
timed side by side with a plain ``count()`` of the raw table, in one run.

    python bench/store_scale.py [--quick] [--invocations 10000000] [--runs 5]

The data goes straight into a fresh embedded store (a temporary directory, removed at the end)
with ``INSERT INTO invocation_parts SELECT ... FROM numbers(...)`` in chunks, so the rollups
(materialized views on insert) fill exactly as they do under ingest. Distributions: 50
functions, a version change every 8 hours, memory sizes 128-2048 MB, timeouts 3 s-15 min,
lognormal-ish durations, ~1% cold starts (8% on one function), and a few unhealthy functions
(timeouts, errors, out-of-memory kills, memory near the limit, slow inits) so every detector has
something to report and must fetch evidence. Start times spread uniformly over the last 24 h.
About one log line per ten invocations, plus the OOM lines.

The last column says what each read touched besides the per-minute rollups: ``rollup only``,
``rollup + raw for N fns`` (the detector's rollup screen flagged N functions, whose raw
invocation rows were read), ``raw for all fns``, and how many queries read log lines or spans
(analyzers/rollups.py ``RecordingClient``, one extra untimed run per detector).

Not a test: figures depend on the machine. Every loop is bounded (``--runs`` timings each).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lambdascope.analyzers import DETECTORS, Detector, Finding, run_detectors  # noqa: E402
from lambdascope.analyzers.alerts import DEFAULT_RULES_PATH, AlertEngine, MemoryAlertStateStore  # noqa: E402
from lambdascope.analyzers.alerts.rules_file import load_rules  # noqa: E402
from lambdascope.analyzers.fleet import fleet_summary  # noqa: E402
from lambdascope.analyzers.rollups import RecordingClient  # noqa: E402
from lambdascope.analyzers.window import ch_time  # noqa: E402
from lambdascope.collector.store import Store  # noqa: E402
from lambdascope.query import QueryClient  # noqa: E402

FLEET_TARGET_MS = 300.0
DETECTOR_TARGET_MS = 1000.0
CHUNK = 2_000_000

# One synthetic invocation per number n, every value a pure function of n (cityHash64 with a
# per-column seed) so the log lines below can name the same request ids.
_INVOCATION = """
WITH
    n % 50 AS f,
    cityHash64(n, 1) % 86400000 AS age_ms,
    {now:DateTime64(3, 'UTC')} - toIntervalMillisecond(age_ms + 1) AS t_start,
    (cityHash64(n, 2) % 100000) AS u_status,
    (cityHash64(n, 3) % 1000) / 1000.0 AS u_duration,
    (cityHash64(n, 4) % 1000) / 1000.0 AS u_memory,
    (cityHash64(n, 5) % 10000) AS u_cold,
    [128, 256, 512, 1024, 2048][1 + f % 5] AS memory_mb,
    [3000, 6000, 15000, 30000, 60000, 900000][1 + f % 6] AS timeout_ms_,
    (20 + (f * 37) % 400) * (0.5 + pow(u_duration, 6) * 6) AS normal_ms,
    multiIf(f = 7 AND u_status < 2000, 'timeout',
            u_status < 10, 'timeout',
            f = 13 AND u_status < 3000, 'error',
            f = 33 AND u_status < 400, 'error',
            u_status >= 99950, 'error',
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
    concat('fn-', leftPad(toString(f), 2, '0')) AS function_name_
"""

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
    toString(1 + intDiv(86400000 - age_ms, 28800000)),
    lower(hex(cityHash64(f, intDiv(n, 50) % 60, intDiv(86400000 - age_ms, 3600000)))),
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
    if(status_ = 'success', 2, 5),
    t_end + toIntervalMillisecond(700)
FROM (SELECT number AS n FROM numbers({offset:UInt64}, {count:UInt64}))
"""
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
    toString(1 + intDiv(86400000 - age_ms, 28800000)),
    '',
    request_id_,
    'function',
    if(error_type_ = 'Runtime.OutOfMemory', 'ERROR', 'INFO'),
    if(error_type_ = 'Runtime.OutOfMemory',
       'MemoryError: Unable to allocate 96.0 MiB for an array',
       concat('processed order ', toString(n))),
    'bench',
    0
FROM (SELECT number AS n FROM numbers({offset:UInt64}, {count:UInt64}))
WHERE n % 10 = 0 OR error_type_ = 'Runtime.OutOfMemory'
"""
)

COUNT_RAW = "SELECT count() FROM invocation_parts"


def generate(store: Store, invocations: int, now: datetime) -> float:
    """Fill the store; returns the seconds it took."""
    client = store._client
    started = time.perf_counter()
    for offset in range(0, invocations, CHUNK):
        count = min(CHUNK, invocations - offset)
        params = {"now": ch_time(now), "offset": offset, "count": count}
        client.command(INSERT_INVOCATIONS, parameters=params)
        client.command(INSERT_LOGS, parameters=params)
        print(f"  generated {offset + count:>12,} invocations", flush=True)
    # Merge the freshly written parts (and rebuild their projection) as background merges would
    # on a store that has been running: timings then reflect a settled store, not a merge storm.
    client.command("OPTIMIZE TABLE invocation_parts FINAL")
    client.command("OPTIMIZE TABLE invocation_minutes FINAL")
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """(median milliseconds over ``runs`` after one warm-up run, last result)."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


Row = tuple[str, float, str, float | None, str]


def measure(reader: QueryClient, now: datetime, since: timedelta, runs: int) -> list[Row]:
    """Rows of (name, median ms, what it returned, target ms, what it read)."""
    rows: list[Row] = []
    ms, result = timed(lambda: reader.query(COUNT_RAW).scalar(), runs)
    rows.append(("count() invocation_parts", ms, f"{int(result):,} rows", None, "raw"))
    recorder = RecordingClient(reader)
    ms, fleet = timed(lambda: fleet_summary(recorder, since=timedelta(hours=1), now=now), runs)
    total = sum(f.invocations for f in fleet)
    rows.append(
        (
            "fleet_summary (last 1 h)",
            ms,
            f"{len(fleet)} fns, {total:,} inv",
            FLEET_TARGET_MS,
            recorder.reads.describe(),
        )
    )
    for name, detector in DETECTORS.items():
        # What one run reads (the timed runs read the same).
        recorder = RecordingClient(reader)
        run_detectors(recorder, since=since, now=now, detectors={name: detector})

        def run_one(name: str = name, detector: Detector = detector) -> list[Finding]:
            return run_detectors(reader, since=since, now=now, detectors={name: detector})

        ms, findings = timed(run_one, runs)
        rows.append(
            (
                f"detector {name} ({_span(since)})",
                ms,
                f"{len(findings)} findings",
                DETECTOR_TARGET_MS,
                recorder.reads.describe(),
            )
        )
    rules = load_rules(DEFAULT_RULES_PATH)

    def evaluate() -> int:
        engine = AlertEngine(rules, reader, MemoryAlertStateStore(), notifiers={})
        engine.logger.disabled = True
        return len(engine.evaluate(now))

    # One evaluation runs every rule's windows (up to 3 each): timed once, no warm-up.
    started = time.perf_counter()
    transitions = evaluate()
    ms = (time.perf_counter() - started) * 1000
    rows.append(
        (
            f"alerts: default pack ({len(rules.rules)} rules)",
            ms,
            f"{transitions} transitions",
            None,
            "",
        )
    )
    return rows


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"


def print_table(rows: list[Row]) -> None:
    base = rows[0][1]
    print(f"\n{'query':<38} {'median ms':>10} {'x count()':>10} {'target':>8}  {'result':<26} read")
    for name, ms, what, target, read in rows:
        verdict = "" if target is None else ("ok" if ms <= target else "SLOW")
        ratio = ms / base if base else float("nan")
        target_text = f"{target:.0f}" if target is not None else "-"
        result = f"{what} {verdict}"
        print(f"{name:<38} {ms:>10.1f} {ratio:>10.1f} {target_text:>8}  {result:<26} {read}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M invocations, 3 runs")
    parser.add_argument("--invocations", type=int, default=None, help="default 10,000,000")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per query (default 5)")
    parser.add_argument("--since", type=float, default=1.0, help="detector window in hours")
    args = parser.parse_args(argv)
    invocations = args.invocations or (1_000_000 if args.quick else 10_000_000)
    runs = args.runs or (3 if args.quick else 5)
    if invocations <= 0 or runs <= 0:
        parser.error("--invocations and --runs must be positive")
    now = datetime.now(UTC).replace(microsecond=0)
    tmp = tempfile.mkdtemp(prefix="lambdascope-bench-store-")
    store = Store.open(f"chdb://{tmp}/store", "bench")
    try:
        print(f"generating {invocations:,} invocations over 24 h in {tmp}", flush=True)
        seconds = generate(store, invocations, now)
        print(f"  {seconds:.1f} s ({invocations / seconds:,.0f} invocations/s)")
        rows = measure(store.reader(), now, timedelta(hours=args.since), runs)
        print_table(rows)
        print(f"(load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
