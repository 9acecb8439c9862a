"""Who may reach the collector: listening beyond loopback needs tokens; a server read user's
grants are read back and anything beyond reading the database is named."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lambdascope.collector.access import AccessError, check_exposure, grant_problems, is_loopback
from lambdascope.collector.store import Store


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("collector.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_needs_no_token() -> None:
    assert check_exposure("127.0.0.1", None, None, read_open=False) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "collector.internal"])
def test_a_network_address_without_an_ingest_token_is_refused_naming_the_fix(host: str) -> None:
    expected = "without an ingest token.*LAMBDASCOPE_TOKEN.*--token-file"
    with pytest.raises(AccessError, match=expected):
        check_exposure(host, None, "r", read_open=False)


def test_a_network_address_without_a_read_token_is_refused_naming_the_fix() -> None:
    with pytest.raises(
        AccessError, match="without a read token.*LAMBDASCOPE_READ_TOKEN.*--read-token-file"
    ):
        check_exposure("0.0.0.0", "i", None, read_open=False)


def test_read_open_is_allowed_with_a_loud_warning() -> None:
    warnings = check_exposure("0.0.0.0", "i", None, read_open=True)
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: --read-open")


def test_both_tokens_on_a_network_address_start_quietly() -> None:
    assert check_exposure("0.0.0.0", "ingest-secret", "read-secret", read_open=False) == []


def test_the_same_token_for_ingest_and_reads_is_warned_about() -> None:
    (warning,) = check_exposure("0.0.0.0", "same", "same", read_open=False)
    assert "read token equals the ingest token" in warning


@pytest.mark.parametrize(
    "lines",
    [
        ["GRANT SELECT ON lambdascope.* TO lambdascope_reader"],
        ["GRANT SELECT ON `lambdascope`.* TO lambdascope_reader"],
        ["GRANT SELECT(request_id, function_name) ON lambdascope.invocations TO r"],
        [
            "GRANT SHOW TABLES, SELECT ON lambdascope.* TO r",
            "REVOKE SELECT ON lambdascope.x FROM r",
        ],
        [],
    ],
)
def test_a_user_that_only_reads_the_database_has_no_problems(lines: list[str]) -> None:
    assert grant_problems(lines, "lambdascope") == []


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("GRANT ALL ON *.* TO lambdascope_reader", "ALL"),
        ("GRANT SELECT ON *.* TO r", "every database"),
        ("GRANT SELECT ON system.* TO r", "system"),
        ("GRANT SELECT ON other.* TO r", "another database"),
        ("GRANT SELECT, INSERT ON lambdascope.* TO r", "a write"),
        ("GRANT ALTER DELETE ON lambdascope.logs TO r", "a write"),
        ("GRANT FILE ON *.* TO r", "files"),
        ("GRANT URL ON *.* TO r", "URLs"),
        ("GRANT REMOTE ON *.* TO r", "other servers"),
        ("GRANT CREATE TEMPORARY TABLE ON *.* TO r", "table functions"),
        ("GRANT dictGet ON *.* TO r", "dictionaries"),
        ("GRANT SELECT ON lambdascope.* TO r WITH GRANT OPTION", "grant to others"),
        ("GRANT admin TO r", "a role"),
    ],
)
def test_anything_beyond_reading_the_database_is_named(line: str, why: str) -> None:
    problems = grant_problems(["GRANT SELECT ON lambdascope.* TO r", line], "lambdascope")
    assert len(problems) == 1, why
    assert problems[0].startswith(line), why


class _GrantsClient:
    """A read handle answering SHOW GRANTS (FINAL, or only the plain form on older servers)."""

    def __init__(self, lines: list[str], *, final: bool = True, fails: bool = False) -> None:
        self.lines, self.final, self.fails = lines, final, fails
        self.closed = False

    def query(self, statement: str) -> Any:
        if self.fails or (statement.endswith("FINAL") and not self.final):
            raise RuntimeError("Code: 497. Not enough privileges")
        return SimpleNamespace(result_rows=[(line,) for line in self.lines])

    def close(self) -> None:
        self.closed = True


def _server_store(read: _GrantsClient | None) -> Store:
    store = Store(object(), url="https://ch:8443", database="lambdascope", connect=lambda: read)
    store.is_server = True
    store.has_read_user = read is not None
    return store


def test_a_read_user_that_only_reads_starts_quietly() -> None:
    read = _GrantsClient(["GRANT SELECT ON lambdascope.* TO lambdascope_reader"], final=False)
    assert _server_store(read).read_access_warnings() == []


def test_a_read_user_that_may_do_more_is_a_loud_warning_naming_the_grant() -> None:
    read = _GrantsClient(["GRANT SELECT ON lambdascope.* TO r", "GRANT FILE ON *.* TO r"])
    (warning,) = _server_store(read).read_access_warnings()
    assert warning.startswith("WARNING: the read user may do more than read lambdascope")
    assert "GRANT FILE ON *.* TO r" in warning and "GRANT SELECT ON lambdascope.*" in warning


def test_reads_as_the_write_user_on_a_server_are_warned_about() -> None:
    (warning,) = _server_store(None).read_access_warnings()
    assert "runs as the store's write user" in warning and "--read-store" in warning


def test_grants_that_cannot_be_read_are_warned_about() -> None:
    read = _GrantsClient([], fails=True)
    (warning,) = _server_store(read).read_access_warnings()
    assert "cannot check the read user's grants" in warning
    assert read.closed


def test_the_embedded_store_has_no_users_to_check() -> None:
    store = Store(object(), url="chdb:///x", database="lambdascope")
    assert store.read_access_warnings() == []
