"""Init failures and configuration checks across services.

Rules (one finding per function and version per window):

* ``init_failure``: initialisations that failed or timed out (``cold_starts`` status
  ``error``/``failure``/``timeout``; Lambda's 10 s init limit ends in ``timeout``). Lambda
  retries a failed init inside the first invocation (phase ``invoke``, a "suppressed init"),
  so users wait for two inits, and get an error when the retry fails too. **critical** from
  :data:`CRITICAL_FAILED_INITS` failed inits or when a retried init failed again (requests
  failed), **warning** otherwise. Evidence: the first request of each affected environment.
* ``api_gateway_timeout``: a function that spans show is triggered over HTTP
  (``faas.trigger = 'http'``) has a timeout above API Gateway's 29 s integration limit: past
  29 s the caller gets a 504 while the function keeps running (and billing). **critical** when
  some invocation ran past 29 s (evidence: those requests, slowest first), **warning**
  otherwise. Without spans the trigger is unknown and nothing is said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from lambdascope.analyzers import config_checks_sql as sql
from lambdascope.analyzers import rollups
from lambdascope.analyzers._format import function_label, number, seconds
from lambdascope.analyzers.findings import Finding, with_parameters
from lambdascope.analyzers.registry import register
from lambdascope.analyzers.window import Window, ch_time
from lambdascope.query import QueryClient

__all__ = ["api_gateway_findings", "detect_config_checks", "init_failure_findings"]

API_GATEWAY_LIMIT_MS = 29_000.0
CRITICAL_FAILED_INITS = 3
MAX_ROWS = 10_000
MAX_EVIDENCE = 50


@register("config_checks")
def detect_config_checks(
    client: QueryClient, window: Window, function_name: str | None = None
) -> list[Finding]:
    params = window.parameters(function_name)
    init_params = {**params, "max_rows": MAX_ROWS}
    inits = client.query(sql.FAILED_INITS, init_params).dicts()
    first: list[dict[str, Any]] = []
    if inits:
        first = client.query(
            sql.FIRST_INVOCATIONS,
            {
                **params,
                "first_until": ch_time(window.end + timedelta(minutes=1)),
                "environment_ids": sorted({r["environment_id"] for r in inits}),
                "function_names": sorted({r["function_name"] for r in inits}),
            },
        ).dicts()
    # Only an HTTP-triggered function configured with a timeout above the limit can be
    # reported: spans say which are HTTP-triggered, the rollups which timeouts are long.
    http = {str(r[0]) for r in client.query(sql.HTTP_FUNCTIONS, params).rows}
    long_timeouts: list[str] = []
    if http:
        long_timeouts = rollups.flagged(
            rollups.screen(client, window, function_name),
            lambda r: r.function_name in http and (r.max_timeout_ms or 0.0) > API_GATEWAY_LIMIT_MS,
        )
    api: list[dict[str, Any]] = []
    api_params = {
        **params,
        "api_limit_ms": API_GATEWAY_LIMIT_MS,
        "max_evidence": MAX_EVIDENCE,
        "function_names": long_timeouts,
    }
    if long_timeouts:
        api = client.query(sql.API_GATEWAY_TIMEOUTS, api_params).dicts()
    return with_parameters(
        init_failure_findings(inits, first, window) + api_gateway_findings(api, window),
        {sql.FAILED_INITS: init_params, sql.API_GATEWAY_TIMEOUTS: api_params},
    )


def init_failure_findings(
    inits: Sequence[Mapping[str, Any]],
    first_invocations: Sequence[Mapping[str, Any]],
    window: Window,
) -> list[Finding]:
    """Pure: findings for :data:`sql.FAILED_INITS` rows and the first invocation of each of
    their environments (:data:`sql.FIRST_INVOCATIONS`)."""
    first = {r["environment_id"]: r for r in first_invocations}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in inits:
        groups.setdefault((row["function_name"], row["function_version"]), []).append(row)
    findings = []
    for key, rows in sorted(groups.items()):
        failed = [r for r in rows if r["status"] in ("error", "failure", "timeout")]
        if not failed:
            continue  # a suppressed init alone, its failed first attempt outside the window
        timeouts = sum(1 for r in failed if r["status"] == "timeout")
        errors = len(failed) - timeouts
        suppressed = sum(1 for r in rows if r["phase"] == "invoke")
        retried_failed = sum(1 for r in failed if r["phase"] == "invoke")
        environments = list(dict.fromkeys(r["environment_id"] for r in rows))
        evidence = [first[e]["request_id"] for e in environments if e in first]
        failed_requests = sum(
            1 for e in environments if e in first and first[e]["status"] != "success"
        )
        types: dict[str, int] = {}
        for r in failed:
            types[r["error_type"]] = types.get(r["error_type"], 0) + 1
        breakdown = ", ".join(f"{n} × {t}" for t, n in sorted(types.items(), key=lambda x: -x[1]))
        label = function_label(*key)
        summary = (
            f"{len(failed)} init(s) of {label} failed ({breakdown}) in "
            f"{len(environments)} environment(s)"
        )
        if retried_failed:
            summary += f"; the retry inside the first invocation failed too {retried_failed}×"
        numbers: dict[str, float] = {
            "failed_inits": len(failed),
            "init_errors": errors,
            "init_timeouts": timeouts,
            "suppressed_inits": suppressed,
            "retried_inits_failed": retried_failed,
            "environments": len(environments),
            "failed_first_requests": failed_requests,
            "max_init_duration_ms": number(
                max((r["init_duration_ms"] or 0.0 for r in failed), default=None)
            ),
            "evidence_total": len(evidence),
        }
        for t, n in types.items():
            numbers[f"failed_inits_{t}"] = n
        if timeouts and not errors:
            recommendation = (
                "Init hit Lambda's 10 s limit: move heavy work (large downloads, model "
                "loading, many clients) out of module scope or make it lazy, raise memory "
                "(more CPU during init), or use provisioned concurrency / SnapStart."
            )
        else:
            recommendation = (
                "The handler module failed to load: open the evidence requests' logs (and "
                "the INIT_REPORT line) for the import or configuration error, e.g. a missing "
                "dependency in the package or layer, a wrong handler name, or an environment "
                "variable the module reads at import."
            )
        findings.append(
            Finding(
                kind="init_failure",
                severity=(
                    "critical"
                    if len(failed) >= CRITICAL_FAILED_INITS or retried_failed
                    else "warning"
                ),
                function_name=key[0],
                function_version=key[1],
                window_start=window.start,
                window_end=window.end,
                summary=summary,
                numbers=numbers,
                evidence_request_ids=tuple(evidence[:MAX_EVIDENCE]),
                query=sql.FAILED_INITS,
                recommendation=recommendation,
            )
        )
    return findings


def api_gateway_findings(rows: Sequence[Mapping[str, Any]], window: Window) -> list[Finding]:
    """Pure: findings for :data:`sql.API_GATEWAY_TIMEOUTS` rows."""
    findings = []
    for row in rows:
        timeout_ms = float(row["configured_timeout_ms"])
        over = int(row["over_limit"])
        label = function_label(row["function_name"], row["function_version"])
        summary = (
            f"{label} is called over HTTP but its timeout is {seconds(timeout_ms)}, above API "
            f"Gateway's {seconds(API_GATEWAY_LIMIT_MS)} limit"
        )
        if over:
            summary += (
                f": {over} of {int(row['invocations'])} invocations ran past it (the caller "
                "got a 504)"
            )
        findings.append(
            Finding(
                kind="api_gateway_timeout",
                severity="critical" if over else "warning",
                function_name=row["function_name"],
                function_version=row["function_version"],
                window_start=window.start,
                window_end=window.end,
                summary=summary,
                numbers={
                    "invocations": int(row["invocations"]),
                    "timeout_ms": timeout_ms,
                    "api_gateway_limit_ms": API_GATEWAY_LIMIT_MS,
                    "over_limit": over,
                    "max_duration_ms": number(row["max_duration_ms"]),
                    "evidence_total": over,
                },
                evidence_request_ids=tuple(row["over_limit_request_ids"]),
                query=sql.API_GATEWAY_TIMEOUTS,
                recommendation=(
                    "Set the function timeout at or below 29 s so it stops when the caller "
                    "has given up; move longer work to an asynchronous path (return 202 and "
                    "process from a queue or Step Functions), or use a Function URL or an "
                    "ALB, which allow longer requests."
                ),
            )
        )
    return findings
