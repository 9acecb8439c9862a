"""A function with a slow initialisation: it loads a heavy model at import time."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Stands in for importing a large library and loading a model: paid on every cold start.
time.sleep(1.5)
MODEL = {"loaded_at": time.time()}


def handler(event, context):
    logger.info("resizing image %s", event.get("key", "image.png"))
    time.sleep(0.01)
    return {"resized": True}
