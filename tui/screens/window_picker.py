"""``t``: choose the time window every panel reads."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from lambdascope.tui.timewindow import PRESETS, TimeWindow, TimeWindowError


class WindowPicker(ModalScreen[TimeWindow | None]):
    """A preset span (live), or a custom range typed in; dismisses with the new window."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
    ]

    def __init__(self, current: TimeWindow, now: datetime) -> None:
        super().__init__()
        self.current = current
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Time window (now: {self.current.label()})", classes="section")
            yield OptionList(*(Option(f"last {p}", id=p) for p in PRESETS), id="presets")
            yield Label("Custom: 12:00-13:00 (UTC, today) or ISO/ISO", classes="section")
            yield Input(placeholder="12:00-13:00", id="custom")
            yield Static("", id="picker-error")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.has_focus:
            (options.action_cursor_down if step > 0 else options.action_cursor_up)()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#presets")
    def pick_preset(self, event: OptionList.OptionSelected) -> None:
        self.choose(str(event.option.id))

    @on(Input.Submitted, "#custom")
    def pick_custom(self, event: Input.Submitted) -> None:
        self.choose(event.value)

    def choose(self, text: str) -> None:
        try:
            window = TimeWindow.parse(text, self.now)
        except TimeWindowError as exc:
            self.query_one("#picker-error", Static).update(str(exc))
            return
        self.dismiss(window)
