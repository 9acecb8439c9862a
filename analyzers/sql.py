"""Every SQL statement the analyzers and the TUI run, in one place.

All values are bound server-side with ClickHouse ``{name:Type}`` placeholders; nothing is
formatted into the text. Every statement reads the contract's ``invocations`` rows (through the
collector's windowed ``invocations_between`` view) and ``logs`` table (docs/architecture.md §2)
and nothing else, so the same SQL runs through ``CollectorQueryClient`` and
``DirectQueryClient``.

Common parameters:

* ``since`` / ``until``: the window, as ``'YYYY-MM-DD HH:MM:SS.fff'`` UTC text (see
  :func:`analyzers.window.window_parameters`); ISO text with ``T`` and an offset does not bind.
* ``function_name``: ``''`` means every function.
"""

from __future__ import annotations

# The window's invocations: the collector's `invocations_between` view holds the same rows as
# `invocations` filtered on start_time and the optional function selector, but reads only the
# parts whose event time can belong to the window (collector/README.md), instead of merging
# every stored invocation before filtering.
_WINDOW = """ invocations_between(
        since = {since:DateTime64(3, 'UTC')},
        until = {until:DateTime64(3, 'UTC')},
        function_name = {function_name:String})"""

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
    + _WINDOW
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

#: Memory pressure per function and version. A request is an OOM when any of the three signals
#: holds (errorType Runtime.OutOfMemory, max used == size, an OOM log line); the IN subquery
#: makes each request count once however many signals it shows.
MEMORY = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    max(memory_size_mb) AS largest_memory_size_mb,
    max(max_memory_used_mb) AS peak_memory_used_mb,
    countIf(memory_size_mb > 0
            AND max_memory_used_mb >= {high_share:Float64} * memory_size_mb) AS high_memory,
    countIf(is_oom) AS ooms,
    countIf(is_oom AND error_type = 'Runtime.OutOfMemory') AS oom_error_type,
    countIf(is_oom AND memory_size_mb > 0 AND max_memory_used_mb >= memory_size_mb)
        AS oom_at_limit,
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
                AND ({function_name:String} = '' OR function_name = {function_name:String})
                AND request_id != ''
                AND match(message, {oom_pattern:String})
        ) AS has_oom_line,
        (error_type = 'Runtime.OutOfMemory'
         OR (memory_size_mb > 0 AND max_memory_used_mb >= memory_size_mb)
         OR has_oom_line) AS is_oom
    FROM"""
    + _WINDOW
    + """
)
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

#: Cold starts per function and version: rate and init duration percentiles. Evidence is the
#: slowest inits first (then the oldest).
COLD_STARTS = (
    """
SELECT
    function_name,
    function_version,
    count() AS invocations,
    countIf(cold_start = 1) AS cold_starts,
    quantilesIf(0.5, 0.95, 0.99)(init_duration_ms, cold_start = 1) AS init_quantiles_ms,
    maxIf(init_duration_ms, cold_start = 1) AS max_init_duration_ms,
    arraySlice(arrayMap(x -> x.3, arraySort(x -> (-x.1, x.2), groupArrayIf(
            (assumeNotNull(init_duration_ms), start_time, request_id), cold_start = 1))),
        1, {max_evidence:UInt32}) AS cold_start_request_ids
FROM"""
    + _WINDOW
    + """
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
)

#: The fleet table: one row per function over the window.
FLEET = (
    """
SELECT
    function_name,
    count() AS invocations,
    countIf(status IN ('error', 'failure')) AS errors,
    countIf(status = 'timeout') AS timeouts,
    countIf(cold_start = 1) AS cold_starts,
    quantiles(0.5, 0.99)(duration_ms) AS duration_quantiles_ms,
    max(if(memory_size_mb > 0, max_memory_used_mb * 100.0 / memory_size_mb, NULL))
        AS max_memory_pct,
    max(start_time) AS last_seen
FROM"""
    + _WINDOW
    + """
GROUP BY function_name
ORDER BY function_name
"""
)

#: A finding's evidence: the invocations behind its request ids.
INVOCATIONS_BY_REQUEST_IDS = (
    """
SELECT
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
    timeout_ms
FROM"""
    + _WINDOW
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

#: Per-minute series for the HTML report.
TIMESERIES = (
    """
SELECT
    function_name,
    toStartOfInterval(start_time, INTERVAL {bucket_s:UInt32} SECOND) AS bucket,
    count() AS invocations,
    countIf(status IN ('error', 'failure')) AS errors,
    countIf(status = 'timeout') AS timeouts,
    countIf(cold_start = 1) AS cold_starts,
    quantiles(0.5, 0.99)(duration_ms) AS duration_quantiles_ms,
    max(if(memory_size_mb > 0, max_memory_used_mb * 100.0 / memory_size_mb, NULL))
        AS max_memory_pct
FROM"""
    + _WINDOW
    + """
GROUP BY function_name, bucket
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
    + _WINDOW
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
    + _WINDOW
    + """
WHERE """
    + _FAILED
    + """
GROUP BY function_name, function_version, error_type
ORDER BY function_name, function_version, errors DESC, error_type
LIMIT {max_types:UInt32} BY function_name, function_version
"""
)
