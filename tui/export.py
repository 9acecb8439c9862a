"""``e``: a table as the user sees it, written as CSV and JSON side by side."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path


def export_table(
    directory: Path, name: str, columns: Sequence[str], rows: Sequence[Sequence[str]], now: datetime
) -> tuple[Path, Path]:
    """Write ``lambdascope-<name>-<UTC time>.csv`` and ``.json`` into ``directory``; the JSON
    is a list of objects keyed by column name. Never overwrites an earlier export."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"lambdascope-{name}-{now:%Y%m%d-%H%M%S}"
    n = 1
    while (directory / f"{stem}.csv").exists() or (directory / f"{stem}.json").exists():
        n += 1
        stem = f"lambdascope-{name}-{now:%Y%m%d-%H%M%S}-{n}"
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    json_path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return csv_path, json_path
