"""A handler for Lambda Managed Instances: many of these run at once in one environment."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    tag = event.get("tag", "")
    logger.info("start %s", tag)
    time.sleep(float(event.get("sleep_s", 0.3)))
    logger.info("working on %s", tag)
    if event.get("fail"):
        raise ValueError(f"could not process {tag}")
    logger.info("end %s", tag)
    return {"tag": tag}
