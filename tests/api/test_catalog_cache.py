"""The API's catalog snapshot follows catalog loads by re-reading only what they wrote."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, insert, update

from api.catalog_cache import CatalogCache
from recsys.ingest.loader import ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.store.tables import items
from tests.ingest.helpers import write_csv

HEADER = ["item_id", "name", "category", "price", "in_stock"]


def _load(engine: Engine, tmp_path: Path, name: str, rows: list[list[object]]) -> None:
    path = write_csv(tmp_path / name, HEADER, rows)
    ingest_file(engine, "catalog", path, ColumnMap(), rejects_dir=tmp_path / "rejects")


def test_refresh_reads_only_what_a_load_changed(engine: Engine, tmp_path: Path) -> None:
    _load(engine, tmp_path, "a.csv", [
        ["I1", "TV", "electronics/tv", 499.0, "true"],
        ["I2", "Mount", "electronics/tv-mounts", 39.0, "true"],
        ["I3", "Cable", "electronics/cables", 9.0, "true"],
    ])
    cache = CatalogCache(engine, ttl_seconds=3600.0, full_every=1000)
    first = cache.get()
    assert set(first) == {"I1", "I2", "I3"} and first["I2"].in_stock

    _load(engine, tmp_path, "b.csv", [["I2", "Mount", "electronics/tv-mounts", 35.0, "false"],
                                      ["I4", "Helmet", "sports/helmets", 59.0, "true"]])
    cache.refresh()
    second = cache.get()
    assert not second["I2"].in_stock and second["I2"].price == 35.0
    assert second["I4"].name == "Helmet"
    assert second["I1"] is first["I1"] and second["I3"] is first["I3"]  # not rebuilt
    assert first["I2"].in_stock  # a snapshot handed out earlier never changes

    cache.refresh()  # nothing new: the same snapshot
    assert cache.get() is second


def test_full_reread_catches_rows_written_outside_ingest(engine: Engine, tmp_path: Path) -> None:
    _load(engine, tmp_path, "a.csv", [["I1", "TV", "electronics/tv", 499.0, "true"]])
    cache = CatalogCache(engine, ttl_seconds=3600.0, full_every=2)
    cache.refresh()  # full (the first)
    with engine.begin() as conn:
        conn.execute(insert(items).values(item_id="I9", name="Direct", in_stock=True))
        conn.execute(update(items).where(items.c.item_id == "I1").values(in_stock=False))
    cache.refresh()  # incremental: revision unchanged, so not seen yet
    assert "I9" not in cache.get()
    cache.refresh()  # the periodic full re-read
    assert "I9" in cache.get() and not cache.get()["I1"].in_stock
