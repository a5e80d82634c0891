"""Read and write purchase history (orders and their lines)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, bindparam, func, insert, select

from recsys.records import Purchase
from recsys.store.engine import StoreError, sqlite_driver, sqlite_text
from recsys.store.tables import customers, order_lines, orders

# polars is imported inside the functions that build frames: the API's workers never
# need it, and it costs each of them about 40 MiB.
if TYPE_CHECKING:
    import sqlite3

    import polars as pl
    import pyarrow as pa


def purchase_schema() -> dict[str, pl.DataType]:
    """Columns and polars types of `purchase_frame` (polars is imported only here)."""
    import polars as pl
    return {
        "customer_id": pl.Utf8(),
        "item_id": pl.Utf8(),
        "order_id": pl.Utf8(),
        "quantity": pl.Float64(),
        "unit_price": pl.Float64(),
        "purchased_at": pl.Datetime("us"),
    }


def purchase_frame(conn: Connection, *, batch_rows: int = 500_000) -> pl.DataFrame:
    """Every order line joined with its order: the training and evaluation input.

    Columns as `purchase_schema()`; `purchased_at` is naive UTC; negative quantity is a return.
    Rows are ordered by (purchased_at, order_id, item_id), which is unique.

    The rows travel as columns wherever the database allows (`recsys train` spent most
    of its time outside the fit here, building millions of Python tuples): a SQLite file
    as Arrow (ADBC, in a child process), PostgreSQL as COPY CSV parsed by pyarrow. A
    SQLite database in memory, or a connection with writes of its own not yet committed
    (which another connection cannot see), is read through the connection's driver;
    other databases through SQLAlchemy. `batch_rows` bounds the rows held as Python
    objects at once there.
    """
    import polars as pl
    query = (
        select(
            orders.c.customer_id,
            order_lines.c.item_id,
            order_lines.c.order_id,
            order_lines.c.quantity,
            order_lines.c.unit_price,
            orders.c.purchased_at,
        )
        .join(orders, orders.c.order_id == order_lines.c.order_id)
    )
    schema = purchase_schema()
    driver = sqlite_driver(conn)
    if driver is not None:
        path = _sqlite_file(conn.engine.url)
        if path is not None and not driver.in_transaction:
            return _ArrowChild(path).frame(schema)
        return _sqlite_purchase_frame(driver, sqlite_text(query), schema, batch_rows)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        return _copy_postgres_purchase_frame(conn, schema)
    ordered = query.order_by(orders.c.purchased_at, order_lines.c.order_id, order_lines.c.item_id)
    result = conn.execution_options(yield_per=batch_rows).execute(ordered)
    frames = [
        pl.DataFrame(rows, schema=schema, orient="row")
        for rows in result.partitions(batch_rows)
    ]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, rechunk=True)


def _sqlite_purchase_frame(
    driver: sqlite3.Connection, sql: str, schema: dict[str, pl.DataType], batch_rows: int
) -> pl.DataFrame:
    """SQLite through the connection's own driver (see `purchase_frame`): its rows as
    columns, times parsed and rows sorted by polars.

    SQLAlchemy's per-row DateTime parsing and SQLite's sort of millions of rows took most
    of `recsys train`'s read; the text times SQLAlchemy and the bulk loader write
    ("YYYY-MM-DD HH:MM:SS[.ffffff]") parse in one vectorised pass, and the sort key is
    unique (an order line is (order_id, item_id)), so the order is the same.
    """
    import polars as pl

    text_schema = {**schema, "purchased_at": pl.Utf8()}
    cursor = driver.execute(sql)
    frames = []
    while rows := cursor.fetchmany(batch_rows):
        frames.append(pl.DataFrame(rows, schema=text_schema, orient="row"))
    if not frames:
        return pl.DataFrame(schema=schema)
    frame = pl.concat(frames, rechunk=True).with_columns(
        pl.col("purchased_at").str.to_datetime(_TIME_FORMAT, time_unit="us")
    )
    return frame.sort("purchased_at", "order_id", "item_id")


#: The text times SQLAlchemy and the bulk loader write to SQLite, and `_PG_TIME` renders.
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"


def _sqlite_file(url: URL) -> str | None:
    """The path of the SQLite file `url` names, or None (in memory, a URI, options)."""
    database = url.database
    if (
        url.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or url.query
    ):
        return None
    return database if Path(database).is_file() else None


class PurchaseRead:
    """`purchase_frame` begun before there is a connection: on a SQLite file the reading
    child process starts at once, so its start and scans overlap the caller's own (the
    `recsys train` command imports the training code meanwhile)."""

    def __init__(self, engine: Engine) -> None:
        path = _sqlite_file(engine.url)
        self._child = _ArrowChild(path) if path is not None else None

    def frame(self, conn: Connection) -> pl.DataFrame:
        """What `purchase_frame(conn)` returns (`conn` on the same database)."""
        child, self._child = self._child, None
        if child is not None:
            driver = sqlite_driver(conn)
            if driver is not None and not driver.in_transaction:
                return child.frame(purchase_schema())
            child.abandon()
        return purchase_frame(conn)


class _ArrowChild:
    """A SQLite file's orders and lines read as Arrow by a child process (`_sqlite_arrow`,
    which says why not here); `frame` joins and orders them here."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by frame or abandon)
        script = Path(__file__).with_name("_sqlite_arrow.py")
        # -P: the script's folder (this package) does not shadow top-level modules there.
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(script), path],
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )

    def abandon(self) -> None:
        self._process.kill()
        self._process.communicate()
        self._errors.close()

    def frame(self, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        import polars as pl
        import pyarrow as pa

        def by_time(order_rows: pa.Table) -> pl.DataFrame:
            # Orders in (purchased_at, order_id) order; each one's lines (in item_id
            # order) are joined after it: the rows sorted by (purchased_at, order_id,
            # item_id) without sorting them all. (SQLite's ORDER BY compares text
            # bytewise, as polars does.)
            frame = pl.from_arrow(order_rows)
            assert isinstance(frame, pl.DataFrame)
            if frame.is_empty():  # an empty result's columns have no types to parse
                return frame
            return frame.with_columns(
                pl.col("purchased_at").str.to_datetime(_TIME_FORMAT, time_unit="us")
            ).sort("purchased_at", "order_id")

        stdout = self._process.stdout
        assert stdout is not None
        orders_frame = line_rows = None
        with self._errors:
            try:
                with stdout, ThreadPoolExecutor(1) as pool:
                    order_rows = pa.ipc.open_stream(stdout).read_all()
                    # The orders are parsed and sorted while the child scans the lines.
                    lines_read = pool.submit(lambda: pa.ipc.open_stream(stdout).read_all())
                    orders_frame = by_time(order_rows)
                    line_rows = lines_read.result()
            except (pa.ArrowInvalid, OSError):
                orders_frame = line_rows = None
            if self._process.wait() != 0 or orders_frame is None or line_rows is None:
                self._errors.seek(0)
                said = self._errors.read().decode("utf-8", "replace").strip().splitlines()
                raise StoreError(
                    f"reading the purchases of {self._path} failed: "
                    f"{said[-1] if said else 'no output'}"
                )
        lines_frame = pl.from_arrow(line_rows)
        assert isinstance(lines_frame, pl.DataFrame)
        if orders_frame.is_empty() or lines_frame.is_empty():
            return pl.DataFrame(schema=schema)
        joined = orders_frame.join(
            lines_frame, on="order_id", how="inner", maintain_order="left_right"
        )
        return joined.select(
            pl.col(name).cast(dtype)
            if name != "unit_price"
            else pl.when(pl.col("no_price") == 0).then(pl.col(name)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        )


#: PostgreSQL's text for a `timestamp`, whatever the session's DateStyle.
_PG_TIME = "to_char(o.purchased_at, 'YYYY-MM-DD HH24:MI:SS.US')"
_PG_COPY = (
    "COPY (SELECT o.customer_id, l.item_id, l.order_id, l.quantity, l.unit_price,"
    f" {_PG_TIME} FROM order_lines AS l JOIN orders AS o ON o.order_id = l.order_id"
    " ORDER BY o.purchased_at, l.order_id, l.item_id) TO STDOUT (FORMAT csv)"
)


def _copy_postgres_purchase_frame(
    conn: Connection, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """PostgreSQL: the ordered query as COPY CSV on this connection (its transaction and
    search_path), parsed by pyarrow as it streams in.

    Floats survive the text: PostgreSQL 12 and later print the shortest text that reads
    back as the same double (`extra_float_digits` 1, its default, set here in case a
    server changed it), and the parser rounds correctly.
    """
    import polars as pl
    import pyarrow as pa
    import pyarrow.csv as pacsv

    conn.exec_driver_sql("SET LOCAL extra_float_digits = 1")
    names = list(schema)
    arrow_types = {
        "customer_id": pa.string(), "item_id": pa.string(), "order_id": pa.string(),
        "quantity": pa.float64(), "unit_price": pa.float64(), "purchased_at": pa.string(),
    }
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(_PG_COPY) as copy:
        stream = _CopyStream(copy)
        if stream.at_end():  # no lines at all: pyarrow refuses an empty CSV
            return pl.DataFrame(schema=schema)
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=arrow_types),
        )
        table = reader.read_all()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.col("purchased_at").str.to_datetime(_TIME_FORMAT, time_unit="us")
    ).cast(schema)  # type: ignore[arg-type]


class _CopyStream(io.RawIOBase):
    """A psycopg `Copy` read as a binary file (what pyarrow's streaming reader takes).

    psycopg hands COPY TO's data over a row at a time; each read fills the whole buffer
    pyarrow asks for, so pyarrow parses megabytes per call.
    """

    def __init__(self, copy: Any) -> None:
        self._blocks = iter(copy)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        """Whether the COPY has no (more) data, found without losing any."""
        if not self._pending:
            self._pending = next(self._blocks, b"")
        return not self._pending

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        size = len(view)
        filled = 0
        block: Any = self._pending
        while True:
            if filled + len(block) >= size:
                view[filled:] = block[: size - filled]
                self._pending = bytes(block[size - filled :])
                return size
            view[filled : filled + len(block)] = block
            filled += len(block)
            block = next(self._blocks, None)
            if block is None:
                self._pending = b""
                return filled


# Built once: the API runs this per request, and building the statement cost more
# than running it (SQLAlchemy then reuses the compiled form through its cache).
_LINE_COLUMNS = (
    order_lines.c.order_id,
    order_lines.c.item_id,
    order_lines.c.quantity,
    order_lines.c.unit_price,
    orders.c.purchased_at,
)
_ORDER = (orders.c.purchased_at, order_lines.c.item_id)
_CUSTOMER_PURCHASES = (
    select(*_LINE_COLUMNS)
    .join(orders, orders.c.order_id == order_lines.c.order_id)
    .where(orders.c.customer_id == bindparam("customer_id"))
    .order_by(*_ORDER)
)
_PURCHASES_FOR = (
    select(orders.c.customer_id, *_LINE_COLUMNS)
    .join(orders, orders.c.order_id == order_lines.c.order_id)
    .where(orders.c.customer_id.in_(bindparam("customer_ids", expanding=True)))
    .order_by(*_ORDER)
)


_SQLITE_CUSTOMER_PURCHASES = sqlite_text(_CUSTOMER_PURCHASES)


def customer_purchases(conn: Connection, customer_id: str) -> list[Purchase]:
    """One customer's order lines, oldest first."""
    driver = sqlite_driver(conn)
    if driver is not None:  # see _SQLITE_PURCHASES_FOR: the text times parse as they are
        parse = datetime.fromisoformat
        return [
            Purchase(order_id, item_id, float(quantity), unit_price, parse(purchased_at))
            for order_id, item_id, quantity, unit_price, purchased_at in driver.execute(
                _SQLITE_CUSTOMER_PURCHASES, (customer_id,)
            )
        ]
    rows = conn.execute(_CUSTOMER_PURCHASES, {"customer_id": customer_id})
    return [
        Purchase(order_id, item_id, float(quantity), unit_price, purchased_at)
        for order_id, item_id, quantity, unit_price, purchased_at in rows
    ]


# SQLite: the same query through the driver. SQLAlchemy's row and DateTime processing
# cost about as much as the query itself for a campaign batch's ~18,000 lines; the text
# times SQLAlchemy writes ("YYYY-MM-DD HH:MM:SS[.ffffff]") parse with `fromisoformat`.
_SQLITE_PURCHASES_FOR = (
    "SELECT o.customer_id, l.order_id, l.item_id, l.quantity, l.unit_price, o.purchased_at"
    " FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id"
    " WHERE o.customer_id IN (SELECT value FROM json_each(?))"
    " ORDER BY o.purchased_at, l.item_id"
)


# PostgreSQL: the same rows, driven from the batch's customers. The plain join let the
# planner hash the whole of order_lines once per batch (a parallel sequential scan: 225
# ms of a 500-customer batch at 1.7M lines, growing with the store), and without
# statistics (a fresh load, autovacuum off) it scanned all of orders too. Each lateral
# subquery, kept apart by OFFSET 0, is a probe of an index: a customer's orders
# (ix_orders_customer_time), then an order's lines (the primary key); so a batch costs
# its own lines whatever the store's size or statistics. One array parameter instead of
# 500 placeholders keeps one statement text, which psycopg prepares after a few batches.
_PG_PURCHASES_FOR = (
    "SELECT o.customer_id, l.order_id, l.item_id, l.quantity, l.unit_price, o.purchased_at"
    " FROM (SELECT DISTINCT unnest(%s::text[]) AS customer_id) AS b"
    " CROSS JOIN LATERAL ("
    "SELECT od.order_id, od.customer_id, od.purchased_at FROM orders AS od"
    " WHERE od.customer_id = b.customer_id OFFSET 0) AS o"
    " CROSS JOIN LATERAL ("
    "SELECT ol.order_id, ol.item_id, ol.quantity, ol.unit_price FROM order_lines AS ol"
    " WHERE ol.order_id = o.order_id OFFSET 0) AS l"
    " ORDER BY o.purchased_at, l.item_id"
)

# SET LOCAL of both, as one statement (the binary cursor cannot send two at once).
_PG_NO_JIT_NOR_PARALLEL = (
    "SELECT set_config('jit', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def purchases_for(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[Purchase]]:
    """Order lines of many customers at once (campaign batches), oldest first."""
    history: dict[str, list[Purchase]] = {c: [] for c in customer_ids}
    if conn.dialect.name == "postgresql" and customer_ids:
        # Through the driver, in binary: SQLAlchemy's per-row processing and psycopg's text
        # parsing of the ~18,000 lines of a batch cost more than the query.
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor(binary=True) as cursor:
            # For the rest of the caller's transaction: the planner's estimate of this
            # query crosses the thresholds of JIT compilation (20 ms a batch) and parallel
            # workers (~50 ms to start them), neither worth it for a batch's index probes,
            # and the campaign already runs one process per core.
            cursor.execute(_PG_NO_JIT_NOR_PARALLEL)
            cursor.execute(_PG_PURCHASES_FOR, (list(customer_ids),))
            for customer_id, order_id, item_id, quantity, unit_price, purchased_at in cursor:
                history[customer_id].append(
                    Purchase(order_id, item_id, float(quantity), unit_price, purchased_at)
                )
        return history
    if conn.dialect.name == "sqlite" and customer_ids:
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(_SQLITE_PURCHASES_FOR, (json.dumps(list(customer_ids)),))
        parse = datetime.fromisoformat
        for customer_id, order_id, item_id, quantity, unit_price, purchased_at in cursor:
            history[customer_id].append(
                Purchase(order_id, item_id, float(quantity), unit_price, parse(purchased_at))
            )
        return history
    for start in range(0, len(customer_ids), 5000):
        chunk = list(customer_ids[start : start + 5000])
        rows = conn.execute(_PURCHASES_FOR, {"customer_ids": chunk})
        for customer_id, order_id, item_id, quantity, unit_price, purchased_at in rows:
            history[customer_id].append(
                Purchase(order_id, item_id, float(quantity), unit_price, purchased_at)
            )
    return history


def first_purchase_at(conn: Connection, customer_id: str) -> datetime | None:
    query = select(func.min(orders.c.purchased_at)).where(orders.c.customer_id == customer_id)
    value = conn.execute(query).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


@dataclass(frozen=True, slots=True)
class OrderLineIn:
    item_id: str
    quantity: float
    unit_price: float | None


@dataclass(frozen=True, slots=True)
class OrderIn:
    """An order posted as an event. `purchased_at` is naive UTC."""

    order_id: str
    customer_id: str
    purchased_at: datetime
    lines: tuple[OrderLineIn, ...]

    def body_hash(self) -> str:
        body = {
            "customer_id": self.customer_id,
            "purchased_at": self.purchased_at.isoformat(),
            "lines": sorted((line.item_id, line.quantity, line.unit_price) for line in self.lines),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class OrderConflict(Exception):
    """An order id already recorded with a different body."""


def _merged_lines(lines: Sequence[OrderLineIn]) -> dict[str, tuple[float, float | None]]:
    """Lines sharing an item summed (the data contract's rule for repeated scans):
    item -> (quantity, quantity-weighted unit price or None)."""
    merged: dict[str, tuple[float, float, float]] = {}
    for line in lines:
        qty, weighted, priced = merged.get(line.item_id, (0.0, 0.0, 0.0))
        if line.unit_price is not None:
            weighted += line.quantity * line.unit_price
            priced += line.quantity
        merged[line.item_id] = (qty + line.quantity, weighted, priced)
    return {
        item_id: (qty, (weighted / priced) if priced else None)
        for item_id, (qty, weighted, priced) in merged.items()
    }


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same_as_stored(
    conn: Connection,
    order: OrderIn,
    stored_customer: str,
    stored_at: datetime,
    merged: dict[str, tuple[float, float | None]],
) -> bool:
    """Whether `order` is what the store holds under its id (an order loaded from a file)."""
    if stored_customer != order.customer_id or stored_at != order.purchased_at:
        return False
    rows = conn.execute(
        select(order_lines.c.item_id, order_lines.c.quantity, order_lines.c.unit_price).where(
            order_lines.c.order_id == order.order_id
        )
    ).all()
    stored = {item_id: (float(qty), price) for item_id, qty, price in rows}
    return stored.keys() == merged.keys() and all(
        _close(stored[item][0], qty) and _close(stored[item][1], price)
        for item, (qty, price) in merged.items()
    )


def record_order(conn: Connection, order: OrderIn) -> bool:
    """Store an order event; returns False when the identical order was already recorded.

    One order id is one order, however it arrived: an order posted before is compared
    by its body hash, one loaded from a file by its stored customer, time and lines.
    Lines sharing an item are summed (the data contract's rule for repeated scans).
    Raises OrderConflict when the order id exists with different content.
    """
    digest = order.body_hash()
    merged = _merged_lines(order.lines)
    existing = conn.execute(
        select(orders.c.body_hash, orders.c.customer_id, orders.c.purchased_at).where(
            orders.c.order_id == order.order_id
        )
    ).first()
    if existing is not None:
        same = (
            existing.body_hash == digest
            if existing.body_hash is not None
            else _same_as_stored(conn, order, existing.customer_id, existing.purchased_at, merged)
        )
        if same:
            return False
        raise OrderConflict(f"order {order.order_id!r} was already recorded with different content")
    conn.execute(
        insert(orders).values(
            order_id=order.order_id,
            customer_id=order.customer_id,
            purchased_at=order.purchased_at,
            source="event",
            body_hash=digest,
        )
    )
    conn.execute(
        insert(order_lines),
        [
            {
                "order_id": order.order_id,
                "item_id": item_id,
                "quantity": qty,
                "unit_price": price,
                "load_id": "event",
            }
            for item_id, (qty, price) in merged.items()
        ],
    )
    known = conn.execute(
        select(customers.c.customer_id).where(customers.c.customer_id == order.customer_id)
    ).first()
    if known is None:
        conn.execute(insert(customers).values(customer_id=order.customer_id))
    return True
