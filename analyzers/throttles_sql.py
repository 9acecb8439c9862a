"""SQL of the throttles detector (:mod:`lambdascope.analyzers.throttles`).

Lambda's own throttles never reach a sandbox: only CloudWatch metric streams show them
(``cloudwatch_metrics``, collector/README.md). CloudWatch publishes a function's metrics under
``{FunctionName}`` and again under ``{FunctionName, Resource}`` / ``{FunctionName,
ExecutedVersion}``; :data:`_PER_FUNCTION` keeps only the first set so nothing counts twice.
Account-wide points have no dimensions at all.

Parameters: ``since``/``until`` (``'YYYY-MM-DD HH:MM:SS.fff'`` UTC), ``function_name`` (``''``
= every function).

No invocation rows are read: CloudWatch's points are already per-minute aggregates (the
rollup of what no extension sees), and throttling inside the code is found in log lines and
span events, which have no rollup (a pattern match on every ingested line would tax ingest).
"""

from __future__ import annotations

_METRIC_WINDOW = """
    namespace = 'AWS/Lambda'
    AND timestamp >= {since:DateTime64(3, 'UTC')}
    AND timestamp < {until:DateTime64(3, 'UTC')}"""

_PER_FUNCTION = """
    AND function_name != ''
    AND resource = ''
    AND NOT mapContains(dimensions, 'ExecutedVersion')
    AND ({function_name:String} = '' OR function_name = {function_name:String})"""

_ACCOUNT = """
    AND function_name = ''
    AND length(dimensions) = 0"""

#: Per function: Throttles, Invocations, the minutes with throttles and the peak concurrency.
FUNCTION_THROTTLES = (
    """
SELECT
    function_name,
    sumIf(value_sum, metric_name = 'Throttles') AS throttles,
    sumIf(value_sum, metric_name = 'Invocations') AS invocations,
    uniqExactIf(toStartOfMinute(timestamp), metric_name = 'Throttles' AND value_sum > 0)
        AS throttled_minutes,
    maxIf(value_max, metric_name = 'ConcurrentExecutions') AS max_concurrency,
    countIf(metric_name = 'ConcurrentExecutions') > 0 AS has_concurrency
FROM cloudwatch_metrics
WHERE"""
    + _METRIC_WINDOW
    + _PER_FUNCTION
    + """
    AND metric_name IN ('Throttles', 'Invocations', 'ConcurrentExecutions')
GROUP BY function_name
ORDER BY function_name
"""
)

#: Account-wide peaks: concurrency in use, claimed (reserved + provisioned + unreserved in use)
#: and unreserved in use.
ACCOUNT_CONCURRENCY = (
    """
SELECT
    account_id,
    region,
    maxIf(value_max, metric_name = 'ConcurrentExecutions') AS max_concurrency,
    maxIf(value_max, metric_name = 'ClaimedAccountConcurrency') AS max_claimed,
    maxIf(value_max, metric_name = 'UnreservedConcurrentExecutions') AS max_unreserved
FROM cloudwatch_metrics
WHERE"""
    + _METRIC_WINDOW
    + _ACCOUNT
    + """
    AND metric_name IN ('ConcurrentExecutions', 'ClaimedAccountConcurrency',
                        'UnreservedConcurrentExecutions')
GROUP BY account_id, region
ORDER BY account_id, region
"""
)

#: Per minute in which some function was throttled: every function's peak concurrency and
#: throttles, and the account's peak concurrency (``function_name = ''``), so the detector can
#: say which function held the account's concurrency while another was turned away.
THROTTLED_MINUTES = (
    """
SELECT
    toStartOfMinute(timestamp) AS minute,
    function_name,
    sumIf(value_sum, metric_name = 'Throttles') AS throttles,
    maxIf(value_max, metric_name = 'ConcurrentExecutions') AS concurrency
FROM cloudwatch_metrics
WHERE"""
    + _METRIC_WINDOW
    + """
    AND metric_name IN ('Throttles', 'ConcurrentExecutions')
    AND ((function_name != '' AND resource = ''
          AND NOT mapContains(dimensions, 'ExecutedVersion'))
         OR (function_name = '' AND length(dimensions) = 0))
    AND toStartOfMinute(timestamp) IN (
        SELECT toStartOfMinute(timestamp) FROM cloudwatch_metrics
        WHERE"""
    + _METRIC_WINDOW
    + _PER_FUNCTION
    + """
            AND metric_name = 'Throttles' AND value_sum > 0)
GROUP BY minute, function_name
ORDER BY minute, function_name
"""
)

#: The names of the throttling errors AWS services (and their SDKs) raise; word-bounded so
#: ``SlowDown`` does not match inside another word.
CODE_THROTTLE_PATTERN = (
    "\\b(ThrottlingException|ProvisionedThroughputExceededException|TooManyRequestsException"
    "|SlowDown|RequestLimitExceeded|ThrottledException|RequestThrottledException)\\b"
)

#: Throttling inside the code: log lines and span exception events / status messages naming a
#: throttling error, per function and version. One row per function and version: the requests
#: affected (each counted once), the error names with their request counts, and the evidence
#: request ids, oldest first.
CODE_THROTTLES = """
SELECT
    function_name,
    function_version,
    count() AS requests,
    sumMap(exceptions, arrayMap(x -> toUInt64(1), exceptions)) AS exception_counts,
    arraySlice(arrayMap(x -> x.2, arraySort(groupArray((first_at, request_id)))),
        1, {max_evidence:UInt32}) AS request_ids
FROM (
    SELECT
        function_name,
        function_version,
        request_id,
        min(at) AS first_at,
        groupUniqArray(exception) AS exceptions
    FROM (
        SELECT
            function_name,
            function_version,
            request_id,
            timestamp AS at,
            extract(message, {pattern:String}) AS exception
        FROM logs
        WHERE timestamp >= {since:DateTime64(3, 'UTC')}
            AND timestamp < {until:DateTime64(3, 'UTC')}
            AND ({function_name:String} = '' OR function_name = {function_name:String})
            AND request_id != ''
            AND stream = 'function'
            AND match(message, {pattern:String})
        UNION ALL
        SELECT
            toString(FunctionName) AS function_name,
            if(ResourceAttributes['faas.version'] = '', '$LATEST',
               ResourceAttributes['faas.version']) AS function_version,
            RequestId AS request_id,
            toDateTime64(Timestamp, 3, 'UTC') AS at,
            extract(text, {pattern:String}) AS exception
        FROM (
            SELECT
                FunctionName,
                ResourceAttributes,
                RequestId,
                Timestamp,
                concat(StatusMessage, ' ', arrayStringConcat(arrayMap(
                    a -> concat(a['exception.type'], ' ', a['exception.message']),
                    `Events.Attributes`), ' ')) AS text
            FROM otel_traces
            WHERE Timestamp >= {since:DateTime64(3, 'UTC')}
                AND Timestamp < {until:DateTime64(3, 'UTC')}
                AND ({function_name:String} = '' OR FunctionName = {function_name:String})
                AND RequestId != ''
        )
        WHERE match(text, {pattern:String})
    )
    GROUP BY function_name, function_version, request_id
)
GROUP BY function_name, function_version
ORDER BY function_name, function_version
"""
