"""The collector's memory and responsiveness during an oversized read through its read API.

    python bench/read_limits.py [--quick] [--before [REV]] [--batches N]

A collector subprocess of the working tree (and, with ``--before``, one of revision REV, default
the same one ``collector_http.py`` picks, checked out with ``git worktree add``; the helpers are
that script's) gets a fresh embedded store and ``--batches`` extension batches of
``ingest_throughput.make_batch`` (100 invocations and 500 log lines each). Then, through
``POST /api/v1/query``, one collector at a time:

1. *Large but allowed*: 50,000 rows of ``logs`` (a self cross join, ``LIMIT 50000``), for scale.
2. *Oversized*: ``SELECT l.message, repeat('x', 1000) AS pad FROM logs AS l CROSS JOIN logs AS r
   LIMIT n``, with ``n`` chosen from the ingested row count so that the would-be result is about
   2 GB (the estimate is printed). A collector with a result-size limit should refuse it with a
   4xx naming the limit, before its memory grows; one without holds what the store hands it
   (the row limit cuts rows, not bytes) and serialises it to JSON.
3. *Slow read vs fast read*: a heavy but allowed aggregation (a cross join of ``logs`` with
   itself and part of ``invocations``, sized to take a few seconds by one calibration run) runs
   while a trivial ``SELECT count() FROM invocations`` is sent; its latency alone and during the
   slow one show whether a slow read blocks a fast one.

The collector's resident memory (``VmRSS`` of its process) is sampled every 0.2 s from 1 s before
each read to 2 s after it: *before* is the median before the request, *peak* the maximum from
the request on, *after* the last sample, *growth* = peak - before. Reading the tables: a refused
oversized read should show a 4xx, a short elapsed time and a growth near the 50,000-row read's;
a trivial read answered only *after the slow read* (taking about its remaining time) was blocked
by it; one answered *while the slow read ran* was not.

Not a test: figures depend on the machine. Every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from collector_http import (  # noqa: E402
    INGEST_PATH,
    QUERY_PATH,
    Collector,
    RssSampler,
    Side,
    StartFailed,
    default_before,
    describe_rev,
    git,
    http_request,
    interrupt_on_sigterm,
    running,
    worktree,
)
from ingest_throughput import gzip_body, make_batch  # noqa: E402

TARGET_BYTES = 2.1e9
PAD_BYTES = 1000
ALLOWED_ROWS = 50_000
SAMPLE_S = 0.2
QUERY_TIMEOUT_S = 300.0
TRIVIAL_SQL = "SELECT count() FROM invocations"


@dataclass
class Read:
    """One read through the API: status, seconds, bytes, the start of an error, RSS."""

    status: int
    seconds: float
    size: int
    text: str
    rss_before: float = float("nan")
    rss_peak: float = float("nan")
    rss_after: float = float("nan")

    @property
    def growth(self) -> float:
        return self.rss_peak - self.rss_before

    def error(self) -> str:
        if self.status == 200:
            return ""
        try:
            message = str(json.loads(self.text).get("error", self.text))
        except (ValueError, AttributeError):
            message = self.text
        return message.replace("|", "/").replace("\n", " ")[:300]


class Reader:
    """Reads through one collector's API, counting connection errors."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.connection_errors = 0

    def read(self, sql: str, timeout: float = QUERY_TIMEOUT_S) -> Read:
        """POST the query; the body is streamed and only its first 64 KiB kept."""
        body = json.dumps({"sql": sql, "parameters": {}}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.collector.port, timeout=timeout)
        started = time.perf_counter()
        try:
            conn.request(
                "POST",
                QUERY_PATH,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.collector.token}",
                },
            )
            response = conn.getresponse()
            head, size = b"", 0
            for _ in range(1_000_000):  # 1 MiB chunks: bounded at ~1 TB
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                if len(head) < 65536:
                    head += chunk[: 65536 - len(head)]
                size += len(chunk)
            return Read(
                response.status,
                time.perf_counter() - started,
                size,
                head.decode("utf-8", "replace"),
            )
        except (OSError, http.client.HTTPException) as exc:
            self.connection_errors += 1
            return Read(0, time.perf_counter() - started, 0, f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def rows(self, sql: str) -> list[list[Any]]:
        result = self.read(sql, timeout=60)
        if result.status != 200:
            raise RuntimeError(f"{sql!r} answered {result.status}: {result.error()}")
        return list(json.loads(result.text)["rows"])

    def measured(self, sql: str) -> Read:
        """The read, with the collector's RSS sampled from 1 s before to 2 s after it."""
        with RssSampler(self.collector, SAMPLE_S) as sampler:
            time.sleep(1.0)
            started = time.monotonic()
            result = self.read(sql)
            time.sleep(2.0)
        before = [v for t, v in zip(sampler.times, sampler.samples, strict=True) if t < started]
        during = [v for t, v in zip(sampler.times, sampler.samples, strict=True) if t >= started]
        result.rss_before = statistics.median(before) if before else float("nan")
        result.rss_peak = max(during, default=float("nan"))
        result.rss_after = sampler.samples[-1] if sampler.samples else float("nan")
        return result


def ingest(collector: Collector, batches: int) -> None:
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Authorization": f"Bearer {collector.token}",
    }
    for i in range(batches):
        status, body = http_request(
            collector.port, "POST", INGEST_PATH, gzip_body(make_batch(i, "rl")), headers, 60
        )
        if status != 200:
            raise RuntimeError(f"ingest of batch {i} answered {status}: {body[:300]!r}")


@dataclass
class SideResult:
    name: str
    logs: int = 0
    invocations: int = 0
    estimate: str = ""
    allowed: Read | None = None
    oversized: Read | None = None
    slow_sql: str = ""
    slow_alone: Read | None = None
    trivial_alone_ms: float = float("nan")
    trivial_during: Read | None = None
    slow_during: Read | None = None
    trivial_overlapped: bool = False
    connection_errors: int = 0
    failure: str = ""


def slow_sql(invocations: int) -> str:
    return (
        "SELECT count() FROM logs AS a CROSS JOIN logs AS b CROSS JOIN "
        f"(SELECT request_id FROM invocations LIMIT {max(1, invocations)}) AS c "
        "WHERE cityHash64(a.message, b.request_id, c.request_id) % 1000 = 7"
    )


def measure(collector: Collector, batches: int, slow_target_s: float) -> SideResult:
    out = SideResult(collector.side.name)
    reader = Reader(collector)
    ingest(collector, batches)
    logs, invocations, avg_len = reader.rows(
        "SELECT (SELECT count() FROM logs), (SELECT count() FROM invocations), "
        "(SELECT avg(length(message)) FROM logs)"
    )[0]
    out.logs, out.invocations = int(logs), int(invocations)
    row_bytes = PAD_BYTES + float(avg_len or 0)
    limit = math.ceil(TARGET_BYTES / row_bytes)
    pad = PAD_BYTES
    if limit > out.logs**2:  # too few rows for the cross join: widen them instead
        limit = out.logs**2
        pad = math.ceil(TARGET_BYTES / max(1, limit) - float(avg_len or 0))
        row_bytes = pad + float(avg_len or 0)
    out.estimate = (
        f"{limit:,} rows x ~{row_bytes:,.0f} bytes (message + {pad:,}-byte pad) "
        f"= ~{limit * row_bytes / 1e9:.2f} GB before JSON encoding"
    )
    print(
        f"  {out.name}: {out.logs:,} rows in logs, {out.invocations:,} in invocations; "
        f"oversized read: {out.estimate}",
        flush=True,
    )

    out.allowed = reader.measured(
        f"SELECT l.* FROM logs AS l CROSS JOIN logs AS r LIMIT {ALLOWED_ROWS}"
    )
    print(f"  {out.name}: large allowed read {_brief(out.allowed)}", flush=True)
    out.oversized = reader.measured(
        f"SELECT l.message, repeat('x', {pad}) AS pad FROM logs AS l CROSS JOIN logs AS r "
        f"LIMIT {limit}"
    )
    print(f"  {out.name}: oversized read {_brief(out.oversized)}", flush=True)

    # A slow read: calibrated once (bounded) to take about slow_target_s alone. A failed probe
    # is reported and tried once more (the first read after a refused one may fail).
    probe = reader.read(slow_sql(1))
    if probe.status != 200:
        print(f"  {out.name}: slow read probe failed: {_brief(probe)}; trying once more")
        probe = reader.read(slow_sql(1))
    factor = 1
    if probe.status == 200 and probe.seconds > 0:
        factor = max(1, min(out.invocations, round(slow_target_s / probe.seconds)))
    out.slow_sql = slow_sql(factor)
    out.slow_alone = reader.read(out.slow_sql) if factor > 1 else probe
    alone = [reader.read(TRIVIAL_SQL).seconds * 1000 for _ in range(3)]
    out.trivial_alone_ms = statistics.median(alone)
    holder: dict[str, Read] = {}
    slow_thread = threading.Thread(
        target=lambda: holder.update(slow=reader.read(out.slow_sql)), daemon=True
    )
    slow_thread.start()
    time.sleep(min(0.5, out.slow_alone.seconds / 4))
    out.trivial_during = reader.read(TRIVIAL_SQL)
    out.trivial_overlapped = slow_thread.is_alive()
    slow_thread.join(timeout=QUERY_TIMEOUT_S + 10)
    out.slow_during = holder.get("slow")
    for what, read in (("slow read alone", out.slow_alone), ("slow read", out.slow_during)):
        if read is not None and read.status != 200:
            print(f"  {out.name}: {what} failed: {_brief(read)}", flush=True)
    if out.trivial_during.status != 200:
        print(f"  {out.name}: fast read failed: {_brief(out.trivial_during)}", flush=True)
    out.connection_errors = reader.connection_errors
    return out


def _brief(r: Read) -> str:
    error = f", error: {r.error()[:160]}" if r.error() else ""
    rss = (
        f", RSS {r.rss_before:.0f} -> peak {r.rss_peak:.0f} -> {r.rss_after:.0f} MB"
        if r.rss_peak == r.rss_peak
        else ""
    )
    return f"{r.status} in {r.seconds:.2f} s, {r.size:,} bytes{rss}{error}"


def _mb(value: float) -> str:
    return "" if value != value else f"{value:,.0f}"


def print_tables(results: list[SideResult], batches: int) -> None:
    measured = [r for r in results if not r.failure]
    if measured:
        r0 = measured[0]
        print(
            f"data: {batches} batches = {r0.logs:,} rows in logs, {r0.invocations:,} in "
            f"invocations; oversized read: {r0.estimate}"
        )
        print()
    for title, pick in (
        ("oversized read (would-be result ~2 GB)", "oversized"),
        (f"large but allowed read ({ALLOWED_ROWS:,} rows of logs), for scale", "allowed"),
    ):
        print(f"### {title}")
        print()
        print(
            "| side | HTTP status | elapsed s | response bytes | RSS before MB | RSS peak MB "
            "| RSS after MB | peak - before MB | error |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            read: Read | None = getattr(r, pick)
            if r.failure or read is None:
                print(f"| {r.name} | {r.failure or 'not measured'} | | | | | | | |")
                continue
            print(
                f"| {r.name} | {read.status} | {read.seconds:.2f} | {read.size:,} "
                f"| {_mb(read.rss_before)} | {_mb(read.rss_peak)} | {_mb(read.rss_after)} "
                f"| {_mb(read.growth)} | {read.error() or '-'} |"
            )
        print()
    print("### a fast read while a slow read runs")
    print()
    print(
        f"| side | slow read alone s | slow read status | `{TRIVIAL_SQL}` alone ms "
        "| same during the slow read ms | it answered | slow read (concurrent) s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if r.failure or r.slow_alone is None or r.trivial_during is None:
            print(f"| {r.name} | {r.failure or 'not measured'} | | | | | |")
            continue
        slow = r.slow_during
        print(
            f"| {r.name} | {r.slow_alone.seconds:.2f} | {r.slow_alone.status} "
            f"| {r.trivial_alone_ms:.1f} | {r.trivial_during.seconds * 1000:.1f} "
            f"| {'while the slow read ran' if r.trivial_overlapped else 'after the slow read'} "
            f"| {'' if slow is None else f'{slow.seconds:.2f} ({slow.status})'} |"
        )
    print()
    if measured:
        print(f"slow read: {measured[0].slow_sql}")
    errors = sum(r.connection_errors for r in results)
    print(f"connection errors: {errors}")


@contextlib.contextmanager
def before_side(rev_arg: str | None) -> Iterator[Side | None]:
    if rev_arg is None:
        yield None
        return
    if rev_arg == "auto":
        rev, note = default_before()
    else:
        rev, note = git("rev-parse", "--verify", f"{rev_arg}^{{commit}}"), f"--before {rev_arg}"
    with worktree(rev) as tree:
        yield Side("before", tree, f"{describe_rev(rev)} ({note}); REV = {rev}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 batches, a ~1.5 s slow read")
    parser.add_argument(
        "--before",
        nargs="?",
        const="auto",
        default=None,
        metavar="REV",
        help="also measure revision REV (without a value: the collector_http.py default)",
    )
    parser.add_argument("--batches", type=int, default=None, help="default 20 (quick 6)")
    args = parser.parse_args(argv)
    batches = args.batches or (6 if args.quick else 20)
    slow_target_s = 1.5 if args.quick else 4.0
    if not 2 <= batches <= 400:
        parser.error("--batches must be in 2..400")
    started = time.monotonic()
    results: list[SideResult] = []
    tmp = Path(tempfile.mkdtemp(prefix="lambdascope-bench-read-"))
    try:
        with interrupt_on_sigterm(), before_side(args.before) as before:
            print(f"machine: nproc={os.cpu_count()}, Python {sys.version.split()[0]}")
            after = Side("after", HERE.parent, "working tree")
            for side in [s for s in (before, after) if s is not None]:
                label_printed = False
                try:
                    imported = side.check_imports()
                    print(f"{side.name}: {side.label}\n  imports {imported}", flush=True)
                    label_printed = True
                    with running(side, tmp) as collector:
                        results.append(measure(collector, batches, slow_target_s))
                except StartFailed as exc:
                    label = "" if label_printed else f"{side.name}: {side.label}\n"
                    print(f"{label}  {side.name} cannot run: {exc}", flush=True)
                    results.append(SideResult(side.name, failure="failed to start"))
            print()
            print_tables(results, batches)
            print(f"total {time.monotonic() - started:.0f} s")
    except KeyboardInterrupt:
        print("interrupted: collectors stopped, worktree removed", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # git, or a client process that did not start
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
