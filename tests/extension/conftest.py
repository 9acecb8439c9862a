from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.extension.fakes import FakeCollector, FakeLambdaApi


@pytest.fixture
def lambda_api() -> Iterator[FakeLambdaApi]:
    api = FakeLambdaApi().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    fake = FakeCollector().start()
    try:
        yield fake
    finally:
        fake.stop()
