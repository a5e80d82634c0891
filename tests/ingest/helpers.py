"""Small helpers to write input files and read the store back as plain rows."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from recsys.store.tables import customers, items, order_lines, orders


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:  # type: ignore[operator]
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, without the load id and catalog revision (per load)."""
    with engine.connect() as conn:
        return {
            "items": sorted(
                tuple(r)
                for r in conn.execute(select(*(c for c in items.c if c.name != "revision")))
            ),
            "customers": sorted(tuple(r) for r in conn.execute(select(customers))),
            "orders": sorted(
                tuple(r)
                for r in conn.execute(
                    select(orders.c.order_id, orders.c.customer_id, orders.c.purchased_at)
                )
            ),
            "order_lines": sorted(
                tuple(r)
                for r in conn.execute(
                    select(
                        order_lines.c.order_id,
                        order_lines.c.item_id,
                        order_lines.c.quantity,
                        order_lines.c.unit_price,
                    )
                )
            ),
        }


CATALOG_HEADER = ["item_id", "name", "category", "price", "in_stock"]
CATALOG_ROWS = [
    ["TV1", 'TV 55" Zentro', "Electronics / TV", "499.0", "true"],
    ["MNT1", "Wall mount", "electronics/tv-mounts", "39.9", "yes"],
    ["HDMI", "HDMI cable 2m", "electronics/hdmi-cables", "9.99", ""],
    ["CAP", "Coffee capsules x50", "grocery/coffee-capsules", "12.5", "0"],
]
