"""A screen's one status line: what is loading, what was found, or what failed and the fix."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """Hidden when there is nothing to say; an error is styled as one (class ``error``)."""

    def say(self, text: str, *, error: bool = False) -> None:
        self.set_class(error, "error")
        self.display = bool(text)
        self.update(text)

    def failed(self, text: str, *, unavailable: bool) -> None:
        """A read that failed; an unreachable store or collector may answer the next try."""
        self.say(text + (" Press r to retry." if unavailable else ""), error=True)
