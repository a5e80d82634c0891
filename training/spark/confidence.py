"""`recsys.matrix.build_matrix`'s confidences as Spark aggregates.

The same arithmetic per (customer, item) pair as `recsys.matrix._pair_values`, one
`groupBy` over the lines instead of one sort on one machine:

- `net` = sum of quantities (returns negative), `gross` = sum of bought (> 0)
  quantities; a pair whose net is <= 0 is dropped;
- decay per line `2 ** -(whole seconds of age / (86400 * half_life_days))`;
- `binary`: the newest bought line's decay; `quantity` / `orders`: the decayed bought
  units / lines scaled by net / gross; `log_quantity`: log1p of the `quantity` value;
- BM25 / TF-IDF on top as `implicit.nearest_neighbours.bm25_weight` and `tfidf_weight`
  weigh the (items, customers) matrix.

tests/training/test_spark.py checks that the resulting matrix equals
`build_matrix`'s on the same lines for every confidence, decay and weighting.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from recsys.matrix import MatrixParams

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["pair_confidences"]

_EPOCH = datetime(1970, 1, 1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def pair_confidences(
    lines: DataFrame,
    params: MatrixParams,
    *,
    now: datetime | None,
    catalog_items: DataFrame | None = None,
) -> DataFrame:
    """`(customer_id, item_id, value)` for every kept pair (double).

    Every pair of the local matrix is there, in the same rows and columns; with BM25 or
    TF-IDF a value may be 0 (a customer who bought every item), which the local build
    drops from the CSR after weighting as the caller does.

    `lines` has the columns of `training.spark.source.COLUMNS`; `now` (naive UTC) is
    required with a half-life or a window, and lines after it are ignored.
    `catalog_items` (one column `item_id`), when given, keeps only those items.
    """
    from pyspark.sql import functions as F

    if (params.half_life_days is not None or params.window_days is not None) and now is None:
        raise ValueError("`now` is required with half_life_days or window_days")
    frame = lines.select(
        "customer_id",
        "item_id",
        F.coalesce(F.col("quantity"), F.lit(1.0)).alias("q"),
        F.unix_micros(F.col("purchased_at")).alias("ts"),
    ).dropna(subset=["customer_id", "item_id", "ts"])
    if now is not None:
        frame = frame.where(F.col("ts") <= _micros(now))
        if params.window_days is not None:
            frame = frame.where(F.col("ts") >= _micros(now - timedelta(days=params.window_days)))
    if catalog_items is not None:
        frame = frame.join(F.broadcast(catalog_items.select("item_id").distinct()),
                           "item_id", "left_semi")
    decay_now = now if params.half_life_days is not None else None

    def decay(ts: Column) -> Column:
        if decay_now is None:
            return F.lit(1.0)
        assert params.half_life_days is not None
        age_seconds = F.floor((F.lit(_micros(decay_now)) - ts) / F.lit(1_000_000))
        return F.pow(F.lit(2.0), -age_seconds / F.lit(86_400.0 * params.half_life_days))

    bought = F.col("q") > 0
    if params.confidence == "binary":
        pairs = frame.groupBy("customer_id", "item_id").agg(
            F.sum("q").alias("net"), F.max(F.when(bought, F.col("ts"))).alias("latest")
        )
        value = decay(F.col("latest"))
        kept = (F.col("net") > 0) & F.col("latest").isNotNull()
    else:
        weight = decay(F.col("ts"))
        if params.confidence != "orders":
            weight = F.col("q") * weight
        pairs = frame.groupBy("customer_id", "item_id").agg(
            F.sum("q").alias("net"),
            F.sum(F.when(bought, F.col("q")).otherwise(0.0)).alias("gross"),
            F.sum(F.when(bought, weight).otherwise(0.0)).alias("decayed"),
        )
        value = F.col("decayed") * (F.col("net") / F.col("gross"))
        if params.confidence == "log_quantity":
            value = F.log1p(value)
        kept = (F.col("net") > 0) & (F.col("gross") > 0)
    scored = (
        pairs.where(kept)
        .select("customer_id", "item_id", value.alias("value"))
        .where(F.col("value") > 0)
        # the local matrix holds float32 confidences: the same rounding before weighting
        .withColumn("value", F.col("value").cast("float").cast("double"))
    )
    return _weight(scored, params)


def _weight(pairs: DataFrame, params: MatrixParams) -> DataFrame:
    """BM25 / TF-IDF of implicit on the (items, customers) orientation (zeros kept)."""
    from pyspark.sql import functions as F

    if params.weighting == "none":
        return pairs
    pairs = pairs.cache()
    n_items = pairs.select("item_id").distinct().count()
    # idf per customer: log(N items) - log1p(items the customer bought)
    idf = pairs.groupBy("customer_id").agg(
        (F.log(F.lit(float(n_items))) - F.log1p(F.count("*").cast("double"))).alias("idf")
    )
    weighted = pairs.join(idf, "customer_id")
    if params.weighting == "tfidf":
        value = F.sqrt("value") * F.col("idf")
    else:
        k1, b = params.bm25_k1, params.bm25_b
        lengths = pairs.groupBy("item_id").agg(F.sum("value").alias("length"))
        average = lengths.agg(F.avg("length")).first()
        assert average is not None
        norm = lengths.select(
            "item_id",
            (F.lit(1.0 - b) + F.lit(b) * F.col("length") / F.lit(float(average[0]))).alias("norm"),
        )
        weighted = weighted.join(norm, "item_id")
        value = (
            F.col("value") * F.lit(k1 + 1.0)
            / (F.lit(k1) * F.col("norm") + F.col("value")) * F.col("idf")
        )
    return weighted.select("customer_id", "item_id", value.alias("value"))
