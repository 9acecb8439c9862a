"""One screen a file."""

from tui.screens.finding import FindingScreen
from tui.screens.main import MainScreen

__all__ = ["FindingScreen", "MainScreen"]
