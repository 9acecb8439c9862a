"""Body decoding, tokens and metrics of the HTTP service, without sockets."""

from __future__ import annotations

import gzip

import pytest

from lambdascope.collector.wire import HttpError, Metrics, bearer_matches, decode_body, parse_json


def test_plain_body_passes_through() -> None:
    assert decode_body(b'{"a": 1}', None, 100) == b'{"a": 1}'
    assert decode_body(b"x", "identity", 100) == b"x"


def test_gzip_body_is_decompressed() -> None:
    assert decode_body(gzip.compress(b'{"a": 1}'), "gzip", 100) == b'{"a": 1}'


def test_gzip_bomb_is_refused_with_413_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(HttpError) as caught:
        decode_body(bomb, "gzip", 1_000_000)
    assert caught.value.status == 413
    assert "1000000 bytes" in caught.value.message


def test_corrupt_gzip_is_400() -> None:
    with pytest.raises(HttpError) as caught:
        decode_body(b"definitely not gzip", "gzip", 100)
    assert caught.value.status == 400
    assert "gzip" in caught.value.message


def test_truncated_gzip_is_400() -> None:
    data = gzip.compress(b"x" * 1000)
    with pytest.raises(HttpError) as caught:
        decode_body(data[: len(data) // 2], "gzip", 10_000)
    assert (caught.value.status, caught.value.message) == (
        400,
        "body is not valid gzip: the stream is truncated",
    )


def test_unknown_encoding_is_415() -> None:
    with pytest.raises(HttpError) as caught:
        decode_body(b"x", "br", 100)
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"batch_id": ', "line 1 column 14"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000, "JSON"),
    ],
)
def test_bad_json_is_400_saying_where(data: bytes, fragment: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_json(data)
    assert caught.value.status == 400
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("header", "token", "ok"),
    [
        (None, None, True),
        ("Bearer anything", None, True),
        ("Bearer s3cret", "s3cret", True),
        ("bearer s3cret", "s3cret", True),
        ("Bearer wrong", "s3cret", False),
        ("Basic s3cret", "s3cret", False),
        (None, "s3cret", False),
        ("Bearer ", "s3cret", False),
    ],
)
def test_bearer_token(header: str | None, token: str | None, ok: bool) -> None:
    assert bearer_matches(header, token) is ok


def test_metrics_render_prometheus_text() -> None:
    metrics = Metrics()
    metrics.inc("lambdascope_batches_total", outcome="stored")
    metrics.inc("lambdascope_batches_total", outcome="stored")
    metrics.inc("lambdascope_rows_written_total", 5, table='we"ird')
    metrics.set("lambdascope_pending_writes", 3)
    text = metrics.render()
    assert (
        '# TYPE lambdascope_batches_total counter\nlambdascope_batches_total{outcome="stored"} 2'
        in text
    )
    assert 'lambdascope_rows_written_total{table="we\\"ird"} 5' in text
    assert "# TYPE lambdascope_pending_writes gauge\nlambdascope_pending_writes 3\n" in text
