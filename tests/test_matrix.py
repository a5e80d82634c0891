"""Matrix building: returns, decay, weighting, id maps, fold-in rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys import matrix as matrix_module
from recsys.ids import IdMap
from recsys.matrix import Confidence, InteractionMatrix, MatrixParams, build_matrix, history_row

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


# ---- the sort-based build against a plain-Python reference --------------------------------


@dataclass
class _Pair:
    net: float = 0.0
    gross: float = 0.0
    decayed: float = 0.0
    decayed_lines: float = 0.0
    latest: float = 0.0
    orders: set[str | None] = field(default_factory=set)


Expected = tuple[tuple[str, ...], tuple[str, ...], dict[tuple[str, str], tuple[float, int]]]


def reference_build(
    rows: list[tuple[str, str, str | None, float | None, datetime]],
    params: MatrixParams,
    now: datetime | None,
    item_ids: IdMap | None = None,
) -> Expected:
    """What build_matrix means, line by line: (users, items, {pair: (value, orders)})."""
    acc: dict[tuple[str, str], _Pair] = {}
    for customer, item, order, quantity, at in rows:
        q = 1.0 if quantity is None else quantity
        if now is not None and at > now:
            continue
        window = params.window_days
        if now is not None and window is not None and at < now - timedelta(days=window):
            continue
        if item_ids is not None and item not in item_ids:
            continue
        decay = 1.0
        if params.half_life_days is not None and now is not None:
            decay = 0.5 ** (int((now - at).total_seconds()) / 86_400.0 / params.half_life_days)
        pair = acc.setdefault((customer, item), _Pair())
        pair.net += q
        if q > 0:
            pair.gross += q
            pair.decayed += q * decay
            pair.decayed_lines += decay
            pair.latest = max(pair.latest, decay)
            pair.orders.add(order)
    kept: dict[tuple[str, str], tuple[float, int]] = {}
    for key, pair in acc.items():
        if pair.net <= 0 or pair.gross <= 0:
            continue
        share = pair.net / pair.gross
        value = {
            "quantity": pair.decayed * share,
            "log_quantity": float(np.log1p(pair.decayed * share)),
            "orders": pair.decayed_lines * share,
            "binary": pair.latest,
        }[params.confidence]
        if value > 0:
            kept[key] = (value, len(pair.orders))
    users = tuple(sorted({c for c, _ in kept}))
    items = item_ids.ids if item_ids is not None else tuple(sorted({i for _, i in kept}))
    return users, items, kept


def random_rows(
    now: datetime, seed: int, n: int = 600
) -> list[tuple[str, str, str | None, float | None, datetime]]:
    """Lines with returns, repeated orders, null orders and quantities, lines after `now`."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str | None, float | None, datetime]] = []
    for _ in range(n):
        customer = f"c{int(rng.integers(40)):02d}"
        item = f"i{int(rng.integers(30)):02d}"
        order = None if rng.random() < 0.05 else f"o{customer}-{int(rng.integers(6))}"
        quantity = None if rng.random() < 0.05 else float(rng.choice([-4, -1, 1, 1, 2, 3, 7]))
        at = now - timedelta(seconds=int(rng.integers(-5 * 86_400, 400 * 86_400)))
        rows.append((customer, item, order, quantity, at))
    return rows


def rows_frame(rows: list[tuple[str, str, str | None, float | None, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, i, o, q, 1.0, t) for c, i, o, q, t in rows], schema=SCHEMA, orient="row"
    )


def assert_matches_reference(
    m: InteractionMatrix, expected: Expected, with_orders: bool = True
) -> None:
    users, items, pairs = expected
    assert m.user_ids.ids == users and m.item_ids.ids == items
    got = m.matrix.tocoo()
    seen = {
        (users[r], items[c]): float(v) for r, c, v in zip(got.row, got.col, got.data, strict=True)
    }
    assert set(seen) == set(pairs)
    for key, (value, _orders) in pairs.items():
        assert seen[key] == pytest.approx(value, rel=1e-6), key
    assert m.matrix.has_sorted_indices
    m.matrix.check_format(full_check=True)
    counts = m.order_counts
    assert counts.shape == m.matrix.shape
    if not with_orders:
        assert counts.nnz == 0
        return
    assert (counts.indptr == m.matrix.indptr).all() and (counts.indices == m.matrix.indices).all()
    dense = counts.toarray()
    for (customer, item), (_value, orders) in pairs.items():
        assert dense[users.index(customer), items.index(item)] == orders


@pytest.mark.parametrize("confidence", ["quantity", "log_quantity", "orders", "binary"])
@pytest.mark.parametrize("half_life", [None, 30.0])
@pytest.mark.parametrize("window", [None, 200.0])
def test_build_equals_reference(
    now: datetime, confidence: str, half_life: float | None, window: float | None
) -> None:
    params = MatrixParams(confidence=confidence, half_life_days=half_life, window_days=window)  # type: ignore[arg-type]
    for seed in range(3):
        rows = random_rows(now, seed)
        expected = reference_build(rows, params, now)
        assert_matches_reference(build_matrix(rows_frame(rows), params, now=now), expected)


def test_build_equals_reference_without_now(now: datetime) -> None:
    rows = random_rows(now, 5)
    for confidence in ("quantity", "binary"):
        params = MatrixParams(confidence=confidence)  # type: ignore[arg-type]
        expected = reference_build(rows, params, None)
        assert_matches_reference(build_matrix(rows_frame(rows), params), expected)


def test_build_with_fixed_items_equals_reference(now: datetime) -> None:
    rows = random_rows(now, 7)
    items = IdMap(("i29", "i03", "i00", "nope", "i17", "i11"))
    params = MatrixParams(confidence="log_quantity", half_life_days=60.0)
    expected = reference_build(rows, params, now, items)
    assert_matches_reference(
        build_matrix(rows_frame(rows), params, now=now, item_ids=items), expected
    )


def test_without_order_counts_same_matrix_empty_counts(now: datetime) -> None:
    rows = random_rows(now, 11)
    params = MatrixParams(confidence="binary", half_life_days=60.0)
    full = build_matrix(rows_frame(rows), params, now=now)
    lean = build_matrix(rows_frame(rows), params, now=now, order_counts=False)
    assert_matches_reference(lean, reference_build(rows, params, now), with_orders=False)
    assert lean.user_ids == full.user_ids and lean.item_ids == full.item_ids
    assert (lean.matrix != full.matrix).nnz == 0


def test_weighting_applies_to_the_reference_counts(now: datetime) -> None:
    rows = random_rows(now, 13)
    for weighting in ("bm25", "tfidf"):
        params = MatrixParams(confidence="binary", half_life_days=60.0, weighting=weighting)  # type: ignore[arg-type]
        plain = build_matrix(
            rows_frame(rows), MatrixParams(confidence="binary", half_life_days=60.0), now=now
        )
        weighted = build_matrix(rows_frame(rows), params, now=now)
        expected = matrix_module._weight(plain.matrix, params)
        expected.sort_indices()
        assert (weighted.matrix.indptr == expected.indptr).all()
        assert (weighted.matrix.indices == expected.indices).all()
        np.testing.assert_allclose(weighted.matrix.data, expected.data, rtol=1e-6)


def test_empty_after_filters(now: datetime) -> None:
    later = now + timedelta(days=1)
    m = build_matrix(frame([("a", "x", "o", 1.0, later)]), MatrixParams(), now=now)
    assert m.shape == (0, 0) and m.nnz == 0 and m.order_counts.shape == (0, 0)
    fixed = build_matrix(
        frame([("a", "x", "o", 1.0, later)]), MatrixParams(), now=now, item_ids=IdMap(("x", "y"))
    )
    assert fixed.shape == (0, 2) and fixed.nnz == 0
    returns_only = build_matrix(frame([("a", "x", "o", -1.0, now)]), MatrixParams(), now=now)
    assert returns_only.shape == (0, 0)


@pytest.mark.parametrize("factorize", ["_factorize_categorical", "_factorize_join"])
def test_factorize_paths(now: datetime, factorize: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if factorize == "_factorize_categorical" and not hasattr(pl, "Categories"):
        pytest.skip("polars without Categories")
    # a column of two chunks, with an empty id and a non-ASCII one
    column = pl.concat([pl.Series(["b", "a", "é", "a"]), pl.Series(["", "b", "zz", "é"])],
                       rechunk=False)
    codes, distinct = getattr(matrix_module, factorize)(column)
    assert distinct.gather(codes).to_list() == column.to_list()
    assert distinct.n_unique() == len(distinct) == 5
    monkeypatch.setattr(matrix_module, "_factorize", getattr(matrix_module, factorize))
    sorted_codes, ids = matrix_module._sorted_codes(column)
    assert ids.to_list() == ["", "a", "b", "zz", "é"]  # byte order, as the id maps sort
    assert ids.gather(sorted_codes).to_list() == column.to_list()
    rows = random_rows(now, 17)
    params = MatrixParams(confidence="quantity", half_life_days=30.0)
    assert_matches_reference(
        build_matrix(rows_frame(rows), params, now=now), reference_build(rows, params, now)
    )


@pytest.mark.parametrize("fixed_items", [False, True])
def test_ids_coded_in_two_threads_equal_reference(
    now: datetime, fixed_items: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # frames of the tests are below the size where the second thread starts: force it
    monkeypatch.setattr(matrix_module, "_PARALLEL_CODES_FROM", 0)
    rows = random_rows(now, 19)
    items = IdMap(("i29", "i03", "i00", "nope", "i17", "i11")) if fixed_items else None
    params = MatrixParams(confidence="binary", half_life_days=60.0)
    assert_matches_reference(
        build_matrix(rows_frame(rows), params, now=now, item_ids=items),
        reference_build(rows, params, now, items),
    )


@pytest.mark.parametrize("n_keys", [50, 1 << 40, 1 << 62])
def test_sort_lines_is_a_stable_sort(n_keys: int) -> None:
    # 1 << 62 leaves no room for the line number: the argsort fallback
    rng = np.random.default_rng(3)
    keys = rng.integers(0, min(n_keys, 50), size=10_000, dtype=np.int64)
    if n_keys > 50:
        keys *= n_keys // 50  # spread over the whole key space, with repeats
    expected = np.argsort(keys, kind="stable")
    order, sorted_keys = matrix_module._sort_lines(keys.copy(), n_keys)
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(sorted_keys, keys[expected])


@pytest.mark.parametrize("radix_codes", [1 << 16, 4])
@pytest.mark.parametrize("confidence", ["binary", "orders"])
def test_radix_and_packed_grouping_equal_reference(
    now: datetime, radix_codes: int, confidence: Confidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    # test frames have a few dozen ids: a limit of 4 forces the packed-key sort
    monkeypatch.setattr(matrix_module, "_RADIX_CODES", radix_codes)
    rows = random_rows(now, 23)
    params = MatrixParams(confidence=confidence, half_life_days=45.0)
    assert_matches_reference(
        build_matrix(rows_frame(rows), params, now=now), reference_build(rows, params, now)
    )


def test_group_lines_radix_equals_packed() -> None:
    rng = np.random.default_rng(5)
    users = rng.integers(0, 300, size=20_000, dtype=np.int64)
    items = rng.integers(0, 70_000, size=20_000, dtype=np.int64)
    items[::3] = 65_535  # the widest 16-bit code, often repeated
    radix = matrix_module._group_lines(users.copy(), items.clip(0, 65_535), 300, 1 << 16)
    packed = matrix_module._group_lines(users.copy(), items.clip(0, 65_535), 300, 1 << 17)
    for got, expected in zip(radix, packed, strict=True):
        np.testing.assert_array_equal(got, expected)
    order, starts, pair_users, pair_items = radix
    keys = users * (1 << 16) + items.clip(0, 65_535)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    pair_keys = pair_users.astype(np.int64) * (1 << 16) + pair_items
    np.testing.assert_array_equal(pair_keys, np.unique(keys))
    assert len(starts) == len(np.unique(keys))


@pytest.mark.parametrize("odd_id", ["é-x", "", "nul\x00inside"])
def test_id_maps_of_odd_ids(now: datetime, odd_id: str) -> None:
    # the maps are built from the ids' bytes; an id holding NUL takes the dict form
    rows = [(c if c != "c03" else odd_id, i, o, q, t) for c, i, o, q, t in random_rows(now, 29)]
    params = MatrixParams(confidence="quantity")
    m = build_matrix(rows_frame(rows), params, now=now)
    assert_matches_reference(m, reference_build(rows, params, now))
    assert m.user_ids.index(odd_id) == m.user_ids.ids.index(odd_id)
    assert m.user_ids.lookup([odd_id, "c05", "nope"]).tolist() == [
        m.user_ids.ids.index(odd_id), m.user_ids.ids.index("c05"), -1
    ]


@pytest.mark.parametrize("half_life_days", [None, 30.0])
def test_every_pair_kept_equals_reference(now: datetime, half_life_days: float | None) -> None:
    # no returns and nothing after `now`: every pair is kept (the build's unmasked path)
    rows = [r for r in random_rows(now, 31) if (r[3] is None or r[3] > 0) and r[4] <= now]
    params = MatrixParams(confidence="binary", half_life_days=half_life_days)
    m = build_matrix(rows_frame(rows), params, now=now)
    expected = reference_build(rows, params, now)
    assert m.nnz == len(expected[2])
    assert_matches_reference(m, expected)


@pytest.mark.parametrize("fixed_items", [False, True])
def test_catalog_items_drop_unlisted_lines(now: datetime, fixed_items: bool) -> None:
    rows = random_rows(now, 37)
    catalog = pl.Series([f"i{n:02d}" for n in range(0, 30, 2)] + ["not-bought"])
    listed = [r for r in rows if r[1] in set(catalog)]
    items = IdMap(("i29", "i04", "i00", "nope", "i17", "i12")) if fixed_items else None
    params = MatrixParams(confidence="orders", half_life_days=20.0)
    got = build_matrix(rows_frame(rows), params, now=now, item_ids=items, catalog_items=catalog)
    assert_matches_reference(got, reference_build(listed, params, now, items))
    everything = build_matrix(rows_frame(rows), params, now=now, item_ids=items,
                              catalog_items=pl.Series(sorted({r[1] for r in rows})))
    assert_matches_reference(everything, reference_build(rows, params, now, items))
