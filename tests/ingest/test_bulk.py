"""BulkWriter pieces the transactions load relies on, on both stores."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, select

from recsys.store import bulk
from recsys.store.tables import customers, order_lines, orders


def _orders(*rows: tuple[str, str, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"order_id": pl.Utf8, "customer_id": pl.Utf8, "purchased_at": pl.Datetime("us")},
        orient="row",
    )


def test_existing_orders_finds_only_stored_ones(engine: Engine) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 600000)
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(bulk.ORDERS, _orders(("O1", "C1", at), ("O'2", "C2", at)))
        found = writer.existing_orders(pl.Series(["O1", "O'2", "O3"]))
        assert writer.existing_orders(pl.Series([], dtype=pl.Utf8)).height == 0
    assert sorted(found.rows()) == [("O'2", "C2", at), ("O1", "C1", at)]


def test_upsert_mostly_new_when_a_key_exists_after_all(engine: Engine) -> None:
    """A key stored after the caller looked (a concurrent writer) must not fail the load."""
    late, early = datetime(2026, 1, 2, 10), datetime(2026, 1, 2, 9)
    none = pl.Series([], dtype=pl.Utf8)
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(bulk.ORDERS, _orders(("O1", "C1", late), ("O4", "C4", late)))
        rows = bulk.Rows.prepare(_orders(("O1", "C1", early), ("O2", "C2", late)), writer.dialect)
        writer.upsert_mostly_new(bulk.ORDERS, rows, none)
        # The transaction is still usable after the fallback; known keys are merged.
        rows = bulk.Rows.prepare(_orders(("O3", "C3", late), ("O4", "C4", early)), writer.dialect)
        writer.upsert_mostly_new(bulk.ORDERS, rows, pl.Series(["O4"]))
    with engine.connect() as conn:
        rows = sorted(
            tuple(r) for r in conn.execute(select(orders.c.order_id, orders.c.purchased_at))
        )
    assert rows == [("O1", early), ("O2", late), ("O3", late), ("O4", early)]


def test_constants_are_written_as_literals_on_sqlite_and_columns_on_postgres(
    engine: Engine,
) -> None:
    lines = pl.DataFrame(
        {"order_id": ["O1", "O1"], "item_id": ["A", "B"], "quantity": [1.0, 2.0]},
        schema_overrides={"quantity": pl.Float64},
    ).with_columns(pl.lit(None, pl.Float64).alias("unit_price"))
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        rows = bulk.Rows.prepare(lines, writer.dialect, {"load_id": "it's-1"})
        writer.upsert_mostly_new(bulk.ORDER_LINES, rows, pl.Series([], dtype=pl.Utf8))
        # Same load: quantities add up; the load id survives the quote.
        writer.upsert(bulk.ORDER_LINES, rows)
    with engine.connect() as conn:
        got = sorted(
            tuple(r)
            for r in conn.execute(
                select(order_lines.c.item_id, order_lines.c.quantity, order_lines.c.load_id)
            )
        )
    assert got == [("A", 2.0, "it's-1"), ("B", 4.0, "it's-1")]


def test_upsert_all_mostly_new_rolls_back_every_copy_when_one_key_exists(engine: Engine) -> None:
    """Orders copy fine, then a line key exists after all: both go through the upsert."""
    at = datetime(2026, 1, 2, 10)
    none = pl.Series([], dtype=pl.Utf8)
    lines = pl.DataFrame(
        {"order_id": ["O1", "O2"], "item_id": ["A", "A"], "quantity": [1.0, 2.0]},
        schema_overrides={"quantity": pl.Float64},
    ).with_columns(pl.lit(None, pl.Float64).alias("unit_price"))
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        old = bulk.Rows.prepare(lines.head(1), writer.dialect, {"load_id": "old"})
        writer.upsert(bulk.ORDER_LINES, old)  # O1/A stored by an earlier load
        writer.upsert_all_mostly_new(
            [
                (
                    bulk.ORDERS,
                    bulk.Rows.prepare(_orders(("O1", "C1", at), ("O2", "C2", at)), writer.dialect),
                ),
                (bulk.ORDER_LINES, bulk.Rows.prepare(lines, writer.dialect, {"load_id": "new"})),
            ],
            none,
        )
    with engine.connect() as conn:
        got_orders = sorted(tuple(r) for r in conn.execute(select(orders.c.order_id)))
        got_lines = sorted(
            tuple(r)
            for r in conn.execute(
                select(order_lines.c.order_id, order_lines.c.quantity, order_lines.c.load_id)
            )
        )
    assert got_orders == [("O1",), ("O2",)]
    # A later load of a key replaces it.
    assert got_lines == [("O1", 1.0, "new"), ("O2", 2.0, "new")]


def test_customer_ids_upsert_keeps_stored_customers_and_repeats(engine: Engine) -> None:
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(
            bulk.CUSTOMERS,
            pl.DataFrame({"customer_id": ["C1"], "email": ["c1@example.com"]}),
        )
        ids = pl.DataFrame({"customer_id": ["C1", "C2", "C'3", "C2"]})
        writer.upsert(bulk.CUSTOMER_IDS, bulk.Rows.prepare(ids, writer.dialect))
    with engine.connect() as conn:
        got = sorted(
            tuple(r) for r in conn.execute(select(customers.c.customer_id, customers.c.email))
        )
    assert got == [("C'3", None), ("C1", "c1@example.com"), ("C2", None)]


def _lines(keys: list[tuple[str, str]], quantity: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": [o for o, _ in keys],
            "item_id": [i for _, i in keys],
            "quantity": [quantity] * len(keys),
            "unit_price": [float(n) for n in range(len(keys))],
        },
        schema_overrides={"quantity": pl.Float64, "unit_price": pl.Float64},
    )


def _stored_lines(engine: Engine) -> dict[tuple[str, str], tuple[float, float | None]]:
    with engine.connect() as conn:
        got = conn.execute(
            select(
                order_lines.c.order_id,
                order_lines.c.item_id,
                order_lines.c.quantity,
                order_lines.c.unit_price,
            )
        )
        return {(o, i): (q, p) for o, i, q, p in got}


@pytest.mark.parametrize("per_statement", [1, 4, 7])
def test_rows_split_over_multi_row_statements_all_land(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, per_statement: int
) -> None:
    """SQLite binds many rows per statement: whole statements and the shorter last one.
    PostgreSQL: arrays per column for few rows, a staging table for more (both here)."""
    monkeypatch.setattr(bulk, "_SQLITE_ROWS_PER_STATEMENT", per_statement)
    monkeypatch.setattr(bulk, "_PG_ARRAYS_MAX_ROWS", 0 if per_statement == 1 else 1_000)
    keys = [(f"O{n // 3}", f"I{n % 3}") for n in range(30)]  # 30 = 4 x 7 + 2
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(
            bulk.ORDER_LINES,
            bulk.Rows.prepare(_lines(keys, 2.0), writer.dialect, {"load_id": "L1"}),
        )
        # The same load again: quantities add up (a repeated key split across batches).
        writer.upsert(
            bulk.ORDER_LINES,
            bulk.Rows.prepare(_lines(keys[5:], 1.0), writer.dialect, {"load_id": "L1"}),
        )
    got = _stored_lines(engine)
    assert len(got) == 30
    for n, key in enumerate(keys):
        if n < 5:
            assert got[key] == (2.0, float(n))
        else:  # 2 x price n, then 1 x price n - 5: the quantity-weighted mean
            assert got[key] == (3.0, pytest.approx((2.0 * n + (n - 5)) / 3.0))


def test_a_key_repeated_inside_one_sqlite_statement_merges(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite upserts row after row inside a multi-row statement (PostgreSQL refuses a
    statement that updates a row twice; the loader never sends one)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite statement grouping")
    monkeypatch.setattr(bulk, "_SQLITE_ROWS_PER_STATEMENT", 4)
    keys = [("O1", "A"), ("O1", "A"), ("O2", "A"), ("O1", "A"), ("O1", "A"), ("O2", "A")]
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(
            bulk.ORDER_LINES,
            bulk.Rows.prepare(_lines(keys, 1.0), writer.dialect, {"load_id": "L1"}),
        )
    got = _stored_lines(engine)
    assert got[("O1", "A")] == (4.0, pytest.approx((0 + 1 + 3 + 4) / 4))
    assert got[("O2", "A")] == (2.0, pytest.approx((2 + 5) / 2))


def test_copy_csv_sends_the_kept_rows_as_slices() -> None:
    frame = pl.DataFrame({"order_id": ["O1", "O,2", "O3", 'O"4', "O5"], "n": [1, 2, 3, 4, 5]})
    csv = bulk.CopyCsv.render(frame)
    assert csv is not None
    everything = b"".join(csv.chunks(None))
    assert everything == csv.data and everything.count(b"\n") == 5
    keep = np.array([True, False, True, True, False])
    sent = b"".join(csv.chunks(keep))
    assert sent == bulk.CopyCsv.render(frame.filter(pl.Series(keep))).data  # type: ignore[union-attr]
    assert b"".join(csv.chunks(np.zeros(5, dtype=bool))) == b""


def test_copy_csv_is_not_rendered_when_a_value_holds_a_line_break() -> None:
    # Rows could not be cut at line ends: the writer renders what it sends instead.
    assert bulk.CopyCsv.render(pl.DataFrame({"order_id": ["O1", "O\n2"]})) is None


def test_pg_text_array_quotes_every_value() -> None:
    values = pl.Series(["a", 'b"c', "d\\e", "f,g", "{h}", ""])
    assert bulk.pg_text_array(values) == '{"a","b\\"c","d\\\\e","f,g","{h}",""}'
    assert bulk.pg_text_array(pl.Series([], dtype=pl.Utf8)) == "{}"
    assert bulk.pg_text_array(pl.Series(["a", None])) is None


def test_ids_with_quotes_and_line_breaks_load_on_both_stores(engine: Engine) -> None:
    """Odd ids take the array literal and the re-rendered COPY paths (PostgreSQL)."""
    at = datetime(2026, 1, 2, 3)
    odd = ["O\n1", 'O"2', "O\\3", "O,{4}"]
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        writer.upsert(bulk.ORDERS, _orders((odd[0], "C1", at)))
        stored = writer.existing_orders(pl.Series(odd))["order_id"]
        assert stored.to_list() == [odd[0]]
        rows = bulk.Rows.prepare(_orders(*((o, "C\n1", at) for o in odd)), writer.dialect)
        writer.upsert_mostly_new(bulk.ORDERS, rows, stored)
        ids = pl.DataFrame({"customer_id": ["C\n1", 'C"2']})
        writer.upsert(bulk.CUSTOMER_IDS, bulk.Rows.prepare(ids, writer.dialect))
    with engine.connect() as conn:
        got = sorted(conn.execute(select(orders.c.order_id)).scalars())
        got_customers = sorted(conn.execute(select(customers.c.customer_id)).scalars())
    assert got == sorted(odd)
    assert got_customers == sorted(["C\n1", 'C"2'])


def test_postgres_writer_counts_only_the_rows_it_inserted(engine: Engine) -> None:
    """Copies, copies rolled back for the fallback, and upserts that update, counted."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite counts the table before and after the load")
    at = datetime(2026, 1, 2, 10)
    none = pl.Series([], dtype=pl.Utf8)
    lines = _lines([("O1", "A"), ("O2", "A")], 1.0)
    with engine.begin() as conn:
        writer = bulk.BulkWriter(conn)
        old = bulk.Rows.prepare(lines.head(1), writer.dialect, {"load_id": "old"})
        writer.upsert(bulk.ORDER_LINES, old)  # O1/A inserted
        writer.upsert_all_mostly_new(
            [
                (
                    bulk.ORDERS,
                    bulk.Rows.prepare(_orders(("O1", "C1", at), ("O2", "C2", at)), writer.dialect),
                ),
                (bulk.ORDER_LINES, bulk.Rows.prepare(lines, writer.dialect, {"load_id": "new"})),
            ],
            none,
        )  # O1/A exists: both copies rolled back; O1/A updated, O2/A inserted
        assert (writer.inserted["orders"], writer.inserted["order_lines"]) == (2, 2)
        writer.upsert_all_mostly_new(
            [(bulk.ORDER_LINES, bulk.Rows.prepare(lines, writer.dialect, {"load_id": "x"}))],
            pl.Series(["O2"]),
        )  # O2/A updated by the upsert, O1/A by the fallback: nothing inserted
        assert writer.inserted["order_lines"] == 2
        many = _lines([(f"O{n}", "A") for n in range(3, 2_503)], 1.0)
        writer.upsert(bulk.ORDER_LINES, bulk.Rows.prepare(many, writer.dialect, {"load_id": "x"}))
        writer.upsert(bulk.ORDER_LINES, bulk.Rows.prepare(many, writer.dialect, {"load_id": "y"}))
        assert writer.inserted["order_lines"] == 2 + 2_500  # staged: inserted, then updated
        ids = pl.DataFrame({"customer_id": ["C1", "C2", "C1"]})
        writer.upsert(bulk.CUSTOMER_IDS, bulk.Rows.prepare(ids, writer.dialect))
        writer.upsert(bulk.CUSTOMER_IDS, bulk.Rows.prepare(ids, writer.dialect))
        assert writer.inserted["customers"] == 2
