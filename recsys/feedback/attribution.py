"""Last-touch attribution of orders to exposures: a pure function of plain records.

An order is attributed to one exposure, or to none:

1. an order that names a voucher code goes to the campaign exposure that carried
   that voucher (the customer redeemed that offer);
2. else an order that names an `exposure_id` goes to that exposure;
3. else to the customer's **last** exposure shown at or before the order whose
   window is still open at the order: `[attribution] placement_window_days`
   (default 7) after a placement's list, the voucher's validity (through its
   `valid_until` day) for a campaign offer with a voucher, and
   `campaign_window_days` (default 30, the default voucher validity) for a
   campaign offer without one and for held-out campaign customers.

Held-out exposures are touches too: the control group's orders are attributed
to the moment they were held out, so both groups are counted the same way.
Attribution is computed when the report runs, so a changed window applies to
the whole history the exposure log keeps.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from recsys.rules.config import CAMPAIGNS, AttributionConfig


@dataclass(frozen=True, slots=True)
class Touch:
    """An exposure as attribution sees it. `until`: the last instant an order counts."""

    exposure_id: str
    customer_id: str
    placement: str
    shown_at: datetime
    until: datetime
    held_out: bool = False
    experiment: str | None = None
    variant: str | None = None
    voucher_code: str | None = None
    voucher_percent: float | None = None

    @property
    def campaign(self) -> bool:
        return self.placement in CAMPAIGNS


@dataclass(frozen=True, slots=True)
class OrderFact:
    """One order: its value (sum of quantity x unit price), the catalog cost of the lines
    with a known cost, and the exposure and voucher the order event named."""

    order_id: str
    customer_id: str
    purchased_at: datetime
    revenue: float
    cost: float = 0.0
    costed_revenue: float = 0.0  # revenue of the lines with a known cost
    exposure_id: str | None = None
    voucher_code: str | None = None


def window_end(
    placement: str, shown_at: datetime, valid_until: date | None, config: AttributionConfig
) -> datetime:
    """The last instant an order is attributed to an exposure shown at `shown_at`."""
    if placement not in CAMPAIGNS:
        return shown_at + timedelta(days=config.placement_window_days)
    if valid_until is not None:
        return datetime.combine(valid_until, time.max)
    return datetime.combine(shown_at.date() + timedelta(days=config.campaign_window_days), time.max)


def attribute(
    orders: Iterable[OrderFact], touches: Iterable[Touch]
) -> dict[str, Touch | None]:
    """Order id -> the exposure it is attributed to (None: no touch within a window)."""
    by_id: dict[str, Touch] = {}
    by_voucher: dict[str, Touch] = {}
    by_customer: dict[str, list[Touch]] = {}
    for touch in touches:
        by_id[touch.exposure_id] = touch
        if touch.voucher_code is not None:
            by_voucher[touch.voucher_code] = touch
        by_customer.setdefault(touch.customer_id, []).append(touch)
    for history in by_customer.values():
        history.sort(key=lambda t: (t.shown_at, t.exposure_id))
    starts = {c: [t.shown_at for t in h] for c, h in by_customer.items()}
    out: dict[str, Touch | None] = {}
    for order in orders:
        out[order.order_id] = _touch(order, by_id, by_voucher, by_customer, starts)
    return out


def _touch(
    order: OrderFact,
    by_id: Mapping[str, Touch],
    by_voucher: Mapping[str, Touch],
    by_customer: Mapping[str, Sequence[Touch]],
    starts: Mapping[str, Sequence[datetime]],
) -> Touch | None:
    if order.voucher_code is not None and order.voucher_code in by_voucher:
        return by_voucher[order.voucher_code]
    if order.exposure_id is not None and order.exposure_id in by_id:
        return by_id[order.exposure_id]
    history = by_customer.get(order.customer_id)
    if not history:
        return None
    # The newest exposure shown at or before the order whose window is still open.
    last = bisect.bisect_right(starts[order.customer_id], order.purchased_at)
    for touch in reversed(history[:last]):
        if order.purchased_at <= touch.until:
            return touch
    return None
