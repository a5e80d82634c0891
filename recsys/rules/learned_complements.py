"""Complements learned from co-purchases: item pairs bought by one customer close in time.

Learned at training time and saved in the model artifact (hence the JSON
round trip); the configured category map lives in `complements.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.ids import IdMap
from recsys.rules._packed import bought_days, check_fits, packed_key, radixes
from recsys.rules.categories import ITEM_SCOPE
from recsys.rules.config import LearnedComplementsConfig

# polars is imported inside the functions that build frames: the API's workers never
# need it, and it costs each of them about 40 MiB.
if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True, slots=True)
class Complement:
    """`item_id` is bought with the anchor item `lift` times more often than chance."""

    item_id: str
    lift: float
    support: int


class _PackedComplements(Mapping[str, tuple[Complement, ...]]):
    """The same mapping held as flat arrays (CSR by anchor), as saved in a model artifact.

    At 77k anchors and 484k complements the dict of `Complement`s took about 85 MiB per
    serving worker, and parsing it from JSON left 150 MiB more behind; these arrays
    take about 15 MiB, and a lookup builds the few `Complement`s of one anchor.
    """

    def __init__(
        self,
        anchors: IdMap,
        indptr: np.ndarray,
        items: IdMap,
        item_codes: np.ndarray,
        lift: np.ndarray,
        support: np.ndarray,
    ) -> None:
        self._anchors = anchors
        self._indptr = indptr
        self._items = items.ids
        self._codes = item_codes
        self._lift = lift
        self._support = support

    def _span(self, anchor: object) -> slice | None:
        row = self._anchors.get(anchor) if isinstance(anchor, str) else None
        if row is None:
            return None
        return slice(int(self._indptr[row]), int(self._indptr[row + 1]))

    def __getitem__(self, anchor: str) -> tuple[Complement, ...]:
        span = self._span(anchor)
        if span is None:
            raise KeyError(anchor)
        return tuple(
            Complement(self._items[code], lift, support)
            for code, lift, support in zip(
                self._codes[span].tolist(),
                self._lift[span].tolist(),
                self._support[span].tolist(),
                strict=True,
            )
        )

    def item_ids(self, anchor: str) -> tuple[str, ...]:
        span = self._span(anchor)
        if span is None:
            return ()
        return tuple(self._items[code] for code in self._codes[span].tolist())

    def item_id_sets(self, anchors: Sequence[str]) -> dict[str, frozenset[str]]:
        """`item_ids` of many anchors as sets, their rows found in one vectorised search."""
        rows = self._anchors.lookup(anchors)
        known = rows >= 0
        starts = self._indptr[rows[known]]
        lengths = self._indptr[rows[known] + 1] - starts
        # Every known anchor's codes in one gather and one conversion to Python ints.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        flat = self._codes[offsets + np.arange(int(lengths.sum()))].tolist()
        items = self._items
        found: dict[str, frozenset[str]] = {}
        spans = iter(np.cumsum(lengths).tolist())
        start = 0
        for anchor, is_known in zip(anchors, known.tolist(), strict=True):
            if not is_known:
                found[anchor] = frozenset()
                continue
            end = next(spans)
            found[anchor] = frozenset(items[code] for code in flat[start:end])
            start = end
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._anchors.ids)

    def __len__(self) -> int:
        return len(self._anchors)


#: Anchors whose complement sets `warm` keeps (the memo is emptied when full): a
#: campaign batch warms its customers' recent purchases.
_MEMO_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class LearnedComplements:
    """Anchor item_id -> its complements, best (highest lift) first."""

    by_item: Mapping[str, tuple[Complement, ...]] = field(default_factory=dict)
    _sets: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat numeric arrays (no pickle): anchors and items as UTF-8 bytes, CSR by anchor."""
        anchors = sorted(self.by_item)
        items = sorted({c.item_id for found in self.by_item.values() for c in found})
        code = {item: i for i, item in enumerate(items)}
        rows = [self.by_item[anchor] for anchor in anchors]
        flat = [c for found in rows for c in found]
        return {
            "anchors": IdMap(anchors).utf8(),
            "indptr": np.cumsum([0, *(len(found) for found in rows)], dtype=np.int64),
            "items": IdMap(items).utf8(),
            "item_codes": np.asarray([code[c.item_id] for c in flat], dtype=np.int32),
            "lift": np.asarray([c.lift for c in flat], dtype=np.float64),
            "support": np.asarray([c.support for c in flat], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> LearnedComplements:
        """The mapping saved by `to_arrays`; ValueError when the arrays do not fit together."""
        try:
            anchors = IdMap.from_utf8(arrays["anchors"])
            items = IdMap.from_utf8(arrays["items"])
            indptr = np.asarray(arrays["indptr"], dtype=np.int64)
            codes = np.asarray(arrays["item_codes"], dtype=np.int64)
            lift = np.asarray(arrays["lift"], dtype=np.float64)
            support = np.asarray(arrays["support"], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"learned complements lack array {exc.args[0]!r}") from exc
        n = len(codes)
        if (
            indptr.shape != (len(anchors) + 1,)
            or (indptr.size and (indptr[0] != 0 or indptr[-1] != n))
            or bool(np.any(np.diff(indptr) < 0))
            or lift.shape != (n,)
            or support.shape != (n,)
            or (n and (int(codes.min()) < 0 or int(codes.max()) >= len(items)))
        ):
            raise ValueError("learned complements arrays do not fit together")
        return cls(_PackedComplements(anchors, indptr, items, codes, lift, support))

    def for_item(self, item_id: str) -> tuple[Complement, ...]:
        return self.by_item.get(item_id, ())

    def item_ids_for(self, item_id: str) -> tuple[str, ...]:
        """Just the complements' item ids, best first (no `Complement` objects built)."""
        if isinstance(self.by_item, _PackedComplements):
            return self.by_item.item_ids(item_id)
        return tuple(c.item_id for c in self.by_item.get(item_id, ()))

    def item_id_set(self, item_id: str) -> frozenset[str]:
        """`item_ids_for` as a set: from the memo that `warm` filled, else built now.

        Only `warm` stores sets, so a serving worker, which never warms, keeps no memo
        growing with the items its requests touch.
        """
        found = self._sets.get(item_id)
        return found if found is not None else frozenset(self.item_ids_for(item_id))

    def warm(self, item_ids: Iterable[str]) -> None:
        """Build the sets of `item_id_set` for many anchors at once (a campaign batch's
        recent purchases): one vectorised search instead of one per anchor."""
        wanted = [i for i in dict.fromkeys(item_ids) if i not in self._sets]
        if not wanted:
            return
        wanted = wanted[:_MEMO_LIMIT]
        if len(self._sets) + len(wanted) > _MEMO_LIMIT:
            self._sets.clear()
        if isinstance(self.by_item, _PackedComplements):
            self._sets.update(self.by_item.item_id_sets(wanted))
        else:
            for item_id in wanted:
                self._sets[item_id] = frozenset(self.item_ids_for(item_id))

    def __len__(self) -> int:
        return len(self.by_item)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            anchor: [
                {"item_id": c.item_id, "lift": c.lift, "support": c.support} for c in complements
            ]
            for anchor, complements in sorted(self.by_item.items())
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedComplements:
        return cls(
            {
                str(anchor): tuple(
                    Complement(str(c["item_id"]), float(c["lift"]), int(c["support"]))
                    for c in complements
                )
                for anchor, complements in data.items()
            }
        )


def learn_complements(
    purchases: pl.DataFrame,
    config: LearnedComplementsConfig,
    item_category: pl.DataFrame | None = None,
    *,
    bought: pl.DataFrame | None = None,
) -> LearnedComplements:
    """Item pairs that the same customer bought within `config.window_days` of each other.

    `purchases` has `customer_id`, `item_id`, `purchased_at` and optionally
    `quantity` (lines with quantity <= 0 are returns and ignored). An order has
    one customer and one timestamp, so "same order" is the window-0 case.

    Counting is per customer: support(a, b) is the number of customers who
    bought a and b within the window, and
    `lift = support(a, b) * n_customers / (buyers(a) * buyers(b))`, which corrects
    for popularity (a best-seller co-occurs with everything, at lift ~1). A pair is
    kept when support >= `min_support`, lift >= `min_lift` and the co-purchase
    survives a one-sided hypergeometric test against chance at `max_p_value`
    (three co-buyers of two niche items reach a high lift by luck); with
    `item_category` (columns `item_id`, `category`) and `exclude_same_category`,
    two items of the same leaf category are substitutes, never complements. Each
    anchor keeps its best `max_per_item`, ranked by support (among pairs that beat
    chance, the one most customers bought together is the one most likely bought
    again: docs/evaluation.md, complement precision), then the lower 95% bound of
    the lift (a Poisson bound on the support), then item_id, for stable output.

    `bought`, if given, is `bought_days(purchases, "item")`, already computed by the
    caller (`learn_rule_extras` shares it with the category learner).
    """
    import polars as pl

    bought = (
        bought_days(purchases, "code") if bought is None else bought.rename({"item": "code"})
    )
    if bought.is_empty():
        return LearnedComplements()
    n_customers = bought.get_column("customer").n_unique()

    # Integer codes packed into one UInt64 key per row (`recsys.rules._packed`): the
    # unique, sort and self-join below are the expensive steps, and they are several
    # times faster on one integer than on string ids. Items are numbered densely, so
    # that an unordered pair of them packs into one integer too.
    item_ids = bought.select(pl.col("item_id").unique()).select(
        pl.col("item_id").cast(pl.String), pl.col("item_id").to_physical().alias("code")
    )
    n_items = item_ids.height
    item_codes = item_ids.with_columns(
        pl.int_range(0, n_items, dtype=pl.UInt32).alias("item")
    )
    coded = bought.join(item_codes.select("code", "item"), on="code").select(
        "customer", "item", "day"
    )
    customers, _, n_days = radixes(coded, ["customer", "item", "day"])
    by_buyer = (
        coded.select(packed_key(["item", "customer"], [n_items, customers]).alias("key"))
        .get_column("key")
        .unique()
    )
    buyers = (
        (by_buyer // customers)
        .cast(pl.UInt32)
        .value_counts(name="buyers")
        .rename({"key": "item"})
        .with_columns(pl.col("buyers").cast(pl.UInt32))
    )
    # An item with fewer buyers than min_support cannot reach it in any pair.
    frequent = buyers.filter(pl.col("buyers") >= config.min_support).get_column("item")
    coded = coded.filter(pl.col("item").is_in(frequent.implode()))

    # Bucketing days by window width puts every pair within the window in the
    # same or the next bucket, so the self-join only pairs purchases that can
    # qualify instead of every pair of a heavy buyer's whole history. Same-bucket
    # matches come in both orientations (kept once: item < other); next-bucket
    # matches in one, so their pair key is made orientation-free with min/max.
    # Same-day pairs (window 0, the default) need no next bucket at all.
    width = config.window_days + 1
    n_buckets = n_days // width + 1
    basket = packed_key(["customer", "bucket"], [customers, n_buckets]).alias("basket")
    left = coded.with_columns((pl.col("day") // width).alias("bucket")).select(
        basket, "item", "day"
    )
    shifted = [pl.lit(False).alias("shifted")]
    right = [left.with_columns(*shifted)]
    if config.window_days > 0:
        right.append(
            coded.with_columns((pl.col("day") // width - 1).alias("bucket"))
            .filter(pl.col("bucket") >= 0)
            .select(basket, "item", "day", pl.lit(True).alias("shifted"))
        )
    others = pl.concat(right).rename({"item": "other", "day": "other_day"})
    pair = (
        pl.min_horizontal("item", "other").cast(pl.UInt64) * n_items
        + pl.max_horizontal("item", "other")
    )
    # The customer and the pair as one key: unique per (customer, pair), then counted.
    n_pairs = n_items * n_items
    customer_pair = (pl.col("basket") // n_buckets) * n_pairs + pair
    check_fits([customers, n_pairs])
    supported = (
        left.lazy()
        .join(others.lazy(), on="basket", how="inner")
        .filter(
            (pl.col("item") != pl.col("other"))
            & (pl.col("shifted") | (pl.col("item") < pl.col("other")))
            & ((pl.col("day") - pl.col("other_day")).abs() <= config.window_days)
        )
        .select(customer_pair.alias("key"))
        .unique()
        .group_by((pl.col("key") % n_pairs).alias("pair"))
        .agg(pl.len().alias("support"))
        .filter(pl.col("support") >= config.min_support)
        .select(
            (pl.col("pair") // n_items).cast(pl.UInt32).alias("a"),
            (pl.col("pair") % n_items).cast(pl.UInt32).alias("b"),
            "support",
        )
    )
    # Lift is symmetric, but each item keeps its own top list: count both directions.
    directed = pl.concat(
        [
            supported.select(pl.col("a").alias("item"), pl.col("b").alias("other"), "support"),
            supported.select(pl.col("b").alias("item"), pl.col("a").alias("other"), "support"),
        ]
    )
    item_names = item_codes.lazy().select("item", "item_id")
    other_buyers = buyers.lazy().rename({"item": "other", "buyers": "other_buyers"})
    scored = (
        directed.join(buyers.lazy(), on="item")
        .join(other_buyers, on="other")
        .with_columns(
            (
                pl.col("support").cast(pl.Float64)
                * n_customers
                / (pl.col("buyers").cast(pl.Float64) * pl.col("other_buyers"))
            ).alias("lift")
        )
        .filter(pl.col("lift") >= config.min_lift)
        .join(item_names, on="item")
        .join(item_names.rename({"item": "other", "item_id": "other_id"}), on="other")
        .collect()
    )
    if item_category is not None and config.exclude_same_category:
        scored = _without_substitutes(scored, item_category)
    scored = _significant(scored, n_customers, config.max_p_value)
    ranked = (
        scored.sort(
            ["item_id", "support", "lift_low", "other_id"],
            descending=[False, True, True, False],
        )
        .group_by("item_id", maintain_order=True)
        .head(config.max_per_item)
    )
    by_item: dict[str, list[Complement]] = {}
    for anchor, other, lift, support in ranked.select(
        "item_id", "other_id", "lift", "support"
    ).iter_rows():
        by_item.setdefault(anchor, []).append(Complement(other, round(lift, 6), int(support)))
    return LearnedComplements({anchor: tuple(found) for anchor, found in by_item.items()})


def _without_substitutes(scored: pl.DataFrame, item_category: pl.DataFrame) -> pl.DataFrame:
    """Drop pairs whose two items share a (real) leaf category: one replaces the other."""
    import polars as pl

    categories = item_category.select(
        pl.col("item_id").cast(pl.String), pl.col("category").cast(pl.String)
    ).filter(pl.col("category").is_not_null() & ~pl.col("category").str.starts_with(ITEM_SCOPE))
    joined = scored.join(categories, on="item_id", how="left").join(
        categories.rename({"item_id": "other_id", "category": "other_category"}),
        on="other_id",
        how="left",
    )
    same = pl.col("category").is_not_null() & (pl.col("category") == pl.col("other_category"))
    return joined.filter(~same.fill_null(False)).drop("category", "other_category")


#: Terms of the upper tail summed at most; a tail not down to `_TAIL_EPS` of its sum by
#: then is left to scipy.
_TAIL_TERMS = 400
_TAIL_EPS = 1e-17
#: p-values this close (relative) to the threshold are recomputed by scipy, so the
#: decision is scipy's wherever the two could disagree.
_NEAR = 1e-6


def _significant(scored: pl.DataFrame, n_customers: int, max_p_value: float) -> pl.DataFrame:
    """Pairs whose support is unlikely under independence, with `lift_low` added.

    p = P(X >= support) for X ~ Hypergeometric(n_customers, buyers(a), buyers(b)): how
    often two independent items would share this many buyers.
    """
    import polars as pl
    from scipy.special import gammaincinv

    if scored.is_empty():
        return scored.with_columns(pl.lit(0.0).alias("lift_low"))
    support = scored.get_column("support").to_numpy().astype(np.float64)
    buyers = scored.get_column("buyers").to_numpy().astype(np.float64)
    other = scored.get_column("other_buyers").to_numpy().astype(np.float64)
    p = hypergeom_sf(support, n_customers, buyers, other, near=max_p_value)
    expected = buyers * other / n_customers
    # The gamma quantile depends on the support alone: once per distinct value. It is
    # `scipy.stats.gamma.ppf(0.05, values)` (the same function underneath), without the
    # second it takes to import scipy.stats.
    values, inverse = np.unique(support, return_inverse=True)
    lift_low = gammaincinv(values, 0.05)[inverse] / expected
    return scored.with_columns(pl.Series("lift_low", lift_low)).filter(
        pl.Series(p <= max_p_value)
    )


def hypergeom_sf(
    support: np.ndarray, total: int, good: np.ndarray, drawn: np.ndarray, *, near: float
) -> np.ndarray:
    """`scipy.stats.hypergeom.sf(support - 1, total, good, drawn)`, vectorised.

    scipy's sum runs per pair and took over a minute for ~100k pairs at 100k customers.
    Here the upper tail is summed for every pair at once: its first term from log
    binomials, each next one by the ratio of consecutive terms; the pairs kept by the
    lift filter lie above the mean, where the terms fall off geometrically. Pairs whose
    tail did not converge, and p-values within `_NEAR` (relative) of `near` (the
    threshold they are compared with), are computed by scipy.
    """
    from scipy.special import gammaln

    k = np.asarray(support, dtype=np.float64)
    n = np.asarray(good, dtype=np.float64)
    m = np.asarray(drawn, dtype=np.float64)
    top = np.minimum(n, m)
    rest = total - n - m  # non-negative wherever the tail is summed (see `valid`)

    def log_choose(a: np.ndarray | float, b: np.ndarray) -> np.ndarray:
        return np.asarray(gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1))

    valid = (k >= 1) & (k <= top) & (rest >= 0) & (k * total > n * m)
    with np.errstate(all="ignore"):
        first = log_choose(n, k) + log_choose(total - n, m - k) - log_choose(total, m)
        term = np.where(valid, np.exp(first), 0.0)
        tail = term.copy()
        j = k.copy()
        for _ in range(_TAIL_TERMS):
            going = valid & (j < top)
            ratio = np.where(going, (n - j) * (m - j) / ((j + 1) * (rest + j + 1)), 0.0)
            term = term * ratio
            tail += term
            j += 1
            if not (term > tail * _TAIL_EPS).any():
                break
        done = valid & ~(term > tail * _TAIL_EPS)
    redo = ~done | (np.abs(tail - near) <= _NEAR * near)
    if redo.any():
        from scipy.stats import hypergeom  # a second to import; rarely needed

        tail[redo] = hypergeom.sf(k[redo] - 1, total, n[redo], m[redo])
    return tail
