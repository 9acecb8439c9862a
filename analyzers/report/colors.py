"""The report's colours, each with one meaning in every chart and in the text."""

from __future__ import annotations

ERRORS = "#d62728"
TIMEOUTS = "#9c1458"
THROTTLES = "#f28e00"
COLD_STARTS = "#1f5fbf"
MEMORY = "#7b3fa0"
#: Invocations that succeeded, and traffic in general.
INVOCATIONS = "#8aa58f"
CONCURRENCY = "#37474f"
#: A configured limit (reserved concurrency, memory size, timeout) is drawn dashed.
LIMIT = "#37474f"
COST = "#546e7a"

#: Duration percentiles of one function, light to dark as the percentile rises.
P50 = "#8fc1b5"
P90 = "#3d8c80"
P99 = "#0b4f44"

#: Kinds of initialization: felt cold starts in the cold-start blue, the rest paler.
ON_DEMAND_INIT = COLD_STARTS
PROACTIVE_INIT = "#8fb5ec"
PROVISIONED_INIT = "#5c6bc0"
SNAPSTART_INIT = "#00838f"

#: The parts of an init.
EXTENSIONS_BEFORE = "#b0bec5"
RUNTIME_AND_FUNCTION = COLD_STARTS
EXTENSIONS_AFTER = "#78909c"

#: One colour per function when several share a chart: identities, not meanings, so none is
#: a meaning colour above.
FUNCTIONS = (
    "#264653",
    "#2a9d8f",
    "#8d6e63",
    "#c9a227",
    "#6d597a",
    "#457b9d",
    "#b56576",
    "#588157",
)

#: Memory per environment: shades of the memory purple.
ENVIRONMENTS = ("#7b3fa0", "#a06cc0", "#4a1e6b", "#c39bd8", "#5e2d80", "#8e5ab0")

SEVERITIES = {"critical": ERRORS, "warning": THROTTLES, "info": COLD_STARTS}
