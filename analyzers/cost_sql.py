"""SQL of the cost detector (:mod:`lambdascope.analyzers.cost`).

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (``''``
= every function), ``function_names`` (the functions the detector's rollup screen flagged;
``[]`` = every function, for the cost table); invocations are read through the collector's
``invocations_between`` view, which reads only the window's parts.
"""

from __future__ import annotations

#: Billed usage per function, architecture and region over the window.
#:
#: * ``gb_seconds``: billed duration x memory size. Since 2025-08-01 an on-demand cold start's
#:   billed duration already includes the init (``ceil(duration + init)``), so init is never
#:   added again; ``init_gb_seconds`` is the part of it that paid for inits (0 where the
#:   billed duration does not cover the init, as before that date or with provisioned
#:   concurrency).
#: * ``post_runtime_gb_seconds``: billed time after the runtime finished (billed - init -
#:   runtimeDone duration), i.e. extensions working after the response, over the invocations
#:   where runtimeDone arrived (``gb_seconds_with_runtime_done``).
COST = """
SELECT
    function_name,
    architecture,
    region,
    count() AS invocations,
    countIf(billed_duration_ms IS NOT NULL) AS billed_invocations,
    countIf(cold_start = 1) AS cold_starts,
    sum(billed_ms / 1000) AS billed_seconds,
    sum(billed_ms / 1000 * memory_gb) AS gb_seconds,
    sum(if(billed_ms + 1 >= coalesce(duration_ms, 0) + coalesce(init_duration_ms, 0),
           coalesce(init_duration_ms, 0), 0) / 1000 * memory_gb) AS init_gb_seconds,
    sumIf(greatest(billed_ms - coalesce(init_duration_ms, 0)
                   - assumeNotNull(runtime_done_duration_ms), 0) / 1000 * memory_gb,
          runtime_done_duration_ms IS NOT NULL) AS post_runtime_gb_seconds,
    sumIf(billed_ms / 1000 * memory_gb, runtime_done_duration_ms IS NOT NULL)
        AS gb_seconds_with_runtime_done,
    max(memory_size_mb) AS largest_memory_size_mb,
    quantile(0.99)(max_memory_used_mb) AS p99_memory_used_mb,
    max(max_memory_used_mb) AS peak_memory_used_mb
FROM (
    SELECT
        function_name,
        if(architecture = '', 'x86_64', architecture) AS architecture,
        region,
        billed_duration_ms,
        coalesce(billed_duration_ms, 0) AS billed_ms,
        coalesce(memory_size_mb, 0) / 1024 AS memory_gb,
        duration_ms,
        init_duration_ms,
        cold_start,
        runtime_done_duration_ms,
        memory_size_mb,
        max_memory_used_mb
    FROM invocations_between(
        since = {since:DateTime64(3, 'UTC')},
        until = {until:DateTime64(3, 'UTC')},
        function_name = {function_name:String})
    -- every function (the cost table), or those the detector's screen flagged
    WHERE empty({function_names:Array(String)}) OR function_name IN {function_names:Array(String)}
)
GROUP BY function_name, architecture, region
ORDER BY function_name, architecture, region
"""

#: Day over day from the per-minute rollups (no raw rows): billed milliseconds and requests in
#: the 24 hours before ``until`` and in the 24 hours before that, per function and version.
DAY_OVER_DAY = """
SELECT
    function_name,
    sumIf(billed_duration_ms_sum, minute >= {until:DateTime64(3, 'UTC')} - INTERVAL 1 DAY)
        AS today_billed_ms,
    sumIf(invocations, minute >= {until:DateTime64(3, 'UTC')} - INTERVAL 1 DAY)
        AS today_invocations,
    sumIf(billed_duration_ms_sum, minute < {until:DateTime64(3, 'UTC')} - INTERVAL 1 DAY)
        AS yesterday_billed_ms,
    sumIf(invocations, minute < {until:DateTime64(3, 'UTC')} - INTERVAL 1 DAY)
        AS yesterday_invocations
FROM invocation_minutes
WHERE minute >= {until:DateTime64(3, 'UTC')} - INTERVAL 2 DAY
    AND minute < {until:DateTime64(3, 'UTC')}
    AND has({function_names:Array(String)}, function_name)
GROUP BY function_name
ORDER BY function_name
"""
