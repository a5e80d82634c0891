"""Clicks and the exposure / voucher an order names: checked first, then recorded.

Every check runs before anything is written, and callers run check and write in
one transaction, so a rejected event leaves the store as it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from recsys.store.feedback import (
    OrderTouch,
    get_exposure,
    get_touch,
    get_voucher,
    insert_touch,
    record_click,
    redeeming_order,
)


class FeedbackError(Exception):
    """An event that cannot be recorded; `status` is the HTTP status the API answers."""

    status = 422
    code = "invalid_event"


class UnknownExposure(FeedbackError):
    status = 404
    code = "unknown_exposure"


class InvalidTouch(FeedbackError):
    status = 422
    code = "invalid_touch"


class VoucherUsed(FeedbackError):
    status = 409
    code = "voucher_used"


class TouchConflict(FeedbackError):
    status = 409
    code = "conflict"


def click(
    conn: Connection,
    exposure_id: str,
    item_id: str,
    clicked_at: datetime,
    latest: datetime | None = None,
) -> bool:
    """Record a click on an item of an exposure; False when it was already recorded.

    Raises UnknownExposure (no such exposure, or it was pruned) and InvalidTouch
    (the item was not in that exposure, or the click is dated before the exposure
    was shown or after `latest`, the server's clock plus the skew it allows).
    """
    exposure = get_exposure(conn, exposure_id)
    if exposure is None:
        raise UnknownExposure(f"exposure {exposure_id!r} is not known")
    if item_id not in exposure.items:
        raise InvalidTouch(f"item {item_id!r} was not in exposure {exposure_id!r}")
    if clicked_at < exposure.shown_at:
        raise InvalidTouch(
            f"clicked_at: {clicked_at.isoformat()} is before exposure {exposure_id!r} was "
            f"shown ({exposure.shown_at.isoformat()} UTC); nothing was recorded"
        )
    if latest is not None and clicked_at > latest:
        raise InvalidTouch(
            f"clicked_at: {clicked_at.isoformat()} is more than a day in the future; "
            "nothing was recorded"
        )
    return record_click(conn, exposure_id, item_id, clicked_at)


def check_touch(
    conn: Connection,
    order_id: str,
    customer_id: str,
    purchased_at: datetime,
    exposure_id: str | None,
    voucher_code: str | None,
) -> OrderTouch | None:
    """The touch to record with an order, or None; raises a FeedbackError naming the problem.

    An exposure must be the same customer's and shown before the order. A voucher
    must be the customer's, the order must fall within its validity (issue day to
    `valid_until`, both included, UTC days), and it is redeemed once: another order
    naming it is a conflict. Re-posting an order with the same touch is accepted
    (the caller records nothing new); with another touch it is a conflict.
    """
    existing = get_touch(conn, order_id)
    if existing is not None:
        if (existing.exposure_id, existing.voucher_code) != (exposure_id, voucher_code):
            raise TouchConflict(
                f"order {order_id!r} was already recorded with exposure "
                f"{existing.exposure_id!r} and voucher {existing.voucher_code!r}"
            )
        return None
    if exposure_id is None and voucher_code is None:
        return None
    if exposure_id is not None:
        exposure = get_exposure(conn, exposure_id)
        if exposure is None:
            raise InvalidTouch(f"exposure_id {exposure_id!r} is not known; nothing was recorded")
        if exposure.customer_id != customer_id:
            raise InvalidTouch(
                f"exposure {exposure_id!r} was shown to another customer; nothing was recorded"
            )
        if exposure.shown_at > purchased_at:
            raise InvalidTouch(
                f"exposure {exposure_id!r} was shown after the order; nothing was recorded"
            )
    if voucher_code is not None:
        voucher = get_voucher(conn, voucher_code)
        if voucher is None:
            raise InvalidTouch(f"voucher_code {voucher_code!r} is not known; nothing was recorded")
        if voucher.customer_id != customer_id:
            raise InvalidTouch(
                f"voucher {voucher_code!r} belongs to another customer; nothing was recorded"
            )
        day = purchased_at.date()
        if day > voucher.valid_until:
            raise InvalidTouch(
                f"voucher {voucher_code!r} expired on {voucher.valid_until.isoformat()}; "
                "nothing was recorded"
            )
        if day < voucher.day:
            raise InvalidTouch(
                f"voucher {voucher_code!r} was issued on {voucher.day.isoformat()}, after the "
                "order; nothing was recorded"
            )
        used_by = redeeming_order(conn, voucher_code)
        if used_by is not None:
            raise VoucherUsed(
                f"voucher {voucher_code!r} was already redeemed by order {used_by!r}; "
                "nothing was recorded"
            )
    return OrderTouch(order_id, customer_id, purchased_at, exposure_id, voucher_code)


def record_touch(conn: Connection, touch: OrderTouch | None) -> None:
    if touch is not None:
        insert_touch(conn, touch)
