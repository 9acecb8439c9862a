"""Ingest at scale: HTTP request to committed rows, against a raw clickhouse-connect insert of the
same rows into the same embedded store, and the collector's memory under sustained load.

    python bench/ingest_throughput.py [--quick] [--events N] [--clients 1,8,64] [--sustain-s 60]
                                      [--ingest-workers N] [--no-stages]

1. *End to end*: a client process POSTs realistic gzip extension batches (docs/architecture.md
   §1: per invocation an INVOKE entry and platform.start, two function lines, runtimeDone and
   report) from N client threads to a ``CollectorServer`` on 127.0.0.1, each request
   answered only after its rows are committed. Events/s = telemetry events / wall time from the
   first request to the last acknowledgement. One run per ``--clients`` count: each sender
   waits for its acknowledgement before sending again, so N bounds the batches one insert can
   group, and the rate depends on it. 16 senders is a small fleet; 64 is closer to the ~200
   busy environments (each flushing about once a second) that send 100,000 events/s.
2. *Raw*: the same batches normalised (untimed), the rows the collector writes (one merged
   invocation row per request and batch, the log lines) inserted with plain
   ``clickhouse-connect`` column-oriented inserts (100,000 rows per insert) into a second
   database of the same store. The ratio end-to-end / raw is the collector's overhead. The
   collector process's CPU time per event is printed too: on a shared machine it varies less
   than the wall-clock rate.
3. *Why not*, stage by stage (unless ``--no-stages``): bench/ingest_stages.py's profile of one
   batch's path in us per event for commits of 1 and 16 batches, and what it implies: one
   sender waits for every commit, so a commit's fixed cost bounds its rate; many senders share
   commits, and then the machine's cores bound the rate at cores / CPU per event.
4. *Sustained*: the client process keeps posting fresh batches for ``--sustain-s`` seconds while
   this process samples its own resident memory (the collector runs here; the clients run in
   another process so their memory is not counted) every second: start, max, end.

Not a test: figures depend on the machine. Every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

EVENTS_TARGET = 100_000.0
RAW_SHARE_TARGET = 0.5
INVOCATIONS_PER_BATCH = 100
FUNCTIONS = 20
RAW_CHUNK_ROWS = 100_000
BASE_MS = 1_795_500_000_000  # 2026-11-24, as in the tests' sample batches


def make_batch(index: int, run: str) -> dict[str, Any]:
    """One extension batch: INVOCATIONS_PER_BATCH invocations of one environment."""
    fn = f"fn-{index % FUNCTIONS:02d}"
    t0 = BASE_MS + index * 1000
    telemetry: list[dict[str, Any]] = []
    invocations = []
    for k in range(INVOCATIONS_PER_BATCH):
        rid = f"{run}-{index:07d}-{k:04d}-4c3d-9e8f-0a1b2c3d4e5f"
        start = t0 + k * 10
        duration = 3.0 + (k * 7 % 40)
        status = "timeout" if k == 57 else ("error" if k % 33 == 0 else "success")

        def at(ms: float) -> str:
            seconds, millis = divmod(int(ms), 1000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            return f"{stamp}.{millis:03d}Z"

        telemetry.append(
            {"time": at(start), "type": "platform.start", "record": {"requestId": rid}}
        )
        telemetry.append(
            {"time": at(start + 1), "type": "function", "record": f"handling order {k}\n"}
        )
        telemetry.append(
            {
                "time": at(start + 2),
                "type": "function",
                "record": json.dumps({"level": "INFO", "message": "charged", "requestId": rid})
                + "\n",
            }
        )
        telemetry.append(
            {
                "time": at(start + duration),
                "type": "platform.runtimeDone",
                "record": {
                    "requestId": rid,
                    "status": status,
                    "metrics": {"durationMs": duration - 0.2, "producedBytes": 120},
                },
            }
        )
        report: dict[str, Any] = {
            "requestId": rid,
            "status": status,
            "metrics": {
                "durationMs": duration,
                "billedDurationMs": int(duration) + 1,
                "memorySizeMB": 256,
                "maxMemoryUsedMB": 80 + k % 50,
            },
        }
        if k == 0:
            report["metrics"]["initDurationMs"] = 350.0
        if status != "success":
            report["errorType"] = "Runtime.HandlerError"
        telemetry.append(
            {"time": at(start + duration + 1), "type": "platform.report", "record": report}
        )
        invocations.append(
            {
                "request_id": rid,
                "deadline_ms": start + 3000,
                "received_at_ms": start,
                "invoked_function_arn": f"arn:aws:lambda:us-east-1:000000000000:function:{fn}",
                "trace_id": None,
            }
        )
    return {
        "schema_version": 1,
        "batch_id": f"{run}{index:024d}"[-32:],
        "sent_at_ms": t0 + 2000,
        "extension": {"name": "lambdascope", "version": "0.1.0"},
        "environment": {
            "environment_id": f"{run}env{index % 64:024d}"[-32:],
            "function_name": fn,
            "function_version": "$LATEST",
            "region": "us-east-1",
            "memory_size_mb": 256,
            "initialization_type": "on-demand",
            "architecture": "x86_64",
        },
        "open_request_id": None,
        "telemetry": telemetry,
        "invocations": invocations,
    }


EVENTS_PER_BATCH = len(make_batch(0, "x")["telemetry"])


def gzip_body(batch: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(batch).encode(), compresslevel=6)


# -- the client process -----------------------------------------------------------------------


def client_main(url: str, run: str, batches: int, clients: int, seconds: float) -> None:
    """POST ``batches`` pre-built batches (or, with ``seconds``, fresh ones until the deadline)
    from ``clients`` threads; print one JSON line of results."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    bodies = [gzip_body(make_batch(i, run)) for i in range(batches)] if not seconds else []
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "refused": 0, "failed": 0}
    deadline = time.monotonic() + seconds if seconds else None
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go": building bodies is not part of the measurement

    def take() -> int | None:
        with lock:
            i = state["next"]
            if deadline is None and i >= batches:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            state["next"] = i + 1
            return i

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            while (i := take()) is not None:
                body = bodies[i] if deadline is None else gzip_body(make_batch(i, run))
                for _attempt in range(20):  # 503 + Retry-After: back off briefly, bounded
                    try:
                        conn.request(
                            "POST",
                            "/v1/extension/batches",
                            body=body,
                            headers={
                                "Content-Type": "application/json",
                                "Content-Encoding": "gzip",
                            },
                        )
                        response = conn.getresponse()
                        response.read()
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(host, port, timeout=60)
                        continue
                    if response.status == 200:
                        with lock:
                            state["ok"] += 1
                        break
                    if response.status == 503:
                        with lock:
                            state["refused"] += 1
                        time.sleep(0.05)
                        continue
                    with lock:
                        state["failed"] += 1
                    break
        finally:
            conn.close()

    started = time.perf_counter()
    cpu_before = time.process_time()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_before
    print(json.dumps({**state, "seconds": elapsed, "cpu_s": cpu_s}), flush=True)


def run_clients(url: str, run: str, batches: int, clients: int, seconds: float = 0.0) -> Any:
    """Start the client process, wait until its bodies are built, let it go; returns
    (process, a function returning its result)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--client", url, run, str(batches), str(clients), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the client process did not start")

    def go_and_wait() -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        try:
            line = proc.stdout.readline()
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return dict(json.loads(line))

    return go_and_wait


# -- measurements -----------------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_insert(store: Any, batches: int, run: str) -> tuple[float, int]:
    """Seconds to insert the rows of ``batches`` batches with plain inserts, and the row count."""
    from lambdascope.collector.batch_rows import (
        COLD_START_COLUMNS,
        INVOCATION_COLUMNS,
        LOG_COLUMNS,
    )
    from lambdascope.collector.normalize import normalize_batch

    tables: dict[str, tuple[tuple[str, ...], dict[str, list[Any]]]] = {
        "invocation_parts": (INVOCATION_COLUMNS, {name: [] for name in INVOCATION_COLUMNS}),
        "logs": (LOG_COLUMNS, {name: [] for name in LOG_COLUMNS}),
        "cold_start_parts": (COLD_START_COLUMNS, {name: [] for name in COLD_START_COLUMNS}),
    }
    for i in range(batches):
        # The same bytes the collector received, through the same normaliser (not timed): the
        # rows the collector writes (one merged invocation row per request), as the columns
        # the normaliser builds.
        normalized = normalize_batch(json.loads(gzip.decompress(gzip_body(make_batch(i, run)))))
        for name, values in normalized.invocation_columns.items():
            tables["invocation_parts"][1][name].extend(values)
        for name, values in normalized.log_columns.items():
            tables["logs"][1][name].extend(values)
        for row in normalized.cold_start_rows:
            for name in COLD_START_COLUMNS:
                tables["cold_start_parts"][1][name].append(getattr(row, name))
    client = store._client
    total = 0
    started = time.perf_counter()
    for table, (columns, data) in tables.items():
        rows = len(data[columns[0]])
        for offset in range(0, rows, RAW_CHUNK_ROWS):
            chunk = [data[name][offset : offset + RAW_CHUNK_ROWS] for name in columns]
            client.insert(table, chunk, column_names=columns, column_oriented=True)
            total += len(chunk[0])
    return time.perf_counter() - started, total


#: What the threads of the collector's process are, by the name the kernel shows. The store
#: engine renames a thread that runs an insert: the writer thread shows as "Unknown".
THREAD_ROLES = {
    "Unknown": "writer (insert blocks, the engine's insert work)",
    "python": "HTTP, decoding, normalising",
    "ThreadPool": "engine pool (parts, the view)",
    "MergeMutate": "engine merges",
}


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's threads, summed by thread name: Python's own threads
    (HTTP, decoding, normalising, the writer) are "python"; the store engine's threads carry
    its pools' names (merges, inserts, queries)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip().rstrip("0123456789 ") or "?"
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def workers_cpu_s(server: Any) -> float:
    """CPU seconds (user + system) of the collector's worker processes so far."""
    if server.workers is None:
        return 0.0
    total = 0
    for pid in server.workers.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def why_not(url: str, runs: list[dict[str, Any]], raw_events_s: float) -> None:
    """The stage profile, and what each sender count's rate is bound by."""
    from ingest_stages import measure, print_table

    from lambdascope.collector.store import Store

    store = Store.open(url, "bench_stages")
    try:
        results = {}
        for group in (1, 16):
            measure(store, group, 1, f"warm{group}")
            results[("views", group)] = measure(store, group, 3, f"stage{group}")
    finally:
        store.close()
    print("where the time goes, us per telemetry event (bench/ingest_stages.py, 3 rounds):")
    print()
    print_table(results)
    print()
    one = results[("views", 1)]
    python_us = one["gunzip"] + one["parse JSON"] + one["normalise"]
    commit_1_ms = one["store: one commit, as the collector makes it"] * EVENTS_PER_BATCH / 1e3
    bound_1 = EVENTS_PER_BATCH / ((commit_1_ms + python_us * EVENTS_PER_BATCH / 1e3) / 1e3)
    print(
        f"- 1 sender waits for each commit: {commit_1_ms:.0f} ms per commit of one batch "
        f"(whatever its size) + {python_us * EVENTS_PER_BATCH / 1e3:.1f} ms decoding and "
        f"normalising its {EVENTS_PER_BATCH} events bound it to {bound_1:,.0f} events/s, "
        f"{bound_1 / raw_events_s:.0%} of raw."
    )
    cores = os.cpu_count() or 1
    for r in runs:
        if r["clients"] < 8:
            continue
        ceiling = cores / (r["cpu_us"] / 1e6)
        split = ", ".join(
            f"{THREAD_ROLES.get(name, name)} {us:.1f}"
            for name, us in sorted(r["threads_us"].items(), key=lambda item: -item[1])
            if us >= 0.5
        )
        print(
            f"- {r['clients']} senders share commits ({r['per_insert']:.1f} batches each): "
            f"the collector spent {r['cpu_us']:.1f} us of CPU per event ({split}); "
            f"{cores} cores / that = {ceiling:,.0f} events/s, {ceiling / raw_events_s:.0%} of "
            "raw."
        )
    print()


def committed_rows(store: Any) -> int:
    return int(store._client.query("SELECT count() FROM invocation_parts").first_row[0])


def _client_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if not counts or any(n <= 0 or n > 256 for n in counts):
        raise argparse.ArgumentTypeError("client counts must be between 1 and 256")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 events, 10 s sustained")
    parser.add_argument("--events", type=int, default=None, help="default 1,000,000")
    parser.add_argument(
        "--clients",
        type=_client_counts,
        default=[1, 8, 64],
        help="concurrent senders, one end-to-end run each (default 1,8,64; the last also "
        "runs the sustained load)",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=0,
        help="decode and normalise in this many worker processes (the collector's "
        "--ingest-workers; default 0)",
    )
    parser.add_argument("--no-stages", action="store_true", help="skip the stage-by-stage profile")
    parser.add_argument("--sustain-s", type=float, default=None, help="default 60 (quick: 10)")
    args = parser.parse_args(argv)
    events = args.events or (200_000 if args.quick else 1_000_000)
    sustain_s = args.sustain_s or (10.0 if args.quick else 60.0)
    if events <= 0 or not 0 < sustain_s <= 600:
        parser.error("--events must be positive, --sustain-s in (0, 600]")
    batches = max(1, events // EVENTS_PER_BATCH)

    from lambdascope.collector.server import CollectorServer
    from lambdascope.collector.store import Store

    tmp = tempfile.mkdtemp(prefix="lambdascope-bench-ingest-")
    store = Store.open(f"chdb://{tmp}/store", "bench_e2e")
    raw_store = None
    server = CollectorServer(store, port=0, ingest_workers=args.ingest_workers).start()
    try:
        print(
            f"{batches:,} batches x {EVENTS_PER_BATCH} events "
            f"({batches * EVENTS_PER_BATCH:,} telemetry events) per run",
            flush=True,
        )
        runs: list[dict[str, Any]] = []
        for clients in args.clients:
            # Each run sends batches of its own (new batch and request ids).
            run = f"c{clients}"
            before = (server.writer.stats.groups, server.writer.stats.batches)
            insert_before = server.writer.stats.insert_seconds
            rows_before = committed_rows(store)
            go = run_clients(server.url, run, batches, clients)
            cpu_before = os.times()
            workers_before = workers_cpu_s(server)
            threads_before = thread_cpu_s()
            result = go()
            cpu_after = os.times()
            threads_after = thread_cpu_s()
            cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
            cpu_s += workers_cpu_s(server) - workers_before
            stats = server.writer.stats
            groups, grouped = stats.groups - before[0], stats.batches - before[1]
            ok_events = result["ok"] * EVENTS_PER_BATCH
            runs.append(
                {
                    "clients": clients,
                    "events_s": ok_events / result["seconds"],
                    "cpu_us": cpu_s / max(1, ok_events) * 1e6,
                    "per_insert": grouped / max(1, groups),
                    "threads_us": {
                        name: (seconds - threads_before.get(name, 0.0)) / max(1, ok_events) * 1e6
                        for name, seconds in threads_after.items()
                    },
                    "commit_ms": (stats.insert_seconds - insert_before) / max(1, groups) * 1e3,
                    "rows": committed_rows(store) - rows_before,
                }
            )
            print(
                f"  end to end, {clients} clients: {result['seconds']:.2f} s, "
                f"{runs[-1]['events_s']:,.0f} events/s ({result['ok']} ok, "
                f"{result['refused']} 503, {result['failed']} failed; {groups} inserts, "
                f"{runs[-1]['per_insert']:.1f} batches each)"
            )
            print(
                f"  collector CPU: {cpu_s:.2f} s, {runs[-1]['cpu_us']:.1f} us per event; "
                f"client CPU {result['cpu_s'] / result['seconds']:.2f} cores",
                flush=True,
            )
            top = sorted(runs[-1]["threads_us"].items(), key=lambda item: -item[1])[:6]
            print(
                "  CPU by thread, us per event: "
                + ", ".join(
                    f"{THREAD_ROLES.get(name, name)} {us:.1f}" for name, us in top if us >= 0.05
                )
            )

        raw_store = Store.open(f"chdb://{tmp}/store", "bench_raw")
        raw_s, raw_rows = raw_insert(raw_store, batches, f"c{args.clients[0]}")
        raw_events_s = batches * EVENTS_PER_BATCH / raw_s
        print(f"  raw insert: {raw_s:.2f} s for {raw_rows:,} rows, {raw_events_s:,.0f} events/s")
        print()
        print(
            f"| clients | events/s (target >= {EVENTS_TARGET:,.0f}) "
            f"| end to end / raw (target >= {RAW_SHARE_TARGET:.0%}) "
            "| collector CPU per event | batches per commit | ms per commit "
            "| invocation parts committed |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in runs:
            print(
                f"| {r['clients']} | {r['events_s']:,.0f} | {r['events_s'] / raw_events_s:.0%} "
                f"| {r['cpu_us']:.1f} us | {r['per_insert']:.1f} | {r['commit_ms']:.0f} "
                f"| {r['rows']:,} |"
            )
        print(f"| raw insert | {raw_events_s:,.0f} | 100% | | {RAW_CHUNK_ROWS:,} rows | | |")
        print()
        if not args.no_stages:
            why_not(f"chdb://{tmp}/store", runs, raw_events_s)

        clients = args.clients[-1]
        print(f"sustained load for {sustain_s:.0f} s, {clients} clients: collector RSS", flush=True)
        go = run_clients(server.url, "sus", 0, clients, sustain_s)
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss_mb())
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = go()
        finally:
            stop.set()
            sampler.join(timeout=5)
        sustained = result["ok"] * EVENTS_PER_BATCH / result["seconds"]
        print(
            f"  {result['ok']} batches, {sustained:,.0f} events/s; RSS MB start "
            f"{samples[0]:.0f}, max {max(samples):.0f}, end {samples[-1]:.0f} "
            f"({len(samples)} samples)"
        )
        third = max(1, len(samples) // 3)
        print(
            f"  RSS MB median of first third {sorted(samples[:third])[third // 2]:.0f}, "
            f"last third {sorted(samples[-third:])[third // 2]:.0f}"
        )
    finally:
        server.stop()
        if raw_store is not None:
            raw_store.close()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, run, n, clients, seconds = sys.argv[2:7]
        client_main(url, run, int(n), int(clients), float(seconds))
        raise SystemExit(0)
    raise SystemExit(main())
