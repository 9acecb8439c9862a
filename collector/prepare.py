"""One extension batch from its request body to a :class:`NormalizedBatch`: decode (gunzip,
bounded), parse, normalise, attach the OTLP exports it carries, and keep the body itself.

Pure. The ingest endpoint runs it on every batch, and the store runs it again on the bodies
kept with a write intent when a write cut short must be redone (collector/store.py).
"""

from __future__ import annotations

import dataclasses

from lambdascope.collector import otlp_batch
from lambdascope.collector.batch_rows import NormalizedBatch
from lambdascope.collector.fields import BatchError
from lambdascope.collector.normalize import normalize_batch
from lambdascope.collector.wire import HttpError, decode_body, parse_json

__all__ = ["prepare_batch"]


def prepare_batch(
    body: bytes, content_encoding: str | None, max_decompressed_bytes: int
) -> NormalizedBatch:
    """Raises :class:`HttpError`: 400 for a body that is not a valid batch (naming the field),
    413 past the decompressed bound, 415 for an unknown encoding."""
    data = decode_body(body, content_encoding, max_decompressed_bytes)
    raw = parse_json(data)
    del data
    try:
        batch = normalize_batch(raw)
    except BatchError as exc:
        raise HttpError(400, str(exc), field=exc.field) from None
    # OTLP exports forwarded by the extension; a bad one is rejected alone.
    batch = otlp_batch.attach(batch, raw, max_total_bytes=max_decompressed_bytes)
    return dataclasses.replace(batch, raw_body=body, raw_encoding=content_encoding or "")
