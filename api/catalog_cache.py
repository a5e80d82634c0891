"""An in-memory snapshot of the catalog, re-read from the store every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from sqlalchemy import Engine

from recsys.records import Item
from recsys.store.catalog import load_items


class CatalogCache:
    """Stock and price changes reach responses within `ttl_seconds` (a setting, default 30 s)."""

    def __init__(self, engine: Engine, ttl_seconds: float = 30.0) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._items: Mapping[str, Item] = {}
        self._loaded_at = float("-inf")
        self._refreshing = False

    def get(self) -> Mapping[str, Item]:
        stale = time.monotonic() - self._loaded_at >= self._ttl
        if stale and not self._items:
            self.refresh()
        elif stale and not self._refreshing:
            # Re-reading 100k items takes a while: serve the old snapshot meanwhile.
            self._refreshing = True
            threading.Thread(target=self._refresh_in_background, daemon=True).start()
        return self._items

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        finally:
            self._refreshing = False

    def refresh(self) -> None:
        with self._lock:
            with self._engine.connect() as conn:
                self._items = load_items(conn)
            self._loaded_at = time.monotonic()
