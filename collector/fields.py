"""Reading what senders give the collector: JSON fields, Lambda's times, the store's bounds.

Pure: no I/O, no clock. Each reader names the field it fails on (:class:`BatchError`), so a
malformed event is rejected by its path (``telemetry[3].record.metrics.durationMs``) and the
rest of its batch kept. Values are checked against what the store's columns hold, since one
value past them would fail the whole insert on every retry.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

__all__ = [
    "EPOCH",
    "MAX_STORED_MS",
    "MS_PER_DAY",
    "UINT32_MAX",
    "UINT64_MAX",
    "BatchError",
    "clean_text",
    "join_path",
    "json_kind",
    "ms_to_datetime",
    "parse_time",
    "parse_time_ms",
    "read_epoch_ms",
    "read_id",
    "read_int",
    "read_number",
    "read_object",
    "read_str",
]

_MAX_ID_LENGTH = 256

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS_PER_DAY = 86_400_000
#: What the store's columns can hold: a Date (UInt16 days) ends on 2149-06-06, memory sizes
#: are UInt32, byte and record counts UInt64. A value past them would fail the whole insert on
#: every retry, so the event carrying it is rejected instead (by name, the rest kept). The
#: other sources' normalisers (CloudWatch metric streams) keep to the same bounds.
MAX_STORED_MS = 65_536 * MS_PER_DAY - 1
_STORED_TIMES = "1970-01-01 to 2149-06-06"
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

_FRACTION = re.compile(r"\.(\d+)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BatchError(ValueError):
    """A batch is malformed; ``field`` is the path of the offending field: ``telemetry[3].type``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def ms_to_datetime(ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    # Exact, unlike fromtimestamp(ms / 1000), which can land a microsecond off.
    return EPOCH + dt.timedelta(milliseconds=ms)


def read_object(value: Any, path: str) -> dict[str, Any]:
    """``value`` when it is a JSON object."""
    if not isinstance(value, dict):
        raise BatchError(path, f"must be a JSON object, got {json_kind(value)}")
    return value


def join_path(prefix: str, field: str) -> str:
    """The path of ``field`` relative to ``prefix`` (either may be "": the other one)."""
    return f"{prefix}.{field}" if prefix and field else prefix or field


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (legal in JSON escapes) become U+FFFD.

    ClickHouse strings are bytes; one unencodable character would fail the whole insert and
    turn a batch into one that is refused on every retry.
    """
    if text.isascii():  # the common case, and much cheaper than encoding
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def json_kind(value: Any) -> str:
    """What a JSON value is, for error messages: ``a string``, ``null``, ..."""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def read_str(obj: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    """``obj[key]`` as valid UTF-8 text; None when absent (unless ``required``)."""
    value = obj.get(key)
    if type(value) is str:
        return value if value.isascii() else clean_text(value)
    if value is None:
        if required:
            raise BatchError(join_path(path, key), "is required")
        return None
    if not isinstance(value, str):
        raise BatchError(join_path(path, key), f"must be a string, got {json_kind(value)}")
    return clean_text(value)


def read_id(obj: dict[str, Any], key: str, path: str) -> str:
    """A required identifier (request id, batch id, function name): non-blank and bounded."""
    value = read_str(obj, key, path, required=True)
    assert value is not None
    if not value.strip():
        raise BatchError(join_path(path, key), "must not be empty")
    if len(value) > _MAX_ID_LENGTH:
        raise BatchError(join_path(path, key), f"is longer than {_MAX_ID_LENGTH} characters")
    return value


def read_number(obj: dict[str, Any], key: str, path: str) -> float | None:
    """A finite number, or None when absent."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is float:
        if math.isfinite(value):
            return value
    # bool is an int subclass; True is not a duration.
    elif type(value) is int or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            number = float(value)
        except OverflowError:  # JSON integers have no bound; a float does
            raise BatchError(join_path(path, key), "is too large for a number") from None
        if math.isfinite(number):
            return number
    raise BatchError(join_path(path, key), f"must be a number, got {json_kind(value)}")


def read_int(obj: dict[str, Any], key: str, path: str, maximum: int = UINT32_MAX) -> int | None:
    """A number rounded to a whole one in ``[0, maximum]``, or None when absent."""
    value = read_number(obj, key, path)
    if value is None:
        return None
    number = int(round(value))
    if not 0 <= number <= maximum:
        raise BatchError(join_path(path, key), f"must be between 0 and {maximum}, got {number}")
    return number


def read_epoch_ms(obj: dict[str, Any], key: str, path: str) -> float | None:
    """A time in epoch milliseconds the store can hold."""
    value = read_number(obj, key, path)
    if value is not None and not 0 <= value <= MAX_STORED_MS:
        raise BatchError(
            join_path(path, key), f"is outside the times the store holds ({_STORED_TIMES})"
        )
    return value


def parse_time(text: Any, path: str = "time") -> dt.datetime:
    """Parse Lambda's ISO-8601 time (``2026-11-24T07:00:00.123Z``) into an aware UTC datetime."""
    if not isinstance(text, str) or not text:
        raise BatchError(path, f"must be an ISO-8601 time string, got {json_kind(text)}")
    # fromisoformat takes at most 6 fractional digits; some sources send nanoseconds.
    normal = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(3, "0"), text.strip(), count=1)
    try:
        parsed = dt.datetime.fromisoformat(normal)
    except ValueError:
        raise BatchError(path, f"is not an ISO-8601 time: {text[:64]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_time_ms(text: Any, path: str, seconds: dict[str, int]) -> int:
    """:func:`parse_time` as epoch milliseconds (floored, as DateTime64(3) stores it).

    Lambda's own form (``2026-11-24T07:00:00.123Z``) takes a fast path: ``seconds`` caches the
    epoch second of each ``YYYY-MM-DDTHH:MM:SS`` prefix, and a batch's events share a few.
    Anything else goes through :func:`parse_time`.
    """
    if (
        type(text) is str
        and len(text) == 24
        and text[19] == "."
        and text[23] == "Z"
        and text.isascii()
        and text[20:23].isdigit()
    ):
        prefix = text[:19]
        base = seconds.get(prefix)
        if base is None:
            try:
                parsed = dt.datetime.fromisoformat(prefix)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None and not parsed.microsecond:
                base = (parsed.replace(tzinfo=dt.UTC) - EPOCH) // dt.timedelta(seconds=1)
                seconds[prefix] = base
        if base is not None:
            ms = base * 1000 + int(text[20:23])
            if 0 <= ms <= MAX_STORED_MS:
                return ms
            raise BatchError(path, f"is outside the times the store holds ({_STORED_TIMES})")
    ms = _datetime_to_ms(parse_time(text, path))
    if not 0 <= ms <= MAX_STORED_MS:
        raise BatchError(path, f"is outside the times the store holds ({_STORED_TIMES})")
    return ms


def _datetime_to_ms(value: dt.datetime) -> int:
    return (value - EPOCH) // dt.timedelta(milliseconds=1)
