"""The views readers query: ``invocations`` and ``invocations_between`` over the invocation
parts, ``cold_starts`` over the cold-start parts (docs/architecture.md §2).

Views hold no data, so they are recreated at every start rather than migrated.
"""

from __future__ import annotations

# The merged invocation (docs/architecture.md §2), over the per-request aggregates of the parts
# below. Report status is authoritative; runtimeDone fills in what a missing report lacks; a
# "Task timed out" line marks a timeout whose runtimeDone and report never arrived.
_INVOCATION_SELECT = """
SELECT
    function_name,
    function_version,
    request_id,
    environment_id,
    assumeNotNull(coalesce(
        p_start_time,
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_report_time) - toInt64(round(p_report_duration_ms)), 'UTC'),
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_runtime_done_time)
            - toInt64(round(p_runtime_done_duration_ms)), 'UTC'),
        p_received_at,
        p_report_time,
        p_runtime_done_time,
        p_last_sent_at,
        toDateTime64(0, 3, 'UTC')
    )) AS start_time,
    fromUnixTimestamp64Milli(
        toUnixTimestamp64Milli(start_time) + toInt64(round(duration_ms)), 'UTC') AS end_time,
    coalesce(p_report_duration_ms, p_runtime_done_duration_ms) AS duration_ms,
    p_report_billed_duration_ms AS billed_duration_ms,
    coalesce(p_report_memory_size_mb, p_env_memory_size_mb) AS memory_size_mb,
    p_report_max_memory_used_mb AS max_memory_used_mb,
    p_report_init_duration_ms AS init_duration_ms,
    toUInt8(init_duration_ms IS NOT NULL) AS cold_start,
    coalesce(
        p_report_status,
        p_runtime_done_status,
        if(p_timed_out_log = 1, 'timeout', NULL),
        'unknown'
    ) AS status,
    if(status = 'success', '',
       coalesce(p_report_error_type, p_runtime_done_error_type, '')) AS error_type,
    p_timeout_ms AS timeout_ms,
    p_has_start AS has_start,
    p_has_runtime_done AS has_runtime_done,
    p_has_report AS has_report,
    p_has_invoke AS has_invoke,
    p_region AS region,
    p_architecture AS architecture,
    p_invoked_function_arn AS invoked_function_arn,
    p_trace_id AS trace_id,
    p_report_restore_duration_ms AS restore_duration_ms,
    p_runtime_done_status AS runtime_done_status,
    p_runtime_done_duration_ms AS runtime_done_duration_ms,
    p_runtime_done_produced_bytes AS produced_bytes,
    p_log_lines AS log_lines,
    p_last_sent_at AS last_received_at
FROM (
    SELECT
        function_name,
        request_id,
        toString(max(function_version)) AS function_version,
        toString(max(environment_id)) AS environment_id,
        toString(max(region)) AS p_region,
        toString(max(architecture)) AS p_architecture,
        max(env_memory_size_mb) AS p_env_memory_size_mb,
        min(start_time) AS p_start_time,
        max(runtime_done_time) AS p_runtime_done_time,
        max(report_time) AS p_report_time,
        min(received_at) AS p_received_at,
        max(timeout_ms) AS p_timeout_ms,
        any(invoked_function_arn) AS p_invoked_function_arn,
        any(trace_id) AS p_trace_id,
        any(runtime_done_status) AS p_runtime_done_status,
        any(runtime_done_error_type) AS p_runtime_done_error_type,
        max(runtime_done_duration_ms) AS p_runtime_done_duration_ms,
        max(runtime_done_produced_bytes) AS p_runtime_done_produced_bytes,
        any(report_status) AS p_report_status,
        any(report_error_type) AS p_report_error_type,
        max(report_duration_ms) AS p_report_duration_ms,
        max(report_billed_duration_ms) AS p_report_billed_duration_ms,
        max(report_memory_size_mb) AS p_report_memory_size_mb,
        max(report_max_memory_used_mb) AS p_report_max_memory_used_mb,
        max(report_init_duration_ms) AS p_report_init_duration_ms,
        max(report_restore_duration_ms) AS p_report_restore_duration_ms,
        toUInt8(max(timed_out_log)) AS p_timed_out_log,
        toUInt8(max(has_start)) AS p_has_start,
        toUInt8(max(has_runtime_done)) AS p_has_runtime_done,
        toUInt8(max(has_report)) AS p_has_report,
        toUInt8(max(has_invoke)) AS p_has_invoke,
        toUInt64(sum(log_lines)) AS p_log_lines,
        max(last_sent_at) AS p_last_sent_at
    FROM invocation_parts"""

CREATE_INVOCATIONS_VIEW = (
    "\nCREATE OR REPLACE VIEW invocations AS"
    + _INVOCATION_SELECT
    + """
    GROUP BY function_name, request_id
)
"""
)

#: How far an invocation's events may lie from its start: Lambda's 15-minute maximum timeout
#: plus a minute for the report and delivery skew. Every part of an invocation that started in
#: [since, until) has an event_time in [since - slack, until + slack), and an invocation that
#: started before since - slack has no part inside it, so reading only those parts merges every
#: invocation of the window completely and no other invocation into it.
EVENT_SLACK_MINUTES = 16

# The same rows as `invocations`, for one window (and optionally one function), reading only
# the parts whose event_time can belong to it: the parts_by_time projection (ORDER BY
# function_name, event_time) prunes the rest, so a 1-hour window of a 24-hour store reads a
# tenth of it instead of all of it.
CREATE_INVOCATIONS_BETWEEN_VIEW = (
    "\nCREATE OR REPLACE VIEW invocations_between AS"
    + _INVOCATION_SELECT
    + f"""
    WHERE event_time >= {{since:DateTime64(3, 'UTC')}} - INTERVAL {EVENT_SLACK_MINUTES} MINUTE
        AND event_time < {{until:DateTime64(3, 'UTC')}} + INTERVAL {EVENT_SLACK_MINUTES} MINUTE
        AND ({{function_name:String}} = '' OR function_name = {{function_name:String}})
    GROUP BY function_name, request_id
)
WHERE start_time >= {{since:DateTime64(3, 'UTC')}} AND start_time < {{until:DateTime64(3, 'UTC')}}
"""
)

CREATE_COLD_STARTS_VIEW = """
CREATE OR REPLACE VIEW cold_starts AS
SELECT
    function_name,
    function_version,
    environment_id,
    phase,
    coalesce(p_initialization_type, '') AS initialization_type,
    assumeNotNull(coalesce(
        p_init_start_time,
        fromUnixTimestamp64Milli(
            toUnixTimestamp64Milli(p_report_time) - toInt64(round(init_duration_ms)), 'UTC'),
        p_runtime_done_time,
        p_report_time,
        toDateTime64(0, 3, 'UTC')
    )) AS start_time,
    init_duration_ms,
    coalesce(p_report_status, p_runtime_done_status, 'unknown') AS status,
    if(status = 'success', '',
       coalesce(p_report_error_type, p_runtime_done_error_type, '')) AS error_type,
    coalesce(p_runtime_version, '') AS runtime_version,
    p_runtime_done_time AS runtime_done_time,
    -- The init's phases as Lambda's events show them: until initRuntimeDone the extensions
    -- registered, the runtime started and the function's code outside the handler ran; after
    -- it, the init waited for the extensions' first `next`.
    if(p_init_start_time IS NULL OR p_runtime_done_time IS NULL, NULL,
       greatest(toFloat64(toUnixTimestamp64Milli(p_runtime_done_time)
                          - toUnixTimestamp64Milli(p_init_start_time)), 0.0)) AS runtime_init_ms,
    if(runtime_init_ms IS NULL OR init_duration_ms IS NULL, NULL,
       greatest(init_duration_ms - runtime_init_ms, 0.0)) AS extensions_after_runtime_ms,
    p_first_request_time AS first_request_time,
    -- Lambda initialised the environment ahead of demand: nobody waited for this init. Its
    -- sign is an idle gap of more than 10 s from the init's end to the first request.
    toUInt8(coalesce(
        phase = 'init' AND initialization_type IN ('on-demand', '')
        AND toUnixTimestamp64Milli(p_first_request_time)
            - toUnixTimestamp64Milli(start_time) - init_duration_ms > 10000, 0)) AS proactive,
    p_has_init_start AS has_init_start,
    p_has_runtime_done AS has_runtime_done,
    p_has_report AS has_report
FROM (
    SELECT
        function_name,
        environment_id,
        phase,
        toString(max(function_version)) AS function_version,
        any(initialization_type) AS p_initialization_type,
        min(init_start_time) AS p_init_start_time,
        max(runtime_done_time) AS p_runtime_done_time,
        max(report_time) AS p_report_time,
        any(runtime_version) AS p_runtime_version,
        any(runtime_done_status) AS p_runtime_done_status,
        any(runtime_done_error_type) AS p_runtime_done_error_type,
        any(report_status) AS p_report_status,
        any(report_error_type) AS p_report_error_type,
        max(init_duration_ms) AS init_duration_ms,
        min(first_request_time) AS p_first_request_time,
        toUInt8(max(has_init_start)) AS p_has_init_start,
        toUInt8(max(has_runtime_done)) AS p_has_runtime_done,
        toUInt8(max(has_report)) AS p_has_report
    FROM cold_start_parts
    GROUP BY function_name, environment_id, phase
)
"""

#: Views hold no data: they are (re)created at every start, so a change to one needs no
#: migration.
VIEWS = (CREATE_INVOCATIONS_VIEW, CREATE_INVOCATIONS_BETWEEN_VIEW, CREATE_COLD_STARTS_VIEW)
