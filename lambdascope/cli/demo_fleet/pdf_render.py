"""A function that runs close to its memory size: it renders whole documents in memory."""

import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    size_mb = int(event.get("document_mb", 10))
    logger.info("rendering a %d MB document", size_mb)
    pages = bytearray(size_mb * 2**20)  # the whole document, decoded, at once
    return {"rendered_bytes": len(pages)}
