"""``lambdascope query SQL``: one read-only query, printed as a table, JSON, CSV or TSV.

The formatting functions are pure (a :class:`QueryResult` in, text out) so their escaping is
tested without a store.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from lambdascope.query import QueryResult, jsonable

__all__ = [
    "FORMATS",
    "clean_error",
    "format_csv",
    "format_json",
    "format_result",
    "format_table",
    "format_tsv",
    "run",
]

FORMATS = ("table", "json", "csv", "tsv")
NULL = "NULL"


def _plain(value: Any) -> Any:
    """A value JSON can carry: ISO times, NaN and infinities as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return jsonable(value)


def _text(value: Any) -> str:
    """One non-NULL value as text: ISO times, ``nan``/``inf`` as ClickHouse prints them,
    arrays and maps as JSON, booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return str(jsonable(value))
    if isinstance(value, list | tuple | Mapping):
        return json.dumps(_plain(value), ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def format_json(result: QueryResult) -> str:
    """One JSON array of objects, one per row (``[]`` when there are none)."""
    rows = [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows]
    return json.dumps(rows, ensure_ascii=False, allow_nan=False, indent=2)


def format_csv(result: QueryResult) -> str:
    """RFC 4180 CSV with a header row, as the ``csv`` module writes it (NULL is empty)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result.columns)
    writer.writerows([["" if v is None else _text(v) for v in row] for row in result.rows])
    return out.getvalue()


_TSV_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


def tsv_field(value: Any) -> str:
    """One field as ClickHouse's TabSeparated writes it: NULL as ``\\N``, control characters
    and backslashes escaped, so every row stays on one line."""
    return "\\N" if value is None else _text(value).translate(_TSV_ESCAPES)


def format_tsv(result: QueryResult) -> str:
    """ClickHouse's TabSeparatedWithNames: a header line, then one escaped line per row."""
    lines = ["\t".join(tsv_field(c) for c in result.columns)]
    lines += ["\t".join(tsv_field(v) for v in row) for row in result.rows]
    return "\n".join(lines) + "\n"


_CONTROL = str.maketrans({"\n": "\\n", "\t": "\\t", "\r": "\\r"})


def format_table(result: QueryResult) -> str:
    """Aligned columns for a terminal: numbers right-aligned, NULL shown as ``NULL``."""
    cells = [
        [NULL if v is None else _text(v).translate(_CONTROL) for v in row] for row in result.rows
    ]
    numeric = []
    for i in range(len(result.columns)):
        values = [row[i] for row in result.rows if row[i] is not None]
        numeric.append(
            bool(values)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        )
    widths = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(result.columns)
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(result.columns)), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    count = len(result.rows)
    out.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(out) + "\n"


def format_result(result: QueryResult, fmt: str) -> str:
    return {
        "table": format_table,
        "json": lambda r: format_json(r) + "\n",
        "csv": format_csv,
        "tsv": format_tsv,
    }[fmt](result)


# What ClickHouse adds around the reason: its code, the query it echoes (with the read limits'
# SETTINGS clause appended by the reader), the stack of scopes, its version.
_NOISE = (
    re.compile(r"^(query failed:\s*)?Code:\s*\d+\.\s*(DB::Exception:\s*)?"),
    re.compile(
        r"[.:]?\s*(?:In scope|While processing|[Ii]n query:?)\s.*?"
        r"(?=\.?\s*\([A-Z][A-Z_]+\)|$)",
        re.DOTALL,
    ),
    re.compile(r"\s*SETTINGS\s+readonly\s*=.*?(?=\.?\s*\([A-Z][A-Z_]+\)|$)", re.DOTALL),
    re.compile(r"\s*\(version [^)]*\)"),
    re.compile(r"\s*Stack trace.*$", re.DOTALL),
)


def clean_error(message: str, sql: str = "") -> str:
    """The reason a query failed, without the internal text ClickHouse echoes back."""
    text = message.strip()
    for pattern in _NOISE:
        text = pattern.sub("", text)
    if sql and sql.strip() and sql.strip() in text:
        text = text.replace(sql.strip(), "<your query>")
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\.?\s*\(([A-Z][A-Z_]+)\)$", r" (\1)", text)
    return text or message.strip()


def parse_params(items: list[str]) -> dict[str, str]:
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            from lambdascope.cli.options import UsageError

            raise UsageError(f"--param {item!r} must look like NAME=VALUE")
        parameters[name] = value
    return parameters


def run(args: argparse.Namespace) -> int:
    from lambdascope.cli.options import reader_from_args, window_from_args
    from lambdascope.query import QueryError

    # The window binds {since:...} and {until:...} when the SQL names them; --param wins.
    parameters: dict[str, Any] = window_from_args(args).parameters(args.function)
    parameters.update(parse_params(args.param))
    fmt = args.format or ("table" if sys.stdout.isatty() else "tsv")
    try:
        result = reader_from_args(args).query(args.sql, parameters)
    except QueryError as exc:
        print(f"lambdascope query: {clean_error(str(exc), args.sql)}", file=sys.stderr)
        return 2
    sys.stdout.write(format_result(result, fmt))
    return 0
