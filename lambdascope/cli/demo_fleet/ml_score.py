"""A function given far more memory than it uses: 10 GB for a small scoring model."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    logger.info("scoring customer %s", event.get("customer", "c-0"))
    time.sleep(0.05)
    return {"score": 0.42}
