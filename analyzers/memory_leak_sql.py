"""SQL of the memory leak detector (:mod:`lambdascope.analyzers.memory_leak`).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (``''``
= every function), ``min_invocations``, ``min_slope_mb``, ``max_points``. Invocations are read
through the collector's ``invocations_between`` view, which reads only the window's parts.

This detector genuinely needs raw rows: a leak is Max Memory Used rising across the warm
invocations of *one execution environment*, in order, and the rollups are per function and
minute (no environment, no order within a minute). The HAVING clause keeps the result to the
environments that could leak, so a healthy fleet returns no rows, but the window's rows are
read.
"""

from __future__ import annotations

from lambdascope.analyzers.function_view_sql import IN_FLIGHT

#: Per execution environment: its warm invocations' Max Memory Used in start order. Only
#: environments that could hold a leak come back (enough warm invocations, a rise of at least
#: half the minimum slope across them, a positive least-squares slope over time), so a healthy
#: fleet returns no rows. ``max_points`` keeps the newest invocations of a long-lived
#: environment, which is where a leak shows.
#: ``max_in_flight`` (the most requests the environment ran at once, as in the function view)
#: tells a Managed Instances environment: there Max Memory Used is the environment's, and its
#: concurrent invocations, ordered by start, are the series.
LEAK_CANDIDATES = f"""
SELECT
    function_name,
    function_version,
    environment_id,
    max(memory_size_mb) AS memory_size_mb,
    count() AS warm_invocations,
    arraySlice(arraySort(groupArray((start_time, request_id,
        toFloat64(assumeNotNull(max_memory_used_mb))))), -{{max_points:UInt32}}) AS points,
    {IN_FLIGHT} AS max_in_flight
FROM invocations_between(
    since = {{since:DateTime64(3, 'UTC')}},
    until = {{until:DateTime64(3, 'UTC')}},
    function_name = {{function_name:String}})
WHERE cold_start = 0
    AND environment_id != ''
    AND max_memory_used_mb IS NOT NULL
GROUP BY function_name, function_version, environment_id
HAVING warm_invocations >= {{min_invocations:UInt32}}
    AND max(max_memory_used_mb) - min(max_memory_used_mb)
        >= {{min_slope_mb:Float64}} * (warm_invocations - 1) / 2
    -- Seconds from the window's start, not epoch milliseconds: with x near 1.8e12 the
    -- regression's sums lose every digit and the slope comes back NaN.
    AND simpleLinearRegression(
        toFloat64(toUnixTimestamp64Milli(start_time)
                  - toUnixTimestamp64Milli({{since:DateTime64(3, 'UTC')}})) / 1000,
        toFloat64(assumeNotNull(max_memory_used_mb))).1 > 0
ORDER BY function_name, function_version, environment_id
"""
