"""SQL of the live tail (:mod:`lambdascope.analyzers.tail`): new ``logs`` lines after a cursor.

A line's place is ``(timestamp, batch_id, seq)``: many lines share a millisecond, but a batch's
id and a line's delivery order in it (``seq``) tell them apart, so reading strictly after the
last line shown neither skips nor repeats lines of equal time.

Parameters:

* ``after_time`` / ``after_batch_id`` / ``after_seq``: the cursor (the last line shown);
  ``after_time`` as ``'YYYY-MM-DD HH:MM:SS.fff'`` UTC text.
* ``function_name``: ``''`` means every function.
* ``text``: ``''`` means every line; otherwise lines containing it, whatever its case.
* ``limit``: the page size.
"""

from __future__ import annotations

_COLUMNS = """
SELECT timestamp, function_name, function_version, request_id, stream, level, message,
    attributes, batch_id, seq
FROM logs"""

_FILTERS = """
    AND ({function_name:String} = '' OR function_name = {function_name:String})
    AND ({text:String} = '' OR positionCaseInsensitiveUTF8(message, {text:String}) > 0)"""

#: Lines after the cursor, oldest first. ``timestamp >= after_time`` is implied by the tuple
#: comparison but written out so the store prunes partitions and granules by time.
TAIL_LINES = (
    _COLUMNS
    + """
WHERE timestamp >= {after_time:DateTime64(3, 'UTC')}
    AND (timestamp, batch_id, seq)
        > ({after_time:DateTime64(3, 'UTC')}, {after_batch_id:String}, {after_seq:UInt32})"""
    + _FILTERS
    + """
ORDER BY timestamp, batch_id, seq
LIMIT {limit:UInt32}
"""
)

#: Lines that arrived late: at or before the cursor (``until_*``), no older than ``horizon``,
#: in batches none of whose lines were read before (``seen_batch_ids``). A batch's lines are
#: committed together, so a batch never seen is wholly new. Lines after ``after_*`` of the
#: batches the same poll already read (``page_batch_ids``) are left out: that read showed them.
#: Ordered by batch so that a page cut at ``limit`` splits at most its last batch.
TAIL_LATE_LINES = (
    _COLUMNS
    + """
WHERE timestamp >= {horizon:DateTime64(3, 'UTC')}
    AND timestamp <= {until_time:DateTime64(3, 'UTC')}
    AND (timestamp, batch_id, seq)
        <= ({until_time:DateTime64(3, 'UTC')}, {until_batch_id:String}, {until_seq:UInt32})
    AND NOT (batch_id IN {seen_batch_ids:Array(String)})
    AND ((timestamp, batch_id, seq)
            <= ({after_time:DateTime64(3, 'UTC')}, {after_batch_id:String}, {after_seq:UInt32})
        OR NOT (batch_id IN {page_batch_ids:Array(String)}))"""
    + _FILTERS
    + """
ORDER BY batch_id, seq
LIMIT {limit:UInt32}
"""
)
