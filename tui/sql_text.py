"""A query with its parameter values written in, for reading only.

The store binds ``{name:Type}`` placeholders itself (server-side), which is what keeps a
value from ever being read as SQL. People reading "the query behind a finding" want the
values in place, so this renders each one as the ClickHouse literal of its type. The result
is shown, never sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["bind_for_display", "literal"]

#: ``{name:Type}``; a type has no braces (``Array(String)``, ``DateTime64(3, 'UTC')``).
PLACEHOLDER = re.compile(r"\{(\w+):([^{}]+)\}")
_DATETIME64 = re.compile(r"DateTime64\(\s*(\d+)\s*(?:,\s*'([^']*)'\s*)?\)")
_DATETIME = re.compile(r"DateTime(?:\(\s*'([^']*)'\s*\))?")
_ARRAY = re.compile(r"Array\((.*)\)")
_NULLABLE = re.compile(r"(?:Nullable|LowCardinality)\((.*)\)")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def _string(value: str) -> str:
    return "'" + "".join(_ESCAPES.get(char, char) for char in value) + "'"


def _time_text(value: datetime | date | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond:06d}"
    return str(value)


def _number(value: float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return repr(value)


def literal(value: Any, type_name: str = "") -> str:
    """``value`` as a ClickHouse literal of ``type_name`` (the placeholder's type)."""
    type_name = type_name.strip()
    wrapped = _NULLABLE.fullmatch(type_name)
    if wrapped:
        type_name = wrapped.group(1).strip()
    if value is None:
        return "NULL"
    array = _ARRAY.fullmatch(type_name)
    if array or (isinstance(value, Sequence) and not isinstance(value, str | bytes)):
        inner = array.group(1) if array else ""
        return "[" + ", ".join(literal(item, inner) for item in value) + "]"
    if isinstance(value, datetime | date) or type_name.startswith("DateTime"):
        text = _string(_time_text(value))
        precise = _DATETIME64.fullmatch(type_name)
        if precise:
            zone = f", {_string(precise.group(2))}" if precise.group(2) else ""
            return f"toDateTime64({text}, {precise.group(1)}{zone})"
        plain = _DATETIME.fullmatch(type_name)
        if plain:
            zone = f", {_string(plain.group(1))}" if plain.group(1) else ""
            return f"toDateTime({text}{zone})"
        return text
    if isinstance(value, bool):
        return "1" if value else "0"  # ClickHouse's Bool/UInt8 both read 1 and 0
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _string(str(value))


def bind_for_display(query: str, parameters: Mapping[str, Any]) -> str:
    """``query`` with every placeholder that has a value replaced by its literal; one
    without a value stays as written, so nothing is made up."""

    def replace(match: re.Match[str]) -> str:
        name, type_name = match.group(1), match.group(2)
        if name not in parameters:
            return match.group(0)
        return literal(parameters[name], type_name)

    return PLACEHOLDER.sub(replace, query)
