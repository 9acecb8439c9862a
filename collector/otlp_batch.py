"""The ``otlp[]`` items of an extension batch (extension/README.md): OTLP export requests the
function's SDK sent to the extension, forwarded undecoded. Pure functions, no I/O.

Each item is decoded (base64, gunzip when ``content_encoding`` is gzip, bounded, then protobuf
or JSON by ``content_type``) into ``otel_traces`` / ``otel_logs`` / ``otel_metrics`` rows that
name the batch's function and the invocation: a row's own ``faas.invocation_id`` (or another
request-id attribute) when it has one, else the item's ``request_id``. A malformed item is
skipped and reported like a malformed event (``NormalizedBatch.rejected``); it never fails the
batch. The rows travel with the batch (:class:`BatchWithOtlp`), so they are written in the
batch's inserts under its id: a retried batch stores them once.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lambdascope.collector import otlp, otlp_proto
from lambdascope.collector.batch_rows import NormalizedBatch

__all__ = ["DEFAULT_MAX_ITEM_BYTES", "BatchWithOtlp", "DecodedItems", "attach", "decode_items"]

#: Twice the extension's own bound on one decompressed export (LAMBDASCOPE_OTLP_MAX_BYTES).
DEFAULT_MAX_ITEM_BYTES = 8 * 1024 * 1024
#: All the items of one batch together, decompressed: a batch of many small gzip bombs must
#: not exhaust the collector's memory either.
DEFAULT_MAX_TOTAL_BYTES = 64 * 1024 * 1024
_MAX_ERRORS_SHOWN = 3


@dataclass(frozen=True)
class DecodedItems:
    #: Rows per table: ``otel_traces``, ``otel_logs``, ``otel_metrics``.
    rows: dict[str, list[Any]]
    #: (field path, problem) per item skipped or partly rejected: ``("otlp[2]", "...")``.
    rejected: list[tuple[str, str]]


@dataclass(frozen=True)
class BatchWithOtlp(NormalizedBatch):
    """A normalised batch that also carries the rows decoded from its ``otlp[]`` items."""

    otel_rows: Mapping[str, Sequence[Any]] = field(default_factory=dict)


class _ItemError(ValueError):
    pass


def _item_str(item: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _ItemError(f"{key}: must be a non-empty string")
    return value


def _payload(item: Mapping[str, Any], max_bytes: int) -> bytes:
    text = item.get("body_b64")
    if not isinstance(text, str):  # "" is an empty export request: valid
        raise _ItemError("body_b64: must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _ItemError("body_b64: is not valid base64") from None
    encoding = item.get("content_encoding") or ""
    if encoding in ("", "identity"):
        if len(data) > max_bytes:
            raise _ItemError(f"body_b64: the export is larger than {max_bytes} bytes")
        return data
    if encoding != "gzip":
        raise _ItemError(f"content_encoding: {encoding!r} is not gzip or null")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise _ItemError(f"body_b64: is not valid gzip: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise _ItemError(f"body_b64: decompresses to more than {max_bytes} bytes")
    if not inflater.eof:
        raise _ItemError("body_b64: the gzip stream is truncated")
    return out


def _tag(row: Any, function_name: str, request_id: str) -> Any:
    # The batch's environment names the function authoritatively; a row's own request-id
    # attribute (faas.invocation_id) beats the extension's guess of the open invocation.
    changes: dict[str, str] = {}
    if function_name:
        changes["FunctionName"] = function_name
    if not row.RequestId and request_id:
        changes["RequestId"] = request_id
    return dataclasses.replace(row, **changes) if changes else row


def decode_items(
    items: Any,
    function_name: str,
    *,
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> DecodedItems:
    """Decode a batch's ``otlp`` value into rows; never raises for bad input."""
    rows: dict[str, list[Any]] = {signal.table: [] for signal in otlp_proto.SIGNALS.values()}
    rejected: list[tuple[str, str]] = []
    if items is None:
        return DecodedItems(rows, rejected)
    if not isinstance(items, list):
        rejected.append(("otlp", f"must be a list of export requests, got {type(items).__name__}"))
        return DecodedItems(rows, rejected)
    budget = max_total_bytes
    for index, item in enumerate(items):
        path = f"otlp[{index}]"
        try:
            if not isinstance(item, dict):
                raise _ItemError("must be an object")
            name = item.get("signal")
            signal = otlp_proto.SIGNALS.get(name) if isinstance(name, str) else None
            if signal is None:
                raise _ItemError(
                    f"signal: {item.get('signal')!r} is not one of {', '.join(otlp_proto.SIGNALS)}"
                )
            media = otlp_proto.media_type(_item_str(item, "content_type"))
            request_id = _item_str(item, "request_id", required=False)
            data = _payload(item, min(max_item_bytes, budget))
            budget -= len(data)
            parsed = otlp_proto.parse_payload(signal, data, media)
        except _ItemError as exc:
            rejected.append(_split(path, str(exc)))
            continue
        except otlp.OtlpError as exc:
            rejected.append((path, f"{item['signal']} export: {exc}"))
            continue
        except (TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
            # A shape the parser did not foresee costs this item, never the batch.
            rejected.append((path, f"could not be decoded: {type(exc).__name__}: {exc}"))
            continue
        rows[signal.table].extend(_tag(row, function_name, request_id) for row in parsed.rows)
        if parsed.rejected:
            shown = "; ".join(parsed.errors[:_MAX_ERRORS_SHOWN])
            rejected.append((path, f"{parsed.rejected} {signal.unit} rejected: {shown}"))
    return DecodedItems(rows, rejected)


def _split(path: str, message: str) -> tuple[str, str]:
    """``("otlp[2]", "body_b64: is not valid base64")`` -> ``("otlp[2].body_b64", "is ...")``."""
    key, sep, problem = message.partition(": ")
    if sep and key.isidentifier():
        return f"{path}.{key}", problem
    return path, message


def attach(
    batch: NormalizedBatch,
    raw: Any,
    *,
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> NormalizedBatch:
    """``batch`` with the rows of the raw batch's ``otlp[]`` items, and their rejections
    added to ``batch.rejected``; ``batch`` itself when the raw batch carries none."""
    if not isinstance(raw, dict) or raw.get("otlp") is None:
        return batch
    decoded = decode_items(
        raw["otlp"],
        batch.environment.function_name,
        max_item_bytes=max_item_bytes,
        max_total_bytes=max_total_bytes,
    )
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    values["rejected"] = (*batch.rejected, *decoded.rejected)
    values["otel_rows"] = {table: rows for table, rows in decoded.rows.items() if rows}
    return BatchWithOtlp(**values)
