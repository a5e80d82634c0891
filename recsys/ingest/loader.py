"""One file -> the store, in a single transaction: all of it (minus rejected rows) or nothing."""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import polars as pl
import structlog
from sqlalchemy import Connection, Engine, func, select

from recsys.ingest.mapping import ColumnMap, apply_columns, resolve_columns
from recsys.ingest.prefetch import prefetch
from recsys.ingest.readers import iter_batches, read_header
from recsys.ingest.schema import Kind
from recsys.ingest.unchanged import unchanged_entities, unchanged_lines
from recsys.ingest.validate import (
    LINE,
    REASON,
    Checked,
    check_catalog,
    check_customers,
    check_transactions,
    with_lines,
    with_rejects,
)
from recsys.order_bounds import OrderBounds
from recsys.store import bulk
from recsys.store.tables import customers, items, order_lines

Progress = Callable[[int], None]
log = structlog.get_logger(__name__)


@dataclass(slots=True)
class IngestSummary:
    """What a load did. `inserted`: new keys; `unchanged`: rows an earlier load stored with the
    same values; `updated`: the other accepted rows whose key already existed (or repeated
    in an earlier batch of the file); `merged`: lines folded into another of their key."""

    kind: str
    path: Path
    read: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    rejected: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None

    def top_reasons(self, n: int = 5) -> list[tuple[str, int]]:
        return self.reasons.most_common(n)


class _RejectsFile:
    """Rejected rows with their line, reason and the values as read; created on first reject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def write(self, rejected: _Rejected) -> None:
        if rejected.rows.height == 0:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("wb")
            rejected.rows.clear().write_csv(self._handle)  # the header line
        self._handle.write(rejected.csv)

    def close(self, keep: bool) -> None:
        if self._handle is not None:
            self._handle.close()
        if not keep and self.path.exists():
            self.path.unlink()


def _count_reasons(rejects: pl.DataFrame, counter: Counter[str]) -> None:
    """Group reasons for the summary by dropping quoted values.

    `item_id 'X' is not in the catalog` -> `item_id is not in the catalog`.
    """
    if rejects.height == 0:
        return
    kinds = rejects.select(
        pl.col(REASON)
        .str.replace_all(r"'[^']*'", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars(" :")
        .alias("kind")
    )["kind"].value_counts()
    counter.update(dict(zip(kinds["kind"].to_list(), kinds["count"].to_list(), strict=True)))


def _count(conn: Connection, table: object) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _merge_keys(lines: pl.DataFrame) -> pl.DataFrame:
    """Sum lines sharing (order_id, item_id); price becomes the quantity-weighted mean.

    Columns: order_id, item_id, quantity, unit_price. A line whose key is not repeated
    passes through as read (its price exact, not quantity * price / quantity).
    """
    columns = ("order_id", "item_id", "quantity", "unit_price")
    repeated = lines.select(pl.struct("order_id", "item_id").is_duplicated()).to_series()
    if not repeated.any():
        return lines.select(columns)
    priced = pl.col("unit_price").is_not_null()
    weight = pl.when(priced).then(pl.col("quantity")).otherwise(0.0)
    merged = (
        lines.filter(repeated)
        .group_by("order_id", "item_id", maintain_order=True)
        .agg(
            pl.col("quantity").sum(),
            pl.when(weight.sum() != 0)
            .then((weight * pl.col("unit_price").fill_null(0.0)).sum() / weight.sum())
            .otherwise(pl.col("unit_price").mean())
            .alias("unit_price"),
        )
    )
    return pl.concat([lines.filter(~repeated).select(columns), merged])


def _with_values(rejects: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """`rejects` (_line, _reason) with each line's values from `raw`, in the rejects' order."""
    lines = raw[LINE]
    # (A line the reader rejected is not in `raw`: it may sit just past either end.)
    if (
        raw.height
        and lines[-1] - lines[0] == raw.height - 1
        and (rejects.height == 0 or rejects[LINE].is_between(lines[0], lines[-1]).all())
    ):
        # A batch numbers its lines consecutively: a line's row is its offset, no join.
        values = raw.drop(LINE).select(pl.all().gather(rejects[LINE] - lines[0]))
        return pl.concat([rejects, values], how="horizontal")
    return rejects.join(raw, on=LINE, how="left", maintain_order="left")


@dataclass(frozen=True, slots=True)
class _Rejected:
    """A batch's rejects: (line, reason), the rows for the rejects file, counts per reason.

    `csv`: the rows rendered for the rejects file (no header line); rendered where the
    batch is prepared, so that the thread writing to the store only copies bytes.
    """

    rejects: pl.DataFrame
    rows: pl.DataFrame
    reasons: Counter[str]
    csv: bytes

    @staticmethod
    def of(parts: Sequence[pl.DataFrame], raw: pl.DataFrame) -> _Rejected:
        parts = [part for part in parts if part.height] or parts[:1]
        rejects = pl.concat(parts) if len(parts) > 1 else parts[0]
        reasons: Counter[str] = Counter()
        _count_reasons(rejects, reasons)
        rows = _with_values(rejects, raw).rename({LINE: "line", REASON: "reason"})
        rendered = io.BytesIO()
        if rows.height:
            rows.write_csv(rendered, include_header=False)
        return _Rejected(rejects, rows, reasons, rendered.getvalue())


@dataclass(frozen=True, slots=True)
class _Settled:
    """Order lines once each order's owner is known: what is accepted and what is written."""

    accepted: int
    owner_rejects: pl.DataFrame  # _line, _reason
    per_order: pl.DataFrame  # order_id, times (distinct timestamps), first_at
    multi_time: int  # orders of per_order whose lines have more than one time
    customers: bulk.Rows  # customer_id
    orders: bulk.Rows  # order_id, customer_id, purchased_at
    lines: bulk.Rows  # order_id, item_id, quantity, unit_price; load_id (key order)


def _settle(lines: pl.DataFrame, owners: pl.DataFrame, load_id: str, dialect: str) -> _Settled:
    """Keep the lines whose customer owns their order (`owners`: order_id, owner); merge keys."""
    with_owner = lines.join(owners, on="order_id", how="left", maintain_order="left")
    wrong = with_owner.filter(pl.col("customer_id") != pl.col("owner"))
    owner_rejects = wrong.select(
        pl.col(LINE),
        (
            pl.lit("order '")
            + pl.col("order_id")
            + pl.lit("' belongs to customer '")
            + pl.col("owner")
            + pl.lit("', not '")
            + pl.col("customer_id")
            + pl.lit("'")
        ).alias(REASON),
    )
    accepted = with_owner.filter(pl.col("customer_id") == pl.col("owner")).drop("owner")
    # An order's accepted lines all have its owner: first customer = the owner.
    per_order = accepted.group_by("order_id", maintain_order=True).agg(
        pl.col("customer_id").first(), *_TIMES
    )
    return _settled(accepted, per_order, owner_rejects, load_id, dialect)


#: Per order: how many distinct times its lines have, and the earliest.
_TIMES = (
    pl.col("purchased_at").n_unique().alias("times"),
    pl.col("purchased_at").min().alias("first_at"),
)
_NO_OWNER_REJECTS = pl.DataFrame(schema={LINE: pl.Int64, REASON: pl.Utf8})


def _settled(
    accepted: pl.DataFrame,
    per_order: pl.DataFrame,
    owner_rejects: pl.DataFrame,
    load_id: str,
    dialect: str,
) -> _Settled:
    """`accepted` lines and their orders (`per_order`: order_id, customer_id, times,
    first_at) made ready for the writes; keys merged."""
    # In the order of the (customer, time, order) index: its inserts, scattered over every
    # customer otherwise, cost more than the table's (UCI: 0.065 -> 0.05 s of CPU).
    orders = per_order.select(
        "order_id", "customer_id", pl.col("first_at").alias("purchased_at")
    ).sort("customer_id", "purchased_at", "order_id")
    return _Settled(
        accepted=accepted.height,
        owner_rejects=owner_rejects,
        per_order=per_order.select("order_id", "times", "first_at"),
        multi_time=int((per_order["times"] > 1).sum()),
        customers=bulk.Rows.prepare(
            orders.select("customer_id").unique(maintain_order=True), dialect
        ),
        orders=bulk.Rows.prepare(orders, dialect),
        lines=bulk.Rows.prepare(
            # Order-id order: B-tree inserts in key order touch each page once (2x faster);
            # an order's few lines share a page in any order, and a one-key sort is cheap.
            _merge_keys(accepted).sort("order_id"),
            dialect,
            {"load_id": load_id},
        ),
    )


@dataclass(frozen=True, slots=True)
class _TxBatch:
    """A transactions batch as far as it can be taken without the store (the reading thread).

    `settled` and `rejected` assume each order belongs to its first customer in the
    batch; the writer redoes them when the store says otherwise (rare).
    """

    raw: pl.DataFrame
    checked: Checked
    first_owners: pl.DataFrame  # order_id, first_customer (first valid line of the batch)
    settled: _Settled
    rejected: _Rejected
    # PostgreSQL: first_owners' order ids as one array literal, rendered off the writer.
    order_ids: str | None = None


def _prepare_transactions(
    raw: pl.DataFrame, checked: Checked, load_id: str, dialect: str
) -> _TxBatch:
    per_order = checked.valid.group_by("order_id", maintain_order=True).agg(
        pl.col("customer_id").first(),
        pl.col("customer_id").n_unique().alias("customers"),
        *_TIMES,
    )
    first_owners = per_order.select("order_id", pl.col("customer_id").alias("first_customer"))
    if per_order["customers"].max() == 1:
        # No order of the batch has lines of two customers (the usual case): every valid
        # line is accepted, and this one group-by already gives each order its first time.
        settled = _settled(
            checked.valid, per_order.drop("customers"), _NO_OWNER_REJECTS, load_id, dialect
        )
    else:
        owners = first_owners.rename({"first_customer": "owner"})
        settled = _settle(checked.valid, owners, load_id, dialect)
    rejected = _Rejected.of([checked.rejects, settled.owner_rejects], raw)
    order_ids = bulk.pg_text_array(first_owners["order_id"]) if dialect == "postgresql" else None
    return _TxBatch(raw, checked, first_owners, settled, rejected, order_ids)


class _TransactionsWriter:
    def __init__(self, conn: Connection, writer: bulk.BulkWriter, load_id: str) -> None:
        self.conn = conn
        self.writer = writer
        self.load_id = load_id
        known = conn.execute(select(items.c.item_id)).scalars().all()
        self.known_items = pl.Series("item_id", known, dtype=pl.Utf8)

    def process(self, batch: _TxBatch, summary: IngestSummary) -> _Rejected:
        settled, rejected = batch.settled, batch.rejected
        stored = self.writer.existing_orders(batch.first_owners["order_id"], batch.order_ids)
        # The joins start from `stored` (the few orders a batch shares with the store, as
        # a rule the one the batch before it ended with), not from the batch's orders:
        # this thread runs them while the server waits for its next statement.
        if stored.height:
            moved = stored.join(batch.first_owners, on="order_id", how="inner").filter(
                pl.col("stored_customer") != pl.col("first_customer")
            )
            if moved.height:
                # The store gives some order another owner than this batch's first line.
                owners = batch.first_owners.join(
                    stored, on="order_id", how="left", maintain_order="left"
                ).select(
                    "order_id", pl.coalesce("stored_customer", "first_customer").alias("owner")
                )
                settled = _settle(batch.checked.valid, owners, self.load_id, self.writer.dialect)
                rejected = _Rejected.of([batch.checked.rejects, settled.owner_rejects], batch.raw)
        # Orders whose lines have two times, or one time that is not the stored one.
        conflicting = settled.multi_time
        if stored.height:
            conflicting += (
                stored.join(settled.per_order, on="order_id", how="inner")
                .filter((pl.col("times") == 1) & (pl.col("stored_at") != pl.col("first_at")))
                .height
            )
        if conflicting:
            summary.warnings["orders with lines at different times (earliest kept)"] += conflicting
        summary.accepted += settled.accepted
        summary.merged += settled.accepted - settled.lines.frame.height
        summary.unchanged += unchanged_lines(
            self.conn, settled.lines.frame, settled.per_order, stored, self.load_id
        )
        if settled.lines.frame.height:
            self.writer.upsert(bulk.CUSTOMER_IDS, settled.customers)
            # Keys of orders the store does not hold yet cannot conflict.
            self.writer.upsert_all_mostly_new(
                [(bulk.ORDERS, settled.orders), (bulk.ORDER_LINES, settled.lines)],
                stored["order_id"],
            )
        return rejected


def _process_entity(
    raw: pl.DataFrame,
    checked: Checked,
    kind: Kind,
    writer: bulk.BulkWriter,
    summary: IngestSummary,
    revision: int,
    conn: Connection,
) -> _Rejected:
    key = "item_id" if kind == "catalog" else "customer_id"
    # A file may list a key twice: the last row wins.
    valid = checked.valid.unique(subset=key, keep="last", maintain_order=True).drop(LINE)
    summary.accepted += checked.valid.height
    summary.unchanged += unchanged_entities(
        conn, items if kind == "catalog" else customers, key, valid
    )
    if kind == "catalog":
        # Stamped so the API's catalog cache re-reads only what this load wrote.
        valid = valid.with_columns(pl.lit(revision, pl.Int64).alias("revision"))
    writer.upsert(bulk.ITEMS if kind == "catalog" else bulk.CUSTOMERS, valid)
    return _Rejected.of([checked.rejects], raw)


def _checked_batches(
    path: Path,
    chunk_rows: int,
    resolved: dict[str, tuple[str, ...]],
    kind: Kind,
    known_items: pl.Series | None,
    load_id: str,
    dialect: str,
    bounds: OrderBounds | None = None,
) -> Iterator[tuple[pl.DataFrame, Checked | _TxBatch, int]]:
    """Read, validate and (transactions) merge: the part that runs ahead of the writes.

    Yields (rows as read, what to write, lines the reader rejected). No store access
    here: this runs in the prefetch thread.
    """
    sources = {source for names in resolved.values() for source in names}
    for batch in iter_batches(path, chunk_rows, sources):
        raw = with_lines(apply_columns(batch.frame, resolved), batch.first_line, batch.lines)
        if kind == "transactions":
            assert known_items is not None
            checked = with_rejects(check_transactions(raw, known_items, bounds), batch.rejects)
            yield raw, _prepare_transactions(raw, checked, load_id, dialect), len(batch.rejects)
        elif kind == "catalog":
            yield raw, with_rejects(check_catalog(raw), batch.rejects), len(batch.rejects)
        else:
            yield raw, with_rejects(check_customers(raw), batch.rejects), len(batch.rejects)


def ingest_file(
    engine: Engine,
    kind: Kind,
    path: Path,
    column_map: ColumnMap,
    *,
    rejects_dir: Path,
    chunk_rows: int = 100_000,
    progress: Progress | None = None,
    bounds: OrderBounds | None = None,
) -> IngestSummary:
    """Validate `path` and load it into the store in one transaction.

    `bounds`: the plausible quantity and unit price of a line (default `OrderBounds()`).

    Raises IngestError (and loads nothing) when the file cannot be read or
    lacks required columns; malformed rows go to the rejects file instead.
    """
    header = read_header(path)
    resolved = resolve_columns(header, column_map, kind)
    load_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    revision = time.time_ns() // 1000  # catalog rows written by this load (microseconds)
    summary = IngestSummary(kind=kind, path=path)
    rejects_file = _RejectsFile(rejects_dir / f"{kind}-{load_id}.csv")
    table = {"transactions": order_lines, "catalog": items, "customers": customers}[kind]
    ok = False
    try:
        with engine.begin() as conn:
            writer = bulk.BulkWriter(conn)
            # PostgreSQL: the writer counts what it inserts (no full count of the table).
            counted = writer.dialect == "postgresql"
            before = 0 if counted else _count(conn, table)
            tx_writer = (
                _TransactionsWriter(conn, writer, load_id) if kind == "transactions" else None
            )
            known_items = tx_writer.known_items if tx_writer is not None else None
            batches = _checked_batches(
                path, chunk_rows, resolved, kind, known_items, load_id, writer.dialect, bounds
            )
            for raw, prepared, unreadable in prefetch(batches):
                summary.read += raw.height + unreadable
                if isinstance(prepared, _TxBatch):
                    assert tx_writer is not None
                    rejected = tx_writer.process(prepared, summary)
                else:
                    rejected = _process_entity(
                        raw, prepared, kind, writer, summary, revision, conn
                    )
                summary.rejected += rejected.rejects.height
                summary.reasons.update(rejected.reasons)
                rejects_file.write(rejected)
                log.debug("ingest_batch_written", kind=kind, rows_read=summary.read)
                if progress is not None:
                    progress(raw.height)
            summary.inserted = (
                writer.inserted[table.name] if counted else _count(conn, table) - before
            )
        ok = True
    finally:
        rejects_file.close(keep=ok and summary.rejected > 0)
    summary.updated = (
        summary.accepted - summary.merged - summary.inserted - summary.unchanged
    )
    log.debug(
        "ingest_finished",
        kind=kind,
        path=str(path),
        accepted=summary.accepted,
        inserted=summary.inserted,
        unchanged=summary.unchanged,
        rejected=summary.rejected,
    )
    summary.rejects_path = rejects_file.path if summary.rejected else None
    return summary
