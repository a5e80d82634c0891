"""Exposures are queued by the request and written in batches by one background thread.

A request only appends the exposure to a list (well under a microsecond); every
`flush_seconds` the thread takes the list and writes it in one transaction on a
connection it keeps (no pool checkout, no PostgreSQL liveness ping per flush): one
`executemany` of tuples on SQLite, one `COPY` on PostgreSQL (`insert_exposures`), plus
the held-out contacts when there are any. A failed write drops that connection and
keeps the rows for the next attempt, up to `max_pending` rows, past which the oldest
are dropped and counted, so a store outage costs the log some rows, never the service
its memory. Old exposures are deleted
every `prune_every_s` seconds past `retention_days`.

Rows still queued are at most `flush_seconds` old; `flush()` writes them at once
(the click endpoint calls it before it answers 404, so a click on an exposure its
own worker has not written yet is still found).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine

from recsys.store.feedback import (
    Exposure,
    HeldOutContact,
    insert_exposures,
    insert_held_out_contacts,
    prune_exposures,
)

log = structlog.get_logger(__name__)


class ExposureWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float = 0.5,
        retention_days: int = 365,
        max_pending: int = 200_000,
        prune_every_s: float = 3600.0,
        background: bool = True,
    ) -> None:
        self._engine = engine
        self._flush_seconds = flush_seconds
        self._retention = timedelta(days=retention_days)
        self._max_pending = max_pending
        self._prune_every = prune_every_s
        self._exposures: list[Exposure] = []
        self._contacts: list[HeldOutContact] = []
        self._lock = threading.Lock()  # guards the two lists
        self._write_lock = threading.Lock()  # one writer at a time
        self._stop = threading.Event()
        self.dropped = 0
        self.written = 0
        self._pruned_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None  # used under _write_lock only
        if background:
            self._thread = threading.Thread(target=self._run, name="exposure-writer", daemon=True)
            self._thread.start()

    def record(self, exposure: Exposure, held_out: HeldOutContact | None = None) -> None:
        with self._lock:
            self._exposures.append(exposure)
            if held_out is not None:
                self._contacts.append(held_out)

    @property
    def pending(self) -> int:
        return len(self._exposures)

    def flush(self) -> int:
        """Write everything queued now; returns the exposures written (0 on failure)."""
        with self._write_lock:
            with self._lock:
                batch, self._exposures = self._exposures, []
                contacts, self._contacts = self._contacts, []
            if not batch and not contacts:
                return 0
            try:
                if self._conn is None:
                    self._conn = self._engine.connect()
                with self._conn.begin():
                    insert_exposures(self._conn, batch)
                    insert_held_out_contacts(self._conn, contacts)
            except Exception as exc:  # the driver's errors vary; keep the rows and retry
                self._drop_connection()
                self._requeue(batch, contacts)
                log.warning("exposure_write_failed", rows=len(batch), error=str(exc))
                return 0
            self.written += len(batch)
            return len(batch)

    def _drop_connection(self) -> None:
        """Forget the kept connection (it may be broken); the next flush opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception as exc:
                log.debug("exposure_connection_close_failed", error=str(exc))

    def _requeue(self, batch: list[Exposure], contacts: list[HeldOutContact]) -> None:
        with self._lock:
            self._exposures = batch + self._exposures
            self._contacts = contacts + self._contacts
            over = len(self._exposures) - self._max_pending
            if over > 0:
                del self._exposures[:over]
                self.dropped += over
                log.error("exposures_dropped", rows=over, total=self.dropped)

    def prune(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC).replace(tzinfo=None)
        with self._engine.begin() as conn:
            return prune_exposures(conn, now - self._retention)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()
            if time.monotonic() - self._pruned_at >= self._prune_every:
                self._pruned_at = time.monotonic()
                try:
                    deleted = self.prune()
                except Exception as exc:
                    log.warning("exposure_prune_failed", error=str(exc))
                else:
                    if deleted:
                        log.info("exposures_pruned", rows=deleted)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        with self._write_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
