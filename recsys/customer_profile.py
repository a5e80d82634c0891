"""One customer as a marketer sees them: tier, dates, orders and what the rules learned.

Pure: built from the `CustomerData` the store loaded, the catalog, the model's
learned category table and an explicit `now`, so the console and its tests see
exactly what the rules see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from recsys.offers import CustomerData
from recsys.records import Customer, Item
from recsys.rules._time import naive_utc
from recsys.rules.categories import CategoryBehaviour, behaviour_key, resolve_behaviour
from recsys.rules.config import RulesConfig
from recsys.rules.contact import ContactDecision, may_contact
from recsys.rules.cooldown import durable_blocks
from recsys.rules.hierarchy import ancestors
from recsys.rules.history import holdings
from recsys.rules.occasions import next_anniversary
from recsys.rules.tiers import LoyaltyStatus, loyalty_status


@dataclass(frozen=True, slots=True)
class OrderLineView:
    item_id: str
    name: str | None
    category: str | None
    quantity: float
    unit_price: float | None

    @property
    def is_return(self) -> bool:
        return self.quantity < 0


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order of the timeline; `total` is None when no line has a price."""

    order_id: str
    purchased_at: datetime
    lines: tuple[OrderLineView, ...]
    total: float | None


@dataclass(frozen=True, slots=True)
class CategoryView:
    """What the rules do with a category the customer bought in, at `now`.

    `scope`: the level the behaviour applies to (an override may cover a parent).
    `kind`: durable, consumable or regular (regular also when nothing was learned,
    `source` "default"). `restock_due`: a consumable's next due day after its last
    purchase; `cooldown_until`: the end of an active durable block.
    """

    category: str
    scope: str
    kind: str
    source: str
    items_bought: int
    last_bought_at: datetime
    interval_days: int | None
    cooldown_days: int | None
    repeat_rate: float | None
    support: int
    restock_due: date | None
    cooldown_until: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer: Customer
    loyalty: LoyaltyStatus
    next_tier_min_spend: float | None
    tier_progress: float | None
    next_birthday: date | None
    orders: tuple[OrderView, ...]
    categories: tuple[CategoryView, ...]
    contacts: tuple[datetime, ...]
    marketing: ContactDecision


def build_profile(
    data: CustomerData,
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    rules: RulesConfig,
    now: datetime,
) -> CustomerProfile:
    """The profile of a known customer (`data.customer` must be set)."""
    customer = data.customer
    if customer is None:
        raise ValueError("build_profile needs a known customer")
    now = naive_utc(now)
    purchases = [p for p in data.purchases if naive_utc(p.purchased_at) <= now]
    status = loyalty_status(purchases, customer.joined_at, rules.loyalty, now)
    upcoming = next(
        (t for t in rules.loyalty.tiers if t.name == status.next_tier), None
    )
    progress = None
    if upcoming is not None:
        progress = min(status.spend / upcoming.min_spend, 1.0) if upcoming.min_spend > 0 else 1.0
    return CustomerProfile(
        customer=customer,
        loyalty=status,
        next_tier_min_spend=upcoming.min_spend if upcoming is not None else None,
        tier_progress=progress,
        next_birthday=(
            next_anniversary(customer.birthday, now.date()) if customer.birthday else None
        ),
        orders=_orders(data, catalog),
        categories=_categories(data, catalog, behaviours, rules, now),
        contacts=tuple(sorted(data.contact_history, reverse=True)),
        marketing=may_contact(
            customer.marketing_opt_in, data.contact_history, "newsletter", rules.contact, now
        ),
    )


def _orders(data: CustomerData, catalog: Mapping[str, Item]) -> tuple[OrderView, ...]:
    """Orders newest first, lines in item order."""
    grouped: dict[str, list[OrderLineView]] = {}
    times: dict[str, datetime] = {}
    for p in data.purchases:
        item = catalog.get(p.item_id)
        grouped.setdefault(p.order_id, []).append(
            OrderLineView(
                p.item_id,
                item.name if item else None,
                item.category if item else None,
                p.quantity,
                p.unit_price,
            )
        )
        at = naive_utc(p.purchased_at)
        times[p.order_id] = min(times.get(p.order_id, at), at)
    views = []
    for order_id, lines in grouped.items():
        priced = [line for line in lines if line.unit_price is not None]
        total = (
            round(sum(line.quantity * (line.unit_price or 0.0) for line in priced), 2)
            if priced
            else None
        )
        views.append(
            OrderView(order_id, times[order_id], tuple(sorted(lines, key=lambda x: x.item_id)),
                      total)
        )
    views.sort(key=lambda o: (o.purchased_at, o.order_id), reverse=True)
    return tuple(views)


def _categories(
    data: CustomerData,
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    rules: RulesConfig,
    now: datetime,
) -> tuple[CategoryView, ...]:
    held = holdings(data.purchases, now)
    blocks = durable_blocks(
        data.purchases, catalog, behaviours, rules.categories, now, held
    )
    last: dict[str, datetime] = {}
    count: dict[str, int] = {}
    for holding in held.values():
        if not holding.kept:
            continue
        item = catalog.get(holding.item_id)
        key = behaviour_key(holding.item_id, item.category if item else None)
        at = naive_utc(holding.last_bought_at)
        last[key] = max(last.get(key, at), at)
        count[key] = count.get(key, 0) + 1
    views = []
    for key, last_at in last.items():
        behaviour = resolve_behaviour(key, behaviours, rules.categories)
        restock = None
        until = None
        if behaviour is not None and behaviour.kind == "consumable" and behaviour.interval_days:
            restock = (last_at + timedelta(days=behaviour.interval_days)).date()
        if behaviour is not None and behaviour.kind == "durable":
            ends = [blocks[level] for level in ancestors(key) if level in blocks]
            until = naive_utc(max(ends)) if ends else None
        views.append(
            CategoryView(
                category=key,
                scope=behaviour.category if behaviour else key,
                kind=behaviour.kind if behaviour else "regular",
                source=behaviour.source if behaviour else "default",
                items_bought=count[key],
                last_bought_at=last_at,
                interval_days=behaviour.interval_days if behaviour else None,
                cooldown_days=behaviour.cooldown_days if behaviour else None,
                repeat_rate=behaviour.repeat_rate if behaviour else None,
                support=behaviour.support if behaviour else 0,
                restock_due=restock,
                cooldown_until=until,
            )
        )
    views.sort(key=lambda v: v.last_bought_at, reverse=True)
    return tuple(views)
