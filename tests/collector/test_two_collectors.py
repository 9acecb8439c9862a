"""Two collectors writing one store, as behind a load balancer: a batch retried to the other
collector while the first still writes it is stored once.

chDB holds one data path per process, so the two collectors here are two ``Store`` handles
(each with its own write lock, as two processes have) on the same embedded engine, marked as
sharing it, which is what a server store is.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.prepare import prepare_batch
from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store, WriteResult
from tests.collector.conftest import TEST_RETENTION_DAYS
from tests.collector.crashing import INVOCATIONS_PER_BATCH, make_batches


@pytest.fixture
def two_stores(chdb_url: str) -> Iterator[tuple[Store, Store]]:
    database = f"t_two_collectors_{os.getpid()}_{time.monotonic_ns()}"
    first = Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS)
    second = Store.open(chdb_url, database, retention_days=TEST_RETENTION_DAYS)
    first.shared_writers = second.shared_writers = True
    try:
        yield first, second
    finally:
        try:
            first._client.command(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            second.close()
            first.close()


def _prepared(batch: dict[str, Any]) -> NormalizedBatch:
    return prepare_batch(json.dumps(batch).encode(), None, 64 * 1024 * 1024)


def _stored(store: Store, run: str) -> dict[str, int]:
    """Per batch index of ``run``: function lines stored (two per invocation when once)."""
    rows = store._client.query(
        "SELECT substring(request_id, length({run:String}) + 2, 5) AS batch, count() "
        "FROM logs WHERE stream = 'function' AND startsWith(request_id, {run:String}) "
        "GROUP BY batch",
        parameters={"run": run},
    ).result_rows
    return {str(batch): int(n) for batch, n in rows}


def _rollup_invocations(store: Store) -> int:
    return int(
        store._client.query(
            "SELECT sum(invocations) FROM invocation_minutes WHERE function_name = 'orders'"
        ).first_row[0]
        or 0
    )


def test_a_batch_claimed_by_two_collectors_at_once_is_written_by_one(
    two_stores: tuple[Store, Store],
) -> None:
    first, second = two_stores
    shared, only_first, only_second = (
        _prepared(b) for b in make_batches("race", 3, int(time.time() * 1000))
    )
    # Both collectors pass the "seen?" check before either writes its claim: the race a
    # load balancer makes when a retry reaches the other collector mid-write.
    both_checked = threading.Barrier(2, timeout=30)
    for store in (first, second):
        insert = store._insert_batches

        def after_barrier(batches: list[NormalizedBatch], insert: Any = insert) -> set[str]:
            both_checked.wait()
            return set(insert(batches))

        store._insert_batches = after_barrier  # type: ignore[method-assign]
    results: dict[str, list[WriteResult]] = {}

    def write(name: str, store: Store, group: list[NormalizedBatch]) -> None:
        results[name] = store.write_many(group)

    threads = [
        threading.Thread(target=write, args=("first", first, [shared, only_first])),
        threading.Thread(target=write, args=("second", second, [shared, only_second])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(results) == {"first", "second"}

    # Exactly one of them wrote the shared batch; the other was told it is written elsewhere.
    shared_results = [results["first"][0], results["second"][0]]
    assert sorted(r.written_elsewhere for r in shared_results) == [False, True]
    assert not any(r.duplicate for r in shared_results)
    lines = INVOCATIONS_PER_BATCH * 2
    assert _stored(first, "race") == {"00000": lines, "00001": lines, "00002": lines}

    # The loser's sender retries: a duplicate now, and still one copy.
    loser = first if results["first"][0].written_elsewhere else second
    for store in (first, second):
        del store._insert_batches  # type: ignore[misc]
    retried = loser.write_many([shared])[0]
    assert retried.duplicate and not retried.written_elsewhere
    # Redoing either group from its kept bodies (as after a crash) adds nothing: the loser's
    # group leaves the shared batch to the winner.
    tokens = first._client.query(
        "SELECT DISTINCT group_token FROM batches WHERE group_token != ''"
    ).result_rows
    assert len(tokens) == 2
    for (token,) in tokens:
        loser._redo_group(str(token))
    assert _stored(first, "race") == {"00000": lines, "00001": lines, "00002": lines}
    assert _rollup_invocations(first) == 3 * INVOCATIONS_PER_BATCH


def _post(port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/extension/batches", body=body, headers={"Content-Type": "json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_two_collectors_behind_a_balancer_store_every_batch_once(
    two_stores: tuple[Store, Store],
) -> None:
    """Every batch is sent to both collectors at once (the worst a balancer can do with a
    retry), each sender retrying its 503s as the extension does: each is stored once."""
    servers = [CollectorServer(store, port=0).start() for store in two_stores]
    try:
        ports = [int(s.url.rsplit(":", 1)[1]) for s in servers]
        batches = make_batches("lb", 12, int(time.time() * 1000))
        answers: list[tuple[int, int, dict[str, Any]]] = []
        lock = threading.Lock()

        def send(index: int, port: int) -> None:
            body = json.dumps(batches[index]).encode()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # bounded, like the extension's retries
                status, reply = _post(port, body)
                if status != 503:
                    with lock:
                        answers.append((index, status, reply))
                    return
                time.sleep(0.05)

        threads = [
            threading.Thread(target=send, args=(index, port))
            for index in range(len(batches))
            for port in ports
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert len(answers) == 2 * len(batches)
        assert all(status == 200 for _, status, _ in answers)
        for index in range(len(batches)):
            # One stored it, the other saw it stored; or both wrote the same one-batch group
            # under one deduplication token, of which the engine kept one.
            assert any(not reply["duplicate"] for i, _, reply in answers if i == index)
        lines = INVOCATIONS_PER_BATCH * 2
        assert _stored(two_stores[0], "lb") == {f"{i:05d}": lines for i in range(len(batches))}
        assert _rollup_invocations(two_stores[0]) == len(batches) * INVOCATIONS_PER_BATCH
    finally:
        for server in servers:
            server.stop()
