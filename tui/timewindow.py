"""The one time window of the whole UI: "the last hour, live", or a fixed range in UTC.

Every panel reads the same resolved :class:`Window`. It is aligned to whole minutes because
the fleet table reads the per-minute rollups, which cannot split a minute: with both ends on a
minute boundary the rollups and the detectors' exact bounds cover the very same span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from lambdascope.analyzers.window import Window

__all__ = ["PRESETS", "TimeWindow", "TimeWindowError", "align"]

_MINUTE = timedelta(minutes=1)

#: The spans the picker offers, shortest first.
PRESETS: tuple[str, ...] = ("15m", "1h", "6h", "24h", "7d")

_SPAN = re.compile(r"^\s*(\d+)\s*([mhd])\s*$", re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_CLOCK_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MAX_SPAN = timedelta(days=90)

_HOW = (
    "use a span such as 15m, 1h, 6h, 24h or 7d, a range of UTC times such as 12:00-13:00, "
    "or two ISO times such as 2026-01-31T12:00/2026-01-31T13:00"
)


class TimeWindowError(ValueError):
    """Text that is not a time window; the message says what to type instead."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _floor(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _ceil(value: datetime) -> datetime:
    floor = _floor(value)
    return floor if floor == value else floor + _MINUTE


def align(window: Window) -> Window:
    """The smallest whole-minute window that contains ``window``."""
    return Window(_floor(_utc(window.start)), _ceil(_utc(window.end)))


def span_text(value: timedelta) -> str:
    """``15m``, ``1h``, ``7d``: a span as the user types it."""
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes >= size and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


@dataclass(frozen=True)
class TimeWindow:
    """Either ``span`` ("the last hour": it moves with the clock) or ``start``/``end``.

    ``live`` says whether the UI refreshes on its own; a fixed range never does.
    """

    span: timedelta | None = timedelta(hours=1)
    start: datetime | None = None
    end: datetime | None = None
    live: bool = True

    @classmethod
    def last(cls, span: timedelta, *, live: bool = True) -> TimeWindow:
        if span <= timedelta(0):
            raise TimeWindowError(f"a window of {span} is empty: the shortest is 1m")
        if span > _MAX_SPAN:
            raise TimeWindowError("a window longer than 90d reaches past what the store keeps")
        # The store counts whole minutes: 90s reads as the last 2m.
        minutes = -(-span // _MINUTE)
        return cls(span=minutes * _MINUTE, live=live)

    @classmethod
    def between(cls, start: datetime, end: datetime) -> TimeWindow:
        start, end = _floor(_utc(start)), _ceil(_utc(end))
        if end <= start:
            raise TimeWindowError("the range ends before it starts")
        if end - start > _MAX_SPAN:
            raise TimeWindowError("a range longer than 90d reaches past what the store keeps")
        return cls(span=None, start=start, end=end, live=False)

    @classmethod
    def parse(cls, text: str, now: datetime) -> TimeWindow:
        """``15m``/``1h``/``6h``/``24h``/``7d``, ``HH:MM-HH:MM`` (UTC, today, or ending today
        when it crosses midnight) or ``ISO/ISO``; raises :class:`TimeWindowError`."""
        text = text.strip()
        if not text:
            raise TimeWindowError(f"no window given: {_HOW}")
        if match := _SPAN.match(text):
            return cls.last(int(match.group(1)) * _UNITS[match.group(2).lower()])
        if match := _CLOCK_RANGE.match(text):
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
                raise TimeWindowError(f"{text!r} is not a range of times of day: {_HOW}")
            day = _floor(_utc(now)).replace(hour=0, minute=0)
            end = day + timedelta(hours=h2, minutes=m2)
            start = day + timedelta(hours=h1, minutes=m1)
            if end <= start:
                start -= timedelta(days=1)  # 23:00-01:00 crosses midnight into today
            if start > _utc(now):
                raise TimeWindowError(f"{text} UTC has not started yet")
            return cls.between(start, end)
        parts = re.split(r"\s*/\s*|\s+to\s+", text)
        if len(parts) == 2:
            try:
                start, end = (datetime.fromisoformat(p.replace("Z", "+00:00")) for p in parts)
            except ValueError:
                raise TimeWindowError(f"{text!r} is not a range of ISO times: {_HOW}") from None
            return cls.between(start, end)
        raise TimeWindowError(f"{text!r} is not a time window: {_HOW}")

    @property
    def fixed(self) -> bool:
        return self.span is None

    def paused(self) -> TimeWindow:
        return replace(self, live=False)

    def resumed(self) -> TimeWindow:
        """Live again; a fixed range cannot move, so it stays paused."""
        return self if self.fixed else replace(self, live=True)

    def resolve(self, now: datetime) -> Window:
        """The window every panel reads: whole minutes, the current minute included."""
        if self.span is None:
            assert self.start is not None and self.end is not None
            return Window(self.start, self.end)
        end = _ceil(_utc(now))
        return Window(end - self.span, end)

    def label(self) -> str:
        """``last 1h, live``, ``last 6h, paused`` or ``12:00-13:00 UTC, paused``."""
        state = "live" if self.live else "paused"
        if self.span is not None:
            return f"last {span_text(self.span)}, {state}"
        assert self.start is not None and self.end is not None
        return f"{range_text(Window(self.start, self.end))}, {state}"


def range_text(window: Window) -> str:
    """``12:00-13:00 UTC``; with dates when the range is not within one day."""
    start, end = _utc(window.start), _utc(window.end)
    if end - start <= timedelta(days=1) and (
        start.date() == end.date() or end == _floor(end).replace(hour=0, minute=0)
    ):
        end_text = "24:00" if end.date() != start.date() else end.strftime("%H:%M")
        return f"{start:%H:%M}-{end_text} UTC"
    return f"{start:%Y-%m-%d %H:%M}-{end:%Y-%m-%d %H:%M} UTC"
