"""A function that sometimes outlives its timeout: large exports wait on a slow downstream."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    rows = int(event.get("rows", 100))
    logger.info("exporting %d rows", rows)
    # Large exports block on a slow downstream API; with a 1 s timeout they never finish.
    time.sleep(0.05 + rows / 5000)
    print(f"export of {rows} rows finished")
    return {"rows": rows}
