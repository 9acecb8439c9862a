"""A function whose code outside the handler takes 1.2 s (heavy imports, clients built)."""

import time

time.sleep(1.2)


def handler(event, context):
    return {"ok": True}
