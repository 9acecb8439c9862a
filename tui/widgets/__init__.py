"""Small widgets, each knowing how to show one read model."""

from lambdascope.tui.widgets.command_line import CommandLine
from lambdascope.tui.widgets.findings_table import FindingsTable
from lambdascope.tui.widgets.fleet_table import FleetTable
from lambdascope.tui.widgets.invocations_table import InvocationsTable
from lambdascope.tui.widgets.log_view import LogView
from lambdascope.tui.widgets.nav_table import NavTable

__all__ = ["CommandLine", "FindingsTable", "FleetTable", "InvocationsTable", "LogView", "NavTable"]
