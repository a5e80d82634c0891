"""Benchmark inputs: the UCI Online Retail file and generated demo retailers (cached)."""

from __future__ import annotations

import shutil
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from bench._common import DATA_DIR

__all__ = [
    "DEMO_SEED",
    "SERVING_CANDIDATES",
    "UCI_MAP",
    "UCI_PATH",
    "demo_home",
    "demo_now",
    "demo_retailer",
    "uci_catalog_csv",
    "uci_frame",
    "uci_typed_lines",
]

UCI_PATH = Path("/work/shared/data/online_retail/online_retail.csv.gz")
#: canonical column -> UCI column (the `--map` a user would pass).
UCI_MAP: dict[str, str] = {
    "order_id": "InvoiceNo",
    "customer_id": "CustomerID",
    "item_id": "StockCode",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "purchased_at": "InvoiceDate",
}
UCI_CATALOG_MAP: dict[str, str] = {
    "item_id": "StockCode",
    "name": "Description",
    "price": "UnitPrice",
}
DEMO_SEED = 7
#: `recsys train --candidates` of the homes the serving benchmarks (api, campaign) use: a
#: retailer serving 1M customers precomputes their lists (docs/models.md), though the
#: CLI's default is none.
SERVING_CANDIDATES = 100


def uci_frame() -> pl.DataFrame:
    """The UCI file as read by a user: every column text."""
    return pl.read_csv(UCI_PATH, infer_schema_length=0)


def uci_catalog_csv() -> Path:
    """A catalog derived from the UCI file (StockCode, first Description, median positive price)."""
    path = DATA_DIR / "uci_catalog.csv"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    raw = uci_frame().with_columns(
        pl.col("StockCode").str.strip_chars(),
        pl.col("UnitPrice").cast(pl.Float64, strict=False),
    )
    catalog = (
        raw.group_by("StockCode", maintain_order=True)
        .agg(
            pl.col("Description").drop_nulls().first(),
            pl.col("UnitPrice").filter(pl.col("UnitPrice") > 0).median(),
        )
        .sort("StockCode")
    )
    tmp = path.with_suffix(".partial")
    catalog.write_csv(tmp, float_precision=2)
    tmp.replace(path)
    return path


def uci_typed_lines(item_ids: set[str]) -> pl.DataFrame:
    """The UCI lines a store accepts, typed: what a raw bulk load gets pre-parsed.

    Kept: a customer, a non-zero numeric quantity, an item of the catalog (`item_ids`).
    Columns: order_id, customer_id, item_id, quantity, unit_price, purchased_at.
    """
    raw = uci_frame()
    text = {
        canon: pl.col(src).str.strip_chars().replace("", None) for canon, src in UCI_MAP.items()
    }
    typed = raw.select(
        text["order_id"].alias("order_id"),
        text["customer_id"].alias("customer_id"),
        text["item_id"].alias("item_id"),
        text["quantity"].cast(pl.Float64, strict=False).alias("quantity"),
        text["unit_price"].cast(pl.Float64, strict=False).alias("unit_price"),
        text["purchased_at"]
        .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
        .alias("purchased_at"),
    )
    return typed.filter(
        pl.col("order_id").is_not_null()
        & pl.col("customer_id").is_not_null()
        & pl.col("purchased_at").is_not_null()
        & pl.col("quantity").is_not_null()
        & (pl.col("quantity") != 0)
        & (pl.col("unit_price").is_null() | (pl.col("unit_price") >= 0))
        & pl.col("item_id").is_in(pl.Series(sorted(item_ids), dtype=pl.Utf8).implode())
    )


def demo_retailer(
    customers: int,
    items: int,
    seed: int = DEMO_SEED,
    *,
    due_date: date | None = None,
    due_share: float = 0.0,
) -> tuple[Path, int]:
    """Generate (once) a demo retailer; returns its directory and number of transaction lines.

    With `due_date`, `due_share` of the customers joined on its month and day (campaigns).
    """
    from recsys.data.demo import generate_demo

    name = f"demo-{customers}x{items}-s{seed}"
    if due_date is not None:
        name += f"-due{due_date.isoformat()}x{due_share:g}"
    out = DATA_DIR / name
    stamp = out / "lines.txt"
    if stamp.exists():
        return out, int(stamp.read_text(encoding="utf-8"))
    summary = generate_demo(out, customers=customers, items=items, seed=seed,
                            due_date=due_date, due_share=due_share)
    stamp.write_text(str(summary.lines), encoding="utf-8")
    return out, summary.lines


def demo_now() -> datetime:
    """Reference time for the demo retailer (the day after its default `end`)."""
    return datetime(2026, 11, 21)


def demo_home(
    customers: int,
    items: int,
    seed: int = DEMO_SEED,
    *,
    model: str = "hybrid",
    due_date: date | None = None,
    due_share: float = 0.0,
    store_only: bool = False,
    candidates: int = SERVING_CANDIDATES,
) -> tuple[Path, dict[str, Any]]:
    """Build (once) a RECSYS_HOME under bench/out/homes: SQLite store + a trained model.

    The demo retailer (see `demo_retailer`) is ingested (catalog, customers,
    transactions) into `home/recsys.db`, then `train_model(model, now=demo_now())`
    with the learned rule extras and `candidates` precomputed per customer saves the
    current version to `home/models`. Cached:
    `home/info.json` (written last) holds the sizes and the seconds each step took.
    Benchmarks that write to the store must copy `recsys.db` first.
    """
    import json

    from recsys.ingest.loader import ingest_file
    from recsys.ingest.mapping import ColumnMap
    from recsys.rules.config import load_rules
    from recsys.store.catalog import catalog_frame
    from recsys.store.engine import create_store_engine, migrate
    from recsys.store.purchases import purchase_frame
    from training.rules_learning import learn_rule_extras
    from training.train import train_model

    demo_dir, lines = demo_retailer(customers, items, seed, due_date=due_date,
                                    due_share=due_share)
    suffix = "" if candidates == SERVING_CANDIDATES else f"-c{candidates}"
    home = DATA_DIR.parent / "homes" / f"{demo_dir.name}-{model}{suffix}"
    info_path = home / "info.json"
    if info_path.exists():
        info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        return home, info
    # The store (slow at 1M customers) is cached apart from the model, so a change to
    # training or to the artifact format retrains without re-ingesting.
    store_stamp = home / "store.json"
    seconds: dict[str, float] = {}
    if store_stamp.exists():
        seconds.update(json.loads(store_stamp.read_text(encoding="utf-8")))
        shutil.rmtree(home / "models", ignore_errors=True)
    else:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    engine = create_store_engine(f"sqlite:///{(home / 'recsys.db').as_posix()}")
    try:
        if not store_stamp.exists():
            migrate(engine)
            started = time.perf_counter()
            for kind, name in (("catalog", "catalog.csv"), ("customers", "customers.csv"),
                               ("transactions", "transactions.csv.gz")):
                ingest_file(engine, kind, demo_dir / name, ColumnMap(),  # type: ignore[arg-type]
                            rejects_dir=home / "rejects")
            seconds["ingest"] = time.perf_counter() - started
            store_stamp.write_text(json.dumps(seconds), encoding="utf-8")
        if store_only:
            return home, {"seconds": seconds}
        started = time.perf_counter()
        with engine.connect() as conn:
            purchases = purchase_frame(conn)
            catalog = catalog_frame(conn)
        rules = load_rules(None)
        extras = learn_rule_extras(purchases, catalog, rules)
        result = train_model(purchases, catalog, model=model, now=demo_now(),
                             models_dir=home / "models", extras=extras, candidates=candidates)
        seconds["train"] = time.perf_counter() - started
    finally:
        engine.dispose()
    info = {
        "customers": customers, "items": items, "seed": seed, "lines": lines, "model": model,
        "version": result.version, "counts": result.counts, "seconds": seconds,
        "candidates": candidates,
        "due_date": due_date.isoformat() if due_date else None, "due_share": due_share,
        "catalog_csv_bytes": (demo_dir / "catalog.csv").stat().st_size,
    }
    info_path.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return home, info
