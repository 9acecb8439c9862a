"""Handlers for the memory and cold-start end-to-end tests."""

import time


def hold(event, context):
    """Holds ``hold_mb`` MB (written, so resident) for a moment, then lets it go."""
    data = bytearray(int(event.get("hold_mb", 0)) * 2**20)
    time.sleep(float(event.get("hold_s", 0.05)))
    return {"held_mb": len(data) // 2**20}
