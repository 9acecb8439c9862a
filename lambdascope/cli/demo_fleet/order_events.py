"""A Lambda Managed Instances function: one environment serves many order events at once, one
Python process per request, so every log line says which request wrote it (JSON logs)."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    order = event.get("order_id", "o-0")
    logger.info("enriching order %s", order)
    time.sleep(0.2)  # waits on the inventory service; the other requests run meanwhile
    logger.info("order %s enriched", order)
    return {"order_id": order, "enriched": True}
