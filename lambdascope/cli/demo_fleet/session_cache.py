"""A function that leaks: every request's session is kept in a module-level cache forever."""

import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Never evicted: each warm invocation adds to what the environment holds.
SESSIONS: list[bytearray] = []


def handler(event, context):
    session = bytearray(3 * 2**20)  # 3 MB of session state
    SESSIONS.append(session)
    logger.info("session %s cached (%d sessions held)", event.get("user", "?"), len(SESSIONS))
    return {"sessions": len(SESSIONS)}
