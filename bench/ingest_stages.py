"""Where one batch's time goes on its way to the store, stage by stage, in microseconds per
telemetry event, for a group of 1 and of 16 batches written in one commit.

    python bench/ingest_stages.py [--rounds 5] [--group 1,16]

The batches are ``ingest_throughput.make_batch`` (100 invocations, 500 events, gzip), the
same bytes the throughput benchmark sends. Stages, each timed alone on this process's one
thread (median over ``--rounds`` fresh groups):

* gunzip: ``wire.decode_body``;
* parse: ``wire.parse_json`` (the JSON text to Python objects);
* normalise: ``normalize.normalize_batch`` (events to insert-ready columns);
* store: ``Store.write_many`` of the group, first one table after another on one handle and
  split by what it sends the engine (the lookup of batch ids already seen, the ``batches``
  ledger with each body for a redo, and each table's insert; ``invocation_parts`` runs its
  materialized view inside its insert), then a fresh group committed as the collector does
  it, with the small tables on a second handle beside ``invocation_parts``.

A store with the rollup view dropped is measured too, so its share of the ``invocation_parts``
insert is printed apart. Not a test: figures depend on the machine; every loop is bounded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_throughput import EVENTS_PER_BATCH, make_batch  # noqa: E402

VIEWS = ("invocation_minutes_rollup_mv",)


def _timed_store(store: Any, timings: dict[str, float]) -> Any:
    """Wrap the store's engine calls so each is added to ``timings`` under its table, with the
    tables one after another on one handle; returns the function that undoes it."""
    put = store._put
    query = store._client.query
    connect_writer = store._connect_writer

    def timed_put(table: str, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            put(table, *args, **kwargs)
        finally:
            timings[f"store: insert {table}"] += time.perf_counter() - started

    def timed_query(sql: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return query(sql, *args, **kwargs)
        finally:
            timings["store: batch ids seen"] += time.perf_counter() - started

    store._put = timed_put
    store._client.query = timed_query
    side = store._side
    store._connect_writer = store._side = None  # each table's time is its own

    def undo() -> None:
        del store._put, store._client.query
        store._connect_writer, store._side = connect_writer, side

    return undo


def _bodies(group: int, run: str) -> list[bytes]:
    return [gzip.compress(json.dumps(make_batch(i, run)).encode(), 6) for i in range(group)]


def measure(store: Any, group: int, rounds: int, run: str) -> dict[str, float]:
    """Median microseconds per event of each stage over ``rounds`` groups of ``group``."""
    from lambdascope.collector.normalize import normalize_batch
    from lambdascope.collector.prepare import prepare_batch
    from lambdascope.collector.wire import decode_body, parse_json

    samples: dict[str, list[float]] = defaultdict(list)
    events = group * EVENTS_PER_BATCH
    for r in range(rounds):
        stage: dict[str, float] = defaultdict(float)

        def timed(name: str, fn: Callable[[], Any], stage: dict[str, float] = stage) -> Any:
            started = time.perf_counter()
            value = fn()
            stage[name] += time.perf_counter() - started
            return value

        batches = []
        for body in _bodies(group, f"{run}s{r}"):
            data = timed("gunzip", lambda body=body: decode_body(body, "gzip", 64 << 20))
            raw = timed("parse JSON", lambda data=data: parse_json(data))
            timed("normalise", lambda raw=raw: normalize_batch(raw))
            batches.append(prepare_batch(body, "gzip", 64 << 20))
        # Each table alone, one after another: what each costs.
        engine: dict[str, float] = defaultdict(float)
        undo = _timed_store(store, engine)
        try:
            started = time.perf_counter()
            store.write_many(batches)
            stage["store: one commit, one table after another"] = time.perf_counter() - started
        finally:
            undo()
        stage.update(engine)
        # Fresh batches committed as the collector does it (two handles at once).
        batches = [prepare_batch(b, "gzip", 64 << 20) for b in _bodies(group, f"{run}c{r}")]
        started = time.perf_counter()
        store.write_many(batches)
        stage["store: one commit, as the collector makes it"] = time.perf_counter() - started
        for name, seconds in stage.items():
            samples[name].append(seconds / events * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(results: dict[tuple[str, int], dict[str, float]]) -> None:
    """One column per (store, batches per commit), one row per stage, and the total."""
    names: list[str] = []
    for result in results.values():
        names += [n for n in result if n not in names]
    header = " | ".join(f"{g} batch{'es' if g > 1 else ''}, {label}" for label, g in results)
    print(f"| stage (us per event) | {header} |")
    print("|---|" + "---|" * len(results))
    for name in names:
        cells = " | ".join(
            f"{result[name]:.2f}" if name in result else "" for result in results.values()
        )
        print(f"| {name} | {cells} |")
    totals = []
    for result in results.values():
        python = result["gunzip"] + result["parse JSON"] + result["normalise"]
        totals.append(python + result["store: one commit, as the collector makes it"])
    print(
        "| **decode + normalise + commit** | " + " | ".join(f"**{t:.2f}**" for t in totals) + " |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--group", default="1,16", help="batches per commit (default 1,16)")
    args = parser.parse_args(argv)
    groups = [int(g) for g in args.group.split(",")]
    if not 1 <= args.rounds <= 50 or not all(1 <= g <= 64 for g in groups):
        parser.error("--rounds in 1..50, --group sizes in 1..64")

    from lambdascope.collector.store import Store

    tmp = tempfile.mkdtemp(prefix="lambdascope-bench-stages-")
    stores = {
        "views": Store.open(f"chdb://{tmp}/store", "bench_views"),
    }
    try:
        # The same store with the rollup view dropped: its share of the parts insert.
        bare = Store.open(f"chdb://{tmp}/store", "bench_bare")
        for view in VIEWS:
            bare._client.command(f"DROP VIEW IF EXISTS {view}")
        stores["no views"] = bare
        results: dict[tuple[str, int], dict[str, float]] = {}
        for group in groups:
            for label, store in stores.items():
                measure(store, group, 1, f"warm{label[:2]}{group}")  # first inserts warm up
                results[(label, group)] = measure(store, group, args.rounds, f"g{label[:2]}{group}")
        print(
            f"us per telemetry event ({EVENTS_PER_BATCH} events per batch), median of "
            f"{args.rounds} rounds\n"
        )
        print_table(results)
    finally:
        for store in stores.values():
            store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
