"""Small widgets, each knowing how to show one read model."""

from lambdascope.tui.widgets.findings_table import FindingsTable
from lambdascope.tui.widgets.fleet_table import FleetTable
from lambdascope.tui.widgets.invocations_table import InvocationsTable
from lambdascope.tui.widgets.log_view import LogView

__all__ = ["FindingsTable", "FleetTable", "InvocationsTable", "LogView"]
