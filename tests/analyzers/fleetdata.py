"""Realistic fleet scenarios for detector and TUI tests, fed through the real collector.

A scenario lists invocations; :func:`batches` turns them into the extension's batches
(docs/architecture.md §1) carrying Telemetry API events as Lambda delivers them
(lambda-apis.md §3): init events before an environment's first invocation, ``platform.start``,
awslambdaric's Text-format ``function`` lines, ``platform.runtimeDone``, and each
``platform.report`` delivered in the *next* batch (it is produced only after the extension's
``next`` call). The collector's normaliser and store then build the ``invocations`` view and
``logs`` table the analyzers read.

The clock is fixed per run (the top of the current hour) rather than a constant date, so the
store's retention TTL never drops the test data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class Inv:
    """One invocation as it happened, in Lambda's words."""

    function_name: str
    request_id: str
    start_time: datetime
    duration_ms: float
    status: str = "success"
    function_version: str = "$LATEST"
    environment: str = "1"
    memory_size_mb: int = 128
    max_memory_used_mb: int = 60
    init_duration_ms: float | None = None
    error_type: str | None = None
    timeout_ms: float | None = 3000.0
    invoke_event_lost: bool = False
    lines: list[str] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    invocations: list[Inv] = field(default_factory=list)

    def __add__(self, other: Scenario) -> Scenario:
        return Scenario(self.invocations + other.invocations)

    def by_id(self, request_id: str) -> Inv:
        return next(i for i in self.invocations if i.request_id == request_id)


def _iso(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def environment_id(function_name: str, environment: str) -> str:
    return hashlib.md5(f"{function_name}/{environment}".encode()).hexdigest()


def _environment_doc(function_name: str, environment: str) -> dict[str, Any]:
    """A batch's ``environment`` for one environment of a scenario (128 MB, on-demand)."""
    return {
        "environment_id": environment_id(function_name, environment),
        "function_name": function_name,
        "function_version": "$LATEST",
        "region": "us-east-1",
        "memory_size_mb": 128,
        "initialization_type": "on-demand",
        "architecture": "x86_64",
    }


def _events(inv: Inv) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(events up to runtimeDone, the report event delivered later) for one invocation."""
    t0 = inv.start_time
    rid = inv.request_id
    events: list[dict[str, Any]] = []
    if inv.init_duration_ms is not None:
        init_start = t0 - timedelta(milliseconds=inv.init_duration_ms + 5)
        events += [
            {
                "time": _iso(init_start),
                "type": "platform.initStart",
                "record": {
                    "initializationType": "on-demand",
                    "phase": "init",
                    "runtimeVersion": "python:3.12.v30",
                },
            },
            {
                "time": _iso(t0 - timedelta(milliseconds=5)),
                "type": "platform.initRuntimeDone",
                "record": {"initializationType": "on-demand", "phase": "init", "status": "success"},
            },
            {
                "time": _iso(t0 - timedelta(milliseconds=4)),
                "type": "platform.initReport",
                "record": {
                    "initializationType": "on-demand",
                    "phase": "init",
                    "status": "success",
                    "metrics": {"durationMs": inv.init_duration_ms},
                },
            },
        ]
    events.append(
        {
            "time": _iso(t0),
            "type": "platform.start",
            "record": {"requestId": rid, "version": inv.function_version},
        }
    )
    for j, message in enumerate(inv.lines):
        when = t0 + timedelta(milliseconds=2 + j)
        events.append(
            {
                "time": _iso(when),
                "type": "function",
                "record": f"[INFO]\t{_iso(when)}\t{rid}\t{message}\n",
            }
        )
    end = t0 + timedelta(milliseconds=inv.duration_ms)
    for j, raw in enumerate(inv.raw_lines):
        events.append(
            {
                "time": _iso(end - timedelta(milliseconds=len(inv.raw_lines) - j)),
                "type": "function",
                "record": raw,
            }
        )
    if inv.status == "timeout":
        events.append(
            {
                "time": _iso(end),
                "type": "function",
                "record": f"{_iso(end)} {rid} Task timed out after "
                f"{(inv.timeout_ms or inv.duration_ms) / 1000:.2f} seconds\n",
            }
        )
    status_record: dict[str, Any] = {"requestId": rid, "status": inv.status}
    if inv.error_type:
        status_record["errorType"] = inv.error_type
    events.append(
        {
            "time": _iso(end + timedelta(milliseconds=1)),
            "type": "platform.runtimeDone",
            "record": {**status_record, "metrics": {"durationMs": inv.duration_ms}},
        }
    )
    metrics: dict[str, Any] = {
        "durationMs": inv.duration_ms,
        "billedDurationMs": -(-(inv.duration_ms + (inv.init_duration_ms or 0)) // 1),
        "memorySizeMB": inv.memory_size_mb,
        "maxMemoryUsedMB": inv.max_memory_used_mb,
    }
    if inv.init_duration_ms is not None:
        metrics["initDurationMs"] = inv.init_duration_ms
    report = {
        "time": _iso(end + timedelta(milliseconds=3)),
        "type": "platform.report",
        "record": {**status_record, "metrics": metrics},
    }
    return events, report


def batches(scenario: Scenario, *, per_batch: int = 10) -> Iterator[dict[str, Any]]:
    """Each environment's invocations in batches of ``per_batch``, plus a last batch (at
    SHUTDOWN) with the report of the environment's last invocation.

    Report N is placed right after ``platform.start`` of N+1, which is when Lambda produces it,
    so it often lands in a later batch than the rest of its invocation.
    """
    envs: dict[tuple[str, str], list[Inv]] = {}
    for inv in sorted(scenario.invocations, key=lambda i: i.start_time):
        envs.setdefault((inv.function_name, inv.environment), []).append(inv)
    for (name, env), invocations in envs.items():
        first = invocations[0]
        environment = {
            "environment_id": environment_id(name, env),
            "function_name": name,
            "function_version": first.function_version,
            "region": "us-east-1",
            "memory_size_mb": first.memory_size_mb,
            "initialization_type": "on-demand",
            "architecture": "x86_64",
        }
        pending: list[dict[str, Any]] = []
        for index in range(0, len(invocations), per_batch):
            telemetry: list[dict[str, Any]] = []
            entries = []
            group = invocations[index : index + per_batch]
            for inv in group:
                events, report = _events(inv)
                at = next(i for i, e in enumerate(events) if e["type"] == "platform.start") + 1
                telemetry += events[:at] + pending + events[at:]
                pending = [report]
                if not inv.invoke_event_lost and inv.timeout_ms is not None:
                    entries.append(
                        {
                            "request_id": inv.request_id,
                            "deadline_ms": _ms(inv.start_time) + int(inv.timeout_ms),
                            "received_at_ms": _ms(inv.start_time),
                            "invoked_function_arn": (
                                f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
                            ),
                            "trace_id": None,
                        }
                    )
            last = group[-1]
            sent = last.start_time + timedelta(milliseconds=last.duration_ms + 30)
            yield _batch(f"{name}/{env}/{index}", sent, environment, telemetry, entries)
        last = invocations[-1]
        sent = last.start_time + timedelta(milliseconds=last.duration_ms + 60)
        yield _batch(f"{name}/{env}/shutdown", sent, environment, pending, [])


def _batch(
    key: str,
    sent: datetime,
    environment: dict[str, Any],
    telemetry: list[dict[str, Any]],
    invocations: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "batch_id": hashlib.md5(key.encode()).hexdigest(),
        "sent_at_ms": _ms(sent),
        "extension": {"name": "lambdascope", "version": "0.1.0"},
        "environment": environment,
        "open_request_id": None,
        "telemetry": telemetry,
        "invocations": invocations,
    }


def _function(
    name: str,
    count: int,
    *,
    durations: list[float],
    start: datetime,
    memory_size_mb: int = 128,
    memory_used_mb: list[int] | None = None,
    timeout_ms: float = 3000.0,
    cold_init_ms: float = 180.0,
) -> Scenario:
    """``count`` invocations 30 s apart in one environment; the first is a cold start."""
    scenario = Scenario()
    used = memory_used_mb or [60]
    for i in range(count):
        scenario.invocations.append(
            Inv(
                name,
                f"{name}-{i:04d}",
                start + timedelta(seconds=30 * i),
                durations[i % len(durations)],
                memory_size_mb=memory_size_mb,
                max_memory_used_mb=used[i % len(used)],
                init_duration_ms=cold_init_ms if i == 0 else None,
                timeout_ms=timeout_ms,
                lines=[f"handled {name} request {i}"],
            )
        )
    return scenario


def healthy_fleet(now: datetime = NOW) -> Scenario:
    """Three functions well inside their limits: no detector should say anything."""
    start = now - timedelta(minutes=30)
    return (
        _function("checkout", 40, durations=[120.0, 180.0, 95.0, 240.0], start=start)
        + _function(
            "thumbnailer",
            30,
            durations=[850.0, 1200.0, 990.0],
            start=start + timedelta(seconds=7),
            memory_size_mb=512,
            memory_used_mb=[210, 230, 250],
            timeout_ms=10000.0,
            cold_init_ms=420.0,
        )
        + _function(
            "report_export",
            20,
            durations=[2100.0, 2600.0],
            start=start + timedelta(seconds=13),
            timeout_ms=15000.0,
        )
    )


TIMED_OUT = ("checkout-0007", "checkout-0019", "checkout-0031")
PAYMENTS_LINE = "calling payments API https://payments.internal/charge"


def timeout_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet, except that 3 of checkout's 40 invocations hit its 3 s timeout."""
    return with_checkout_timeouts(healthy_fleet(now))


def with_checkout_timeouts(scenario: Scenario) -> Scenario:
    """Make checkout's :data:`TIMED_OUT` requests hang on the payments API until the timeout."""
    for rid in TIMED_OUT:
        inv = scenario.by_id(rid)
        inv.status = "timeout"
        inv.duration_ms = 3000.0
        inv.max_memory_used_mb = 71
        inv.lines.append(PAYMENTS_LINE)
    return scenario


OOM_KILLED = "report_export-0005"  # Runtime.OutOfMemory, with the "signal: killed" line too
OOM_AS_TIMEOUT = "report_export-0011"  # reported as a timeout, Max Memory Used == Memory Size
OOM_MEMORY_ERROR = "report_export-0017"  # only Python's MemoryError betrays it


def oom_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet, except report_export (128 MB) runs out of memory three ways."""
    scenario = healthy_fleet(now)
    killed = scenario.by_id(OOM_KILLED)
    killed.status, killed.error_type, killed.max_memory_used_mb = (
        "error",
        "Runtime.OutOfMemory",
        128,
    )
    killed.raw_lines.append(
        f"RequestId: {OOM_KILLED} Error: Runtime exited with error: signal: killed\n"
    )
    stalled = scenario.by_id(OOM_AS_TIMEOUT)
    stalled.status, stalled.duration_ms, stalled.max_memory_used_mb = "timeout", 15000.0, 128
    stalled.timeout_ms = 15000.0
    memory_error = scenario.by_id(OOM_MEMORY_ERROR)
    memory_error.status, memory_error.error_type = "error", "MemoryError"
    memory_error.max_memory_used_mb = 119
    ts = _iso(memory_error.start_time + timedelta(milliseconds=900))
    memory_error.raw_lines.append(
        f"[ERROR]\t{ts}\t{OOM_MEMORY_ERROR}\tMemoryError: Unable to allocate 96.0 MiB\r"
        'Traceback (most recent call last):\r  File "/var/task/app.py", line 12, in handler\n'
    )
    return scenario


def high_memory_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet, except thumbnailer peaks at 490-500 of its 512 MB, never failing."""
    scenario = healthy_fleet(now)
    for inv in scenario.invocations:
        if inv.function_name == "thumbnailer" and inv.max_memory_used_mb != 250:
            inv.max_memory_used_mb = 490 if inv.max_memory_used_mb == 210 else 500
    return scenario


def cold_start_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet plus ``search``: 40 invocations over 8 short-lived environments,
    each starting with a 1.4-1.9 s init (a bursty function scaling out)."""
    scenario = healthy_fleet(now)
    start = now - timedelta(minutes=40)
    for i in range(40):
        env, nth = divmod(i, 5)
        scenario.invocations.append(
            Inv(
                "search",
                f"search-{i:04d}",
                start + timedelta(seconds=60 * env + 2 * nth),
                85.0,
                environment=str(env),
                memory_size_mb=256,
                max_memory_used_mb=140,
                init_duration_ms=1400.0 + 70 * env if nth == 0 else None,
                timeout_ms=6000.0,
                lines=[f"query {i}"],
            )
        )
    return scenario


FAILED = ("checkout-0003", "checkout-0010", "checkout-0022", "checkout-0035")


def error_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet, except 4 of checkout's 40 invocations raise: 3 KeyError, 1 crash."""
    scenario = healthy_fleet(now)
    for rid in FAILED:
        inv = scenario.by_id(rid)
        inv.status = "error"
        inv.error_type = "Runtime.ExitError" if rid == FAILED[-1] else "KeyError"
        ts = _iso(inv.start_time + timedelta(milliseconds=40))
        inv.raw_lines.append(
            f"[ERROR]\t{ts}\t{rid}\tKeyError: 'cart_id'\rTraceback (most recent call last):\r"
            '  File "/var/task/app.py", line 8, in handler\n'
        )
    return scenario


# --- Metric streams, OpenTelemetry spans and failed inits (throttles, cost, config checks) ---


def metric_record(
    metric_name: str,
    at: datetime,
    *,
    function_name: str | None = None,
    resource: str | None = None,
    maximum: float = 0.0,
    total: float | None = None,
    count: float = 1.0,
    unit: str = "Count",
) -> dict[str, Any]:
    """One CloudWatch metric stream JSON record (lambda-apis.md §8), as Firehose delivers it.

    ``function_name=None`` is the account-wide dimension set (no dimensions)."""
    dimensions: dict[str, str] = {}
    if function_name is not None:
        dimensions["FunctionName"] = function_name
        if resource is not None:
            dimensions["Resource"] = resource
    value_sum = maximum if total is None else total
    return {
        "metric_stream_name": "lambdascope",
        "account_id": "000000000000",
        "region": "us-east-1",
        "namespace": "AWS/Lambda",
        "metric_name": metric_name,
        "dimensions": dimensions,
        "timestamp": _ms(at),
        "value": {"max": maximum, "min": 0.0, "sum": value_sum, "count": count},
        "unit": unit,
    }


def firehose_body(records: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    """A Firehose HTTP endpoint delivery (lambda-apis.md §9): newline-separated JSON records,
    base64 encoded, up to 100 data points per Firehose record."""
    import base64
    import json

    chunks = [records[i : i + 100] for i in range(0, len(records), 100)]
    return {
        "requestId": request_id,
        "timestamp": _ms(NOW),
        "records": [
            {"data": base64.b64encode("\n".join(json.dumps(r) for r in chunk).encode()).decode()}
            for chunk in chunks
        ],
    }


def function_minutes(
    function_name: str,
    start: datetime,
    minutes: int,
    *,
    invocations: float,
    concurrency: float,
    throttles: float = 0.0,
) -> list[dict[str, Any]]:
    """A function's per-minute Invocations, Throttles and ConcurrentExecutions, published
    under both dimension sets CloudWatch uses ({FunctionName} and {FunctionName, Resource})."""
    records = []
    for m in range(minutes):
        at = start + timedelta(minutes=m)
        for resource in (None, "$LATEST"):
            records += [
                metric_record(
                    "Invocations",
                    at,
                    function_name=function_name,
                    resource=resource,
                    maximum=1.0,
                    total=invocations,
                    count=invocations,
                ),
                metric_record(
                    "Throttles",
                    at,
                    function_name=function_name,
                    resource=resource,
                    maximum=1.0 if throttles else 0.0,
                    total=throttles,
                    count=max(throttles, 1.0),
                ),
                metric_record(
                    "ConcurrentExecutions",
                    at,
                    function_name=function_name,
                    resource=resource,
                    maximum=concurrency,
                    total=concurrency * 10,
                    count=10,
                ),
            ]
    return records


def account_minutes(
    start: datetime, minutes: int, *, concurrency: float, claimed: float, unreserved: float
) -> list[dict[str, Any]]:
    """Account-wide ConcurrentExecutions, ClaimedAccountConcurrency and
    UnreservedConcurrentExecutions per minute."""
    records = []
    for m in range(minutes):
        at = start + timedelta(minutes=m)
        records += [
            metric_record("ConcurrentExecutions", at, maximum=concurrency),
            metric_record("ClaimedAccountConcurrency", at, maximum=claimed),
            metric_record("UnreservedConcurrentExecutions", at, maximum=unreserved),
        ]
    return records


def otlp_spans(function_name: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP/HTTP JSON ``ExportTraceServiceRequest`` with one Lambda function's spans.

    Each span dict: ``request_id``, ``start`` (datetime), ``duration_ms`` and optionally
    ``attributes`` (str -> str), ``status_message``, ``exception`` (type, message)."""
    out = []
    for i, span in enumerate(spans):
        start_ns = int(span["start"].timestamp() * 1000) * 1_000_000
        attributes = {"faas.invocation_id": span["request_id"], **span.get("attributes", {})}
        body: dict[str, Any] = {
            "traceId": hashlib.md5(span["request_id"].encode()).hexdigest(),
            "spanId": hashlib.md5(f"{span['request_id']}/{i}".encode()).hexdigest()[:16],
            "name": span.get("name", function_name),
            "kind": 2,
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(start_ns + int(span["duration_ms"] * 1_000_000)),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
            "status": {
                "code": 2 if span.get("status_message") else 1,
                "message": span.get("status_message", ""),
            },
        }
        if "exception" in span:
            exc_type, exc_message = span["exception"]
            body["events"] = [
                {
                    "timeUnixNano": str(start_ns + 1_000_000),
                    "name": "exception",
                    "attributes": [
                        {"key": "exception.type", "value": {"stringValue": exc_type}},
                        {"key": "exception.message", "value": {"stringValue": exc_message}},
                    ],
                }
            ]
        out.append(body)
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": function_name}},
                        {"key": "faas.name", "value": {"stringValue": function_name}},
                    ]
                },
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.aws_lambda"}, "spans": out}
                ],
            }
        ]
    }


def failed_init_batch(
    function_name: str,
    environment: str,
    start: datetime,
    *,
    status: str,
    error_type: str | None,
    request_id: str,
    retry_status: str = "success",
    init_duration_ms: float = 10000.0,
) -> dict[str, Any]:
    """An environment whose init failed (``status`` error or timeout): Lambda retries it inside
    the first invocation (phase ``invoke``, a "suppressed init", lambda-apis.md §2), which
    then ends as ``retry_status`` says."""
    rid = request_id
    t_invoke = start + timedelta(milliseconds=init_duration_ms + 20)
    init_record: dict[str, Any] = {
        "initializationType": "on-demand",
        "phase": "init",
        "status": status,
    }
    if error_type:
        init_record["errorType"] = error_type
    telemetry: list[dict[str, Any]] = [
        {
            "time": _iso(start),
            "type": "platform.initStart",
            "record": {
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": "python:3.12.v30",
            },
        },
        {
            "time": _iso(start + timedelta(milliseconds=init_duration_ms)),
            "type": "platform.initReport",
            "record": {**init_record, "metrics": {"durationMs": init_duration_ms}},
        },
        {
            "time": _iso(t_invoke),
            "type": "platform.initStart",
            "record": {
                "initializationType": "on-demand",
                "phase": "invoke",
                "runtimeVersion": "python:3.12.v30",
            },
        },
    ]
    retry: dict[str, Any] = {
        "initializationType": "on-demand",
        "phase": "invoke",
        "status": retry_status,
    }
    if retry_status != "success" and error_type:
        retry["errorType"] = error_type
    done = t_invoke + timedelta(milliseconds=400)
    invocation_status: dict[str, Any] = {"requestId": rid, "status": retry_status}
    if retry_status != "success" and error_type:
        invocation_status["errorType"] = error_type
    telemetry += [
        {
            "time": _iso(t_invoke + timedelta(milliseconds=300)),
            "type": "platform.initReport",
            "record": {**retry, "metrics": {"durationMs": 300.0}},
        },
        {
            "time": _iso(t_invoke + timedelta(milliseconds=301)),
            "type": "platform.start",
            "record": {"requestId": rid, "version": "$LATEST"},
        },
        {
            "time": _iso(done),
            "type": "platform.runtimeDone",
            "record": {**invocation_status, "metrics": {"durationMs": 99.0}},
        },
        {
            "time": _iso(done + timedelta(milliseconds=2)),
            "type": "platform.report",
            "record": {
                **invocation_status,
                "metrics": {
                    "durationMs": 99.0,
                    "billedDurationMs": 399,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 70,
                    "initDurationMs": 300.0,
                },
            },
        },
    ]
    environment_doc = _environment_doc(function_name, environment)
    entry = {
        "request_id": rid,
        "deadline_ms": _ms(t_invoke) + 3000,
        "received_at_ms": _ms(t_invoke),
        "invoked_function_arn": f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}",
        "trace_id": None,
    }
    return _batch(
        f"{function_name}/{environment}/init",
        done + timedelta(milliseconds=30),
        environment_doc,
        telemetry,
        [entry],
    )


LEAKING_ENVIRONMENT = ("sessions", "leaky")


def leak_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet plus ``sessions`` (256 MB): one environment leaks about 1.5 MB per
    warm invocation (with allocator noise) over 40 invocations; another environment of the
    same function fills a cache and then stays flat at 94 MB (a plateau, not a leak)."""
    scenario = healthy_fleet(now)
    start = now - timedelta(minutes=25)
    for env, memory in (
        ("leaky", [70 + round(1.5 * i) + (i % 3) - 1 for i in range(40)]),
        ("plateau", [min(70 + 2 * i, 94) + (i % 2) for i in range(40)]),
    ):
        for i, used in enumerate(memory):
            scenario.invocations.append(
                Inv(
                    "sessions",
                    f"sessions-{env}-{i:04d}",
                    start + timedelta(seconds=30 * i + (0 if env == "leaky" else 11)),
                    140.0,
                    environment=env,
                    memory_size_mb=256,
                    max_memory_used_mb=used,
                    init_duration_ms=250.0 if i == 0 else None,
                    lines=[f"session {i}"],
                )
            )
    return scenario


def cost_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet plus ``video_encode`` (x86_64, 10,240 MB, 60 s invocations peaking at
    2,000 MB): 120 invocations over 4 environments in the last hour, against 20 the same time
    yesterday, so it is the most expensive function, spiked day over day, is over-provisioned
    and would be cheaper on arm64."""
    scenario = healthy_fleet(now)
    for day, (start, count, envs) in enumerate(
        ((now - timedelta(minutes=40), 120, 4), (now - timedelta(hours=30), 20, 1))
    ):
        for i in range(count):
            env, nth = divmod(i, count // envs)
            scenario.invocations.append(
                Inv(
                    "video_encode",
                    f"video_encode-{day}-{i:04d}",
                    start + timedelta(seconds=61 * nth + env),
                    60000.0,
                    environment=f"{day}-{env}",
                    memory_size_mb=10240,
                    max_memory_used_mb=2000 if i % 10 == 0 else 1500,
                    init_duration_ms=400.0 if nth == 0 else None,
                    timeout_ms=900000.0,
                    lines=[f"encoded clip {i}"],
                )
            )
    return scenario


NEW_VERSION_ERRORS = ("pricing-8-0-0003", "pricing-8-1-0006", "pricing-8-2-0002")


def version_fleet(now: datetime = NOW, *, regress: bool = True) -> Scenario:
    """The healthy fleet plus ``pricing``: version 7 (3 environments x 10 invocations,
    100-140 ms, 60 MB, 200 ms inits) replaced by version 8 half an hour later. With
    ``regress`` version 8 is slower (350-450 ms, 900 ms inits), uses 95 MB and raises a
    KeyError version 7 never did; without it, version 8 behaves like version 7."""
    scenario = healthy_fleet(now)
    for version, start in (("7", now - timedelta(minutes=55)), ("8", now - timedelta(minutes=25))):
        worse = regress and version == "8"
        for env in range(3):
            for i in range(10):
                rid = f"pricing-{version}-{env}-{i:04d}"
                inv = Inv(
                    "pricing",
                    rid,
                    start + timedelta(seconds=60 * i + 7 * env),
                    [350.0, 400.0, 450.0][i % 3] if worse else [100.0, 120.0, 140.0][i % 3],
                    function_version=version,
                    environment=f"v{version}-{env}",
                    max_memory_used_mb=95 if worse else 60,
                    init_duration_ms=(900.0 if worse else 200.0) if i == 0 else None,
                    lines=[f"priced basket {i}"],
                )
                if worse and rid in NEW_VERSION_ERRORS:
                    inv.status, inv.error_type = "error", "KeyError"
                scenario.invocations.append(inv)
    return scenario


SLOW_HTTP_REQUESTS = ("api-0012", "api-0005")  # 34 s and 31 s: past API Gateway's 29 s


def http_fleet(now: datetime = NOW) -> Scenario:
    """The healthy fleet plus three functions with long timeouts: ``api`` (60 s, HTTP
    spans, two invocations past 29 s), ``webhook`` (20 s, HTTP spans) and ``orders`` (60 s,
    no spans: trigger unknown)."""
    scenario = healthy_fleet(now)
    start = now - timedelta(minutes=20)
    for name, timeout_ms in (("api", 60000.0), ("webhook", 20000.0), ("orders", 60000.0)):
        for i in range(20):
            rid = f"{name}-{i:04d}"
            duration = {"api-0005": 31000.0, "api-0012": 34000.0}.get(rid, 220.0)
            scenario.invocations.append(
                Inv(
                    name,
                    rid,
                    start + timedelta(seconds=40 * i),
                    duration,
                    init_duration_ms=150.0 if i == 0 else None,
                    timeout_ms=timeout_ms,
                    lines=[f"GET /items/{i}"],
                )
            )
    return scenario


def http_spans(scenario: Scenario, function_name: str) -> dict[str, Any]:
    """OTLP server spans with ``faas.trigger = http`` for a function's first five requests."""
    invocations = [i for i in scenario.invocations if i.function_name == function_name][:5]
    return otlp_spans(
        function_name,
        [
            {
                "request_id": inv.request_id,
                "start": inv.start_time,
                "duration_ms": inv.duration_ms,
                "attributes": {"faas.trigger": "http", "http.route": "/items/{id}"},
            }
            for inv in invocations
        ],
    )


def stats_batch(
    function_name: str, environment: str, sent: datetime, stats: dict[str, Any]
) -> dict[str, Any]:
    """A batch without telemetry whose head carries the extension's own figures
    (``extension_stats``, extension/README.md) for one environment of a scenario, as the
    extension builds one at each flush: counters are totals since its process started."""
    env = _environment_doc(function_name, environment)
    batch = _batch(f"{function_name}/{environment}/stats/{_ms(sent)}", sent, env, [], [])
    batch["extension_stats"] = stats
    return batch


def clean_stats(invocations: int, *, final: bool) -> dict[str, Any]:
    """What a healthy extension reports: everything sent, nothing dropped, within budget."""
    stats: dict[str, Any] = {
        "startup_ms": 18.0,
        "peak_rss_kb": 12_288,
        "post_runtime_ms_total": 0.0,
        "post_runtime_ms_max": 0.0,
        "invocations": invocations,
        "events_received": 6 * invocations,
        "events_sent": 6 * invocations,
        "events_dropped": {"buffer_full": 0, "rejected": 0, "shutdown_unspooled": 0},
        "final": final,
    }
    if final:
        stats.update(shutdown_reason="spindown", shutdown_events_unsent=0)
    return stats
