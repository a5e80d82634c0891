"""One customer as a marketer sees them: tier, dates, orders and what the rules learned.

Pure: built from the `CustomerData` the store loaded, the catalog, the model's
learned category table and an explicit `now`, so the console and its tests see
exactly what the rules see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from recsys.offers import CustomerData
from recsys.records import Customer, Item
from recsys.rules._time import naive_utc
from recsys.rules.already_bought import back_at
from recsys.rules.categories import (
    ITEM_SCOPE,
    CategoryBehaviour,
    behaviour_key,
    resolve_behaviour,
    resolve_item_behaviour,
)
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
class HeldItemView:
    """One item the customer kept, as the already-bought rule treats it at `now`.

    `kind`, `source`, `scope` and `interval_days` are the item's resolved behaviour
    (`resolve_item_behaviour`, what the rules use): `scope` is `item:<id>` when the
    item's own learned entry applies. `back_on`: the day it may be offered again in a
    rebuy placement and `back_reason` the reason it will carry (a consumable's restock
    or the customer's own cycle); None when it is not offered again.
    """

    item_id: str
    name: str | None
    last_bought_at: datetime
    kind: str
    source: str
    scope: str | None
    interval_days: int | None
    back_on: date | None
    back_reason: str | None

    @property
    def own_entry(self) -> bool:
        return self.scope == f"{ITEM_SCOPE}{self.item_id}"


@dataclass(frozen=True, slots=True)
class CategoryView:
    """What the rules do with a category the customer bought in, at `now`.

    The category-level fields (`scope`, `kind`, `source`, `interval_days`,
    `cooldown_days`, `repeat_rate`, `support`) are the category's resolved behaviour:
    `scope` is the level it applies to (an override may cover a parent), `kind`
    regular with `source` "default" when nothing was learned. `items` are the kept
    items, each with its own resolution (an item's learned entry beats its
    category's unless the category is durable or overridden). `restock_due`: the first
    day one of them may be offered again; `cooldown_until`: the end of an active
    durable block over the category.
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
    items: tuple[HeldItemView, ...] = ()


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
    config = rules.categories
    held = holdings(data.purchases, now)
    resolved: dict[str, CategoryBehaviour | None] = {}

    def resolve(item_id: str) -> CategoryBehaviour | None:
        if item_id not in resolved:
            item = catalog.get(item_id)
            resolved[item_id] = resolve_item_behaviour(
                item_id, item.category if item else None, behaviours, config
            )
        return resolved[item_id]

    blocks = durable_blocks(data.purchases, catalog, behaviours, config, now, held, resolve)
    grouped: dict[str, list[HeldItemView]] = {}
    for holding in held.values():
        if not holding.kept:
            continue
        item = catalog.get(holding.item_id)
        behaviour = resolve(holding.item_id)
        back = back_at(holding, behaviour, config)
        key = behaviour_key(holding.item_id, item.category if item else None)
        grouped.setdefault(key, []).append(
            HeldItemView(
                item_id=holding.item_id,
                name=item.name if item else None,
                last_bought_at=naive_utc(holding.last_bought_at),
                kind=behaviour.kind if behaviour else "regular",
                source=behaviour.source if behaviour else "default",
                scope=behaviour.category if behaviour else None,
                interval_days=behaviour.interval_days if behaviour else None,
                back_on=naive_utc(back[0]).date() if back else None,
                back_reason=back[1] if back else None,
            )
        )
    views = []
    for key, held_items in grouped.items():
        held_items.sort(key=lambda h: (h.last_bought_at, h.item_id), reverse=True)
        behaviour = resolve_behaviour(key, behaviours, config)
        ends = [blocks[level] for level in ancestors(key) if level in blocks]
        due = [h.back_on for h in held_items if h.back_on is not None]
        views.append(
            CategoryView(
                category=key,
                scope=behaviour.category if behaviour else key,
                kind=behaviour.kind if behaviour else "regular",
                source=behaviour.source if behaviour else "default",
                items_bought=len(held_items),
                last_bought_at=held_items[0].last_bought_at,
                interval_days=behaviour.interval_days if behaviour else None,
                cooldown_days=behaviour.cooldown_days if behaviour else None,
                repeat_rate=behaviour.repeat_rate if behaviour else None,
                support=behaviour.support if behaviour else 0,
                restock_due=min(due) if due else None,
                cooldown_until=naive_utc(max(ends)) if ends else None,
                items=tuple(held_items),
            )
        )
    views.sort(key=lambda v: (v.last_bought_at, v.category), reverse=True)
    return tuple(views)
