"""pytest fixtures: a real embedded ClickHouse (chDB) store, one database per test.

chDB allows one open data path per process, so one path serves the session; when another
package's fixture holds a path open in this process, that path is reused (the engine's error
names it). Each test gets its own database, created and migrated by the collector's ``Store``,
and drops and closes it afterwards, so no engine stays open between tests. Data goes in the
way production data does: extension batches through the collector's normaliser.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from collections.abc import Iterator

import clickhouse_connect
import pytest

from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.store import Store
from lambdascope.query import QueryClient
from tests.analyzers import fleetdata

_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="lambdascope-analyzers-") as tmp:
        path = os.path.join(tmp, "store")
        os.makedirs(path)
        try:
            clickhouse_connect.get_client(dsn=f"chdb://{path}").close()
        except Exception as exc:
            held = re.search(r"initialized with path '([^']+)'", str(exc))
            if not held:
                raise
            path = held.group(1)
        yield path


class TestStore:
    """One database of the real store, fed with extension batches."""

    __test__ = False

    def __init__(self, path: str, database: str) -> None:
        # The fleet data is dated: a month's retention would drop it as the calendar moves.
        self.store = Store.open(f"chdb://{path}", database, retention_days=3650)
        self.reader: QueryClient = self.store.reader()

    def write(self, scenario: fleetdata.Scenario) -> None:
        for batch in fleetdata.batches(scenario):
            self.store.write(normalize_batch(batch))

    def drop(self) -> None:
        try:
            self.store._client.command(f"DROP DATABASE IF EXISTS `{self.store.database}`")
        finally:
            self.store.close()


@pytest.fixture
def store(chdb_path: str) -> Iterator[TestStore]:
    test_store = TestStore(chdb_path, f"t_analyzers_{os.getpid()}_{next(_counter)}")
    try:
        yield test_store
    finally:
        test_store.drop()
