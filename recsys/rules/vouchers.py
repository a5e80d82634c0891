"""Margin-aware campaign vouchers: how much discount the offered items can carry, if any.

A pure function of plain data. The tier (or an experiment variant) proposes a
percent; it is lowered until the offered items' margin after the discount,

    sum(price x (1 - p) - cost) / sum(price x (1 - p))   over items with a catalog cost,

stays at or above `[vouchers] margin_floor`. Solving for p gives the cap
p <= 1 - C / (P x (1 - floor)), rounded down to a whole percent. Items without a
cost (or a price) do not count: the catalog says nothing about their margin.

With `skip_likely_buyers`, a customer whose probability to buy within the
voucher's validity is already at least `likely_buyer_probability` gets the
products without a voucher: a discount to someone who would buy anyway is
the over-care this product exists to stop. The probability is a Poisson
estimate from the customer's distinct purchase days over the last year.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from recsys.records import Item, Purchase
from recsys.rules._time import naive_utc
from recsys.rules.config import VouchersConfig

#: Why an offer carries the voucher it carries (recorded on the exposure and the offer line).
TIER = "tier"  # the tier's percent, within the margin cap
VARIANT = "variant"  # an experiment variant's percent, within the margin cap
MARGIN_CAP = "margin_cap"  # lowered to keep the margin floor
MARGIN_FLOOR = "margin_floor"  # no voucher: even 1% would break the floor
LIKELY_BUYER = "likely_buyer"  # no voucher: likely to buy within the validity anyway
NO_TIER_VOUCHER = "no_tier_voucher"  # the tier (or variant) gives 0%
VOUCHER_REASONS = (TIER, VARIANT, MARGIN_CAP, MARGIN_FLOOR, LIKELY_BUYER, NO_TIER_VOUCHER)

_YEAR = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class VoucherChoice:
    """The voucher to send (`percent` None: none) and why."""

    percent: int | None
    reason: str
    #: The percent proposed before the margin and likely-buyer checks.
    proposed: int = 0


def margin_cap(items: Iterable[Item], floor: float) -> int | None:
    """The largest whole percent that keeps `items`' margin at `floor`; None: no cost known.

    A negative answer (the items are below the floor even at full price) is 0.
    """
    price = cost = 0.0
    for item in items:
        if item.cost is None or item.price is None or item.price <= 0:
            continue
        price += item.price
        cost += item.cost
    if price <= 0:
        return None
    cap = 1.0 - cost / (price * (1.0 - floor))
    # A hair of tolerance: 1 - 0.72/(1*0.9) is 0.19999999999999996, and 20% keeps 10% exactly.
    return max(0, math.floor(cap * 100 + 1e-9))


def buy_probability(purchases: Sequence[Purchase], now: datetime, days: int) -> float:
    """P(at least one purchase within `days`), Poisson at the last year's purchase-day rate."""
    now = naive_utc(now)
    since = now - _YEAR
    active = {
        at.date()
        for p in purchases
        if p.quantity > 0 and since < (at := naive_utc(p.purchased_at)) <= now
    }
    rate = len(active) / 365.0
    return 1.0 - math.exp(-rate * days)


def choose_voucher(
    proposed: int,
    items: Iterable[Item],
    config: VouchersConfig,
    probability: float,
    *,
    from_variant: bool = False,
) -> VoucherChoice:
    """The voucher for an offer of `items` when the tier (or a variant) proposes `proposed` %."""
    if proposed <= 0:
        return VoucherChoice(None, NO_TIER_VOUCHER, proposed)
    if config.skip_likely_buyers and probability >= config.likely_buyer_probability:
        return VoucherChoice(None, LIKELY_BUYER, proposed)
    cap = margin_cap(items, config.margin_floor)
    if cap is not None and cap < proposed:
        if cap == 0:
            return VoucherChoice(None, MARGIN_FLOOR, proposed)
        return VoucherChoice(cap, MARGIN_CAP, proposed)
    return VoucherChoice(proposed, VARIANT if from_variant else TIER, proposed)
