"""What the collector asks the server about itself: whether it answers, which tables the
database holds and with what engine, and what the read user is granted.
"""

from __future__ import annotations

SELECT_TABLE_ENGINES = (
    "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
)

SELECT_ONE = "SELECT 1"

#: The read user's grants, checked at start (collector.access.grant_problems): with FINAL
#: (what its roles grant folded in) where the server knows it, else plain.
SHOW_GRANTS = ("SHOW GRANTS FINAL", "SHOW GRANTS")
