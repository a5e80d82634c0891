"""Category behaviour: durable, consumable or regular, learned from purchase history.

A category's class decides what the already-bought and cooldown rules do with
it. Classes are learned at training time (the result is saved in the model
artifact, hence the JSON round trip) and overrides in `rules.toml` win.

Learning happens per item category exactly as the catalog gives it (the
leaf), never aggregated into parents: at a parent level, buying a TV and its
wall mount two days later looks like a repeat purchase of `electronics`, which
would make a whole department "consumable" (re-offering bought items) or
"durable" (blocking everything in it). A leaf without enough buyers is left
unlearned and treated as regular, the safe default: a bought item is not
offered again and nothing else is blocked. Overrides, written by people, are
hierarchical: one for `electronics/tv` covers `electronics/tv/oled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from recsys.rules._packed import bought_days, packed_key, radixes, string_codes
from recsys.rules.config import CategoriesConfig, CategoryClass, CategoryOverride
from recsys.rules.hierarchy import ancestors

# polars is imported inside the functions that build frames: the API's workers never
# need it, and it costs each of them about 40 MiB.
if TYPE_CHECKING:
    import polars as pl

Source = Literal["learned", "override"]
_CLASSES: tuple[CategoryClass, ...] = ("durable", "consumable", "regular")
_SOURCES: tuple[Source, ...] = ("learned", "override")


@dataclass(frozen=True, slots=True)
class CategoryBehaviour:
    """How customers buy in one category (and everything under it).

    `support` is the number of distinct buyers, `returning` how many of them shopped
    again on a later day (anything), `repeat_rate` the share of those returning buyers
    who bought in the category again on a later day (what makes a durable),
    `same_item_rate` the share who bought one of its items again (what makes a
    consumable: it is the same item that comes back), `median_interval_days` the
    median over repeat buyers of their median days between purchase days and
    `interval_spread` its (p75 - p25) / median. `interval_days` is the
    repurchase interval of a consumable, `cooldown_days` the block of a durable
    (None in learned entries: the config's default applies when resolved).
    """

    category: str
    kind: CategoryClass
    support: int = 0
    repeat_rate: float | None = None
    median_interval_days: float | None = None
    interval_spread: float | None = None
    interval_days: int | None = None
    cooldown_days: int | None = None
    source: Source = "learned"
    returning: int | None = None
    same_item_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "class": self.kind,
            "support": self.support,
            "repeat_rate": self.repeat_rate,
            "returning": self.returning,
            "same_item_rate": self.same_item_rate,
            "median_interval_days": self.median_interval_days,
            "interval_spread": self.interval_spread,
            "interval_days": self.interval_days,
            "cooldown_days": self.cooldown_days,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoryBehaviour:
        """Inverse of `to_dict`; raises ValueError on an unknown class or source."""
        kind = data["class"]
        source = data.get("source", "learned")
        if kind not in _CLASSES or source not in _SOURCES:
            raise ValueError(f"bad category behaviour: class={kind!r} source={source!r}")
        return cls(
            category=str(data["category"]),
            kind=cast(CategoryClass, kind),
            support=int(data.get("support", 0)),
            repeat_rate=_optional_float(data.get("repeat_rate")),
            returning=_optional_int(data.get("returning")),
            same_item_rate=_optional_float(data.get("same_item_rate")),
            median_interval_days=_optional_float(data.get("median_interval_days")),
            interval_spread=_optional_float(data.get("interval_spread")),
            interval_days=_optional_int(data.get("interval_days")),
            cooldown_days=_optional_int(data.get("cooldown_days")),
            source=cast(Source, source),
        )


def behaviours_to_dict(table: Mapping[str, CategoryBehaviour]) -> dict[str, dict[str, Any]]:
    """The learned table as plain JSON-serialisable data, for the model artifact."""
    return {category: behaviour.to_dict() for category, behaviour in sorted(table.items())}


def behaviours_from_dict(data: Mapping[str, Mapping[str, Any]]) -> dict[str, CategoryBehaviour]:
    return {category: CategoryBehaviour.from_dict(entry) for category, entry in data.items()}


def learn_category_behaviour(
    purchases: pl.DataFrame,
    item_category: Mapping[str, str] | pl.DataFrame,
    config: CategoriesConfig,
    *,
    bought: pl.DataFrame | None = None,
) -> dict[str, CategoryBehaviour]:
    """Classify every item category with at least `config.min_buyers` buyers, and every
    item with at least `config.item_min_buyers` buyers on its own (key `item:<id>`).

    `purchases` has columns `customer_id`, `item_id`, `purchased_at` (date or
    datetime, UTC) and optionally `quantity` (default 1; lines with quantity
    <= 0 are returns and ignored). `item_category` maps item_id -> category, as
    a mapping or a frame with `item_id` and `category`; items without one are
    learned per item only. Purchases are counted per distinct day, so two lines
    of one order or two orders on one day are one purchase occasion.

    Why per item too: within one category some products are rebought (a
    customer's favourite mug design) and others never are; the item's own
    figures say which, once enough people bought it. Resolution
    (`resolve_item_behaviour`) prefers the item's entry, except that a durable
    category keeps blocking substitutes.

    `bought`, if given, is `bought_days(purchases, "item")`, already computed by the
    caller (`learn_rule_extras` shares it with the complements learner).
    """
    import polars as pl

    item_categories = _item_categories(item_category)
    if purchases.is_empty():
        return {}
    if bought is None:
        bought = bought_days(purchases, "item")
    if bought.is_empty():
        return {}
    items = bought.select(pl.col("item_id").unique()).select(
        pl.col("item_id").to_physical().alias("scope"),
        (pl.lit(ITEM_SCOPE) + pl.col("item_id").cast(pl.String)).alias("name"),
    )
    categories = item_categories.filter(~pl.col("category").str.starts_with(ITEM_SCOPE)).select(
        string_codes("item_id").alias("item"),
        string_codes("category").alias("scope"),
        pl.col("category").alias("name"),
    )
    by_category = bought.join(categories.select("item", "scope"), on="item", how="inner")
    last_days = bought.group_by("customer").agg(pl.col("day").max().alias("last_day"))
    needed = (
        pl.when(pl.col("name").str.starts_with(ITEM_SCOPE))
        .then(pl.lit(config.item_min_buyers))
        .otherwise(pl.lit(config.min_buyers))
    )
    stats = pl.concat(
        [
            _scope_stats(by_category.select("scope", "customer", "day"), last_days)
            .join(categories.select("scope", "name").unique("scope"), on="scope")
            .join(_same_item_buyers(by_category), on="scope", how="left")
            .with_columns(pl.col("same_item_buyers").fill_null(0)),
            # an item's own scope: its repeat buyers are the ones who bought it again
            _scope_stats(bought.select(pl.col("item").alias("scope"), "customer", "day"), last_days)
            .join(items, on="scope")
            .with_columns(pl.col("repeat_buyers").alias("same_item_buyers")),
        ]
    ).filter((pl.col("support") >= needed) & (pl.col("returning") >= needed))
    table: dict[str, CategoryBehaviour] = {}
    for row in stats.iter_rows(named=True):
        table[row["name"]] = _classify(row, config)
    return dict(sorted(table.items()))


def _same_item_buyers(rows: pl.DataFrame) -> pl.DataFrame:
    """Per category scope: the buyers who bought one of its items on two days or more.

    A consumable comes back as the same item, so a category is one only if its buyers
    rebuy the same items: readers buy another novel, rarely the same one again. `rows`
    has integer columns `scope`, `item`, `customer`, `day` (an item in one scope).
    """
    import polars as pl

    _, customers, n_days = radixes(rows, ["item", "customer", "day"])
    key = packed_key(["item", "customer", "day"], [0, customers, n_days])
    bought_on = rows.select(key.alias("key")).get_column("key").unique() // n_days
    again = bought_on.value_counts(name="n_days").filter(pl.col("n_days") >= 2)
    scope_of = rows.select(pl.col("item").cast(pl.UInt64), "scope").unique("item")
    return (
        again.select((pl.col("key") // customers).alias("item"), pl.col("key") % customers)
        .join(scope_of, on="item")
        .group_by("scope")
        .agg(pl.col("key").n_unique().alias("same_item_buyers"))
    )


def _scope_stats(days: pl.DataFrame, last_days: pl.DataFrame) -> pl.DataFrame:
    """Per scope: buyers, returning and repeat buyers, and the buyers' median interval
    (with its quartiles).

    `days` has integer columns `scope`, `customer`, `day` (non-negative), duplicates
    allowed; `last_days` each customer's `last_day` (any purchase). A returning buyer
    shopped again (anything) on a day after their first purchase in the scope: only they
    could have bought in it again, so they are the repeat rate's denominator. A customer
    seen once, common in a sample or a short export, says nothing about whether a
    category is rebought.
    """
    import polars as pl

    # Each distinct (scope, buyer, day) as one packed key, sorted: a buyer's days are then
    # one run, and the gaps come in one vectorised pass. Only repeat buyers have gaps, so
    # the per-buyer medians group a fraction of the rows; the rest are column aggregates.
    # (A per-group `diff().median()` took polars' slow per-group path, over a minute for
    # 1.8M (scope, buyer) groups, and sorting the string ids took seconds.)
    _, customers, n_days = radixes(days, ["scope", "customer", "day"])
    key = packed_key(["scope", "customer", "day"], [0, customers, n_days])
    keys = days.select(key.alias("key")).get_column("key").unique().sort()
    runs = pl.DataFrame({"buyer": keys // n_days, "day": (keys % n_days).cast(pl.Int64)})
    runs = runs.with_columns(
        (pl.col("buyer") != pl.col("buyer").shift(1)).fill_null(True).alias("first"),
        (pl.col("day") - pl.col("day").shift(1)).alias("gap"),
    )
    buyers = (
        runs.filter(pl.col("first"))  # a buyer's first day in the scope
        .with_columns(
            (pl.col("buyer") // customers).alias("scope"),
            (pl.col("buyer") % customers).cast(last_days.schema["customer"]).alias("customer"),
        )
        .join(last_days, on="customer", how="left")
        .group_by("scope")
        .agg(
            pl.len().alias("support"),
            (pl.col("last_day") > pl.col("day")).sum().alias("returning"),
        )
    )
    repeat = (
        runs.filter(~pl.col("first"))
        .group_by("buyer")
        .agg(pl.col("gap").median())
        .group_by((pl.col("buyer") // customers).alias("scope"))
        .agg(
            pl.len().alias("repeat_buyers"),
            pl.col("gap").median().alias("interval"),
            pl.col("gap").quantile(0.25, interpolation="linear").alias("q25"),
            pl.col("gap").quantile(0.75, interpolation="linear").alias("q75"),
        )
    )
    return buyers.join(repeat, on="scope", how="left").with_columns(
        pl.col("repeat_buyers").fill_null(0)
    )


def _classify(row: Mapping[str, Any], config: CategoriesConfig) -> CategoryBehaviour:
    support = int(row["support"])
    returning = int(row["returning"])
    repeat_buyers = int(row["repeat_buyers"])
    repeat_rate = repeat_buyers / returning
    same_item_rate = int(row["same_item_buyers"]) / returning
    interval = _optional_float(row["interval"])
    spread = None
    if interval is not None and interval > 0:
        spread = (float(row["q75"]) - float(row["q25"])) / interval
    kind: CategoryClass = "regular"
    interval_days = None
    if repeat_rate < config.durable_max_repeat_rate:
        kind = "durable"
    elif (
        same_item_rate >= config.consumable_min_repeat_rate
        and repeat_buyers >= config.min_repeat_buyers
        and interval is not None
        and (
            config.consumable_max_interval_spread is None
            or (spread is not None and spread <= config.consumable_max_interval_spread)
        )
    ):
        kind = "consumable"
        interval_days = max(round(interval), 1)
    return CategoryBehaviour(
        category=str(row["name"]),
        kind=kind,
        support=support,
        returning=returning,
        same_item_rate=round(same_item_rate, 6),
        repeat_rate=round(repeat_rate, 6),
        median_interval_days=interval,
        interval_spread=None if spread is None else round(spread, 6),
        interval_days=interval_days,
    )


ITEM_SCOPE = "item:"


def behaviour_key(item_id: str, category: str | None) -> str:
    """Where an item's behaviour is learned and looked up: its category, else `item:<id>`.

    Catalogs without categories (the UCI export has none) still learn which
    products are rebought on a cycle: each uncategorised item is its own scope.
    """
    return category if category else f"{ITEM_SCOPE}{item_id}"


def resolve_behaviour(
    category: str | None,
    learned: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
) -> CategoryBehaviour | None:
    """The behaviour that applies to an item in `category`, or None (treat as regular).

    An override beats learning (the retailer said so); the most specific
    override covering the category wins. Learned entries match the exact
    category only (see the module docstring). A durable without its own
    cooldown gets `config.durable_cooldown_days` here, at serving time, so
    changing the default needs no retraining.
    """
    if not category:
        return None
    for level in ancestors(category):
        override = config.overrides.get(level)
        if override is not None:
            return _from_override(level, override, config)
    behaviour = learned.get(category)
    if behaviour is not None and behaviour.kind == "durable" and behaviour.cooldown_days is None:
        return replace(behaviour, cooldown_days=config.durable_cooldown_days)
    return behaviour


def resolve_item_behaviour(
    item_id: str,
    category: str | None,
    learned: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
) -> CategoryBehaviour | None:
    """The behaviour that applies to one item, or None (treat as regular).

    An override on the item's category (any level) wins; then a learned durable
    category (it blocks substitutes, which the item's own entry cannot); then
    the item's own learned entry; then its category's. A durable without its
    own cooldown gets `config.durable_cooldown_days`.
    """
    own = f"{ITEM_SCOPE}{item_id}"
    if category and not category.startswith(ITEM_SCOPE):
        found = resolve_behaviour(category, learned, config)
        if found is not None and (found.source == "override" or found.kind == "durable"):
            return found
        item = learned.get(own)
        if item is None:
            return found
    else:
        item = learned.get(own)
        if item is None:
            # an override written on the item scope itself
            return resolve_behaviour(own, learned, config)
    if item.kind == "durable" and item.cooldown_days is None:
        return replace(item, cooldown_days=config.durable_cooldown_days)
    return item


def _from_override(
    category: str, override: CategoryOverride, config: CategoriesConfig
) -> CategoryBehaviour:
    cooldown = None
    if override.kind == "durable":
        cooldown = override.cooldown_days or config.durable_cooldown_days
    return CategoryBehaviour(
        category=category,
        kind=override.kind,
        interval_days=override.interval_days,
        cooldown_days=cooldown,
        source="override",
    )


def _item_categories(item_category: Mapping[str, str] | pl.DataFrame) -> pl.DataFrame:
    """Columns `item_id`, `category` (the item's full category); items without one dropped."""
    import polars as pl
    if isinstance(item_category, pl.DataFrame):
        frame = item_category.select(
            pl.col("item_id").cast(pl.String), pl.col("category").cast(pl.String)
        )
    else:
        frame = pl.DataFrame(
            {"item_id": list(item_category.keys()), "category": list(item_category.values())},
            schema={"item_id": pl.String, "category": pl.String},
        )
    return frame.filter(pl.col("category").is_not_null() & (pl.col("category") != "")).unique(
        "item_id"
    )


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _optional_int(value: object) -> int | None:
    return None if value is None else int(cast(int, value))
