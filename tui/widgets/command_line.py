"""The ``:`` command line, as in vi and k9s: ``:since 6h``, ``:fn NAME``, ``:q``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

__all__ = ["COMMANDS", "Command", "CommandError", "CommandLine", "parse_command"]

#: Every command, with what it takes and does: the help screen and errors show these.
COMMANDS: dict[str, str] = {
    "since": ":since SPAN|RANGE  set the time window (15m, 6h, 7d, 12:00-13:00)",
    "fn": ":fn NAME  open a function",
    "tail": ":tail [NAME]  follow the logs as they arrive (all functions, or one)",
    "alerts": ":alerts  the alert rules, their state and history",
    "q": ":q  quit",
}
_ALIASES = {"quit": "q", "function": "fn", "window": "since", "logs": "tail", "alert": "alerts"}


class CommandError(ValueError):
    """A command line that cannot run; the message says what would."""


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""


def parse_command(text: str) -> Command:
    """``since 6h`` -> ``Command("since", "6h")``; a leading ``:`` is allowed."""
    words = text.strip().lstrip(":").strip().split(None, 1)
    if not words:
        raise CommandError("Type a command: " + ", ".join(f":{name}" for name in COMMANDS))
    name = _ALIASES.get(words[0].lower(), words[0].lower())
    argument = words[1].strip() if len(words) > 1 else ""
    if name not in COMMANDS:
        known = "; ".join(COMMANDS.values())
        raise CommandError(f"Unknown command :{words[0]}. Commands: {known}")
    if name in ("since", "fn") and not argument:
        raise CommandError(f"Missing argument. Usage: {COMMANDS[name]}")
    if name in ("q", "alerts") and argument:
        raise CommandError(f":{name} takes nothing. Usage: {COMMANDS[name]}")
    return Command(name, argument)


class CommandLine(Input):
    """Hidden until ``:``; Enter runs the line (posts :class:`Entered`), Esc closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", show=False)]

    class Entered(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs: object) -> None:
        super().__init__(placeholder="since 6h · fn NAME · tail · alerts · q", **kwargs)  # type: ignore[arg-type]

    def open(self) -> None:
        self.value = ""
        self.display = True
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        self.screen.focus_next()

    async def action_submit(self) -> None:
        text = self.value
        self.action_close()
        self.post_message(self.Entered(text))
