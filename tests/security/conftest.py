"""The collector's store fixtures: one embedded store per test session, a database per test."""

from tests.collector.conftest import chdb_url, store

__all__ = ["chdb_url", "store"]
