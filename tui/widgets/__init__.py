"""Small widgets, each knowing how to show one read model."""

from tui.widgets.findings_table import FindingsTable
from tui.widgets.fleet_table import FleetTable
from tui.widgets.invocations_table import InvocationsTable
from tui.widgets.log_view import LogView

__all__ = ["FindingsTable", "FleetTable", "InvocationsTable", "LogView"]
