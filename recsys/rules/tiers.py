"""Loyalty status: which tier a customer is in, why, and how far the next tier is."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from recsys.records import Purchase
from recsys.rules._time import naive_utc
from recsys.rules.config import LoyaltyConfig, TierConfig
from recsys.rules.occasions import next_anniversary

Occasion = Literal["anniversary", "birthday"]


@dataclass(frozen=True, slots=True)
class LoyaltyStatus:
    """The SPEC's loyalty fields (plus `orders_to_next_tier` and the tier's vouchers).

    Money is in the catalog's currency, rounded to cents; dates are UTC days.
    `next_tier`, `spend_to_next_tier` and `orders_to_next_tier` are None at the top tier.
    """

    tier: str
    spend: float
    orders: int
    window_days: int
    next_tier: str | None
    spend_to_next_tier: float | None
    orders_to_next_tier: int | None
    member_since: date | None
    next_anniversary: date | None
    benefits: tuple[str, ...]
    anniversary_voucher_percent: int
    birthday_voucher_percent: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: dates as ISO strings, benefits as a list."""
        return {
            "tier": self.tier,
            "spend": self.spend,
            "orders": self.orders,
            "window_days": self.window_days,
            "next_tier": self.next_tier,
            "spend_to_next_tier": self.spend_to_next_tier,
            "orders_to_next_tier": self.orders_to_next_tier,
            "member_since": _iso(self.member_since),
            "next_anniversary": _iso(self.next_anniversary),
            "benefits": list(self.benefits),
            "anniversary_voucher_percent": self.anniversary_voucher_percent,
            "birthday_voucher_percent": self.birthday_voucher_percent,
        }


def loyalty_status(
    purchases: Sequence[Purchase],
    joined_at: date | None,
    config: LoyaltyConfig,
    now: datetime,
) -> LoyaltyStatus:
    """The customer's tier at `now` from their whole purchase history.

    Spend and orders count lines with `now - window_days < purchased_at <= now`.
    A return (negative quantity) reduces spend when it happens, even for an item
    bought before the window; spend never goes below 0. An order counts when its
    lines in the window net a positive quantity, so a return order is not an
    order. Lines without a unit price count for orders but not for spend.
    Purchases after `now` are ignored, so the result is a pure function of `now`.
    """
    now = naive_utc(now)
    start = now - timedelta(days=config.window_days)
    spend = 0.0
    order_quantity: dict[str, float] = defaultdict(float)
    first_day: date | None = None
    for line in purchases:
        at = naive_utc(line.purchased_at)
        if at > now:
            continue
        if line.quantity > 0 and (first_day is None or at.date() < first_day):
            first_day = at.date()
        if at <= start:
            continue
        if line.unit_price is not None:
            spend += line.quantity * line.unit_price
        order_quantity[line.order_id] += line.quantity
    spend = round(max(spend, 0.0), 2)
    orders = sum(1 for quantity in order_quantity.values() if quantity > 0)

    index = tier_index(spend, orders, config.tiers)
    tier = config.tiers[index]
    upcoming = config.tiers[index + 1] if index + 1 < len(config.tiers) else None
    member_since = joined_at if joined_at is not None else first_day
    return LoyaltyStatus(
        tier=tier.name,
        spend=spend,
        orders=orders,
        window_days=config.window_days,
        next_tier=upcoming.name if upcoming else None,
        spend_to_next_tier=round(max(upcoming.min_spend - spend, 0.0), 2) if upcoming else None,
        orders_to_next_tier=max(upcoming.orders_required - orders, 0) if upcoming else None,
        member_since=member_since,
        next_anniversary=(
            next_anniversary(member_since, now.date()) if member_since is not None else None
        ),
        benefits=tier.benefits,
        anniversary_voucher_percent=tier.anniversary_voucher_percent,
        birthday_voucher_percent=tier.birthday_voucher_percent,
    )


def tier_index(spend: float, orders: int, tiers: Sequence[TierConfig]) -> int:
    """Index of the highest tier whose spend and order thresholds are both met.

    The config guarantees the first tier needs nothing and thresholds never
    decrease, so the qualifying tiers are always a prefix of the ladder.
    """
    index = 0
    for i, tier in enumerate(tiers):
        if spend >= tier.min_spend and orders >= tier.orders_required:
            index = i
        else:
            break
    return index


def voucher_percent(config: LoyaltyConfig, tier_name: str, occasion: Occasion) -> int:
    """The voucher percent of `tier_name` for an occasion; raises KeyError for an unknown tier."""
    for tier in config.tiers:
        if tier.name == tier_name:
            if occasion == "anniversary":
                return tier.anniversary_voucher_percent
            return tier.birthday_voucher_percent
    raise KeyError(tier_name)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
