"""Batches decoded and normalised in worker processes: stored as in the server's own process,
refused with the same answers, and a worker that dies costs only a retry."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store
from tests.collector.crashing import INVOCATIONS_PER_BATCH, make_batches


@pytest.fixture
def server(store: Store) -> Iterator[CollectorServer]:
    running = CollectorServer(store, port=0, ingest_workers=1).start()
    try:
        yield running
    finally:
        running.stop()


def _post(server: CollectorServer, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/extension/batches", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _function_lines(store: Store) -> int:
    return int(
        store._client.query("SELECT count() FROM logs WHERE stream = 'function'").first_row[0]
    )


def test_a_batch_normalised_in_a_worker_is_stored_once(
    server: CollectorServer, store: Store
) -> None:
    batch = make_batches("w", 1, int(time.time() * 1000))[0]
    body = gzip.compress(json.dumps(batch).encode())
    status, reply = _post(server, body, **{"Content-Encoding": "gzip"})
    assert (status, reply["duplicate"]) == (200, False)
    assert reply["accepted_events"] == INVOCATIONS_PER_BATCH * 4
    status, reply = _post(server, body, **{"Content-Encoding": "gzip"})
    assert (status, reply["duplicate"]) == (200, True)
    assert _function_lines(store) == INVOCATIONS_PER_BATCH * 2
    # The body kept for a redo is the one received, not one rebuilt by the worker.
    kept = store._client.query("SELECT hex(body) FROM batches").first_row[0]
    assert kept == body.hex().upper()


def test_a_worker_refuses_bad_batches_as_the_server_does(server: CollectorServer) -> None:
    batch = make_batches("w", 1, int(time.time() * 1000))[0]
    batch["environment"]["function_name"] = 42
    status, reply = _post(server, json.dumps(batch).encode())
    assert status == 400
    assert "environment.function_name" in reply["error"]
    bomb = gzip.compress(b" " * (server.max_decompressed_bytes + 1))
    status, reply = _post(server, bomb, **{"Content-Encoding": "gzip"})
    assert status == 413
    status, reply = _post(server, b"{not json")
    assert status == 400 and "not valid JSON" in reply["error"]


def test_a_worker_that_dies_costs_a_retry_and_nothing_else(
    server: CollectorServer, store: Store
) -> None:
    assert server.workers is not None
    pids = server.workers.pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    batches = make_batches("d", 2, int(time.time() * 1000))
    answers = []
    for batch in batches:
        body = json.dumps(batch).encode()
        for _attempt in range(10):  # bounded, like the extension's retries
            status, reply = _post(server, body)
            if status != 503:
                break
            assert "retry" in reply["error"]
        answers.append(status)
    assert answers == [200, 200]
    assert _function_lines(store) == 2 * INVOCATIONS_PER_BATCH * 2
    assert server.workers.pids() and not set(server.workers.pids()) & set(pids)
