"""Matrix building: returns, decay, weighting, id maps, fold-in rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.ids import IdMap
from recsys.matrix import MatrixParams, build_matrix, history_row

SCHEMA = {
    "customer_id": pl.Utf8,
    "item_id": pl.Utf8,
    "order_id": pl.Utf8,
    "quantity": pl.Float64,
    "unit_price": pl.Float64,
    "purchased_at": pl.Datetime("us"),
}


def frame(rows: list[tuple[str, str, str, float, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, i, o, q, 1.0, t) for c, i, o, q, t in rows], schema=SCHEMA, orient="row"
    )


def value(m: object, customer: str, item: str) -> float:
    im = m  # InteractionMatrix
    return float(im.matrix[im.user_ids.index(customer), im.item_ids.index(item)])  # type: ignore[attr-defined]


def test_returns_subtract_and_full_returns_drop(now: datetime) -> None:
    day = now - timedelta(days=1)
    m = build_matrix(
        frame(
            [
                ("a", "x", "o1", 4.0, day),
                ("a", "x", "r1", -1.0, day),  # partial return: 3 of 4 kept
                ("a", "y", "o1", 2.0, day),
                ("a", "y", "r2", -2.0, day),  # fully returned: no preference
                ("b", "y", "o2", 1.0, day),
            ]
        ),
        MatrixParams(confidence="quantity"),
    )
    assert m.matrix.dtype == np.float32
    assert m.shape == (2, 2)
    assert value(m, "a", "x") == pytest.approx(3.0)
    assert value(m, "a", "y") == 0.0
    assert m.nnz == 2
    assert m.order_counts[m.user_ids.index("a"), m.item_ids.index("x")] == 1


def test_customer_with_only_returns_is_dropped(now: datetime) -> None:
    m = build_matrix(
        frame([("a", "x", "o1", 1.0, now), ("b", "x", "r", -1.0, now)]),
        MatrixParams(confidence="binary"),
    )
    assert m.user_ids.ids == ("a",)


def test_decay_halves_at_half_life(now: datetime) -> None:
    m = build_matrix(
        frame(
            [
                ("a", "new", "o1", 1.0, now),
                ("a", "old", "o2", 1.0, now - timedelta(days=30)),
                ("a", "future", "o3", 1.0, now + timedelta(days=1)),
            ]
        ),
        MatrixParams(confidence="quantity", half_life_days=30.0),
        now=now,
    )
    assert value(m, "a", "new") == pytest.approx(1.0)
    assert value(m, "a", "old") == pytest.approx(0.5)
    assert "future" not in m.item_ids  # after `now`: not known at training time


def test_decay_and_window_need_now(now: datetime) -> None:
    data = frame([("a", "x", "o1", 1.0, now)])
    with pytest.raises(ValueError, match="now"):
        build_matrix(data, MatrixParams(half_life_days=10.0))
    windowed = build_matrix(
        frame([("a", "x", "o1", 1.0, now), ("b", "y", "o2", 1.0, now - timedelta(days=40))]),
        MatrixParams(window_days=30.0),
        now=now,
    )
    assert windowed.user_ids.ids == ("a",)


def test_confidence_kinds(now: datetime) -> None:
    rows = [("a", "x", "o1", 3.0, now), ("a", "x", "o2", 5.0, now), ("b", "x", "o3", 1.0, now)]
    data = frame(rows)
    assert value(build_matrix(data, MatrixParams(confidence="quantity")), "a", "x") == 8.0
    assert value(
        build_matrix(data, MatrixParams(confidence="log_quantity")), "a", "x"
    ) == pytest.approx(np.log1p(8.0))
    assert value(build_matrix(data, MatrixParams(confidence="orders")), "a", "x") == 2.0
    assert value(build_matrix(data, MatrixParams(confidence="binary")), "a", "x") == 1.0


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_weighting_keeps_shape_and_ids(now: datetime, weighting: str) -> None:
    rng = np.random.default_rng(1)
    rows = [
        (f"c{c}", f"i{i}", f"o{c}", 1.0, now)
        for c in range(20)
        for i in rng.choice(15, size=4, replace=False)
    ]
    plain = build_matrix(frame(rows), MatrixParams(confidence="binary"))
    weighted = build_matrix(frame(rows), MatrixParams(confidence="binary", weighting=weighting))  # type: ignore[arg-type]
    assert weighted.shape == plain.shape
    assert weighted.user_ids == plain.user_ids and weighted.item_ids == plain.item_ids
    assert not np.allclose(weighted.matrix.toarray(), plain.matrix.toarray())


def test_fixed_item_map_orders_columns(now: datetime) -> None:
    items = IdMap(("z", "x", "unused"))
    m = build_matrix(
        frame([("a", "x", "o", 1.0, now), ("a", "q", "o", 1.0, now)]),
        MatrixParams(confidence="binary"),
        item_ids=items,
    )
    assert m.shape == (1, 3)
    assert m.matrix.indices.tolist() == [1]


def test_bad_params() -> None:
    with pytest.raises(ValueError):
        MatrixParams(confidence="dollars")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MatrixParams(half_life_days=0)


def test_history_row() -> None:
    items = IdMap(("a", "b", "c"))
    row = history_row(["b", "b", "zzz", "c"], items)
    assert row.shape == (1, 3)
    assert row.toarray().tolist() == [[0.0, 2.0, 1.0]]


def test_missing_column(now: datetime) -> None:
    with pytest.raises(ValueError, match="order_id"):
        build_matrix(frame([("a", "x", "o", 1.0, now)]).drop("order_id"))
