"""The read sandbox (collector/readguard.py), without a store.

(a) every query of tests/security/hostile.py is refused with a 4xx naming what it reached for;
(b) every query the project's own readers send (the analyzers, the alert engine, the TUI and the
    CLI, collected from their modules, plus literal copies of the user-written shapes the docs
    and tests show) passes, and regenerates to the same query;
(c) the rules one by one, and the exact SQL that runs for a few queries.
"""

from __future__ import annotations

import ast
import importlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdascope.collector.readguard import (
    MAX_SQL_BYTES,
    GuardedRead,
    QueryRefused,
    ReadPolicy,
    ReadRefused,
    check_read,
    guard_read,
    is_allowed_function,
)
from lambdascope.collector.store import INTERNAL_TABLES
from lambdascope.query import QueryError, bound_parameters
from tests.security.hostile import HOSTILE_QUERIES, REFUSED

ROOT = Path(__file__).resolve().parents[2]
#: The modules of collector/sql/ that create tables and views.
COLLECTOR_SQL_MODULES = tuple(
    f"lambdascope.collector.sql.{name}"
    for name in ("tables", "otel", "rollups", "views", "ledger", "migrations")
)
READER_PACKAGES = ("analyzers", "tui", "lambdascope")
_CREATED = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"`?(\w+)`?",
    re.IGNORECASE,
)
_QUERY = re.compile(r"\s*(?:SELECT|WITH)\b", re.IGNORECASE)


def _store_tables() -> frozenset[str]:  # as Store.read_policy lists them
    """Every table and view the collector's migrations and the alert engine create."""
    names: set[str] = set()
    for module in (*COLLECTOR_SQL_MODULES, "lambdascope.analyzers.alerts.sql"):
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, str):
                names.update(_CREATED.findall(value))
    return frozenset(names - INTERNAL_TABLES)


TABLES = _store_tables()
POLICY = ReadPolicy("lambdascope", TABLES)


def refused(sql: str, policy: ReadPolicy = POLICY) -> ReadRefused:
    with pytest.raises(ReadRefused) as caught:
        check_read(sql, policy)
    return caught.value


def test_the_policy_knows_the_stores_tables() -> None:
    assert {
        "invocations",
        "invocations_between",
        "invocation_parts",
        "logs",
        "cold_starts",
        "invocation_minutes",
        "otel_traces",
        "otel_logs",
        "otel_metrics",
        "cloudwatch_metrics",
        "function_tags",
        "alert_state",
        "alert_history",
    } <= TABLES
    # The collector's ledger keeps request bodies as received: not for readers.
    assert "batches" not in TABLES


# --- (a) hostile queries -------------------------------------------------------------------


def test_there_are_enough_hostile_queries_and_each_names_its_refusal() -> None:
    ids = [qid for qid, _ in HOSTILE_QUERIES]
    assert len(ids) >= 45
    assert len(set(ids)) == len(ids)
    assert set(REFUSED) == set(ids)


@pytest.mark.parametrize(("qid", "sql"), HOSTILE_QUERIES, ids=[q for q, _ in HOSTILE_QUERIES])
def test_a_hostile_query_is_refused(qid: str, sql: str) -> None:
    refusal = refused(sql)
    assert 400 <= refusal.status < 500
    assert refusal.reason
    assert REFUSED[qid] in refusal.message, refusal.message
    assert refusal.message == str(refusal)


# --- (b) the project's own reader queries ----------------------------------------------------


def _reader_sources() -> Iterator[Path]:
    for package in READER_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "__main__.py" and "demo_fleet" not in path.parts:
                yield path


def _module_name(path: Path) -> str:
    """The installed name: analyzers/sql.py is lambdascope.analyzers.sql."""
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    return name if name.startswith("lambdascope") else f"lambdascope.{name}"


def _reader_constants() -> dict[str, str]:
    """Module-level SQL queries of the reader packages, as the code assembles them."""
    found: dict[str, str] = {}
    for path in _reader_sources():
        if "SELECT" not in path.read_text():
            continue
        module = _module_name(path)
        for name, value in vars(importlib.import_module(module)).items():
            if isinstance(value, str) and _QUERY.match(value):
                found[f"{module}.{name}"] = value
    return found


def _query_calls() -> Iterator[tuple[str, ast.expr]]:
    """Every ``<client>.query(first, ...)`` call of the reader packages: (place, first)."""
    for path in _reader_sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "query"
                and node.args
            ):
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0]


READER_CONSTANTS = _reader_constants()
READER_LITERALS = {
    place: first.value
    for place, first in _query_calls()
    if isinstance(first, ast.Constant) and isinstance(first.value, str)
}

#: Calls whose SQL is not the code's own: the user's (alert rules, `lambdascope query`), a
#: pass-through, or the alert engine's writer (its own handle, not the read API). The shapes
#: users are shown are in USER_QUERIES.
DYNAMIC_QUERY_CALLS = {
    ("analyzers/alerts/engine.py", "source.sql"),
    ("analyzers/alerts/state.py", "statement"),
    ("analyzers/rollups.py", "sql_text"),
    ("lambdascope/cli/query.py", "args.sql"),
    ("lambdascope/query/direct.py", "sql"),
}

#: Literal copies of what users are shown and what the tests read the store with.
USER_QUERIES = {
    "collector README: invocations_between": """
        SELECT function_name, count() FROM invocations_between(
            since = {since:DateTime64(3, 'UTC')}, until = {until:DateTime64(3, 'UTC')},
            function_name = '') GROUP BY function_name""",
    "architecture doc: read API": (
        "SELECT count() FROM invocations WHERE function_name = {fn:String}"
    ),
    "alert rule: slow p99 with evidence": """
      SELECT function_name, quantile(0.99)(duration_ms) AS value, count() AS invocations,
             arraySlice(groupArray(request_id), 1, 3) AS request_ids
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name""",
    "alert rule: commented, trailing semicolon": """
      -- p99 per function over the window
      SELECT function_name, quantile(0.99)(duration_ms) AS value
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name;""",
    "alert rule: error rate": """
      SELECT function_name, countIf(status = 'error') / count() AS value,
             groupArrayIf(request_id, status = 'error') AS request_ids
      FROM invocations
      WHERE start_time >= {since:DateTime64(3)} AND start_time < {until:DateTime64(3)}
      GROUP BY function_name""",
    "rollup test: raw fleet": """
        SELECT function_name, count() AS invocations,
            countIf(status IN ('error', 'failure')) AS errors,
            countIf(status = 'timeout') AS timeouts, countIf(cold_start = 1) AS cold_starts,
            max(max_memory_used_mb * 100.0 / memory_size_mb) AS max_memory_pct,
            max(start_time) AS last_seen
        FROM invocations GROUP BY function_name ORDER BY function_name""",
    "time reads: between": """
        SELECT * FROM invocations_between(
            since = {since:DateTime64(3, 'UTC')}, until = {until:DateTime64(3, 'UTC')},
            function_name = {function_name:String})
        ORDER BY request_id""",
    "time reads: plain": """
        SELECT * FROM invocations
        WHERE start_time >= {since:DateTime64(3, 'UTC')}
            AND start_time < {until:DateTime64(3, 'UTC')}
            AND ({function_name:String} = '' OR function_name = {function_name:String})
        ORDER BY request_id""",
    "store test: logs of a request": (
        "SELECT message, level, stream FROM logs WHERE request_id = {rid:String} "
        "ORDER BY timestamp, seq"
    ),
    "store test: migrations": "SELECT max(version) FROM schema_migrations",
    "analyst: windows, lambdas, arrays, JSON": """
        WITH 0.99 AS q, slow AS (SELECT * FROM invocations WHERE duration_ms > 1000)
        SELECT function_name,
               quantileTDigest(q)(duration_ms) AS p99,
               row_number() OVER (PARTITION BY function_name ORDER BY start_time) AS n,
               lagInFrame(duration_ms) OVER (PARTITION BY function_name ORDER BY start_time)
                   AS previous,
               arrayFilter(x -> x > 0, [1, -1, 2]) AS positive,
               JSONExtractString(attributes['body'], 'path') AS path,
               if(status = 'error', 1, 0) AS failed,
               toStartOfInterval(start_time, INTERVAL 5 MINUTE) AS bucket
        FROM slow
        WHERE start_time > now() - INTERVAL 1 DAY
        ORDER BY function_name
        LIMIT 100""",
}


def test_the_readers_queries_were_found() -> None:
    assert len(READER_CONSTANTS) >= 25
    assert "lambdascope.analyzers.sql.TIMEOUTS" in READER_CONSTANTS
    assert "lambdascope.analyzers.versions_sql.VERSIONS" in READER_CONSTANTS
    assert any("demo.py" in place for place in READER_LITERALS)


def test_every_query_call_of_the_readers_is_covered() -> None:
    """A new query shape in analyzers/, tui/ or lambdascope/ comes into this test by itself."""
    known = {key.rsplit(".", 1)[1] for key in READER_CONSTANTS}
    uncovered = []
    for place, first in _query_calls():
        if isinstance(first, ast.Constant):
            continue
        if isinstance(first, ast.Attribute) and first.attr.isupper():
            if first.attr not in known:
                uncovered.append(f"{place}: {ast.unparse(first)}")
            continue
        if (place.rsplit(":", 1)[0], ast.unparse(first)) not in DYNAMIC_QUERY_CALLS:
            uncovered.append(f"{place}: {ast.unparse(first)}")
    assert not uncovered


READER_QUERIES = {**READER_CONSTANTS, **READER_LITERALS, **USER_QUERIES}


@pytest.mark.parametrize("name", sorted(READER_QUERIES))
def test_a_reader_query_passes_and_keeps_its_text(name: str) -> None:
    sql = READER_QUERIES[name]
    checked = check_read(sql, POLICY)
    # Stable: what runs checks again to itself.
    assert check_read(checked, POLICY) == checked
    # Nothing renamed: every call of the original is called in what runs, as written.
    if not sql.lstrip().upper().startswith(("DESCRIBE", "EXISTS", "SHOW")):
        calls = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", _without_comments(sql)))
        calls -= {"AS", "IN", "OVER", "VALUES", "INTERVAL"}
        kept = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", checked))
        assert calls <= kept, calls - kept
    # Every placeholder runs exactly as written.
    placeholders = set(re.findall(r"\{\w+:[^{}]+\}", sql))
    assert placeholders <= set(re.findall(r"\{\w+:[^{}]+\}", checked))


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def test_every_analyzer_query_regenerates_to_itself_up_to_spacing() -> None:
    # The analyzers' SQL only loses comments and layout: same tokens, same order.
    def words(sql: str) -> list[str]:
        sql = re.sub(r"--[^\n]*", "", sql).replace("`", '"')
        return re.findall(r"'[^']*'|\w+|[^\w\s]", sql.replace("!=", "<>"))

    different = []
    for name, sql in READER_CONSTANTS.items():
        original, checked = words(sql), words(check_read(sql, POLICY))
        # sqlglot spells two things its own way: x IS NOT NULL as NOT (x IS NULL), and a
        # number of INTERVAL units as a string ('16'); both mean the same to ClickHouse.
        checked_text = " ".join(checked)
        checked_text = re.sub(
            r"NOT \( ((?:\w+ \. )?\w+) IS NULL \)", r"\1 IS NOT NULL", checked_text
        )
        checked_text = re.sub(r"INTERVAL '(\d+)'", r"INTERVAL \1", checked_text)
        checked_text = re.sub(r"INTERVAL \( (\{ \w+ : \w+ \}) \)", r"INTERVAL \1", checked_text)
        if " ".join(original) != checked_text:
            different.append(name)
    assert not different


# --- (c) the rules ---------------------------------------------------------------------------


def test_the_regenerated_sql_drops_comments_and_keeps_calls_and_placeholders() -> None:
    assert (
        check_read(
            """
            -- the window's functions
            SELECT function_name, toStartOfMinute(start_time) AS minute, /* inline */ count()
            FROM invocations_between(
                since = {since:DateTime64(3, 'UTC')},
                until = {until:DateTime64(3, 'UTC')},
                function_name = '')
            WHERE has({ids:Array(String)}, request_id) # hash comment
            GROUP BY function_name, minute
            LIMIT {n:UInt32};
            """,
            POLICY,
        )
        == "SELECT function_name, toStartOfMinute(start_time) AS minute, count() "
        "FROM invocations_between(since = {since:DateTime64(3, 'UTC')}, "
        "until = {until:DateTime64(3, 'UTC')}, function_name = '') "
        "WHERE has({ids:Array(String)}, request_id) GROUP BY function_name, minute "
        "LIMIT {n:UInt32}"
    )


def test_if_stays_a_call_and_the_ternary_becomes_case() -> None:
    assert check_read("SELECT if(a, 1, 2), a ? 1 : 2 FROM logs", POLICY) == (
        "SELECT if(a, 1, 2), CASE WHEN a THEN 1 ELSE 2 END FROM logs"
    )


def test_quoting_is_normalised_not_trusted() -> None:
    assert check_read("SELECT `message` FROM `lambdascope`.`logs`", POLICY) == (
        'SELECT "message" FROM "lambdascope"."logs"'
    )
    assert check_read("SELECT 'it''s', 'back\\\\slash' FROM logs", POLICY) == (
        "SELECT 'it''s', 'back\\\\slash' FROM logs"
    )


@pytest.mark.parametrize(
    "placeholder",
    [
        "{since:DateTime64(3, 'UTC')}",
        "{fn:String}",
        "{ids:Array(String)}",
        "{n:UInt32}",
        "{x:Nullable(DateTime64(3, 'UTC'))}",
        "{share:Float64}",
        "{tags:Map(String, String)}",
        "{day:Date}",
        "{label:Enum8('a b' = -1)}",
        "{half:BFloat16}",
        "{v:Variant(String, UInt8)}",
    ],
)
def test_placeholders_round_trip_exactly(placeholder: str) -> None:
    checked = guard_read(f"SELECT {placeholder} FROM logs", POLICY)
    assert checked.sql == f"SELECT {placeholder} FROM logs"
    assert checked.parameters == {placeholder[1:].split(":")[0]}


def test_the_parameters_named_are_the_placeholders() -> None:
    assert guard_read("SELECT '{a:String}', {b:UInt8} WHERE {c:String} = ''", POLICY) == (
        GuardedRead("SELECT '{a:String}', {b:UInt8} WHERE {c:String} = ''", frozenset("bc"))
    )


@pytest.mark.parametrize(
    "call",
    [
        "quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles)",
        "quantileTDigest(0.99)(duration_ms)",
        "quantilesStateIf(0.5, 0.9)(duration_ms, cold_start = 1)",
        "countIf(status = 'error')",
        "sumIf(duration_ms, cold_start = 1)",
        "argMaxIf(request_id, duration_ms, status = 'error')",
        "groupArraySortedIf({n:UInt32})(request_id, status = 'error')",
        "uniqExactIf(environment_id, cold_start = 1)",
        "sumArray([1, 2])",
        "avgOrNullIf(duration_ms, 0)",
        "groupUniqArrayArrayIf(['a'], 1)",
        "medianExact(duration_ms)",
        "count(DISTINCT function_name)",
        "anyLast(function_name)",
        "topK(3)(function_name)",
        "sequenceMatch('(?1)(?2)')(start_time, cold_start = 1, cold_start = 0)",
    ],
)
def test_aggregates_with_parameters_and_combinators_pass(call: str) -> None:
    assert check_read(f"SELECT {call} FROM invocations", POLICY) == (
        f"SELECT {call} FROM invocations"
    )


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("count", True),
        ("COUNT", True),
        ("quantilesMergeState", True),
        ("sumForEach", True),
        ("countResample", True),
        ("argMinOrDefaultIf", True),
        ("toStartOfFiveMinutes", True),
        ("JSONExtractString", True),
        ("currentDatabase", True),
        ("hostName", False),
        ("hostNameIf", False),
        ("fileIf", False),
        ("file", False),
        ("dictGetString", False),
        ("url", False),
        ("version", False),
        ("currentUser", False),
        ("getSetting", False),
        ("arrayReduce", False),
        ("sleep", False),
        ("If", True),
        ("SLEEP", False),
        ("", False),
    ],
)
def test_the_function_allowlist(name: str, allowed: bool) -> None:
    assert is_allowed_function(name) is allowed


def test_an_unknown_function_is_refused_by_name() -> None:
    refusal = refused("SELECT count() FROM logs WHERE toFrobnicate(message) = 1")
    assert (refusal.status, refusal.reason) == (403, "function")
    assert refusal.message.startswith("function toFrobnicate() is not allowed")


def test_a_table_function_message_says_what_is_readable() -> None:
    refusal = refused("SELECT * FROM file('x')")
    assert (refusal.status, refusal.reason) == (403, "table_function")
    assert refusal.message.startswith(
        "table function file() is not allowed: the read API reads only the lambdascope "
        "database's tables and views (alert_history, alert_state, cloudwatch_metrics,"
    )


def test_parameterized_views_pass_only_for_the_database() -> None:
    view = "invocations_between(since = now(), until = now(), function_name = '')"
    assert check_read(f"SELECT * FROM {view}", POLICY) == f"SELECT * FROM {view}"
    assert check_read(f"SELECT * FROM lambdascope.{view}", POLICY)
    assert refused(f"SELECT * FROM other.{view}").reason == "database"
    assert refused("SELECT * FROM invocations_after(since = now())").reason == "table_function"


def test_a_table_function_stays_refused_when_a_table_has_its_name() -> None:
    policy = ReadPolicy("lambdascope", TABLES | {"numbers", "file"})
    assert refused("SELECT * FROM numbers(10)", policy).reason == "table_function"
    assert refused("SELECT * FROM file('x')", policy).reason == "table_function"
    assert check_read("SELECT * FROM numbers", policy) == "SELECT * FROM numbers"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM logs",
        "SELECT * FROM lambdascope.logs",
        'SELECT * FROM "lambdascope"."logs"',
        "SELECT * FROM `lambdascope`.`logs`",
        "WITH recent AS (SELECT * FROM logs) SELECT count() FROM recent",
        "WITH 5 AS n, (SELECT count() FROM logs) AS total SELECT n, total",
        "SELECT count() FROM logs WHERE function_name IN (SELECT function_name FROM invocations)",
        "SELECT count() FROM logs WHERE function_name IN invocations",
        "WITH ['a', 'b'] AS names SELECT count() FROM logs WHERE function_name IN names",
        "SELECT 1 UNION ALL SELECT 2",
        "SELECT 1 UNION DISTINCT SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 1",
        "(SELECT 1)",
        "SELECT count() FROM logs SAMPLE 0.1",
        "SELECT * FROM alert_state FINAL",
        "SELECT l.message FROM logs AS l LEFT JOIN invocations AS i USING (request_id)",
        "SELECT message FROM logs ARRAY JOIN mapKeys(attributes) AS key",
        "SELECT version FROM schema_migrations",
        "SELECT * FROM logs LIMIT 5 BY function_name",
        "SELECT count() FROM logs GROUP BY function_name WITH TOTALS",
        "SELECT CURRENT_DATE, today(), currentDatabase(), DATABASE, now",
        "SELECT 1;",
    ],
)
def test_reads_of_the_database_pass(sql: str) -> None:
    assert check_read(sql, POLICY)


def test_table_names_compare_as_clickhouse_does() -> None:
    assert refused("SELECT * FROM Logs").reason == "table"
    assert refused("SELECT * FROM LambdaScope.logs").reason == "database"
    refusal = refused("SELECT * FROM nowhere")
    assert (refusal.status, refusal.reason) == (400, "table")
    assert "unknown table nowhere" in refusal.message


def test_a_lone_identifier_after_in_is_a_table() -> None:
    assert refused("SELECT 0 IN system.one").reason == "database"
    assert refused("SELECT 0 IN (system.one)").reason == "database"
    assert refused("SELECT 0 IN nowhere").reason == "table"


@pytest.mark.parametrize(
    ("sql", "status", "reason"),
    [
        ("SELECT 1; SELECT 2", 400, "multiple_statements"),
        ("SELECT 1;;", 400, None),
        ("INSERT INTO logs SELECT * FROM logs", 403, "statement"),
        ("SELECT 1 SETTINGS max_threads = 1", 403, "settings"),
        ("SELECT 1 FORMAT JSON", 400, "format"),
        ("SELECT 1 INTO OUTFILE 'x'", 403, "into_outfile"),
        ("SELECT {t:Identifier}", 403, "parameter_type"),
        ("SELECT {t:identifier}", 403, "parameter_type"),
        ("SELECT {t:1}", 400, "parse"),
        ("SELECT {t:String /* a comment */}", 400, "parse"),
        ("SELECT {'a': 1}", 400, "parse"),  # no map literal in ClickHouse: not one here either
        ("SELECT ?", 400, "parameter"),
        ("SELECT FROM WHERE", 400, "parse"),
        ("", 400, "empty"),
        ("  -- only a comment", 400, "empty"),
    ],
)
def test_statuses_and_reasons(sql: str, status: int, reason: str | None) -> None:
    if reason is None:  # one statement and empty ones: fine
        assert check_read(sql, POLICY) == "SELECT 1"
        return
    refusal = refused(sql)
    assert (refusal.status, refusal.reason) == (status, reason)


def test_a_parse_error_gives_the_parsers_message() -> None:
    message = refused("SELECT count( FROM logs").message
    assert message.startswith("cannot parse the query: ")
    assert "line 1" in message
    assert "\x1b" not in message


def test_only_select_queries_run_not_describe_or_show() -> None:
    for sql in (
        "DESCRIBE TABLE invocations",
        "desc lambdascope.logs",
        "EXISTS logs",
        "SHOW CREATE TABLE logs",
        "SHOW DATABASES",
    ):
        assert refused(sql).reason == "statement", sql
    # What DESCRIBE would tell, a SELECT tells: the result carries the columns and types.
    assert check_read("SELECT * FROM invocations LIMIT 0", POLICY)


def test_bare_identifiers_clickhouse_would_call_are_refused() -> None:
    for sql in ("SELECT user", "SELECT `currentUser`", "SELECT session_user", "SELECT USER"):
        assert refused(sql).reason == "function", sql
    # Qualified, a name is a column again.
    assert check_read("SELECT l.user FROM logs AS l", POLICY)


def test_size_and_depth_limits() -> None:
    big = "SELECT '" + "x" * MAX_SQL_BYTES + "'"
    assert (refused(big).status, refused(big).reason) == (400, "too_large")
    deep = "SELECT " + "(" * 2000 + "1" + ")" * 2000
    refusal = refused(deep)
    assert (refusal.status, refusal.reason) == (400, "too_deep")
    assert "nested too deeply" in refusal.message
    assert check_read("SELECT " + "abs(" * 20 + "1" + ")" * 20, POLICY)


def test_query_refused_is_a_query_error_with_the_status() -> None:
    refusal = refused("SELECT * FROM system.one")
    error = QueryRefused.from_refusal(refusal)
    assert isinstance(error, QueryError)
    assert (error.status, error.reason, str(error)) == (403, "database", refusal.message)


class _FakeResult:
    column_names = ("n",)
    column_types = ()
    result_rows: list[tuple[int, ...]] = []


class _FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def query(self, sql: str, parameters: dict[str, object], settings: object) -> _FakeResult:
        self.sent.append((sql, parameters))
        return _FakeResult()


class _FakeStore:
    """What the store's reader uses of a Store: its read handles and its table list."""

    def __init__(self, tables: set[str]) -> None:
        self._read_client = _FakeClient()
        self.tables = tables
        self.asked = 0

    def read_client(self) -> _FakeClient:
        return self._read_client

    def release_read_client(self, client: _FakeClient, *, broken: bool = False) -> None:
        assert client is self._read_client

    def read_policy(self, *, refresh: bool = False) -> ReadPolicy:
        self.asked += 1
        return ReadPolicy("lambdascope", frozenset(self.tables))


def test_the_stores_reader_runs_the_checked_sql_and_refuses_with_a_query_error() -> None:
    from lambdascope.collector.store import _StoreReader

    store = _FakeStore({"logs"})
    reader = _StoreReader(store)  # type: ignore[arg-type]
    reader.query("SELECT count() /* why */ FROM logs WHERE m = {m:String}", {"m": "x", "y": 1})
    assert store._read_client.sent == [
        ("SELECT count() FROM logs WHERE m = {m:String}", {"m": "x"})
    ]
    with pytest.raises(QueryRefused) as caught:
        reader.query("SELECT * FROM system.one")
    assert (caught.value.status, caught.value.reason) == (403, "database")
    assert len(store._read_client.sent) == 1  # nothing refused reaches the store


def test_the_stores_reader_asks_for_the_tables_again_when_one_is_unknown() -> None:
    from lambdascope.collector.store import _StoreReader

    store = _FakeStore({"logs"})
    reader = _StoreReader(store)  # type: ignore[arg-type]
    with pytest.raises(QueryRefused):
        reader.query("SELECT * FROM alert_state")
    store.tables.add("alert_state")  # created since, as the alert engine does
    reader.query("SELECT * FROM alert_state")
    assert store._read_client.sent[-1][0] == "SELECT * FROM alert_state"


def test_the_reader_binds_only_the_checked_placeholders() -> None:
    # clickhouse-connect formats %(name)s into the text itself when no {name:Type} placeholder
    # is bound: the reader never passes it a parameter the checked SQL does not name.
    checked = check_read("SELECT '%(x)s', {n:UInt8}", POLICY)
    assert bound_parameters(checked, {"x": "1, hostName() --", "n": 1, "n_64": 2}) == {
        "n": 1,
        "n_64": 2,
    }
    assert bound_parameters(checked, None) == {}


def test_checking_is_fast_once_a_query_was_seen() -> None:
    sql = READER_CONSTANTS["lambdascope.analyzers.sql.MEMORY"]
    check_read(sql, POLICY)
    start = time.perf_counter()
    for _ in range(1000):
        check_read(sql, POLICY)
    assert (time.perf_counter() - start) / 1000 < 0.001
