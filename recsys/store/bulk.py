"""Bulk upserts: PostgreSQL COPY into a staging table, SQLite executemany in the open transaction.

Both run inside the caller's transaction, so a failed or killed load leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
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


@dataclass(frozen=True, slots=True)
class CopyCsv:
    """A frame rendered for `COPY ... (FORMAT csv)`, with the offset where each row ends.

    Rendered where the batch is prepared (the reading thread): on the writing thread,
    while it renders, the server has nothing to do (UCI: about 0.07 s of a 1.4 s load).
    The row ends let the writer send any subset of the rows as slices of these bytes.
    """

    data: bytes
    ends: npt.NDArray[np.int64]

    @staticmethod
    def render(frame: pl.DataFrame) -> CopyCsv | None:
        """None when a value holds a line break (rows could not be told apart by them)."""
        data = _csv_bytes(frame)
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
        if len(ends) != frame.height:
            return None
        return CopyCsv(data, ends.astype(np.int64))

    def chunks(self, keep: npt.NDArray[np.bool_] | None) -> Iterator[memoryview]:
        """The bytes of the rows `keep` marks (all with None), as few slices as runs."""
        view = memoryview(self.data)
        if keep is None:
            yield view
            return
        starts = np.concatenate(([0], self.ends[:-1]))
        # Runs of kept rows: where the 0/1 sequence, padded with 0 at both ends, changes.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.astype(np.int8), [0]))))
        for first, end in edges.reshape(-1, 2).tolist():
            yield view[int(starts[first]) : int(self.ends[end - 1])]


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as COPY CSV: polars renders it in native code (far cheaper than per-row
    Python), as bytes (a str would be encoded again by the driver)."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, datetime_format=_PG_DATETIME)
    return buffer.getvalue()


def pg_text_array(values: pl.Series) -> str | None:
    """Text values as one PostgreSQL array literal (`{"a","b\\"c"}`), rendered by polars;
    the driver's list adapter loops over the values in Python on the writing thread.
    None when a value is null (the literal has no null here)."""
    if values.null_count():
        return None
    escaped = values.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
        '"', '\\"', literal=True
    )
    return "{" + str(('"' + escaped + '"').str.join(",").item() or "") + "}"


def _pg_text_param(values: pl.Series, literal: str | None = None) -> str | list[str]:
    """The `text[]` parameter for `values`: `literal` when the caller rendered it, else
    their array literal, else (a null among them) the list the driver adapts."""
    return literal or pg_text_array(values) or values.to_list()


@dataclass(frozen=True, slots=True)
class Rows:
    """A frame made ready for a bulk write; `prepare` can run in another thread than the write.

    SQLite: the frame with dates and times as the text SQLAlchemy reads back; at write
    time its columns become Python lists, interleaved into one flat list that is bound
    a statement of many rows at a time (no tuple per row for the garbage collector to
    scan). Building Python objects holds the GIL: done by the writing thread, which
    needs it anyway, it never waits for a preparing thread that holds the GIL (and
    may be descheduled) between two statements. `constants` (column -> text, the same
    on every row) are written as literals of the statement instead of being bound on
    every row.
    PostgreSQL: the frame with the constants as columns, rendered here for COPY
    (`csv`; the writer sends the rows it does not upsert as slices of it) or, a frame
    of one text column (keys), as one array literal (`keys`).
    """

    frame: pl.DataFrame
    constants: tuple[tuple[str, str], ...] = ()
    csv: CopyCsv | None = None
    keys: str | None = None

    @staticmethod
    def prepare(frame: pl.DataFrame, dialect: str, constants: dict[str, str] | None = None) -> Rows:
        if dialect != "sqlite":
            if constants:
                frame = frame.with_columns(
                    pl.lit(v, pl.Utf8).alias(k) for k, v in constants.items()
                )
            if frame.width == 1 and frame.dtypes == [pl.Utf8]:
                return Rows(frame, keys=pg_text_array(frame.to_series()))
            return Rows(frame, csv=CopyCsv.render(frame))
        return Rows(_sqlite_text(frame), tuple((constants or {}).items()))

    def sqlite_values(self) -> list[Any]:
        """The values row after row in one flat list (SQLite; `frame` as `prepare` left it)."""
        return _flat_values(self.frame)


def _flat_values(frame: pl.DataFrame) -> list[Any]:
    width = frame.width
    flat: list[Any] = [None] * (frame.height * width)
    for index, column in enumerate(frame.iter_columns()):
        # A strided slice assignment: the interleaving is done in C, without a tuple per row.
        flat[index::width] = column.to_list()
    return flat


def _sqlite_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates and times as text: SQLAlchemy reads SQLite datetimes back from this layout."""
    conversions = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Datetime:
            conversions.append(pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
        elif dtype == pl.Date:
            conversions.append(pl.col(name).dt.strftime("%Y-%m-%d"))
    return frame.with_columns(conversions) if conversions else frame


def _sqlite_literal(value: str) -> str:
    """A SQL string literal (SQLite has no backslash escapes: a quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


#: Rows bound per SQLite statement: past ~64 the per-statement cost is paid off; 256 keeps
#: the compiled statement small (never more than the driver's bound-variable limit).
_SQLITE_ROWS_PER_STATEMENT = 256
_SQLITE_VARIABLES = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER

_PG_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"
_PG_ORDERS_AMONG = (
    "SELECT order_id, customer_id, purchased_at FROM orders WHERE order_id = ANY(%s::text[])"
)
_SQLITE_ORDERS_AMONG = (
    "SELECT order_id, customer_id, purchased_at FROM orders "
    "WHERE order_id IN (SELECT value FROM json_each(?))"
)


#: Up to this many rows, a PostgreSQL upsert binds one array per column (values adapted
#: one by one in Python); more go through a staging table and COPY.
_PG_ARRAYS_MAX_ROWS = 2_000


def _pg_array_types(frame: pl.DataFrame) -> list[str] | None:
    """The PostgreSQL array element type of each column, None if one has no plain match."""
    types: list[str] = []
    for dtype in frame.dtypes:
        if dtype == pl.Utf8:
            types.append("text")
        elif dtype == pl.Float64:
            types.append("float8")
        elif dtype == pl.Int64:
            types.append("int8")
        elif dtype == pl.Boolean:
            types.append("bool")
        elif dtype == pl.Date:
            types.append("date")
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            types.append("timestamp")  # naive UTC, like the columns
        else:
            return None
    return types


class BulkWriter:
    """Writes polars frames into tables of the connection's store, in its transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name
        self._staged: set[str] = set()
        #: PostgreSQL: rows inserted (not updated) per table by this writer, counted
        #: statement by statement (`COPY`'s row count, the upserts' own count) instead of
        #: counting the whole table before and after the load (a full scan each time;
        #: UCI: 0.03 s at the end of the load, seconds on a store of millions of lines).
        self.inserted: Counter[str] = Counter()

    def existing_orders(self, order_ids: pl.Series, literal: str | None = None) -> pl.DataFrame:
        """The stored orders among `order_ids`: order_id, stored_customer, stored_at.

        One statement whatever the number of ids (the ids travel as one parameter;
        PostgreSQL: `literal`, their `pg_text_array` when the caller rendered it).
        """
        found: list[tuple[str, str, datetime]] = []
        if order_ids.len():
            with self._cursor() as cursor:
                if self.dialect == "postgresql":
                    cursor.execute(_PG_ORDERS_AMONG, (_pg_text_param(order_ids, literal),))
                    found = list(cursor.fetchall())
                else:
                    cursor.execute(_SQLITE_ORDERS_AMONG, (json.dumps(order_ids.to_list()),))
                    # The text layout SQLAlchemy writes; naive UTC like the column.
                    found = [(o, c, datetime.fromisoformat(at)) for o, c, at in cursor.fetchall()]
        return pl.DataFrame(
            found,
            schema={
                "order_id": pl.Utf8,
                "stored_customer": pl.Utf8,
                "stored_at": pl.Datetime("us"),
            },
            orient="row",
        )

    def upsert_mostly_new(self, spec: UpsertSpec, rows: Rows, stored: pl.Series) -> None:
        """Upsert `rows`, knowing that only those whose first key column is in `stored` can
        already exist (the caller looked them up in this transaction).

        PostgreSQL: those go through the upsert, the others are copied straight into
        the table (no staging, no conflict checks) inside a savepoint; should a key
        exist after all (a concurrent writer), the savepoint is rolled back and they
        go through the upsert too. SQLite: one upsert (a plain INSERT costs the same).
        """
        self.upsert_all_mostly_new([(spec, rows)], stored)

    def upsert_all_mostly_new(
        self, parts: Sequence[tuple[UpsertSpec, Rows]], stored: pl.Series
    ) -> None:
        """`upsert_mostly_new` of each part, in order; PostgreSQL: one savepoint for all
        the copies (fewer round trips), all of them upserted should one key exist."""
        if self.dialect != "postgresql":
            for spec, rows in parts:
                self.upsert(spec, rows)
            return
        # Each part's rows to copy: all of them (None) or those the mask keeps.
        new: list[tuple[UpsertSpec, Rows, npt.NDArray[np.bool_] | None]] = []
        for spec, rows in parts:
            keep: npt.NDArray[np.bool_] | None = None
            if stored.len() and rows.frame.height:
                known = rows.frame.select(pl.col(spec.key[0]).is_in(stored.implode())).to_series()
                if known.any():
                    self.upsert(spec, rows.frame.filter(known))
                    keep = (~known).to_numpy()
                    if not keep.any():
                        continue
            if rows.frame.height:
                new.append((spec, rows, keep))
        if not new:
            return
        import psycopg

        with self._cursor() as cursor:
            cursor.execute("SAVEPOINT bulk_insert_new")
            copied: Counter[str] = Counter()
            try:
                for spec, rows, keep in new:
                    self._copy(cursor, spec.table, rows, keep)
                    copied[spec.table] += cursor.rowcount
            except psycopg.errors.UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT bulk_insert_new")
                cursor.execute("RELEASE SAVEPOINT bulk_insert_new")
                for spec, rows, keep in new:
                    self.upsert(
                        spec, rows.frame if keep is None else rows.frame.filter(pl.Series(keep))
                    )
                return
            cursor.execute("RELEASE SAVEPOINT bulk_insert_new")
            self.inserted.update(copied)

    def upsert(self, spec: UpsertSpec, rows: pl.DataFrame | Rows) -> None:
        frame = rows.frame if isinstance(rows, Rows) else rows
        if frame.height == 0:
            return
        columns = frame.columns
        if self.dialect == "postgresql":
            self._upsert_postgres(spec, rows if isinstance(rows, Rows) else Rows(frame), columns)
        elif isinstance(rows, Rows):
            self._upsert_sqlite(spec, rows.sqlite_values(), columns, rows.constants)
        else:
            self._upsert_sqlite(spec, _flat_values(_sqlite_text(frame)), columns, ())

    def _upsert_sqlite(
        self,
        spec: UpsertSpec,
        flat: list[Any],
        columns: Sequence[str],
        constants: tuple[tuple[str, str], ...],
    ) -> None:
        """Upsert the rows whose values `flat` holds one row after the other.

        Each statement carries many rows (`VALUES (...), (...), ...`): per row, a
        one-row `executemany` pays a reset, a step and a release and re-take of the GIL,
        which cost more than the row's insert (UCI lines, 2026-11-30: 0.64 -> 0.42 s of CPU).
        SQLite applies the upsert row after row inside a statement, as if it were
        one statement per row, so a key repeated in the rows merges the same way.
        """
        width = len(columns)
        one_row = "(" + ", ".join(["?"] * width + [_sqlite_literal(v) for _, v in constants]) + ")"
        names = ", ".join([*columns, *(name for name, _ in constants)])
        conflict = _conflict_clause(spec, [*columns, *(name for name, _ in constants)])

        def statement(rows: int) -> str:
            values = ", ".join([one_row] * rows)
            return f"INSERT INTO {spec.table} ({names}) VALUES {values} {conflict}"

        driver = self._conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        per_statement = max(
            1, min(_SQLITE_ROWS_PER_STATEMENT, driver.getlimit(_SQLITE_VARIABLES) // width)
        )
        step = per_statement * width
        whole = len(flat) - len(flat) % step
        with self._cursor() as cursor:
            if whole:
                cursor.executemany(
                    statement(per_statement), (flat[i : i + step] for i in range(0, whole, step))
                )
            if whole < len(flat):
                cursor.execute(statement((len(flat) - whole) // width), flat[whole:])

    def _upsert_postgres(self, spec: UpsertSpec, rows: Rows, columns: Sequence[str]) -> None:
        stage = f"_stage_{spec.table}"
        frame = rows.frame
        with self._cursor() as cursor:
            if spec.ignore_conflicts and columns == [spec.key[0]] and frame.dtypes == [pl.Utf8]:
                # Keys only (the customers of a transactions batch): one statement with the
                # keys as one array instead of a staging table (truncate, copy, insert).
                self._insert_counted(
                    cursor,
                    spec,
                    f"INSERT INTO {spec.table} ({columns[0]}) SELECT unnest(%s::text[]) "
                    + _conflict_clause(spec, columns),
                    (_pg_text_param(frame.to_series(), rows.keys),),
                )
                return
            types = _pg_array_types(frame) if frame.height <= _PG_ARRAYS_MAX_ROWS else None
            if types is not None:
                # A few rows (the orders a batch shares with the one before it, and their
                # lines): one statement with a typed array per column, instead of three
                # (truncate, copy, insert) that the server runs one after the other.
                arrays = ", ".join(f"%s::{t}[]" for t in types)
                self._insert_counted(
                    cursor,
                    spec,
                    f"INSERT INTO {spec.table} ({', '.join(columns)}) "
                    f"SELECT * FROM unnest({arrays}) " + _conflict_clause(spec, columns),
                    [column.to_list() for column in frame.iter_columns()],
                )
                return
            if stage not in self._staged:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                    f"(LIKE {spec.table} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self._staged.add(stage)
            else:
                cursor.execute(f"TRUNCATE {stage}")
            column_list = ", ".join(columns)
            self._copy(cursor, stage, rows, None)
            self._insert_counted(
                cursor,
                spec,
                f"INSERT INTO {spec.table} ({column_list}) SELECT {column_list} FROM {stage} "
                + _conflict_clause(spec, columns),
                None,
            )

    def _insert_counted(self, cursor: Any, spec: UpsertSpec, insert: str, params: Any) -> None:
        """Run an upsert and add the rows it inserted (not updated) to `inserted`.

        A row that `ON CONFLICT DO UPDATE` updated is locked by this transaction, and
        the lock carries over to its new version (xmax set); an inserted row has none.
        `DO NOTHING` returns only inserted rows. Counted in the server: one row back.
        """
        cursor.execute(
            f"WITH upserted AS ({insert} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted) FROM upserted",
            params,
        )
        self.inserted[spec.table] += int(cursor.fetchone()[0])

    def _cursor(self) -> Any:
        """A driver cursor, as a context manager that closes it (sqlite3's is not one)."""
        driver = self._conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        return cursor if self.dialect == "postgresql" else contextlib.closing(cursor)

    @staticmethod
    def _copy(cursor: Any, table: str, rows: Rows, keep: npt.NDArray[np.bool_] | None) -> None:
        """COPY the rows `keep` marks (all with None): slices of `rows.csv` when it was
        rendered, else the frame rendered now."""
        column_list = ", ".join(rows.frame.columns)
        with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN (FORMAT csv)") as copy:
            if rows.csv is not None:
                for chunk in rows.csv.chunks(keep):
                    copy.write(chunk)
            else:
                frame = rows.frame if keep is None else rows.frame.filter(pl.Series(keep))
                copy.write(_csv_bytes(frame))
