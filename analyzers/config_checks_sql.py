"""SQL of the init and configuration checks (:mod:`lambdascope.analyzers.config_checks`).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (``''``
= every function), ``max_rows``, ``max_evidence``, ``function_names`` (the functions whose
raw rows are read: those with failed inits, or whose rollups show a timeout above API
Gateway's limit). Invocations are read through the collector's ``invocations_between`` view,
which reads only the window's parts.

Initialisations are read from ``cold_starts`` directly: one row per environment (not per
invocation), and there is no rollup of init status.
"""

from __future__ import annotations

#: Initialisations that failed (initReport / initRuntimeDone status error, failure or timeout)
#: or were retried inside the first invocation (phase ``invoke``: a suppressed init), one row
#: per environment and phase, oldest first.
FAILED_INITS = """
SELECT
    function_name,
    function_version,
    environment_id,
    phase,
    status,
    if(error_type = '', status, error_type) AS error_type,
    start_time,
    init_duration_ms
FROM cold_starts
WHERE start_time >= {since:DateTime64(3, 'UTC')}
    AND start_time < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND (status IN ('error', 'failure', 'timeout') OR phase = 'invoke')
ORDER BY start_time, environment_id, phase
LIMIT {max_rows:UInt32}
"""

#: The first invocation of each given environment: the request that waited for (or failed
#: with) the init, and so the evidence of an init failure.
FIRST_INVOCATIONS = """
SELECT
    environment_id,
    argMin(request_id, start_time) AS request_id,
    argMin(status, start_time) AS status,
    min(start_time) AS first_start
FROM invocations_between(
    since = {since:DateTime64(3, 'UTC')},
    -- a failed init is retried inside the first invocation, up to 10 s later: ``until`` is
    -- the window's end plus a minute
    until = {first_until:DateTime64(3, 'UTC')},
    function_name = {function_name:String})
WHERE function_name IN {function_names:Array(String)}
    AND has({environment_ids:Array(String)}, environment_id)
GROUP BY environment_id
ORDER BY first_start
"""

#: The functions whose spans in the window say an HTTP request triggered them: the screen of
#: :data:`API_GATEWAY_TIMEOUTS` (with the rollups' longest configured timeout), so raw rows are
#: read only for an HTTP-triggered function configured above the limit.
HTTP_FUNCTIONS = """
SELECT DISTINCT toString(FunctionName) AS function_name
FROM otel_traces
WHERE Timestamp >= {since:DateTime64(3, 'UTC')}
    AND Timestamp < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR FunctionName = {function_name:String})
    AND SpanAttributes['faas.trigger'] = 'http'
ORDER BY function_name
"""

#: Functions whose spans say an HTTP request triggered them (OpenTelemetry's
#: ``faas.trigger = 'http'``) and whose configured timeout is above API Gateway's 29 s
#: integration limit: how many invocations ran past 29 s (the caller got a 504 while the
#: function kept running and billing), slowest first.
API_GATEWAY_TIMEOUTS = """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    max(timeout_ms) AS configured_timeout_ms,
    maxIf(duration_ms, status != 'timeout') AS max_duration_ms,
    countIf(duration_ms > {api_limit_ms:Float64}) AS over_limit,
    arrayMap(x -> x.2, groupArraySortedIf({max_evidence:UInt32})(
        (-assumeNotNull(duration_ms), request_id), duration_ms > {api_limit_ms:Float64}))
        AS over_limit_request_ids
FROM invocations_between(
    since = {since:DateTime64(3, 'UTC')},
    until = {until:DateTime64(3, 'UTC')},
    function_name = {function_name:String})
WHERE function_name IN {function_names:Array(String)}
    AND function_name IN (
        SELECT FunctionName FROM otel_traces
        WHERE Timestamp >= {since:DateTime64(3, 'UTC')}
            AND Timestamp < {until:DateTime64(3, 'UTC')}
            AND ({function_name:String} = '' OR FunctionName = {function_name:String})
            AND SpanAttributes['faas.trigger'] = 'http'
    )
GROUP BY function_name, function_version
HAVING configured_timeout_ms > {api_limit_ms:Float64}
ORDER BY function_name, function_version
"""
