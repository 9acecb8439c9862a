"""A function whose errors start mid-run: the payment provider begins declining cards."""

import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class CardDeclinedError(Exception):
    """The payment provider declined the card."""


def handler(event, context):
    payment = event.get("payment_id", "p-0")
    logger.info("confirming payment %s", payment)
    if event.get("card") == "declined":
        raise CardDeclinedError(f"payment {payment}: card declined by the issuer (code 05)")
    return {"payment_id": payment, "confirmed": True}
