"""The live tail: log lines as they arrive, across functions or of one, in pages after a cursor.

Lines are followed by their own time (the ``logs`` table has no arrival time), so a batch can
arrive holding lines older than lines already shown: an environment's extension flushes after
its invocations, a function's batch can land after another's newer one. Each poll therefore
reads the lines after the cursor, then the lines at or before it (back to ``lateness``) of the
batches it has not read yet. A batch's lines are committed together, so reading batches whole
is what makes a line appear exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lambdascope.analyzers import tail_sql
from lambdascope.analyzers.fleet import LogLine
from lambdascope.analyzers.window import ch_time
from lambdascope.query import QueryClient

__all__ = [
    "DEFAULT_LATENESS",
    "MAX_SEEN_BATCHES",
    "PAGE_SIZE",
    "TailCursor",
    "TailLine",
    "TailPage",
    "tail_line",
    "tail_lines",
]

#: Lines read per query: a burst is read over several polls instead of in one huge answer.
PAGE_SIZE = 500
#: How far back a late batch is still shown. Lambda flushes an environment's telemetry after
#: its invocations (at most 15 minutes each); five minutes covers ordinary delivery delays.
DEFAULT_LATENESS = timedelta(minutes=5)
#: Batch ids remembered (and sent with each poll) so their late lines are not read twice; past
#: it the oldest are forgotten and the tail stops looking for late lines that old.
MAX_SEEN_BATCHES = 2000


@dataclass(frozen=True)
class TailLine(LogLine):
    """A log line with where it came from and its place in the tail (``batch_id``, ``seq``)."""

    function_name: str
    function_version: str
    request_id: str
    batch_id: str
    seq: int
    #: The other keys of a JSON log line (the collector keeps its message as ``message``).
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[datetime, str, int]:
        return (self.timestamp, self.batch_id, self.seq)


@dataclass(frozen=True)
class TailCursor:
    """Where the tail is: the last line read, and the batches already read since ``horizon``."""

    timestamp: datetime
    batch_id: str = ""
    seq: int = 0
    #: Late lines older than this are no longer looked for.
    horizon: datetime | None = None
    #: Batch id -> the time of its newest line read.
    seen_batches: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def starting_at(cls, when: datetime) -> TailCursor:
        """The cursor before every line at or after ``when`` (batch ids are never empty)."""
        return cls(timestamp=when, horizon=when)

    def after(self, lines: list[TailLine], lateness: timedelta) -> TailCursor:
        """Pure: the cursor once ``lines`` were read (those after it and the late ones)."""
        newest = max((line.key for line in lines), default=None)
        timestamp, batch_id, seq = max(newest or self.key, self.key)
        seen = dict(self.seen_batches)
        for line in lines:
            known = seen.get(line.batch_id)
            if known is None or line.timestamp > known:
                seen[line.batch_id] = line.timestamp
        horizon = max(self.horizon or self.timestamp, timestamp - lateness)
        # A batch is forgotten only when none of its lines read is within the horizon: any
        # lines of it still unread are newer than the cursor and come with the next page.
        seen = {batch: newest for batch, newest in seen.items() if newest >= horizon}
        if len(seen) > MAX_SEEN_BATCHES:
            kept = sorted(seen.items(), key=lambda item: item[1])[-MAX_SEEN_BATCHES:]
            horizon = max(horizon, kept[0][1])
            seen = dict(kept)
        return TailCursor(timestamp, batch_id, seq, horizon, seen)

    @property
    def key(self) -> tuple[datetime, str, int]:
        return (self.timestamp, self.batch_id, self.seq)


@dataclass(frozen=True)
class TailPage:
    """One poll: the new lines in time order and the cursor to poll from next."""

    lines: list[TailLine]
    cursor: TailCursor
    #: The page was full: more lines are waiting, poll again now.
    more: bool
    #: More late lines arrived than one page holds; the rest were skipped.
    late_lines_skipped: bool = False


def tail_line(row: Mapping[str, Any]) -> TailLine:
    """Pure: a row of :data:`tail_sql.TAIL_LINES`."""
    return TailLine(
        timestamp=row["timestamp"],
        stream=str(row["stream"]),
        level=str(row["level"]),
        message=str(row["message"]),
        function_name=str(row["function_name"]),
        function_version=str(row["function_version"]),
        request_id=str(row["request_id"]),
        batch_id=str(row["batch_id"]),
        seq=int(row["seq"]),
        attributes={str(k): str(v) for k, v in (row.get("attributes") or {}).items()},
    )


def tail_lines(
    client: QueryClient,
    cursor: TailCursor,
    *,
    function_name: str | None = None,
    text: str = "",
    limit: int = PAGE_SIZE,
    lateness: timedelta = DEFAULT_LATENESS,
) -> TailPage:
    """The lines after ``cursor`` and the late ones before it, oldest first, at most ``limit``
    of each; an empty ``text`` or ``function_name`` of ``None`` filters nothing."""
    filters = {"function_name": function_name or "", "text": text, "limit": limit}
    after = {
        "after_time": ch_time(cursor.timestamp),
        "after_batch_id": cursor.batch_id,
        "after_seq": cursor.seq,
    }
    rows = client.query(tail_sql.TAIL_LINES, {**after, **filters}).dicts()
    page = [tail_line(row) for row in rows]
    until = max([cursor.key, *(line.key for line in page)])
    late_params = {
        **after,
        **filters,
        "horizon": ch_time(cursor.horizon or cursor.timestamp),
        "until_time": ch_time(until[0]),
        "until_batch_id": until[1],
        "until_seq": until[2],
        "seen_batch_ids": sorted(cursor.seen_batches),
        "page_batch_ids": sorted({line.batch_id for line in page}),
    }
    late = [tail_line(row) for row in client.query(tail_sql.TAIL_LATE_LINES, late_params).dicts()]
    lines = sorted(page + late, key=lambda line: line.key)
    return TailPage(
        lines=lines,
        cursor=cursor.after(lines, lateness),
        more=len(page) >= limit,
        late_lines_skipped=len(late) >= limit,
    )
