"""Small synthetic purchase frames for the training tests (fixed seed)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

SCHEMA = {
    "customer_id": pl.Utf8,
    "item_id": pl.Utf8,
    "order_id": pl.Utf8,
    "quantity": pl.Float64,
    "unit_price": pl.Float64,
    "purchased_at": pl.Datetime("us"),
}


def synthetic_purchases(
    now: datetime, customers: int = 60, items: int = 30, days: int = 120, seed: int = 7
) -> pl.DataFrame:
    """Two taste groups (even/odd items), habitual re-orders, some returns.

    Customer c buys from items of its parity, favouring a few "habit" items it
    re-orders; every order line is dated within the last `days` days of `now`.
    """
    rng = np.random.default_rng(seed)
    rows = []
    order = 0
    for c in range(customers):
        own = [i for i in range(items) if i % 2 == c % 2]
        habit = rng.choice(own, size=3, replace=False)
        for _ in range(int(rng.integers(3, 8))):
            order += 1
            when = now - timedelta(days=float(rng.uniform(0, days)))
            picks = set(rng.choice(own, size=3, replace=False)) | {int(rng.choice(habit))}
            for i in sorted(picks):
                qty = float(rng.integers(1, 5))
                rows.append((f"C{c}", f"I{i}", f"O{order}", qty, 2.5, when))
        if c % 10 == 0:  # a return on the customer's last line
            last = rows[-1]
            rows.append((last[0], last[1], f"R{c}", -last[3], last[4], last[5]))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def catalog_for(purchases: pl.DataFrame) -> pl.DataFrame:
    ids = sorted(set(purchases.get_column("item_id").to_list()))
    return pl.DataFrame(
        {
            "item_id": ids,
            "name": [f"item {i}" for i in ids],
            "category": ["gifts"] * len(ids),
            "price": [2.5] * len(ids),
            "in_stock": [True] * len(ids),
        }
    )


@pytest.fixture
def purchases(now: datetime) -> pl.DataFrame:
    return synthetic_purchases(now)


@pytest.fixture
def catalog(purchases: pl.DataFrame) -> pl.DataFrame:
    return catalog_for(purchases)
