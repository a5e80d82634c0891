"""Care violations: items in a top-K list that a careful retailer would not show.

Counted per 1,000 lists, from the customers' history before `now` and the
catalog, independently of the rules layer (it checks the rules, so it does not
call them). Three kinds, each a plain function of (lists, history, catalog,
behaviours, config, now):

- **durable in cooldown**: the item's category resolves to durable and the
  customer keeps (net quantity > 0) an item whose durable scope covers it,
  last bought fewer than that scope's `cooldown_days` before `now`. The scope
  is the category level that made the *owned* item durable (an override on
  `electronics/tv` blocks every TV), as in `recsys.rules.cooldown`.
- **out of stock**: the item is missing from the catalog or has
  `in_stock == False`.
- **re-offered**: the customer keeps the item (net quantity > 0) and it is not
  due again: a consumable (learned for the item or its category, or an
  override) is due once `restock_due_share` of its interval has passed since
  its last purchase; a non-durable item the customer bought on at least
  `personal_min_days` distinct days (and not overridden) also once
  `personal_due_share` of the customer's own median gap has passed. Durables
  and everything else never come back.

One shown item may break several kinds (the TV bought last week, offered
again, is both durable in cooldown and re-offered); `total` counts shown items
with at least one violation, so it is at most the sum of the three.
Items resolve through `recsys.rules.categories.resolve_item_behaviour`
(overrides first, a learned durable category, then the item's own learned
entry, then its category's).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from recsys.records import Item
from recsys.rules.categories import CategoryBehaviour, resolve_item_behaviour
from recsys.rules.config import CategoriesConfig
from recsys.rules.hierarchy import under_any

__all__ = [
    "CARE_KINDS",
    "CareCounts",
    "Owned",
    "count_care_violations",
    "durable_scopes",
    "item_violations",
    "owned_items",
]

CARE_KINDS = ("durable_in_cooldown", "out_of_stock", "reoffered")


@dataclass(frozen=True, slots=True)
class CareCounts:
    """Violations over `lists` lists of `slots` shown items in all.

    Each kind counts shown items (not lists); `total` counts shown items with at
    least one violation.
    """

    lists: int
    slots: int
    durable_in_cooldown: int = 0
    out_of_stock: int = 0
    reoffered: int = 0
    total: int = 0

    def per_1000(self) -> dict[str, float]:
        """`<kind>_per_1000` and `total_per_1000`: violations per 1,000 lists (0.0 for none)."""
        counts = {
            "durable_in_cooldown": self.durable_in_cooldown,
            "out_of_stock": self.out_of_stock,
            "reoffered": self.reoffered,
            "total": self.total,
        }
        scale = 1000.0 / self.lists if self.lists else 0.0
        return {f"{name}_per_1000": round(n * scale, 4) for name, n in counts.items()}

    def to_json(self) -> dict[str, float | int]:
        return {
            "lists": self.lists,
            "slots": self.slots,
            "durable_in_cooldown": self.durable_in_cooldown,
            "out_of_stock": self.out_of_stock,
            "reoffered": self.reoffered,
            "total": self.total,
            **self.per_1000(),
        }


@dataclass(frozen=True, slots=True)
class Owned:
    """A customer's net history with one item before `now`; `last_bought_at` is naive UTC."""

    item_id: str
    net_quantity: float
    last_bought_at: datetime
    days: int = 1
    median_gap_days: float | None = None

    @property
    def kept(self) -> bool:
        return self.net_quantity > 0


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def owned_items(
    history: pl.DataFrame, now: datetime, customers: Collection[str] | None = None
) -> dict[str, dict[str, Owned]]:
    """customer_id -> item_id -> `Owned`, from lines at or before `now`.

    `history` has `customer_id`, `item_id`, `quantity` (negative = return) and
    `purchased_at` (naive UTC). Items never bought with a positive quantity
    (returns only) are left out: there is no purchase to date them from.
    `customers` restricts the result (None: everyone).
    """
    now = _naive_utc(now)
    frame = history.filter(pl.col("purchased_at") <= now)
    if customers is not None:
        frame = frame.filter(
            pl.col("customer_id").is_in(pl.Series(list(customers), dtype=pl.String).implode())
        )
    bought_days = pl.col("purchased_at").filter(pl.col("quantity") > 0).dt.date().unique().sort()
    grouped = (
        frame.group_by("customer_id", "item_id")
        .agg(
            pl.col("quantity").sum().alias("net"),
            pl.col("purchased_at").filter(pl.col("quantity") > 0).max().alias("last"),
            bought_days.len().alias("days"),
            bought_days.diff().dt.total_days().drop_nulls().median().alias("gap"),
        )
        .filter(pl.col("last").is_not_null())
    )
    out: dict[str, dict[str, Owned]] = {}
    for customer_id, item_id, net, last, days, gap in grouped.iter_rows():
        out.setdefault(customer_id, {})[item_id] = Owned(
            item_id, float(net), _naive_utc(last), int(days), None if gap is None else float(gap)
        )
    return out


class _Resolver:
    """resolve_item_behaviour with a per-item cache."""

    def __init__(
        self,
        catalog: Mapping[str, Item],
        behaviours: Mapping[str, CategoryBehaviour],
        config: CategoriesConfig,
    ) -> None:
        self.catalog = catalog
        self.behaviours = behaviours
        self.config = config
        self._cache: dict[str | None, CategoryBehaviour | None] = {}

    def category(self, item_id: str) -> str | None:
        item = self.catalog.get(item_id)
        return item.category if item is not None else None

    def of(self, item_id: str) -> CategoryBehaviour | None:
        if item_id not in self._cache:
            self._cache[item_id] = resolve_item_behaviour(
                item_id, self.category(item_id), self.behaviours, self.config
            )
        return self._cache[item_id]


def durable_scopes(
    owned: Mapping[str, Owned],
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
    now: datetime,
) -> set[str]:
    """Durable scopes (category levels) the customer bought in within their cooldown."""
    return _scopes(owned, _Resolver(catalog, behaviours, config), _naive_utc(now))


def _scopes(owned: Mapping[str, Owned], resolver: _Resolver, now: datetime) -> set[str]:
    scopes: set[str] = set()
    for holding in owned.values():
        if not holding.kept:
            continue
        behaviour = resolver.of(holding.item_id)
        if behaviour is None or behaviour.kind != "durable" or behaviour.cooldown_days is None:
            continue
        if now - holding.last_bought_at < timedelta(days=behaviour.cooldown_days):
            scopes.add(behaviour.category)
    return scopes


def item_violations(
    item_id: str,
    owned: Mapping[str, Owned],
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
    now: datetime,
    horizon_days: float = 0.0,
) -> tuple[str, ...]:
    """The kinds (of `CARE_KINDS`) that showing `item_id` to this customer breaks."""
    resolver = _Resolver(catalog, behaviours, config)
    now = _naive_utc(now)
    scopes = _scopes(owned, resolver, now)
    return _violations(item_id, owned, scopes, resolver, now, horizon_days)


def _violations(
    item_id: str,
    owned: Mapping[str, Owned],
    scopes: Collection[str],
    resolver: _Resolver,
    now: datetime,
    horizon_days: float,
) -> tuple[str, ...]:
    found: list[str] = []
    item = resolver.catalog.get(item_id)
    behaviour = resolver.of(item_id)
    category = item.category if item is not None else None
    if (
        scopes
        and category
        and behaviour is not None
        and behaviour.kind == "durable"
        and under_any(category, scopes)
    ):
        found.append("durable_in_cooldown")
    if item is None or not item.in_stock:
        found.append("out_of_stock")
    holding = owned.get(item_id)
    if (
        holding is not None
        and holding.kept
        and not _due_again(holding, behaviour, resolver, now, horizon_days)
    ):
        found.append("reoffered")
    return tuple(found)


def _due_again(
    holding: Owned,
    behaviour: CategoryBehaviour | None,
    resolver: _Resolver,
    now: datetime,
    horizon_days: float,
) -> bool:
    """Due within the horizon, and (unless due already) `restock_wait_days` after buying."""
    config = resolver.config
    elapsed = (now - holding.last_bought_at) / timedelta(days=1)

    def due(days: float) -> bool:
        return elapsed >= days or (
            elapsed + horizon_days >= days and elapsed >= config.restock_wait_days
        )

    if behaviour is not None and behaviour.kind == "durable":
        return False
    if (
        behaviour is not None
        and behaviour.kind == "consumable"
        and behaviour.interval_days
        and due(behaviour.interval_days * config.restock_due_share)
    ):
        return True
    if behaviour is not None and behaviour.source == "override":
        return False
    if (
        config.personal_min_days < 2
        or holding.days < config.personal_min_days
        or holding.median_gap_days is None
    ):
        return False
    return due(max(holding.median_gap_days, 1.0) * config.personal_due_share)


def count_care_violations(
    lists: Mapping[str, Sequence[str]],
    history: pl.DataFrame,
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
    now: datetime,
    k: int | None = None,
    placement: str | None = None,
) -> CareCounts:
    """Care violations in `lists` (customer_id -> ranked item ids), each cut to `k` items.

    `history` as in `owned_items` (lines after `now` are ignored); `catalog`
    maps item_id -> Item with the stock to check against; `behaviours` is the
    learned category table and `config` the `[categories]` section (overrides,
    default cooldown). With `placement`, the lists are checked as shown there: an
    item that comes due within its restock horizon (`config.horizon_days`) is not a
    re-offer. A repeated item in one list counts once.
    """
    horizon_days = config.horizon_days(placement) if placement is not None else 0.0
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    now = _naive_utc(now)
    resolver = _Resolver(catalog, behaviours, config)
    owned_by = owned_items(history, now, customers=list(lists))
    counts = dict.fromkeys(CARE_KINDS, 0)
    slots = total = 0
    for customer_id, ranked in lists.items():
        owned = owned_by.get(customer_id, {})
        scopes = _scopes(owned, resolver, now)
        shown = list(dict.fromkeys(ranked if k is None else ranked[:k]))
        slots += len(shown)
        for item_id in shown:
            kinds = _violations(item_id, owned, scopes, resolver, now, horizon_days)
            for kind in kinds:
                counts[kind] += 1
            total += bool(kinds)
    return CareCounts(lists=len(lists), slots=slots, total=total, **counts)
