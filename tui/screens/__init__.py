"""One screen a file."""

from lambdascope.tui.screens.finding import FindingScreen
from lambdascope.tui.screens.main import MainScreen

__all__ = ["FindingScreen", "MainScreen"]
