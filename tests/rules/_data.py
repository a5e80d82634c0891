"""Shared test data: a small demo-like catalog and builders for histories and contexts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from recsys.records import Item, Purchase
from recsys.rules import (
    Candidate,
    CategoryBehaviour,
    LearnedComplements,
    RuleContext,
    RulesConfig,
    load_rules,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# The shipped rules carry the demo retailer's overrides (TVs durable 730 days,
# coffee capsules consumable every 30 days, ...), which the rule tests rely on.
SHIPPED = load_rules(None)
# A monthly newsletter that leaves a bought item alone for the week after the purchase:
# the setting a retailer who prefers that quiet uses (docs/rules.md measures its cost).
WEEK_WAIT = SHIPPED.model_copy(
    update={
        "categories": SHIPPED.categories.model_copy(
            update={"restock_horizon_days": {"newsletter": 30.0}, "restock_wait_days": 7.0}
        )
    }
)

CATALOG: dict[str, Item] = {
    item.item_id: item
    for item in (
        Item("tv-55", 'TV 55" Zentro', "electronics/tv/oled", 899.0),
        Item("tv-43", 'TV 43" Zentro', "electronics/tv/lcd", 399.0),
        Item("tv-65", 'TV 65" Lumo', "electronics/tv", 1299.0),
        Item("mount", "Wall mount", "electronics/tv-mounts", 49.0),
        Item("hdmi", "HDMI cable 2m", "electronics/hdmi-cables", 9.99),
        Item("bike", "City bike", "sports/bicycles", 599.0),
        Item("helmet", "Helmet", "sports/helmets", 59.0),
        Item("lock", "Bike lock", "sports/bike-locks", 29.0),
        Item("laptop", "Laptop 14", "electronics/laptops", 999.0),
        Item("bag", "Laptop bag", "electronics/laptop-bags", 39.0),
        Item("coffee", "Coffee capsules x50", "grocery/coffee-capsules", 17.5),
        Item("coffee-dark", "Dark capsules x50", "grocery/coffee-capsules", 18.5),
        Item("ink", "Printer ink", "office/printer-ink", 35.0),
        Item("food", "Dog food 10kg", "pets/pet-food", 42.0),
        Item("filter", "Water filter", "home/water-filters", 25.0),
        Item("novel", "A novel", "books/fiction", 12.0),
        Item("cookbook", "A cookbook", "books/cooking", 25.0),
        Item("mug", "Mug", "home/kitchen", 8.0),
        Item("fridge", "Fridge", "appliances/fridges", 799.0, in_stock=False),
        Item("socks", "Socks", None, 5.0),
    )
}


def buy(
    item_id: str,
    days_ago: float,
    quantity: float = 1,
    price: float | None = None,
    order_id: str | None = None,
    now: datetime = NOW,
) -> Purchase:
    """A purchase line `days_ago` days before `now`, priced from the catalog by default."""
    unit_price = (
        price if price is not None else CATALOG[item_id].price if item_id in CATALOG else 1.0
    )
    at = now - timedelta(days=days_ago)
    return Purchase(order_id or f"o-{item_id}-{days_ago}", item_id, quantity, unit_price, at)


def ctx(
    purchases: Sequence[Purchase] = (),
    *,
    basket: Sequence[str] = (),
    now: datetime = NOW,
    config: RulesConfig = SHIPPED,
    catalog: Mapping[str, Item] = CATALOG,
    behaviours: Mapping[str, CategoryBehaviour] | None = None,
    complements: LearnedComplements | None = None,
    placement: str = "newsletter",
) -> RuleContext:
    return RuleContext(
        now=now,
        config=config,
        catalog=catalog,
        purchases=tuple(purchases),
        behaviours=behaviours or {},
        complements=complements or LearnedComplements(),
        basket=tuple(basket),
        placement=placement,
    )


def cands(*item_ids: str, source: str = "model") -> list[Candidate]:
    """Candidates with descending scores, in the given order."""
    n = len(item_ids)
    return [Candidate(item_id, float(n - i), None, source) for i, item_id in enumerate(item_ids)]


def ids(candidates: Sequence[Candidate]) -> list[str]:
    return [c.item_id for c in candidates]
