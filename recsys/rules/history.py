"""What a customer holds: per-item bought and returned quantities up to `now`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from statistics import median

from recsys.records import Purchase
from recsys.rules._time import naive_utc


@dataclass(frozen=True, slots=True)
class Holding:
    """A customer's history with one item. Quantities are positive; `last_bought_at` is UTC.

    `bought_on` holds the distinct UTC days the item was bought on; the customer's own
    repurchase interval (`median_gap_days`) is derived from it only when a rule asks,
    since most held items are never candidates.
    """

    item_id: str
    bought: float
    returned: float
    last_bought_at: datetime
    bought_on: frozenset[date] = frozenset()

    @property
    def kept(self) -> bool:
        """False when every unit bought was returned (a full return)."""
        return self.bought - self.returned > 0

    @property
    def days(self) -> int:
        """Distinct days the item was bought on."""
        return max(len(self.bought_on), 1)

    @property
    def median_gap_days(self) -> float | None:
        """Median of the gaps between those days (None below two days)."""
        if len(self.bought_on) < 2:
            return None
        ordered = sorted(self.bought_on)
        return float(median((b - a).days for a, b in pairwise(ordered)))


def holdings(purchases: Iterable[Purchase], now: datetime) -> dict[str, Holding]:
    """Holdings by item_id from lines at or before `now` (later lines do not exist yet).

    Items only ever returned (a return of something bought before the history
    starts) are left out: there is no purchase to date a rule from. This runs for
    every customer of a campaign, so it compares naive UTC times and converts only
    each item's last purchase.
    """
    now = naive_utc(now)
    bought: dict[str, float] = {}
    returned: dict[str, float] = {}
    last: dict[str, datetime] = {}
    days: dict[str, set[date]] = {}
    for line in purchases:
        at = naive_utc(line.purchased_at)
        quantity = line.quantity
        if at > now or quantity == 0:
            continue
        item_id = line.item_id
        if quantity < 0:
            returned[item_id] = returned.get(item_id, 0.0) - quantity
            continue
        bought[item_id] = bought.get(item_id, 0.0) + quantity
        days.setdefault(item_id, set()).add(at.date())
        previous = last.get(item_id)
        if previous is None or at > previous:
            last[item_id] = at
    return {
        item_id: Holding(
            item_id,
            quantity,
            returned.get(item_id, 0.0),
            last[item_id].replace(tzinfo=UTC),
            frozenset(days[item_id]),
        )
        for item_id, quantity in bought.items()
    }
