"""One screen a file."""

from lambdascope.tui.screens.finding import FindingScreen
from lambdascope.tui.screens.fleet import FleetScreen
from lambdascope.tui.screens.help import HelpScreen
from lambdascope.tui.screens.window_picker import WindowPicker

__all__ = ["FindingScreen", "FleetScreen", "HelpScreen", "WindowPicker"]
