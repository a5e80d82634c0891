"""An in-memory snapshot of the catalog, kept current from the store every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from sqlalchemy import Engine

from recsys.records import Item
from recsys.store.catalog import catalog_revision, items_since, load_items


class CatalogCache:
    """Stock and price changes reach responses within `ttl_seconds` (a setting, default 30 s).

    Each catalog load stamps the rows it writes with its revision, so a refresh
    asks the store for the newest revision (one indexed read) and re-reads only
    the newer rows; unchanged items keep their objects. Building 100k items takes
    over a second of the interpreter's time, which every worker paid every 30 s
    and which showed as latency spikes. A full re-read every `full_every`
    refreshes also catches rows written outside `recsys ingest`.
    """

    def __init__(self, engine: Engine, ttl_seconds: float = 30.0, full_every: int = 20) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._full_every = max(full_every, 1)
        self._lock = threading.Lock()
        self._items: Mapping[str, Item] = {}
        self._revision = 0
        self._refreshes = 0
        self._loaded_at = float("-inf")
        self._refreshing = False

    def get(self) -> Mapping[str, Item]:
        stale = time.monotonic() - self._loaded_at >= self._ttl
        if stale and not self._items:
            self.refresh()
        elif stale and not self._refreshing:
            # Serve the old snapshot while the store is asked.
            self._refreshing = True
            threading.Thread(target=self._refresh_in_background, daemon=True).start()
        return self._items

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            self._refreshing = False

    def refresh(self) -> None:
        """Bring the snapshot up to date: the newer rows, or everything now and then."""
        with self._lock, self._engine.connect() as conn:
            full = not self._items or self._refreshes % self._full_every == 0
            self._refreshes += 1
            if full:
                revision = catalog_revision(conn)
                self._items = load_items(conn)
                self._revision = revision
            elif catalog_revision(conn) > self._revision:
                changed, self._revision = items_since(conn, self._revision)
                self._items = {**self._items, **changed}
            self._loaded_at = time.monotonic()
