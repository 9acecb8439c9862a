"""CloudWatch `AWS/Lambda` metrics, streamed as a CloudWatch Metric Stream delivers them:
JSON records inside Firehose HTTP endpoint requests (reference notes §8-9).

Throttled requests never reach a sandbox, so no extension can see them; in AWS users stream
these metrics to an HTTP endpoint through Firehose. The emulator does the same.

Pure parts (no clock, no I/O, unit-tested): `MetricAggregator` (per-period statistics),
`metric_record`, `pack_records`, `firehose_body`, `firehose_headers`, `backoff_delay`,
`delivery_outcome`. `MetricStream` is the thin shell: a lock around the aggregator and one
delivery thread, so a slow or failing endpoint never delays an invocation.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lambdascope.emulator.config import ACCOUNT_ID

log = logging.getLogger(__name__)

NAMESPACE = "AWS/Lambda"
# Firehose: each record up to 1,024,000 bytes decoded, 1-10,000 records per request.
MAX_RECORD_BYTES = 1_024_000
MAX_RECORDS_PER_REQUEST = 10_000
MAX_BACKOFF_S = 120.0
BACKOFF_JITTER = 0.15
# At stop() the last delivery may retry for at most this long (or the retry duration, if
# shorter): stopping the emulator must not hang for Firehose's default 5 minutes.
FINAL_FLUSH_BUDGET_S = 10.0
# Data points kept while the endpoint is down; beyond it the oldest periods are dropped
# (counted in `MetricStream.dropped_points`).
MAX_PENDING_POINTS = 100_000

# Units as CloudWatch publishes them (reference §8).
UNITS: dict[str, str] = {
    "Invocations": "Count",
    "Errors": "Count",
    "Throttles": "Count",
    "Duration": "Milliseconds",
    "PostRuntimeExtensionsDuration": "Milliseconds",
    "ConcurrentExecutions": "Count",
    "UnreservedConcurrentExecutions": "Count",
    "ClaimedAccountConcurrency": "Count",
    "ProvisionedConcurrentExecutions": "Count",
    "ProvisionedConcurrencyInvocations": "Count",
    "ProvisionedConcurrencySpilloverInvocations": "Count",
    "ProvisionedConcurrencyUtilization": "None",
    "AsyncEventsReceived": "Count",
    "AsyncEventsDropped": "Count",
    "AsyncEventAge": "Milliseconds",
}
# Metrics CloudWatch also aggregates over the whole account (no dimension).
# (ConcurrentExecutions is too, but its account-wide value is the total over functions: the
# caller records it with `account_level=True`.)
ACCOUNT_WIDE = frozenset({"Invocations", "Errors", "Throttles", "Duration"})
# Metrics that exist only for the whole account.
ACCOUNT_ONLY = frozenset({"UnreservedConcurrentExecutions", "ClaimedAccountConcurrency"})


class MetricStreamError(ValueError):
    """The metric stream configuration is invalid; the message names the field."""


@dataclass(frozen=True)
class MetricStreamConfig:
    """Where and how the emulator streams its `AWS/Lambda` metrics.

    `period_s` is CloudWatch's one minute by default; a shorter one lets demos and tests see
    data points within seconds. `retry_duration_s` bounds Firehose's retries of one request
    (300 s is Firehose's default); `initial_backoff_s` is its first wait (1 s).
    """

    url: str
    access_key: str | None = None
    period_s: float = 60.0
    retry_duration_s: float = 300.0
    initial_backoff_s: float = 1.0
    request_timeout_s: float = 180.0
    gzip: bool = False
    stream_name: str = "lambdascope-emulator"
    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    common_attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MetricStreamError(
                f"metric stream url {self.url!r}: use http(s)://host[:port]/path, "
                "e.g. http://127.0.0.1:4320/v1/firehose"
            )
        for name in ("period_s", "request_timeout_s", "initial_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise MetricStreamError(f"metric stream {name}: {value!r} must be > 0 seconds")
        value = self.retry_duration_s
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise MetricStreamError(f"metric stream retry_duration_s: {value!r} must be >= 0")

    @property
    def source_arn(self) -> str:
        return f"arn:aws:firehose:{self.region}:{self.account_id}:deliverystream/{self.stream_name}"


# --- pure: aggregation ------------------------------------------------------------------------


def period_start_ms(t_s: float, period_s: float) -> int:
    """The start of the period holding `t_s` (epoch s), epoch ms, as CloudWatch stamps it."""
    period_ms = int(round(period_s * 1000))
    return int(t_s * 1000) // period_ms * period_ms


@dataclass(frozen=True)
class DataPoint:
    timestamp_ms: int
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    minimum: float
    maximum: float
    total: float
    count: float


@dataclass
class _Stat:
    minimum: float
    maximum: float
    total: float
    count: float

    def add(self, value: float) -> None:
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.total += value
        self.count += 1


_Key = tuple[int, str, tuple[tuple[str, str], ...]]


class MetricAggregator:
    """Samples -> per-period statistics (min, max, sum, count) per metric and dimension set.
    Pure: the caller supplies every timestamp and decides when a period is closed."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._stats: dict[_Key, _Stat] = {}

    def __len__(self) -> int:
        return len(self._stats)

    def add(
        self, metric_name: str, dimensions: Mapping[str, str], value: float, t_s: float
    ) -> None:
        key = (
            period_start_ms(t_s, self.period_s),
            metric_name,
            tuple(sorted(dimensions.items())),
        )
        stat = self._stats.get(key)
        if stat is None:
            self._stats[key] = _Stat(value, value, value, 1)
        else:
            stat.add(value)

    def drain(self, now_s: float | None = None) -> list[DataPoint]:
        """Remove and return the points of periods that ended at or before `now_s` (all of
        them when None), oldest first."""
        period_ms = int(round(self.period_s * 1000))
        limit = None if now_s is None else int(now_s * 1000)
        ready = [k for k in self._stats if limit is None or k[0] + period_ms <= limit]
        ready.sort()
        points = []
        for key in ready:
            stat = self._stats.pop(key)
            points.append(
                DataPoint(
                    key[0],
                    key[1],
                    key[2],
                    UNITS.get(key[1], "None"),
                    stat.minimum,
                    stat.maximum,
                    stat.total,
                    stat.count,
                )
            )
        return points

    def drop_oldest(self, keep: int) -> int:
        """Keep the newest `keep` entries; the number dropped."""
        if len(self._stats) <= keep:
            return 0
        doomed = sorted(self._stats)[: len(self._stats) - keep]
        for key in doomed:
            del self._stats[key]
        return len(doomed)


def dimension_sets(metric_name: str, function_name: str, resource: str) -> list[dict[str, str]]:
    """The dimension sets CloudWatch publishes a Lambda metric under: per function, per
    function and version/alias (`Resource`), and account-wide where CloudWatch has it."""
    if metric_name in ACCOUNT_ONLY:
        return [{}]
    sets = [{"FunctionName": function_name}, {"FunctionName": function_name, "Resource": resource}]
    if metric_name in ACCOUNT_WIDE:
        sets.append({})
    return sets


# --- pure: records and Firehose requests --------------------------------------------------------


def metric_record(
    point: DataPoint, *, stream_name: str, account_id: str, region: str
) -> dict[str, Any]:
    """One metric stream JSON record (one data point)."""
    return {
        "metric_stream_name": stream_name,
        "account_id": account_id,
        "region": region,
        "namespace": NAMESPACE,
        "metric_name": point.metric_name,
        "dimensions": dict(point.dimensions),
        "timestamp": point.timestamp_ms,
        "value": {
            "max": point.maximum,
            "min": point.minimum,
            "sum": point.total,
            "count": point.count,
        },
        "unit": point.unit,
    }


def pack_records(lines: list[str], max_bytes: int = MAX_RECORD_BYTES) -> list[bytes]:
    """Newline-separated JSON lines packed into as few Firehose records as fit `max_bytes`.
    A single line larger than the limit gets a record of its own (it cannot be split)."""
    records: list[bytes] = []
    current = bytearray()
    for line in lines:
        encoded = line.encode("utf-8") + b"\n"
        if current and len(current) + len(encoded) > max_bytes:
            records.append(bytes(current))
            current = bytearray()
        current += encoded
    if current:
        records.append(bytes(current))
    return records


def firehose_body(request_id: str, timestamp_ms: int, records: list[bytes]) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "timestamp": timestamp_ms,
        "records": [{"data": base64.b64encode(r).decode("ascii")} for r in records],
    }


def firehose_headers(config: MetricStreamConfig, request_id: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": request_id,
        "X-Amz-Firehose-Source-Arn": config.source_arn,
    }
    if config.access_key is not None:
        headers["X-Amz-Firehose-Access-Key"] = config.access_key
    if config.common_attributes:
        headers["X-Amz-Firehose-Common-Attributes"] = json.dumps(
            {"commonAttributes": dict(config.common_attributes)}
        )
    if config.gzip:
        headers["Content-Encoding"] = "gzip"
    return headers


def delivery_outcome(status: int | None) -> str:
    """`delivered` (200 only), `permanent` (413) or `retry` (anything else, connection
    failures included), as Firehose decides."""
    if status == 200:
        return "delivered"
    if status == 413:
        return "permanent"
    return "retry"


def backoff_delay(attempt: int, initial_s: float, rng: random.Random) -> float:
    """Wait before retry `attempt` (0-based): exponential from `initial_s`, ±15% jitter,
    capped at 2 minutes."""
    base = min(initial_s * (2**attempt), MAX_BACKOFF_S)
    return base * rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


# --- the shell: recording and delivery ----------------------------------------------------------


@dataclass
class Delivery:
    """One Firehose request as it went (for tests and the log)."""

    request_id: str
    points: int
    attempts: int = 0
    statuses: list[int | None] = field(default_factory=list)
    outcome: str = "pending"  # delivered, permanent, expired


class MetricStream:
    """Aggregates metrics and delivers closed periods from its own thread."""

    def __init__(self, config: MetricStreamConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.deliveries: list[Delivery] = []
        self.dropped_points = 0
        self._aggregator = MetricAggregator(config.period_s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._final_deadline: float | None = None
        self._rng = rng or random.Random()
        self._thread: threading.Thread | None = None

    # --- recording (called from invocation paths: never blocks on I/O) ---

    def add(
        self,
        metric_name: str,
        value: float,
        t_s: float,
        *,
        function_name: str = "",
        resource: str = "",
        account_level: bool = False,
    ) -> None:
        """One sample. `account_level` records it only without dimensions (account-wide
        totals); otherwise under every dimension set CloudWatch has for the metric."""
        sets = [{}] if account_level else dimension_sets(metric_name, function_name, resource)
        with self._lock:
            for dimensions in sets:
                self._aggregator.add(metric_name, dimensions, value, t_s)
            if len(self._aggregator) > MAX_PENDING_POINTS:
                self.dropped_points += self._aggregator.drop_oldest(MAX_PENDING_POINTS)

    # --- lifecycle ---

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metric-stream", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Deliver everything recorded so far (the open period included), retrying for at
        most `FINAL_FLUSH_BUDGET_S`, then stop the thread."""
        self._final_deadline = time.monotonic() + min(
            self.config.retry_duration_s, FINAL_FLUSH_BUDGET_S
        )
        self._stop.set()
        if self._thread is not None:
            self._thread.join(FINAL_FLUSH_BUDGET_S + self.config.request_timeout_s + 1)

    def _run(self) -> None:
        # Closed periods are sent a little after they end, so reports of invocations that
        # started near the end of a period (stamped with their start) are usually in.
        grace_s = min(self.config.period_s / 4, 2.0)
        tick_s = min(self.config.period_s / 4, 1.0)
        while not self._stop.wait(tick_s):
            with self._lock:
                points = self._aggregator.drain(time.time() - grace_s)
            if points:
                self._deliver(points)
        with self._lock:
            points = self._aggregator.drain()
        if points:
            self._deliver(points)

    def _deliver(self, points: list[DataPoint]) -> None:
        config = self.config
        lines = [
            json.dumps(
                metric_record(
                    p,
                    stream_name=config.stream_name,
                    account_id=config.account_id,
                    region=config.region,
                ),
                separators=(",", ":"),
            )
            for p in points
        ]
        records = pack_records(lines)
        for start in range(0, len(records), MAX_RECORDS_PER_REQUEST):
            self._send(records[start : start + MAX_RECORDS_PER_REQUEST], len(points))

    def _send(self, records: list[bytes], points: int) -> None:
        config = self.config
        request_id = str(uuid.uuid4())
        delivery = Delivery(request_id, points)
        self.deliveries.append(delivery)
        body = json.dumps(firehose_body(request_id, int(time.time() * 1000), records)).encode()
        if config.gzip:
            body = gzip.compress(body)
        headers = firehose_headers(config, request_id)
        give_up = time.monotonic() + config.retry_duration_s
        while True:
            status = _post(config.url, body, headers, config.request_timeout_s)
            delivery.attempts += 1
            delivery.statuses.append(status)
            outcome = delivery_outcome(status)
            if outcome != "retry":
                delivery.outcome = outcome
                if outcome == "permanent":
                    log.warning(
                        "metric stream: %s refused request %s as too large (413); dropped",
                        config.url,
                        request_id,
                    )
                return
            deadline = give_up
            if self._final_deadline is not None:
                deadline = min(deadline, self._final_deadline)
            delay = backoff_delay(delivery.attempts - 1, config.initial_backoff_s, self._rng)
            if time.monotonic() + delay > deadline:
                delivery.outcome = "expired"
                log.warning(
                    "metric stream: %s did not accept request %s (last status %s) within the "
                    "retry duration; %d data points dropped",
                    config.url,
                    request_id,
                    status,
                    points,
                )
                return
            # Sleep through the backoff, but wake for stop() to apply its shorter budget.
            end = time.monotonic() + delay
            self._stop.wait(delay)
            if self._final_deadline is not None and end > self._final_deadline:
                delivery.outcome = "expired"
                return
            remaining = end - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int | None:
    """POST and return the status; None when the endpoint cannot be reached."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        log.debug("metric stream: POST %s failed: %s", url, exc)
        return None
    finally:
        with contextlib.suppress(OSError):
            conn.close()
