"""Function tags (LAMBDASCOPE_TAGS, carried in a batch's environment) land in function_tags,
which alert rules' tag selectors read: written when they change, the newest one wins."""

from __future__ import annotations

import uuid
from typing import Any

from lambdascope.analyzers.alerts import sql as alert_sql
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.store import Store
from tests.collector.conftest import load_event


def batch(tags: Any) -> dict[str, Any]:
    raw = load_event("text_batch_1")
    raw["batch_id"] = uuid.uuid4().hex
    if tags is not None:
        raw["environment"]["tags"] = tags
    return raw


def newest_tags(store: Store) -> dict[str, dict[str, str]]:
    rows = store._client.query(alert_sql.FUNCTION_TAGS).result_rows
    return {name: dict(tags) for name, tags in rows}


def tag_rows(store: Store) -> int:
    return int(store._client.query("SELECT count() FROM function_tags").result_rows[0][0])


def test_tags_are_stored_once_until_they_change_and_the_newest_wins(store: Store) -> None:
    store.write(normalize_batch(batch({"team": "payments", "tier": "critical"})))
    store.write(normalize_batch(batch({"tier": "critical", "team": "payments"})))
    assert tag_rows(store) == 1
    assert newest_tags(store) == {"checkout": {"team": "payments", "tier": "critical"}}

    store.write(normalize_batch(batch({"team": "payments", "tier": "batch"})))

    assert tag_rows(store) == 2
    assert newest_tags(store) == {"checkout": {"team": "payments", "tier": "batch"}}


def test_a_batch_without_tags_writes_none(store: Store) -> None:
    store.write(normalize_batch(batch(None)))
    assert tag_rows(store) == 0


def test_malformed_tags_are_skipped_and_the_batch_is_still_stored(store: Store) -> None:
    normalized = normalize_batch(batch({"team": "payments", "count": 3, "": "x", "k" * 129: "v"}))
    assert normalized.environment.tags == (("team", "payments"),)
    assert normalize_batch(batch(["team=payments"])).environment.tags == ()

    result = store.write(normalized)

    assert result.duplicate is False and result.invocation_rows > 0
    assert newest_tags(store) == {"checkout": {"team": "payments"}}
