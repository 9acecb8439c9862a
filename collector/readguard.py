"""The read sandbox: which SQL the read API runs, and the exact text it runs.

The collector's read API (``POST /api/v1/query``) and the in-process analyzers send SQL written
by someone else. ``readonly=1`` stops writes, but ClickHouse can read far more than this
database while read-only: host files (``file()``, ``SELECT file('/etc/passwd')``), the network
(``url()``, ``s3()``, ``remote()``), other databases, ``system.*``, server and session details
(``hostName()``, ``currentUser()``), and ``SETTINGS`` would loosen the limits the collector sets.
:func:`check_read` lets through one ``SELECT`` (``WITH``, ``UNION``/``INTERSECT``/``EXCEPT``
included) that reads only this database's tables and views with computation functions only:

* one statement; anything but a query is refused (403), text that does not parse is 400;
* every table is one of :attr:`ReadPolicy.tables`, unqualified or qualified with the policy's
  database, or a CTE of the query; ``x IN name`` counts as a table; other databases are 403;
* table functions are 403, except this database's parameterized views
  (``invocations_between(since = ..., until = ..., function_name = ...)``);
* every function is on an allowlist (aggregates with their combinators, conditionals, maths,
  dates, strings, JSON, arrays, maps, tuples, window functions, harmless hashes); anything else,
  including names this module has never heard of, is 403. ClickHouse also runs a few functions
  written as bare identifiers (``SELECT user``): the ones that reveal the server or session are
  refused in that form too;
* ``SETTINGS`` (403), ``FORMAT`` (400), ``INTO OUTFILE`` (403), ``{name:Identifier}``
  parameters (403: ClickHouse splices an identifier, past the table check); other
  ``{name:Type}`` parameters pass with their text unchanged, since ClickHouse binds them;
* no more than 256 KiB of text, and no nesting deeper than the parser's recursion limit (400).

:func:`guard_read` also names the query's parameters, so the caller binds only those: a value
for a name the checked SQL does not hold would otherwise reach clickhouse-connect's client-side
``%(name)s`` formatting and be spliced into the text after the check.

Why regenerate. The text ClickHouse runs is not the text that was sent: it is generated again
from the checked syntax tree (comments dropped). Checking the original text would leave a gap
wherever sqlglot and ClickHouse read the same characters differently (nested comments, ``#``
comments, quoting and escapes, keywords sqlglot does not know): the check would see one query
and ClickHouse run another. Regenerated, what runs is what was checked, and the regenerated
text is parsed and checked once more, so even a function name the generator itself writes
(sqlglot turns some syntax into calls) goes through the allowlist.

The parser is sqlglot's ClickHouse dialect with its function table emptied, so function calls
stay calls of the name as written (``toStartOfMinute(x)`` stays ``toStartOfMinute(x)``, not
``dateTrunc('MINUTE', x)``; ``if(a, b, c)`` stays ``if``, not ``CASE``): the allowlist checks
the name ClickHouse will resolve, and the query keeps its meaning. The few calls sqlglot still
types (``CAST``, ``EXTRACT``, ``CURRENT_USER``, ``a ? b : c``) are named by what their
regenerated SQL calls. Where sqlglot would read a construct ClickHouse does not have (ODBC's
``{fn ...}``, ``{...}`` map literals) the query is refused rather than rewritten into it.

This module does no I/O: the caller (collector/store.py) supplies the table names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from lambdascope.collector.readfunctions import (
    BARE_DENIED,
    DENIED_WHY,
    TABLE_FUNCTIONS,
    is_aggregate,
    is_allowed_function,
    resolve_function,
)
from lambdascope.query import QueryError

__all__ = [
    "MAX_SQL_BYTES",
    "GuardedRead",
    "QueryRefused",
    "ReadPolicy",
    "ReadRefused",
    "check_read",
    "guard_read",
    "is_allowed_function",
]

#: Longer SQL is refused before parsing: no reader query comes near it (the largest analyzer
#: query is about 3 KiB), and parsing cost grows with it.
MAX_SQL_BYTES = 256 * 1024


class ReadRefused(Exception):
    """The read sandbox refused a query.

    ``status`` is 400 (malformed or unsupported) or 403 (reaches what the read API does not
    allow), ``reason`` a short code (``table_function``, ``function``, ``database``, ``table``,
    ``statement``, ``settings``, ``format``, ``into_outfile``, ``multiple_statements``,
    ``parse``, ``parameter``, ``parameter_type``, ``too_large``, ``too_deep``, ``empty``),
    ``message`` what was refused and what is allowed, for the user.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class QueryRefused(QueryError):
    """A :class:`ReadRefused` as the query interface's error, raised by the store's reader, so
    callers that handle :class:`~lambdascope.query.QueryError` handle it; the HTTP layer maps
    ``status`` to the response."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def from_refusal(cls, refusal: ReadRefused) -> QueryRefused:
        return cls(refusal.message, status=refusal.status, reason=refusal.reason)


@dataclass(frozen=True)
class ReadPolicy:
    """What a read may reach: the tables and views of one database."""

    database: str
    #: Names of the database's tables and views, parameterized views included
    #: (e.g. ``invocations_between``); compared case-sensitively, as ClickHouse does.
    tables: frozenset[str]

    def __post_init__(self) -> None:
        # Policies key the cache of checked queries, so they must hash whatever was passed.
        object.__setattr__(self, "tables", frozenset(self.tables))


@dataclass(frozen=True)
class GuardedRead:
    """A checked query: the SQL to run and the names of its ``{name:Type}`` parameters."""

    sql: str
    parameters: frozenset[str]


def check_read(sql: str, policy: ReadPolicy) -> str:
    """The SQL to run for ``sql`` (regenerated from the checked syntax tree), or
    :class:`ReadRefused`."""
    return guard_read(sql, policy).sql


def guard_read(sql: str, policy: ReadPolicy) -> GuardedRead:
    """:func:`check_read`, also naming the query's parameters: the caller binds only those, so
    no parameter reaches the client library's own text formatting."""
    if not isinstance(sql, str) or not sql.strip():
        raise ReadRefused(400, "empty", "the query is empty: send one SELECT query")
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > MAX_SQL_BYTES:
        raise ReadRefused(
            400,
            "too_large",
            f"the query is {size} bytes long; the read API accepts at most {MAX_SQL_BYTES} "
            "bytes of SQL",
        )
    try:
        if len(sql) <= _CACHED_SQL_CHARS:
            return _guard_cached(sql, policy)
        return _guard(sql, policy)
    except RecursionError:
        raise ReadRefused(
            400,
            "too_deep",
            "the query is nested too deeply to check: flatten its parentheses or subqueries",
        ) from None


# --- the dialect: ClickHouse, keeping function calls as written ------------------------------

_BaseParser: Any = ClickHouse.Parser
_BaseGenerator: Any = ClickHouse.Generator

#: Function-shaped syntax sqlglot must still parse itself: ``CAST(x AS T)``,
#: ``EXTRACT(DAY FROM x)``, ``COLUMNS('re')`` and ``view(SELECT ...)`` (refused, but named).
_KEPT_FUNCTION_PARSERS = {"CAST", "EXTRACT", "COLUMNS", "VIEW"}

_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A ClickHouse type as a query parameter's type (quoted strings replaced by ''): a name with
#: optional arguments of names, numbers, strings, ``=`` and signs (``Enum8('a' = -1)``).
_TYPE_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[\s\w(),=+\-.]|'')*")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.|'')*'")
#: Where a parsed type keeps its text as written.
_TYPE_META = "clickhouse_type"


class _Parser(_BaseParser):  # type: ignore[misc]
    # Every call stays exp.Anonymous with the name as written: the allowlist checks the name
    # ClickHouse resolves, and regeneration writes the call back unchanged.
    FUNCTIONS: ClassVar[dict[str, Any]] = {}
    FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
        k: v for k, v in _BaseParser.FUNCTION_PARSERS.items() if k in _KEPT_FUNCTION_PARSERS
    }
    # `if(a, b, c)` stays a call of if() instead of becoming CASE WHEN.
    NO_PAREN_FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
        k: v for k, v in _BaseParser.NO_PAREN_FUNCTION_PARSERS.items() if k != "IF"
    }

    @classmethod
    def _resolve_clickhouse_agg(cls, name: str) -> Any:
        # sqlglot parses `f(params)(args)` only for the aggregates it knows; the allowlist's
        # (groupArraySorted, ...) are parametric too.
        parts = super()._resolve_clickhouse_agg(name)
        if parts is None and is_aggregate(name.lower()):
            return (name, [])
        return parts

    def _parse_types(
        self,
        check_func: bool = False,
        schema: bool = False,
        allow_identifiers: bool = True,
        with_collation: bool = False,
    ) -> exp.Expr | None:
        # Keep a type's text as written (CAST(x AS Variant(String, UInt8)): sqlglot would write
        # VARIANT(STRING, UINT8), which ClickHouse does not know), when it is plainly a type.
        start = self._index
        dtype = super()._parse_types(
            check_func=check_func,
            schema=schema,
            allow_identifiers=allow_identifiers,
            with_collation=with_collation,
        )
        if isinstance(dtype, exp.DataType) and self._index > start:
            span = self._tokens[start : self._index]
            text = self.sql[span[0].start : span[-1].end + 1]
            if not any(t.comments for t in span) and _TYPE_TEXT.fullmatch(_STRINGS.sub("''", text)):
                dtype.meta[_TYPE_META] = text
        return dtype

    def _parse_function(
        self,
        functions: dict[str, Any] | None = None,
        anonymous: bool = False,
        optional_parens: bool = True,
        any_token: bool = False,
    ) -> exp.Expr | None:
        # In ClickHouse `{` opens a query parameter; sqlglot would read `{fn:String}` as ODBC's
        # `{fn <call>}` escape.
        if self._match(TokenType.L_BRACE, advance=False):
            return None
        return super()._parse_function(
            functions=functions,
            anonymous=anonymous,
            optional_parens=optional_parens,
            any_token=any_token,
        )

    def _parse_query_parameter(self) -> exp.Expr | None:
        """``{name:Type}`` (the ``{`` already read), keeping the type's text as written: sqlglot
        would respell some types (``Date`` as ``DATE``, ``Variant(String, UInt8)`` in capitals)
        and cannot read others (``BFloat16``, ``Time64(3)``), and the placeholder must reach
        ClickHouse unchanged. The text stays a type: ClickHouse reads nothing else there."""
        tokens, start = self._tokens, self._index
        if not (
            start + 1 < len(tokens)
            and (
                tokens[start].token_type == TokenType.IDENTIFIER
                or (  # a keyword too: {limit:UInt32}
                    tokens[start].token_type != TokenType.STRING
                    and _PARAMETER_NAME.fullmatch(tokens[start].text)
                )
            )
            and tokens[start + 1].token_type == TokenType.COLON
        ):
            # ClickHouse reads `{` only as a parameter; sqlglot would go on to read a map or
            # struct literal, i.e. run something ClickHouse would not.
            self.raise_error("Unsupported use of '{': query parameters are written {name:Type}")
            return None
        end, depth = start + 2, 0
        while end < len(tokens) and not (
            depth == 0 and tokens[end].token_type == TokenType.R_BRACE
        ):
            token = tokens[end]
            depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
            if (
                depth < 0
                or token.comments
                or token.token_type in (TokenType.L_BRACE, TokenType.SEMICOLON)
            ):
                break
            end += 1
        if end >= len(tokens) or end == start + 2 or tokens[end].token_type != TokenType.R_BRACE:
            self.raise_error("Unsupported query parameter: write {name:Type}")
            return None
        type_sql = self.sql[tokens[start + 2].start : tokens[end - 1].end + 1]
        if not _TYPE_TEXT.fullmatch(_STRINGS.sub("''", type_sql)):
            self.raise_error(f"Unsupported type in query parameter {{name:{type_sql}}}")
        self._advance(end + 1 - start)
        name = tokens[start].text
        return self.expression(exp.Placeholder(this=exp.var(name), kind=type_sql))


class _Generator(_BaseGenerator):  # type: ignore[misc]
    def datatype_sql(self, expression: exp.DataType) -> str:
        text = expression.meta.get(_TYPE_META)
        return str(text) if text else str(super().datatype_sql(expression))

    def placeholder_sql(self, expression: exp.Placeholder) -> str:
        kind = expression.args.get("kind")
        if kind is None:
            return str(super().placeholder_sql(expression))
        type_sql = kind if isinstance(kind, str) else self.sql(kind)
        # Exactly `{name:Type}`: the form clickhouse-connect recognises for server-side binding.
        return f"{{{expression.name}:{type_sql}}}"


class _ReadDialect(ClickHouse):  # type: ignore[misc]
    Parser = _Parser
    Generator = _Generator


_DIALECT = _ReadDialect()


# --- the check -----------------------------------------------------------------------------

#: Typed calls that are syntax rather than a named function (operators, CASE, [..], a ? b : c,
#: data.:Type); any other typed call is checked by the name its regenerated SQL gives it.
_SYNTAX_CALLS: tuple[type[exp.Expr], ...] = (
    exp.Connector,
    exp.If,
    exp.Case,
    exp.Array,
    exp.JSONCast,
)
_NAMED_CALLS: tuple[type[exp.Expr], ...] = (
    exp.Anonymous,
    exp.AnonymousAggFunc,
    exp.CombinedAggFunc,
    exp.ParameterizedAgg,
    exp.CombinedParameterizedAgg,
)
_CALL_NAME = re.compile(r'\s*[`"]?([A-Za-z_][A-Za-z0-9_]*)[`"]?\s*\(')
_STATEMENTS: tuple[type[exp.Expr], ...] = (
    exp.DDL,
    exp.DML,
    exp.Command,
    exp.Describe,
    exp.Use,
    exp.Set,
    exp.Kill,
    exp.TruncateTable,
    exp.Detach,
)
_QUERY_STARTS = {TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN}


#: The analyzers send the same few statements over and over: checking one costs milliseconds
#: (sqlglot is pure Python), a cache hit microseconds. Only short texts are kept, so the cache
#: stays small (at most 256 x 16 KiB).
_CACHED_SQL_CHARS = 16 * 1024


@functools.lru_cache(maxsize=256)
def _guard_cached(sql: str, policy: ReadPolicy) -> GuardedRead:
    return _guard(sql, policy)


def _guard(sql: str, policy: ReadPolicy) -> GuardedRead:
    tokens = _tokenize(sql)
    statement = _one_statement(tokens)
    _refuse_into_outfile(statement)
    first = statement[0]
    if first.token_type not in _QUERY_STARTS:
        keyword = first.text.upper()
        raise ReadRefused(403, "statement", _statement_message(keyword, policy))
    tree = _parse(tokens, sql)
    names = _Checker(policy, tree).check()
    text = _generate(tree)
    # The regenerated text is what runs: parse and check it too, so nothing the generator
    # wrote (a call it spelled differently, a keyword it expanded) runs unchecked, and require
    # that it regenerates to itself, i.e. that the check saw exactly this query.
    again = _parse(_tokenize(text), text)
    _Checker(policy, again).check()
    if _generate(again) != text:
        raise ReadRefused(
            400,
            "parse",
            "this query uses syntax the read API cannot check reliably; rewrite it with "
            "plainer constructs (the regenerated query did not read back the same)",
        )
    return GuardedRead(text, frozenset(names))


def _tokenize(sql: str) -> list[Token]:
    try:
        return list(_DIALECT.tokenize(sql))
    except TokenError as exc:
        raise ReadRefused(400, "parse", f"cannot read the query: {_clean(str(exc))}") from None


def _one_statement(tokens: list[Token]) -> list[Token]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    if not statements:
        raise ReadRefused(400, "empty", "the query is empty: send one SELECT query")
    if len(statements) > 1:
        raise ReadRefused(
            400,
            "multiple_statements",
            f"the query holds {len(statements)} statements separated by ';': the read API runs "
            "exactly one SELECT query per request",
        )
    return statements[0]


def _refuse_into_outfile(tokens: list[Token]) -> None:
    # sqlglot cannot parse INTO OUTFILE at all; say what was refused rather than "cannot parse".
    for token, following in zip(tokens, tokens[1:], strict=False):
        if token.token_type == TokenType.INTO and following.text.upper() == "OUTFILE":
            raise ReadRefused(
                403,
                "into_outfile",
                "INTO OUTFILE is not allowed: the read API returns rows to the caller and "
                "writes no files",
            )


def _parse(tokens: list[Token], sql: str) -> exp.Expr:
    try:
        trees = _DIALECT.parser().parse(tokens, sql)
    except ParseError as exc:
        raise ReadRefused(400, "parse", f"cannot parse the query: {_parse_message(exc)}") from None
    except SqlglotError as exc:
        raise ReadRefused(400, "parse", f"cannot parse the query: {_clean(str(exc))}") from None
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        raise ReadRefused(
            400, "multiple_statements", "the read API runs exactly one SELECT query per request"
        )
    return statements[0]


def _generate(tree: exp.Expr) -> str:
    try:
        return str(tree.sql(dialect=_DIALECT, comments=False))
    except SqlglotError as exc:
        raise ReadRefused(
            400, "parse", f"cannot rewrite the query for checking: {_clean(str(exc))}"
        ) from None


class _Checker:
    """One pass over a parsed query; raises :class:`ReadRefused` at the first violation."""

    def __init__(self, policy: ReadPolicy, tree: exp.Expr) -> None:
        self.policy = policy
        self.tree = tree
        # Scoping is not tracked: a CTE name is accepted wherever it appears. Outside its scope
        # ClickHouse resolves the name in this database (the connection's default), whose
        # tables are all readable, so this is never a way out.
        self.ctes: set[str] = set()  # WITH name AS (SELECT ...): a table
        self.scalars: set[str] = set()  # WITH expr AS name: a value (`x IN name` may use it)
        for cte in tree.find_all(exp.CTE):
            if cte.alias:
                (self.scalars if cte.args.get("scalar") else self.ctes).add(cte.alias)
        self.views: set[int] = set()  # ids of parameterized-view calls (not functions)
        self.parameters: set[str] = set()

    def check(self) -> set[str]:
        root = self.tree
        while isinstance(root, exp.Subquery):
            root = root.this
        if not isinstance(root, exp.Select | exp.SetOperation):
            raise ReadRefused(
                403,
                "statement",
                _statement_message(type(root).__name__.upper(), self.policy),
            )
        for node in self.tree.walk():
            self.visit(node)
        return self.parameters

    def visit(self, node: exp.Expr) -> None:
        if isinstance(node, _STATEMENTS):
            raise ReadRefused(403, "statement", _statement_message(node.key.upper(), self.policy))
        if isinstance(node, exp.Query):
            self.query_modifiers(node)
        if isinstance(node, exp.Table):
            self.table(node)
        elif isinstance(node, exp.Apply):
            self.apply(node)
        elif isinstance(node, exp.Func):
            if id(node) not in self.views:
                self.function(node)
        elif isinstance(node, exp.Column):
            self.bare_identifier(node)
        elif isinstance(node, exp.In):
            self.in_table(node)
        elif isinstance(node, exp.Placeholder):
            self.placeholder(node)
        elif isinstance(node, exp.Values):
            raise ReadRefused(403, "table_function", self.table_function_message("values"))
        elif isinstance(node, exp.Parameter | exp.SessionParameter):
            raise ReadRefused(
                400, "parameter", "use {name:Type} query parameters (e.g. {fn:String})"
            )

    def query_modifiers(self, node: exp.Expr) -> None:
        if node.args.get("settings"):
            raise ReadRefused(
                403,
                "settings",
                "SETTINGS is not allowed: the read API runs every query with fixed limits "
                "(read-only, a row cap and a time limit); remove the SETTINGS clause",
            )
        if node.args.get("format"):
            raise ReadRefused(
                400,
                "format",
                "FORMAT is not allowed: the read API returns JSON rows itself; remove the "
                "FORMAT clause",
            )
        if node.args.get("into"):
            raise ReadRefused(
                403, "statement", "SELECT ... INTO is not allowed: the read API only reads"
            )

    def table(self, node: exp.Table) -> None:
        target = node.this
        db = node.args.get("db")
        if node.args.get("catalog") is not None:
            raise ReadRefused(403, "database", self.database_message(node.sql(dialect=_DIALECT)))
        database = db.name if db is not None else None
        if isinstance(target, exp.Func):
            name = _call_name(target) or target.key
            if database is not None and database != self.policy.database:
                raise ReadRefused(403, "database", self.database_message(f"{database}.{name}"))
            if name in self.policy.tables and name.lower() not in TABLE_FUNCTIONS:
                self.views.add(id(target))  # a parameterized view: its arguments are checked
                return
            raise ReadRefused(403, "table_function", self.table_function_message(name))
        if isinstance(target, exp.Placeholder):
            self.placeholder(target)  # {t:Identifier} says so itself
            raise ReadRefused(403, "table", "a query parameter cannot name a table")
        if not isinstance(target, exp.Identifier):
            raise ReadRefused(
                400, "table", f"unsupported table expression {node.sql(dialect=_DIALECT)}"
            )
        self.table_name(database, target.name)

    def table_name(self, database: str | None, name: str, *, value: bool = False) -> None:
        """``database.name`` (``database`` None: unqualified) must be a table of the policy, or
        a CTE; ``value``: a WITH alias of a value also does (the right side of IN)."""
        if database is not None and database != self.policy.database:
            raise ReadRefused(403, "database", self.database_message(f"{database}.{name}"))
        local = self.ctes | self.scalars if value else self.ctes
        if name in self.policy.tables or (database is None and name in local):
            return
        raise ReadRefused(
            400,
            "table",
            f"unknown table {name}: the read API reads the {self.policy.database} database's "
            f"tables and views ({self.tables_hint()})",
        )

    def in_table(self, node: exp.In) -> None:
        # `x IN t` and `x IN (t)` read table t (ClickHouse treats a lone identifier as a table).
        target = node.args.get("field")
        if target is None and len(node.expressions) == 1:
            target = node.expressions[0]
        if not isinstance(target, exp.Column):
            return
        if target.args.get("db") is not None or target.args.get("catalog") is not None:
            raise ReadRefused(403, "database", self.database_message(target.sql(dialect=_DIALECT)))
        database = target.table or None
        self.table_name(database, target.name, value=True)

    def function(self, node: exp.Func) -> None:
        name = _call_name(node)
        if name is None:
            if isinstance(node, _SYNTAX_CALLS):
                return
            raise ReadRefused(
                403,
                "function",
                f"the expression {_short(node)} is not supported by the read API",
            )
        low = name.lower()
        if resolve_function(low):
            return
        raise ReadRefused(403, "function", self.function_message(name))

    def apply(self, node: exp.Apply) -> None:
        # `SELECT COLUMNS('x') APPLY(f)` calls f by a bare name that is no call node of its own.
        name = node.expression.name if isinstance(node.expression, exp.Expr) else ""
        if not name or not resolve_function(name.lower()):
            raise ReadRefused(403, "function", self.function_message(name or "APPLY"))

    def bare_identifier(self, node: exp.Column) -> None:
        if node.table or not isinstance(node.this, exp.Identifier):
            return
        if node.name.lower() in BARE_DENIED:
            why = DENIED_WHY.get(node.name.lower(), "it is not allowed")
            raise ReadRefused(
                403,
                "function",
                f"{node.name} is not allowed: ClickHouse runs a bare {node.name} as the function "
                f"{node.name}(), and {why}",
            )

    def placeholder(self, node: exp.Placeholder) -> None:
        kind = node.args.get("kind")
        if kind is None:
            raise ReadRefused(
                400,
                "parameter",
                f"unsupported parameter {node.sql(dialect=_DIALECT)}: use {{name:Type}} query "
                "parameters (e.g. {fn:String})",
            )
        type_sql = kind if isinstance(kind, str) else kind.sql(dialect=_DIALECT)
        if "identifier" in _STRINGS.sub("''", type_sql).lower():
            raise ReadRefused(
                403,
                "parameter_type",
                f"query parameter {{{node.name}:{type_sql}}} is not allowed: an Identifier "
                "parameter names a table or column chosen at run time, past the table check; "
                "use a value type (String, UInt32, DateTime64(3, 'UTC'), Array(String), ...)",
            )
        if not _PARAMETER_NAME.fullmatch(node.name):
            raise ReadRefused(
                400, "parameter", f"invalid parameter name {node.name!r}: use letters, digits, _"
            )
        self.parameters.add(node.name)

    # messages

    def tables_hint(self) -> str:
        shown = sorted(self.policy.tables)
        return ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "") or "none yet"

    def database_message(self, reference: str) -> str:
        return (
            f"{reference} is outside the {self.policy.database} database: the read API reads "
            f"only the {self.policy.database} database's tables and views ({self.tables_hint()}); "
            "system tables, information_schema and other databases are not readable"
        )

    def table_function_message(self, name: str) -> str:
        return (
            f"table function {name}() is not allowed: the read API reads only the "
            f"{self.policy.database} database's tables and views ({self.tables_hint()})"
        )

    def function_message(self, name: str) -> str:
        low = name.lower()
        why = DENIED_WHY.get(low)
        if why is None and low in TABLE_FUNCTIONS:
            why = "it is a table function, and table functions read outside the database"
        if why is None:
            why = "it is not on the read API's list of functions"
        return (
            f"function {name}() is not allowed: {why}. The read API allows ClickHouse's "
            "computation functions (aggregates and their combinators, conditionals, maths, "
            "type conversions, dates, strings, JSON, arrays, maps, tuples, window functions), "
            f"over the {self.policy.database} database's tables and views"
        )


def _call_name(node: exp.Expr) -> str | None:
    """The function name ClickHouse will resolve for a call node, or None for syntax."""
    if isinstance(node, _NAMED_CALLS):
        return str(node.name)
    if isinstance(node, _SYNTAX_CALLS):
        return None
    # A call sqlglot typed: name it by what its regenerated SQL calls.
    match = _CALL_NAME.match(_generate(node))
    return match.group(1) if match else None


def _statement_message(keyword: str, policy: ReadPolicy) -> str:
    return (
        f"{keyword} statements are not allowed: the read API is readonly and runs one SELECT "
        "query (WITH, UNION, INTERSECT and EXCEPT included) over the "
        f"{policy.database} database's tables and views"
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


def _parse_message(exc: ParseError) -> str:
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return _clean(str(exc))
    first = errors[0]
    where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
    near = first.get("highlight")
    near_text = f" near {_clean(str(near))!r}" if near else ""
    return f"{_clean(str(first.get('description')))}{where}{near_text}"


def _short(node: exp.Expr) -> str:
    text = _generate(node)
    return text if len(text) <= 60 else text[:57] + "..."
