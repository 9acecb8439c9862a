"""A function that sometimes outlives its timeout: large exports wait on a slow downstream.

Traced with lambdascope's tracing helper, which captures where the code was stuck shortly
before the deadline: the timed-out request's log then says which line it was waiting on.
"""

import logging
import time

import lambdascope_tracing

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def fetch_rows_from_warehouse(rows):
    # Large exports block on a slow downstream API; with a 1 s timeout they never finish.
    time.sleep(0.05 + rows / 5000)


@lambdascope_tracing.instrument(capture_before_timeout=True)
def handler(event, context):
    rows = int(event.get("rows", 100))
    logger.info("exporting %d rows", rows)
    fetch_rows_from_warehouse(rows)
    print(f"export of {rows} rows finished")
    return {"rows": rows}
