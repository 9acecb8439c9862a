"""Fixtures for the collector's tests.

chDB allows one data path per process, so every store test shares one session-scoped path and
gets a database of its own.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from lambdascope.collector.server import CollectorServer
from lambdascope.collector.store import Store

EVENTS = Path(__file__).parent / "events"
_databases = itertools.count(1)
TEST_RETENTION_DAYS = 3650


def load_event(name: str) -> dict[str, Any]:
    """A sample batch from tests/collector/events/ (a fresh copy each time)."""
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded store path for the session, or the one another package already holds."""
    path = str(tmp_path_factory.mktemp("chdb-store"))
    try:
        clickhouse_connect.get_client(dsn=f"chdb://{path}").close()
    except Exception as exc:
        held = re.search(r"initialized with path '([^']+)'", str(exc))
        if not held:
            raise
        path = held.group(1)
    return f"chdb://{path}"


@pytest.fixture
def store(chdb_url: str) -> Iterator[Store]:
    # The sample events are dated: a month's retention would drop them as the calendar moves.
    opened = Store.open(
        chdb_url,
        f"t_collector_{os.getpid()}_{next(_databases)}",
        retention_days=TEST_RETENTION_DAYS,
    )
    try:
        yield opened
    finally:
        try:
            opened._client.command(f"DROP DATABASE IF EXISTS `{opened.database}`")
        finally:
            opened.close()


@pytest.fixture
def server(store: Store) -> Iterator[CollectorServer]:
    running = CollectorServer(store, port=0).start()
    try:
        yield running
    finally:
        running.stop()
