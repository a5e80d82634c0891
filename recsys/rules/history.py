"""What a customer holds: per-item bought and returned quantities up to `now`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from recsys.records import Purchase
from recsys.rules._time import naive_utc


@dataclass(frozen=True, slots=True)
class Holding:
    """A customer's history with one item. Quantities are positive; times are UTC."""

    item_id: str
    bought: float
    returned: float
    first_bought_at: datetime
    last_bought_at: datetime

    @property
    def kept(self) -> bool:
        """False when every unit bought was returned (a full return)."""
        return self.bought - self.returned > 0


def holdings(purchases: Iterable[Purchase], now: datetime) -> dict[str, Holding]:
    """Holdings by item_id from lines at or before `now` (later lines do not exist yet).

    Items only ever returned (a return of something bought before the history
    starts) are left out: there is no purchase to date a rule from.
    """
    now = naive_utc(now)
    bought: dict[str, float] = {}
    returned: dict[str, float] = {}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for line in purchases:
        at = naive_utc(line.purchased_at)
        if at > now or line.quantity == 0:
            continue
        if line.quantity < 0:
            returned[line.item_id] = returned.get(line.item_id, 0.0) - line.quantity
            continue
        bought[line.item_id] = bought.get(line.item_id, 0.0) + line.quantity
        if line.item_id not in first or at < first[line.item_id]:
            first[line.item_id] = at
        if line.item_id not in last or at > last[line.item_id]:
            last[line.item_id] = at
    return {
        item_id: Holding(
            item_id=item_id,
            bought=quantity,
            returned=returned.get(item_id, 0.0),
            first_bought_at=first[item_id].replace(tzinfo=UTC),
            last_bought_at=last[item_id].replace(tzinfo=UTC),
        )
        for item_id, quantity in bought.items()
    }
