"""``?``: every key of the screen it was opened from, read off that screen's bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from lambdascope.tui.widgets.command_line import COMMANDS


def binding_lines(screen: Screen[object]) -> list[tuple[str, str]]:
    """``(keys, what they do)`` for each action bound on ``screen`` (focused widget, screen
    and app), keys of one action together, in the order the bindings are declared."""
    by_action: dict[tuple[int, str], tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        what = binding.description or binding.action.replace("_", " ").capitalize()
        entry = by_action.setdefault((id(active.node), binding.action), ([], what))
        display = screen.app.get_key_display(binding)
        if display not in entry[0]:
            entry[0].append(display)
    return [(" ".join(keys), what) for keys, what in by_action.values()]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, title: str, lines: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines

    def compose(self) -> ComposeResult:
        text = Text()
        text.append(f"Keys: {self.title_text}\n\n", style="bold")
        width = max((len(keys) for keys, _ in self.lines), default=0)
        for keys, what in self.lines:
            text.append(f"{keys:>{width}}", style="bold cyan")
            text.append(f"  {what}\n")
        text.append("\nCommands (press : first)\n", style="bold")
        for usage in COMMANDS.values():
            text.append(f"  {usage}\n")
        text.append("\nEvery action is also in the command palette (ctrl+p).", style="dim")
        with VerticalScroll(id="help"):
            yield Static(text, id="help-text")

    @property
    def text(self) -> str:
        return str(self.query_one("#help-text", Static).render())

    def action_close(self) -> None:
        self.dismiss(None)
