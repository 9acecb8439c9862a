"""Reads what the report shows: every query of the report runs here, and only here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from lambdascope.analyzers import run_detectors, severity_rank, throttles
from lambdascope.analyzers import sql as detector_sql
from lambdascope.analyzers._format import function_label
from lambdascope.analyzers.cost import cost_table
from lambdascope.analyzers.findings import Finding
from lambdascope.analyzers.fleet import LogLine, fleet_summary
from lambdascope.analyzers.report import model
from lambdascope.analyzers.report import sql as report_sql
from lambdascope.analyzers.window import Window
from lambdascope.query import QueryClient

__all__ = ["read_report"]

#: One trace per function at most this many functions; the rest are named as left out.
MAX_FUNCTIONS = 8
MAX_INITS = 5000
MAX_ENVIRONMENTS = 6
POINTS_PER_ENVIRONMENT = 300
#: Log excerpts: the first evidence requests of each finding, this many in all.
EVIDENCE_PER_FINDING = 2
MAX_EXCERPTS = 12
LINES_PER_EXCERPT = 10


def read_report(
    client: QueryClient,
    window: Window,
    function_name: str | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> model.ReportData:
    """Run every query of the report over ``window``; ``progress`` hears each step's name."""

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    params = window.parameters(function_name)
    step("reading the fleet")
    summaries = fleet_summary(
        client, since=window.end - window.start, function_name=function_name, now=window.end
    )
    charted, left_out = model.top_functions(summaries, MAX_FUNCTIONS)

    step("reading findings")
    findings = sorted(
        run_detectors(
            client, since=window.end - window.start, function_name=function_name, now=window.end
        ),
        key=lambda f: severity_rank(f.severity),
    )

    step("reading series")
    bucket_s = model.bucket_seconds(window)
    buckets = model.bucket_starts(window, bucket_s)
    series_params = {**params, "bucket_s": bucket_s}
    series = model.function_series(
        client.query(report_sql.SERIES, series_params).dicts(),
        client.query(report_sql.METRIC_SERIES, series_params).dicts(),
        buckets,
    )
    if function_name:
        total = series.get(function_name) or model.fleet_series({}, buckets)
    else:
        total = model.fleet_series(series, buckets)

    step("reading cold starts")
    inits: dict[str, list[float]] = {kind: [] for kind in model.INIT_KINDS}
    for row in client.query(report_sql.INITS, {**params, "limit": MAX_INITS}).dicts():
        inits[model.init_kind(row)].append(float(row["init_duration_ms"]))
    phase_rows = client.query(
        detector_sql.COLD_STARTS, {**params, "function_names": charted, "max_evidence": 0}
    ).dicts()
    phases = [
        model.init_phases(r, function_label(r["function_name"], r["function_version"]))
        for r in sorted(phase_rows, key=lambda r: -int(r["cold_starts"]))
        if int(r["cold_starts"])
    ][:MAX_FUNCTIONS]

    step("reading memory")
    leaks = [f for f in findings if f.kind == "memory_leak"]
    leak_ids = [f.evidence_request_ids[-1] for f in leaks if f.evidence_request_ids]
    env_rows = client.query(
        report_sql.ENVIRONMENTS,
        {**params, "request_ids": leak_ids, "limit": MAX_ENVIRONMENTS},
    ).dicts()
    points = (
        client.query(
            report_sql.ENVIRONMENT_MEMORY,
            {
                **params,
                "environment_ids": [str(r["environment_id"]) for r in env_rows],
                "per_environment": POINTS_PER_ENVIRONMENT,
            },
        ).dicts()
        if env_rows
        else []
    )

    step("reading cost")
    costs = cost_table(client, window, function_name)
    extension = [
        model.extension_cost(r)
        for r in client.query(detector_sql.EXTENSION_OVERHEAD, params).dicts()
    ]

    step("reading log excerpts")
    excerpts = log_excerpts(client, window, findings)

    return model.ReportData(
        window=window,
        function_name=function_name,
        generated_at=now or datetime.now(UTC),
        bucket_s=bucket_s,
        buckets=buckets,
        summaries=summaries,
        charted=[function_name] if function_name else charted,
        left_out=[] if function_name else left_out,
        series=series,
        total=total,
        reserved_concurrency=(
            throttles.LIMITS.reserved.get(function_name) if function_name else None
        ),
        inits=inits,
        phases=phases,
        environments=model.environments(env_rows, points, leaks),
        environment_count=int(env_rows[0]["environments"]) if env_rows else 0,
        costs=costs,
        extension=extension,
        findings=findings,
        log_excerpts=excerpts,
    )


def excerpt_requests(findings: list[Finding]) -> list[tuple[str, str]]:
    """Pure: (request id, function) of the evidence requests whose log lines the report
    quotes: the first few of each finding, most severe first, at most :data:`MAX_EXCERPTS`."""
    chosen: dict[str, str] = {}
    for f in findings:
        for rid in f.evidence_request_ids[:EVIDENCE_PER_FINDING]:
            if len(chosen) >= MAX_EXCERPTS:
                return list(chosen.items())
            chosen.setdefault(rid, f.function_name)
    return list(chosen.items())


def log_excerpts(
    client: QueryClient, window: Window, findings: list[Finding]
) -> dict[str, list[LogLine]]:
    """The last :data:`LINES_PER_EXCERPT` log lines of each quoted request, in time order."""
    out = {}
    for rid, function_name in excerpt_requests(findings):
        rows = client.query(
            report_sql.REQUEST_LOG_TAIL,
            {
                **window.parameters(function_name),
                "request_id": rid,
                "limit": LINES_PER_EXCERPT,
            },
        ).dicts()
        if rows:
            out[rid] = [
                LogLine(
                    timestamp=r["timestamp"],
                    stream=r["stream"],
                    level=r["level"],
                    message=r["message"],
                )
                for r in reversed(rows)
            ]
    return out
