"""`recsys train --engine spark --model als`: MLlib ALS into a `--engine local` artifact.

Data flows as on one machine: lines -> confidences -> matrix -> model -> artifact,
with Spark doing the aggregation and the fit. What the driver collects is what the
artifact holds anyway (the pairs of the training matrix, the factors), plus the
distinct (customer, item, day) purchases from which the rules layer learns category
behaviour and complements with the local code (`training.rules_learning`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from recsys.matrix import InteractionMatrix, MatrixParams, _id_map
from recsys.models import ALSRecommender
from recsys.models.base import JSONValue, csr_arrays
from recsys.rules.config import RulesConfig
from training.artifacts import load_model, prune, save_model, use_version
from training.errors import ArtifactError, TrainingError
from training.rules_learning import learn_rule_extras
from training.spark.confidence import pair_confidences
from training.train import Progress, TrainResult, fingerprint, pack_extras, resolve_params

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SPARK_MODELS", "SparkMatrix", "spark_matrix", "train_spark"]

#: Models fitted on Spark. MLlib has no BPR or item-kNN; the popularity and repurchase
#: models need no distributed fit.
SPARK_MODELS = ("als",)
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SparkMatrix:
    """The training matrix built on Spark, with the coded pairs MLlib fits on."""

    interactions: InteractionMatrix
    #: (u, i, value): int codes into the id maps, value != 0, for `ALS.fit`
    ratings: DataFrame


def _sorted_ids(pairs: DataFrame, column: str) -> pl.Series:
    values = pairs.select(column).distinct().toArrow().column(0)
    # polars' sort: the same byte order as the local build's id maps
    return pl.Series(column, values, dtype=pl.Utf8).sort()


def spark_matrix(
    spark: SparkSession,
    lines: DataFrame,
    params: MatrixParams,
    *,
    now: datetime | None,
    catalog_items: pl.Series | None,
) -> SparkMatrix:
    """`build_matrix(lines, params, now=now, catalog_items=..., order_counts=False)`
    computed on Spark: the same ids, rows, columns and values (float32)."""
    from pyspark.sql import functions as F

    catalog = (
        spark.createDataFrame(
            pl.DataFrame({"item_id": catalog_items.cast(pl.Utf8)}).to_pandas()
        )
        if catalog_items is not None
        else None
    )
    pairs = pair_confidences(lines, params, now=now, catalog_items=catalog).cache()
    users, items = _sorted_ids(pairs, "customer_id"), _sorted_ids(pairs, "item_id")
    user_codes = spark.createDataFrame(
        pl.DataFrame({"customer_id": users, "u": np.arange(len(users), dtype=np.int32)}).to_pandas()
    )
    item_codes = spark.createDataFrame(
        pl.DataFrame({"item_id": items, "i": np.arange(len(items), dtype=np.int32)}).to_pandas()
    )
    coded = (
        pairs.join(F.broadcast(item_codes), "item_id")
        .join(user_codes, "customer_id")
        .select("u", "i", F.col("value").cast("float").alias("value"))
        .cache()
    )
    table = coded.toArrow()
    rows = table.column("u").to_numpy().astype(np.int64)
    cols = table.column("i").to_numpy().astype(np.int32)
    values = table.column("value").to_numpy().astype(np.float32)
    order = np.lexsort((cols, rows))
    shape = (len(users), len(items))
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix((values[order], cols[order], indptr), shape=shape)
    matrix.has_sorted_indices = True
    if params.weighting != "none":
        matrix.eliminate_zeros()  # as `recsys.matrix._weight`
    pairs.unpersist()
    interactions = InteractionMatrix(
        matrix,
        _id_map(users),
        _id_map(items),
        sp.csr_matrix(shape, dtype=np.float32),  # ALS reads no order counts
    )
    return SparkMatrix(interactions, coded.where(F.col("value") != 0))


def _fit_als(
    ratings: DataFrame, model_params: Mapping[str, Any], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """MLlib ALS with implicitPrefs; the factors as float32 (rows without a rating: 0)."""
    from pyspark.ml.recommendation import ALS

    factors = int(model_params["factors"])
    als = ALS(
        rank=factors,
        maxIter=int(model_params["iterations"]),
        regParam=float(model_params["regularization"]),
        alpha=float(model_params["alpha"]),
        implicitPrefs=True,
        seed=int(model_params["random_state"]),
        userCol="u",
        itemCol="i",
        ratingCol="value",
    )
    fitted = als.fit(ratings)

    def dense(frame: DataFrame, n: int) -> np.ndarray:
        table = frame.toArrow()
        out = np.zeros((n, factors), dtype=np.float32)
        ids = table.column("id").to_numpy()
        if len(ids):
            out[ids] = np.asarray(table.column("features").to_pylist(), dtype=np.float32)
        return out

    return dense(fitted.userFactors, shape[0]), dense(fitted.itemFactors, shape[1])


def _purchase_days(lines: DataFrame) -> pl.DataFrame:
    """Distinct (customer, item, day) of bought lines: all that the rules layer learns
    from (category behaviour counts purchase days, complements pair them by day)."""
    from pyspark.sql import functions as F

    table = (
        lines.where(F.coalesce(F.col("quantity"), F.lit(1.0)) > 0)
        .select(
            "customer_id",
            "item_id",
            F.to_timestamp(F.to_date("purchased_at")).alias("purchased_at"),
        )
        .dropna()
        .distinct()
        .toArrow()
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    stamps = pl.col("purchased_at")
    if isinstance(frame.schema["purchased_at"], pl.Datetime) and frame.schema[
            "purchased_at"].time_zone is not None:
        stamps = stamps.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return frame.with_columns(stamps.cast(pl.Datetime("us")), quantity=pl.lit(1.0))


def _line_stats(lines: DataFrame) -> tuple[int, datetime | None, datetime | None]:
    from pyspark.sql import functions as F

    # as microseconds: a collected timestamp would be read in this process's time zone
    micros = F.unix_micros("purchased_at")
    row = lines.agg(
        F.count("*").alias("rows"), F.min(micros).alias("first"), F.max(micros).alias("last")
    ).first()
    assert row is not None

    def naive(value: int | None) -> datetime | None:
        return None if value is None else _EPOCH + timedelta(microseconds=int(value))

    return int(row["rows"]), naive(row["first"]), naive(row["last"])


def train_spark(
    spark: SparkSession,
    lines: DataFrame,
    catalog: pl.DataFrame | None,
    rules: RulesConfig | None,
    *,
    model: str = "als",
    params: Mapping[str, Any] | None = None,
    as_of: datetime | None = None,
    models_dir: Path,
    progress: Progress | None = None,
    make_current: bool = True,
    keep: int | None = None,
    candidates: int = 0,
    engine_info: Mapping[str, JSONValue] | None = None,
) -> TrainResult:
    """Fit `model` on Spark from `lines` and save it as `training.train.train_model` does.

    `rules`: learn category behaviour and complements into the artifact (None: none).
    `as_of` (naive UTC): train on the lines before it and measure recency from it;
    default, as `training.train.reference_time`: from the newest purchase.
    The artifact is loaded back before `current` is switched; a failure leaves the
    current model serving. Raises TrainingError (bad input or settings, empty store)
    or ArtifactError (saving failed).
    """
    if model not in SPARK_MODELS:
        raise TrainingError(
            f"--engine spark fits {', '.join(SPARK_MODELS)}, not {model!r}; "
            "train the others with --engine local"
        )
    resolved = resolve_params(model, params)
    report = progress or (lambda _stage, _done, _total: None)
    total = 5
    started = time.perf_counter()
    report("reading purchases on Spark", 0, total)
    if as_of is not None:
        from pyspark.sql import functions as F

        cutoff = (as_of - _EPOCH) // timedelta(microseconds=1)
        lines = lines.where(F.unix_micros("purchased_at") < F.lit(cutoff))
    lines = lines.persist()
    try:
        rows, first, last = _line_stats(lines)
        if rows == 0:
            raise TrainingError("no purchases to train on")
        now = as_of if as_of is not None else last
        assert isinstance(now, datetime)
        catalog_items = (
            catalog.get_column("item_id")
            if catalog is not None and catalog.height and "item_id" in catalog.columns
            else None
        )
        report("building the confidence matrix on Spark", 1, total)
        built = spark_matrix(spark, lines, resolved.matrix, now=now, catalog_items=catalog_items)
        interactions = built.interactions
        users, items = interactions.shape
        if users == 0 and catalog_items is not None:
            raise TrainingError("no purchase refers to an item of the catalog")
        if users < 2:
            raise TrainingError(
                f"need purchases (net quantity > 0) from at least two customers, found {users}"
            )
        if items < 2:
            raise TrainingError(f"need at least two purchased items, found {items}")
        matrix_done = time.perf_counter()
        report(f"fitting {model} on Spark", 2, total)
        model_params = ALSRecommender.from_params(resolved.model).params  # with defaults
        user_factors, item_factors = _fit_als(built.ratings, model_params, (users, items))
        fit_done = time.perf_counter()
        built.ratings.unpersist()
        report("learning category behaviour and complements", 3, total)
        extras: dict[str, JSONValue] = {}
        if rules is not None and catalog is not None and catalog.height:
            extras.update(learn_rule_extras(_purchase_days(lines), catalog, rules))
        rules_done = time.perf_counter()
    finally:
        lines.unpersist()
    recommender = _recommender(model_params, interactions, user_factors, item_factors)
    timings = {
        "matrix": matrix_done - started,
        "fit": fit_done - matrix_done,
        "rules": rules_done - fit_done,
    }
    if candidates > 0:
        precompute_started = time.perf_counter()
        recommender.precompute(candidates)
        timings["precompute"] = time.perf_counter() - precompute_started
    report("saving artifact", 4, total)
    if engine_info:
        extras["training_engine"] = dict(engine_info)
    json_extras, extra_arrays = pack_extras(extras)
    # the fingerprint of the local path: lines read, their time range, the matrix's hash
    stamp = fingerprint(pl.DataFrame({"purchased_at": [first, last]}), interactions)
    stamp["rows"] = rows
    save_started = time.perf_counter()
    version = save_model(
        models_dir,
        recommender,
        created_at=now,
        matrix_params=resolved.matrix_json(),
        data_fingerprint=stamp,
        timings=timings,
        extras=json_extras,
        make_current=False,
        extra_arrays=extra_arrays,
    )
    saved = time.perf_counter()
    try:
        if make_current:
            use_version(models_dir, version, mmap=True, checksums=False)
        else:
            load_model(models_dir, version, mmap=True, checksums=False)
    except ArtifactError as exc:
        raise ArtifactError(
            f"saved model {version} does not load back; current kept: {exc}"
        ) from exc
    timings.update(save=saved - save_started, verify=time.perf_counter() - saved)
    pruned = tuple(prune(models_dir, keep)) if keep is not None else ()
    report("done", total, total)
    return TrainResult(
        version=version,
        model=model,
        params={**resolved.matrix_json(), **recommender.params},
        timings=timings,
        counts={"purchases": rows, "users": users, "items": items, "nnz": interactions.nnz},
        made_current=make_current,
        pruned=pruned,
    )


def _recommender(
    model_params: Mapping[str, Any],
    interactions: InteractionMatrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
) -> ALSRecommender:
    """The local ALS model over Spark's factors, restored as an artifact would be: the
    API, the rules and the campaign then serve it like any other."""
    matrix = interactions.matrix
    arrays = {
        **csr_arrays("user_items", matrix),
        **csr_arrays("order_counts", interactions.order_counts),
        "popularity": np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float32),
        "als.user_factors": user_factors,
        "als.item_factors": item_factors,
    }
    restored = ALSRecommender.from_arrays(
        dict(model_params), arrays, interactions.user_ids, interactions.item_ids
    )
    assert isinstance(restored, ALSRecommender)
    return restored


