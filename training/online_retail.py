"""Load the UCI Online Retail export into the store's frame contract (for experiments).

The store's ingest is the production path; this loader exists so evaluation and
hyperparameter searches can run straight from the public CSV.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

__all__ = ["load_online_retail"]


def load_online_retail(path: Path | str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return `(purchases, catalog)` frames from `online_retail.csv.gz`.

    Cleaning (as documented with the data set): customer ids lose their trailing
    `.0`, lines without a customer are dropped, cancellations (`C` invoices) and
    quantity <= 0 are dropped (training positives only), only product codes
    (`^\\d{5}`) with unit price > 0 are kept. Item codes are upper-cased.
    Timestamps are naive (UK local time, treated as UTC per the SPEC).
    """
    raw = pl.read_csv(path, infer_schema_length=0)
    lines = raw.select(
        customer_id=pl.col("CustomerID").str.strip_chars().str.replace(r"\.0$", ""),
        item_id=pl.col("StockCode").str.strip_chars().str.to_uppercase(),
        order_id=pl.col("InvoiceNo").str.strip_chars(),
        quantity=pl.col("Quantity").cast(pl.Float64),
        unit_price=pl.col("UnitPrice").cast(pl.Float64),
        purchased_at=pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us"),
        name=pl.col("Description"),
    ).filter(
        pl.col("customer_id").is_not_null()
        & (pl.col("customer_id") != "")
        & ~pl.col("order_id").str.starts_with("C")
        & (pl.col("quantity") > 0)
        & (pl.col("unit_price") > 0)
        & pl.col("item_id").str.contains(r"^\d{5}")
    )
    purchases = lines.drop("name")
    catalog = (
        lines.group_by("item_id")
        .agg(
            name=pl.col("name").drop_nulls().mode().first(),
            price=pl.col("unit_price").median(),
        )
        .with_columns(
            category=pl.lit(None, dtype=pl.Utf8),
            in_stock=pl.lit(True),
            url=pl.lit(None, dtype=pl.Utf8),
            image_url=pl.lit(None, dtype=pl.Utf8),
            brand=pl.lit(None, dtype=pl.Utf8),
            cost=pl.lit(None, dtype=pl.Float64),
        )
        .sort("item_id")
    )
    return purchases, catalog
