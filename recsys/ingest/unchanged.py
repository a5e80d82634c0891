"""How many rows of a batch the store already holds exactly as they are: `unchanged`.

Re-ingesting an unchanged export reported every row as updated. Before a batch is
written, the stored versions of its keys are read (only when the batch has keys the
store holds: a first load reads nothing) and compared column by column with what the
batch writes. The write itself is the same either way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import polars as pl
from sqlalchemy import Connection, Table, select

from recsys.store.tables import order_lines

_CHUNK = 5000


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _stored(
    conn: Connection, table: Table, key: str, keys: Sequence[str], columns: Sequence[str]
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for chunk in _chunks(keys):
        query = select(*(table.c[c] for c in columns)).where(table.c[key].in_(chunk))
        rows.extend(tuple(r) for r in conn.execute(query))
    return rows


def _same(columns: Sequence[str]) -> pl.Expr:
    """Every column equal to its stored twin (`<column>_stored`), nulls equal to nulls."""
    return pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}_stored")) for c in columns)


def unchanged_entities(conn: Connection, table: Table, key: str, rows: pl.DataFrame) -> int:
    """Rows of `rows` (catalog items or customers, one per key) stored with the same values
    in every column `rows` has (`revision`, the load's stamp, aside)."""
    compared = [c for c in rows.columns if c not in (key, "revision")]
    if rows.height == 0:
        return 0
    stored = _stored(conn, table, key, rows[key].to_list(), [key, *compared])
    if not stored:
        return 0
    frame = pl.DataFrame(
        stored,
        schema={key: rows.schema[key], **{f"{c}_stored": rows.schema[c] for c in compared}},
        orient="row",
    )
    joined = rows.select(key, *compared).join(frame, on=key, how="inner")
    return int(joined.filter(_same(compared)).height)


def unchanged_lines(
    conn: Connection,
    lines: pl.DataFrame,
    first_at: pl.DataFrame,
    stored_orders: pl.DataFrame,
    load_id: str,
) -> int:
    """Order lines (`lines`: order_id, item_id, quantity, unit_price; keys merged) that an
    earlier load stored with the same quantity and price, in an order of the same time.

    `first_at`: order_id -> the batch's time of the order; `stored_orders`: order_id ->
    `stored_at`, the stored orders among the batch's. A line this load already wrote (its
    key repeated in an earlier batch of the file) is not an earlier load's: not unchanged.
    """
    if stored_orders.height == 0 or lines.height == 0:
        return 0
    stored = _stored(
        conn, order_lines, "order_id", stored_orders["order_id"].to_list(),
        ["order_id", "item_id", "quantity", "unit_price", "load_id"],
    )
    frame = pl.DataFrame(
        stored,
        schema={
            "order_id": pl.Utf8, "item_id": pl.Utf8, "quantity_stored": pl.Float64,
            "unit_price_stored": pl.Float64, "load_id": pl.Utf8,
        },
        orient="row",
    ).filter(pl.col("load_id") != load_id)
    if frame.height == 0:
        return 0
    same_time = first_at.join(stored_orders, on="order_id", how="inner").filter(
        pl.col("first_at") == pl.col("stored_at")
    )
    joined = (
        lines.select("order_id", "item_id", "quantity", "unit_price")
        .join(same_time.select("order_id"), on="order_id", how="inner")
        .join(frame, on=["order_id", "item_id"], how="inner")
    )
    return int(joined.filter(_same(["quantity", "unit_price"])).height)
