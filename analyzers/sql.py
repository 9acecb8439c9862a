"""Every SQL statement the analyzers and the TUI run, in one place.

All values are bound server-side with ClickHouse ``{name:Type}`` placeholders; nothing is
formatted into the text. Statements read the per-minute rollups (``invocation_minutes``) where
they answer the question (the fleet table, the report's series, the detectors' screen), and the
contract's ``invocations`` rows (through the collector's windowed ``invocations_between`` view)
and ``logs`` table (docs/architecture.md §2) only for what rollups cannot say, so the same SQL
runs through ``CollectorQueryClient`` and ``DirectQueryClient``.

Common parameters:

* ``since`` / ``until``: the window, as ``'YYYY-MM-DD HH:MM:SS.fff'`` UTC text (see
  :func:`window.window_parameters`); ISO text with ``T`` and an offset does not bind.
* ``function_name``: ``''`` means every function.
* ``function_names``: the functions a detector's screen flagged (raw reads only).
"""

from __future__ import annotations

# The window's invocations: the collector's `invocations_between` view holds the same rows as
# `invocations` filtered on start_time and the optional function selector, but reads only the
# parts whose event time can belong to the window (collector/README.md), instead of merging
# every stored invocation before filtering.
WINDOW_INVOCATIONS = """ invocations_between(
        since = {since:DateTime64(3, 'UTC')},
        until = {until:DateTime64(3, 'UTC')},
        function_name = {function_name:String})"""

#: The columns of one invocation as the readers show it (analyzers/fleet.py invocation_row).
INVOCATION_COLUMNS = """
    request_id,
    function_name,
    function_version,
    environment_id,
    start_time,
    duration_ms,
    billed_duration_ms,
    status,
    error_type,
    init_duration_ms,
    cold_start,
    max_memory_used_mb,
    memory_size_mb,
    timeout_ms"""

# Detectors screen with the per-minute rollups first (analyzers/rollups.py) and read the
# window's raw rows only for the functions the screen flagged: the filter on the view's
# grouping key reaches the parts_by_time projection, so only those functions' parts are read.
_FLAGGED = """
WHERE function_name IN {function_names:Array(String)}"""

#: Timeouts, near-timeouts and the configured limit, one row per function and version.
#: Evidence arrays are ordered (timeouts by start time, near misses by duration, longest first)
#: and capped at ``max_evidence`` so a storm of timeouts cannot make a huge result.
TIMEOUTS = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    countIf(status = 'timeout') AS timeouts,
    countIf(status = 'timeout' AND cold_start = 1) AS cold_start_timeouts,
    countIf(cold_start = 1) AS cold_starts,
    countIf(status = 'timeout' AND memory_size_mb > 0
            AND max_memory_used_mb >= memory_size_mb) AS timeouts_at_memory_limit,
    max(timeout_ms) AS configured_timeout_ms,
    quantileIf(0.99)(duration_ms, status != 'timeout') AS p99_duration_ms,
    maxIf(duration_ms, status != 'timeout') AS max_duration_ms,
    countIf(status != 'timeout' AND timeout_ms > 0
            AND duration_ms >= {near_share:Float64} * timeout_ms) AS near_timeouts,
    arraySlice(
        arrayMap(x -> x.2, arraySort(groupArrayIf((start_time, request_id), status = 'timeout'))),
        1, {max_evidence:UInt32}) AS timeout_request_ids,
    arraySlice(
        arrayMap(x -> x.3, arraySort(x -> (-x.1, x.2), groupArrayIf(
            (assumeNotNull(duration_ms), start_time, request_id),
            status != 'timeout' AND timeout_ms > 0
            AND duration_ms >= {near_share:Float64} * timeout_ms))),
        1, {max_evidence:UInt32}) AS near_timeout_request_ids
FROM"""
    + WINDOW_INVOCATIONS
    + _FLAGGED
    + """
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

#: The configured timeout as Lambda printed it ("Task timed out after 3.00 seconds"), for
#: invocations whose INVOKE event (and so ``timeout_ms``) never reached the collector.
TIMEOUT_FROM_LOGS = """
SELECT
    function_name,
    function_version,
    max(toFloat64OrNull(extract(message, 'Task timed out after ([0-9.]+) seconds'))) * 1000
        AS timeout_ms
FROM logs
WHERE timestamp >= {since:DateTime64(3, 'UTC')}
    -- the line comes at the deadline, up to Lambda's 15-minute maximum after the start
    AND timestamp < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
    AND has({function_names:Array(String)}, function_name)
    AND position(message, 'Task timed out after') > 0
GROUP BY function_name, function_version
"""

#: Log lines that betray an out-of-memory kill, whatever the runtime (docs: lambda-apis.md §6).
OOM_LOG_PATTERN = (
    "MemoryError|JavaScript heap out of memory|java\\.lang\\.OutOfMemoryError"
    "|fatal error: runtime: out of memory|Runtime exited with error: signal: killed"
    "|Runtime\\.OutOfMemory"
)

#: Memory pressure per function and version. A request is an OOM when a signal of a kill holds
#: (errorType Runtime.OutOfMemory, an OOM log line, or max used == size on a request that
#: failed or timed out); the IN subquery makes each request count once however many signals it
#: shows. ``memory_used_pct_p95`` is the headroom: Max Memory Used as a share of the size.
MEMORY = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    max(memory_size_mb) AS largest_memory_size_mb,
    max(max_memory_used_mb) AS peak_memory_used_mb,
    quantileIf(0.95)(max_memory_used_mb * 100.0 / memory_size_mb, memory_size_mb > 0)
        AS memory_used_pct_p95,
    countIf(NOT is_oom AND memory_size_mb > 0
            AND max_memory_used_mb >= {high_share:Float64} * memory_size_mb) AS high_memory,
    countIf(NOT is_oom AND memory_size_mb > 0 AND max_memory_used_mb >= memory_size_mb)
        AS succeeded_at_limit,
    countIf(is_oom) AS ooms,
    countIf(is_oom AND error_type = 'Runtime.OutOfMemory') AS oom_error_type,
    countIf(is_oom AND at_limit) AS oom_at_limit,
    countIf(is_oom AND has_oom_line) AS oom_log_line,
    countIf(is_oom AND status = 'timeout') AS oom_reported_as_timeout,
    arraySlice(arrayMap(x -> x.2, arraySort(groupArrayIf((start_time, request_id), is_oom))),
        1, {max_evidence:UInt32}) AS oom_request_ids,
    arraySlice(arrayMap(x -> x.3, arraySort(x -> (-x.1, x.2), groupArrayIf(
            (toInt64(assumeNotNull(max_memory_used_mb)), start_time, request_id),
            NOT is_oom AND memory_size_mb > 0
            AND max_memory_used_mb >= {high_share:Float64} * memory_size_mb))),
        1, {max_evidence:UInt32}) AS high_memory_request_ids
FROM (
    SELECT
        function_name,
        function_version,
        request_id,
        start_time,
        status,
        error_type,
        memory_size_mb,
        max_memory_used_mb,
        request_id IN (
            SELECT request_id FROM logs
            WHERE timestamp >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
                AND timestamp < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
                AND function_name IN {function_names:Array(String)}
                AND request_id != ''
                AND match(message, {oom_pattern:String})
        ) AS has_oom_line,
        coalesce(memory_size_mb > 0 AND max_memory_used_mb >= memory_size_mb, 0) AS at_limit,
        -- A kill shows as its error type, a runtime's out-of-memory line, or the limit reached
        -- by an invocation that failed or timed out; one that succeeded at the limit was not
        -- killed (Lambda never lets one succeed above its size): that is high memory.
        (error_type = 'Runtime.OutOfMemory'
         OR has_oom_line
         OR (at_limit AND status != 'success')) AS is_oom
    FROM"""
    + WINDOW_INVOCATIONS
    + _FLAGGED
    + """
)
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

#: Cold starts per function and version: the ones users felt, their rate, init percentiles and
#: phases. An invocation that carries an init is a felt cold start unless its environment was
#: initialised for provisioned concurrency (or restored from a SnapStart snapshot) or
#: proactively: Lambda initialised it ahead of demand and it then waited idle, more than 10 s
#: between the end of its init and its first request (Datadog's rule; ``cold_starts.proactive``).
#: Phases come from the environment's init events (collector ``cold_starts`` view). Evidence is
#: the slowest felt inits first (then the oldest).
COLD_STARTS = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    countIf(felt) AS cold_starts,
    countIf(cold_start = 1 AND proactive) AS proactive_inits,
    countIf(cold_start = 1 AND NOT on_demand) AS ahead_of_demand_inits,
    quantilesIf(0.5, 0.95, 0.99)(init_duration_ms, felt) AS init_quantiles_ms,
    maxIf(init_duration_ms, felt) AS max_init_duration_ms,
    quantileIf(0.5)(assumeNotNull(runtime_init_ms), felt AND runtime_init_ms IS NOT NULL)
        AS runtime_init_p50_ms,
    quantileIf(0.5)(assumeNotNull(extensions_after_runtime_ms),
        felt AND extensions_after_runtime_ms IS NOT NULL) AS extensions_after_runtime_p50_ms,
    quantileIf(0.5)(assumeNotNull(extensions_before_runtime_ms),
        felt AND extensions_before_runtime_ms IS NOT NULL) AS extensions_before_runtime_p50_ms,
    quantileIf(0.5)(assumeNotNull(runtime_and_function_ms),
        felt AND runtime_and_function_ms IS NOT NULL) AS runtime_and_function_p50_ms,
    countIf(felt AND runtime_and_function_ms IS NOT NULL) AS inits_with_runtime_start,
    countIf(felt AND runtime_init_ms IS NOT NULL) AS inits_with_phases,
    arraySlice(arrayMap(x -> x.3, arraySort(x -> (-x.1, x.2), groupArrayIf(
            (assumeNotNull(init_duration_ms), start_time, request_id), felt))),
        1, {max_evidence:UInt32}) AS cold_start_request_ids
FROM (
    SELECT
        i.function_name AS function_name,
        i.function_version AS function_version,
        i.request_id AS request_id,
        i.start_time AS start_time,
        i.cold_start AS cold_start,
        i.init_duration_ms AS init_duration_ms,
        c.runtime_init_ms AS runtime_init_ms,
        c.extensions_after_runtime_ms AS extensions_after_runtime_ms,
        c.extensions_before_runtime_ms AS extensions_before_runtime_ms,
        c.runtime_init_ms - c.extensions_before_runtime_ms AS runtime_and_function_ms,
        c.initialization_type IN ('on-demand', '') AS on_demand,
        c.proactive = 1 AS proactive,
        i.cold_start = 1 AND on_demand AND NOT proactive AS felt
    FROM (
        SELECT function_name, function_version, environment_id, request_id, start_time,
               cold_start, init_duration_ms
        FROM"""
    + WINDOW_INVOCATIONS
    + _FLAGGED
    + """
    ) AS i
    LEFT JOIN (
        SELECT
            cs.function_name AS function_name,
            cs.environment_id AS environment_id,
            any(cs.initialization_type) AS initialization_type,
            any(cs.runtime_init_ms) AS runtime_init_ms,
            any(cs.extensions_after_runtime_ms) AS extensions_after_runtime_ms,
            max(cs.proactive) AS proactive,
            -- The extensions' start before the runtime's, where the lambdascope extension
            -- saw the runtime process start (within the init, else the clocks disagree).
            any(if(cs.has_init_start = 1 AND cs.runtime_done_time IS NOT NULL
                    AND rs.first_runtime_start >= cs.start_time
                    AND rs.first_runtime_start <= cs.runtime_done_time,
                toFloat64(toUnixTimestamp64Milli(rs.first_runtime_start)
                          - toUnixTimestamp64Milli(cs.start_time)),
                NULL)) AS extensions_before_runtime_ms
        FROM cold_starts AS cs
        LEFT JOIN (
            SELECT function_name, environment_id, min(runtime_started_at) AS first_runtime_start
            FROM extension_stats
            WHERE function_name IN {function_names:Array(String)}
                AND time >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 DAY
                AND time < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
                AND runtime_started_at IS NOT NULL
            GROUP BY function_name, environment_id
        ) AS rs ON cs.function_name = rs.function_name AND cs.environment_id = rs.environment_id
        WHERE cs.function_name IN {function_names:Array(String)}
            AND cs.phase = 'init'
            -- an environment lives for hours at most: its init is no older than a day
            AND cs.start_time >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 DAY
            AND cs.start_time < {until:DateTime64(3, 'UTC')}
        GROUP BY cs.function_name, cs.environment_id
    ) AS c ON i.function_name = c.function_name AND i.environment_id = c.environment_id
)
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

# The window of a rollup read: the minutes that overlap [since, until). A rollup cannot split
# a minute, so the fleet table and the report's charts count whole minutes.
_MINUTES = """
WHERE minute >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND minute < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})"""

# What the fleet table and its time series sum from the rollups, per function (and bucket).
_ROLLUP_FIGURES = """
        sum(invocations) AS reported,
        sum(started) AS started_parts,
        sum(errors) AS errors,
        sum(timeouts) AS timeouts,
        sum(cold_starts) AS cold_starts,
        quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles) AS quantiles,
        max(max_memory_used_pct) AS max_memory_pct"""

#: The fleet table: one row per function over the window, from the per-minute rollups alone
#: (collector/README.md, ``invocation_minutes``). Reported invocations carry the status,
#: durations and memory; ``started - reported`` are the invocations whose report never came
#: (``unreported``), counted in ``invocations`` too.
FLEET = (
    """
SELECT
    function_name,
    greatest(reported, started_parts) AS invocations,
    toUInt64(greatest(toInt64(started_parts) - toInt64(reported), 0)) AS unreported,
    errors,
    timeouts,
    cold_starts,
    [quantiles[1], quantiles[3]] AS duration_quantiles_ms,
    max_memory_pct,
    memory_pct_quantiles[2] AS memory_pct_p95,
    max_init_ms,
    last_seen
FROM (
    SELECT
        function_name,
"""
    + _ROLLUP_FIGURES
    + """,
        -- the rollups keep the slowest init of each minute, not its distribution
        max(max_init_duration_ms) AS max_init_ms,
        quantilesMerge(0.5, 0.95)(memory_used_pct_quantiles) AS memory_pct_quantiles,
        -- the last platform.start; without start events, the last minute with a report
        coalesce(max(last_start_time),
                 toDateTime64(maxIf(minute, invocations > 0), 3, 'UTC')) AS last_seen
    FROM invocation_minutes"""
    + _MINUTES
    + """
    GROUP BY function_name
)
WHERE invocations > 0
ORDER BY function_name
"""
)

#: The fleet table's trend and cost, per function and bucket of whole minutes, from the
#: per-minute rollups alone: the p99 duration of each bucket (bucket 0 starts at the window's
#: first minute; ``bucket_s`` is a multiple of 60), and what Lambda bills for it: requests
#: (started or reported, as the table counts invocations), billed GB-seconds and seconds, with
#: the memory sizes, architectures and regions that price them (analyzers/cost.py).
FLEET_TRENDS = (
    """
SELECT
    function_name,
    intDiv(dateDiff('second', toStartOfMinute({since:DateTime64(3, 'UTC')}), minute),
           {bucket_s:UInt32}) AS bucket,
    quantilesMerge(0.5, 0.9, 0.99)(duration_ms_quantiles)[3] AS p99_duration_ms,
    greatest(sum(invocations), sum(started)) AS requests,
    sum(billed_gb_seconds) AS billed_gb_seconds,
    sum(billed_duration_ms_sum) / 1000 AS billed_seconds,
    max(max_memory_size_mb) AS memory_size_mb,
    groupUniqArrayArray(architectures) AS architectures,
    groupUniqArrayArray(regions) AS regions
FROM invocation_minutes"""
    + _MINUTES
    + """
GROUP BY function_name, bucket
ORDER BY function_name, bucket
"""
)

#: The fleet table's init p95, per function: the p95 init duration of the on-demand
#: initializations that started in the window (``cold_starts``, one row per environment and
#: phase, so few rows). Provisioned-concurrency inits and SnapStart restores happen before any
#: request arrives, so no request waits for them; they are left out. ``initialization_type``
#: is empty when the platform did not say, which is on-demand (Lambda's default).
FLEET_INIT_P95 = """
SELECT
    function_name,
    quantile(0.95)(init_duration_ms) AS init_p95_ms
FROM cold_starts
WHERE start_time >= {since:DateTime64(3, 'UTC')}
    AND start_time < {until:DateTime64(3, 'UTC')}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND initialization_type IN ('on-demand', '')
    AND phase != 'restore'
    AND init_duration_ms IS NOT NULL
GROUP BY function_name
ORDER BY function_name
"""

#: The fleet table's throttles, per function: the sum of the Throttles metric over the window's
#: whole minutes, from the CloudWatch metric-stream points the throttles detector reads
#: (analyzers/throttles_sql.py): the ``{FunctionName}`` dimension set only, so nothing counts
#: twice. A function is listed when the stream sent any of its points in the window, so a
#: function without a row has no metric stream here (unknown), not zero throttles.
FLEET_THROTTLES = """
SELECT
    function_name,
    sumIf(value_sum, metric_name = 'Throttles') AS throttles
FROM cloudwatch_metrics
WHERE namespace = 'AWS/Lambda'
    AND metric_name IN ('Throttles', 'Invocations', 'ConcurrentExecutions')
    AND timestamp >= toStartOfMinute({since:DateTime64(3, 'UTC')})
    AND timestamp < {until:DateTime64(3, 'UTC')}
    AND function_name != ''
    AND resource = ''
    AND NOT mapContains(dimensions, 'ExecutedVersion')
    AND ({function_name:String} = '' OR function_name = {function_name:String})
GROUP BY function_name
ORDER BY function_name
"""

#: The detectors' screen (analyzers/rollups.py): per function and version, what the rollups
#: say about the window, as bounds. ``outer_*`` is the window widened to whole minutes and a
#: minute of margin (an invocation's rollup minute comes from its report when its start event
#: is missing), so counts, maxima and minima there bound the window's from above (below for
#: the minimum); ``inner_*`` is narrowed the same way, so the invocations counted there are
#: certainly in the window (a lower bound for rates). ``late_until`` reaches Lambda's
#: 15-minute limit (and a minute) past the window, for the timeouts only a late log line shows.
SCREEN = """
SELECT
    function_name,
    function_version,
    sumIf(invocations, outer_minute) AS reported_parts,
    sumIf(started, outer_minute) AS started_parts,
    greatest(sumIf(invocations, inner_minute), sumIf(started, inner_minute)) AS invocations_min,
    sumIf(errors, outer_minute) + sumIf(unreported_errors, outer_minute) AS errors_max,
    -- a timeout known only from its "Task timed out" line sits in the minute its part arrived,
    -- up to Lambda's 15-minute limit after the start: those count until the late bound
    sumIf(timeouts, outer_minute) + sum(unreported_timeouts) AS timeouts_max,
    sumIf(cold_starts, outer_minute) AS cold_starts_max,
    sumIf(oom_errors, outer_minute) AS oom_errors_max,
    maxIf(max_memory_used_pct, outer_minute) AS max_memory_used_pct,
    greatest(maxIf(max_duration_ms, outer_minute),
             coalesce(maxIf(max_unreported_duration_ms, outer_minute), 0)) AS max_duration_ms,
    minIf(min_timeout_ms, outer_minute) AS min_timeout_ms,
    maxIf(max_timeout_ms, outer_minute) AS max_timeout_ms,
    maxIf(max_init_duration_ms, outer_minute) AS max_init_duration_ms,
    sumIf(billed_gb_seconds, outer_minute) AS billed_gb_seconds_max,
    sumIf(billed_gb_seconds, inner_minute) AS billed_gb_seconds_min,
    sumIf(billed_duration_ms_sum, outer_minute) / 1000 AS billed_seconds,
    maxIf(max_memory_size_mb, outer_minute) AS memory_size_mb_max,
    maxIf(max_memory_size_mb, inner_minute) AS memory_size_mb_min,
    maxIf(max_memory_used_mb, inner_minute) AS peak_memory_used_mb_min,
    groupUniqArrayArrayIf(architectures, outer_minute) AS architecture_set,
    groupUniqArrayArrayIf(regions, outer_minute) AS region_set
FROM (
    SELECT
        *,
        minute < {outer_until:DateTime64(3, 'UTC')} AS outer_minute,
        minute >= {inner_since:DateTime64(3, 'UTC')}
            AND minute < {inner_until:DateTime64(3, 'UTC')} AS inner_minute
    FROM invocation_minutes
    WHERE minute >= {outer_since:DateTime64(3, 'UTC')}
        AND minute < {late_until:DateTime64(3, 'UTC')}
        AND ({function_name:String} = '' OR function_name = {function_name:String})
)
GROUP BY function_name, function_version
HAVING countIf(outer_minute) > 0 OR timeouts_max > 0
ORDER BY function_name, function_version
"""

#: Functions with an out-of-memory log line in the window (the third OOM signal): log lines
#: have no rollup, so this reads the window's lines (the logs table is ordered by function
#: and time), never invocation rows.
OOM_LOG_FUNCTIONS = """
SELECT DISTINCT function_name
FROM logs
WHERE timestamp >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
    AND timestamp < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND request_id != ''
    AND match(message, {oom_pattern:String})
ORDER BY function_name
"""

#: A finding's evidence: the invocations behind its request ids.
INVOCATIONS_BY_REQUEST_IDS = (
    "\nSELECT"
    + INVOCATION_COLUMNS
    + "\nFROM"
    + WINDOW_INVOCATIONS
    + """
WHERE has({request_ids:Array(String)}, request_id)
ORDER BY start_time, request_id
LIMIT {limit:UInt32}
"""
)

#: One request's log lines in time order. The time bounds (start minus a minute, start plus
#: Lambda's 15-minute maximum timeout and a minute) let the store prune by time.
REQUEST_LOGS = """
SELECT timestamp, stream, level, message
FROM logs
WHERE request_id = {request_id:String}
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND timestamp >= {start:DateTime64(3, 'UTC')} - INTERVAL 1 MINUTE
    AND timestamp < {start:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
ORDER BY timestamp
LIMIT {limit:UInt32}
"""

#: Per-minute series for the HTML report, from the per-minute rollups (buckets of whole
#: minutes, ``bucket_s`` a multiple of 60).
TIMESERIES = (
    """
SELECT
    function_name,
    bucket,
    greatest(reported, started_parts) AS invocations,
    errors,
    timeouts,
    cold_starts,
    [quantiles[1], quantiles[3]] AS duration_quantiles_ms,
    max_memory_pct
FROM (
    SELECT
        function_name,
        toStartOfInterval(minute, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
"""
    + _ROLLUP_FIGURES
    + """
    FROM invocation_minutes"""
    + _MINUTES
    + """
    GROUP BY function_name, bucket
)
WHERE invocations > 0
ORDER BY function_name, bucket
"""
)

#: Invocations that failed (status error or failure), per function and version, leaving out
#: out-of-memory kills (the memory detector reports those) and timeouts (their own detector).
_FAILED = """status IN ('error', 'failure')
            AND error_type != 'Runtime.OutOfMemory'
            AND NOT (memory_size_mb > 0 AND max_memory_used_mb >= memory_size_mb)"""

ERRORS = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    countIf("""
    + _FAILED
    + """) AS errors,
    arraySlice(
        arrayMap(x -> x.2, arraySort(groupArrayIf((start_time, request_id), """
    + _FAILED
    + """))),
        1, {max_evidence:UInt32}) AS error_request_ids
FROM"""
    + WINDOW_INVOCATIONS
    + _FLAGGED
    + """
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

#: The error types behind :data:`ERRORS`, most frequent first.
ERROR_TYPES = (
    """
SELECT
    function_name,
    function_version,
    if(error_type = '', 'unknown', error_type) AS error_type,
    count() AS errors
FROM"""
    + WINDOW_INVOCATIONS
    + _FLAGGED
    + """
    AND """
    + _FAILED
    + """
GROUP BY function_name, function_version, error_type
ORDER BY function_name, function_version, errors DESC, error_type
LIMIT {max_types:UInt32} BY function_name, function_version
"""
)

# The extension's own figures (collector/README.md, `extension_stats`): one row per environment
# per flush, its counters totals since the extension process started, and one environment_id
# per process. So what an environment dropped in the window is its newest totals in the window
# minus its newest totals before it: the rows from ``baseline_since`` (a day before the window)
# to ``since`` are read for that, and only for the environments seen in the window (the table's
# key starts with function_name, environment_id, so the set prunes the rest). GLOBAL: on a
# sharded store the set is built once and sent to the shards (a plain IN over two Distributed
# tables is refused there); on one server it is a plain IN.
#
# An environment went silent without a final flush when it sent no batch marked `final` and
# its newest batch in the window is older than ``silent_before`` (the window's end minus the
# silence threshold): its sandbox was killed, or its collector unreachable through SHUTDOWN, or
# it was frozen and reclaimed. One still sending (newer than ``silent_before``) is open, and may
# hold its last invocation's report until its next invocation or SHUTDOWN.
#
# Why a query and not a view of the collector: a view over every environment would aggregate
# the whole retention at every read, and the window, the baseline and the silence threshold are
# parameters of the analysis, which a plain view cannot take.
_EXTENSION_ENVIRONMENTS = """
    SELECT
        function_name,
        environment_id,
        maxIf(time, in_window) AS last_seen,
        maxIf(final, in_window) AS final_seen,
        mapFilter((reason, events) -> events > 0, mapSubtract(
            mapApply((reason, events) -> (reason, toInt64(events)),
                maxMapIf(events_dropped, in_window)),
            mapApply((reason, events) -> (reason, toInt64(events)),
                maxMapIf(events_dropped, NOT in_window)))) AS dropped_by_reason,
        greatest(toInt64(maxIf(events_dropped_total, in_window))
            - toInt64(maxIf(events_dropped_total, NOT in_window)), 0) AS dropped,
        greatest(toInt64(maxIf(events_received, in_window))
            - toInt64(maxIf(events_received, NOT in_window)), 0) AS received,
        maxIf(shutdown_events_unsent, in_window AND final = 1) AS unsent_at_shutdown
    FROM (
        SELECT
            function_name,
            environment_id,
            time,
            final,
            events_dropped,
            events_dropped_total,
            events_received,
            shutdown_events_unsent,
            time >= {since:DateTime64(3, 'UTC')} AS in_window
        FROM extension_stats
        WHERE time >= {baseline_since:DateTime64(3, 'UTC')}
            AND time < {until:DateTime64(3, 'UTC')}
            AND ({function_name:String} = '' OR function_name = {function_name:String})
            AND (function_name, environment_id) GLOBAL IN (
                SELECT function_name, environment_id
                FROM extension_stats
                WHERE time >= {since:DateTime64(3, 'UTC')}
                    AND time < {until:DateTime64(3, 'UTC')}
                    AND ({function_name:String} = '' OR function_name = {function_name:String})
            )
    )
    GROUP BY function_name, environment_id"""

#: Per function over the window: its environments (silent, open), the events the extension
#: dropped (by reason, and in all), the events it received, and the events its final flushes
#: could not send before the final batch. For the ``data_completeness`` detector and the fleet.
EXTENSION_DELIVERY = (
    """
SELECT
    function_name,
    count() AS environments,
    countIf(final_seen = 0 AND last_seen < {silent_before:DateTime64(3, 'UTC')})
        AS silent_environments,
    countIf(final_seen = 0 AND last_seen >= {silent_before:DateTime64(3, 'UTC')})
        AS open_environments,
    sumMap(dropped_by_reason) AS events_dropped,
    sum(dropped) AS events_dropped_total,
    sum(received) AS events_received,
    sum(unsent_at_shutdown) AS shutdown_events_unsent
FROM ("""
    + _EXTENSION_ENVIRONMENTS
    + """
)
GROUP BY function_name
ORDER BY function_name
"""
)

#: Per function over the window's minutes (the rollups): invocations (started or reported) and
#: those whose report never came (``started - reported``).
UNREPORTED_INVOCATIONS = (
    """
SELECT
    function_name,
    greatest(reported, started_parts) AS invocations,
    toUInt64(greatest(toInt64(started_parts) - toInt64(reported), 0)) AS unreported
FROM (
    SELECT function_name, sum(invocations) AS reported, sum(started) AS started_parts
    FROM invocation_minutes"""
    + _MINUTES
    + """
    GROUP BY function_name
)
WHERE invocations > 0
ORDER BY function_name
"""
)

#: The extension's cost per function over the window's batches: start-up p95 over its
#: environments (one figure each), post-runtime time per invocation p95 (each batch's interval
#: stands for its invocations: the growth of ``post_runtime_ms_total`` over the INVOKE events
#: since the environment's previous batch, weighted by them; the first batch of an environment
#: in the window counts from its start), and the peak memory of its largest environment.
EXTENSION_OVERHEAD = """
SELECT
    function_name,
    uniqExact(environment_id) AS environments,
    quantileExactIf(0.95)(assumeNotNull(startup_ms), first_row AND startup_ms IS NOT NULL)
        AS startup_ms_p95,
    max(startup_ms) AS startup_ms_max,
    sum(invokes) AS invocations,
    quantileExactWeightedIf(0.95)(post_runtime_ms, invokes, invokes > 0) AS post_runtime_ms_p95,
    max(longest_flush_ms) AS post_runtime_ms_max,
    max(peak_rss_mb) AS peak_rss_mb_max
FROM (
    SELECT
        function_name,
        environment_id,
        startup_ms,
        peak_rss_mb,
        post_runtime_ms_max AS longest_flush_ms,
        row_number() OVER environment = 1 AS first_row,
        toUInt64(greatest(toInt64(invoke_events)
            - toInt64(lagInFrame(invoke_events, 1, 0) OVER environment), 0)) AS invokes,
        greatest(coalesce(post_runtime_ms_total, 0)
            - lagInFrame(coalesce(post_runtime_ms_total, 0), 1, 0) OVER environment, 0)
            / greatest(invokes, 1) AS post_runtime_ms
    FROM extension_stats
    WHERE time >= {since:DateTime64(3, 'UTC')}
        AND time < {until:DateTime64(3, 'UTC')}
        AND ({function_name:String} = '' OR function_name = {function_name:String})
    WINDOW environment AS (
        PARTITION BY function_name, environment_id
        ORDER BY time, invoke_events, post_runtime_ms_total
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
GROUP BY function_name
ORDER BY function_name
"""

#: The lambdascope extension's own start-up per function (process start to its first `next`,
#: one figure per environment): its share of the extensions' part of a cold start.
COLD_START_OWN_STARTUP = """
SELECT
    function_name,
    quantile(0.5)(assumeNotNull(startup_ms)) AS own_startup_p50_ms
FROM extension_stats
WHERE time >= {since:DateTime64(3, 'UTC')} - INTERVAL 1 DAY
    AND time < {until:DateTime64(3, 'UTC')} + INTERVAL 16 MINUTE
    AND function_name IN {function_names:Array(String)}
    AND startup_ms IS NOT NULL
GROUP BY function_name
ORDER BY function_name
"""
