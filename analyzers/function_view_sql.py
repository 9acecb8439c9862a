"""SQL of one function's view (:mod:`lambdascope.analyzers.function_view`).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (one
function, never ``''`` here), ``bucket_s`` (a chart's bucket, a multiple of 60 seconds) and
``limit``. Charts and the configuration read the per-minute rollups (``invocation_minutes``),
the ``cold_starts`` view and CloudWatch's per-minute points, so a long window costs the same as
a short one; only the recent invocations (a page of them) and the memory per environment read
invocation rows.
"""

from __future__ import annotations

# The minutes that overlap [since, until), of one function.
_MINUTES = """
WHERE minute >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND minute < {until:DateTime64(3, 'UTC')}
    AND function_name = {function_name:String}"""

#: The function's figures per bucket: invocations (started or reported, as the fleet counts
#: them), errors, timeouts, cold starts, duration and init quantiles, and memory.
FUNCTION_SERIES = (
    """
SELECT
    toStartOfInterval(minute, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    greatest(sum(invocations), sum(started)) AS invocations,
    sum(errors) AS errors,
    sum(timeouts) AS timeouts,
    sum(cold_starts) AS cold_starts,
    quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles) AS duration_quantiles_ms,
    quantilesMerge(0.5, 0.9, 0.99)(init_duration_ms_quantiles) AS init_quantiles_ms,
    max(max_init_duration_ms) AS max_init_duration_ms,
    max(max_memory_used_mb) AS max_memory_used_mb,
    max(max_memory_size_mb) AS memory_size_mb
FROM invocation_minutes"""
    + _MINUTES
    + """
GROUP BY bucket
ORDER BY bucket
"""
)

#: One function's CloudWatch metric points of the window, under ``{FunctionName}`` alone so
#: nothing counts twice (analyzers/throttles_sql.py); the metric's name is bound.
_FUNCTION_POINTS = """
FROM cloudwatch_metrics
WHERE namespace = 'AWS/Lambda'
    AND metric_name = {metric_name:String}
    AND timestamp >= {since:DateTime64(3, 'UTC')}
    AND timestamp < {until:DateTime64(3, 'UTC')}
    AND function_name = {function_name:String}
    AND resource = ''
    AND NOT mapContains(dimensions, 'ExecutedVersion')
GROUP BY bucket
ORDER BY bucket
"""

#: Lambda's own throttles per bucket: only CloudWatch metric streams carry them (a throttled
#: request never reaches a sandbox). Points under ``{FunctionName}`` alone, so nothing counts
#: twice (analyzers/throttles_sql.py). No rows: no metric stream for this function.
FUNCTION_THROTTLES = (
    """
SELECT
    toStartOfInterval(timestamp, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    sum(value_sum) AS throttles"""
    + _FUNCTION_POINTS
)

#: The function's concurrency per bucket: the highest ConcurrentExecutions CloudWatch reported
#: in it (its Maximum statistic), read like :data:`FUNCTION_THROTTLES` and the throttles
#: detector do. No rows: no metric stream for this function, so its concurrency is unknown.
FUNCTION_CONCURRENCY = (
    """
SELECT
    toStartOfInterval(timestamp, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    max(value_max) AS concurrency"""
    + _FUNCTION_POINTS
)

#: Memory used against the configured size, per execution environment, the fullest first (by
#: share of its configured size, then by MB): the environment that will run out first leads.
#: Environments are not in the per-minute rollups, so this reads the window's invocations, as
#: the recent invocations' page (which counts them all) already does. ``environments`` counts
#: every environment of the window, beyond the ``limit`` returned.
#:
#: ``max_in_flight``: the most requests the environment ran at once (Lambda Managed Instances
#: run many; on demand it is 1), a sweep over its invocations' starts (+1) and ends (-1), ends
#: first at one instant. An invocation without an end (no report yet) counts as an instant, and
#: ends are taken 1 ms early so that millisecond rounding never shows two sequential
#: invocations overlapping.
IN_FLIGHT = """arrayMax(arrayCumSum(arrayMap(e -> e.2, arraySort(arrayConcat(
        groupArray((start_time, toInt8(1))),
        groupArray((greatest(start_time,
                             coalesce(end_time, start_time) - toIntervalMillisecond(1)),
                    toInt8(-1))))))))"""

FUNCTION_ENVIRONMENTS = f"""
SELECT
    environment_id,
    max(max_memory_used_mb) AS max_used_mb,
    max(memory_size_mb) AS size_mb,
    count() AS invocations,
    min(start_time) AS first_start,
    max(start_time) AS last_start,
    {IN_FLIGHT} AS max_in_flight,
    count() OVER () AS environments
FROM invocations_between(
        since = {{since:DateTime64(3, 'UTC')}},
        until = {{until:DateTime64(3, 'UTC')}},
        function_name = {{function_name:String}})
WHERE environment_id != ''
GROUP BY environment_id
ORDER BY
    if(coalesce(size_mb, 0) > 0, coalesce(max_used_mb, 0) / size_mb, 0) DESC,
    coalesce(max_used_mb, 0) DESC,
    invocations DESC,
    environment_id
LIMIT {{limit:UInt32}}
"""

#: The configuration as observed, per version: memory size, timeout, architectures and
#: regions from the reports and INVOKE events, newest version first.
FUNCTION_VERSIONS = (
    """
SELECT
    function_version,
    greatest(sum(invocations), sum(started)) AS invocations,
    max(max_memory_size_mb) AS memory_size_mb,
    min(min_timeout_ms) AS min_timeout_ms,
    max(max_timeout_ms) AS max_timeout_ms,
    groupUniqArrayArray(architectures) AS architectures,
    groupUniqArrayArray(regions) AS regions,
    coalesce(max(last_start_time), toDateTime64(max(minute), 3, 'UTC')) AS last_seen
FROM invocation_minutes"""
    + _MINUTES
    + """
GROUP BY function_version
HAVING invocations > 0
ORDER BY last_seen DESC, function_version DESC
"""
)

#: The environments initialised in the window, by initialization type (on-demand,
#: provisioned-concurrency, snap-start) and phase (init; invoke: an init retried inside the
#: first invocation; restore: SnapStart), with their init durations and runtime versions.
FUNCTION_INITS = """
SELECT
    initialization_type,
    phase,
    count() AS inits,
    countIf(status != 'success' AND status != 'unknown') AS failed,
    quantiles(0.5, 0.99)(init_duration_ms) AS init_quantiles_ms,
    max(init_duration_ms) AS max_init_duration_ms,
    arraySort(groupUniqArrayIf(runtime_version, runtime_version != '')) AS runtime_versions
FROM cold_starts
WHERE function_name = {function_name:String}
    AND start_time >= {since:DateTime64(3, 'UTC')}
    AND start_time < {until:DateTime64(3, 'UTC')}
GROUP BY initialization_type, phase
ORDER BY inits DESC, initialization_type, phase
"""
