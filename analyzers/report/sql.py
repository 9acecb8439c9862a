"""SQL of the HTML report (:mod:`lambdascope.analyzers.report`), beside what it reuses from the
detectors (:data:`lambdascope.analyzers.sql.COLD_STARTS`, ``EXTENSION_OVERHEAD``, the cost
table).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (``''``
= every function), ``bucket_s`` (a chart's bucket, a multiple of 60 seconds) and limits. Every
value is bound; nothing is formatted into the text. Series read the per-minute rollups and
CloudWatch's per-minute points, so a week costs about what an hour does; only the memory per
environment and the log excerpts read raw rows, a bounded number of them.
"""

from __future__ import annotations

_WINDOW_INVOCATIONS = """invocations_between(
        since = {since:DateTime64(3, 'UTC')},
        until = {until:DateTime64(3, 'UTC')},
        function_name = {function_name:String})"""

#: Per function and bucket: invocations (started or reported, as the fleet table counts them),
#: errors, timeouts, cold starts, the duration p50/p90/p99 and the configured timeout.
SERIES = """
SELECT
    function_name,
    toStartOfInterval(minute, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    greatest(sum(invocations), sum(started)) AS invocations,
    sum(errors) AS errors,
    sum(timeouts) AS timeouts,
    sum(cold_starts) AS cold_starts,
    quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles) AS duration_quantiles_ms,
    max(max_timeout_ms) AS timeout_ms
FROM invocation_minutes
WHERE minute >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND minute < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
GROUP BY function_name, bucket
ORDER BY function_name, bucket
"""

#: Per bucket, from the CloudWatch metric stream: each function's Throttles (sum) and
#: ConcurrentExecutions (its Maximum statistic), under ``{FunctionName}`` alone so nothing
#: counts twice (as :data:`lambdascope.analyzers.sql.FLEET_THROTTLES` reads them); for a fleet
#: report also the account's ConcurrentExecutions (``function_name = ''``, no dimensions).
METRIC_SERIES = """
SELECT
    function_name,
    toStartOfInterval(timestamp, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    sumIf(value_sum, metric_name = 'Throttles') AS throttles,
    maxIf(value_max, metric_name = 'ConcurrentExecutions') AS concurrency,
    countIf(metric_name = 'ConcurrentExecutions') > 0 AS has_concurrency
FROM cloudwatch_metrics
WHERE namespace = 'AWS/Lambda'
    AND metric_name IN ('Throttles', 'ConcurrentExecutions')
    AND timestamp >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND timestamp < {until:DateTime64(3, 'UTC')}
    AND ((function_name != '' AND resource = ''
          AND NOT mapContains(dimensions, 'ExecutedVersion')
          AND ({function_name:String} = '' OR function_name = {function_name:String}))
         OR ({function_name:String} = '' AND function_name = '' AND length(dimensions) = 0))
GROUP BY function_name, bucket
ORDER BY function_name, bucket
"""

#: The window's initializations, newest first: their type, phase, whether Lambda ran them
#: ahead of demand (``proactive``) and their duration, for the init-duration histogram.
INITS = """
SELECT
    function_name,
    initialization_type,
    phase,
    proactive,
    init_duration_ms
FROM cold_starts
WHERE start_time >= {since:DateTime64(3, 'UTC')}
    AND start_time < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND init_duration_ms IS NOT NULL
ORDER BY start_time DESC
LIMIT {limit:UInt32}
"""

#: The execution environments that came closest to their memory size (by share, then MB),
#: and first of all those that ran one of ``request_ids`` (a leak's evidence), so a leaking
#: environment is always drawn. ``environments`` counts every environment of the window.
ENVIRONMENTS = (
    """
SELECT
    function_name,
    environment_id,
    max(max_memory_used_mb) AS max_used_mb,
    max(memory_size_mb) AS size_mb,
    count() AS invocations,
    max(has({request_ids:Array(String)}, request_id)) AS named,
    count() OVER () AS environments
FROM """
    + _WINDOW_INVOCATIONS
    + """
WHERE environment_id != ''
GROUP BY function_name, environment_id
ORDER BY
    named DESC,
    if(coalesce(size_mb, 0) > 0, coalesce(max_used_mb, 0) / size_mb, 0) DESC,
    coalesce(max_used_mb, 0) DESC,
    invocations DESC,
    environment_id
LIMIT {limit:UInt32}
"""
)

#: Max Memory Used of each invocation of the chosen environments, the newest
#: ``per_environment`` of each (where a leak shows), newest first.
ENVIRONMENT_MEMORY = (
    """
SELECT
    environment_id,
    start_time,
    request_id,
    max_memory_used_mb
FROM """
    + _WINDOW_INVOCATIONS
    + """
WHERE has({environment_ids:Array(String)}, environment_id)
    AND max_memory_used_mb IS NOT NULL
ORDER BY environment_id, start_time DESC
LIMIT {per_environment:UInt32} BY environment_id
"""
)

#: The last ``limit`` log lines of one request, newest first (the caller puts them back in
#: time order). The time bounds reach Lambda's 15-minute maximum past the window, and a minute
#: before it, so the store prunes by time.
REQUEST_LOG_TAIL = """
SELECT timestamp, stream, level, message
FROM logs
WHERE request_id = {request_id:String}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND timestamp >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
    AND timestamp < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
ORDER BY timestamp DESC
LIMIT {limit:UInt32}
"""
