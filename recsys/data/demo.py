"""Deterministic generator of a demo online retailer: catalog, customers and purchase history.

The data is synthetic but shaped so every layer of the product has something to find:

- latent customer segments with category and brand tastes, over a Zipf-like item
  popularity, so a collaborative-filtering model beats the popularity baseline;
- durables (a TV, a bicycle) that are rarely bought twice, followed within 0-10 days by
  their complements (wall mount and HDMI cable, helmet and lock);
- consumables (coffee capsules, printer ink, pet food, water filters) rebought on a
  personal cycle around the category's typical interval until the history ends;
- the mess of real exports: returns (negative quantity), duplicated scan lines,
  customers without a join date or e-mail, opt-outs, out-of-stock items and
  February 29 join dates and birthdays.

Files are written in the SPEC's canonical columns, so `recsys ingest` loads them with no
`--map`. The same arguments always give byte-identical files: every random draw comes from
a numpy `Generator` seeded from `seed`, and the gzip header carries no timestamp.

Customers are simulated in chunks of `CHUNK_CUSTOMERS` and streamed to disk, so memory stays
flat however many customers are asked for (1M customers x 100k items is a few minutes).
"""

from __future__ import annotations

import calendar
import gzip
import io
import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "CATALOG_COLUMNS",
    "CATEGORIES",
    "CATEGORY_BY_PATH",
    "CHUNK_CUSTOMERS",
    "CUSTOMER_COLUMNS",
    "TRANSACTION_COLUMNS",
    "CategoryKind",
    "CategorySpec",
    "DemoSummary",
    "categories_of_kind",
    "generate_demo",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CategoryKind = Literal["durable", "consumable", "complement", "regular"]


@dataclass(frozen=True, slots=True)
class CategorySpec:
    """One demo category and how customers buy in it.

    `path` is the hierarchical category written to the catalog (`electronics/tv`).
    `price_range` is the list price span in EUR; within a category, price rises with the
    variant's position in `variants` (a 75" TV costs more than a 43" one).
    `name` is a `str.format` template with `{variant}` and `{brand}`.
    `weight` is the category's relative share of catalog items and of everyday demand.
    `interval_days` is the typical repurchase interval of a consumable (days), else None.
    `complement_of` lists the durable categories this one is bought with, and
    `attach_rate` is the probability (0-1) that a buyer of one of them buys this within
    0-10 days.
    """

    path: str
    kind: CategoryKind
    price_range: tuple[float, float]
    name: str
    variants: tuple[str, ...]
    brands: tuple[str, ...]
    weight: float = 1.0
    interval_days: int | None = None
    complement_of: tuple[str, ...] = ()
    attach_rate: float = 0.0


_TECH = ("Zentro", "Voltix", "Lumora", "Kastel", "Novid")
_CABLES = ("Linkor", "Voltix", "Kastel")
_BIKE = ("Trailhawk", "Velomar", "Ridgeline", "Kinetra")
_APPLIANCE = ("Frostline", "Nordhem", "Calora", "Brisa")
_HOME = ("Puraqua", "Hearthly", "Linnea")
_PUBLISHERS = ("Quill & Co", "Lantern Press", "Harbor Books")
_TOYS = ("Brickly", "Playvo", "Tinkertop")
_KITCHEN = ("Cucina", "Steelmark", "Panora")
_CLOTHING = ("Northwear", "Urbanloom", "Fjell")

# Order matters only for determinism: item blocks and random draws follow this tuple.
CATEGORIES: Final[tuple[CategorySpec, ...]] = (
    # Durables: bought once, then the category should be blocked for a long cooldown.
    CategorySpec(
        "electronics/tv", "durable", (279.0, 2499.0), 'TV {variant} {brand}',
        ('43"', '50"', '55"', '65"', '75"'), _TECH, weight=0.8,
    ),
    CategorySpec(
        "electronics/laptops", "durable", (449.0, 2299.0), "Laptop {variant} {brand}",
        ('13"', '14"', '15"', '16"'), _TECH, weight=0.8,
    ),
    CategorySpec(
        "sports/bicycles", "durable", (249.0, 2999.0), "{variant} bike {brand}",
        ("Kids", "City", "Trekking", "Mountain", "Gravel", "Road"), _BIKE, weight=0.7,
    ),
    CategorySpec(
        "appliances/fridges", "durable", (349.0, 1899.0), "Fridge {variant} {brand}",
        ("220L", "280L", "320L", "380L", "450L"), _APPLIANCE, weight=0.6,
    ),
    # Complements: follow a durable within days; cheap, so cross-sell is worth it.
    CategorySpec(
        "electronics/tv-mounts", "complement", (19.0, 149.0), "TV wall mount {variant} {brand}",
        ("fixed", "tilting", "full-motion"), _TECH, weight=0.5,
        complement_of=("electronics/tv",), attach_rate=0.7,
    ),
    CategorySpec(
        "electronics/hdmi-cables", "complement", (5.0, 19.0), "HDMI cable {variant} {brand}",
        ("1m", "2m", "3m", "5m"), _CABLES, weight=0.4,
        complement_of=("electronics/tv",), attach_rate=0.8,
    ),
    CategorySpec(
        "electronics/laptop-bags", "complement", (19.0, 89.0), "Laptop bag {variant} {brand}",
        ('13"', '14"', '15"', '16"'), _TECH, weight=0.5,
        complement_of=("electronics/laptops",), attach_rate=0.55,
    ),
    CategorySpec(
        "electronics/computer-mice", "complement", (9.0, 59.0), "Wireless mouse {variant} {brand}",
        ("compact", "silent", "ergonomic"), _TECH, weight=0.4,
        complement_of=("electronics/laptops",), attach_rate=0.5,
    ),
    CategorySpec(
        "sports/helmets", "complement", (29.0, 149.0), "Bike helmet {variant} {brand}",
        ("S", "M", "L"), _BIKE, weight=0.5,
        complement_of=("sports/bicycles",), attach_rate=0.7,
    ),
    CategorySpec(
        "sports/bike-locks", "complement", (12.0, 89.0), "Bike lock {variant} {brand}",
        ("cable", "chain", "folding", "U-lock"), _BIKE, weight=0.4,
        complement_of=("sports/bicycles",), attach_rate=0.6,
    ),
    # Consumables: rebought on a cycle; the filters also complement fridges.
    CategorySpec(
        "grocery/coffee-capsules", "consumable", (3.0, 19.0), "Coffee capsules x{variant} {brand}",
        ("10", "20", "50"), ("Aroma", "Crema Nova", "Bellacaffe", "Roastwell"), weight=0.8,
        interval_days=30,
    ),
    CategorySpec(
        "office/printer-ink", "consumable", (12.0, 49.0), "Printer ink {variant} {brand}",
        ("black", "colour", "XL black", "multipack"), ("Inkwell", "Printa", "Colorjet"),
        weight=0.6, interval_days=60,
    ),
    CategorySpec(
        "pets/pet-food", "consumable", (6.0, 49.0), "{variant} {brand}",
        ("Cat food 2kg", "Dog food 3kg", "Cat food 7kg", "Dog food 12kg"),
        ("Pawsome", "Whiskerly", "Canido"), weight=0.7, interval_days=21,
    ),
    CategorySpec(
        "home/water-filters", "consumable", (8.0, 39.0), "Water filter {variant} {brand}",
        ("cartridge", "fridge filter", "3-pack"), _HOME, weight=0.4, interval_days=90,
        complement_of=("appliances/fridges",), attach_rate=0.5,
    ),
    # Regular categories: everyday demand shaped by segment taste and popularity.
    CategorySpec(
        "books/fiction", "regular", (8.0, 25.0), "Novel: {variant} ({brand})",
        ("The Quiet Harbour", "Northern Lights", "A Winter Garden", "The Last Orchard",
         "Salt and Stone", "City of Glass", "The Long Summer", "Paper Boats"),
        _PUBLISHERS, weight=2.0,
    ),
    CategorySpec(
        "books/cookbooks", "regular", (12.0, 39.0), "Cookbook: {variant} ({brand})",
        ("Weeknight Dinners", "Baking Basics", "Green Kitchen", "Pasta Every Day",
         "One Pot Wonders"), _PUBLISHERS, weight=1.0,
    ),
    CategorySpec(
        "books/children", "regular", (6.0, 19.0), "Picture book: {variant} ({brand})",
        ("The Sleepy Fox", "Big Red Tractor", "Moon Friends", "Ten Little Ducks"),
        _PUBLISHERS, weight=1.0,
    ),
    CategorySpec(
        "toys/board-games", "regular", (14.0, 59.0), "Board game {variant} {brand}",
        ("Tiny Towns", "Castle Quest", "Star Traders", "Harbour Masters", "Jungle Race"),
        _TOYS, weight=1.0,
    ),
    CategorySpec(
        "toys/building-sets", "regular", (9.0, 119.0), "Building set {variant} {brand}",
        ("100 pcs", "250 pcs", "500 pcs", "1000 pcs"), _TOYS, weight=1.0,
    ),
    CategorySpec(
        "kitchen/cookware", "regular", (14.0, 129.0), "{variant} {brand}",
        ("Saucepan 18cm", "Frying pan 24cm", "Wok 30cm", "Stockpot 6L", "Dutch oven 5L"),
        _KITCHEN, weight=1.2,
    ),
    CategorySpec(
        "kitchen/utensils", "regular", (3.0, 24.0), "{variant} {brand}",
        ("Peeler", "Whisk", "Spatula", "Tongs", "Ladle", "Knife 20cm"), _KITCHEN, weight=1.0,
    ),
    CategorySpec(
        "clothing/t-shirts", "regular", (9.0, 35.0), "T-shirt {variant} {brand}",
        ("S", "M", "L", "XL"), _CLOTHING, weight=1.5,
    ),
    CategorySpec(
        "clothing/jackets", "regular", (39.0, 229.0), "{variant} jacket {brand}",
        ("Denim", "Rain", "Softshell", "Down"), _CLOTHING, weight=1.0,
    ),
    CategorySpec(
        "sports/fitness", "regular", (7.0, 89.0), "{variant} {brand}",
        ("Jump rope", "Resistance bands", "Yoga mat", "Kettlebell 8kg", "Dumbbell set"),
        ("Kinetra", "Flexa", "Ridgeline"), weight=1.0,
    ),
    CategorySpec(
        "home/bedding", "regular", (12.0, 99.0), "{variant} {brand}",
        ("Pillowcase 50x70", "Fitted sheet 90x200", "Duvet cover 135x200", "Duvet 135x200"),
        _HOME, weight=1.0,
    ),
    CategorySpec(
        "beauty/skincare", "regular", (5.0, 49.0), "{variant} {brand}",
        ("Lip balm", "Cleanser 150ml", "Face cream 50ml", "Sun cream SPF50", "Serum 30ml"),
        ("Veloura", "Purelle", "Solenne"), weight=1.2,
    ),
)

CATEGORY_BY_PATH: Final[Mapping[str, CategorySpec]] = MappingProxyType(
    {spec.path: spec for spec in CATEGORIES}
)

CATALOG_COLUMNS: Final = (
    "item_id", "name", "category", "price", "in_stock", "url", "image_url", "brand", "cost",
)
CUSTOMER_COLUMNS: Final = ("customer_id", "email", "joined_at", "birthday", "marketing_opt_in")
TRANSACTION_COLUMNS: Final = (
    "order_id", "customer_id", "item_id", "quantity", "unit_price", "purchased_at",
)

CATALOG_FILE: Final = "catalog.csv"
CUSTOMERS_FILE: Final = "customers.csv"
TRANSACTIONS_FILE: Final = "transactions.csv.gz"

#: Customers simulated (and held in memory) at once. Part of the output's definition:
#: each chunk has its own random stream, so changing it changes the files.
CHUNK_CUSTOMERS: Final = 10_000


def categories_of_kind(kind: CategoryKind) -> tuple[CategorySpec, ...]:
    """The demo categories of one kind, in `CATEGORIES` order."""
    return tuple(spec for spec in CATEGORIES if spec.kind == kind)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What `generate_demo` wrote: counts and the path of each file.

    `files` maps `catalog`, `customers` and `transactions` to their paths.
    `lines` counts transaction rows (returns and duplicated scans included).
    """

    customers: int
    items: int
    orders: int
    lines: int
    out_dir: Path
    files: dict[str, Path]


# --- Behaviour knobs. Rates are per customer; durations in days. ------------------------

_N_SEGMENTS: Final = 10
_SEGMENT_TASTE_SIGMA: Final = 1.0  # log-sd of a segment's category multipliers
_ITEM_TASTE_SIGMA: Final = 0.6  # log-sd of a segment's item-level taste, what CF learns
_BRAND_BOOST: Final = 3.0  # weight multiplier of a segment's favourite brand per category
_ZIPF_EXPONENT: Final = 0.9  # item popularity ~ 1 / rank**a within a category
_COMPLEMENT_STANDALONE: Final = 0.25  # complements also sell alone, but less
_ORDERS_PER_YEAR_MEDIAN: Final = 7.5  # everyday orders; lognormal across customers
_ORDERS_PER_YEAR_SIGMA: Final = 0.9
_BASKET_EXTRA_MEAN: Final = 0.7  # lines per everyday order = 1 + Poisson(this)
_FAVOURITE_SHARE: Final = 0.45  # share of everyday lines from a customer's 2 favourites
_DURABLES_PER_YEAR: Final = 0.3  # for a median-activity customer
_DURABLE_REBUY_KEEP: Final = 0.05  # a second purchase in a durable category is rare
_SAME_ORDER_SHARE: Final = 0.45  # complement in the durable's own order, else a follow-up
_FOLLOW_UP_MAX_DAYS: Final = 10
_CONSUMABLE_ADOPTION: Final = 0.12  # base share of customers who rebuy a consumable
_ADOPTION_DELAY_DAYS: Final = 90.0  # mean days from becoming active to the first rebuy
_CYCLE_PERSONAL_SIGMA: Final = 0.12  # log-sd of a customer's own interval around typical
_CYCLE_JITTER: Final = 0.15  # sd of each gap relative to the customer's interval
_CHURN_PER_PURCHASE: Final = 0.02  # chance a consumable habit stops after each purchase
_BRAND_SWITCH: Final = 0.08  # chance a consumable rebuy is another item of the category
_RETURN_RATE: Final[Mapping[str, float]] = MappingProxyType(
    {"durable": 0.04, "complement": 0.02, "regular": 0.015, "consumable": 0.0}
)
_RETURN_MAX_DAYS: Final = 30
_DUPLICATE_SCAN_RATE: Final = 0.004
_PROMO_SHARE: Final = 0.15  # lines sold below list price
_PROMO_DISCOUNT: Final = (0.05, 0.30)
_COST_SHARE: Final = (0.45, 0.80)  # cost as a share of price
_OUT_OF_STOCK_SHARE: Final = 0.05
_EMAIL_MISSING: Final = 0.02
_JOINED_MISSING: Final = 0.04
_BIRTHDAY_MISSING: Final = 0.15
_OPT_OUT: Final = 0.10
_BIRTH_YEARS: Final = (1950, 2006)
_FEB29_PER_CUSTOMERS: Final = 500  # one Feb 29 joiner (and birthday) per this many, >= 3
# Shoppers are busier at lunch and in the evening (UTC), hour 0..23.
_HOUR_WEIGHTS: Final = np.array(
    [1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3.0, 3.2, 3.5,
     4.0, 3.8, 3.4, 3.2, 3.3, 3.8, 4.5, 5.2, 5.5, 5.0, 3.5, 2.0]
)

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY: Final = 86_400
_STREAM_CATALOG: Final = 0
_STREAM_SEGMENTS: Final = 1
_STREAM_CHUNK: Final = 2

_KIND_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {"durable": 0, "complement": 1, "consumable": 2, "regular": 3}
)


def _day(d: date) -> int:
    """Days since 1970-01-01."""
    return d.toordinal() - _EPOCH_ORDINAL


def _block_cdf(weights: FloatArray, bounds: IntArray) -> FloatArray:
    """Flattened, strictly piecewise cumulative weights for sampling within groups.

    `weights` is `(n_segments, n)` with columns grouped into `len(bounds) - 1` contiguous
    groups (`bounds` are the offsets). Entry `s * n + j` holds `s * G + g + F`, where `g`
    is column j's group, G the number of groups and F the within-group cumulative share
    up to and including j. One `searchsorted` then samples any (segment, group) pair,
    which keeps per-line draws vectorised. Every group needs a positive total weight.
    """
    n_seg = weights.shape[0]
    n_groups = len(bounds) - 1
    group_of = np.repeat(np.arange(n_groups), np.diff(bounds))
    cum = np.cumsum(weights, axis=1)
    before = np.concatenate([np.zeros((n_seg, 1)), cum], axis=1)[:, bounds[:-1]]
    totals = cum[:, bounds[1:] - 1] - before
    within = (cum - before[:, group_of]) / totals[:, group_of]
    within = np.minimum(within, 1.0)
    # Exact 1.0 at each group's end, so a draw never leaks into the next group.
    within[:, bounds[1:] - 1] = 1.0
    offset = (np.arange(n_seg) * n_groups)[:, None] + group_of[None, :]
    flat: FloatArray = (offset + within).ravel()
    return flat


def _draw(
    cdf: FloatArray, seg: IntArray, group: IntArray, n_groups: int, n: int,
    rng: np.random.Generator,
) -> IntArray:
    """Sample one column per (segment, group) pair from a `_block_cdf` table."""
    query = (seg * n_groups + group).astype(np.float64) + rng.random(len(seg))
    flat = np.searchsorted(cdf, query, side="right").astype(np.int64)
    return flat - seg * n


@dataclass(frozen=True, slots=True)
class _Catalog:
    """Items in internal order (grouped by category). Prices in EUR."""

    cat: IntArray  # (n_items,) category index into CATEGORIES
    bounds: IntArray  # (n_categories + 1,) item offsets of each category block
    number: IntArray  # (n_items,) numeric part of item_id, a shuffle of 1..n_items
    brand: IntArray  # (n_items,) index into the category's brands
    price: FloatArray
    popularity: FloatArray  # Zipf weight within the category
    frame: pl.DataFrame  # catalog.csv rows, sorted by item_id


def _allocate(total: int, weights: FloatArray) -> IntArray:
    """Split `total` items over categories: one each, the rest by weight (largest remainder)."""
    rest = total - len(weights)
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(np.int64)
    left = rest - int(counts.sum())
    # Stable argsort keeps ties in CATEGORIES order, so the split is deterministic.
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:left]] += 1
    allocated: IntArray = counts + 1
    return allocated


def _psych_price(raw: FloatArray) -> FloatArray:
    """Round to shop prices: 4.99, 49.99, 349.99 (steps of 1 below 200, of 50 above)."""
    step = np.where(raw < 200.0, 1.0, 50.0)
    return np.maximum(np.round(raw / step) * step - 0.01, 0.99)


def _build_catalog(n_items: int, rng: np.random.Generator) -> _Catalog:
    weights = np.array([spec.weight for spec in CATEGORIES])
    counts = _allocate(n_items, weights)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cat = np.repeat(np.arange(len(CATEGORIES)), counts).astype(np.int64)
    n_variants = np.array([len(spec.variants) for spec in CATEGORIES])[cat]
    n_brands = np.array([len(spec.brands) for spec in CATEGORIES])[cat]
    variant = np.floor(rng.random(n_items) * n_variants).astype(np.int64)
    brand = np.floor(rng.random(n_items) * n_brands).astype(np.int64)
    lo = np.array([spec.price_range[0] for spec in CATEGORIES])[cat]
    hi = np.array([spec.price_range[1] for spec in CATEGORIES])[cat]
    # Log-uniform within the variant's slice of the range: bigger variants cost more.
    position = (variant + rng.random(n_items)) / n_variants
    price = _psych_price(lo * (hi / lo) ** position)
    cost = np.round(price * rng.uniform(*_COST_SHARE, n_items), 2)
    in_stock = np.ones(n_items, dtype=np.bool_)
    n_out = max(1, round(n_items * _OUT_OF_STOCK_SHARE))
    in_stock[rng.choice(n_items, size=n_out, replace=False)] = False
    # Zipf within each category over a random popularity rank.
    rank = np.empty(n_items, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        rank[bounds[c]:bounds[c + 1]] = rng.permutation(int(counts[c]))
    popularity = (1.0 / (rank + 1.0) ** _ZIPF_EXPONENT).astype(np.float64)
    # Shuffle ids so item_id order says nothing about category.
    number = rng.permutation(n_items).astype(np.int64) + 1

    names: list[str] = []
    brands: list[str] = []
    seen: dict[str, int] = {}
    for i in range(n_items):
        spec = CATEGORIES[cat[i]]
        brand_name = spec.brands[brand[i]]
        base = spec.name.format(variant=spec.variants[variant[i]], brand=brand_name)
        k = seen.get(base, 0)
        seen[base] = k + 1
        # Repeats get a model code, as real catalogs list several models per line.
        names.append(base if k == 0 else f"{base} {brand_name[:2].upper()}{100 + k}")
        brands.append(brand_name)

    ids = pl.Series("n", number).cast(pl.Utf8).str.zfill(5)
    frame = (
        pl.DataFrame(
            {
                "item_id": "I" + ids,
                "name": names,
                "category": [CATEGORIES[c].path for c in cat],
                "price": price,
                "in_stock": in_stock,
                "brand": brands,
                "cost": cost,
                "_n": number,
            }
        )
        .with_columns(
            url="https://shop.example.com/p/" + pl.col("item_id"),
            image_url="https://shop.example.com/img/" + pl.col("item_id") + ".jpg",
        )
        .sort("_n")
        .select(CATALOG_COLUMNS)
    )
    return _Catalog(cat, bounds, number, brand, price, popularity, frame)


@dataclass(frozen=True, slots=True)
class _Segments:
    """Latent customer segments: their sizes and what they like."""

    share: FloatArray  # (n_segments,) sums to 1
    everyday_cdf: FloatArray  # _block_cdf over categories for everyday lines
    durable_cdf: FloatArray  # _block_cdf over categories for durable purchases
    adoption: FloatArray  # (n_segments, n_consumables) chance to take up the habit
    item_cdf: FloatArray  # _block_cdf over items, grouped by category


def _build_segments(catalog: _Catalog, rng: np.random.Generator) -> _Segments:
    n_cat = len(CATEGORIES)
    share = rng.dirichlet(np.full(_N_SEGMENTS, 3.0))
    taste = rng.lognormal(0.0, _SEGMENT_TASTE_SIGMA, (_N_SEGMENTS, n_cat))
    base = np.array([spec.weight for spec in CATEGORIES]) * taste
    kind = np.array([_KIND_CODES[spec.kind] for spec in CATEGORIES])
    everyday = base * np.select(
        [kind == _KIND_CODES["regular"], kind == _KIND_CODES["complement"]],
        [1.0, _COMPLEMENT_STANDALONE],
        0.0,
    )
    durable = base * (kind == _KIND_CODES["durable"])
    consumables = np.flatnonzero(kind == _KIND_CODES["consumable"])
    adoption = np.minimum(_CONSUMABLE_ADOPTION * taste[:, consumables], 0.9)

    n_items = len(catalog.cat)
    brand_count = np.array([len(spec.brands) for spec in CATEGORIES])
    favourite_brand = np.floor(rng.random((_N_SEGMENTS, n_cat)) * brand_count).astype(np.int64)
    loves_brand = favourite_brand[:, catalog.cat] == catalog.brand[None, :]
    item_weight = (
        catalog.popularity[None, :]
        * np.where(loves_brand, _BRAND_BOOST, 1.0)
        * rng.lognormal(0.0, _ITEM_TASTE_SIGMA, (_N_SEGMENTS, n_items))
    )
    one_group = np.array([0, n_cat], dtype=np.int64)
    return _Segments(
        share=share,
        everyday_cdf=_block_cdf(everyday, one_group),
        durable_cdf=_block_cdf(durable, one_group),
        adoption=adoption,
        item_cdf=_block_cdf(item_weight, catalog.bounds),
    )


@dataclass(frozen=True, slots=True)
class _World:
    """Everything fixed across chunks. Days are counted from 1970-01-01."""

    catalog: _Catalog
    segments: _Segments
    window_start: int  # first day of the purchase history
    end: int  # last day of the purchase history (inclusive)
    leap_join_day: int  # latest Feb 29 on or before `end`
    feb29_joiners: IntArray  # customer indices (0-based) who joined on `leap_join_day`
    feb29_birthdays: IntArray  # customer indices (0-based) born on a Feb 29
    due_days: IntArray  # candidate join days for the due_date skew (empty: none)
    due_share: float


def _latest_leap_day(end: date) -> date:
    year = end.year
    while not (calendar.isleap(year) and date(year, 2, 29) <= end):
        year -= 1
    return date(year, 2, 29)


def _due_join_days(due: date, window_start: date, end: date) -> list[int]:
    """Join days with due's month/day in earlier years, inside the history where possible.

    When no such day falls in the window (a short history), the most recent one before it
    is used: those customers simply joined before the export starts.
    """
    found: list[int] = []
    for year in range(due.year - 1, due.year - 60, -1):
        try:
            day = date(year, due.month, due.day)
        except ValueError:  # Feb 29 in a common year
            continue
        if day > end:
            continue
        if day < window_start:
            if not found:
                found.append(_day(day))
            break
        found.append(_day(day))
    return sorted(found)


def _spread(n: int, count: int, phase: float) -> IntArray:
    """`count` indices spread evenly over 0..n-1, independent of chunking."""
    return np.unique(np.floor((np.arange(count) + phase) * n / count).astype(np.int64))


def _ids(prefix: str, numbers: IntArray, width: int) -> pl.Series:
    """`prefix` + zero-padded number; wider numbers keep all digits, so ids stay unique."""
    return prefix + pl.Series(numbers).cast(pl.Utf8).str.zfill(width)


@dataclass(slots=True)
class _Orders:
    """Orders of one chunk, grown as the simulation adds them (key = position)."""

    cust: list[IntArray]
    day: list[IntArray]
    size: int = 0

    def add(self, cust: IntArray, day: IntArray) -> IntArray:
        """Append orders and return their keys."""
        keys = np.arange(self.size, self.size + len(cust), dtype=np.int64)
        self.cust.append(cust.astype(np.int64))
        self.day.append(day.astype(np.int64))
        self.size += len(cust)
        return keys


@dataclass(slots=True)
class _Lines:
    """Order lines of one chunk; `returnable` is False for consumable habits."""

    order: list[IntArray]
    item: list[IntArray]
    qty: list[IntArray]
    returnable: list[BoolArray]

    def add(self, order: IntArray, item: IntArray, qty: IntArray, returnable: bool) -> None:
        self.order.append(order)
        self.item.append(item)
        self.qty.append(qty)
        self.returnable.append(np.full(len(order), returnable))


def _quantity(rng: np.random.Generator, n: int) -> IntArray:
    """Mostly 1, sometimes 2 or 3."""
    u = rng.random(n)
    return (1 + (u > 0.85) + (u > 0.97)).astype(np.int64)


def _simulate_chunk(
    world: _World, rng: np.random.Generator, first: int, n: int, first_order: int
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Customers `first..first+n-1`: their customers.csv rows, their lines, their order count.

    Order numbers start at `first_order`. Lines come sorted by order number, and order
    numbers follow purchase time within the chunk.
    """
    cat_kind = np.array([_KIND_CODES[spec.kind] for spec in CATEGORIES])
    n_cat = len(CATEGORIES)
    n_items = len(world.catalog.cat)
    segs = world.segments
    index = np.arange(first, first + n, dtype=np.int64)

    # --- customers --------------------------------------------------------------------
    seg = rng.choice(_N_SEGMENTS, size=n, p=segs.share).astype(np.int64)
    joined = rng.integers(world.window_start, world.end + 1, size=n)
    joined_known = rng.random(n) >= _JOINED_MISSING
    leap = np.isin(index, world.feb29_joiners)
    joined[leap] = world.leap_join_day
    joined_known |= leap
    if len(world.due_days) and world.due_share > 0:
        due = (rng.random(n) < world.due_share) & ~leap
        joined[due] = world.due_days[rng.integers(0, len(world.due_days), int(due.sum()))]
        joined_known |= due
    # Long-standing members (Feb 29 2024, earlier anniversaries) shop from the window on.
    start = np.maximum(joined, world.window_start)
    active_days = world.end - start + 1
    active_years = active_days / 365.25

    lo_birth, hi_birth = _day(date(_BIRTH_YEARS[0], 1, 1)), _day(date(_BIRTH_YEARS[1], 12, 31))
    birthday = rng.integers(lo_birth, hi_birth + 1, size=n)
    birthday_known = rng.random(n) >= _BIRTHDAY_MISSING
    born_leap = np.isin(index, world.feb29_birthdays)
    leap_years = [y for y in range(_BIRTH_YEARS[0], _BIRTH_YEARS[1] + 1) if calendar.isleap(y)]
    picks = rng.integers(0, len(leap_years), int(born_leap.sum()))
    birthday[born_leap] = [_day(date(leap_years[p], 2, 29)) for p in picks]
    birthday_known |= born_leap
    email_known = rng.random(n) >= _EMAIL_MISSING
    opt_in = rng.random(n) >= _OPT_OUT

    numbers = index + 1
    customer_ids = _ids("C", numbers, 6)
    customers = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "email": _ids("c", numbers, 6) + "@example.com",
            "joined_at": pl.Series(joined).cast(pl.Int32).cast(pl.Date),
            "birthday": pl.Series(birthday).cast(pl.Int32).cast(pl.Date),
            "marketing_opt_in": opt_in,
            "_email": email_known,
            "_joined": joined_known,
            "_birthday": birthday_known,
        }
    ).select(
        "customer_id",
        pl.when("_email").then("email").alias("email"),
        pl.when("_joined").then("joined_at").alias("joined_at"),
        pl.when("_birthday").then("birthday").alias("birthday"),
        "marketing_opt_in",
    )

    orders = _Orders([], [])
    lines = _Lines([], [], [], [])

    def draw_items(cust: IntArray, cat: IntArray) -> IntArray:
        return _draw(segs.item_cdf, seg[cust], cat, n_cat, n_items, rng)

    def draw_categories(cdf: FloatArray, cust: IntArray) -> IntArray:
        return _draw(cdf, seg[cust], np.zeros(len(cust), dtype=np.int64), 1, n_cat, rng)

    def uniform_day(cust: IntArray) -> IntArray:
        offset = np.floor(rng.random(len(cust)) * active_days[cust]).astype(np.int64)
        day: IntArray = start[cust] + offset
        return day

    # --- everyday orders --------------------------------------------------------------
    rate = rng.lognormal(math.log(_ORDERS_PER_YEAR_MEDIAN), _ORDERS_PER_YEAR_SIGMA, n)
    all_customers = np.arange(n, dtype=np.int64)
    favourites = np.stack(
        [draw_categories(segs.everyday_cdf, all_customers) for _ in range(2)], axis=1
    )
    o_cust = np.repeat(all_customers, rng.poisson(rate * active_years))
    o_key = orders.add(o_cust, uniform_day(o_cust))
    basket = 1 + rng.poisson(_BASKET_EXTRA_MEAN, len(o_key))
    l_order = np.repeat(o_key, basket)
    l_cust = np.repeat(o_cust, basket)
    from_favourite = rng.random(len(l_order)) < _FAVOURITE_SHARE
    which = rng.integers(0, 2, len(l_order))
    l_cat = np.where(
        from_favourite,
        favourites[l_cust, which],
        draw_categories(segs.everyday_cdf, l_cust),
    )
    l_item = draw_items(l_cust, l_cat)
    # One line per item per order; deliberate duplicate scans are added at the end.
    by_key = np.lexsort((l_item, l_order))
    l_order, l_item = l_order[by_key], l_item[by_key]
    first_of_key = np.ones(len(l_order), dtype=np.bool_)
    first_of_key[1:] = (l_order[1:] != l_order[:-1]) | (l_item[1:] != l_item[:-1])
    l_order, l_item = l_order[first_of_key], l_item[first_of_key]
    lines.add(l_order, l_item, _quantity(rng, len(l_order)), returnable=True)

    # --- durables and their complements -----------------------------------------------
    dur_rate = _DURABLES_PER_YEAR * np.sqrt(rate / _ORDERS_PER_YEAR_MEDIAN)
    d_cust = np.repeat(all_customers, rng.poisson(dur_rate * active_years))
    d_cat = draw_categories(segs.durable_cdf, d_cust)
    d_day = uniform_day(d_cust)
    by_time = np.lexsort((d_day, d_cat, d_cust))
    d_cust, d_cat, d_day = d_cust[by_time], d_cat[by_time], d_day[by_time]
    repeat = np.zeros(len(d_cust), dtype=np.bool_)
    repeat[1:] = (d_cust[1:] == d_cust[:-1]) & (d_cat[1:] == d_cat[:-1])
    keep = ~repeat | (rng.random(len(d_cust)) < _DURABLE_REBUY_KEEP)
    d_cust, d_cat, d_day = d_cust[keep], d_cat[keep], d_day[keep]
    d_key = orders.add(d_cust, d_day)
    lines.add(d_key, draw_items(d_cust, d_cat), np.ones(len(d_key), np.int64), returnable=True)
    # One follow-up order per durable gathers the complements not bought at once.
    f_day = d_day + rng.integers(1, _FOLLOW_UP_MAX_DAYS + 1, len(d_key))
    f_key = orders.add(d_cust, f_day)

    seed_cust: list[IntArray] = []
    seed_cat: list[IntArray] = []
    seed_day: list[IntArray] = []
    for c, spec in enumerate(CATEGORIES):
        if not spec.complement_of:
            continue
        parents = [CATEGORIES.index(CATEGORY_BY_PATH[p]) for p in spec.complement_of]
        takes = np.isin(d_cat, parents) & (rng.random(len(d_cat)) < spec.attach_rate)
        same = rng.random(len(d_cat)) < _SAME_ORDER_SHARE
        day = np.where(same, d_day, f_day)[takes]
        cust = d_cust[takes]
        in_window = day <= world.end
        if spec.kind == "consumable":
            # A fridge filter starts a habit: the chain below makes its first purchase.
            seed_cust.append(cust[in_window])
            seed_cat.append(np.full(int(in_window.sum()), c, dtype=np.int64))
            seed_day.append(day[in_window])
            continue
        key = np.where(same, d_key, f_key)[takes][in_window]
        cust = cust[in_window]
        item = draw_items(cust, np.full(len(cust), c, dtype=np.int64))
        lines.add(key, item, np.ones(len(key), np.int64), returnable=True)

    # --- consumable habits ------------------------------------------------------------
    consumables = np.flatnonzero(cat_kind == _KIND_CODES["consumable"])
    adopt_cust, adopt_j = np.nonzero(rng.random((n, len(consumables))) < segs.adoption[seg])
    adopt_cust = adopt_cust.astype(np.int64)
    adopt_day = start[adopt_cust] + np.floor(
        rng.exponential(_ADOPTION_DELAY_DAYS, len(adopt_cust))
    ).astype(np.int64)
    seed_cust.append(adopt_cust)
    seed_cat.append(consumables[adopt_j].astype(np.int64))
    seed_day.append(adopt_day)
    s_cust = np.concatenate(seed_cust)
    s_cat = np.concatenate(seed_cat)
    s_day = np.concatenate(seed_day)
    # One habit per customer and category, from its earliest start.
    by_start = np.lexsort((s_day, s_cat, s_cust))
    s_cust, s_cat, s_day = s_cust[by_start], s_cat[by_start], s_day[by_start]
    first_habit = np.ones(len(s_cust), dtype=np.bool_)
    first_habit[1:] = (s_cust[1:] != s_cust[:-1]) | (s_cat[1:] != s_cat[:-1])
    first_habit &= s_day <= world.end
    s_cust, s_cat, s_day = s_cust[first_habit], s_cat[first_habit], s_day[first_habit]
    s_item = draw_items(s_cust, s_cat)
    typical = np.array([float(spec.interval_days or 0) for spec in CATEGORIES])[s_cat]
    interval = typical * rng.lognormal(0.0, _CYCLE_PERSONAL_SIGMA, len(s_cust))
    # Enough slots for the shortest plausible gaps; the habit may also churn earlier.
    slots = np.floor((world.end - s_day) / (0.5 * interval)).astype(np.int64) + 1
    slots = np.minimum(slots, rng.geometric(_CHURN_PER_PURCHASE, len(s_cust)))
    h_seed = np.repeat(np.arange(len(s_cust)), slots)
    starts = np.cumsum(slots) - slots
    gap = interval[h_seed] * np.clip(
        1.0 + rng.normal(0.0, _CYCLE_JITTER, len(h_seed)), 0.5, 2.0
    )
    gap[starts] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[starts], slots)
    h_day = s_day[h_seed] + np.round(elapsed).astype(np.int64)
    live = h_day <= world.end
    h_seed, h_day = h_seed[live], h_day[live]
    h_cust = s_cust[h_seed]
    h_item = s_item[h_seed]
    switch = rng.random(len(h_seed)) < _BRAND_SWITCH
    h_item[switch] = draw_items(h_cust[switch], s_cat[h_seed][switch])
    h_key = orders.add(h_cust, h_day)
    lines.add(h_key, h_item, _quantity(rng, len(h_key)), returnable=False)

    # --- assemble; returns and duplicate scans ------------------------------------------
    ord_cust = np.concatenate(orders.cust)
    ord_day = np.concatenate(orders.day)
    line_order = np.concatenate(lines.order)
    line_item = np.concatenate(lines.item)
    line_qty = np.concatenate(lines.qty)
    returnable = np.concatenate(lines.returnable)
    list_price = world.catalog.price[line_item]
    promo = rng.random(len(line_item)) < _PROMO_SHARE
    discount = np.where(promo, rng.uniform(*_PROMO_DISCOUNT, len(line_item)), 0.0)
    line_price = np.round(list_price * (1.0 - discount), 2)

    return_rate = np.array([_RETURN_RATE[spec.kind] for spec in CATEGORIES])
    back = returnable & (rng.random(len(line_item)) < return_rate[world.catalog.cat[line_item]])
    r_day = ord_day[line_order[back]] + rng.integers(1, _RETURN_MAX_DAYS + 1, int(back.sum()))
    r_ok = r_day <= world.end
    r_src = np.flatnonzero(back)[r_ok]
    # A return is its own order, like a credit note, at the original price.
    ord_cust = np.concatenate([ord_cust, ord_cust[line_order[r_src]]])
    ord_day = np.concatenate([ord_day, r_day[r_ok]])
    r_key = np.arange(len(ord_day) - len(r_src), len(ord_day), dtype=np.int64)
    dup = np.flatnonzero(rng.random(len(line_item)) < _DUPLICATE_SCAN_RATE)
    line_order = np.concatenate([line_order, r_key, line_order[dup]])
    line_item = np.concatenate([line_item, line_item[r_src], line_item[dup]])
    line_qty = np.concatenate([line_qty, -line_qty[r_src], np.ones(len(dup), np.int64)])
    line_price = np.concatenate([line_price, line_price[r_src], line_price[dup]])

    hour_p = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
    second_of_day = rng.choice(24, size=len(ord_day), p=hour_p) * 3600 + rng.integers(
        0, 3600, len(ord_day)
    )
    ord_time = ord_day * _SECONDS_PER_DAY + second_of_day

    # Number the orders that got lines, in time order (ties by key, so deterministic).
    used = np.flatnonzero(np.bincount(line_order, minlength=len(ord_day)))
    by_time = used[np.lexsort((used, ord_time[used]))]
    number = np.zeros(len(ord_day), dtype=np.int64)
    number[by_time] = first_order + np.arange(len(by_time), dtype=np.int64)
    line_number = number[line_order]
    sequence = np.lexsort((np.arange(len(line_order)), line_number))
    line_order, line_number = line_order[sequence], line_number[sequence]
    line_item, line_qty, line_price = line_item[sequence], line_qty[sequence], line_price[sequence]

    transactions = pl.DataFrame(
        {
            "order_id": _ids("O", line_number, 7),
            "customer_id": customer_ids.gather(ord_cust[line_order]),
            "item_id": _ids("I", world.catalog.number[line_item], 5),
            "quantity": line_qty,
            "unit_price": line_price,
            "purchased_at": pl.from_epoch(
                pl.Series(ord_time[line_order]), time_unit="s"
            ),
        }
    )
    return customers, transactions, len(by_time)


def _csv_bytes(frame: pl.DataFrame, *, header: bool) -> bytes:
    """Canonical CSV text: 2-decimal money, ISO dates, `true`/`false`, empty for missing."""
    buffer = io.BytesIO()
    frame.write_csv(
        buffer,
        include_header=header,
        float_precision=2,
        datetime_format="%Y-%m-%dT%H:%M:%S",
        date_format="%Y-%m-%d",
    )
    return buffer.getvalue()


#: The demo history's last day unless `end` says otherwise.
HISTORY_END = date(2026, 11, 20)


def generate_demo(
    out_dir: Path,
    *,
    customers: int = 5000,
    items: int = 600,
    seed: int = 7,
    end: date = HISTORY_END,
    years: float = 2.0,
    due_date: date | None = None,
    due_share: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write a demo retailer's `catalog.csv`, `customers.csv` and `transactions.csv.gz`.

    The purchase history covers `years` (365.25 days each) up to and including `end`;
    timestamps are naive UTC at second resolution. `items` must be at least
    `len(CATEGORIES)` so every category has an item. With `due_date`, a `due_share`
    (0-1) of customers joined on due_date's month and day in an earlier year, so an
    anniversary campaign on `due_date` has plenty to do. `progress` is called after each
    chunk with the number of customers it finished (an increment, as for a progress bar).
    Files are written under temporary names and renamed when complete. About 25 lines
    per customer; the defaults give roughly 125k lines in a few seconds.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if items < len(CATEGORIES):
        raise ValueError(
            f"items must be at least {len(CATEGORIES)} (one per category), got {items}"
        )
    if not 0.0 < years <= 50.0:
        raise ValueError(f"years must be in (0, 50], got {years}")
    if not 0.0 <= due_share <= 1.0:
        raise ValueError(f"due_share must be between 0 and 1, got {due_share}")

    window_start = end - timedelta(days=max(1, round(years * 365.25)) - 1)
    due_days = _due_join_days(due_date, window_start, end) if due_date is not None else []
    catalog = _build_catalog(items, np.random.default_rng([seed, _STREAM_CATALOG]))
    segments = _build_segments(catalog, np.random.default_rng([seed, _STREAM_SEGMENTS]))
    n_feb29 = min(customers, max(3, customers // _FEB29_PER_CUSTOMERS))
    world = _World(
        catalog=catalog,
        segments=segments,
        window_start=_day(window_start),
        end=_day(end),
        leap_join_day=_day(_latest_leap_day(end)),
        feb29_joiners=_spread(customers, n_feb29, 0.5),
        feb29_birthdays=_spread(customers, n_feb29, 0.25),
        due_days=np.array(due_days, dtype=np.int64),
        due_share=due_share if due_date is not None else 0.0,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "catalog": out_dir / CATALOG_FILE,
        "customers": out_dir / CUSTOMERS_FILE,
        "transactions": out_dir / TRANSACTIONS_FILE,
    }
    partial = {name: path.with_name(path.name + ".partial") for name, path in files.items()}
    partial["catalog"].write_bytes(_csv_bytes(catalog.frame, header=True))

    n_orders = n_lines = 0
    with (
        partial["customers"].open("wb") as customers_out,
        partial["transactions"].open("wb") as raw,
        # mtime=0 and a fixed name keep the gzip header, and so the bytes, reproducible.
        gzip.GzipFile(
            filename="transactions.csv", mode="wb", fileobj=raw, mtime=0, compresslevel=6
        ) as transactions_out,
        # Compression is half the work and zlib releases the GIL: it runs in a thread
        # while the next chunk is simulated. One chunk in flight keeps memory flat.
        ThreadPoolExecutor(max_workers=1) as compressor,
    ):
        pending: Future[int] | None = None
        for chunk, first in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
            n = min(CHUNK_CUSTOMERS, customers - first)
            rng = np.random.default_rng([seed, _STREAM_CHUNK, chunk])
            people, chunk_lines, chunk_orders = _simulate_chunk(
                world, rng, first, n, n_orders + 1
            )
            customers_out.write(_csv_bytes(people, header=chunk == 0))
            text = _csv_bytes(chunk_lines, header=chunk == 0)
            if pending is not None:
                pending.result()
            pending = compressor.submit(transactions_out.write, text)
            n_orders += chunk_orders
            n_lines += chunk_lines.height
            if progress is not None:
                progress(n)
        if pending is not None:
            pending.result()
    for name, path in files.items():
        os.replace(partial[name], path)
    return DemoSummary(
        customers=customers,
        items=items,
        orders=n_orders,
        lines=n_lines,
        out_dir=out_dir,
        files=files,
    )
