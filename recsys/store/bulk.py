"""Bulk upserts: PostgreSQL COPY into a staging table, SQLite executemany in the open transaction.

Both run inside the caller's transaction, so a failed or killed load leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection

# Per-table conflict handling. `{t}` is the target table's name, `excluded` the new row.
_ORDER_LINE_MERGE = {
    # Lines of one load sharing a key are one line; a new load of the key replaces it.
    "quantity": "CASE WHEN {t}.load_id = excluded.load_id "
    "THEN {t}.quantity + excluded.quantity ELSE excluded.quantity END",
    "unit_price": "CASE WHEN {t}.load_id <> excluded.load_id OR {t}.unit_price IS NULL "
    "THEN excluded.unit_price WHEN excluded.unit_price IS NULL THEN {t}.unit_price "
    "WHEN {t}.quantity + excluded.quantity = 0 THEN excluded.unit_price "
    "ELSE ({t}.quantity * {t}.unit_price + excluded.quantity * excluded.unit_price) "
    "/ ({t}.quantity + excluded.quantity) END",
    "load_id": "excluded.load_id",
}
_ORDER_MERGE = {
    # Lines of one order disagreeing on the time: the earliest wins.
    "purchased_at": "CASE WHEN excluded.purchased_at < {t}.purchased_at "
    "THEN excluded.purchased_at ELSE {t}.purchased_at END",
}


@dataclass(frozen=True, slots=True)
class UpsertSpec:
    table: str
    key: tuple[str, ...]
    merge: dict[str, str] | None = None  # column -> SQL; None means "replace with excluded"
    ignore_conflicts: bool = False


ORDER_LINES = UpsertSpec("order_lines", ("order_id", "item_id"), _ORDER_LINE_MERGE)
ORDERS = UpsertSpec("orders", ("order_id",), _ORDER_MERGE)
ITEMS = UpsertSpec("items", ("item_id",))
CUSTOMERS = UpsertSpec("customers", ("customer_id",))
CUSTOMER_IDS = UpsertSpec("customers", ("customer_id",), ignore_conflicts=True)


def _conflict_clause(spec: UpsertSpec, columns: Sequence[str]) -> str:
    key = ", ".join(spec.key)
    updates = (
        {c: s.format(t=spec.table) for c, s in spec.merge.items()}
        if spec.merge is not None
        else {c: f"excluded.{c}" for c in columns if c not in spec.key}
    )
    if spec.ignore_conflicts or not updates:
        return f"ON CONFLICT ({key}) DO NOTHING"
    sets = ", ".join(f"{c} = {sql}" for c, sql in updates.items())
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}"


def _sqlite_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    # SQLAlchemy reads SQLite datetimes back from this exact text layout.
    conversions = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Datetime:
            conversions.append(pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
        elif dtype == pl.Date:
            conversions.append(pl.col(name).dt.strftime("%Y-%m-%d"))
    if conversions:
        frame = frame.with_columns(conversions)
    return frame.rows()


_PG_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"


class BulkWriter:
    """Writes polars frames into tables of the connection's store, in its transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name
        self._staged: set[str] = set()

    def upsert(self, spec: UpsertSpec, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        columns = frame.columns
        if self._dialect == "postgresql":
            self._upsert_postgres(spec, frame, columns)
        else:
            self._upsert_sqlite(spec, frame, columns)

    def _upsert_sqlite(self, spec: UpsertSpec, frame: pl.DataFrame, columns: Sequence[str]) -> None:
        placeholders = ", ".join("?" for _ in columns)
        sql = (
            f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({placeholders}) "
            + _conflict_clause(spec, columns)
        )
        cursor = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, _sqlite_rows(frame))
        finally:
            cursor.close()

    def _upsert_postgres(
        self, spec: UpsertSpec, frame: pl.DataFrame, columns: Sequence[str]
    ) -> None:
        stage = f"_stage_{spec.table}"
        driver = self._conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            if stage not in self._staged:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                    f"(LIKE {spec.table} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self._staged.add(stage)
            else:
                cursor.execute(f"TRUNCATE {stage}")
            column_list = ", ".join(columns)
            # polars renders the batch as CSV in native code: far cheaper than per-row Python.
            with cursor.copy(f"COPY {stage} ({column_list}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(frame.write_csv(include_header=False, datetime_format=_PG_DATETIME))
            cursor.execute(
                f"INSERT INTO {spec.table} ({column_list}) SELECT {column_list} FROM {stage} "
                + _conflict_clause(spec, columns)
            )
