"""Read the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, func, select

from recsys.records import Item
from recsys.store.tables import items

# polars is imported inside the functions that build frames: the API's workers never
# need it, and it costs each of them about 40 MiB.
if TYPE_CHECKING:
    import polars as pl

#: The catalog's columns, in `Item`'s field order.
CATALOG_COLUMNS = (
    "item_id", "name", "category", "price", "in_stock", "url", "image_url", "brand", "cost"
)


def catalog_schema() -> dict[str, pl.DataType]:
    """Polars types of `CATALOG_COLUMNS` (polars is imported only by those who need frames)."""
    import polars as pl
    text, number = pl.Utf8(), pl.Float64()
    types = (text, text, text, number, pl.Boolean(), text, text, text, number)
    return dict(zip(CATALOG_COLUMNS, types, strict=True))


_ITEM_COLUMNS = tuple(items.c[name] for name in CATALOG_COLUMNS)  # Item's fields, in order
_ALL_ITEMS = select(*_ITEM_COLUMNS)
_ITEMS_SINCE = select(*_ITEM_COLUMNS, items.c.revision).where(
    items.c.revision > bindparam("revision")
)


def catalog_frame(conn: Connection) -> pl.DataFrame:
    import polars as pl
    rows = conn.execute(_ALL_ITEMS).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=catalog_schema(), orient="row")


def load_items(conn: Connection) -> dict[str, Item]:
    """The whole catalog keyed by item id (100k items is a few tens of MB)."""
    return {row[0]: Item(*row) for row in conn.execute(_ALL_ITEMS)}


def catalog_revision(conn: Connection) -> int:
    """The newest catalog load's revision (0 for rows written outside `recsys ingest`)."""
    value = conn.execute(select(func.max(items.c.revision))).scalar_one_or_none()
    return int(value or 0)


def items_since(conn: Connection, revision: int) -> tuple[dict[str, Item], int]:
    """Items written by catalog loads newer than `revision`, and the newest revision seen."""
    changed: dict[str, Item] = {}
    newest = revision
    for row in conn.execute(_ITEMS_SINCE, {"revision": revision}):
        changed[row[0]] = Item(*row[:-1])
        newest = max(newest, int(row[-1]))
    return changed, newest


def get_items(conn: Connection, item_ids: Iterable[str]) -> dict[str, Item]:
    wanted = list(dict.fromkeys(item_ids))
    found: dict[str, Item] = {}
    for start in range(0, len(wanted), 5000):
        query = _ALL_ITEMS.where(items.c.item_id.in_(wanted[start : start + 5000]))
        found.update({row[0]: Item(*row) for row in conn.execute(query)})
    return found
