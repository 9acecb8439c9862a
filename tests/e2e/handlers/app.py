"""Handlers for the end-to-end tests: one that succeeds, one that outlives its timeout."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def ok(event, context):
    logger.info("processing order %s", event.get("order_id"))
    print(f"done with {context.aws_request_id}")
    return {"ok": True, "order_id": event.get("order_id")}


def slow(event, context):
    print(f"waiting on the slow downstream for {context.aws_request_id}")
    time.sleep(5)
    return {"ok": True}
