"""Marketing contacts: what the contact cap counts, and recording a send made through the API.

A contact is either a contact-log row that was sent (campaigns; held-out rows of the
control group and campaign holdouts were never sent) or an exposure its caller declared
as sent (`send=true` on a marketing placement). Rendering a list without `send` is not a
contact: a template may preview or re-render it freely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    CompoundSelect,
    Connection,
    String,
    any_,
    bindparam,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from recsys.store.engine import sqlite_driver, sqlite_text
from recsys.store.feedback import Exposure, insert_exposures
from recsys.store.tables import contact_log, exposures

_CHUNK = 5000


Whose = Callable[[Column[str]], ColumnElement[bool]]


def _one(column: Column[str]) -> ColumnElement[bool]:
    return column == bindparam("customer_id")


def _array(column: Column[str]) -> ColumnElement[bool]:
    # PostgreSQL: one array parameter instead of an IN list of 500 placeholders, so a
    # campaign batch reuses one statement (cached by SQLAlchemy, prepared by psycopg)
    # instead of sending and parsing a new 500-placeholder text per batch.
    return column == any_(bindparam("customer_ids", type_=ARRAY(String)))


def _in(customer_ids: list[str]) -> Whose:
    def whose(column: Column[str]) -> ColumnElement[bool]:
        return column.in_(customer_ids)

    return whose


def _contacts(whose: Whose) -> CompoundSelect[tuple[str, datetime]]:
    """Both kinds of contact as (customer_id, sent_at) rows of the customers `whose` picks."""
    logged = select(contact_log.c.customer_id, contact_log.c.sent_at).where(
        whose(contact_log.c.customer_id), contact_log.c.held_out.is_(False)
    )
    sends = select(exposures.c.customer_id, exposures.c.shown_at.label("sent_at")).where(
        whose(exposures.c.customer_id),
        # The form the partial index `ix_exposures_customer_sent` is declared with.
        exposures.c.sent == True,  # noqa: E712
    )
    return union_all(logged, sends)


# Built once: the API reads one customer's contacts per request.
_CONTACT_HISTORY = _contacts(_one)


_SQLITE_CONTACT_HISTORY = sqlite_text(_CONTACT_HISTORY)  # type: ignore[arg-type]
_PG_CONTACT_HISTORIES = _contacts(_array)


def contact_history(conn: Connection, customer_id: str) -> list[datetime]:
    """UTC instants of the customer's marketing contacts, oldest first."""
    driver = sqlite_driver(conn)
    if driver is not None:
        # The one customer is bound twice: once per side of the union.
        parse = datetime.fromisoformat
        return sorted(
            parse(sent_at)
            for _, sent_at in driver.execute(_SQLITE_CONTACT_HISTORY, (customer_id, customer_id))
        )
    rows = conn.execute(_CONTACT_HISTORY, {"customer_id": customer_id})
    return sorted(row.sent_at for row in rows)


def contact_histories(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[datetime]]:
    """`contact_history` of many customers (every id is a key, [] when never contacted)."""
    history: dict[str, list[datetime]] = {c: [] for c in customer_ids}
    if conn.dialect.name == "postgresql":
        if customer_ids:
            rows = conn.execute(_PG_CONTACT_HISTORIES, {"customer_ids": list(customer_ids)})
            for row in rows:
                history[row.customer_id].append(row.sent_at)
        for times in history.values():
            times.sort()
        return history
    for start in range(0, len(customer_ids), _CHUNK):
        chunk = list(customer_ids[start : start + _CHUNK])
        for row in conn.execute(_contacts(_in(chunk))):
            history[row.customer_id].append(row.sent_at)
    for times in history.values():
        times.sort()
    return history


def record_send(conn: Connection, exposure: Exposure) -> None:
    """Record a list the caller sent as a marketing contact, now (not queued with the renders).

    Written before the answer goes out, so the next call, from any worker, counts it.
    """
    insert_exposures(conn, [replace(exposure, sent=True)])
