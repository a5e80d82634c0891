"""The Spark confidence matrix equals `recsys.matrix.build_matrix` on the same lines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from recsys.matrix import MatrixParams, build_matrix
from training.spark.source import purchases_from_parquet
from training.spark.train import spark_matrix

NOW = datetime(2026, 11, 20, 12, 0)


def _lines(seed: int = 3, n: int = 4000) -> pl.DataFrame:
    """Lines with returns, repeated pairs, null quantities, lines after NOW, odd ids."""
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, 150, n)
    items = rng.integers(0, 60, n)
    quantity = rng.choice([1.0, 2.0, 3.0, 12.0, -1.0, -2.0], n, p=[.4, .2, .1, .1, .1, .1])
    age = rng.integers(-5 * 86_400, 700 * 86_400, n)
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{c:03d}" if c % 7 else f"ü-{c}" for c in customers],
            "item_id": [f"I{i}" for i in items],
            "order_id": [f"O{k // 3}" for k in range(n)],
            "quantity": quantity,
            "unit_price": rng.uniform(1, 50, n),
            "purchased_at": [NOW - timedelta(seconds=int(a)) for a in age],
        }
    )
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("quantity"))
        .alias("quantity"),
        pl.col("purchased_at").cast(pl.Datetime("us")),
    )


@pytest.fixture(scope="module")
def lines(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Any]:
    local = _lines()
    path = tmp_path_factory.mktemp("export") / "purchases.parquet"
    local.write_parquet(path)
    return local, purchases_from_parquet(spark, path).cache()


@pytest.mark.parametrize(
    "params",
    [
        MatrixParams("binary", half_life_days=60.0),
        MatrixParams("binary"),
        MatrixParams("quantity", half_life_days=30.0, window_days=365.0),
        MatrixParams("log_quantity"),
        MatrixParams("orders", half_life_days=90.0),
        MatrixParams("log_quantity", half_life_days=60.0, weighting="bm25"),
        MatrixParams("quantity", weighting="tfidf"),
    ],
    ids=lambda p: f"{p.confidence}-{p.half_life_days}-{p.weighting}-{p.window_days}",
)
def test_same_matrix_as_local(spark: Any, lines: tuple[pl.DataFrame, Any],
                              params: MatrixParams) -> None:
    local_lines, spark_lines = lines
    catalog = pl.Series("item_id", [f"I{i}" for i in range(55)])  # 5 items left out
    expected = build_matrix(local_lines, params, now=NOW, catalog_items=catalog,
                            order_counts=False)
    got = spark_matrix(spark, spark_lines, params, now=NOW, catalog_items=catalog).interactions
    assert list(got.user_ids.ids) == list(expected.user_ids.ids)
    assert list(got.item_ids.ids) == list(expected.item_ids.ids)
    assert got.shape == expected.shape
    assert "I57" not in got.item_ids
    np.testing.assert_array_equal(got.matrix.indptr, expected.matrix.indptr)
    np.testing.assert_array_equal(got.matrix.indices, expected.matrix.indices)
    np.testing.assert_allclose(got.matrix.data, expected.matrix.data, rtol=2e-6)
    assert got.matrix.dtype == np.float32
    assert got.order_counts.shape == expected.shape
