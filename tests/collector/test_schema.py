"""The generated DDL, checked without a store (the server path cannot run on this machine)."""

from __future__ import annotations

import re

import pytest

from collector import schema, sql


def all_statements(retention_days: int = 30) -> list[str]:
    statements = [s for _, _, group in sql.MIGRATIONS for s in group]
    return [schema.render(s, retention_days) for s in statements] + list(sql.VIEWS)


def test_versions_are_consecutive_from_one() -> None:
    versions = [version for version, _, _ in sql.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == schema.CURRENT_VERSION


#: ALTERs that may run twice: setting a setting, adding with IF NOT EXISTS, materialising.
_IDEMPOTENT_ALTER = re.compile(
    r"^ALTER TABLE \w+ (MODIFY SETTING|ADD (COLUMN|PROJECTION) IF NOT EXISTS|"
    r"MATERIALIZE PROJECTION)"
)


def test_every_statement_is_idempotent() -> None:
    for statement in all_statements():
        words = statement.split()
        head = " ".join(words[:6])
        assert re.search(r"IF NOT EXISTS|OR REPLACE", head) or _IDEMPOTENT_ALTER.match(
            " ".join(words[:8])
        ), head


def test_retention_and_dedup_window_are_filled_in() -> None:
    rendered = all_statements(retention_days=7)
    tables = [s for s in rendered if "ENGINE = " in s and "TTL" in s]
    assert len(tables) == 10
    for statement in tables:
        assert "INTERVAL 7 DAY" in statement
        assert "{" not in statement
    assert "non_replicated_deduplication_window = 10000" in schema.render(sql.CREATE_LOGS, 7)


@pytest.mark.parametrize("days", [0, -1, 40_000, "30", 1.5, True])
def test_retention_must_be_a_sane_whole_number_of_days(days: object) -> None:
    with pytest.raises(schema.SchemaError, match="retention_days"):
        schema.check_retention(days)


@pytest.mark.parametrize("name", ["lambdascope", "test_1", "_x"])
def test_database_names_accepted(name: str) -> None:
    assert sql.IDENTIFIER.match(name)


@pytest.mark.parametrize("name", ["", "1db", "a-b", "a`b", "a b", "x" * 64])
def test_database_names_refused(name: str) -> None:
    assert not sql.IDENTIFIER.match(name)
