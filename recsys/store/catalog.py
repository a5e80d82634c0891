"""Read the catalog."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from sqlalchemy import Connection, select

from recsys.records import Item
from recsys.store.tables import items

CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Utf8(),
    "name": pl.Utf8(),
    "category": pl.Utf8(),
    "price": pl.Float64(),
    "in_stock": pl.Boolean(),
    "url": pl.Utf8(),
    "image_url": pl.Utf8(),
    "brand": pl.Utf8(),
    "cost": pl.Float64(),
}


def _item(row: object) -> Item:
    return Item(**row._mapping)  # type: ignore[attr-defined]


def catalog_frame(conn: Connection) -> pl.DataFrame:
    rows = conn.execute(select(*(items.c[name] for name in CATALOG_SCHEMA))).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=CATALOG_SCHEMA, orient="row")


def load_items(conn: Connection) -> dict[str, Item]:
    """The whole catalog keyed by item id (100k items is a few tens of MB)."""
    return {row.item_id: _item(row) for row in conn.execute(select(items))}


def get_items(conn: Connection, item_ids: Iterable[str]) -> dict[str, Item]:
    wanted = list(dict.fromkeys(item_ids))
    found: dict[str, Item] = {}
    for start in range(0, len(wanted), 5000):
        query = select(items).where(items.c.item_id.in_(wanted[start : start + 5000]))
        found.update({row.item_id: _item(row) for row in conn.execute(query)})
    return found
