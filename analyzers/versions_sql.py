"""SQL of the version regression detector (:mod:`lambdascope.analyzers.versions`).

Parameters: ``since``/``until`` (the window; ``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``previous``
(the start of the window before it), ``function_name`` (``''`` = every function),
``max_evidence``, ``function_names`` (the functions the rollup screen flagged). Invocations
are read through the collector's ``invocations_between`` view, which reads only the window's
parts.

The raw rows are genuinely needed here: the comparison covers error types (a new one is the
strongest signal) and p95s of one version against another, and the rollups keep neither error
types nor quantiles a version pair can be compared on exactly. The screen (two versions, each
with enough invocations in the rollups) keeps every function that deployed nothing out.
"""

from __future__ import annotations

#: Per function version over the window and the one before it, for functions that ran more
#: than one version there: traffic, init and duration p95, peak memory, billed GB-s per
#: invocation, failures by error type (the status when Lambda gave no type), and evidence (the
#: slowest requests; the failed ones, oldest first).
VERSIONS = """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    countIf(start_time >= {since:DateTime64(3, 'UTC')}) AS invocations_in_window,
    min(start_time) AS first_seen,
    countIf(cold_start = 1) AS cold_starts,
    quantileIf(0.95)(init_duration_ms, cold_start = 1) AS init_p95_ms,
    quantile(0.95)(duration_ms) AS duration_p95_ms,
    max(max_memory_used_mb) AS peak_memory_used_mb,
    max(memory_size_mb) AS largest_memory_size_mb,
    if(any(architecture) = '', 'x86_64', any(architecture)) AS arch,
    any(region) AS region_name,
    sum(coalesce(billed_duration_ms, 0) / 1000 * coalesce(memory_size_mb, 0) / 1024) / count()
        AS gb_seconds_per_invocation,
    countIf(status IN ('error', 'failure', 'timeout')) AS failures,
    sumMapIf([if(error_type = '', status, error_type)], [toUInt64(1)],
             status IN ('error', 'failure', 'timeout')) AS failure_types,
    arrayMap(x -> x.2, groupArraySorted({max_evidence:UInt32})(
        (-assumeNotNull(duration_ms), request_id))) AS slowest_request_ids,
    arrayMap(x -> (x.2, x.3), groupArraySortedIf({max_evidence:UInt32})(
        (start_time, toString(if(error_type = '', status, error_type)), request_id),
        status IN ('error', 'failure', 'timeout'))) AS failed_requests
FROM invocations_between(
    since = {previous:DateTime64(3, 'UTC')},
    until = {until:DateTime64(3, 'UTC')},
    function_name = {function_name:String})
WHERE function_name IN {function_names:Array(String)}
    AND function_name IN (
        SELECT function_name FROM invocations_between(
            since = {previous:DateTime64(3, 'UTC')},
            until = {until:DateTime64(3, 'UTC')},
            function_name = {function_name:String})
        WHERE function_name IN {function_names:Array(String)}
        GROUP BY function_name
        HAVING uniqExact(function_version) > 1
    )
GROUP BY function_name, function_version
ORDER BY function_name, first_seen, function_version
"""
