"""Store side of the closed loop: exposures, clicks, the touches orders name, held-out contacts."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from recsys.store.campaigns import Occasion, _insert_ignoring_duplicates, sent_marks
from recsys.store.tables import clicks, exposures, order_touches, vouchers


def new_exposure_id() -> str:
    """An opaque, unguessable id (`ex_` + 22 URL-safe characters, 128 bits)."""
    return "ex_" + secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Exposure:
    """One list shown (or, `held_out`, deliberately not shown) to a customer. Times naive UTC."""

    exposure_id: str
    customer_id: str | None
    placement: str
    model_version: str
    items: tuple[str, ...]
    shown_at: datetime
    experiment: str | None = None
    variant: str | None = None
    held_out: bool = False
    voucher_code: str | None = None
    voucher_percent: float | None = None
    voucher_reason: str | None = None
    #: Declared sent by the caller (`send=true`): a marketing contact (`recsys.store.contacts`).
    sent: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "exposure_id": self.exposure_id,
            "customer_id": self.customer_id,
            "placement": self.placement,
            "experiment": self.experiment,
            "variant": self.variant,
            "model_version": self.model_version,
            "items": json.dumps(list(self.items), ensure_ascii=False),
            "held_out": self.held_out,
            "voucher_code": self.voucher_code,
            "voucher_percent": self.voucher_percent,
            "voucher_reason": self.voucher_reason,
            "shown_at": self.shown_at,
            "sent": self.sent,
        }

    @staticmethod
    def from_row(row: Any) -> Exposure:
        m = row._mapping
        return Exposure(
            m["exposure_id"], m["customer_id"], m["placement"], m["model_version"],
            tuple(json.loads(m["items"])), m["shown_at"], m["experiment"], m["variant"],
            bool(m["held_out"]), m["voucher_code"], m["voucher_percent"], m["voucher_reason"],
            bool(m["sent"]),
        )


_COLUMNS = (
    "exposure_id", "customer_id", "placement", "experiment", "variant", "model_version",
    "items", "held_out", "voucher_code", "voucher_percent", "voucher_reason", "shown_at", "sent",
)
_SQLITE_INSERT = (
    f"INSERT INTO exposures ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_PG_COPY = f"COPY exposures ({', '.join(_COLUMNS)}) FROM STDIN"


def _values(e: Exposure, shown_at: object) -> tuple[object, ...]:
    return (
        e.exposure_id, e.customer_id, e.placement, e.experiment, e.variant, e.model_version,
        json.dumps(list(e.items), ensure_ascii=False), e.held_out, e.voucher_code,
        e.voucher_percent, e.voucher_reason, shown_at, e.sent,
    )


def insert_exposures(conn: Connection, rows: Sequence[Exposure]) -> None:
    """Insert `rows` in `conn`'s transaction: one row per exposure, its items in one column.

    Through the driver, not SQLAlchemy's insert: the API's writer thread writes every list
    served, and SQLAlchemy's per-row parameter processing and per-statement setup cost more
    than the insert itself (a bench/exposure.py row). SQLite gets one `executemany` of
    tuples, the time in SQLAlchemy's own DATETIME text format (microseconds always written,
    so its readers and the raw-string reads compare alike); PostgreSQL one `COPY`.
    """
    if not rows:
        return
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
            for r in rows:
                copy.write_row(_values(r, r.shown_at))
        return
    driver.executemany(
        _SQLITE_INSERT,
        [_values(r, r.shown_at.isoformat(" ", "microseconds")) for r in rows],
    )


@dataclass(frozen=True, slots=True)
class HeldOutContact:
    """A marketing contact that was due but withheld (control group or holdout)."""

    customer_id: str
    occasion: str
    day: date
    at: datetime
    exposure_id: str | None = None


def insert_held_out_contacts(conn: Connection, rows: Sequence[HeldOutContact]) -> None:
    """Contact-log rows marked `held_out`; one per (customer, occasion, day), first wins."""
    if not rows:
        return
    conn.execute(
        _insert_ignoring_duplicates(conn),
        [
            {
                "customer_id": r.customer_id,
                "occasion": r.occasion,
                "date": r.day,
                "placement": r.occasion,
                "sent_at": r.at,
                "voucher_code": None,
                "held_out": True,
                "exposure_id": r.exposure_id,
            }
            for r in sorted(rows, key=lambda r: (r.customer_id, r.occasion, r.day))
        ],
    )


def record_held_out(
    conn: Connection, occasion: Occasion, day: date, rows: Sequence[HeldOutContact]
) -> set[str]:
    """Log a campaign's held-out customers; returns those whose row is this call's.

    A customer already logged for (occasion, day) keeps the earlier row (a rerun, or a
    concurrent job); the exposure id each row carries tells whose insert won.
    """
    if not rows:
        return set()
    insert_held_out_contacts(conn, rows)
    logged = sent_marks(conn, occasion, day, [r.customer_id for r in rows])
    return {
        r.customer_id
        for r in rows
        if r.exposure_id is not None and logged.get(r.customer_id, (None, None))[1] == r.exposure_id
    }


_EXPOSURE = select(exposures).where(exposures.c.exposure_id == bindparam("exposure_id"))


def get_exposure(conn: Connection, exposure_id: str) -> Exposure | None:
    row = conn.execute(_EXPOSURE, {"exposure_id": exposure_id}).first()
    return Exposure.from_row(row) if row is not None else None


def _ignore_duplicates(conn: Connection, table: Any, keys: list[str]) -> Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)


def record_click(conn: Connection, exposure_id: str, item_id: str, clicked_at: datetime) -> bool:
    """Store a click; False when that item of that exposure was already clicked (first wins)."""
    # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT row.
    inserted = conn.execute(
        _ignore_duplicates(conn, clicks, ["exposure_id", "item_id"])
        .values(exposure_id=exposure_id, item_id=item_id, clicked_at=clicked_at)
        .returning(clicks.c.exposure_id)
    ).first()
    return inserted is not None


def prune_exposures(conn: Connection, before: datetime) -> int:
    """Delete exposures shown before `before` and their clicks; returns the exposures deleted."""
    old = select(exposures.c.exposure_id).where(exposures.c.shown_at < before)
    conn.execute(delete(clicks).where(clicks.c.exposure_id.in_(old)))
    return int(conn.execute(delete(exposures).where(exposures.c.shown_at < before)).rowcount)


@dataclass(frozen=True, slots=True)
class VoucherRow:
    code: str
    customer_id: str
    occasion: str
    percent: float
    day: date
    valid_until: date


def get_voucher(conn: Connection, code: str) -> VoucherRow | None:
    row = conn.execute(select(vouchers).where(vouchers.c.code == code)).first()
    if row is None:
        return None
    return VoucherRow(row.code, row.customer_id, row.occasion, float(row.percent), row.date,
                      row.valid_until)


@dataclass(frozen=True, slots=True)
class OrderTouch:
    order_id: str
    customer_id: str
    purchased_at: datetime
    exposure_id: str | None
    voucher_code: str | None


def get_touch(conn: Connection, order_id: str) -> OrderTouch | None:
    row = conn.execute(select(order_touches).where(order_touches.c.order_id == order_id)).first()
    if row is None:
        return None
    return OrderTouch(row.order_id, row.customer_id, row.purchased_at, row.exposure_id,
                      row.voucher_code)


def redeeming_order(conn: Connection, code: str) -> str | None:
    """The order that redeemed voucher `code`, if any."""
    query = select(order_touches.c.order_id).where(order_touches.c.voucher_code == code)
    value = conn.execute(query).scalar_one_or_none()
    return str(value) if value is not None else None


def insert_touch(conn: Connection, touch: OrderTouch) -> None:
    conn.execute(
        insert(order_touches).values(
            order_id=touch.order_id,
            customer_id=touch.customer_id,
            purchased_at=touch.purchased_at,
            exposure_id=touch.exposure_id,
            voucher_code=touch.voucher_code,
        )
    )
